"""The exported ``train.py``: the same data as the designer (tensors compared exactly), one short
epoch on offline data as a script, and ``torchrun --nproc_per_node=2`` (gloo, CPU) with equal
parameters on both ranks at the end. The exported code runs where ``designer`` cannot be imported.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from designer.engine.document.project import Project, load_project
from designer.engine.interop.export import export_project, load_state_dict, preview_sources
from designer.engine.model.blocks import model_names
from designer.engine.model.pysource import CodegenError
from designer.engine.train.data import load_dataset
from designer.engine.train.recipes.supervised.script import train_source
from tests.engine.helpers import chain

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"

# Runs the exported train.py's functions with designer made unimportable.
DRIVER = r'''
import json, sys
sys.modules["designer"] = None
import torch

root = sys.argv[1]
for case in json.load(open(root + "/cases.json")):
    d = root + "/" + case["dir"]
    sys.path.insert(0, d)
    for name in ("model", "train"):
        sys.modules.pop(name, None)
    import train
    data = train.load_data(case["data"]) if case["data"] else train.load_data()
    saved = {k: getattr(data, k) for k in ("x_train", "y_train", "x_val", "y_val")}
    saved["batch"] = data.prepare(data.x_train[:64])  # what the model receives
    torch.save(saved, d + "/data.pt")
    json.dump({"task": data.task, "classes": data.classes, "mean": data.mean, "std": data.std,
               "scale": data.scale, "vocab": data.vocab}, open(d + "/data.json", "w"))
    if case.get("train"):
        model = train.main(case["train"])
        torch.save(model.state_dict(), d + "/trained.pt")
    sys.path.remove(d)
'''

# torchrun runs this on every rank: the exported main(), then each rank's parameters saved.
RANKS = r'''
import os, sys
sys.modules["designer"] = None
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import torch
import train

model = train.main(sys.argv[1:])
torch.save(model.state_dict(), os.path.join(here, f"rank{os.environ['RANK']}.pt"))
'''


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _write_csvs(folder: Path) -> tuple[Path, Path]:
    table = folder / "table.csv"
    rows = ["a;b;c;kind"] + [f"{i * 0.5};{(i * 7) % 5};{-i};{'yes' if i % 3 else 'no'}"
                             for i in range(30)]
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    texts = folder / "texts.csv"
    words = ["good", "bad", "film", "great", "awful", "plot", "it's", "fine", "Dull", "fun"]
    lines = ["text,label"] + [
        f"\"{' '.join(words[(i * k) % 10] for k in range(1, 2 + i % 5))}, really!\","
        f"{'pos' if i % 2 else 'neg'}" for i in range(40)]
    texts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return table, texts


def _write_images(folder: Path) -> Path:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for cls in ("cat", "dog"):
        (folder / "imgs" / cls).mkdir(parents=True)
        for i in range(5):
            arr = torch.randint(0, 256, (7, 6, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(arr).save(folder / "imgs" / cls / f"{i}.png")
    return folder / "imgs"


def _project(dataset: dict, shape, classes: int | None, dtype="float32") -> Project:
    if dtype == "int64":
        g = chain(("Embedding", {"num_embeddings": 50, "embedding_dim": 4}), ("Mean", {}),
                  ("Linear", {"out_features": classes}), shape=shape, dtype=dtype)
    else:
        g = chain(("Flatten", {}), ("Linear", {"out_features": classes or 1}), shape=shape)
    return Project(name="data case", networks={"model": g}, dataset=dataset,
                   training={"epochs": 1, "batch_size": 16})


@pytest.fixture(scope="module")
def exported_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    table, texts = _write_csvs(root)
    images = _write_images(root)
    cases = {
        "digits": (_project({"kind": "digits", "val_fraction": 0.25}, (1, 8, 8), 10), None),
        "digits-autoencoder": (
            _project({"kind": "digits", "task": "reconstruction", "split_seed": 3}, (1, 8, 8),
                     64), None),
        "moons": (_project({"kind": "synthetic", "name": "moons", "n_samples": 60}, (2,), 2),
                  None),
        "spirals": (_project({"kind": "synthetic", "name": "spirals", "n_samples": 61,
                              "noise": 0.3, "seed": 5}, (2,), 3), None),
        "linear": (_project({"kind": "synthetic", "name": "linear", "n_samples": 50,
                             "linear_w": -3.0}, (1,), None), None),
        "sine": (_project({"kind": "synthetic", "name": "sine", "n_samples": 40}, (1,), None),
                 None),
        "csv": (_project({"kind": "csv", "path": "table.csv", "feature_columns": ["c", "a"]},
                         (2,), 2), table),
        "csv-regression": (_project({"kind": "csv", "path": str(table), "target_column": "a",
                                     "feature_columns": ["b", "c"], "normalize": False},
                                    (2,), None), table),
        "csv_text": (_project({"kind": "csv_text", "path": "texts.csv", "vocab_size": 12,
                               "max_length": 7}, (7,), 2, "int64"), texts),
        "image_folder": (_project({"kind": "image_folder", "path": "imgs", "resize": [4, 5],
                                   "augment_hflip": True, "val_fraction": 0.3}, (3, 4, 5), 2),
                         images),
        "image_folder-grey": (_project({"kind": "image_folder", "path": "imgs",
                                        "grayscale": True}, (1, 7, 6), 2), images),
        "image_folder-minus-one-one": (
            _project({"kind": "image_folder", "path": "imgs", "normalization": "minus_one_one"},
                     (3, 7, 6), 2), images),
        "digits-minus-one-one": (
            _project({"kind": "digits", "normalization": "minus_one_one"}, (1, 8, 8), 10), None),
        "lstm-sentiment": (load_project(TEMPLATES / "lstm-sentiment.dnn.json"), None),
    }
    entries = []
    for i, (key, (project, path)) in enumerate(cases.items()):
        d = root / f"case{i}"
        export_project(project, d, project_dir=TEMPLATES if key == "lstm-sentiment" else root)
        entry = {"dir": d.name, "data": str(path) if path else None}
        if key == "digits":
            entry["train"] = ["--epochs", "1", "--out", str(d / "ck"), "--log-interval", "1000"]
        if key == "lstm-sentiment":
            entry["data"] = str(TEMPLATES / project.dataset["path"])
            entry["train"] = ["--epochs", "1", "--dry-run", "--out", str(d / "ck")]
        entries.append(entry)
    (root / "cases.json").write_text(json.dumps(entries))
    (root / "driver.py").write_text(DRIVER)
    done = subprocess.run([sys.executable, "-I", str(root / "driver.py"), str(root)], cwd=root,
                          capture_output=True, text=True, check=False, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    (root / "driver.out").write_text(done.stdout)
    return root, {k: (root / f"case{i}", p) for i, (k, (p, _)) in enumerate(cases.items())}


DATA_CASES = ["digits", "digits-autoencoder", "moons", "spirals", "linear", "sine", "csv",
              "csv-regression", "csv_text", "image_folder", "image_folder-grey",
              "image_folder-minus-one-one", "digits-minus-one-one", "lstm-sentiment"]


@pytest.mark.parametrize("case", DATA_CASES)
def test_train_script_loads_the_same_data_as_the_designer(exported_data, case):
    root, cases = exported_data
    d, project = cases[case]
    ds = load_dataset(project.dataset, TEMPLATES if case == "lstm-sentiment" else root)
    got = torch.load(d / "data.pt", weights_only=True)
    meta = json.loads((d / "data.json").read_text())
    assert meta["task"] == ds.task
    assert meta["classes"] == ds.class_names
    assert meta["mean"] == ds.mean and meta["std"] == ds.std
    assert meta["vocab"] == ds.vocab
    for name in ("x_train", "x_val", "y_train", "y_val"):
        want = getattr(ds, name)
        assert got[name].dtype == want.dtype, name
        assert torch.equal(got[name], want), name
    if ds.x_train.dtype == torch.uint8:  # scaled and normalised per batch: compare that too
        assert meta["scale"] == ds.scale
    assert torch.equal(got["batch"], ds.prepare(ds.x_train[:64]))
    if case.endswith("minus-one-one"):  # the tutorial's [-1, 1], not training statistics
        assert meta["mean"] == [0.5] * ds.sample_shape[0] == meta["std"]


def test_train_main_runs_an_epoch_and_its_checkpoint_loads(exported_data, tmp_path):
    _, cases = exported_data
    d, project = cases["digits"]
    ck = d / "ck"
    assert (ck / "best.pt").exists() and (ck / "last.pt").exists()
    trained = torch.load(d / "trained.pt", weights_only=True)
    saved = torch.load(ck / "last.pt", weights_only=True)
    assert set(saved) >= {"model", "optimizer", "epoch", "config"}
    assert saved["epoch"] == 1
    for k, v in trained.items():
        assert torch.equal(saved["model"][k], v)
    # the designer reads train.py's run folder as weights
    state = load_state_dict(ck)
    assert set(state) == set(trained)
    paths = export_project(project, tmp_path / "again", weights=ck)
    assert tmp_path / "again" / "weights.pt" in paths


def test_template_train_script_runs_on_its_sample_data(exported_data):
    """lstm-sentiment trains on the sample CSV shipped with the templates (one short epoch)."""
    root, cases = exported_data
    d, _ = cases["lstm-sentiment"]
    saved = torch.load(d / "ck" / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["vocab"][:2] == ["<pad>", "<unk>"]
    assert "Epoch 1: train loss" in (root / "driver.out").read_text()


def test_torchrun_two_processes_keep_equal_parameters(tmp_path):
    """Parameters and buffers (BatchNorm statistics) agree on both ranks after an epoch."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    g = chain(("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
              ("BatchNorm2d", {}), ("ReLU", {}), ("Dropout", {"p": 0.2}), ("Flatten", {}),
              ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    project = Project(name="cnn on digits", networks={"model": g}, dataset={"kind": "digits"},
                      training={"optimizer": "sgd", "lr": 0.05, "epochs": 1})
    out = tmp_path / "ddp"
    export_project(project, out)
    (out / "ranks.py").write_text(RANKS)
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "ranks.py", "--epochs", "1",
         "--device", "cpu", "--batch-size", "32", "--out", str(tmp_path / "ck")],
        cwd=out, capture_output=True, text=True, check=False, timeout=300, env=_env())
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "2 process(es)" in done.stdout and "Epoch 1:" in done.stdout
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert list(r0) == list(r1) and any(k.endswith("running_mean") for k in r0)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # training moved the weights away from their initial values
    fresh = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(fresh[k], r0[k]) for k in r0)
    from designer.engine.model.build import build_model

    init = build_model(project.graph, seed=0).state_dict()
    assert any(not torch.equal(init[k], r0[k]) for k in r0)


