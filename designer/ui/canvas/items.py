"""Graphics items of the canvas: views of model nodes, ports and edges.

Items hold only what they need to draw: the id of the model object they show and text/geometry
derived from the model and the latest analysis. They never change the model themselves; the scene
and view turn user gestures into document edits, and model events update the items.
"""

from __future__ import annotations

from typing import Any

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

from designer.engine.model.blocks import is_ref, ref_text
from designer.engine.model.catalog import fmt_shape
from designer.engine.model.graph import Edge, Node, Problem
from designer.engine.model.nodes import kind_of
from designer.engine.model.program import ProgramError, program_code, program_summary
from designer.engine.model.shapes import NodeInfo

NODE_WIDTH = 172.0
HEADER_H = 22.0
LINE_H = 16.0
PORT_R = 5.5
PORT_SPACING = 20.0
PORT_TOP = HEADER_H + 22.0
SKIP_SPAN = 320.0  # an edge longer than this along one row is routed below the row
SKIP_DROP = 72.0  # how far below its ends, to clear the nodes in between  # y of the first input port and of a single-input layer's output
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
    "Blocks": "#36454f",
    "Code": "#8a6a45",
}
FALLBACK_COLOR = "#6b7280"
ERROR_COLOR = QColor("#d93025")
WARNING_COLOR = QColor("#e8a317")  # a consequence of an error elsewhere, or advice
SELECT_COLOR = QColor("#1a73e8")
TEXT_DARK = QColor("#1f2933")
TEXT_MUTED = QColor("#5f6b7a")
NODE_FILL = QColor("#ffffff")
#: the body of a frozen layer or block use (not trainable), at every zoom, with its lock
FROZEN_FILL = QColor("#e3eaf3")
NODE_BORDER = QColor("#b8c0cc")
EDGE_COLOR = QColor("#7f8a99")
PORT_FILL = QColor("#ffffff")
WHITE = QColor("#ffffff")
SHADOW = QColor(0, 0, 0, 28)
EDGE_HOVER = QColor("#4b5563")
LABEL_FILL = QColor(255, 255, 255, 235)
LABEL_BORDER = QColor("#d5dae1")
PAD = 10.0


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
    if is_ref(value):  # a block parameter's value at each use
        return ref_text(value).replace(" ", "")
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value) if value else "[]"
    return str(value)


def param_text(name: str, param: Any, value: Any) -> str:
    """How parameter ``name`` (its schema ``param``) reads on a node: ``name=value``, by type:
    a program as its ops ("cumsum, transpose"), a list of numbers as its length, never a repr."""
    kind = getattr(param, "type", None)
    if kind == "program" and isinstance(value, dict):
        return program_summary(value)
    if kind == "numbers" and isinstance(value, (list, tuple)):
        return f"{name}={len(value)} values"
    return f"{name}={fmt_value(value)}"


def program_inputs(spec: Any, params: dict[str, Any]) -> int | None:
    """How many inputs a node's program takes (None: it has no ``program`` parameter)."""
    for p in spec.params:
        if p.type == "program" and isinstance(params.get(p.name), dict):
            return len(params[p.name].get("inputs", []))
    return None


def program_tip(program: dict[str, Any], out: str, lines: int = 8) -> str:
    """A program's first ``lines`` lines of code (its inputs named in0, in1 ...), for a tooltip."""
    try:
        code = program_code(program, [f"in{i}" for i in range(len(program["inputs"]))], out)
    except (ProgramError, KeyError, IndexError, TypeError, ValueError):
        return program_summary(program)
    more = len(code) - lines
    return "\n".join(code[:lines]) + (f"\n… {more} more lines (the inspector shows them all)"
                                      if more > 0 else "")


