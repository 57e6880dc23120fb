"""A newcomer changes the starter and trains again (issue 22 items 24, 25): History tells the two
runs apart by what changed in the design, its best.pt column is readable, the exported model.py
no longer repeats the template's "64 ReLU units", and the linear-regression template's learned
w and b are where its text says (Look inside)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt


@pytest.fixture
def window(make_main_window, tmp_path, monkeypatch):
    # runs of an unsaved project go to the user data folder: this test's own, never other tests'
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return make_main_window((1400, 900))


def _train(qtbot, window) -> None:
    panel = window.training.panel
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as ended:
        window.act_train.trigger()
    assert ended.args == ["finished"], panel.last_error


def _view_action(window, text: str):
    menu = next(a.menu() for a in window.menuBar().actions()
                if a.text().replace("&", "") == "View")
    return next(a for a in menu.actions() if a.text().replace("&", "") == text)


def test_history_shows_what_changed_and_the_export_drops_the_stale_description(qtbot, window):
    assert window.open_template()  # the starter: fc1 has 64 units
    qtbot.waitUntil(lambda: window.document.analysis is not None)
    panel = window.training.panel
    panel.settings.set_values({"epochs": 1})
    panel._on_training_edited()
    _train(qtbot, window)

    # fc1 narrower, typed into the inspector as a person does
    doc = window.document
    fc1 = doc.graph.node_by_name("fc1")
    window.view.select_nodes([fc1.id])
    spin = window.inspector.editors["out_features"].spin
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "32")
    qtbot.keyClick(spin, Qt.Key_Return)
    assert doc.graph.nodes[fc1.id].params["out_features"] == 32
    _train(qtbot, window)

    history = panel.history
    panel.tabs.setCurrentWidget(history)
    table, cols = history.table, history.COLUMNS
    assert table.rowCount() == 2
    settings, changes, best = cols.index("settings"), cols.index("changes"), cols.index("best.pt")
    # the same settings text for both: the design is what differs, and History says so
    assert table.item(0, settings).text() == table.item(1, settings).text()
    assert table.item(0, changes).text() == "fc1.out_features 64 \u2192 32"
    assert "fc1.out_features 64 \u2192 32" in table.item(0, changes).toolTip()
    assert "Changed since the run of" in table.item(0, settings).toolTip()
    assert table.item(1, changes).text() == ""  # the first run: nothing before it
    # the best.pt column is wide enough for what it says
    for row in range(2):
        text = table.item(row, best).text()
        assert text.startswith("epoch 1, accuracy")
        needed = table.fontMetrics().horizontalAdvance(text)
        assert table.horizontalHeader().sectionSize(best) >= needed, text
    table.grab().save("/tmp/misc/history-changes.png")

    # the exported model.py: the template's "64 ReLU units" would now be false
    dialog = panel.open_export_dialog()
    qtbot.addWidget(dialog)
    source = dialog.source("model.py")
    assert "64 ReLU units" not in source
    assert "fc1.out_features 64 -> 32" in source
    assert "nn.Linear(64, 32)" in source
    dialog.close()
    # undo: the design is the template's again, and so is its description
    doc.undo_stack.undo()
    dialog = panel.open_export_dialog()
    qtbot.addWidget(dialog)
    assert "64 ReLU units" in dialog.source("model.py")
    dialog.close()


def test_linear_regression_shows_its_learned_w_and_b_in_look_inside(qtbot, window):
    assert window.open_template("linear-regression")
    qtbot.waitUntil(lambda: window.document.analysis is not None)
    info_text = "open View > Inside to read its learned weight and bias"
    assert info_text in window.document.project.metadata["expected"]
    panel = window.training.panel
    panel.settings.set_values({"epochs": 5})
    panel._on_training_edited()
    _train(qtbot, window)
    # as the template says: select the line layer and open View > Inside
    line = window.document.graph.node_by_name("line")
    window.view.select_nodes([line.id])
    _view_action(window, "Inside").trigger()
    inside = window.inside.panel
    qtbot.waitUntil(lambda: "learned" in inside.text.text(), timeout=5000)
    text = inside.text.text()
    learned = next(ln for ln in text.splitlines() if "learned" in ln)
    assert "weight [[" in learned and "bias [" in learned and "last.pt" in learned
    w = float(learned.split("weight [[")[1].split("]]")[0])
    b = float(learned.split("bias [")[1].split("]")[0])
    assert abs(w - 2) < 0.3 and abs(b - 1) < 0.3, learned  # y = 2x + 1
    window.inside.dock.grab().save("/tmp/misc/learned.png")
