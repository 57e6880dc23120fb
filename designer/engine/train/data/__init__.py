"""Datasets for training: built-in, torchvision, image folders, CSV and text files, all in memory.

``load_dataset(config, base_dir)`` turns a project's ``dataset`` section into a
:class:`~designer.engine.train.data.core.Dataset` (tensors plus metadata);
``check_model_data(graph, dataset, training)`` says whether a design fits it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ConfigError, validate_dataset
from .compat import (
    DataCheck,
    DataProblem,
    DatasetFix,
    ParamFix,
    check_model_data,
    expected_output_size,
)
from .core import (
    Dataset,
    DatasetError,
    DownloadProgress,
    ProgressCallback,
    augment_images,
    split_indices,
)
from .tabular import PAD, UNK, tokenize
from .vision import cache_dir


def resolve_path(path: str, base_dir: str | Path | None) -> Path:
    """A dataset path; relative paths resolve against the project file's folder."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def load_dataset(config: dict[str, Any] | None, base_dir: str | Path | None = None,
                 progress: ProgressCallback | None = None) -> Dataset:
    """Load the dataset a project's ``dataset`` section describes.

    Raises :class:`DatasetError` (a ``ValueError``) with a message for people when the settings
    are invalid or the data is missing or malformed.
    """
    try:
        cfg = validate_dataset(config)
    except ConfigError as exc:
        raise DatasetError(str(exc)) from None
    kind = cfg["kind"]
    if kind == "digits":
        from .builtin import load_digits  # deferred: torch loads only when this runs

        return load_digits(cfg)
    if kind == "synthetic":
        from .builtin import load_synthetic  # deferred: torch loads only when this runs

        return load_synthetic(cfg)
    if kind == "torchvision":
        from .vision import load_torchvision  # deferred: torch loads only when this runs

        return load_torchvision(cfg, progress)
    path = resolve_path(cfg["path"], base_dir)
    if kind == "image_folder":
        from .vision import load_image_folder  # deferred: torch loads only when this runs

        return load_image_folder(cfg, path)
    if kind == "csv":
        from .tabular import load_csv  # deferred: torch loads only when this runs

        return load_csv(cfg, path)
    if kind == "text":
        from .text import load_text  # deferred: torch loads only when this runs

        return load_text(cfg, path)
    from .tabular import load_csv_text  # deferred: torch loads only when this runs

    return load_csv_text(cfg, path)


__all__ = [
    "PAD",
    "UNK",
    "DataCheck",
    "DataProblem",
    "Dataset",
    "DatasetError",
    "DatasetFix",
    "DownloadProgress",
    "ParamFix",
    "ProgressCallback",
    "augment_images",
    "cache_dir",
    "check_model_data",
    "expected_output_size",
    "load_dataset",
    "resolve_path",
    "split_indices",
    "tokenize",
]
