"""Dock contents that do their redrawing only when the user can see them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Optional

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QDockWidget, QWidget
from shiboken6 import isValid

_holds = 0  # how many refreshes_held() blocks are open
_held: dict[int, "RefreshWhenShown"] = {}  # views asked to refresh meanwhile, in order


@contextmanager
def refreshes_held(hand_over: Callable[[Callable[[], None]], None]) -> Iterator[None]:
    """Views on screen asked to refresh inside this block refresh once, after it: a job's
    result that changes the dataset, the selection and the outcomes in turn redraws each view
    once, not once per change. When the outermost block ends, each view's refresh is given to
    ``hand_over``, which runs it later: one at a time, the window can answer in between."""
    global _holds
    _holds += 1
    try:
        yield
    finally:
        _holds -= 1
        if not _holds:
            while _held:
                hand_over(_refresh_if_wanted(_held.pop(next(iter(_held)))))


def _refresh_if_wanted(view: "RefreshWhenShown") -> Callable[[], None]:
    def refresh() -> None:
        # A refresh handed over may run after the view was refreshed, hidden or deleted.
        if isValid(view) and view.stale and view.on_screen:
            view._refresh_now()
    return refresh


class RefreshWhenShown(QWidget):
    """A view whose :meth:`refresh` waits while its dock is a background tab or closed.

    Call :meth:`request_refresh` when the session changes: it refreshes now if the view is
    on screen, else once its dock's tab is selected or the dock is shown again. Expensive
    views (scatter plots, model sweeps) then cost nothing while nobody looks at them.
    """

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._stale = True
        self._dock_shown = True
        self._dock: Optional[QDockWidget] = None

    def refresh(self) -> None:
        """Rebuild the view from the session; subclasses override it (this one draws nothing)."""

    @property
    def on_screen(self) -> bool:
        """Whether the view is shown and its dock, if any, is the selected tab."""
        return self._dock_shown and self.isVisible()

    @property
    def stale(self) -> bool:
        """Whether a refresh is waiting for the view to be shown."""
        return self._stale

    def request_refresh(self) -> None:
        """Refresh now when on screen, else when next shown."""
        self._stale = True
        if self.on_screen:
            if _holds:
                _held[id(self)] = self
            else:
                self._refresh_now()

    def _refresh_now(self) -> None:
        self._stale = False
        self.refresh()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange:
            dock = self.parentWidget()
            if self._dock is not None:
                self._dock.visibilityChanged.disconnect(self._on_dock_visibility)
            self._dock = dock if isinstance(dock, QDockWidget) else None
            if self._dock is not None:
                self._dock.visibilityChanged.connect(self._on_dock_visibility)
        return super().event(event)

    def _on_dock_visibility(self, visible: bool) -> None:
        self._dock_shown = visible
        if visible and self._stale and self.isVisible():
            self._refresh_now()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if self._stale and self._dock_shown:
            self._refresh_now()