class Fonts:
    """Fonts and their metrics shared by all items (made once a QGuiApplication exists)."""

    _made = False
    header: QFont
    name: QFont
    body: QFont
    small: QFont
    header_fm: QFontMetricsF
    name_fm: QFontMetricsF
    body_fm: QFontMetricsF
    small_fm: QFontMetricsF

    @classmethod
    def get(cls) -> type[Fonts]:
        if not cls._made:
            for attr, size, bold in (("header", 8.5, True), ("name", 9.5, True),
                                     ("body", 8.5, False), ("small", 7.5, False)):
                font = QFont()
                font.setPointSizeF(size)
                font.setBold(bold)
                setattr(cls, attr, font)
                setattr(cls, attr + "_fm", QFontMetricsF(font))
            cls._made = True
        return cls


def block_parts(params: dict) -> list[str]:
    """A block use's settings in short: its arguments, then what only the first copy takes."""
    args = params.get("args") or {}
    first = params.get("first") or {}
    parts = [f"{k}={fmt_value(v)}" for k, v in args.items()]
    if first:
        parts.append("first: " + " ".join(
            (k if v is True else f"no {k}") if isinstance(v, bool) else f"{k}={fmt_value(v)}"
            for k, v in first.items()))
    return parts


# Flags built once: combining PySide enums costs microseconds each, and paint runs often.
_LEFT = Qt.AlignVCenter | Qt.AlignLeft
_RIGHT = Qt.AlignVCenter | Qt.AlignRight
_CENTER = Qt.AlignCenter
_ELIDE = Qt.ElideRight
_SELECTED = QStyle.State_Selected
#: Below this zoom, nodes are drawn as plain coloured boxes and edges without labels.
DETAIL_ZOOM = 0.4


def lod(painter: QPainter) -> float:
    """The painter's zoom (level of detail)."""
    return painter.worldTransform().m11()


def _wrap(parts: list[str], width: float, fm: QFontMetricsF, max_lines: int) -> list[str]:
    """Greedy word wrap of ``key=value`` parts into at most ``max_lines`` lines."""
    lines: list[str] = []
    for part in parts:
        if lines and fm.horizontalAdvance(lines[-1] + "  " + part) <= width:
            lines[-1] += "  " + part
        elif len(lines) < max_lines:
            lines.append(part)
        else:
            lines[-1] += "  " + part  # elided when drawn
    return lines


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
        self._color = category_color(node_item.spec.category)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setZValue(2)

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.update()

    @property
    def node_id(self) -> str:
        return self.node_item.node_id

    def boundingRect(self) -> QRectF:
        r = PORT_R + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        return _port_shape()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if lod(painter) < DETAIL_ZOOM and not self.highlight:
            return
        color = self._color
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
        self.setToolTip(self.tooltip_text())
        self.update()

    def tooltip_text(self) -> str:
        node = self.node_item
        name = f"'{node.title}'"
        if self.is_output:
            shape = node.shape_text
            what = f"output of {name}" + (f": {shape}" if shape != "?" else "")
            return what + "\nDrag to an input to connect"
        info = node.info
        # input_shapes lists connected ports in order; for a merge with a gap that is not by index
        got = (info.input_shapes[self.index]
               if info and not node.spec.variadic and self.index < len(info.input_shapes)
               else None)
        what = f"input {self.index + 1} of {name}" if len(node.inputs) > 1 else f"input of {name}"
        if self.connected:
            return what + (f": receives {fmt_shape(got)}" if got is not None else "") + \
                "\nDrag away to disconnect, or onto another input to move the connection"
        return what + "\nDrag to an output to connect"

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.unsetCursor()
        self.update()

    def set_highlight(self, value: str | None) -> None:
        if value != self.highlight:
            self.highlight = value
            self.update()


_PORT_SHAPE: QPainterPath | None = None


def _port_shape() -> QPainterPath:
    global _PORT_SHAPE
    if _PORT_SHAPE is None:
        _PORT_SHAPE = QPainterPath()
        r = PORT_R + 4  # a forgiving target
        _PORT_SHAPE.addEllipse(QPointF(0, 0), r, r)
    return _PORT_SHAPE


