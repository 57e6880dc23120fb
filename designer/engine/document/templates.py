"""The templates gallery: ready projects for the networks that tutorials teach.

A template is an ordinary project file (``designer/templates/<id>.dnn.json``) loaded by the same
code that loads user files; the folder is package data, so an installed designer (a wheel, pipx)
has them too. :func:`list_templates` describes each one for the New dialog (name, description,
parameter count, default dataset); :func:`load_template` opens one as a new project.

The JSON files are generated from readable Python definitions by ``scripts/make_templates.py``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model.blocks import block_names, model_names
from ..model.design_diff import design_changes
from ..model.shapes import analyze  # torch import: deferred so that listing ids stays cheap
from .project import SUFFIX, Project, ProjectError, load_project

#: The template that opens with the app.
DEFAULT_TEMPLATE = "mlp-digits"

#: Where the templates live: ``DESIGNER_TEMPLATES`` if set, else the ``templates`` folder inside
#: the ``designer`` package (package data: the same in a checkout, an editable install and a wheel).
ENV_VAR = "DESIGNER_TEMPLATES"


class TemplateError(ValueError):
    """A template cannot be found or read; the message says which and why."""


@dataclass(frozen=True)
class TemplateInfo:
    """What the gallery shows about one template."""

    id: str  # file name without ".dnn.json", e.g. "lenet5"
    path: Path
    name: str
    description: str
    params: int | None  # total parameters of all its networks; None if the design has errors
    dataset: str  # the default dataset in words, e.g. "MNIST (torchvision, downloaded on first use)"
    dataset_settings: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    teaches: str = ""
    expected: str = ""
    order: int = 1000  # position in the gallery
    layers: int = 0  # number of nodes, all networks together
    networks: int = 1  # models: a GAN holds two (the blocks they use are not counted)
    blocks: int = 0  # networks used as blocks by the others
    needs_download: bool = False
    error: str | None = None  # set when the file could not be read; the gallery shows it

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_TEMPLATE


def templates_dir() -> Path:
    """The folder holding the template files."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "templates"


def template_path(template_id: str, directory: str | os.PathLike | None = None) -> Path:
    """The file of one template (raises :class:`TemplateError` when there is none)."""
    folder = Path(directory) if directory is not None else templates_dir()
    if not isinstance(template_id, str) or not template_id or "/" in template_id \
            or "\\" in template_id or template_id.startswith("."):
        raise TemplateError(f"{template_id!r} is not a template id")
    path = folder / f"{template_id}{SUFFIX}"
    if not path.is_file():
        known = ", ".join(_ids(folder)) or "none"
        raise TemplateError(f"no template {template_id!r} in {folder} (known: {known})")
    return path


def _ids(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(SUFFIX)] for p in folder.glob(f"*{SUFFIX}"))


def describe_dataset(ds: dict[str, Any]) -> str:
    """A dataset section in a few words, for the gallery."""
    kind = ds.get("kind", "digits")
    name = ds.get("name")
    if kind == "digits":
        return "digits (scikit-learn's 8x8 handwritten digits, offline)"
    if kind == "synthetic":
        return f"synthetic {name or ''} data (generated, offline)".replace("  ", " ")
    if kind == "torchvision":
        extra = ""
        if ds.get("resize"):
            extra = f", resized to {ds['resize'][0]}x{ds['resize'][1]}"
        return f"{name}{extra} (torchvision, downloaded on first use)"
    if kind in ("csv", "csv_text"):
        path = ds.get("path") or "a CSV file"
        what = "text" if kind == "csv_text" else "table"
        return f"{Path(str(path)).name} (CSV {what})"
    if kind == "image_folder":
        return f"image folder {ds.get('path') or ''}".strip()
    if kind == "text":
        path = Path(str(ds.get("path") or "a text file")).name
        level = "word" if ds.get("tokenizer") == "word" else "character"
        return f"{path} (text, {level} level, offline)"
    return str(kind)