# --------------------------------------------------------------------------------------------
# What the script says and holds
# --------------------------------------------------------------------------------------------


def _imports(tree: ast.Module) -> list[str]:
    return [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


ALLOWED_IMPORTS = {
    "import argparse", "import math", "import os", "import re", "import time",
    "from dataclasses import dataclass", "import numpy as np", "import torch",
    "import torch.distributed as dist", "from torch import nn",
    "from torch.nn.parallel import DistributedDataParallel", "import importlib.util",
    "from sklearn.datasets import load_digits", "from sklearn.datasets import make_moons",
    "import torchvision.datasets", "from pathlib import Path", "from PIL import Image",
    "import csv", "from collections import Counter",
}


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.dnn.json")))
def test_every_template_gets_a_train_script(template):
    project = load_project(TEMPLATES / template)
    src = train_source(project, project_dir=TEMPLATES)
    if len(model_names(project.networks)) > 1:  # a GAN or VAE: its recipe writes train.py
        assert src is None
        return
    if src is None:  # another recipe writes its own script (the language model's)
        from designer.engine.train.recipes import recipe_of

        src = recipe_of(project).train_source(project, project_dir=TEMPLATES)
    tree = ast.parse(src)
    imports = _imports(tree)
    cls = [i for i in imports if i.startswith("from model import ")]
    assert len(cls) == 1
    assert set(imports) - set(cls) <= ALLOWED_IMPORTS
    assert not any("designer" in i for i in imports)
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"load_data", "train", "evaluate", "main"} <= funcs
    assert "model.train()" in src and "model.eval()" in src and "@torch.no_grad()" in src


