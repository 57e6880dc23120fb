"""The New dialog: blank or a template, with name, parameter count and a picture of the graph."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor

from designer.engine.document.project import Project, save_project
from designer.engine.document.templates import list_templates, load_template
from designer.engine.model.graph import Graph
from designer.ui.gallery import BLANK, NewDialog, blank_project, graph_thumbnail


@pytest.fixture
def dialog(qtbot):
    d = NewDialog()
    qtbot.addWidget(d)
    return d


def test_lists_blank_and_every_template(dialog):
    ids = [dialog.list.item(i).data(Qt.UserRole) for i in range(dialog.list.count())]
    assert ids[0] == BLANK
    assert ids[1:] == [t.id for t in list_templates()]
    assert ids[1] == "mlp-digits"  # the starter comes first


def test_details_show_name_description_and_parameter_count(dialog):
    dialog.select("lenet5")
    info = dialog.templates["lenet5"]
    text = dialog.details.text()
    assert info.name in text and f"{info.params:,}" in text
    label = dialog.list.currentItem().text()
    assert info.name in label and "parameters" in label


def test_project_is_a_fresh_copy_of_the_template(dialog):
    dialog.select("cnn-mnist")
    project = dialog.project()
    assert project.graph.to_dict() == load_template("cnn-mnist").graph.to_dict()
    dialog.select(BLANK)
    blank = dialog.project()
    assert sorted(n.type for n in blank.graph.nodes.values()) == ["Input", "Output"]


def test_broken_template_is_listed_with_its_error(qtbot, tmp_path):
    save_project(blank_project(), tmp_path / "fine.dnn.json")
    (tmp_path / "broken.dnn.json").write_text("{not json")
    d = NewDialog(directory=tmp_path)
    qtbot.addWidget(d)
    d.select("broken")
    assert "not valid JSON" in d.details.text()
    d.select("fine")
    assert sorted(n.type for n in d.project().graph.nodes.values()) == ["Input", "Output"]


def _coloured_pixels(pix) -> set[tuple[int, int]]:
    img = pix.toImage()
    bg = QColor("#fafafa").rgb()
    return {(x, y) for x in range(0, img.width(), 2) for y in range(0, img.height(), 2)
            if img.pixel(x, y) != bg}


def test_thumbnail_draws_nodes_where_they_are():
    g = Graph()
    g.add_node("Input", "a", pos=(0, 0))
    g.add_node("Output", "b", pos=(1000, 600))
    pix = graph_thumbnail(g, QSize(200, 120))
    drawn = _coloured_pixels(pix)
    assert any(x < 60 and y < 40 for x, y in drawn)  # top-left node
    assert any(x > 140 and y > 80 for x, y in drawn)  # bottom-right node
    assert not any(90 < x < 110 and 50 < y < 70 for x, y in drawn)  # nothing in between
    assert _coloured_pixels(graph_thumbnail(Project().graph)) == set()
