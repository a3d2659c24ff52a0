"""The Datapoint Editor: edit the primary datapoint's fields and add the result as its child.

Each field gets a widget that fits its type: text, a category dropdown, a number, a check box,
an image file. Changed fields are highlighted. "Add" (Ctrl+Return) asks the window to add the
edited datapoint (the window journals it, predicts it and selects it); "Add and compare"
(Ctrl+Shift+Return) also pins the original as the reference. Unsaved edits are kept per row
while the user looks at other rows, and a row's provenance is shown with a link to its parent.
The form follows the selection only while the dock is on screen, and keeps its widgets from row
to row of the same dataset (only their values change).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable, Optional

import pyarrow as pa
import pyarrow.compute as pc
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator, QIntValidator, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core.datapoints import (CREATED, ORIGIN, PARENT, NewDatapoint, own_columns,
                                     uninherited_columns)
from litdesk.core.session import Session
from litdesk.ui.lazy_refresh import RefreshWhenShown

#: Category dropdowns list at most this many of a column's values (any other can be typed).
MAX_CHOICES = 500
CHANGED_STYLE = "background: #fff3bf;"
IDLE_MESSAGE = "Select a row to edit it."
THUMBNAIL_SIZE = 96


class _Field:
    """One column's editor: its widget, how to read its value, and whether it changed."""

    def __init__(self, name: str, widget: QWidget, read: Callable[[], Any], original: Any,
                 styled: QWidget) -> None:
        self.name, self.widget, self.read, self.original, self.styled = \
            name, widget, read, original, styled

    def changed(self) -> bool:
        try:
            return self.read() != self.original
        except ValueError:  # a number being typed: not a value yet, but not the original
            return True