HOSTILE = [
    'x; import os', '__import__("os").system("id")', "'''\"\"\"\\", "a\nimport os\nos.exit()",
    "\r\nexec('1')\u2028eval('2')", "torch", "nn", "None", "данные ✓", "{CONFIG}", "__CLASS__",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_stays_data(text, tmp_path):
    """Names, description, path and column names: only comments and string constants."""
    g = chain(("Flatten", {}), ("Linear", {"out_features": 2}), shape=(2,))
    plain = Project(name="p", description="d", networks={"model": g},
                    dataset={"kind": "csv", "path": "data.csv", "feature_columns": ["a", "b"],
                             "target_column": "t"})
    hostile = Project(name=text, description=text + "\n" + text, networks={"model": g},
                      dataset={"kind": "csv", "path": text, "feature_columns": [text, "b"],
                               "target_column": text})
    a = ast.parse(train_source(plain))
    b = ast.parse(train_source(hostile))
    # the same program: every node equal except string constants and the model class name
    _strip(a)
    strings_b = _strip(b)
    assert ast.dump(a) == ast.dump(b)
    assert text in strings_b  # the path and columns arrive intact, as data
    assert not _imports(b) or all("os.exit" not in i for i in _imports(b))


def _strip(tree: ast.AST) -> set[str]:
    """Blank out string constants and the class imported from model.py; return the strings."""
    strings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
            node.value = ""
        elif isinstance(node, ast.ImportFrom) and node.module == "model":
            node.names[0].name = "Cls"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id[:1].isupper() and node.func.id not in ("Data",):
            node.func.id = "Cls"
    return strings


def test_invalid_settings_are_refused():
    g = chain(("Linear", {"out_features": 2}), shape=(2,))
    with pytest.raises(CodegenError, match="training.lr"):
        train_source(Project(networks={"model": g}, training={"lr": "fast"}))
    with pytest.raises(CodegenError, match="dataset.path"):
        train_source(Project(networks={"model": g}, dataset={"kind": "csv"}))


def test_exported_code_is_lint_clean(tmp_path):
    """model.py and train.py of every supervised template pass ruff's default rules (and import
    sorting) at line length 100, as code a person would be happy to have written."""
    import importlib.util as iu

    if iu.find_spec("ruff") is None:
        pytest.skip("ruff is not installed")
    for path in sorted(TEMPLATES.glob("*.dnn.json")):
        project = load_project(path)
        if train_source(project, project_dir=TEMPLATES) is None:
            continue
        export_project(project, tmp_path / path.name.removesuffix(".dnn.json"),
                       project_dir=TEMPLATES)
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select",
                           "E,F,W,I", "--line-length", "100", "--output-format", "concise",
                           str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]


def _unused_functions(src: str) -> set[str]:
    tree = ast.parse(src)
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return defined - used - {"main"}


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.dnn.json")))
def test_train_script_has_no_dead_flags_or_functions(template):
    """A built-in dataset (digits, synthetic) gets no --data flag that would do nothing, and no
    helper is written that the script never calls."""
    project = load_project(TEMPLATES / template)
    src = preview_sources(project, project_dir=TEMPLATES)["train.py"]
    assert not _unused_functions(src)
    builtin = project.dataset.get("kind") in ("digits", "synthetic")
    assert ('"--data"' in src) == (not builtin)
    assert ("def load_data():" in src) == builtin
    if not builtin:  # where the data is read from shows in --help
        assert "(default: %(default)s)" in src
