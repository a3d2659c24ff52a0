"""The Model Outputs dock: every output field of every model for the primary datapoint.

Each field is shown by its type, so that nothing a model produces goes unseen: class
probabilities, scores, generated text, tokens, top-k token predictions as a table, attention
heads as a token-to-token matrix, and the size of embeddings and gradients (whose full views
are the projector and the salience dock).
"""

from __future__ import annotations

import html
import reprlib
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QAbstractScrollArea, QComboBox, QFormLayout,
                               QFrame, QHBoxLayout, QLabel, QSizePolicy,
                               QSpinBox, QStyle, QTableView, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache
from litdesk.core.outputs import example_outputs_job, gold_values
from litdesk.core.predict import SpecMismatchError, bind_inputs
from litdesk.core.session import Session
from litdesk.ui.docks.primary_row import PrimaryRowDock
from litdesk.ui.jobs import JobFailed, JobRunner
from litdesk.ui.palette import POSITIVE

#: The most candidates shown per position of a TokenTopKPreds field.
TOP_K_SHOWN = 5
#: Tables taller than this many rows scroll inside the dock.
VISIBLE_TABLE_ROWS = 12
VECTOR_TYPES = (types.Embeddings, types.TokenEmbeddings, types.TokenGradients)
IDLE_MESSAGE = "Select a datapoint to see every output of each model."
#: Attention shades from transparent to 85% opaque blue, made once: painting allocates nothing.
LIGHT_TEXT, DARK_TEXT = QColor("white"), QColor("#333")
HEAT_SHADES = tuple(QColor(POSITIVE.red(), POSITIVE.green(), POSITIVE.blue(), round(0.85 * level))
                    for level in range(256))

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


def fit_table_height(table: QAbstractItemView, rows: int) -> None:
    """Make ``table`` as tall as its rows, up to :data:`VISIBLE_TABLE_ROWS`; it scrolls beyond."""
    shown = min(rows, VISIBLE_TABLE_ROWS)
    header = table.horizontalHeader().sizeHint().height()
    table.setFixedHeight(header + shown * table.verticalHeader().defaultSectionSize()
                         + 2 * table.frameWidth())


def compact_table(table: QAbstractItemView) -> None:
    """Read-only, tight rows, as wide as its columns at most."""
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
    table.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)


def top_k_table(candidates: Any, tokens: Optional[list[str]]) -> QTableWidget:
    """One row per position: its token, then its most likely tokens as "token (p)"."""
    k = min(TOP_K_SHOWN, max((len(position) for position in candidates), default=0))
    table = QTableWidget(len(candidates), 1 + k)
    table.setHorizontalHeaderLabels(["token"] + [f"#{rank}" for rank in range(1, k + 1)])
    table.verticalHeader().hide()
    bold = table.font()
    bold.setBold(True)
    for row, position in enumerate(candidates):
        token = QTableWidgetItem(str(tokens[row]) if tokens is not None
                                 and len(tokens) == len(candidates) else "")
        token.setFont(bold)
        table.setItem(row, 0, token)
        best = sorted(position, key=lambda pair: -float(pair[1]))[:k]
        for column, (name, probability) in enumerate(best, start=1):
            table.setItem(row, column, QTableWidgetItem(f"{name} ({float(probability):.2f})"))
    compact_table(table)
    table.resizeColumnsToContents()
    fit_table_height(table, len(candidates))
    return table