class DatapointEditorDock(RefreshWhenShown):
    """Edits the primary row; ``add_requested(NewDatapoint, compare)`` asks for a new row."""

    add_requested = Signal(object, bool)

    def __init__(self, session: Session, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.row: Optional[int] = None
        self.fields: dict[str, _Field] = {}
        self.cleared: list[str] = []  # fields that start empty instead of the parent's value
        self._drafts: dict[tuple[str, int], dict[str, Any]] = {}  # (dataset, row) -> edits
        self._loading = False
        self._read_only: dict[str, QLabel] = {}  # the fields with no editor, by column
        # What the form's widgets were made for (table, spec, cleared fields): another row of
        # the same refills them, anything else makes them again.
        self._form_made_for: Optional[tuple] = None
        self._refill = True  # the shown row's values changed (new dataset, rows added)

        self.header = QLabel(IDLE_MESSAGE)
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.linkActivated.connect(self._on_link)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form_widget = QWidget()
        column = QVBoxLayout(form_widget)
        column.addLayout(self.form)
        column.addStretch(1)  # the fields stay together at the top
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_widget)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setWordWrap(True)
        self.error.hide()
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add the edited datapoint as a child of this row (Ctrl+Return)")
        self.compare_button = QPushButton("Add and compare")
        self.compare_button.setToolTip("Add it and pin this row as the reference to compare "
                                       "with (Ctrl+Shift+Return)")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Undo the edits of this row")
        self.add_button.clicked.connect(lambda: self.request_add(compare=False))
        self.compare_button.clicked.connect(lambda: self.request_add(compare=True))
        self.reset_button.clicked.connect(self.reset)
        for keys, compare in (("Ctrl+Return", False), ("Ctrl+Shift+Return", True)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda compare=compare: self.request_add(compare))
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.compare_button)
        buttons.addStretch(1)
        buttons.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self._update_buttons()

        session.selection_changed.connect(lambda _source: self.request_refresh())
        session.dataset_changed.connect(self._on_dataset_changed)
        session.rows_added.connect(lambda _rows: self._refill_when_shown())

    # -- what the user does ---------------------------------------------------------------

    def changed_fields(self) -> list[str]:
        """The fields whose value differs from the row's."""
        return [name for name, field in self.fields.items() if field.changed()]

    def edited_datapoint(self) -> NewDatapoint:
        """The row with the edits, as a child of the row. Raises ValueError for a value that is
        not one (a number that does not parse)."""
        if self.row is None:
            raise ValueError("no row is selected")
        values = {name: field.read() for name, field in self.fields.items()}
        changed = self.changed_fields()
        return NewDatapoint.now(values, self.row, f"edited: {', '.join(changed)}")

    def request_add(self, compare: bool) -> None:
        """Ask for the edited datapoint to be added (and, with ``compare``, this row pinned)."""
        if self.row is None or not self.changed_fields():
            return
        try:
            point = self.edited_datapoint()
        except ValueError as error:
            self.show_error(str(error))
            return
        self.show_error("")
        self._drafts.pop(self._draft_key(self.row), None)
        self.add_requested.emit(point, compare)

    def reset(self) -> None:
        """Forget the edits of the shown row."""
        if self.row is not None:
            self._drafts.pop(self._draft_key(self.row), None)
            self._show_row(self.row, force=True)

    def show_error(self, text: str) -> None:
        """Show why the last add failed (empty: hide)."""
        self.error.setText(text)
        self.error.setVisible(bool(text))

    # -- following the session -----------------------------------------------------------

    def refresh(self) -> None:
        """Show the primary row (called when on screen)."""
        refill, self._refill = self._refill, False
        self._show_row(self.session.selection.primary, force=refill)

    def _on_dataset_changed(self) -> None:
        self.row = None
        self._refill_when_shown()

    def _refill_when_shown(self) -> None:
        self._refill = True
        self.request_refresh()

    def _draft_key(self, row: int) -> tuple[str, int]:
        return (self.session.dataset.name if self.session.dataset else "", row)

    def _keep_draft(self) -> None:
        if self.row is None or self._loading:
            return
        edits = {}
        for name in self.changed_fields():
            try:
                edits[name] = self.fields[name].read()
            except ValueError:
                continue
        key = self._draft_key(self.row)
        if edits:
            self._drafts[key] = edits
        else:
            self._drafts.pop(key, None)

    def _show_row(self, row: Optional[int], force: bool = False) -> None:
        dataset = self.session.dataset
        if row is not None and (dataset is None or row >= len(dataset)):
            row = None
        if row == self.row and not force:
            return
        self.row = row
        self.show_error("")
        if row is None or dataset is None:
            self._clear_form()
            self.header.setText(IDLE_MESSAGE)
            self._update_buttons()
            return
        example = dataset.example(row)
        self.header.setText(self._header_text(row, example))
        spec = dataset.spec()
        draft = self._drafts.get(self._draft_key(row), {})
        # The gold labels and the split start empty: the new datapoint keeps the parent's only
        # when the user sets them (an edit may change the answer; a copied split would join
        # the test set unseen).
        self.cleared = [name for name in uninherited_columns(dataset, self.session.models)
                        if example.get(name) is not None]
        if self.cleared:
            self.header.setText(self.header.text() + "<br><small>" + html.escape(
                f"{', '.join(self.cleared)} start empty in the new datapoint: set "
                f"{'it' if len(self.cleared) == 1 else 'them'} to keep a value.") + "</small>")
        made_for = (dataset.table, spec, self.cleared)
        remake = self._form_made_for is None or self._form_made_for[0] is not dataset.table \
            or self._form_made_for[1:] != made_for[1:]
        if remake:
            self._clear_form()
            self._form_made_for = made_for
        self._loading = True
        try:
            for name in own_columns(dataset):
                if remake:
                    self._add_field(name, spec.get(name), dataset.table.column(name))
                field = self.fields.get(name)
                if field is None:
                    self._read_only[name].setText(_read_only_text(example[name]))
                    continue
                field.original = None if name in self.cleared else example[name]
                _set_value(field, field.original)
                if name in self.cleared:
                    _hint_parent_value(field.widget, example[name])
                if name in draft:
                    _set_value(field, draft[name])
        finally:
            self._loading = False
        self._on_edit()

    def _add_field(self, name: str, field_type: Optional[types.FieldType],
                   column: pa.ChunkedArray) -> None:
        field = self._field_editor(name, field_type, column)
        if field is None:
            self._read_only[name] = _read_only()
            self.form.addRow(f"{name}:", self._read_only[name])
        else:
            self.fields[name] = field
            self.form.addRow(f"{name}:", field.widget)

    def _header_text(self, row: int, example: dict[str, Any]) -> str:
        text = f"<b>Row {row}</b>"
        if example.get(ORIGIN):
            parent = example.get(PARENT)
            made = (f" — made from <a href='row:{parent}'>row {parent}</a>"
                    if parent is not None else " — made here")
            text += f"{made} ({html.escape(str(example[ORIGIN]))}, " \
                    f"{html.escape(str(example.get(CREATED) or ''))})"
        return text + "<br><small>Edit any field, then Add (Ctrl+Return) to make a new " \
                      "datapoint from this one.</small>"

    def _on_link(self, link: str) -> None:
        if link.startswith("row:"):
            parent = int(link.split(":", 1)[1])
            self.session.select([parent], parent, source=self)

    def _clear_form(self) -> None:
        self.fields.clear()
        self._read_only.clear()
        self._form_made_for = None
        while self.form.rowCount():
            self.form.removeRow(0)

    def _on_edit(self) -> None:
        if self._loading:
            return
        for field in self.fields.values():
            field.styled.setStyleSheet(CHANGED_STYLE if field.changed() else "")
        self._keep_draft()
        self._update_buttons()

    def _update_buttons(self) -> None:
        editable = self.row is not None and bool(self.changed_fields())
        for button in (self.add_button, self.compare_button, self.reset_button):
            button.setEnabled(editable)

    # -- one editor per type ------------------------------------------------------------------

    def _field_editor(self, name: str, field_type: Optional[types.FieldType],
                      column: pa.ChunkedArray) -> Optional[_Field]:
        """An empty editor for column ``name`` (None for a type the form cannot edit)."""
        arrow_type = column.type
        if isinstance(field_type, types.Boolean) or pa.types.is_boolean(arrow_type):
            box = QCheckBox()
            box.toggled.connect(self._on_edit)
            return _Field(name, box, box.isChecked, None, box)
        if isinstance(field_type, types.ImageBytes):
            picker = ImagePicker(name, None)
            picker.changed.connect(self._on_edit)
            return _Field(name, picker, lambda: picker.data, None, picker.preview)
        if isinstance(field_type, types.CategoryLabel) or (
                pa.types.is_dictionary(arrow_type) and field_type is None):
            combo = QComboBox()
            combo.setEditable(True)
            combo.addItems(_choices(field_type, column))
            combo.currentTextChanged.connect(self._on_edit)
            return _Field(name, combo, lambda: _typed(combo.currentText(), arrow_type, name),
                          None, combo)
        if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
            line = QLineEdit()
            line.setValidator(QIntValidator(line) if pa.types.is_integer(arrow_type)
                              else QDoubleValidator(line))
            line.textChanged.connect(self._on_edit)
            return _Field(name, line, lambda: _typed(line.text(), arrow_type, name), None, line)
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            if isinstance(field_type, types.TextSegment) or field_type is None:
                text = QPlainTextEdit()
                text.setTabChangesFocus(True)
                text.setFixedHeight(text.fontMetrics().lineSpacing() * 4 + 12)
                text.textChanged.connect(self._on_edit)
                return _Field(name, text, text.toPlainText, None, text)
            line = QLineEdit()  # paths, ids
            line.textChanged.connect(self._on_edit)
            return _Field(name, line, line.text, None, line)
        return None

    def set_image(self, name: str, data: bytes) -> None:
        """Put ``data`` (an encoded image) in image field ``name`` (what "Choose image…" does)."""
        self.fields[name].widget.set_data(data)


