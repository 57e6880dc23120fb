"""Small graph builders and checks shared by the engine tests."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import torch
from torch import nn

from designer.engine.model.graph import Graph


def single_layer(layer: str, params: dict | None = None, shapes=((3, 8, 8),),
                 dtype: str = "float32") -> tuple[Graph, str]:
    """Inputs (one per shape) -> one layer -> Output. Returns the graph and the layer's id."""
    g = Graph()
    node = g.add_node(layer, name="layer", params=params or {})
    for port, shape in enumerate(shapes):
        inp = g.add_node("Input", params={"shape": list(shape), "dtype": dtype})
        g.connect(inp.id, node.id, port)
    out = g.add_node("Output")
    g.connect(node.id, out.id)
    return g, node.id


def chain(*layers: tuple[str, dict], shape=(3, 8, 8), dtype: str = "float32") -> Graph:
    """Input -> layers in a row -> Output; layers are named after their prefix (fc1, conv1...)."""
    g = Graph()
    last = g.add_node("Input", params={"shape": list(shape), "dtype": dtype}).id
    for layer, params in layers:
        node = g.add_node(layer, params=params)
        g.connect(last, node.id)
        last = node.id
    out = g.add_node("Output")
    g.connect(last, out.id)
    return g


def sample_inputs(graph: Graph, batch: int = 2, generator: torch.Generator | None = None
                  ) -> list[torch.Tensor]:
    """A random batch for every Input of the graph, in the order forward() takes them."""
    xs = []
    for node in graph.inputs():
        shape = (batch, *node.params["shape"])
        if node.params["dtype"] == "int64":
            high = _vocab_below(graph, node.id)
            xs.append(torch.randint(0, high, shape, generator=generator))
        else:
            xs.append(torch.randn(shape, generator=generator))
    return xs


def _vocab_below(graph: Graph, input_id: str) -> int:
    """The smallest vocabulary of the Embeddings fed (directly or not) by an int64 Input."""
    sizes = [graph.nodes[n].params["num_embeddings"] for n in graph.downstream([input_id])
             if graph.nodes[n].type == "Embedding"]
    return min(sizes, default=2)


def randomise(model: nn.Module) -> nn.Module:
    """Non-trivial values everywhere (BN statistics, zero-initialised weights), eval mode."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def load_module(source: str, folder, name: str):
    """``source`` written to folder/<name>.py and imported from there."""
    file = folder / f"{name}.py"
    file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def assert_same_as_module(project, report, model: nn.Module, shape: tuple[int, ...], tmp_path=None,
                          *, x: torch.Tensor | None = None, name: str = "m",
                          key_order: bool = False) -> nn.Module:
    """A design imported from ``model`` is the module: its build has the module's parameter
    count (with ``key_order``, its state_dict keys in the module's order) and loads the module's
    state_dict strictly; both give the same outputs for ``x`` (default: a random batch of
    ``shape``). With ``tmp_path``, the exported model.py too: the built design's keys in its
    order, a strict load, the same outputs. Returns the built design."""
    from designer.engine.interop.codegen import model_source, network_class_names
    from designer.engine.model.build import build_model

    assert report.ok, report.summary()
    built = build_model(project.networks["model"]).eval()
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    state = model.state_dict()
    if key_order:
        assert list(built.state_dict()) == list(state)
    built.load_state_dict(state, strict=True)
    if x is None:
        x = torch.randn(2, *shape)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(built(x), expected, atol=1e-5, rtol=1e-5)
    if tmp_path is not None:
        mod = load_module(model_source(project), tmp_path, "exported_" + re.sub(r"\W", "_", name))
        exported = getattr(mod, network_class_names(project)["model"])().eval()
        assert list(exported.state_dict()) == list(built.state_dict())
        exported.load_state_dict(state, strict=True)
        with torch.no_grad():
            torch.testing.assert_close(exported(x), expected, atol=1e-5, rtol=1e-5)
    return built


def import_exactly(model: nn.Module, shape: tuple[int, ...], name: str = "m", tmp_path=None,
                   x: torch.Tensor | None = None):
    """Import ``model`` and check the design against it (``assert_same_as_module``): the
    project, the import report and the built design."""
    from designer.engine.interop.importing import import_model

    project, report = import_model(model, shape, name=name)
    built = assert_same_as_module(project, report, model, shape, tmp_path, x=x, name=name)
    return project, report, built


# Runs an exported train.py where designer cannot be imported; saves the trained state_dict.
DRIVER = r'''
import os, sys
sys.modules["designer"] = None  # the exported code must not need designer
import torch
torch.set_num_threads(1)
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import train
model = train.main(sys.argv[1:])
torch.save(model.state_dict(), os.path.join(here, "trained.pt"))
'''


def script_env() -> dict[str, str]:
    """The environment of an exported script's run: no PYTHONPATH (no designer), one thread."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def train_exported_and_in_designer(project, tmp_path) -> tuple[str, dict, dict]:
    """Export ``project`` to tmp_path/export, lint its train.py, run it for one epoch on the CPU
    through DRIVER, then train in the designer (its Trainer, on one thread as the script): both
    must end with the same tensors under the same keys. Returns train.py's source, the script's
    state_dict and the designer's."""
    from designer.engine.interop.export import export_project
    from designer.engine.train.data import load_dataset
    from designer.engine.train.recipes import prepare_run
    from designer.engine.train.training import Trainer

    out = tmp_path / "export"
    export_project(project, out, project_dir=tmp_path)
    src = (out / "train.py").read_text(encoding="utf-8")
    # (E501 aside: CONFIG holds the weights file's absolute path, as it does a dataset's)
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select",
                           "E,F,W,I", "--ignore", "E501", "--output-format", "concise",
                           str(out / "train.py")], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout[-3000:]
    (out / "driver.py").write_text(DRIVER, encoding="utf-8")
    done = subprocess.run([sys.executable, "-I", "driver.py", "--epochs", "1", "--device", "cpu",
                           "--out", "ck", "--log-interval", "1000"], cwd=out,
                          capture_output=True, text=True, timeout=300, env=script_env(),
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = torch.load(out / "trained.pt", weights_only=True)

    ds = load_dataset(project.dataset, tmp_path)
    _, recipe = prepare_run(project, ds, run_dir=tmp_path / "run")
    result = Trainer(None, ds, project.training, recipe=recipe, run_dir=tmp_path / "run",
                     cpu_threads=1).run()
    assert result.status == "finished", result.message
    mine = recipe.model.state_dict()
    assert sorted(trained) == sorted(mine)
    for k, v in mine.items():
        assert torch.equal(trained[k], v.cpu()), k
    return src, trained, mine


class DigitsNet(nn.Module):
    """A small CNN for 1x8x8 digits: a features block (conv, BatchNorm, ReLU, pool), a head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))
