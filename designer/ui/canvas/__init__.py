"""The node canvas: a Qt Graphics View bound to the document model through its events."""

from .breadcrumb import BreadcrumbBar
from .items import EdgeItem, NodeItem, PortItem
from .scene import CanvasScene
from .view import BLOCK_MIME, LAYER_MIME, CanvasView

__all__ = ["BLOCK_MIME", "LAYER_MIME", "BreadcrumbBar", "CanvasScene", "CanvasView", "EdgeItem",
           "NodeItem", "PortItem"]