class AttentionMatrixModel(QAbstractTableModel):
    """One attention head as a table: row tokens attend ("from") to column tokens ("to").

    Cells show the weight and are shaded by it (:data:`HEAT_SHADES`), relative to the head's
    largest weight; ``Qt.UserRole`` gives the weight as a float.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.weights = np.zeros((0, 0))
        self.row_tokens: tuple[str, ...] = ()
        self.column_tokens: tuple[str, ...] = ()
        self._maximum = 0.0

    def set_matrix(self, weights: np.ndarray, row_tokens: tuple[str, ...],
                   column_tokens: tuple[str, ...]) -> None:
        """Show ``weights`` (rows × columns) with the tokens as labels."""
        self.beginResetModel()
        self.weights = weights
        self.row_tokens, self.column_tokens = row_tokens, column_tokens
        self._maximum = float(weights.max()) if weights.size else 0.0
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else self.weights.shape[0]

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else self.weights.shape[1]

    def hover_text(self, row: int, column: int) -> str:
        """"from → to: weight" for one cell."""
        return (f"{self.row_tokens[row]} → {self.column_tokens[column]}: "
                f"{self.weights[row, column]:.3f}")

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        weight = float(self.weights[index.row(), index.column()])
        strength = weight / self._maximum if self._maximum > 0 else 0.0
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{weight:.2f}"
        if role == Qt.ItemDataRole.BackgroundRole:
            return HEAT_SHADES[round(255 * min(1.0, max(0.0, strength)))]
        if role == Qt.ItemDataRole.ForegroundRole:
            return LIGHT_TEXT if strength > 0.55 else DARK_TEXT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.hover_text(index.row(), index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignCenter
        if role == Qt.ItemDataRole.UserRole:
            return weight
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        tokens = self.row_tokens if orientation == Qt.Orientation.Vertical else self.column_tokens
        return tokens[section]


def aligned_tokens(outputs: dict[str, Any], field: Optional[str], count: int) -> tuple[str, ...]:
    """The tokens of the Tokens field ``field`` when it has ``count`` of them, else positions."""
    tokens = outputs.get(field) if field else None
    if tokens is not None and len(tokens) == count:
        return tuple(str(token) for token in tokens)
    return tuple(str(i) for i in range(count))


class AttentionView(QWidget):
    """A layer and head picker over a model's AttentionHeads fields, and the chosen head's
    token-to-token matrix; hovering a cell shows "from → to: weight"."""

    #: The layer field and head now shown.
    choice_changed = Signal(str, int)

    def __init__(self, spec: dict[str, types.AttentionHeads], outputs: dict[str, Any],
                 layer: Optional[str] = None, head: int = 0, parent=None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.outputs = outputs
        self.layer_choice = QComboBox()
        self.layer_choice.addItems(list(spec))
        self.layer_choice.setToolTip("The attention layer (an AttentionHeads output)")
        self.head_choice = QSpinBox()
        self.head_choice.setPrefix("head ")
        self.head_choice.setToolTip("The attention head, counted from 0")
        self.hover = QLabel("Rows attend to columns; hover a cell for its weight.")
        self.hover.setStyleSheet("color:#666")
        self.hover.setWordWrap(True)
        self.matrix_model = AttentionMatrixModel(self)
        self.matrix = QTableView()
        self.matrix.setModel(self.matrix_model)
        self.matrix.setMouseTracking(True)
        self.matrix.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.matrix.verticalHeader().setDefaultAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        compact_table(self.matrix)
        self.matrix.entered.connect(
            lambda index: self.hover.setText(self.matrix_model.hover_text(index.row(),
                                                                          index.column())))

        pickers = QHBoxLayout()
        pickers.setContentsMargins(0, 0, 0, 0)
        pickers.addWidget(self.layer_choice)
        pickers.addWidget(self.head_choice)
        pickers.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(pickers)
        layout.addWidget(self.hover)
        layout.addWidget(self.matrix)

        if layer in spec:
            self.layer_choice.setCurrentText(layer)
        self._set_head_range()
        self.head_choice.setValue(head)
        self.layer_choice.currentTextChanged.connect(self._on_layer_changed)
        self.head_choice.valueChanged.connect(self._show_head)
        self._show_head()

    @property
    def heads(self) -> np.ndarray:
        """The chosen layer's weights: heads × tokens × tokens."""
        return np.asarray(self.outputs[self.layer_choice.currentText()])

    def _set_head_range(self) -> None:
        self.head_choice.setRange(0, self.heads.shape[0] - 1)

    def _on_layer_changed(self) -> None:
        self._set_head_range()
        self._show_head()

    def _show_head(self) -> None:
        layer, head = self.layer_choice.currentText(), self.head_choice.value()
        weights = self.heads[head]
        field_type = self.spec[layer]
        self.matrix_model.set_matrix(
            weights, aligned_tokens(self.outputs, field_type.align_in, weights.shape[0]),
            aligned_tokens(self.outputs, field_type.align_out, weights.shape[1]))
        self._fit_columns()
        fit_table_height(self.matrix, weights.shape[0])
        self.choice_changed.emit(layer, head)

    def _fit_columns(self) -> None:
        """Each column as wide as its token or a weight, whichever is wider. Measured from the
        labels alone: asking the model for every cell would stall on long texts."""
        header = self.matrix.horizontalHeader()
        padding = 2 * self.matrix.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin) + 4
        weight_width = self.matrix.fontMetrics().horizontalAdvance("0.00") + padding
        for column, token in enumerate(self.matrix_model.column_tokens):
            header.resizeSection(column, max(weight_width,
                                              header.fontMetrics().horizontalAdvance(token) + padding))


