"""The exported train.py fine-tunes as the designer does: frozen layers and blocks (Node.frozen)
leave the optimizer and keep their BatchNorm in eval mode (``freeze_bn_eval``), the starting
weights come from ``training.init_weights``; after one epoch the frozen parameters and
statistics are bit-for-bit the file's, the head has moved, and the designer's own run ends with
the same weights. The script runs where ``designer`` cannot be imported."""

from __future__ import annotations

import torch

from designer.engine.document.project import load_project, save_project
from designer.engine.interop.export import export_project
from designer.engine.interop.importing import import_model, save_weights

from .helpers import DigitsNet, train_exported_and_in_designer

Net = DigitsNet


def test_exported_train_py_keeps_frozen_parts_and_matches_the_designer(tmp_path):
    torch.manual_seed(1)
    model = Net().eval()
    with torch.no_grad():  # BN statistics that training would change
        model.features[1].running_mean.normal_()
        model.features[1].running_var.uniform_(0.5, 1.5)
    project, _report = import_model(model, (1, 8, 8), name="digits-net")
    project.networks["model"].node_by_name("features").frozen = True  # the whole block use
    save_weights(model.state_dict(), tmp_path / "n.weights.pt")
    project.dataset = {"kind": "digits"}
    project.training = {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 3,
                        "init_weights": "n.weights.pt", "freeze_bn_eval": True}
    project = load_project(save_project(project, tmp_path / "n.dnn.json", backup=False))
    start = model.state_dict()

    # the exported train.py, run where designer cannot be imported, and the designer, on one
    # thread as the script: the same weights
    src, trained, mine = train_exported_and_in_designer(project, tmp_path)
    assert "FROZEN = ['features']" in src or 'FROZEN = ["features"]' in src
    assert 'load_init_weights(\n        model, cfg["init_weights"], cfg["init_weights_min_fit"]' in src
    frozen = [k for k in start if k.startswith("features.")]
    assert frozen
    for k in frozen:  # weights and BatchNorm statistics
        assert torch.equal(trained[k], start[k]), k
    assert not torch.equal(trained["head.weight"], start["head.weight"])
    assert list(trained) == list(mine)


def test_a_design_without_frozen_parts_or_weights_exports_as_before(tmp_path):
    project, _ = import_model(Net().eval(), (1, 8, 8), name="plain")
    project.dataset = {"kind": "digits"}
    export_project(project, tmp_path / "out")
    src = (tmp_path / "out" / "train.py").read_text(encoding="utf-8")
    assert "FROZEN" not in src and "load_init_weights" not in src and "train_mode" not in src


def test_a_frozen_parameter_layer_is_frozen_in_train_py_too():
    """A Parameter layer is a tensor of the network, not a module: FROZEN names it and freeze()
    turns its gradient off as the designer's build does."""
    from designer.engine.document.project import Project
    from designer.engine.interop.codegen import model_source
    from designer.engine.model.build import build_model
    from designer.engine.train.recipes.supervised.script import train_source

    from .helpers import chain

    g = chain(("Linear", {"out_features": 4}), shape=(3,))
    token = g.add_node("Parameter", "token", params={"shape": [4]})
    add = g.add_node("Add", "plus")
    (out,) = g.outputs()
    (last,) = [e for e in g.edges if e.dst == out.id]
    g.disconnect(last)
    g.connect(last.src, add.id, 0)
    g.connect(token.id, add.id, 1)
    g.connect(add.id, out.id)
    g.set_frozen(token.id, True)
    project = Project(name="p", networks={"model": g}, dataset={"kind": "digits"})
    assert not build_model(g).token.requires_grad
    src = train_source(project)
    assert "FROZEN = ['token']" in src or 'FROZEN = ["token"]' in src
    namespace: dict = {}
    exec(compile(model_source(project), "model.py", "exec"), namespace)  # noqa: S102
    model = namespace["P"]()
    start = src.index("def freeze(model):")
    end = src.index("\ndef train_mode(model):")
    helpers: dict = {"FROZEN": ["token"]}
    exec(compile(src[start:end], "train.py", "exec"), helpers)  # noqa: S102 - our own code
    helpers["freeze"](model)
    assert not model.token.requires_grad and model.get_submodule(g.nodes[last.src].name).weight.requires_grad
