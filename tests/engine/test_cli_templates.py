"""Commands take a template by its id as well as a path: ``designer check lenet5``."""

from __future__ import annotations

import json

from designer.cli import main, resolve_file_arg
from designer.engine.document.templates import template_path


def test_a_template_id_resolves_to_its_file():
    assert resolve_file_arg("lenet5") == str(template_path("lenet5"))


def test_paths_and_unknown_names_are_left_alone(tmp_path):
    existing = tmp_path / "lenet5"
    existing.write_text("{}")
    assert resolve_file_arg(str(existing)) == str(existing)
    assert resolve_file_arg("no-such-template") == "no-such-template"
    assert resolve_file_arg("lenet5.dnn.json") == "lenet5.dnn.json"


def test_check_by_template_id(capsys):
    assert main(["check", "lenet5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 61706


def test_check_of_an_unknown_name_still_says_no_such_file(capsys):
    assert main(["check", "no-such-template"]) == 2
    assert "no such file" in capsys.readouterr().err