class ImagePicker(QWidget):
    """A thumbnail of an image field's bytes and a button to replace them with a file's."""

    changed = Signal()

    def __init__(self, name: str, data: Optional[bytes], parent: Optional[QWidget] = None
                 ) -> None:
        super().__init__(parent)
        self.name, self.data = name, data
        self.preview = QLabel()
        self.preview.setFixedSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        choose = QPushButton("Choose image…")
        choose.clicked.connect(self._pick)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.preview)
        row.addWidget(choose)
        row.addStretch(1)
        self._show()

    def set_data(self, data: Optional[bytes]) -> None:
        """Show and keep these image bytes."""
        self.data = data
        self._show()
        self.changed.emit()

    def _show(self) -> None:
        pixmap = QPixmap()
        if self.data and pixmap.loadFromData(self.data):
            self.preview.setPixmap(pixmap.scaled(THUMBNAIL_SIZE, THUMBNAIL_SIZE,
                                                 Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))
        else:
            self.preview.setText("no image")

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Image for {self.name}", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif)")
        if path:
            self.set_data(Path(path).read_bytes())


def _choices(field_type: Optional[types.FieldType], column: pa.ChunkedArray) -> list[str]:
    vocab = getattr(field_type, "vocab", None)
    if vocab:
        return list(vocab)
    values = pc.unique(column.drop_null()).slice(0, MAX_CHOICES).to_pylist()
    return sorted(str(value) for value in values)


def _typed(text: str, arrow_type: pa.DataType, name: str) -> Any:
    """What was typed, as a value of the column's type (None when empty)."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if not text.strip():
        return None
    try:
        if pa.types.is_integer(arrow_type):
            return int(text)
        if pa.types.is_floating(arrow_type):
            return float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
    return text


def _set_value(field: _Field, value: Any) -> None:
    widget = field.widget
    if isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QComboBox):
        widget.setCurrentText("" if value is None else str(value))
    elif isinstance(widget, QPlainTextEdit):
        widget.setPlainText("" if value is None else str(value))
    elif isinstance(widget, QLineEdit):
        widget.setText("" if value is None else repr(value) if not isinstance(value, str)
                       else value)
    else:
        widget.set_data(value)


def _hint_parent_value(widget: QWidget, value: Any) -> None:
    """Show the parent row's ``value`` greyed in an emptied field, and how to keep it."""
    hint = f"{value}  (the parent's: type or pick it to keep it)"
    target = widget.lineEdit() if isinstance(widget, QComboBox) else widget
    if isinstance(target, (QLineEdit, QPlainTextEdit)):
        target.setPlaceholderText(hint)
    widget.setToolTip(f"Empty in the new datapoint; the parent row has {value!r}")


def _read_only() -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    return label


def _read_only_text(value: Any) -> str:
    text = str(value)
    return html.escape(text if len(text) < 120 else text[:117] + "…") \
        + " <small>(not editable here)</small>"
