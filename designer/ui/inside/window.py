"""Puts Inside into the main window: the dock (View > Inside, beside Training), the gradient
overlay (View > Gradient Overlay) and their wiring to the canvas, the training panel and History.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction

from .overlay import InsideOverlay
from .panel import InsideDock


class InsideWiring(QObject):
    """The dock and overlay of one main window, and the slots between them and the window's
    canvas view, training panel and History (all in the GUI thread)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.dock = InsideDock(window.document, window)
        # beside the bottom panels, not a tab among them: Train raises the Training tab, and a
        # hidden Inside would stop observing
        window.addDockWidget(Qt.BottomDockWidgetArea, self.dock, Qt.Horizontal)
        self.dock.hide()  # observing costs nothing until it is shown
        self.panel = self.dock.panel
        self.training = window.training.panel
        self.overlay = InsideOverlay(window.document, window.view, self.panel.store, self)
        self.overlay_action = QAction("&Gradient Overlay", window, checkable=True)
        self.overlay_action.setStatusTip(
            "Colour each layer by its latest gradient norm (log scale) and mark layers with "
            "mostly dead units or non-finite values; the run is observed while it is on")
        self.overlay_action.toggled.connect(self.set_overlay)

        window.view.selection_changed.connect(self.panel.set_selection)
        self.training.inside_event.connect(self.panel.handle)
        self.training.run_started.connect(self._on_run_started)
        self.training.run_finished.connect(self._on_run_finished)
        self.panel.observe_requested.connect(self.training.set_inside)
        self.training.history.run_selected.connect(self.replay_run)
        self.dock.visibilityChanged.connect(self._on_visible)
        # opened from the menu (not a restored layout): beside Training, each with room to read
        self.dock.toggleViewAction().triggered.connect(
            lambda on: on and QTimer.singleShot(0, self.share_bottom))
        self._add_to_view_menu()

    def share_bottom(self) -> None:
        """Give the bottom panels (Training and the others tabbed with it) and Inside about
        55 : 45 of the window's width, rather than Inside its wish and Training the rest."""
        if not self.dock.isVisible() or self.dock.isFloating():
            return
        width = self.window.width()
        self.window.resizeDocks([self.window.training, self.dock],
                                [width * 55 // 100, width * 45 // 100], Qt.Horizontal)

    def _add_to_view_menu(self) -> None:
        menu = next((a.menu() for a in self.window.menuBar().actions()
                     if a.text().replace("&", "") == "View"), None)
        if menu is None:
            return
        separators = [a for a in menu.actions() if a.isSeparator()]
        before = separators[-1] if len(separators) > 1 else None  # above "Reset layout"
        menu.insertActions(before, [self.dock.toggleViewAction(), self.overlay_action])

    def set_overlay(self, on: bool) -> None:
        self.overlay.set_enabled(on)
        self.panel.set_also_observe(on)
        if on and not self.panel.store.captures:
            self.replay_latest()
        self.overlay.refresh()

    def _on_run_started(self) -> None:
        self.panel.start_live(self.training.run_dir)

    def _on_run_finished(self, *_: Any) -> None:
        self.panel.refresh_text()  # last.pt is there now: a small layer's learned values

    def replay_run(self, run_dir) -> None:
        """A run picked in History: the panel and the overlay replay it (not while a run
        trains: the live one is shown then)."""
        if run_dir is not None and not self.training.is_running():
            self.panel.replay(run_dir)
            self.overlay.refresh()

    def replay_latest(self) -> None:
        if self.training.is_running():
            return
        runs = [r for r in self.training.history.runs if r.started is not None]
        if runs:
            self.panel.replay(max(runs, key=lambda r: r.started).path)

    def _on_visible(self, visible: bool) -> None:
        if visible and not self.panel.store.captures:
            self.replay_latest()
