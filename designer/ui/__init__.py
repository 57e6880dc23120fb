"""The designer window (PySide6). Observes the engine; every edit goes through a document command.

``designer.ui.document.Document`` is the edited project with its undo stack and live analysis;
``designer.ui.canvas.CanvasView`` is the node canvas.
"""
