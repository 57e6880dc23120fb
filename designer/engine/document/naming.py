"""The names exported code gives a project: each network's class name and the first comment
lines of every exported file (the project's name and description). Shared by the model writer
and every recipe's train.py writer."""

from __future__ import annotations

import textwrap

from ..model.blocks import model_names
from ..model.pysource import class_name, comment_lines, comment_text
from .project import is_named
from .templates import stale_description


def network_class_names(project) -> dict[str, str]:
    """The class name of each network: for the one model of a project, the project's name;
    otherwise each network's own name (``generator`` -> ``Generator``, ``BasicBlock``). Only
    :func:`~designer.engine.model.blocks.model_names` are models; block definitions are classes too."""
    models = model_names(project.networks)
    out: dict[str, str] = {}
    if len(models) == 1:  # a project never named keeps the placeholder: its network's name then
        out[models[0]] = class_name(project.name if is_named(project) else models[0])
    for net in [*models, *(n for n in project.networks if n not in models)]:
        if net in out:
            continue
        base = class_name(net)
        name, i = base, 2
        while name in out.values():
            name, i = f"{base}{i}", i + 1
        out[net] = name
    return out


def file_header(project, what: str) -> list[str]:
    """The file's first comment: the project's name and description. A description that is
    still the template's while the design has changed since is left out, with what changed: it
    was written for the template's design ("64 ReLU units") and no longer says the truth."""
    lines = [f"# {what} for the designer project: {comment_text(project.name)}"]
    changed = stale_description(project)
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        what_changed = comment_text("; ".join(changed[:3])).replace("\u2192", "->")
        note = ("(The template's description is left out: it describes the template's design, "
                f"and this one has changed since: {what_changed}{more}.)")
        lines += ["#", *("# " + line for line in textwrap.wrap(note, 96, break_long_words=False,
                                                                 break_on_hyphens=False))]
        return lines
    desc = comment_lines(project.description)
    if desc:
        lines.append("#")
        lines += [("# " + line).rstrip() for line in desc]
    return lines
