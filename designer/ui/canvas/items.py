"""Graphics items of the canvas: views of model nodes, ports and edges.

Items hold only what they need to draw: the id of the model object they show and text/geometry
derived from the model and the latest analysis. They never change the model themselves; the scene
and view turn user gestures into document edits, and model events update the items.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyle, QStyleOptionGraphicsItem

from designer.engine.catalog import fmt_shape
from designer.engine.graph import Edge, Node, Problem
from designer.engine.shapes import NodeInfo

if TYPE_CHECKING:
    from .scene import CanvasScene

NODE_WIDTH = 190.0
HEADER_H = 22.0
LINE_H = 16.0
PORT_R = 5.5
PORT_SPACING = 20.0
CORNER = 7.0

CATEGORY_COLORS: dict[str, str] = {
    "Input / Output": "#3f8fa6",
    "Core": "#3b74d4",
    "Convolution": "#7a5bd3",
    "Pooling": "#2a9d86",
    "Normalization": "#cf8f24",
    "Shape": "#7d8591",
    "Activation": "#dd5f48",
    "Recurrent & Attention": "#bd4487",
    "Merge": "#4f9a38",
}
FALLBACK_COLOR = "#6b7280"
ERROR_COLOR = QColor("#d93025")
SELECT_COLOR = QColor("#1a73e8")
TEXT_DARK = QColor("#1f2933")
TEXT_MUTED = QColor("#5f6b7a")
NODE_FILL = QColor("#ffffff")
NODE_BORDER = QColor("#b8c0cc")
EDGE_COLOR = QColor("#7f8a99")
PORT_FILL = QColor("#ffffff")


def category_color(category: str) -> QColor:
    return QColor(CATEGORY_COLORS.get(category, FALLBACK_COLOR))


def fmt_count(n: int) -> str:
    """1234567 -> '1.23M'; small counts stay exact."""
    if n < 1000:
        return str(n)
    for unit, div in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if n < div * 1000 or unit == "G":
            v = n / div
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return str(n)  # pragma: no cover


def fmt_value(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value) if value else "[]"
    return str(value)


class Fonts:
    """Fonts shared by all items (created lazily, once a QGuiApplication exists)."""

    _made = False
    header: QFont
    name: QFont
    body: QFont
    small: QFont

    @classmethod
    def get(cls) -> type[Fonts]:
        if not cls._made:
            cls.header = QFont()
            cls.header.setPointSizeF(8.5)
            cls.header.setBold(True)
            cls.name = QFont()
            cls.name.setPointSizeF(9.5)
            cls.name.setBold(True)
            cls.body = QFont()
            cls.body.setPointSizeF(8.5)
            cls.small = QFont()
            cls.small.setPointSizeF(7.5)
            cls._made = True
        return cls


# ------------------------------------------------------------------------------------------------
# Ports
# ------------------------------------------------------------------------------------------------


class PortItem(QGraphicsItem):
    """An input (left edge) or output (right edge) port of a node. Drag from it to connect."""

    def __init__(self, node_item: NodeItem, is_output: bool, index: int) -> None:
        super().__init__(node_item)
        self.node_item = node_item
        self.is_output = is_output
        self.index = index
        self.connected = False
        self.highlight: str | None = None  # None, "ok" or "bad" while a wire hovers over it
        self.setAcceptHoverEvents(True)
        self._hover = False
        self.setZValue(2)

    @property
    def node_id(self) -> str:
        return self.node_item.node_id

    def boundingRect(self) -> QRectF:
        r = PORT_R + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        r = PORT_R + 4  # a forgiving target
        path.addEllipse(QPointF(0, 0), r, r)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        color = category_color(self.node_item.spec.category)
        if self.highlight == "ok":
            color = QColor("#1e8e3e")
        elif self.highlight == "bad":
            color = ERROR_COLOR
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(color, 2.0))
        r = PORT_R + (1.5 if (self._hover or self.highlight) else 0)
        painter.setBrush(QBrush(color if self.connected else PORT_FILL))
        painter.drawEllipse(QPointF(0, 0), r, r)

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.setCursor(Qt.CrossCursor)
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.unsetCursor()
        self.update()

    def set_highlight(self, value: str | None) -> None:
        if value != self.highlight:
            self.highlight = value
            self.update()


# ------------------------------------------------------------------------------------------------
# Nodes
# ------------------------------------------------------------------------------------------------


class NodeItem(QGraphicsItem):
    """A rounded box showing one model node: type, name, key parameters, output shape, parameters.

    Its position mirrors ``node.pos`` (the top-left corner). When the user drags it, the scene
    writes the new position to the model, which answers with a ``moved`` event.
    """

    def __init__(self, scene: CanvasScene, node: Node) -> None:
        super().__init__()
        self._canvas = scene
        self.node_id = node.id
        self.spec = node.spec
        self.setFlags(QGraphicsItem.ItemIsSelectable | QGraphicsItem.ItemIsMovable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setZValue(1)
        self._syncing = False
        self.problems: list[Problem] = []
        self.info: NodeInfo | None = None
        self.inputs: list[PortItem] = []
        self.output: PortItem | None = PortItem(self, True, 0) if self.spec.has_output else None
        self._height = 0.0
        self._name = node.name
        self._param_text = ""
        self._shape_text = ""
        self._count_text = ""
        self.sync_from_model(node, connected_ports=set())
        self.sync_pos(node.pos)

    # -- model -> item ------------------------------------------------------------------------------

    def sync_pos(self, pos: tuple[float, float]) -> None:
        if (self.pos().x(), self.pos().y()) == pos:
            return
        self._syncing = True
        try:
            self.setPos(pos[0], pos[1])
        finally:
            self._syncing = False

    def sync_from_model(self, node: Node, connected_ports: set[int]) -> None:
        """Refresh name, parameter text and input ports from the model node."""
        self._name = node.name
        spec = self.spec
        parts = []
        for key in spec.key_params:
            if key in node.params:
                parts.append(f"{key}={fmt_value(node.params[key])}")
        self._param_text = "  ".join(parts)
        if spec.variadic:
            top = max(connected_ports) + 1 if connected_ports else 0
            count = max(spec.input_ports(len(connected_ports)), top + 1)
        else:
            count = spec.num_inputs
        self._set_input_ports(count, connected_ports)
        self._layout()
        self._refresh_tooltip()
        self.update()

    def set_analysis(self, info: NodeInfo | None, problems: list[Problem]) -> bool:
        """Show the latest analysis; returns whether anything visible changed."""
        shape = fmt_shape(info.output_shape) if info and info.output_shape is not None else "?"
        if not self.spec.has_output:
            ins = info.input_shapes if info else []
            shape = fmt_shape(ins[0]) if ins else "?"
        count = f"{fmt_count(info.params)} params" if info and info.params else ""
        messages = [p.message for p in problems]
        old = (self._shape_text, self._count_text, [p.message for p in self.problems])
        self.info = info
        self.problems = problems
        if old == (shape, count, messages):
            return False
        self._shape_text, self._count_text = shape, count
        self._refresh_tooltip()
        self.update()
        return True

    @property
    def has_problems(self) -> bool:
        return any(p.is_error for p in self.problems) or bool(self.problems)

    def _set_input_ports(self, count: int, connected: set[int]) -> None:
        while len(self.inputs) > count:
            port = self.inputs.pop()
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        while len(self.inputs) < count:
            self.inputs.append(PortItem(self, False, len(self.inputs)))
        for port in self.inputs:
            port.connected = port.index in connected
            port.update()

    def _layout(self) -> None:
        n_in = len(self.inputs)
        text_h = HEADER_H + 8 + LINE_H * 3 + 8
        ports_h = HEADER_H + PORT_SPACING * max(n_in, 1) + 10
        height = max(text_h, ports_h)
        if height != self._height:
            self.prepareGeometryChange()
            self._height = height
        body_top = HEADER_H
        span = height - body_top
        for i, port in enumerate(self.inputs):
            y = body_top + span / 2 + (i - (n_in - 1) / 2) * PORT_SPACING
            port.setPos(0.0, y)
        if self.output is not None:
            self.output.setPos(NODE_WIDTH, body_top + span / 2)

    def _refresh_tooltip(self) -> None:
        head = f"{self.spec.display_name} '{self._name}'"
        if self.problems:
            tip = head + "\n" + "\n".join(f"• {p.message}" for p in self.problems)
        else:
            tip = f"{head}\n{self.spec.doc}"
        self.setToolTip(tip)

    # -- geometry and painting ---------------------------------------------------------------------

    @property
    def height(self) -> float:
        return self._height

    def boundingRect(self) -> QRectF:
        return QRectF(-3, -3, NODE_WIDTH + 6, self._height + 6)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_WIDTH, self._height), CORNER, CORNER)
        return path

    def input_anchor(self, index: int) -> QPointF:
        if 0 <= index < len(self.inputs):
            return self.mapToScene(self.inputs[index].pos())
        return self.mapToScene(QPointF(0.0, self._height / 2))

    def output_anchor(self) -> QPointF:
        return self.mapToScene(QPointF(NODE_WIDTH, HEADER_H + (self._height - HEADER_H) / 2))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        fonts = Fonts.get()
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setRenderHint(QPainter.TextAntialiasing)
        rect = QRectF(0, 0, NODE_WIDTH, self._height)
        color = category_color(self.spec.category)
        selected = bool(option.state & QStyle.State_Selected)

        # Soft shadow, body, header band.
        painter.setPen(Qt.NoPen)
        painter.setBrush(QColor(0, 0, 0, 28))
        painter.drawRoundedRect(rect.translated(1.5, 2.0), CORNER, CORNER)
        painter.setBrush(NODE_FILL)
        painter.drawRoundedRect(rect, CORNER, CORNER)
        header = QPainterPath()
        header.addRoundedRect(QRectF(0, 0, NODE_WIDTH, HEADER_H + CORNER), CORNER, CORNER)
        clip = QPainterPath()
        clip.addRect(QRectF(0, 0, NODE_WIDTH, HEADER_H))
        painter.setBrush(color)
        painter.drawPath(header.intersected(clip))

        # Outline: red for problems, blue when selected, grey otherwise.
        if self.problems:
            pen = QPen(ERROR_COLOR, 2.6 if selected else 2.2)
        elif selected:
            pen = QPen(SELECT_COLOR, 2.2)
        else:
            pen = QPen(NODE_BORDER, 1.0)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawRoundedRect(rect, CORNER, CORNER)
        if self.problems and selected:
            painter.setPen(QPen(SELECT_COLOR, 1.0, Qt.DashLine))
            painter.drawRoundedRect(rect.adjusted(-3, -3, 3, 3), CORNER + 2, CORNER + 2)

        pad = 10.0
        width = NODE_WIDTH - 2 * pad
        # Header: the layer type.
        painter.setFont(fonts.header)
        painter.setPen(QColor("#ffffff"))
        fm = QFontMetricsF(fonts.header)
        painter.drawText(QRectF(pad, 0, width, HEADER_H), Qt.AlignVCenter | Qt.AlignLeft,
                         fm.elidedText(self.spec.display_name, Qt.ElideRight, width))
        if self.problems:
            painter.drawText(QRectF(pad, 0, width, HEADER_H), Qt.AlignVCenter | Qt.AlignRight, "⚠")

        y = HEADER_H + 5
        painter.setFont(fonts.name)
        painter.setPen(TEXT_DARK)
        fm = QFontMetricsF(fonts.name)
        painter.drawText(QRectF(pad, y, width, LINE_H + 2), Qt.AlignVCenter | Qt.AlignLeft,
                         fm.elidedText(self._name, Qt.ElideRight, width))
        y += LINE_H + 2
        painter.setFont(fonts.body)
        painter.setPen(TEXT_MUTED)
        fm = QFontMetricsF(fonts.body)
        if self._param_text:
            painter.drawText(QRectF(pad, y, width, LINE_H), Qt.AlignVCenter | Qt.AlignLeft,
                             fm.elidedText(self._param_text, Qt.ElideRight, width))
        y = self._height - LINE_H - 6
        shape = ("in " if not self.spec.has_output else "→ ") + self._shape_text
        painter.setPen(ERROR_COLOR if self._shape_text == "?" and self.problems else TEXT_DARK)
        painter.drawText(QRectF(pad, y, width, LINE_H), Qt.AlignVCenter | Qt.AlignLeft,
                         fm.elidedText(shape, Qt.ElideRight, width * 0.62))
        if self._count_text:
            painter.setFont(fonts.small)
            painter.setPen(TEXT_MUTED)
            painter.drawText(QRectF(pad, y, width, LINE_H), Qt.AlignVCenter | Qt.AlignRight,
                             self._count_text)

    # -- user gestures ------------------------------------------------------------------------------

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.ItemPositionChange and not self._syncing:
            return self._canvas.snap(value)
        if change == QGraphicsItem.ItemPositionHasChanged and not self._syncing:
            self._canvas.item_moved_by_user(self)
        return super().itemChange(change, value)


# ------------------------------------------------------------------------------------------------
# Edges
# ------------------------------------------------------------------------------------------------


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    """A smooth left-to-right cubic curve from ``a`` to ``b``."""
    dx = max(40.0, abs(b.x() - a.x()) * 0.5)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


class EdgeItem(QGraphicsPathItem):
    """A curve from a node's output to another node's input, labelled with the shape it carries."""

    def __init__(self, edge: Edge) -> None:
        super().__init__()
        self.edge = edge
        self.label = ""
        self._label_rect = QRectF()
        self.setFlags(QGraphicsItem.ItemIsSelectable)
        self.setZValue(0)
        self.setAcceptHoverEvents(True)
        self._hover = False
        self._stroke = QPainterPath()

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        path = wire_path(a, b)
        self.prepareGeometryChange()
        self.setPath(path)
        stroker = QPainterPathStroker()
        stroker.setWidth(12)
        self._stroke = stroker.createStroke(path)
        self._place_label()

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.prepareGeometryChange()
            self.label = text
            self._place_label()
            self.update()

    def _place_label(self) -> None:
        if not self.label:
            self._label_rect = QRectF()
            return
        fm = QFontMetricsF(Fonts.get().small)
        w = fm.horizontalAdvance(self.label) + 10
        h = fm.height() + 4
        mid = self.path().pointAtPercent(0.5)
        self._label_rect = QRectF(mid.x() - w / 2, mid.y() - h / 2, w, h)

    @property
    def end_point(self) -> QPointF:
        return self.path().pointAtPercent(1.0)

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-4, -4, 4, 4).united(self._label_rect)

    def shape(self) -> QPainterPath:
        path = QPainterPath(self._stroke)
        if not self._label_rect.isNull():
            path.addRect(self._label_rect)
        return path

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        selected = bool(option.state & QStyle.State_Selected)
        color = SELECT_COLOR if selected else (QColor("#4b5563") if self._hover else EDGE_COLOR)
        painter.setPen(QPen(color, 2.6 if selected else 1.8, Qt.SolidLine, Qt.RoundCap))
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path())
        # Arrow head at the input end.
        path = self.path()
        end = path.pointAtPercent(1.0)
        before = path.pointAtPercent(0.97)
        angle = math.atan2(end.y() - before.y(), end.x() - before.x())
        size = 7.0
        p1 = end - QPointF(math.cos(angle - 0.45) * size, math.sin(angle - 0.45) * size)
        p2 = end - QPointF(math.cos(angle + 0.45) * size, math.sin(angle + 0.45) * size)
        head = QPainterPath(end)
        head.lineTo(p1)
        head.lineTo(p2)
        head.closeSubpath()
        painter.setPen(Qt.NoPen)
        painter.setBrush(color)
        painter.drawPath(head)
        if self.label and not self._label_rect.isNull():
            painter.setBrush(QColor(255, 255, 255, 235))
            painter.setPen(QPen(QColor("#d5dae1") if not selected else SELECT_COLOR, 1.0))
            painter.drawRoundedRect(self._label_rect, 4, 4)
            painter.setFont(Fonts.get().small)
            painter.setPen(TEXT_DARK if self.label != "?" else ERROR_COLOR)
            painter.drawText(self._label_rect, Qt.AlignCenter, self.label)


class WireItem(QGraphicsPathItem):
    """The live line that follows the cursor while connecting."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(10)
        self.set_valid(None)

    def set_valid(self, ok: bool | None) -> None:
        color = QColor("#1e8e3e") if ok else (ERROR_COLOR if ok is False else SELECT_COLOR)
        pen = QPen(color, 2.2, Qt.DashLine if ok is None else Qt.SolidLine, Qt.RoundCap)
        self.setPen(pen)

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        self.setPath(wire_path(a, b))


