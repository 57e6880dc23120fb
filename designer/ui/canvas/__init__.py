"""The node canvas: a Qt Graphics View bound to the document model through its events."""

from .items import EdgeItem, NodeItem, PortItem
from .scene import CanvasScene
from .view import LAYER_MIME, CanvasView

__all__ = ["LAYER_MIME", "CanvasScene", "CanvasView", "EdgeItem", "NodeItem", "PortItem"]
