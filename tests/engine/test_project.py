"""Project files: round trip, atomic save with a backup, and a corpus of bad files that each
give a clear ProjectError naming the place, never a traceback."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from designer.engine.document import project as project_mod
from designer.engine.document.project import (
    FORMAT_VERSION,
    Project,
    ProjectError,
    ProjectEvent,
    load_project,
    project_from_dict,
    project_to_json,
    save_project,
)
from designer.engine.model.graph import Graph
from designer.engine.model.shapes import analyze

from .helpers import chain

TEMPLATES = sorted(
    (Path(__file__).resolve().parents[2] / "designer" / "templates").glob("*.dnn.json"))


def two_network_project() -> Project:
    gen = chain(("Linear", {"out_features": 16}), ("ReLU", {}), ("Linear", {"out_features": 12}),
                ("Reshape", {"shape": [3, 2, 2]}), shape=(8,))
    disc = chain(("Conv2d", {"out_channels": 4, "kernel_size": [2, 1], "stride": 1,
                             "padding": [0, 1]}),
                 ("Flatten", {}), ("Linear", {"out_features": 1, "bias": False}),
                 shape=(3, 2, 2))
    for i, nid in enumerate(disc.nodes):
        disc.move(nid, (12.5 * i, -40.25 + i))
    return Project(name="GAN «test» \"quoted\"", description="two\nlines",
                   networks={"generator": gen, "discriminator": disc},
                   dataset={"kind": "synthetic", "name": "moons", "n_samples": 200},
                   training={"loss": "mse", "lr": 0.01, "epochs": 2},
                   metadata={"notes": ["a", {"b": 1}]})


def good_dict() -> dict:
    return two_network_project().to_dict()


def test_round_trip_keeps_everything(tmp_path):
    original = two_network_project()
    path = save_project(original, tmp_path / "gan.dnn.json")
    loaded = load_project(path)
    assert loaded.to_dict() == original.to_dict()
    assert list(loaded.networks) == ["generator", "discriminator"]
    disc = loaded.networks["discriminator"]
    assert [n.pos for n in disc.nodes.values()] == [
        n.pos for n in original.networks["discriminator"].nodes.values()]
    assert disc.node_by_name("conv1").params["kernel_size"] == [2, 1]
    assert loaded.graph is loaded.networks["generator"]
    assert loaded.dataset["name"] == "moons" and loaded.training["lr"] == 0.01
    # saving again writes the same bytes
    assert project_to_json(loaded) == path.read_text(encoding="utf-8")
    assert analyze(loaded.networks["generator"]).infos[
        loaded.networks["generator"].node_by_name("reshape1").id].output_shape == (3, 2, 2)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_load_and_round_trip(path, tmp_path):
    project = load_project(path)
    again = load_project(save_project(project, tmp_path / path.name))
    assert again.to_dict() == project.to_dict()


def test_atomic_save_keeps_a_backup_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "net.dnn.json"
    p = two_network_project()
    save_project(p, path)
    assert not (tmp_path / "net.dnn.json.bak").exists()
    first = path.read_text(encoding="utf-8")
    p.name = "second"
    save_project(p, path)
    assert (tmp_path / "net.dnn.json.bak").read_text(encoding="utf-8") == first
    assert load_project(path).name == "second"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["net.dnn.json", "net.dnn.json.bak"]


def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "net.dnn.json"
    save_project(two_network_project(), path)
    before = path.read_bytes()

    real_replace = os.replace

    def broken_replace(src, dst):  # the backup's rename works, the file's own fails
        if Path(dst) == path:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(project_mod.os, "replace", broken_replace)
    p = two_network_project()
    p.name = "never written"
    with pytest.raises(OSError):
        save_project(p, path)
    assert path.read_bytes() == before
    assert (tmp_path / "net.dnn.json.bak").read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["net.dnn.json", "net.dnn.json.bak"]


def _set(path: str, value):
    """A mutation of the good document: set the item at a dotted path (list indexes as ints)."""

    def mutate(d: dict) -> dict:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        target = d
        for k in keys[:-1]:
            target = target[k]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
        return d

    return mutate


_DELETE = object()
NODE = "networks.1.nodes.1"  # the discriminator's conv1

# (case id, mutation of the good document or raw file bytes, words the message must contain)
BAD = [
    ("truncated", lambda: project_to_json(two_network_project())[:300].encode(),
     "not valid JSON"),
    ("empty", lambda: b"", "not valid JSON"),
    ("not-utf8", lambda: b'{"format_version": 1, "name": "caf\xe9"}', "not UTF-8"),
    ("binary", lambda: bytes(range(256)) * 4, "not UTF-8"),
    ("top-level-list", lambda: b"[1, 2]", "expected a JSON object at the top level"),
    ("nan", lambda: project_to_json(two_network_project()).replace('"lr": 0.01', '"lr": NaN')
     .encode(), "NaN is not allowed"),
    ("infinity-literal", lambda: project_to_json(two_network_project()).replace(
        '"lr": 0.01', '"lr": -Infinity').encode(), "Infinity is not allowed"),
    ("float-overflow", lambda: project_to_json(two_network_project()).replace(
        '"lr": 0.01', '"lr": 1e999').encode(), "too large"),
    ("huge-integer-literal", lambda: project_to_json(two_network_project()).replace(
        '"epochs": 2', '"epochs": ' + "9" * 5000).encode(), "not valid JSON"),
    ("deep-nesting", lambda: b'{"format_version": 1, "metadata": ' + b"[" * 100000
     + b"]" * 100000 + b"}", "not valid JSON"),
    ("nested-settings", _set("metadata.deep", json.loads("[" * 40 + "]" * 40)),
     "metadata.deep[0]"),
    ("missing-format-version", _set("format_version", _DELETE), "format_version: missing"),
    ("newer-format-version", _set("format_version", FORMAT_VERSION + 1),
     "written by a newer designer"),
    ("format-version-text", _set("format_version", "1"), "format_version: expected a positive"),
    ("no-networks", _set("networks", []), "networks: expected a non-empty list"),
    ("network-not-object", _set("networks.0", "model"), "networks[0]: expected an object"),
    ("nodes-not-list", _set("networks.0.nodes", {"a": 1}), "networks[0].nodes: expected a list"),
    ("unknown-layer", _set(NODE + ".type", "Conv3d"),
     'networks[1].nodes[1].type: unknown layer type "Conv3d" (did you mean Conv2d or Conv1d or StdConv2d?)'),
    ("unknown-layer-far", _set(NODE + ".type", "Quantum"),
     'unknown layer type "Quantum" (see the palette'),
    ("type-not-text", _set(NODE + ".type", 7), "networks[1].nodes[1].type"),
    ("kernel-text", _set(NODE + ".params.kernel_size", "abc"),
     ('networks[1].nodes[1].params.kernel_size: expected a positive integer or a list of 2, '
      'got "abc"')),
    ("negative-size", _set(NODE + ".params.out_channels", -4),
     "networks[1].nodes[1].params.out_channels: expected a positive integer, got -4"),
    ("zero-size", _set(NODE + ".params.out_channels", 0),
     "params.out_channels: expected a positive integer, got 0"),
    ("huge-size", _set(NODE + ".params.out_channels", 10**12),
     "params.out_channels: 1000000000000 is too large: out_channels can be at most 1,000,000"),
    ("huge-float-size", _set(NODE + ".params.out_channels", 1e300),
     "params.out_channels: 1e+300 is too large"),
    ("fractional-size", _set(NODE + ".params.out_channels", 2.5),
     "params.out_channels: expected a positive integer, got 2.5"),
    ("bool-as-int", _set(NODE + ".params.out_channels", True),
     "params.out_channels: expected a positive integer, got True"),
    ("wrong-list-length", _set(NODE + ".params.stride", [1, 1, 1]),
     "params.stride: expected an integer or a list of 2 integers"),
    ("unknown-param", _set(NODE + ".params.foo", 1),
     'networks[1].nodes[1].params.foo: Conv2d has no parameter "foo"'),
    ("odd-param-name", _set(NODE + ".params.a\"b\nc", 1),
     'networks[1].nodes[1].params["a\\"b\\nc"]: Conv2d has no parameter'),
    ("params-not-object", _set(NODE + ".params", [3]),
     "networks[1].nodes[1].params: expected an object of parameters"),
    ("bad-choice", _set("networks.0.nodes.0.params.dtype", "float16"),
     "networks[0].nodes[0].params.dtype: expected one of float32, int64"),
    ("input-shape-negative", _set("networks.0.nodes.0.params.shape", [8, -1]),
     "networks[0].nodes[0].params.shape: every size must be between 1 and"),
    ("input-shape-empty", _set("networks.0.nodes.0.params.shape", []),
     "networks[0].nodes[0].params.shape"),
    ("input-shape-too-many-elements", _set("networks.0.nodes.0.params.shape", [100000] * 3),
     "has too many elements"),
    ("name-with-code", _set(NODE + ".name", "x; import os"),
     "networks[1].nodes[1].name: \"x; import os\" is not a valid name"),
    ("name-with-quotes", _set(NODE + ".name", 'a"b\'c'), "networks[1].nodes[1].name"),
    ("name-with-newline", _set(NODE + ".name", "fc\nimport os"),
     'networks[1].nodes[1].name: "fc\\nimport os" is not a valid name'),
    ("name-keyword", _set(NODE + ".name", "lambda"), "is a Python keyword"),
    ("name-reserved", _set(NODE + ".name", "forward"), "is reserved"),
    ("name-not-text", _set(NODE + ".name", 5), "networks[1].nodes[1].name"),
    ("duplicate-name", _set(NODE + ".name", "input1"), "another layer is already named"),
    ("duplicate-id", lambda: _dup_id(), "networks[1].nodes[1].id: duplicate id"),
    ("id-with-slash", _set(NODE + ".id", "../etc"), "networks[1].nodes[1].id"),
    ("bad-pos", _set(NODE + ".pos", [1, "x"]), "networks[1].nodes[1].pos: expected [x, y]"),
    ("huge-pos", _set(NODE + ".pos", [1e300, 0]), "networks[1].nodes[1].pos"),
    ("edge-to-nowhere", _set("networks.1.edges.0.dst", "nope"),
     'networks[1].edges[0].dst: no node with id "nope"'),
    ("edge-src-list", _set("networks.1.edges.0.src", ["a"]), "networks[1].edges[0].src"),
    ("edge-port-text", _set("networks.1.edges.0.dst_port", "0"),
     "networks[1].edges[0].dst_port: expected an integer from 0 to 63"),
    ("edge-not-object", _set("networks.1.edges.0", [1, 2]), "networks[1].edges[0]: expected"),
    ("duplicate-network", _set("networks.1.name", "generator"),
     "networks[1].name: another network is already named"),
    ("network-name-code", _set("networks.1.name", "__import__('os')"), "networks[1].name"),
    ("dataset-not-object", _set("dataset", "digits"), "dataset: expected an object"),
    ("name-not-text-top", _set("name", ["x"]), "name: expected text"),
    # issue 17.1: lone surrogates (half of an escaped character) anywhere, keys included
    ("surrogate-in-name", lambda: _ascii_json(_set("name", "\ud800")),
     'name: the text "\\ud800" holds a lone surrogate (\\ud800)'),
    ("surrogate-inside-text", lambda: _ascii_json(_set("description", "a\udfffb")),
     'description: the text "a\\udfffb" holds a lone surrogate'),
    ("emoji-half", lambda: _ascii_json(_set("dataset.name", "\ud83d")),
     "dataset.name: the text"),
    ("surrogate-in-node-name", lambda: _ascii_json(_set(NODE + ".name", "fc\udc00")),
     "networks[1].nodes[1].name: the text"),
    ("surrogate-in-setting-list", lambda: _ascii_json(_set("training.extra", ["ok", "\udfff"])),
     "training.extra[1]: the text"),
    ("surrogate-in-key", lambda: _ascii_json(_set("metadata.a\udfffb", 1)),
     'metadata["a\\udfffb"]: the key'),
    ("surrogate-in-param-key", lambda: _ascii_json(_set(NODE + ".params.k\ud800", 1)),
     'networks[1].nodes[1].params["k\\ud800"]: the key'),
    # issue 17.2: integers beyond float range where a float (or anything) belongs
    ("int-beyond-float-lr", _set("training.lr", 10**309),
     "training.lr: an integer of about 310 digits is too large for a number"),
    ("int-beyond-float-pos", _set(NODE + ".pos", [10**400, 0]), "networks[1].nodes[1].pos[0]"),
    ("int-beyond-float-val-fraction", _set("dataset.val_fraction", -10**309),
     "dataset.val_fraction: a negative integer of about 310 digits is too large"),
    ("int-beyond-float-slope", lambda d: _leaky(d, 10**309),
     "networks[0].nodes[2].params.negative_slope: an integer of about"),
    # issue 17.3: large legal-looking files are refused before parsing, in milliseconds
    ("million-small-dicts", lambda: _with_metadata(b'{"a":1},' * 1_000_000 + b"{}"),
     "objects and lists is more than a project file holds"),
    ("millions-of-empty-lists", lambda: _with_metadata(b"[]," * 3_000_000 + b"[]"),
     "objects and lists is more than a project file holds"),
    ("millions-of-numbers", lambda: _with_metadata(b"1," * 5_000_000 + b"1"),
     "values is more than a project file holds"),
    ("nested-deeper-than-the-limit", _set("metadata.deep", json.loads("[" * 25 + "]" * 25)),
     "nested more than"),
    ("unknown-top-level-key", _set("junk", {"a": [1, 2]}), "junk: unknown key (known: format_version"),
    ("misspelt-top-level-key", _set("trainig", {}), "trainig: unknown key (did you mean 'training'?)"),
    ("unknown-network-key", _set("networks.0.extra", [[]]), "networks[0].extra: unknown key"),
    ("unknown-node-key", _set(NODE + ".parms", {}),
     "networks[1].nodes[1].parms: unknown key (did you mean 'params'?)"),
    ("unknown-edge-key", _set("networks.1.edges.0.port", 0), "networks[1].edges[0].port: unknown key"),
    # issue 17.4: "$" matches before a trailing newline: every name and id is matched whole
    ("node-name-trailing-newline", _set(NODE + ".name", "fc1\n"),
     'networks[1].nodes[1].name: "fc1\\n" is not a valid name'),
    ("network-name-trailing-newline", _set("networks.1.name", "discriminator\n"),
     "networks[1].name"),
    ("node-id-trailing-newline", lambda d: _node_id(d, "abc\n"), "networks[1].nodes[1].id"),
    ("layer-type-trailing-newline", _set(NODE + ".type", "Conv2d\n"),
     "networks[1].nodes[1].type: unknown layer type"),
    ("choice-trailing-newline", _set(NODE + ".params.padding_mode", "zeros\n"),
     "networks[1].nodes[1].params.padding_mode"),
    # issue 17.5: a NUL in a setting (a dataset path: "embedded null byte" at export)
    ("nul-in-csv-path", _set("dataset", {"kind": "csv", "path": "data\x00.csv"}),
     "dataset.path: contains a NUL character"),
    ("nul-in-image-folder", _set("dataset", {"kind": "image_folder", "path": "\x00"}),
     "dataset.path: contains a NUL character"),
    ("nul-in-text-column", _set("dataset", {"kind": "csv_text", "path": "t.csv",
                                            "text_column": "te\x00xt"}),
     "dataset.text_column: contains a NUL character"),
    ("nul-in-feature-columns", _set("dataset.feature_columns", ["a", "b\x00"]),
     "dataset.feature_columns[1]: contains a NUL character"),
]


def _ascii_json(mutate) -> bytes:
    """The mutated document as a file written with ASCII escapes: how a lone surrogate, which
    has no UTF-8 form, reaches a file (``"\\ud800"``)."""
    return json.dumps(mutate(good_dict()), ensure_ascii=True).encode()


def _leaky(d: dict, slope) -> dict:
    node = d["networks"][0]["nodes"][2]  # the generator's relu1
    node["type"], node["params"] = "LeakyReLU", {"negative_slope": slope}
    return d


def _node_id(d: dict, new_id: str) -> dict:
    nodes, edges = d["networks"][1]["nodes"], d["networks"][1]["edges"]
    old = nodes[1]["id"]
    nodes[1]["id"] = new_id
    for e in edges:
        for k in ("src", "dst"):
            if e[k] == old:
                e[k] = new_id
    return d


def _with_metadata(payload: bytes) -> bytes:
    """A valid document whose metadata is a list holding ``payload`` (about 8 to 10 MB)."""
    text = json.dumps(good_dict())
    head, sep, _ = text.rpartition('"metadata": ')
    assert sep
    return (head + sep).encode() + b'{"junk": [' + payload + b"]}}"


def _dup_id() -> bytes:
    d = good_dict()
    d["networks"][1]["nodes"][1]["id"] = d["networks"][1]["nodes"][0]["id"]
    return json.dumps(d).encode()


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_files_give_a_clear_error_naming_the_place(case, tmp_path):
    _, make, words = case
    made = make() if make.__code__.co_argcount == 0 else make(copy.deepcopy(good_dict()))
    data = made if isinstance(made, bytes) else json.dumps(made, ensure_ascii=False).encode()
    path = tmp_path / "bad.dnn.json"
    path.write_bytes(data)
    with pytest.raises(ProjectError) as info:
        load_project(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert words in message, message
    assert "Traceback" not in message and len(message) < 400
    assert "\n" not in message


def test_a_cycle_loads_and_the_check_reports_it():
    d = good_dict()
    net = d["networks"][0]
    ids = [n["id"] for n in net["nodes"]]
    net["edges"].append({"src": ids[3], "dst": ids[1], "dst_port": 0})  # fc2 -> fc1
    project = project_from_dict(d)
    problems = analyze(project.graph).problems
    assert any(p.code == "cycle" and "fc1 -> relu1 -> fc2 -> fc1" in p.message for p in problems)


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "nope.dnn.json")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)


def test_too_large_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(project_mod, "MAX_FILE_BYTES", 100)
    path = save_project(two_network_project(), tmp_path / "x.dnn.json")
    with pytest.raises(ProjectError, match="too large for a project file"):
        load_project(path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.dnn.json"
    path.write_bytes(b"\xef\xbb\xbf" + project_to_json(two_network_project()).encode())
    assert load_project(path).name == two_network_project().name


def test_defaults_fill_missing_params_and_sections():
    d = good_dict()
    for key in ("dataset", "training", "metadata", "name", "description"):
        del d[key]
    d["networks"][1]["nodes"][1]["params"] = {"out_channels": 4}
    del d["networks"][1]["nodes"][1]["pos"]
    p = project_from_dict(d)
    conv = p.networks["discriminator"].node_by_name("conv1")
    assert conv.params["kernel_size"] == 3 and conv.params["in_channels"] is None
    assert conv.pos == (0.0, 0.0)
    assert p.dataset == {} and p.training == {} and p.name == "Untitled"


def test_nothing_in_a_document_is_executed(tmp_path):
    """Strings that look like code stay data: the description and settings are kept verbatim."""
    evil = "__import__('os').system('touch " + str(tmp_path / "pwned") + "')"
    d = good_dict()
    d["description"] = evil
    d["metadata"] = {"x": evil, "!!python/object": evil}
    p = project_from_dict(d)
    assert p.description == evil
    save_project(p, tmp_path / "evil.dnn.json")
    assert not (tmp_path / "pwned").exists()
    assert os.listdir(tmp_path) == ["evil.dnn.json"]


def test_empty_graph_project_saves_and_loads(tmp_path):
    p = Project(networks={"model": Graph()})
    assert load_project(save_project(p, tmp_path / "e.dnn.json")).graph.nodes == {}


# -- change events ---------------------------------------------------------------------------------


def _recorded(project: Project) -> list[ProjectEvent]:
    events: list[ProjectEvent] = []
    project.subscribe(events.append)
    return events


def test_settings_change_emits_one_event_with_old_and_new():
    p = Project(training={"epochs": 3})
    events = _recorded(p)
    old = p.set_section("training", {"epochs": 5, "lr": 0.01})
    assert old == {"epochs": 3}
    assert events == [ProjectEvent(ProjectEvent.SETTINGS_CHANGED, "training", old={"epochs": 3},
                                   new={"epochs": 5, "lr": 0.01})]
    assert p.training == {"epochs": 5, "lr": 0.01}
    p.set_section("dataset", {"kind": "digits"})
    assert [(e.kind, e.key) for e in events[1:]] == [(ProjectEvent.SETTINGS_CHANGED, "dataset")]


def test_setting_the_same_values_emits_nothing():
    """As Graph.set_params, rename and move: no event when nothing really changes."""
    p = Project(name="a", description="d", dataset={"kind": "digits"})
    events = _recorded(p)
    p.set_section("dataset", {"kind": "digits"})
    p.set_name("a")
    p.set_description("d")
    p.rename_network("model", "model")
    assert events == []


def test_the_project_keeps_its_own_copy_of_the_settings():
    p = Project()
    values = {"epochs": 2, "shape": [1, 2]}
    p.set_section("training", values)
    values["shape"].append(3)
    values["epochs"] = 9
    assert p.training == {"epochs": 2, "shape": [1, 2]}


def test_bad_sections_and_values_are_refused_without_an_event():
    p = Project()
    events = _recorded(p)
    with pytest.raises(ValueError, match="no settings section"):
        p.set_section("metadata", {})
    with pytest.raises(ValueError, match="expected a dict"):
        p.set_section("training", [1])
    with pytest.raises(ValueError, match="expected text"):
        p.set_name(3)
    with pytest.raises(ValueError, match="longer than"):
        p.set_name("x" * 201)
    assert events == [] and p.training == {} and p.name == "Untitled"


def test_name_and_description_events():
    p = Project()
    events = _recorded(p)
    assert p.set_name("GAN") == "Untitled"
    assert p.set_description("two\nlines") == ""
    assert events == [ProjectEvent(ProjectEvent.NAME_CHANGED, old="Untitled", new="GAN"),
                      ProjectEvent(ProjectEvent.DESCRIPTION_CHANGED, old="", new="two\nlines")]


def test_network_add_remove_rename_events_and_order():
    p = two_network_project()
    gen, disc = p.networks["generator"], p.networks["discriminator"]
    before = p.to_dict()
    events = _recorded(p)
    extra = p.add_network("critic", index=1)
    assert list(p.networks) == ["generator", "critic", "discriminator"]
    assert events[-1] == ProjectEvent(ProjectEvent.NETWORK_ADDED, "critic", new=extra, index=1)
    p.rename_network("generator", "gen")
    assert list(p.networks) == ["gen", "critic", "discriminator"]  # the main network stays first
    assert p.graph is gen
    assert events[-1] == ProjectEvent(ProjectEvent.NETWORK_RENAMED, "gen", old="generator",
                                      new="gen")
    graph, index = p.remove_network("discriminator")
    assert graph is disc and index == 2
    assert events[-1] == ProjectEvent(ProjectEvent.NETWORK_REMOVED, "discriminator", old=disc,
                                      index=2)
    assert len(events) == 3
    # Put back where it was: the document is exactly as before.
    p.add_network("discriminator", disc, 2)
    p.remove_network("critic")
    p.rename_network("gen", "generator")
    assert p.to_dict() == before


def test_network_edits_that_would_break_the_file_are_refused():
    p = two_network_project()
    events = _recorded(p)
    with pytest.raises(ValueError, match="already named"):
        p.add_network("discriminator")
    with pytest.raises(ValueError, match="already named"):
        p.rename_network("generator", "discriminator")
    with pytest.raises(ValueError):
        p.add_network("no spaces")
    with pytest.raises(ValueError, match="no network named"):
        p.remove_network("critic")
    p.remove_network("generator")
    with pytest.raises(ValueError, match="at least one network"):
        p.remove_network("discriminator")
    from designer.engine.document.project import MAX_NETWORKS

    for i in range(MAX_NETWORKS - 1):
        p.add_network(f"net{i}")
    with pytest.raises(ValueError, match=f"at most {MAX_NETWORKS}"):
        p.add_network("net99")
    assert len(events) == MAX_NETWORKS


def test_unsubscribed_listeners_hear_nothing_and_construction_is_unchanged():
    p = Project("n", "d", {"model": Graph()}, {"kind": "digits"}, {"epochs": 1}, {"k": 1})
    events = _recorded(p)
    p.unsubscribe(events.append)
    p.set_name("m")
    assert events == []
    assert p.to_dict()["training"] == {"epochs": 1} and "_listeners" not in p.to_dict()
    assert p == Project("m", "d", p.networks, {"kind": "digits"}, {"epochs": 1}, {"k": 1})
