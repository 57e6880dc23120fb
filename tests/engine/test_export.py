"""export_project and ``designer export``: the folder it writes, trained weights, ONNX (checked
under onnxruntime) and torch.export programs, and clear messages for everything that can go wrong.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import pytest
import torch

from designer import cli
from designer.engine.document.project import Project, load_project, save_project
from designer.engine.interop.export import (
    ExportError,
    ExportResult,
    example_inputs,
    export_project,
    load_state_dict,
    preview_sources,
)
from designer.engine.model.build import build_model
from designer.engine.model.graph import Graph
from designer.engine.model.pysource import CodegenError
from designer.engine.train.runs import RunError, load_checkpoint
from tests.engine.helpers import chain

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _trained_run(project: Project, folder: Path, seed: int = 1) -> tuple[Path, torch.nn.Module]:
    """A run folder as the trainer writes it, with weights different from a fresh build (another
    seed, and BatchNorm statistics that are not the initial 0 and 1)."""
    model = build_model(project.graph, seed=seed).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    folder.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "optimizer": {}, "epoch": 3,
                "config": {"training": {}}}, folder / "best.pt")
    return folder, model


def _two_in_two_out() -> Project:
    g = Graph()
    a = g.add_node("Input", name="image", params={"shape": [1, 6, 6]})
    b = g.add_node("Input", name="extra", params={"shape": [4]})
    conv = g.add_node("Conv2d", params={"out_channels": 2, "kernel_size": 3})
    flat = g.add_node("Flatten")
    cat = g.add_node("Concat")
    head = g.add_node("Linear", name="head", params={"out_features": 3})
    o1 = g.add_node("Output", name="logits")
    o2 = g.add_node("Output", name="features")
    for s, d, port in ((a, conv, 0), (conv, flat, 0), (flat, cat, 0), (b, cat, 1), (cat, head, 0),
                       (head, o1, 0), (cat, o2, 0)):
        g.connect(s.id, d.id, port)
    return Project(name="two in two out", networks={"model": g})


# autoencoder: its layer "code" shares a name with torch.fx.GraphModule.code, which torch.export
# used to lose (ONNX export failed, the .pt2 program would not load).
ONNX_CASES = ["lstm-sentiment", "transformer-text", "resnet-mini", "autoencoder", "two-in-two-out"]
PT2_CASES = ("resnet-mini", "autoencoder", "two-in-two-out")


def _case(name: str) -> Project:
    if name == "two-in-two-out":
        return _two_in_two_out()
    return load_project(TEMPLATES / f"{name}.dnn.json")


@pytest.mark.parametrize("case", ONNX_CASES)
def test_onnx_and_pt2_match_the_trained_model(case, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    project = _case(case)
    run, model = _trained_run(project, tmp_path / "run")
    out = tmp_path / "out"
    pt2 = case in PT2_CASES  # each torch.export costs seconds: two cases cover it
    paths = export_project(project, out, onnx=True, pt2=pt2, weights=run, project_dir=TEMPLATES)
    names = {p.name for p in paths}
    assert {"model.py", "weights.pt", "model.onnx"} <= names
    assert ("model.pt2" in names) == pt2
    assert not list(out.glob("*.data"))  # one self-contained ONNX file

    xs = example_inputs(project.graph, batch=5, seed=7)  # exported at batch 2: dynamic batch
    with torch.no_grad():
        want = model(*xs)
    want = list(want) if isinstance(want, tuple) else [want]

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), xs)}
    got = session.run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape)
        assert float(abs(torch.from_numpy(g) - w).max()) <= 1e-5
    import onnx

    proto = onnx.load(str(out / "model.onnx"))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    if case == "two-in-two-out":  # inputs and outputs named after the design's nodes
        assert [i.name for i in session.get_inputs()] == ["image", "extra"]
        assert [o.name for o in session.get_outputs()] == ["logits", "features"]

    if pt2:
        program = torch.export.load(str(out / "model.pt2"))
        got = program.module()(*xs)
        got = list(got) if isinstance(got, tuple) else [got]
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)

    # model.py loads weights.pt and gives exactly the trained model's outputs
    mod = _import(out / "model.py", f"exported_{case.replace('-', '_')}")
    loaded = mod.load(str(out / "weights.pt")).eval()
    with torch.no_grad():
        got = loaded(*xs)
    got = list(got) if isinstance(got, tuple) else [got]
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def test_parameters_export_with_a_dynamic_batch(tmp_path):
    """A Parameter repeats over the batch of the model's input: ONNX and torch.export programs
    exported at batch 2 must follow a batch of 5 (ViT's class token and position embedding)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from tests.engine.test_codegen import _tokens_with_parameters

    project = Project(name="tokens", networks={"model": _tokens_with_parameters()})
    model = build_model(project.graph, seed=4).eval()
    torch.save(model.state_dict(), tmp_path / "state.pt")
    out = tmp_path / "out"
    export_project(project, out, onnx=True, pt2=True, weights=tmp_path / "state.pt")
    (x,) = example_inputs(project.graph, batch=5, seed=1)
    with torch.no_grad():
        want = model(x)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == (5, 7) and float(abs(torch.from_numpy(got) - want).max()) <= 1e-6
    assert torch.equal(torch.export.load(str(out / "model.pt2")).module()(x), want)


def test_missing_onnx_gives_the_install_hint(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    project = Project(name="p", networks={"model": chain(("Linear", {"out_features": 2}),
                                                         shape=(3,))})
    with pytest.raises(ExportError, match=r"pip install 'designer\[export\]'"):
        export_project(project, tmp_path, onnx=True)


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def _mlp() -> Project:
    return Project(name="mlp", networks={"model": chain(("Linear", {"out_features": 4}),
                                                        ("ReLU", {}),
                                                        ("Linear", {"out_features": 2}),
                                                        shape=(3,))})


def test_weights_from_a_run_folder_a_checkpoint_or_a_state_dict(tmp_path):
    project = _mlp()
    run, model = _trained_run(project, tmp_path / "run")
    want = model.state_dict()
    for source in (run, run / "best.pt"):
        state = load_state_dict(source)
        assert all(torch.equal(state[k], want[k]) for k in want)
    bare = tmp_path / "bare.pt"
    torch.save({"module." + k: v for k, v in want.items()}, bare)  # saved from a DDP wrapper
    assert set(load_state_dict(bare)) == set(want)
    # last.pt when there is no best.pt
    (run / "best.pt").rename(run / "last.pt")
    assert set(load_state_dict(run)) == set(want)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    project = _mlp()
    other = Project(name="o", networks={"model": chain(("Linear", {"out_features": 5}),
                                                       ("ReLU", {}),
                                                       ("Linear", {"out_features": 2}),
                                                       shape=(3,))})
    run, _ = _trained_run(other, tmp_path / "run")
    with pytest.raises(ExportError, match="do not fit this design.*fc1.weight"):
        export_project(project, tmp_path / "out", weights=run)
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_weight_sources_give_clear_messages(tmp_path):
    with pytest.raises(ExportError, match="no such file or run folder"):
        load_state_dict(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no checkpoint in this folder"):
        load_state_dict(tmp_path / "empty")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ExportError, match="not a checkpoint of tensors and numbers"):
        load_state_dict(tmp_path / "text.pt")
    (tmp_path / "cut.pt").write_bytes(b"")
    with pytest.raises(ExportError, match="damaged or incomplete"):
        load_state_dict(tmp_path / "cut.pt")
    torch.save({"epoch": 3}, tmp_path / "nomodel.pt")
    with pytest.raises(ExportError, match="holds no model weights"):
        load_state_dict(tmp_path / "nomodel.pt")


def test_weights_of_other_networks_are_named(tmp_path):
    """A GAN run's checkpoint given to a one-network project said only 'holds no model weights'."""
    sd = {"fc.weight": torch.zeros(2, 2)}
    torch.save({"model": {"generator": sd, "discriminator": sd}, "epoch": 1}, tmp_path / "gan.pt")
    with pytest.raises(ExportError, match="networks generator, discriminator, not one network"):
        load_state_dict(tmp_path / "gan.pt")
    with pytest.raises(ExportError, match="not the network 'critic'"):
        load_state_dict(tmp_path / "gan.pt", "critic")
    assert load_state_dict(tmp_path / "gan.pt", "generator").keys() == {"fc.weight"}


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/designer-export-pwned"),))


def test_a_malicious_checkpoint_is_never_executed(tmp_path):
    marker = Path("/tmp/designer-export-pwned")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"model": _Boom()}, f, protocol=2)
    with pytest.raises(ExportError, match="not a checkpoint of tensors and numbers") as info:
        load_state_dict(evil)
    # torch's own message advises weights_only=False (running the file's code): never shown
    assert "weights_only" not in str(info.value)
    with pytest.raises(RunError, match="never loads") as info:
        load_checkpoint(evil)
    assert "weights_only" not in str(info.value)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# The folder, the preview and the command line