# ------------------------------------------------------------------------------------------------
# Nodes
# ------------------------------------------------------------------------------------------------


class NodeItem(QGraphicsItem):
    """A rounded box showing one model node: type, name, key parameters, output shape, parameters.

    Its position mirrors ``node.pos`` (the top-left corner). It never moves itself: a drag is
    handled by the view, which writes positions to the model; the model's ``moved`` event then
    moves the item (:meth:`sync_pos`).
    """

    def __init__(self, node: Node, connected_ports: set[int] = frozenset(),
                 block_inputs: int | None = None) -> None:
        super().__init__()
        self.node_id = node.id
        self.spec = node.spec
        # a block use: its definition's Inputs, the ports it shows (blocks.input_count)
        self.block_inputs = block_inputs
        # a layer whose program names its inputs (Function): exactly those ports, no spare one
        self.program_inputs: int | None = None
        self._programs: list[dict] = []  # shown as code in the tooltip
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setZValue(1)
        self.problems: list[Problem] = []
        self.info: NodeInfo | None = None
        self.inputs: list[PortItem] = []
        self.output: PortItem | None = PortItem(self, True, 0) if self.spec.has_output else None
        self._height = 0.0
        self._name = node.name
        self._title = ""
        self._header = self.spec.display_name
        self._repeat_text = ""
        self._off = False  # switched on by a block parameter (drawn with a dashed outline)
        self.frozen = False  # not trainable (Node.frozen): a lock right of the name
        self.frozen_by_use = False  # a layer of a definition opened from a frozen block use
        self._param_lines: list[str] = []
        self._shape_text = ""
        self._shape_line = ""
        self._count_text = ""
        self._tip_dirty = True
        # the Inside overlay (ui.inside.overlay): a colour for the gradient norm, a badge, a tip
        self.mark_color: QColor | None = None
        self.mark_badge = ""
        self.mark_tip = ""
        self.sync_from_model(node, connected_ports)
        self.setPos(node.pos[0], node.pos[1])

    # -- model -> item ------------------------------------------------------------------------------

    def sync_pos(self, pos: tuple[float, float]) -> None:
        p = self.pos()
        if (p.x(), p.y()) != pos:
            self.setPos(pos[0], pos[1])

    def sync_from_model(self, node: Node, connected_ports: set[int]) -> None:
        """Refresh name, parameter text and input ports from the model node."""
        fonts = Fonts.get()
        spec = self.spec
        width = NODE_WIDTH - 2 * PAD
        self._name = node.name
        self.frozen = node.frozen
        self._elide_title()
        parts = [f"when {node.when}"] if node.when else []
        self._off = bool(node.when)
        if node.kind.is_block:
            parts += block_parts(node.params)
            self._header = fonts.header_fm.elidedText(
                f"▣ {node.params.get('block') or '?'}", _ELIDE, width - 34)
            repeat = node.params.get("repeat", 1)
            self._repeat_text = f"× {repeat}" if isinstance(repeat, int) and repeat > 1 else ""
        else:
            for key in spec.key_params:
                p = spec.param_map.get(key)
                # a parameter saved only when set shows only when set too (an Output's
                # aux_weight, a Flatten's start_dim and end_dim)
                if key in node.params and not (p is not None and p.saved_if_set
                                               and node.params[key] == p.default):
                    parts.append(param_text(key, p, node.params[key]))
            for p in spec.params:  # a size fixed by hand instead of inferred: worth seeing
                if (p.inferred and p.name not in spec.key_params
                        and node.params.get(p.name) is not None):
                    parts.append(f"{p.name}={fmt_value(node.params[p.name])}")
            for p in spec.params:  # a reference to a block parameter: worth seeing too
                if p.name not in spec.key_params and is_ref(node.params.get(p.name)):
                    parts.append(f"{p.name}={fmt_value(node.params[p.name])}")
        lines = 3 if node.kind.is_block else 2  # a use's arguments, then its first copy's
        self._param_lines = [fonts.body_fm.elidedText(line, _ELIDE, width)
                             for line in _wrap(parts, width, fonts.body_fm, lines)]
        self.program_inputs = program_inputs(spec, node.params)
        self._programs = [node.params[p.name] for p in spec.params
                          if p.type == "program" and isinstance(node.params.get(p.name), dict)]
        if spec.variadic:
            count = self._variadic_count(connected_ports)
        else:
            count = spec.num_inputs
        self._set_input_ports(count, connected_ports)
        self._layout()
        self._tip_changed()
        self._update_shape_line()
        self.update()

    def _variadic_count(self, connected: set[int]) -> int:
        """A merge shows one free input more than it uses; a block use its definition's Inputs,
        a layer with a program the inputs it names (and any port an edge still reaches, so the
        edge has an end; Problems flags it)."""
        top = max(connected) + 1 if connected else 0
        if self.block_inputs is not None:
            return max(self.block_inputs, top)
        if self.program_inputs is not None:
            return max(self.program_inputs, top)
        return max(self.spec.input_ports(len(connected)), top + 1)

    def set_ports(self, connected_inputs: set[int], output_connected: bool) -> bool:
        """Mark connected ports; a merge layer shows one free input more than it uses.
        Returns whether the input ports changed in number (so edges must be placed again)."""
        spec = self.spec
        before = len(self.inputs)
        if spec.variadic:
            count = self._variadic_count(connected_inputs)
            self._set_input_ports(count, connected_inputs)
            if count != before:
                self._layout()
                self.update()
        else:
            for port in self.inputs:
                port.set_connected(port.index in connected_inputs)
        if self.output is not None:
            self.output.set_connected(output_connected)
        return len(self.inputs) != before

    def set_analysis(self, info: NodeInfo | None, problems: list[Problem]) -> bool:
        """Show the latest analysis; returns whether anything visible changed."""
        if not self.spec.has_output:
            ins = info.input_shapes if info else []
            shape = fmt_shape(ins[0]) if ins else "?"
        else:
            shape = fmt_shape(info.output_shape) if info and info.output_shape is not None else "?"
        count = f"{fmt_count(info.params)} params" if info and info.params else ""
        old_messages = [p.message for p in self.problems]
        self.info = info
        changed = (shape, count, [p.message for p in problems]) != (
            self._shape_text, self._count_text, old_messages)
        self.problems = problems
        if not changed:
            return False
        self._shape_text, self._count_text = shape, count
        self._update_shape_line()
        self._tip_changed()
        self.update()
        return True

    def _update_shape_line(self) -> None:
        prefix = "→ " if self.spec.has_output else "in "
        self._shape_line = Fonts.get().body_fm.elidedText(
            prefix + self._shape_text, _ELIDE, (NODE_WIDTH - 2 * PAD) * 0.62)

    def _set_input_ports(self, count: int, connected: set[int]) -> None:
        while len(self.inputs) > count:
            port = self.inputs.pop()
            if port.scene() is not None:
                port.scene().removeItem(port)
            else:
                port.setParentItem(None)
        while len(self.inputs) < count:
            self.inputs.append(PortItem(self, False, len(self.inputs)))
        for port in self.inputs:
            port.set_connected(port.index in connected)

    def _layout(self) -> None:
        n_in = len(self.inputs)
        text_h = HEADER_H + 8 + LINE_H * (2 + max(1, len(self._param_lines))) + 8
        # Ports start at a fixed height so that a chain of single-input layers is a straight line.
        ports_h = PORT_TOP + PORT_SPACING * max(n_in - 1, 0) + 18
        height = max(text_h, ports_h)
        if height != self._height:
            self.prepareGeometryChange()
            self._height = height
        for i, port in enumerate(self.inputs):
            port.setPos(0.0, PORT_TOP + i * PORT_SPACING)
        if self.output is not None:
            self.output.setPos(NODE_WIDTH, self._output_y())

    def _output_y(self) -> float:
        return PORT_TOP + PORT_SPACING * max(len(self.inputs) - 1, 0) / 2

    def set_mark(self, color: QColor | None, badge: str = "", tip: str = "") -> None:
        """The Inside overlay's colour band (None: none), badge ("dead 80%") and tip line."""
        if (color, badge, tip) == (self.mark_color, self.mark_badge, self.mark_tip):
            return
        if bool(badge) != bool(self.mark_badge):
            self.prepareGeometryChange()  # the badge sits above the box
        self.mark_color, self.mark_badge, self.mark_tip = color, badge, tip
        self._tip_changed()
        self.update()

    def tooltip_text(self) -> str:
        """What the tooltip says: the problems of this node, or the layer's doc line."""
        text = self._tooltip_text() + self._frozen_tip()
        return f"{text}\nInside: {self.mark_tip}" if self.mark_tip else text

    def _tooltip_text(self) -> str:
        head = f"{self.spec.display_name} '{self._name}'"
        if self.problems:
            return head + "\n" + "\n".join(f"• {p.message}" for p in self.problems)
        if kind_of(self.spec.id).is_block:
            return (f"{head}: a use of {self._header.lstrip('▣ ')}\n{self.spec.doc}\n"
                    "Double-click to open its definition")
        return f"{head}\n{self.spec.doc}" + "".join(
            "\n\n" + program_tip(program, self._name) for program in self._programs)

    def _frozen_tip(self) -> str:
        if self.frozen:
            return "\nFrozen: training leaves its weights as they are"
        if self.frozen_by_use:
            return "\nFrozen with the block use this definition was opened from"
        return ""

    def set_frozen_by_use(self, on: bool) -> None:
        """Show the lock because the block use this definition was opened from is frozen."""
        if on != self.frozen_by_use:
            self.frozen_by_use = on
            self._elide_title()
            self._tip_changed()
            self.update()

    def _elide_title(self) -> None:
        locked = self.frozen or self.frozen_by_use
        self._title = Fonts.get().name_fm.elidedText(
            self._name, _ELIDE, NODE_WIDTH - 2 * PAD - (_LOCK_W + 4 if locked else 0))

    def _tip_changed(self) -> None:
        # Tooltips are set when first needed: setToolTip on 500 items costs ~0.2 s at open.
        self._tip_dirty = True
        if self.isUnderMouse():
            self.setToolTip(self.tooltip_text())
            self._tip_dirty = False

    def hoverEnterEvent(self, event) -> None:
        if self._tip_dirty:
            self.setToolTip(self.tooltip_text())
            self._tip_dirty = False
        super().hoverEnterEvent(event)

    # -- geometry and painting ---------------------------------------------------------------------

    @property
    def height(self) -> float:
        return self._height

    @property
    def title(self) -> str:
        return self._name

    @property
    def shape_text(self) -> str:
        """The output shape as shown ("?" when unknown)."""
        return self._shape_text or "?"

    def boundingRect(self) -> QRectF:
        top = _BADGE_H if self.mark_badge else 3
        return QRectF(-3, -top, NODE_WIDTH + 6, self._height + 3 + top)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_WIDTH, self._height), CORNER, CORNER)
        return path

    def input_anchor(self, index: int) -> QPointF:
        p = self.pos()
        if 0 <= index < len(self.inputs):
            return QPointF(p.x(), p.y() + PORT_TOP + index * PORT_SPACING)
        return QPointF(p.x(), p.y() + PORT_TOP)

    def output_anchor(self) -> QPointF:
        p = self.pos()
        return QPointF(p.x() + NODE_WIDTH, p.y() + self._output_y())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        rect = QRectF(0, 0, NODE_WIDTH, self._height)
        color = category_color(self.spec.category)
        selected = bool(option.state & _SELECTED)
        errors = any(p.is_error for p in self.problems)
        if self.problems:  # red for an error here, amber for warnings only (a quieter outline)
            pen = QPen(ERROR_COLOR if errors else WARNING_COLOR, 2.6 if selected else 2.2)
        elif selected:
            pen = QPen(SELECT_COLOR, 2.2)
        else:
            pen = QPen(NODE_BORDER, 1.0)

        locked = self.frozen or self.frozen_by_use
        fill = FROZEN_FILL if locked else NODE_FILL
        if lod(painter) < DETAIL_ZOOM:
            # Far away: a coloured box (red/blue outline kept), no text, no shadow.
            painter.setPen(pen if (self.problems or selected) else Qt.NoPen)
            painter.setBrush(fill)
            painter.drawRect(rect)
            painter.fillRect(QRectF(0, 0, NODE_WIDTH, HEADER_H * 1.6), color)
            if self.mark_color is not None:
                painter.fillRect(QRectF(0, HEADER_H * 1.6, NODE_WIDTH, HEADER_H), self.mark_color)
            if locked:  # the same lock, big enough to be seen from afar
                size = min(_FAR_LOCK_W, self._height - HEADER_H * 1.6 - 8)
                _draw_lock(painter, QRectF(NODE_WIDTH / 2 - size / 2,
                                           HEADER_H * 1.6 + (self._height - HEADER_H * 1.6 - size) / 2,
                                           size, size), width=4.0)
            return

        painter.setRenderHint(QPainter.Antialiasing)
        painter.setRenderHint(QPainter.TextAntialiasing)
        # Soft shadow, body, header band.
        painter.setPen(Qt.NoPen)
        painter.setBrush(SHADOW)
        painter.drawRoundedRect(rect.translated(1.5, 2.0), CORNER, CORNER)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, CORNER, CORNER)
        painter.setBrush(color)
        painter.drawPath(_header_path())
        if self.mark_color is not None:  # Inside overlay: a tint and a band under the header
            tint = QColor(self.mark_color)
            tint.setAlpha(90)
            painter.setBrush(tint)
            painter.drawRoundedRect(rect, CORNER, CORNER)
            painter.fillRect(QRectF(0, HEADER_H, NODE_WIDTH, _MARK_BAND), self.mark_color)

        # Outline: red for errors, amber for warnings, blue when selected, grey otherwise.
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawRoundedRect(rect, CORNER, CORNER)
        if self.problems and selected:
            painter.setPen(QPen(SELECT_COLOR, 1.0, Qt.DashLine))
            painter.drawRoundedRect(rect.adjusted(-3, -3, 3, 3), CORNER + 2, CORNER + 2)
        elif self._off and not selected:  # may be switched off: a dashed outline says so
            painter.setPen(QPen(TEXT_MUTED, 1.2, Qt.DashLine))
            painter.drawRoundedRect(rect.adjusted(-3, -3, 3, 3), CORNER + 2, CORNER + 2)

        fonts = Fonts.get()
        width = NODE_WIDTH - 2 * PAD
        painter.setFont(fonts.header)
        painter.setPen(WHITE)
        painter.drawText(QRectF(PAD, 0, width, HEADER_H), _LEFT, self._header)
        right = " ".join(t for t in (self._repeat_text, "⚠" if self.problems else "") if t)
        if right:
            painter.drawText(QRectF(PAD, 0, width, HEADER_H), _RIGHT, right)
        y = HEADER_H + 5
        painter.setFont(fonts.name)
        painter.setPen(TEXT_DARK)
        painter.drawText(QRectF(PAD, y, width, LINE_H + 2), _LEFT, self._title)
        if locked:
            _draw_lock(painter, QRectF(NODE_WIDTH - PAD - _LOCK_W, y + 1, _LOCK_W, LINE_H))
        y += LINE_H + 2
        painter.setFont(fonts.body)
        painter.setPen(TEXT_MUTED)
        for line in self._param_lines:
            painter.drawText(QRectF(PAD, y, width, LINE_H), _LEFT, line)
            y += LINE_H
        y = self._height - LINE_H - 6
        painter.setPen(ERROR_COLOR if self._shape_text == "?" and errors else TEXT_DARK)
        painter.drawText(QRectF(PAD, y, width, LINE_H), _LEFT, self._shape_line)
        if self._count_text:
            painter.setFont(fonts.small)
            painter.setPen(TEXT_MUTED)
            painter.drawText(QRectF(PAD, y, width, LINE_H), _RIGHT, self._count_text)
        if self.mark_badge:
            painter.setFont(fonts.small)
            w = fonts.small_fm.horizontalAdvance(self.mark_badge) + 10
            pill = QRectF(NODE_WIDTH - w - 4, -_BADGE_H + 2, w, _BADGE_H)
            painter.setPen(Qt.NoPen)
            painter.setBrush(ERROR_COLOR if "NaN" in self.mark_badge else WARNING_COLOR)
            painter.drawRoundedRect(pill, _BADGE_H / 2, _BADGE_H / 2)
            painter.setPen(WHITE)
            painter.drawText(pill, Qt.AlignCenter, self.mark_badge)


