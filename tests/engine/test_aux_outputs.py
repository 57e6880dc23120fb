"""Auxiliary outputs (an Output with aux_weight > 0; GoogLeNet's side heads): returned in
training mode only, after the main output; the layers feeding only them do not run in eval mode;
supervised training adds aux_weight x their loss, and the exported model.py and train.py do the
same, so a run of the exported script ends with the designer's weights. Importing a model whose
forward calls a head in training mode only makes that head an auxiliary output."""

from __future__ import annotations

import torch
from torch import nn

from designer.engine.document.project import load_project, project_to_json, save_project
from designer.engine.interop.codegen import model_source
from designer.engine.interop.importing import import_model
from designer.engine.model.build import build_model
from designer.engine.train.data import load_dataset
from designer.engine.train.data.compat import check_model_data
from designer.engine.train.recipes import prepare_run

from .helpers import train_exported_and_in_designer


class AuxNet(nn.Module):
    """A head for training only, as GoogLeNet's aux1: called when self.training."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.aux = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 4 * 4, 10))
        self.head = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(8 * 4 * 4, 10))

    def forward(self, x):
        x = self.features(x)
        aux = self.aux(x) if self.training else None
        out = self.head(x)
        return (out, aux) if self.training else out


def _imported():
    torch.manual_seed(0)
    model = AuxNet().eval()
    project, report = import_model(model, (1, 8, 8), name="aux-net")
    return model, project, report


def test_a_head_called_in_training_only_imports_as_an_auxiliary_output(tmp_path):
    model, project, report = _imported()
    assert report.ok and report.aux_outputs == {"aux": 0.3}
    graph = project.networks["model"]
    (aux,) = [n for n in graph.outputs() if n.params["aux_weight"] > 0]
    assert [n.name for n in graph.main_outputs()] != [aux.name]
    built = build_model(graph)
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(4, 1, 8, 8)
    built.eval()
    with torch.no_grad():
        assert torch.equal(built(x), model(x))  # one tensor in eval mode
        calls = []
        hook = built.aux.register_forward_hook(lambda *a: calls.append(1))
        built(x)
        assert calls == []  # the aux head does not run in eval mode
        hook.remove()
    built.train()
    model.train()
    torch.manual_seed(1)
    got = built(x)
    torch.manual_seed(1)
    want = model(x)
    assert isinstance(got, tuple) and len(got) == 2
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    # exported model.py: the same, in both modes
    src = model_source(project)
    assert "if self.training:" in src
    namespace: dict = {}
    exec(compile(src, "model.py", "exec"), namespace)  # noqa: S102 - our own generated code
    exported = namespace["AuxNet"]()
    exported.load_state_dict(model.state_dict(), strict=True)
    exported.eval()
    model.eval()
    with torch.no_grad():
        assert torch.equal(exported(x), model(x))
    # the file keeps aux_weight only where it is set
    text = project_to_json(project)
    assert text.count('"aux_weight"') == 1


def test_the_supervised_loss_adds_the_weighted_auxiliary_loss():
    _, project, _ = _imported()
    graph = project.networks["model"]
    (aux,) = [n for n in graph.outputs() if n.params["aux_weight"] > 0]
    graph.set_params(aux.id, {"aux_weight": 0.25})
    project.dataset = {"kind": "digits"}
    project.training = {"epochs": 1, "batch_size": 32, "seed": 0}
    ds = load_dataset(project.dataset)
    _, recipe = prepare_run(project, ds)
    model = recipe.model
    assert model._aux_weights == (0.25,)
    recipe.setup(_Ctx(project, ds))
    x, y = ds.x_train[:32], ds.y_train[:32]
    model.train()
    torch.manual_seed(2)
    loss, out = recipe._loss(x, y)
    torch.manual_seed(2)
    main, extra = model(x)
    ce = nn.functional.cross_entropy
    assert torch.equal(out, main)
    torch.testing.assert_close(loss, ce(main, y) + 0.25 * ce(extra, y))
    model.eval()  # evaluation: the main output only
    with torch.no_grad():
        loss, out = recipe._loss(x, y)
    torch.testing.assert_close(loss, ce(out, y))


class _Ctx:
    """What SupervisedRecipe.setup reads of a TrainContext."""

    def __init__(self, project, ds) -> None:
        from designer.engine.train.config import validate_training

        self.config = validate_training(project.training)
        self.device = torch.device("cpu")
        self.mixed_precision = False
        self.dataset = ds

    def autocast(self):
        import contextlib

        return contextlib.nullcontext()


def test_an_auxiliary_output_must_match_the_main_outputs_shape():
    _, project, _ = _imported()
    graph = project.networks["model"]
    (aux,) = [n for n in graph.outputs() if n.params["aux_weight"] > 0]
    linear = graph.nodes[next(e.src for e in graph.in_edges(aux.id))]
    ds = load_dataset({"kind": "digits"})
    check = check_model_data(graph, ds, {"loss": "cross_entropy"})
    assert check.ok, [p.message for p in check.problems]
    assert linear.type == "Block"  # the aux Sequential: give it 7 outputs instead of 10
    inner = project.networks[linear.params["block"]]
    fc = next(n for n in inner.nodes.values() if n.type == "Linear")
    inner.set_params(fc.id, {"out_features": 7})
    check = check_model_data(graph, ds, {"loss": "cross_entropy"})
    (problem,) = [p for p in check.errors if aux.id in p.node_ids]
    assert "auxiliary output" in problem.message and "same shape" in problem.message


def test_exported_train_py_adds_the_auxiliary_loss_as_the_designer_does(tmp_path):
    _, project, _ = _imported()
    project.dataset = {"kind": "digits"}
    project.training = {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 3}
    project = load_project(save_project(project, tmp_path / "a.dnn.json", backup=False))
    src, _trained, mine = train_exported_and_in_designer(project, tmp_path)
    assert "AUX_WEIGHTS = (0.3,)" in src and "output, *aux = model(x)" in src
    start = build_model(project.networks["model"], seed=3).state_dict()
    assert not torch.equal(mine["aux.2.weight"], start["aux.2.weight"])  # the aux head learned
