"""Choices that come back on the next launch: a combo box's pick kept in litdesk's settings
(:class:`litdesk.core.settings.Settings`, one JSON file, Qt-free)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QComboBox

from litdesk.core.settings import Settings

#: Where the docks' choices live in the settings file.
PREFIX = "docks/"


class RememberedChoice(QObject):
    """Keeps what the user picks in ``combo`` under ``key`` and picks it again whenever the
    combo box offers it (now, or when its items are filled in later, as a dock does once a
    dataset or model arrives). Only the user's own picks are saved, never a dock's default."""

    def __init__(self, combo: QComboBox, settings: Settings, key: str) -> None:
        super().__init__(combo)
        self.combo, self.settings, self.key = combo, settings, PREFIX + key
        combo.activated.connect(self._save)
        model = combo.model()
        for signal in (model.rowsInserted, model.modelReset):
            signal.connect(self._restore_later)
        self._restore()

    @property
    def saved(self) -> object:
        return self.settings.get(self.key)

    def _save(self, _index: int) -> None:
        try:
            self.settings.set(self.key, self.combo.currentText())
        except OSError:
            pass  # kept in memory for this session (Settings.set says so)

    def _restore_later(self, *_args) -> None:
        # After the dock has filled the box (it may block signals while it does).
        QTimer.singleShot(0, self, self._restore)

    def _restore(self) -> None:
        saved = self.saved
        if not isinstance(saved, str):
            return
        index = self.combo.findText(saved)
        if index >= 0 and index != self.combo.currentIndex():
            self.combo.setCurrentIndex(index)


def remember_choice(combo: QComboBox, settings: Settings, key: str) -> RememberedChoice:
    """Make ``combo``'s pick come back on the next launch (see :class:`RememberedChoice`)."""
    return RememberedChoice(combo, settings, key)
