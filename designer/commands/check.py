"""``designer check FILE``: per-layer shapes, parameters and MACs, and every problem."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a design: shapes, parameter counts, problems",
                       description="Print each layer's output shape, parameter count and MACs, "
                       "and every problem pinned to the layer that causes it. Exits 1 when the "
                       "design has errors, 2 when the file cannot be read.")
    p.add_argument("file", help="project file (.dnn.json), or a template's id (e.g. mlp-digits)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def report(project) -> dict:
    """The check result of every network in a project, as plain data."""
    from ..engine.model.memory import check_memory
    from ..engine.model.shapes import analyze

    networks = []
    total_errors = 0
    for net_name, graph in project.networks.items():
        analysis = analyze(graph)
        layers = []
        for nid in list(analysis.order) + [n for n in graph.nodes if n not in analysis.order]:
            node, info = graph.nodes[nid], analysis.infos.get(nid)
            layers.append({
                "id": nid, "name": node.name, "type": node.type,
                **({"block": node.params.get("block"), "repeat": node.params.get("repeat", 1)}
                   if node.kind.is_block else {}),
                "output_shape": list(info.output_shape) if info and info.output_shape else None,
                "dtype": info.dtype if info and info.output_shape else None,
                "params": info.params if info else 0,
                "macs": info.macs if info else 0,
            })
        # memory at the project's batch size: a warning near, an error beyond this machine's
        mem_problems, memory = check_memory(graph, analysis, project.training)
        found = list(analysis.problems) + mem_problems
        problems = [{"severity": p.severity, "message": p.message, "node_ids": list(p.node_ids),
                     "nodes": [graph.nodes[i].name for i in p.node_ids if i in graph.nodes],
                     "code": p.code} for p in found]
        errors = sum(1 for p in found if p.severity == "error")
        total_errors += errors
        networks.append({"name": net_name, "layers": layers, "problems": problems,
                         "total_params": analysis.total_params, "total_macs": analysis.total_macs,
                         "memory": memory, "ok": errors == 0})
    out = {"project": project.name, "ok": total_errors == 0, "errors": total_errors,
           "networks": networks}
    extra = _settings_problems(project) + _cross_checks(project)
    if extra:
        out["problems"] = extra
        out["errors"] += sum(1 for p in extra if p["severity"] == "error")
        out["ok"] = out["errors"] == 0
    main = networks[0]
    from ..engine.model.blocks import model_names

    models = model_names(project.networks)  # a block's parameters are counted in its uses
    out["total_params"] = sum(n["total_params"] for n in networks if n["name"] in models)
    out["layers"] = main["layers"]
    return out


def _settings_problems(project) -> list[dict]:
    """The dataset and training settings, validated as ``designer train`` validates them, so that a
    file which checks clean does not then fail to train on a bad setting."""
    from ..engine.train.config import ConfigError, validate_dataset, validate_training

    out = []
    for validate, values in ((validate_dataset, project.dataset),
                             (validate_training, project.training)):
        try:
            validate(values)
        except ConfigError as exc:
            out.append({"severity": "error", "message": str(exc), "node_ids": [],
                        "code": "settings"})
    return out


def _cross_checks(project) -> list[dict]:
    """Checks between networks of one project (e.g. a GAN's generator and discriminator)."""
    from ..engine.search.space import search_problems
    from ..engine.train.recipes import cross_network_problems

    return [{"severity": p.severity, "message": p.message, "node_ids": list(p.node_ids),
             "code": p.code} for p in cross_network_problems(project) + search_problems(project)]


def _human(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def format_report(rep: dict) -> str:
    lines = [f"Project: {rep['project']}"]
    for net in rep["networks"]:
        if len(rep["networks"]) > 1:
            lines.append(f"\nNetwork: {net['name']}")
        rows = [("Layer", "Type", "Output shape", "Params", "MACs")]
        for layer in net["layers"]:
            shape = layer["output_shape"]
            kind = layer["type"]
            if "block" in layer:  # a block use: the network it uses, and its copies
                kind = f"{layer['block']}" + (f" x{layer['repeat']}" if layer["repeat"] > 1 else "")
            rows.append((layer["name"], kind,
                         "(N, " + ", ".join(map(str, shape)) + ")" if shape else "?",
                         f"{layer['params']:,}", _human(layer["macs"])))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for j, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))))
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(f"Total parameters: {net['total_params']:,}   MACs per sample: "
                     f"{_human(net['total_macs'])}   Size: {net['total_params'] * 4 / 1e6:.2f} MB "
                     "(float32)")
        if net.get("memory"):
            lines.append(f"Memory: {net['memory']['text']}")
        for p in net["problems"]:
            lines.append(f"{p['severity'].upper()}: {p['message']}")
    for p in rep.get("problems", []):
        lines.append(f"{p['severity'].upper()}: {p['message']}")
    lines.append("OK: no errors" if rep["ok"] else f"{rep['errors']} error(s)")
    return "\n".join(lines)


def say(text: str, stream=None) -> None:
    """``print`` that cannot fail on a character the stream cannot encode (a file name that is
    not UTF-8 arrives with lone surrogates; a console may lack a project's characters): such
    characters are written as escapes."""
    stream = sys.stdout if stream is None else stream
    try:
        print(text, file=stream)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"), file=stream)


def run(args: argparse.Namespace) -> int:
    from ..engine.document.project import ProjectError, load_project

    try:
        project = load_project(args.file)
    except ProjectError as exc:
        if args.json:
            say(json.dumps({"ok": False, "file_error": str(exc)}))
        else:
            say(f"error: {exc}", sys.stderr)
        return 2
    rep = report(project)
    say(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 0 if rep["ok"] else 1
