"""torch loads in the background once the window has painted (importing it takes 2-5 s, most of
the time to a window before). What needs torch first asks :func:`torch_ready` or waits for
``loaded``; a run started earlier simply imports it in its own worker thread.

The import runs in a plain Python thread; ``loaded`` is emitted from there and reaches slots of
QObjects living in the GUI thread through a queued connection (never connect a lambda to it:
that would run in the loading thread, ../shared/GUI_TESTING.md).
"""

from __future__ import annotations

import contextlib
import threading

from PySide6.QtCore import QObject, Signal

from designer.engine.threads import loaded_torch


def available_devices() -> list[str]:
    """Devices this machine can train on: cpu always, cuda and mps when torch sees them.
    Imports torch."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def torch_ready() -> bool:
    """Whether torch is fully imported (so using it now costs no seconds); False while the
    background import is under way."""
    return loaded_torch() is not None


class TorchLoader(QObject):
    """Import torch in a background thread (once), then emit ``loaded(devices)``."""

    loaded = Signal(object)  # list[str]: the training devices

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self.devices: list[str] | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._load, name="designer-torch-import",
                                        daemon=True)
        self._thread.start()

    def _load(self) -> None:
        from .gc_guard import paused

        # No garbage collection while this thread imports torch (seconds): see gc_guard.paused
        with paused():
            self._import()

    def _import(self) -> None:
        try:
            devices = available_devices()
        except Exception:  # noqa: BLE001 - torch broken, or the program is exiting meanwhile:
            return  # training reports a broken torch with its own message
        self.devices = devices
        try:
            self.loaded.emit(devices)
        except RuntimeError:  # the window closed while torch was loading
            return
        warm_up_training()
        if "cuda" in devices:  # starts CUDA here, not on the GUI thread at the next fit check
            from designer.engine.model.memory import device_memory

            with contextlib.suppress(Exception):
                device_memory("cuda")


def warm_up_training() -> None:
    """Pay now for what the first Train would otherwise wait on: torch's optimizers import
    torch._dynamo on first use (1 s on a quiet 2-core machine, 3-5 s under load, measured as the
    "Preparing..." before the first batch)."""
    # only a warm-up: a real problem shows when training, with its message (and at exit the
    # interpreter may be tearing torch down under this daemon thread)
    with contextlib.suppress(Exception):
        import torch

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


__all__ = ["TorchLoader", "available_devices", "torch_ready", "warm_up_training"]
