"""Evaluation views: numbers from a confusion matrix, the heatmap, the report, the sample grid,
the regression scatter and "try it"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from designer.engine.train.evaluation import (
    EvaluationResult,
    class_report,
    confusion_matrix,
    evaluate_model,
    mistakes_first,
)
from designer.ui.training.evaluation import (
    ClassReportTable,
    ConfusionMatrixView,
    EvaluationPanel,
    RegressionScatter,
    SampleGrid,
    TryItWidget,
    sample_to_qimage,
)


def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_class_report_matches_scikit_learn():
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(0)
    yt = rng.integers(0, 5, 300)
    yp = np.where(rng.random(300) < 0.6, yt, rng.integers(0, 5, 300))
    yp[yp == 4] = 3  # class 4 never predicted: precision undefined -> 0
    rep = class_report(confusion_matrix(yt, yp, 5))
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=range(5), zero_division=0)
    np.testing.assert_allclose(rep["precision"], p)
    np.testing.assert_allclose(rep["recall"], r)
    np.testing.assert_allclose(rep["f1"], f)
    assert rep["support"].tolist() == s.tolist()


def test_heatmap_labels_each_cell_with_its_count(qtbot):
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    cm = np.array([[5, 1, 0], [2, 7, 0], [0, 0, 9]])
    view.set_matrix(cm, ["cat", "dog", "bird"])
    assert view.matrix.shape == (3, 3)
    assert view.cell_text(1, 0) == "2"
    assert view.cell_text(2, 2) == "9"
    # colours are row shares: the image is (predicted, true) for pyqtgraph's x/y order
    img = view.image.image
    assert img.shape == (3, 3)
    assert img[0, 1] == pytest.approx(2 / 9)


def test_report_table_rows_and_macro_average(qtbot):
    table = ClassReportTable()
    qtbot.addWidget(table)
    table.set_confusion(np.array([[3, 1], [0, 4]]), ["no", "yes"])
    assert table.rowCount() == 3
    assert table.item(0, 0).text() == "no"
    assert table.item(0, 1).text() == "1.000"  # precision of "no": 3 / 3
    assert table.item(1, 1).text() == "0.800"  # precision of "yes": 4 / 5
    assert table.item(2, 0).text() == "macro average"
    assert table.item(2, 4).text() == "8"


def test_sample_grid_puts_mistakes_first(qtbot):
    grid = SampleGrid()
    qtbot.addWidget(grid)
    yt = np.array([0, 1, 2, 3, 4, 5])
    yp = np.array([0, 0, 2, 0, 4, 5])
    assert mistakes_first(yt, yp, 10).tolist() == [1, 3, 0, 2, 4, 5]
    grid.set_samples(np.random.rand(6, 1, 8, 8), yt, yp, [str(i) for i in range(6)])
    assert [i for i, _ in grid.shown] == [1, 3, 0, 2, 4, 5]
    assert [w for _, w in grid.shown] == [True, True, False, False, False, False]


def test_sample_images_rgb_and_grey():
    assert sample_to_qimage(np.random.rand(3, 16, 12)).size().toTuple() == (12, 16)
    assert sample_to_qimage(np.random.rand(1, 8, 8)).width() == 8
    assert sample_to_qimage(np.random.rand(5)) is None


def test_scatter_reports_r2(qtbot):
    sc = RegressionScatter()
    qtbot.addWidget(sc)
    t = np.linspace(0, 1, 50)
    sc.set_points(t, t)
    assert sc.r2 == pytest.approx(1.0)
    sc.set_points(t, np.full(50, t.mean()))
    assert sc.r2 == pytest.approx(0.0)


def test_evaluate_model_classification_and_regression():
    torch.manual_seed(0)
    x = torch.randn(100, 4)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        model.weight[1, 0] = 10.0  # predicts class 1 exactly when x0 > 0
    res = evaluate_model(model, x, y, "classification", ["neg", "pos"], batch_size=32)
    assert res.confusion.shape == (2, 2)
    assert res.accuracy == 1.0
    assert res.confusion.sum() == 100
    assert model.training  # mode restored

    reg = torch.nn.Linear(4, 1)
    res = evaluate_model(reg, x, x[:, :1] * 2, "regression", batch_size=64)
    assert res.y_pred.shape == (100, 1) and res.y_true.shape == (100, 1)


def test_panel_shows_what_fits_the_task(qtbot):
    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    yt = np.arange(20) % 4
    res = EvaluationResult("classification", list("abcd"), yt, yt.copy(), None,
                           np.random.rand(20, 1, 8, 8), confusion_matrix(yt, yt, 4))
    panel.show_result(res)
    assert panel.confusion.matrix.shape == (4, 4)
    assert panel.isTabEnabled(1)
    t = np.random.rand(30, 1)
    panel.show_result(EvaluationResult("regression", [], t, t * 0.9))
    assert panel.scatter.r2 is not None
    assert not panel.isTabEnabled(1)


def test_try_it_shows_answer_or_message(qtbot):
    w = TryItWidget()
    qtbot.addWidget(w)
    assert not w.row_button.isEnabled()

    def predictor(kind, value):
        if "x" in value:
            raise ValueError("expected 2 numbers")
        return [f"class {value}"]

    w.set_predictor(predictor, image=False, row=True)
    assert w.row_button.isEnabled() and not w.image_button.isEnabled()
    assert w.predict("row", "1, 2") == ["class 1, 2"]
    assert w.result.text() == "class 1, 2"
    assert w.predict("row", "x") == []
    assert w.result.text() == "expected 2 numbers"

    def broken(kind, value):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    w.set_predictor(broken, image=True, row=True)
    w.predict("row", "1")
    assert "could not run" in w.result.text()


def test_try_it_on_an_image_file_and_a_csv_row(tmp_path):
    from PIL import Image

    from designer.engine.train.data import load_dataset
    from designer.engine.train.evaluation import make_predictor

    digits = load_dataset({"kind": "digits"})
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    predict, images, rows = make_predictor(model, digits)
    assert images and not rows
    png = tmp_path / "three.png"
    Image.fromarray((np.random.rand(40, 30) * 255).astype(np.uint8)).save(png)
    lines = predict("image", str(png))
    assert len(lines) == 3 and all("%" in line for line in lines)
    with pytest.raises(ValueError, match="table rows"):
        predict("row", "1, 2")
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        predict("image", str(tmp_path / "bad.png"))

    moons = load_dataset({"kind": "synthetic", "name": "moons", "n_samples": 50})
    predict, images, rows = make_predictor(torch.nn.Linear(2, 2), moons)
    assert rows and not images
    assert len(predict("row", "0.5, -0.2")) == 2
    with pytest.raises(ValueError, match="expected 2 numbers"):
        predict("row", "1, 2, 3")
