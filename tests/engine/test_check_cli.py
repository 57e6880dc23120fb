"""``designer check FILE``: exit codes 0 (clean), 1 (design errors), 2 (unreadable file), the
table, and the --json report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from designer.cli import main
from designer.engine.document.project import Project, save_project

from .helpers import chain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_file(tmp_path) -> Path:
    g = chain(("Conv2d", {"out_channels": 4, "kernel_size": 3}), ("ReLU", {}), ("Flatten", {}),
              ("Linear", {"out_features": 3}), shape=(1, 6, 6))
    return save_project(Project(name="tiny", networks={"model": g}), tmp_path / "ok.dnn.json")


@pytest.fixture
def broken_file(tmp_path) -> Path:
    g = chain(("Flatten", {}), ("Linear", {"in_features": 99, "out_features": 3}), shape=(2, 5))
    fc = g.node_by_name("fc1").id
    spare = g.add_node("ReLU", name="spare")
    g.connect(fc, spare.id)
    return save_project(Project(networks={"model": g}), tmp_path / "broken.dnn.json")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["check", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_design_exits_0_with_a_table(capsys, clean_file):
    code, out, err = run_cli(capsys, clean_file)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "Project: tiny"
    assert lines[1].split() == ["Layer", "Type", "Output", "shape", "Params", "MACs"]
    row = next(line for line in lines if line.startswith("conv1 "))
    assert "(N, 4, 4, 4)" in row and " 40 " in row + " "  # 4*1*9 weights + 4 biases
    assert "Total parameters: 235" in out  # conv 40 + fc 64*3+3
    assert lines[-1] == "OK: no errors"


def test_json_report_has_totals_and_per_node_shapes(capsys, clean_file):
    code, out, _ = run_cli(capsys, clean_file, "--json")
    assert code == 0
    rep = json.loads(out)
    assert rep["ok"] is True and rep["errors"] == 0
    assert rep["total_params"] == 235
    layers = {layer["name"]: layer for layer in rep["layers"]}
    assert layers["input1"]["output_shape"] == [1, 6, 6]
    assert layers["conv1"]["output_shape"] == [4, 4, 4] and layers["conv1"]["params"] == 40
    assert layers["flatten1"]["output_shape"] == [64]
    assert layers["flatten1"]["dtype"] == "float"
    assert layers["fc1"]["output_shape"] == [3] and layers["fc1"]["params"] == 195
    assert layers["fc1"]["macs"] == 192
    assert [n["name"] for n in rep["networks"]] == ["model"]
    assert rep["networks"][0]["problems"] == []


def test_design_errors_exit_1_and_are_pinned(capsys, broken_file):
    code, out, _ = run_cli(capsys, broken_file)
    assert code == 1
    assert ("ERROR: Linear 'fc1' receives 10 features, but in_features is fixed to 99" in out)
    assert "ERROR: 'spare' does not lead to any Output" in out
    assert out.splitlines()[-1] == "2 error(s)"
    code, out, _ = run_cli(capsys, broken_file, "--json")
    assert code == 1
    rep = json.loads(out)
    assert rep["ok"] is False and rep["errors"] == 2
    problems = rep["networks"][0]["problems"]
    assert {p["code"] for p in problems} == {"shape", "unreachable_to_output"}
    assert next(p for p in problems if p["code"] == "shape")["nodes"] == ["fc1"]
    layers = {layer["name"]: layer for layer in rep["layers"]}
    assert layers["fc1"]["output_shape"] is None and layers["flatten1"]["output_shape"] == [10]


@pytest.mark.parametrize("content, words", [
    (b'{"format_version": 1, "networks": [', "not valid JSON"),
    (b'{"format_version": 99, "networks": []}', "newer designer"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (None, "no such file"),
])
def test_unreadable_files_exit_2_with_one_line(capsys, tmp_path, content, words):
    path = tmp_path / "bad.dnn.json"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run_cli(capsys, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err
    code, out, err = run_cli(capsys, path, "--json")
    assert code == 2
    assert json.loads(out)["ok"] is False and words in json.loads(out)["file_error"]


def test_bad_params_in_file_exit_2_naming_the_place(capsys, clean_file):
    data = json.loads(clean_file.read_text())
    data["networks"][0]["nodes"][1]["params"]["kernel_size"] = "abc"
    clean_file.write_text(json.dumps(data))
    code, _, err = run_cli(capsys, clean_file)
    assert code == 2
    assert ('networks[0].nodes[1].params.kernel_size: expected a positive integer or a list of 2, '
            'got "abc"') in err


def test_a_cycle_in_a_file_exits_1(capsys, clean_file):
    data = json.loads(clean_file.read_text())
    ids = [n["id"] for n in data["networks"][0]["nodes"]]
    data["networks"][0]["edges"].append({"src": ids[2], "dst": ids[2], "dst_port": 0})
    clean_file.write_text(json.dumps(data))
    code, out, _ = run_cli(capsys, clean_file)
    assert code == 1 and "Cycle: relu1 -> relu1" in out


def test_the_console_entry_point(broken_file):
    """The real command line (a subprocess imports torch, seconds: one run only)."""
    proc = subprocess.run([sys.executable, "-m", "designer", "check", "--json", str(broken_file)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["errors"] == 2


def test_settings_that_train_would_refuse_are_errors(capsys, clean_file):
    """A file whose graph is fine but whose training or dataset settings are not must not check
    clean: ``designer train`` refuses it at once."""
    data = json.loads(clean_file.read_text())
    data["training"] = {"loss": "foo", "lr": 0.01}
    data["dataset"] = {"kind": "synthetic", "name": "moons", "n_samples": 1}
    clean_file.write_text(json.dumps(data))
    code, out, _ = run_cli(capsys, clean_file)
    assert code == 1
    assert "ERROR: training.loss: expected one of cross_entropy" in out
    assert "ERROR: dataset.n_samples: expected an integer from 10" in out
    assert out.splitlines()[-1] == "2 error(s)"