# --------------------------------------------------------------------------------------------


def test_preview_returns_both_sources():
    sources = preview_sources(load_project(TEMPLATES / "mlp-digits.dnn.json"))
    assert set(sources) == {"model.py", "train.py"}
    assert "class " in sources["model.py"] and "def main(" in sources["train.py"]


def test_design_with_errors_writes_nothing(tmp_path):
    g = chain(("Linear", {"in_features": 9, "out_features": 2}), shape=(3,))
    with pytest.raises(CodegenError, match="in_features is fixed to 9"):
        export_project(Project(networks={"model": g}), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_several_networks_export_classes_and_weights_without_train_script(tmp_path):
    gen = chain(("Linear", {"out_features": 4}), ("Tanh", {}), shape=(3,))
    disc = chain(("Linear", {"out_features": 1}), shape=(4,))
    project = Project(name="gan", networks={"generator": gen, "discriminator": disc})
    states = {net: build_model(g, seed=2).state_dict() for net, g in project.networks.items()}
    torch.save({"models": states, "epoch": 1}, tmp_path / "ck.pt")

    result = ExportResult()
    export_project(project, tmp_path / "out", weights=tmp_path / "ck.pt", pt2=True,
                   result=result)
    names = sorted(p.name for p in result.paths)
    assert names == ["discriminator.pt2", "generator.pt2", "model.py", "weights.pt"]
    assert result.notes and "train.py" in result.notes[0]
    mod = _import(tmp_path / "out" / "model.py", "exported_gan")
    models = mod.load(str(tmp_path / "out" / "weights.pt"))
    for net, state in states.items():
        assert all(torch.equal(models[net].state_dict()[k], v) for k, v in state.items())


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["export", str(TEMPLATES / "mlp-digits.dnn.json"), "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'model.py'}" in printed and f"wrote {out / 'train.py'}" in printed
    assert (out / "model.py").exists() and (out / "train.py").exists()


def test_cli_export_errors(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "missing.dnn.json"), "-o", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = Project(name="b", networks={"model": chain(("Linear", {"in_features": 9}),
                                                        shape=(3,))})
    save_project(broken, tmp_path / "b.dnn.json")
    assert cli.main(["export", str(tmp_path / "b.dnn.json"), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "in_features" in err and "Traceback" not in err
    good = tmp_path / "g.dnn.json"
    save_project(_mlp(), good)
    assert cli.main(["export", str(good), "-o", str(tmp_path / "o"), "--weights",
                     str(tmp_path / "nope")]) == 1
    assert "no such file or run folder" in capsys.readouterr().err


def test_cli_export_latest_run(tmp_path, capsys):
    project = _mlp()
    path = tmp_path / "mlp.dnn.json"
    save_project(project, path)
    assert cli.main(["export", str(path), "-o", str(tmp_path / "o"), "--weights", "latest"]) == 1
    assert "no trained run of this project" in capsys.readouterr().err
    older, _ = _trained_run(project, tmp_path / "runs" / "mlp" / "20260101-000000", seed=3)
    newer, model = _trained_run(project, tmp_path / "runs" / "mlp" / "20260102-000000", seed=4)
    os.utime(older / "best.pt", (1, 1))
    os.utime(older, (1, 1))
    assert cli.main(["export", str(path), "-o", str(tmp_path / "o"), "--weights", "latest"]) == 0
    assert f"weights from {newer}" in capsys.readouterr().out
    saved = torch.load(tmp_path / "o" / "weights.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