_MARK_BAND = 5.0  # the Inside overlay's colour band under the header
_LOCK_W = 10.0  # the frozen lock's width, right of the name
_FAR_LOCK_W = 34.0  # its width when zoomed out (no names drawn then)
_LOCK_COLOR = QColor(70, 90, 120)


def _draw_lock(painter: QPainter, box: QRectF, width: float = 1.6) -> None:
    """A padlock (a frozen layer or block use) drawn in ``box``: a shackle over a body."""
    w = box.width()
    if w <= 0:
        return
    body = QRectF(box.left(), box.bottom() - w * 0.8, w, w * 0.8)
    painter.save()
    painter.setPen(QPen(_LOCK_COLOR, width))
    painter.setBrush(Qt.NoBrush)
    shackle = QRectF(box.left() + w * 0.2, body.top() - w * 0.55, w * 0.6, w * 1.0)
    painter.drawArc(shackle, 0, 180 * 16)
    painter.drawLine(QPointF(shackle.left(), shackle.center().y()),
                     QPointF(shackle.left(), body.top()))
    painter.drawLine(QPointF(shackle.right(), shackle.center().y()),
                     QPointF(shackle.right(), body.top()))
    painter.setPen(Qt.NoPen)
    painter.setBrush(_LOCK_COLOR)
    painter.drawRoundedRect(body, 1.5, 1.5)
    painter.restore()
