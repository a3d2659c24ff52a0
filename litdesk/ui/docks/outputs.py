"""The Model Outputs dock: every output field of every model for the primary datapoint.

Each field is shown by its type, so that nothing a model produces goes unseen: class
probabilities, scores, generated text, tokens, top-k token predictions as a table, attention
heads in the attention viewer (the Attention dock's), and the size of embeddings and gradients
(whose full views are the projector and the salience dock).
"""

from __future__ import annotations

import html
import reprlib
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QFrame, QLabel, QVBoxLayout, QWidget

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache
from litdesk.core.outputs import example_outputs_job, gold_values
from litdesk.core.predict import SpecMismatchError, bind_inputs
from litdesk.core.session import Session
from litdesk.core.tokens import readable_text
from litdesk.ui.jobs import JobFailed, JobRunner
from litdesk.ui.widgets.attention import AttentionMaps, AttentionViewer
from litdesk.ui.widgets.primary_row import PrimaryRowView
from litdesk.ui.widgets.top_k_table import top_k_table

VECTOR_TYPES = (types.Embeddings, types.TokenEmbeddings, types.TokenGradients)
IDLE_MESSAGE = "Select a datapoint to see every output of each model."

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80


def short_repr(value: Any) -> str:
    """A one-line glimpse of any value: numbers to three digits, long sequences elided."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        numbers = np.array2string(value.ravel(), threshold=6, edgeitems=3, separator=", ",
                                  formatter={"float_kind": lambda number: f"{number:.3g}"})
        shape = " × ".join(map(str, value.shape))
        return numbers if value.size <= 6 else f"{numbers}   ({shape} values)"
    return _short.repr(value)


def format_number(value: Any) -> str:
    """A number to four significant digits."""
    return f"{float(value):.4g}"


def describe_vector(value: Any) -> str:
    """The size of an embedding (one vector) or of per-token vectors."""
    shape = np.shape(value)
    if len(shape) == 1:
        return f"vector of {shape[0]} values"
    return f"{shape[0]} vectors of {int(np.prod(shape[1:]))} values"


def class_probabilities_html(field_type: types.MulticlassPreds, probabilities: Any,
                             gold: Any = None) -> str:
    """Each class with its probability, most likely first and in bold; then the gold label."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    vocab = field_type.vocab if len(field_type.vocab) == len(probabilities) else \
        tuple(str(i) for i in range(len(probabilities)))
    order = np.argsort(-probabilities, kind="stable")
    parts = [f"{html.escape(vocab[i])} {probabilities[i]:.3f}" for i in order]
    if parts:
        parts[0] = f"<b>{parts[0]}</b>"
    text = " &nbsp;·&nbsp; ".join(parts)
    if gold is not None:
        text += f" &nbsp;&nbsp; <span style='color:#666'>gold: {html.escape(str(gold))}</span>"
    return text


