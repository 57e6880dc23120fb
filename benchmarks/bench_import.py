"""Import time and coverage of ``designer import`` (designer.engine.interop.importing).

    .venv/bin/python benchmarks/bench_import.py            # resnet50, vit_b_16 at 224: < 3 s each
    .venv/bin/python benchmarks/bench_import.py --paint    # their canvas's first paint, opened
    .venv/bin/python benchmarks/bench_import.py --all [--skip-over 100e6] [--sizes A,B] [MODEL ...]  # every
        torchvision classification model (or those named), randomised: params equal, its
        state_dict loaded strictly into the design and its exported model.py, outputs within
        1e-5 at two input sizes (aux heads: in training mode too)

Times are taken after torch and torchvision are loaded and the model is built (weights=None).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torchvision
from torch import nn

from designer.engine.interop.codegen import model_source, network_class_names
from designer.engine.interop.importing import ImportFailed, import_model
from designer.engine.model.build import build_model


def model(name: str, size: int):
    extra = {"image_size": size} if name.startswith("vit_") else {}
    if name.startswith("maxvit"):  # built for one input size (its partitions divide it)
        extra = {"input_size": (size, size)}
    return torchvision.models.get_model(name, weights=None, **extra).eval()


def timing() -> None:
    for name in ("resnet50", "vit_b_16"):
        m = model(name, 224)
        t = time.perf_counter()
        import_model(m, (3, 224, 224), name=name)
        dt = time.perf_counter() - t
        print(f"{name}: import {dt:.2f} s (target < 3 s): {'met' if dt < 3 else 'MISSED'}")


def paint_timing() -> None:
    """The imported design opened in the window (offscreen): from handing it over to the first
    paint of the whole canvas at fit-to-view (``grab()``), for resnet50 and vit_b_16."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings

    from designer.ui.app import make_app
    from designer.ui.main_window import MainWindow

    app = make_app()
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-paint-"))
    window = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat),
                        recovery_dir=tmp / "recovery")
    window.resize(1440, 900)
    window.show()
    app.processEvents()
    for name in ("resnet50", "vit_b_16"):
        project, _ = import_model(model(name, 224), (3, 224, 224), name=name)
        t = time.perf_counter()
        window.open_imported(project, None)
        window.view.fit_to_view()
        window.view.viewport().grab()
        dt = time.perf_counter() - t
        end = time.time() + 60
        while window.document.analysis is None and time.time() < end:
            app.processEvents()
            time.sleep(0.005)
        checked = time.perf_counter() - t
        print(f"{name}: canvas first paint {dt * 1000:.0f} ms after open; shapes checked and "
              f"shown {checked * 1000:.0f} ms after open", flush=True)
    window.shutdown()


def randomise(m: nn.Module) -> nn.Module:
    """Non-trivial values everywhere: zero-initialised weights and BatchNorm statistics too."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
        for b in m.modules():
            if isinstance(b, nn.modules.batchnorm._BatchNorm):
                b.running_mean.copy_(torch.randn(b.running_mean.shape, generator=g) * 0.1)
                b.running_var.copy_(torch.rand(b.running_var.shape, generator=g) + 0.5)
    return m.eval()


def exported(project, tmp: Path) -> nn.Module:
    """The design's exported model.py, imported and instantiated."""
    path = tmp / "model.py"
    path.write_text(model_source(project), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"exported_{id(project)}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, network_class_names(project)["model"])()


def check(name: str, size: int) -> str:
    m = randomise(model(name, size))
    try:
        project, report = import_model(m, (3, size, size), name=name)
    except ImportFailed as exc:
        return f"no: {exc.report.unsupported[0]}"
    built = build_model(project.networks["model"]).eval()
    if sum(p.numel() for p in built.parameters()) != sum(p.numel() for p in m.parameters()):
        return "no: parameter counts differ"
    state = m.state_dict()
    built.load_state_dict(state, strict=True)  # the same keys, unchanged
    with tempfile.TemporaryDirectory() as tmp:
        ours = exported(project, Path(tmp)).eval()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want = m(x)
        diff = max((built(x) - want).abs().max().item(), (ours(x) - want).abs().max().item())
        note = ""
        if report.aux_outputs:  # training mode returns the aux outputs too (same dropout draws)
            built.train()
            m.train()
            torch.manual_seed(1)
            got = built(x)
            torch.manual_seed(1)
            want = m(x)
            diff = max([diff] + [(a - b).abs().max().item() for a, b in zip(got, want)])
            note = f", {len(report.aux_outputs)} aux outputs equal in training mode"
    if diff > 1e-5:
        return f"no: outputs differ by {diff:.1e}"
    return f"yes (max diff {diff:.1e}, design and model.py{note})"


def coverage(skip_over: float, only: list[str], sizes: tuple[int, ...] | None = None) -> None:
    for name in only or torchvision.models.list_models(module=torchvision.models):
        n = sum(p.numel() for p in model(name, 224 if name.startswith(("vit_", "maxvit")) else 64)
                .parameters())
        if n > skip_over:
            print(f"| {name} | skipped ({n / 1e6:.0f} M parameters) |", flush=True)
            continue
        results = []
        for size in sizes or ((224, 224) if name.startswith("vit_") else (64, 96)):
            try:
                results.append(check(name, size))
            except Exception as exc:  # noqa: BLE001
                results.append(f"no: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            if results[-1].startswith("no") or name.startswith("vit_"):
                break
        print(f"| {name} | {'; '.join(results)} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--skip-over", type=float, default=100e6)
    ap.add_argument("--sizes", default=None,
                    help="with --all: the two input sizes, e.g. 299,320 (inception_v3 needs 75+)")
    ap.add_argument("--paint", action="store_true", help="the opened canvas's first paint")
    ap.add_argument("models", nargs="*", help="with --all: these models only")
    args = ap.parse_args()
    torch.set_num_threads(2)
    sizes = tuple(int(v) for v in args.sizes.split(",")) if args.sizes else None
    if args.paint:
        paint_timing()
    elif args.all:
        coverage(args.skip_over, args.models, sizes)
    else:
        timing()
