"""The New dialog: start from a blank design or from a template of the gallery.

Each template shows its name, a small picture of its graph (drawn with QPainter from the node
positions stored in the file), its parameter count, dataset and what it teaches. Templates come
from :func:`designer.engine.document.templates.list_templates`; a broken template is listed with its error
and cannot be chosen.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..engine.document.project import Project, ProjectError, load_project
from ..engine.document.templates import TemplateError, TemplateInfo, list_templates, load_template
from ..engine.model.catalog import CATALOG
from ..engine.model.graph import Graph
from ..engine.train.config import DIGITS_SHAPE
from .canvas.items import category_color

THUMB = QSize(200, 120)
BLANK = "__blank__"

def blank_project() -> Project:
    """A new design with an Input and an Output, ready for layers in between. Its Input takes
    the default dataset's samples (the offline 8x8 digits), so the dataset panel's fit status is
    true from the start: only the layers in between are missing."""
    g = Graph()
    g.add_node("Input", "input1", {"shape": list(DIGITS_SHAPE)}, (0.0, 0.0))
    g.add_node("Output", "output1", {}, (460.0, 0.0))
    return Project(name="Untitled", networks={"model": g}, dataset={"kind": "digits"})


def graph_thumbnail(graph: Graph, size: QSize = THUMB) -> QPixmap:
    """A small picture of ``graph``: nodes as coloured boxes at their positions, edges as lines."""
    pix = QPixmap(size)
    pix.fill(QColor("#fafafa"))
    nodes = list(graph.nodes.values())
    if not nodes:
        return pix
    xs = [n.pos[0] for n in nodes]
    ys = [n.pos[1] for n in nodes]
    node_w, node_h = 150.0, 70.0  # roughly a canvas node, in scene units
    left, top = min(xs), min(ys)
    width = max(xs) - left + node_w
    height = max(ys) - top + node_h
    margin = 8.0
    scale = min((size.width() - 2 * margin) / width, (size.height() - 2 * margin) / height)
    ox = (size.width() - width * scale) / 2
    oy = (size.height() - height * scale) / 2

    def rect(n) -> QRectF:
        return QRectF(ox + (n.pos[0] - left) * scale, oy + (n.pos[1] - top) * scale,
                      node_w * scale, node_h * scale)

    p = QPainter(pix)
    p.setRenderHint(QPainter.Antialiasing)
    p.setPen(QPen(QColor("#888888"), 1.2))
    for e in graph.edges:
        a, b = graph.nodes.get(e.src), graph.nodes.get(e.dst)
        if a is None or b is None:
            continue
        ra, rb = rect(a), rect(b)
        p.drawLine(QPointF(ra.right(), ra.center().y()), QPointF(rb.left(), rb.center().y()))
    for n in nodes:
        spec = CATALOG.get(n.type)
        color = category_color(spec.category if spec else "")  # the canvas's colours
        p.setPen(QPen(color.darker(140), 1))
        p.setBrush(color)
        r = rect(n)
        p.drawRoundedRect(r, min(4.0, r.height() / 4), min(4.0, r.height() / 4))
    p.end()
    return pix


def _blank_icon() -> QPixmap:
    return graph_thumbnail(blank_project().graph)


class NewDialog(QDialog):
    """Pick a blank design or a template. After ``exec()`` returns Accepted, call
    :meth:`project` for the chosen project (a fresh copy, never the template file itself)."""

    def __init__(self, parent: QWidget | None = None, directory: str | Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New design")
        self.resize(900, 560)
        self._directory = directory
        self.templates: dict[str, TemplateInfo] = {}

        self.list = QListWidget(self)
        self.list.setViewMode(QListView.IconMode)
        self.list.setIconSize(THUMB)
        self.list.setGridSize(QSize(THUMB.width() + 24, THUMB.height() + 46))
        self.list.setResizeMode(QListView.Adjust)
        self.list.setMovement(QListView.Static)
        self.list.setWordWrap(True)
        self.list.setSpacing(4)

        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.RichText)
        self.details.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.details.setMinimumWidth(260)
        self.details.setMaximumWidth(320)
        # long descriptions (the GAN templates') scroll instead of being cut off
        self.details_scroll = QScrollArea(self)
        self.details_scroll.setWidget(self.details)
        self.details_scroll.setWidgetResizable(True)
        self.details_scroll.setFrameShape(QFrame.NoFrame)
        self.details_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.details_scroll.setFixedWidth(340)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        self.buttons.button(QDialogButtonBox.Ok).setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        top = QHBoxLayout()
        top.addWidget(self.list, 1)
        top.addWidget(self.details_scroll)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Start from a blank design or a template:"))
        layout.addLayout(top, 1)
        layout.addWidget(self.buttons)

        blank = QListWidgetItem(QIcon(_blank_icon()), "Blank design")
        blank.setData(Qt.UserRole, BLANK)
        self.list.addItem(blank)
        for info in list_templates(directory):
            self.templates[info.id] = info
            label = info.name
            if info.params is not None:
                label += f"\n{_count(info.params)} parameters"
                if info.networks > 1:
                    label += f" ({info.networks} networks)"
            item = QListWidgetItem(QIcon(self._thumbnail(info)), label)
            item.setData(Qt.UserRole, info.id)
            item.setToolTip(info.description + (f"\n\nParameters: {params_text(info)}"
                                                if info.networks > 1 and info.params else ""))
            if info.error and info.params is None and info.layers == 0:
                item.setFlags(item.flags() & ~Qt.ItemIsSelectable)
            self.list.addItem(item)

        self.list.currentItemChanged.connect(self._show_details)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        self.list.setCurrentRow(0)

    # -- API -----------------------------------------------------------------------------------

    def select(self, template_id: str) -> None:
        """Select an entry (a template id or :data:`BLANK`)."""
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) == template_id:
                self.list.setCurrentRow(i)
                return
        raise KeyError(template_id)

    def chosen_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item is not None else None

    def project(self) -> Project:
        """The chosen design as a new project (raises TemplateError for a broken template)."""
        chosen = self.chosen_id()
        if chosen in (None, BLANK):
            return blank_project()
        return load_template(chosen, self._directory)

    # -- internals -----------------------------------------------------------------------------

    def _thumbnail(self, info: TemplateInfo) -> QPixmap:
        try:
            networks = list(load_project(info.path).networks.values())
        except ProjectError:
            return QPixmap(THUMB)
        if len(networks) == 1:
            return graph_thumbnail(networks[0])
        # several networks (a GAN's generator and discriminator): one band each, top to bottom
        pix = QPixmap(THUMB)
        pix.fill(QColor("#fafafa"))
        band = THUMB.height() // len(networks)
        p = QPainter(pix)
        for i, graph in enumerate(networks):
            p.drawPixmap(0, i * band, graph_thumbnail(graph, QSize(THUMB.width(), band)))
            if i:
                p.setPen(QPen(QColor("#cccccc"), 1, Qt.DashLine))
                p.drawLine(4, i * band, THUMB.width() - 4, i * band)
        p.end()
        return pix

    def _show_details(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is None:
            self.details.setText("")
            return
        tid = item.data(Qt.UserRole)
        ok = self.buttons.button(QDialogButtonBox.Ok)
        if tid == BLANK:
            self.details.setText("<h3>Blank design</h3><p>An Input and an Output. Drag layers "
                                 "from the palette between them and connect them.</p>")
            ok.setEnabled(True)
            return
        info = self.templates[tid]
        parts = [f"<h3>{_esc(info.name)}</h3>", f"<p>{_esc(info.description)}</p>"]
        if info.teaches:
            parts.append(f"<p><b>What it teaches:</b> {_esc(info.teaches)}</p>")
        facts = [f"<b>Layers:</b> {info.layers}"]
        if info.params is not None:
            facts.append(f"<b>Parameters:</b> {_esc(params_text(info))}")
        if info.dataset:
            facts.append(f"<b>Data:</b> {_esc(info.dataset)}")
        if info.expected:
            facts.append(f"<b>Expect:</b> {_esc(info.expected)}")
        parts.append("<p>" + "<br>".join(facts) + "</p>")
        if info.error:
            parts.append(f"<p style='color:#c0392b'><b>Problem:</b> {_esc(info.error)}</p>")
        self.details.setText("".join(parts))
        ok.setEnabled(info.layers > 0 or info.error is None)


def network_params(info: TemplateInfo) -> dict[str, int] | None:
    """Parameters of each network of a template, in file order; None if it cannot be analysed."""
    from ..engine.model.shapes import analyze

    key = (str(info.path), info.params)
    if key not in _SPLIT_CACHE:
        try:
            networks = load_project(info.path).networks
            analyses = {name: analyze(g) for name, g in networks.items()}
            _SPLIT_CACHE[key] = (None if any(a.errors for a in analyses.values())
                                 else {n: a.total_params for n, a in analyses.items()})
        except ProjectError:
            _SPLIT_CACHE[key] = None
    return _SPLIT_CACHE[key]


_SPLIT_CACHE: dict[tuple[str, int | None], dict[str, int] | None] = {}


def params_text(info: TemplateInfo) -> str:
    """The parameter count of all networks together; for several networks, also each one's share:
    ``2.04M (2,043,793): generator 1.51M + discriminator 534k``."""
    if info.params is None:
        return ""
    text = f"{_count(info.params)} ({info.params:,})" if info.params >= 10_000 \
        else f"{info.params:,}"
    split = network_params(info) if info.networks > 1 else None
    if split:
        text += ": " + " + ".join(f"{name} {_count(n)}" for name, n in split.items())
    return text


def _count(n: int) -> str:
    """A short count with three significant figures from 10,000 up: 2.04M, 534k, 4,810."""
    if n < 10_000:
        return f"{n:,}"
    for scale, unit in ((1e3, "k"), (1e6, "M"), (1e9, "B")):
        x = n / scale
        text = f"{x:.{2 if x < 10 else 1 if x < 100 else 0}f}"
        if float(text) < 1000 or unit == "B":
            return text + unit
    raise AssertionError("unreachable")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["BLANK", "NewDialog", "TemplateError", "blank_project", "graph_thumbnail"]