_BADGE_H = 15.0  # its badge's height, above the box

_HEADER_PATH: QPainterPath | None = None


def _header_path() -> QPainterPath:
    """The header band: rounded top corners, square bottom."""
    global _HEADER_PATH
    if _HEADER_PATH is None:
        band = QPainterPath()
        band.addRoundedRect(QRectF(0, 0, NODE_WIDTH, HEADER_H + CORNER), CORNER, CORNER)
        clip = QPainterPath()
        clip.addRect(QRectF(0, 0, NODE_WIDTH, HEADER_H))
        _HEADER_PATH = band.intersected(clip)
    return _HEADER_PATH


# ------------------------------------------------------------------------------------------------
# Edges
# ------------------------------------------------------------------------------------------------


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    """A smooth left-to-right curve from ``a`` to ``b``. A long edge along one row (a skip
    connection) dips below the row, so it does not run hidden behind the nodes it skips."""
    span = b.x() - a.x()
    path = QPainterPath(a)
    if span > SKIP_SPAN and abs(b.y() - a.y()) < PORT_SPACING * 3:
        low = max(a.y(), b.y()) + SKIP_DROP
        r = 40.0
        path.cubicTo(QPointF(a.x() + r, a.y()), QPointF(a.x() + r, low), QPointF(a.x() + 2 * r, low))
        path.lineTo(QPointF(b.x() - 2 * r, low))
        path.cubicTo(QPointF(b.x() - r, low), QPointF(b.x() - r, b.y()), b)
        return path
    dx = max(40.0, abs(span) * 0.5)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


