"""Image datasets: torchvision's classics (downloaded once into a user cache) and image folders."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch

from .builtin import finish_images
from .core import DatasetError, DownloadProgress, ProgressCallback, human_bytes

OFFLINE_ALTERNATIVES = ("digits (scikit-learn's 8x8 digits), the synthetic sets moons, spirals, "
                        "linear and sine, an image folder or a CSV file")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_IMAGES = 500_000
MAX_IMAGE_BYTES = 8 * 1024**3  # the decoded uint8 images of an image folder


def cache_dir() -> Path:
    """Where downloaded datasets live: ``$DESIGNER_DATA_DIR`` or the user cache folder."""
    env = os.environ.get("DESIGNER_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("designer", appauthor=False)) / "datasets"


# ---------------------------------------------------------------------------------------------
# torchvision
# ---------------------------------------------------------------------------------------------


def _resources(name: str) -> tuple[Path, list[tuple[list[str], str, str | None, bool]]]:
    """The folder torchvision reads ``name`` from, and its files: (urls, file, md5, extract)."""
    import torchvision.datasets as tvd  # deferred: torchvision loads only when this runs

    root = cache_dir()
    cls = getattr(tvd, name)
    if name in ("MNIST", "FashionMNIST", "KMNIST"):
        folder = root / name / "raw"
        # torchvision wants the test files too before it reads the training set
        files = [([m + f for m in cls.mirrors], f, md5, True) for f, md5 in cls.resources]
        return folder, files
    if name in ("CIFAR10", "CIFAR100"):
        return root, [([cls.url], cls.filename, cls.tgz_md5, True)]
    if name == "SVHN":
        url, filename, md5 = cls.split_list["train"]
        return root, [([url], filename, md5, False)]
    raise DatasetError(f"unknown torchvision dataset {name!r}")  # pragma: no cover


def _download_file(url: str, dest: Path, progress: ProgressCallback | None, dataset: str) -> None:
    """Fetch one URL into ``dest`` (via a temporary file), reporting progress."""
    tmp = dest.with_name(dest.name + ".part")
    req = urllib.request.Request(url, headers={"User-Agent": "designer"})
    with urllib.request.urlopen(req, timeout=30) as resp, open(tmp, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while True:
            chunk = resp.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(DownloadProgress(dataset, dest.name, done, total))
    os.replace(tmp, dest)


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _offline_message(name: str, folder: Path, files, reason: str) -> str:
    names = ", ".join(f for _, f, _, _ in files)
    urls = " ".join(u[0] for u, _, _, _ in files)
    # Only on this failure path: files that are there but fail their checksum are named, since
    # "not in the dataset folder" would send the user looking for files they can see.
    damaged = [f for _, f, md5, _ in files
               if md5 and (folder / f).is_file() and _md5(folder / f) != md5]
    if damaged:
        return (f"{name}: {', '.join(damaged)} in {folder} "
                f"{'is' if len(damaged) == 1 else 'are'} damaged (checksum mismatch) and could "
                f"not be downloaded again ({reason}). Put intact copies there "
                f"(from {urls}), or choose a dataset that needs no download: "
                f"{OFFLINE_ALTERNATIVES}.")
    return (f"{name} is not in the dataset folder and could not be downloaded ({reason}). "
            f"Put these files in {folder}: {names} (from {urls}), or choose a dataset that needs "
            f"no download: {OFFLINE_ALTERNATIVES}.")


def ensure_downloaded(name: str, download: bool, progress: ProgressCallback | None) -> None:
    """Make sure torchvision finds ``name`` in the cache folder, downloading it if allowed."""
    from torchvision.datasets.utils import (
        extract_archive,  # deferred: torchvision loads only when this runs
    )

    folder, files = _resources(name)
    if not download:
        raise DatasetError(_offline_message(name, folder, files, "downloads are off"))
    folder.mkdir(parents=True, exist_ok=True)
    for urls, filename, md5, extract in files:
        dest = folder / filename
        if not (dest.exists() and (md5 is None or _md5(dest) == md5)):
            errors = []
            for url in urls:
                try:
                    _download_file(url, dest, progress, name)
                    break
                except (OSError, ValueError) as exc:  # URLError is an OSError
                    errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            else:
                raise DatasetError(_offline_message(name, folder, files, "; ".join(errors)))
            if md5 is not None and _md5(dest) != md5:
                dest.unlink(missing_ok=True)
                raise DatasetError(f"{name}: the downloaded {filename} is damaged (checksum "
                                   f"mismatch); try again. Folder: {folder}")
        if extract:
            try:
                extract_archive(str(dest), str(folder))
            except Exception as exc:  # noqa: BLE001 - a damaged archive: say which file
                raise DatasetError(f"{name}: cannot unpack {dest}: {exc}") from None


def _torchvision_raw(name: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """uint8 images ``(N, C, H, W)``, int64 labels and class names from torchvision's files.

    RuntimeError or OSError: the files are not there. Files that are there but damaged (torchvision
    asserts or fails to parse) raise :class:`DatasetError`."""
    try:
        return _torchvision_read(name)
    except (RuntimeError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - AssertionError, ValueError... from the parser
        folder, _ = _resources(name)
        raise DatasetError(f"{name}: the files in {folder} are damaged ({type(exc).__name__}"
                           f"{': ' + str(exc) if str(exc) else ''}); delete them to download "
                           f"them again, or put intact copies there") from None


def _torchvision_read(name: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    import torchvision.datasets as tvd  # deferred: torchvision loads only when this runs

    root = str(cache_dir())
    cls = getattr(tvd, name)
    if name == "SVHN":
        ds = cls(root, split="train", download=False)
        x = torch.from_numpy(np.ascontiguousarray(ds.data))
        y = torch.from_numpy(np.asarray(ds.labels, dtype=np.int64))
        return x, y, [str(i) for i in range(10)]
    ds = cls(root, train=True, download=False)
    data = ds.data
    if isinstance(data, np.ndarray):  # CIFAR: (N, H, W, C)
        x = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))
    else:  # MNIST family: (N, H, W)
        x = data.unsqueeze(1).contiguous()
    y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return x, y, [str(c) for c in ds.classes]


def load_torchvision(cfg: dict[str, Any], progress: ProgressCallback | None = None):
    """A torchvision training set (its own test set stays unused; validation is split off)."""
    name = cfg["name"]
    cache = cache_dir() / name / "designer-train.pt"
    x = y = None
    if cache.exists():  # converted once: uint8 tensors, loaded without unpickling objects
        try:
            saved = torch.load(cache, weights_only=True)
            x, y, classes = saved["x"], saved["y"], list(saved["classes"])
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt from the files
            x = None
    if x is None:
        try:
            x, y, classes = _torchvision_raw(name)
        except (RuntimeError, OSError):  # not there yet (torchvision: "Dataset not found")
            ensure_downloaded(name, cfg["download"], progress)
            try:
                x, y, classes = _torchvision_raw(name)
            except (RuntimeError, OSError) as exc:
                folder, _ = _resources(name)
                raise DatasetError(f"{name}: cannot read the files in {folder}: {exc}") from None
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + ".tmp")
            torch.save({"x": x, "y": y, "classes": classes}, tmp)
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only cache only costs the conversion next time
    x, pre = _image_transforms(x, cfg)
    pre.update(source=f"torchvision.datasets.{name} (train)")
    return finish_images(name, x, y, cfg, classes, scale=1 / 255, task=cfg["task"],
                         preprocessing=pre)


def _image_transforms(x: torch.Tensor, cfg: dict[str, Any]) -> tuple[torch.Tensor, dict]:
    """Grayscale and resize on uint8 ``(N, C, H, W)``, in chunks; returns what was done."""
    pre: dict[str, Any] = {}
    if cfg["grayscale"] and x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        x = torch.cat([(x[i:i + 8192].float() * w).sum(1, keepdim=True).round().clamp(0, 255)
                       .to(torch.uint8) for i in range(0, x.shape[0], 8192)])
        pre["grayscale"] = "ITU-R 601-2 luma (PIL 'L')"
    if cfg["resize"] and list(x.shape[2:]) != list(cfg["resize"]):
        size = tuple(cfg["resize"])
        x = torch.cat([torch.nn.functional.interpolate(x[i:i + 4096].float(), size=size,
                                                       mode="bilinear", antialias=True,
                                                       align_corners=False)
                       .round().clamp(0, 255).to(torch.uint8)
                       for i in range(0, x.shape[0], 4096)])
        pre["resize"] = list(size)
    return x, pre


# ---------------------------------------------------------------------------------------------
# Image folders
# ---------------------------------------------------------------------------------------------


def load_image_folder(cfg: dict[str, Any], path: Path):
    """One subfolder per class; every image converted to grey or RGB and (optionally) resized."""
    from PIL import Image, UnidentifiedImageError  # deferred: PIL loads only when this runs

    if not path.exists():
        raise DatasetError(f"dataset.path: the image folder {path} does not exist")
    if not path.is_dir():
        raise DatasetError(f"dataset.path: {path} is a file; an image folder with one subfolder "
                           f"per class is needed")
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DatasetError(f"dataset.path: {path} has {len(classes)} class subfolder(s); put the "
                           f"images of each class in its own subfolder (at least 2)")
    files: list[tuple[Path, int]] = []
    for k, cname in enumerate(classes):
        found = sorted(p for p in (path / cname).rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise DatasetError(f"dataset.path: the class folder {path / cname} holds no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files.extend((p, k) for p in found)
    if len(files) > MAX_IMAGES:
        raise DatasetError(f"dataset.path: {len(files):,} images is more than {MAX_IMAGES:,}")
    mode = "L" if cfg["grayscale"] else "RGB"
    size = tuple(cfg["resize"]) if cfg["resize"] else None
    arrays, first_size, first_file = [], None, None
    for p, _ in files:
        try:
            with Image.open(p) as im:
                im = im.convert(mode)
                if size is not None and im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"dataset.path: cannot read the image {p}: {exc}") from None
        if first_size is None:
            first_size, first_file = arr.shape, p
            # All images have this size: refuse a set that cannot fit before reading the rest
            # (stacking needs the total once more on top of the decoded images).
            nbytes = arr.nbytes * len(files)
            if nbytes > MAX_IMAGE_BYTES:
                raise DatasetError(f"dataset.path: {len(files):,} images of {arr.shape[1]}x"
                                   f"{arr.shape[0]} take {human_bytes(nbytes)} (limit "
                                   f"{human_bytes(MAX_IMAGE_BYTES)}); set dataset.resize to a "
                                   f"smaller [height, width]")
        elif arr.shape != first_size:
            raise DatasetError(
                f"dataset.path: images differ in size ({first_file.name} is "
                f"{first_size[1]}x{first_size[0]}, {p.name} is {arr.shape[1]}x{arr.shape[0]}); "
                f"set dataset.resize to [height, width]")
        arrays.append(arr)
    x = torch.from_numpy(np.stack(arrays))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([k for _, k in files], dtype=torch.int64)
    pre = {"source": "image folder", "mode": mode, "resize": list(size) if size else None,
           "resample": "bilinear"}
    return finish_images(path.name, x, y, cfg, classes, scale=1 / 255, task=cfg["task"],
                         preprocessing=pre)