class ModelOutputsSection(QWidget):
    """One model's outputs for one row: a bold header, then a row per output field.

    ``widgets`` maps each field shown to its widget; the AttentionHeads fields share one
    :class:`AttentionView`, ``attention``.
    """

    def __init__(self, model_name: str, parent=None) -> None:
        super().__init__(parent)
        self.model_name = model_name
        self.widgets: dict[str, QWidget] = {}
        self.attention: Optional[AttentionView] = None
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
                     attention_layer: Optional[str] = None, attention_head: int = 0) -> None:
        """A row per output field of ``spec``, each shown by its type; the attention matrix
        starts at the given layer field and head when the model has them."""
        self.status.hide()
        attention_spec = {name: t for name, t in spec.items()
                          if isinstance(t, types.AttentionHeads) and outputs.get(name) is not None}
        for name, field_type in spec.items():
            if isinstance(field_type, types.AttentionHeads):
                if attention_spec and self.attention is None:
                    head = attention_head if attention_layer in attention_spec else 0
                    self.attention = AttentionView(attention_spec, outputs, attention_layer, head)
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
            return value_label(" ".join(map(str, value)))
        if isinstance(field_type, types.TokenTopKPreds):
            return top_k_table(value, outputs.get(field_type.align) if field_type.align else None)
        if isinstance(field_type, VECTOR_TYPES):
            return value_label(describe_vector(value))
        return value_label(short_repr(value))


class OutputsDock(PrimaryRowDock):
    """Runs every model on the primary row and shows all of its outputs, one section per model.

    The jobs run on the worker with interactive priority; a new primary row cancels the previous
    row's jobs, and a result for a row no longer primary is dropped.
    """

    title = "Outputs"
    idle_message = IDLE_MESSAGE

    def __init__(self, session: Session, runner: JobRunner, cache: ResultCache | None = None,
                 parent=None) -> None:
        self.sections: dict[str, ModelOutputsSection] = {}
        self._attention_choice: dict[str, tuple[str, int]] = {}  # model -> (layer field, head)
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
        layer, head = self._attention_choice.get(name, (None, 0))
        section.show_outputs(model.output_spec(), result, gold_values(model, dataset, row),
                             layer, head)
        if section.attention is not None:
            section.attention.choice_changed.connect(
                lambda layer, head: self._remember_attention(name, layer, head))

    def _remember_attention(self, model_name: str, layer: str, head: int) -> None:
        """Keep the user's layer and head for the model's next rows."""
        self._attention_choice[model_name] = (layer, head)

    def show_failure(self, name: str, failure: JobFailed) -> None:
        self.sections[name].show_message(
            f"Failed: {type(failure.error).__name__}: {failure.error}")