class EdgeItem(QGraphicsItem):
    """A curve from a node's output to another node's input, labelled with the shape it carries."""

    def __init__(self, edge: Edge) -> None:
        super().__init__()
        self.edge = edge
        self.label = ""
        self._path = QPainterPath()
        self._rect = QRectF()
        self._label_rect = QRectF()
        self._stroke: QPainterPath | None = None
        self._tip_dirty = True
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setZValue(0)
        self.setAcceptHoverEvents(True)
        # Cached as a pixmap: while a node is dragged only its own edges are drawn again.
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self._hover = False

    def path(self) -> QPainterPath:
        return self._path

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        self.prepareGeometryChange()
        self._path = wire_path(a, b)
        self._stroke = None  # made when hit-testing needs it, not on every drag frame
        self._place_label()
        self._rect = self._path.controlPointRect().adjusted(-4, -4, 4, 4).united(self._label_rect)

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.prepareGeometryChange()
            self.label = text
            self._place_label()
            self._rect = self._path.controlPointRect().adjusted(-4, -4, 4, 4).united(
                self._label_rect)
            self.update()

    def _place_label(self) -> None:
        """Put the shape label at the middle of the curve, if it fits between the two nodes
        (a label hidden under a node would be clipped; the tooltip always has the shape)."""
        self._tip_dirty = True
        if not self.label or self._path.isEmpty():
            self._label_rect = QRectF()
            return
        fm = Fonts.get().small_fm
        w = fm.horizontalAdvance(self.label) + 10
        h = fm.height() + 4
        start, end = self._path.pointAtPercent(0.0), self._path.currentPosition()
        if end.x() - start.x() < w + 12 and abs(end.y() - start.y()) < 2 * h:
            self._label_rect = QRectF()
            return
        mid = self._path.pointAtPercent(0.5)
        self._label_rect = QRectF(mid.x() - w / 2, mid.y() - h / 2, w, h)

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        if self._tip_dirty:
            self.setToolTip(f"carries {self.label}" if self.label and self.label != "?"
                            else "shape unknown: see the problems of the layers before it")
            self._tip_dirty = False
        self.update()

    @property
    def end_point(self) -> QPointF:
        return self._path.currentPosition()

    def boundingRect(self) -> QRectF:
        return self._rect

    def shape(self) -> QPainterPath:
        if self._stroke is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(12)
            self._stroke = stroker.createStroke(self._path)
            if not self._label_rect.isNull():
                self._stroke.addRect(self._label_rect)
        return self._stroke

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        selected = bool(option.state & _SELECTED)
        color = SELECT_COLOR if selected else (EDGE_HOVER if self._hover else EDGE_COLOR)
        detailed = lod(painter) >= DETAIL_ZOOM
        painter.setRenderHint(QPainter.Antialiasing, detailed)
        painter.setPen(QPen(color, 2.6 if selected else 1.8, Qt.SolidLine, Qt.RoundCap))
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self._path)
        if detailed and self.label and not self._label_rect.isNull():
            painter.setBrush(LABEL_FILL)
            painter.setPen(QPen(SELECT_COLOR if selected else LABEL_BORDER, 1.0))
            painter.drawRoundedRect(self._label_rect, 4, 4)
            painter.setFont(Fonts.get().small)
            painter.setPen(TEXT_DARK if self.label != "?" else ERROR_COLOR)
            painter.drawText(self._label_rect, _CENTER, self.label)


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