def _info(path: Path) -> TemplateInfo:
    tid = path.name[: -len(SUFFIX)]
    try:
        project = load_project(path)
    except ProjectError as exc:
        return TemplateInfo(tid, path, tid, "", None, "", error=str(exc))
    analyses = [analyze(g) for g in project.networks.values()]
    errors = [p.message for a in analyses for p in a.errors]
    models = model_names(project.networks)
    model_params = sum(a.total_params for a, name in zip(analyses, project.networks)
                       if name in models)
    ok = not errors
    meta = project.metadata
    order = meta.get("order", 1000)
    return TemplateInfo(
        id=tid,
        path=path,
        name=project.name,
        description=project.description,
        params=model_params if ok else None,  # a block's parameters are counted in its uses
        dataset=describe_dataset(project.dataset),
        dataset_settings=dict(project.dataset),
        training=dict(project.training),
        teaches=str(meta.get("teaches", "")),
        expected=str(meta.get("expected", "")),
        order=order if isinstance(order, int) and not isinstance(order, bool) else 1000,
        layers=sum(len(g.nodes) for g in project.networks.values()),
        networks=len(models),
        blocks=len(block_names(project.networks)),
        needs_download=project.dataset.get("kind") == "torchvision",
        error=None if ok else "; ".join(errors[:3]),
    )


_CACHE: dict[tuple[str, int, int], TemplateInfo] = {}


def list_templates(directory: str | os.PathLike | None = None) -> list[TemplateInfo]:
    """Every template, in gallery order (the default starter first).

    A file that cannot be read still appears, with ``error`` set, so a broken template is visible
    rather than silently missing. Results are cached per file until it changes.
    """
    folder = Path(directory) if directory is not None else templates_dir()
    out = []
    for tid in _ids(folder):
        path = folder / f"{tid}{SUFFIX}"
        try:
            st = path.stat()
        except OSError:
            continue
        key = (str(path), st.st_mtime_ns, st.st_size)
        info = _CACHE.get(key)
        if info is None:
            info = _info(path)
            _CACHE[key] = info
        out.append(info)
    return sorted(out, key=lambda i: (not i.is_default, i.order, i.id))


def load_template(template_id: str, directory: str | os.PathLike | None = None) -> Project:
    """Open a template as a new project.

    A relative ``dataset.path`` (the sample CSV shipped in ``designer/templates/data``) is made
    absolute, so the project still finds its data after it is saved somewhere else.
    """
    path = template_path(template_id, directory)
    try:
        project = load_project(path)
    except ProjectError as exc:
        raise TemplateError(f"template {template_id!r} cannot be read: {exc}") from None
    return with_absolute_data_path(project, path.parent)


def with_absolute_data_path(project: Project, folder: str | os.PathLike) -> Project:
    """Make a relative ``dataset.path`` absolute against ``folder`` (the file's folder), in place.

    For a project opened from a file but kept unsaved (a template opened by its path), whose
    relative data path would otherwise resolve against nothing.
    """
    data_path = project.dataset.get("path")
    if isinstance(data_path, str) and data_path and not Path(data_path).expanduser().is_absolute():
        project.dataset["path"] = str((Path(folder) / data_path).resolve())
    return project


__all__ = [
    "DEFAULT_TEMPLATE", "TemplateError", "TemplateInfo", "describe_dataset", "list_templates",
    "load_template", "template_path", "templates_dir", "with_absolute_data_path",
]


def stale_description(project: Project, directory: str | os.PathLike | None = None
                      ) -> list[str] | None:
    """When ``project`` still carries the description of the template it was opened from
    (``metadata.id``) but its design has changed since, what changed (design_changes, by layer
    name): that text was written for the template's design ("64 ReLU units") and may no longer
    be true. None when the description is the user's own, or the design is the template's."""
    tid = project.metadata.get("id") if isinstance(project.metadata, dict) else None
    if not isinstance(tid, str) or not project.description:
        return None
    try:
        path = template_path(tid, directory)
        description, design = _template_design(str(path), path.stat().st_mtime_ns)
    except (ProjectError, TemplateError, OSError, ValueError):
        return None
    if description != project.description:
        return None
    return design_changes(design, project.to_dict()) or None


@functools.lru_cache(maxsize=32)
def _template_design(path: str, mtime_ns: int) -> tuple[str, dict]:
    """A template's description and design, read once per version of its file (the export
    preview asks on every edit; never changed by the caller)."""
    template = load_project(path)
    return template.description, template.to_dict()