def value_label(text: str, rich: bool = False) -> QLabel:
    """A selectable, word-wrapped label."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ModelOutputsSection(QWidget):
    """One model's outputs for one row: a bold header, then a row per output field.

    ``widgets`` maps each field shown to its widget; the AttentionHeads fields share one
    :class:`AttentionViewer`, ``attention``.
    """

    def __init__(self, model_name: str, parent=None) -> None:
        super().__init__(parent)
        self.model_name = model_name
        self.widgets: dict[str, QWidget] = {}
        self.attention: Optional[AttentionViewer] = None
        self.status = QLabel("computing…")
        self.status.setStyleSheet("color:#666")
        self.status.setWordWrap(True)
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setContentsMargins(12, 0, 0, 0)
        header = QLabel(f"<b>{html.escape(model_name)}</b>")
        header.setStyleSheet("font-size: 11pt")
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 8)
        layout.addWidget(header)
        layout.addWidget(line)
        layout.addWidget(self.status)
        layout.addLayout(self.form)

    def show_message(self, message: str) -> None:
        """Show ``message`` in place of outputs (computing, a failure)."""
        self.status.setText(message)
        self.status.show()

    def show_outputs(self, spec: types.Spec, outputs: dict[str, Any], gold: dict[str, Any],
                     attention_choice: Optional[tuple[int, int, str, bool]] = None) -> None:
        """A row per output field of ``spec``, each shown by its type; the attention viewer
        starts at ``attention_choice`` (an :meth:`AttentionViewer.choice`) when given."""
        self.status.hide()
        maps = AttentionMaps.from_outputs(spec, outputs)
        for name, field_type in spec.items():
            if isinstance(field_type, types.AttentionHeads):
                if maps is not None and self.attention is None:
                    self.attention = AttentionViewer()
                    if attention_choice is not None:
                        self.attention.set_choice(attention_choice)
                    self.attention.set_maps(maps)
                    self._add_row("attention", "AttentionHeads", self.attention)
                continue
            value = outputs.get(name)
            widget = (value_label("—") if value is None
                      else self._field_widget(field_type, value, outputs, gold.get(name)))
            self.widgets[name] = widget
            self._add_row(name, field_type.type_name, widget)

    def _add_row(self, name: str, type_name: str, widget: QWidget) -> None:
        label = QLabel(f"{html.escape(name)}<br><small style='color:#888'>{type_name}</small>")
        label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.form.addRow(label, widget)

    @staticmethod
    def _field_widget(field_type: types.FieldType, value: Any, outputs: dict[str, Any],
                      gold: Any) -> QWidget:
        if isinstance(field_type, types.MulticlassPreds):
            return value_label(class_probabilities_html(field_type, value, gold), rich=True)
        if isinstance(field_type, (types.RegressionScore, types.Scalar)):
            text = format_number(value)
            return value_label(text if gold is None else f"{text}   (gold: {gold})")
        if isinstance(field_type, types.GeneratedText):
            return value_label(str(value) if gold is None
                               else f"{value}\n(reference: {gold})")
        if isinstance(field_type, types.Tokens):
            return value_label(readable_text(list(map(str, value))))
        if isinstance(field_type, types.TokenTopKPreds):
            return top_k_table(value, outputs.get(field_type.align) if field_type.align else None)
        if isinstance(field_type, VECTOR_TYPES):
            return value_label(describe_vector(value))
        return value_label(short_repr(value))


class OutputsDock(PrimaryRowView):
    """Runs every model on the primary row and shows all of its outputs, one section per model.

    Each model's job runs in the background with interactive priority, only while the dock is
    on screen; a new primary row replaces the previous row's jobs. The attention viewer of each
    model keeps the user's layer, head and mode from row to row.
    """

    title = "Outputs"
    idle_message = IDLE_MESSAGE

    def __init__(self, session: Session, runner: JobRunner, cache: ResultCache | None = None,
                 parent=None) -> None:
        self.sections: dict[str, ModelOutputsSection] = {}
        #: Per model, the attention viewer's last choice.
        self._attention_choice: dict[str, tuple[int, int, str, bool]] = {}
        super().__init__(session, runner, cache, parent)

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int):
        section = ModelOutputsSection(name)
        self.sections[name] = section
        self.content_layout.addWidget(section)
        try:
            bind_inputs(model, dataset)
        except SpecMismatchError as error:
            section.show_message(f"Cannot run on this dataset: {error}")
            return None
        return example_outputs_job(model, dataset, row, self.cache)

    def start_row(self, row: int) -> None:
        self.clear_view()

    def clear_view(self) -> None:
        for section in self.sections.values():
            section.deleteLater()
        self.sections.clear()

    def show_result(self, name: str, row: int, result: dict[str, Any]) -> None:
        model, dataset = self.session.models.get(name), self.session.dataset
        if model is None or dataset is None:
            return
        section = self.sections[name]
        section.show_outputs(model.output_spec(), result, gold_values(model, dataset, row),
                             self._attention_choice.get(name))
        viewer = section.attention
        if viewer is not None:
            viewer.choice_changed.connect(lambda: self._remember_attention(name, viewer))

    def _remember_attention(self, name: str, viewer: AttentionViewer) -> None:
        """Keep the user's layer, head and mode for the model's next rows."""
        self._attention_choice[name] = viewer.choice()

    def show_failure(self, name: str, failure: JobFailed) -> None:
        self.sections[name].show_message(
            f"Failed: {type(failure.error).__name__}: {failure.error}")
