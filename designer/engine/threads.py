"""How many CPU threads a training run gives torch, chosen on purpose.

torch's default, one OpenMP thread per core, collapses as soon as anything else wants a core:
the team's threads spin-wait at every parallel region for a member the OS has parked, and each
small op then waits out a scheduler time slice. Measured on a 2-core machine with one other busy
process: the mlp-digits starter ran 1,300-1,500 samples/s from the window with 2 threads and
27,000-42,000 with 1; LeNet-5 headless 200-3,800 with 2 and 4,600-9,100 with 1. One thread was
never the slower choice there, quiet or busy. So a run leaves one core to the rest of the machine
(the neighbour that every desktop has) and, in the window, one more to the GUI thread; and the
OpenMP threads that remain sleep instead of spinning while they wait (``OMP_WAIT_POLICY``, read
once when torch loads). ``OMP_NUM_THREADS`` set by the user wins over the choice.

Module-level code imports nothing heavy: :func:`configure_process` must run before torch loads.
"""

from __future__ import annotations

import os
import sys


def configure_process() -> None:
    """Before torch is imported: idle OpenMP threads sleep rather than spin (unless the user set
    ``OMP_WAIT_POLICY``)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def loaded_torch():
    """The torch module if it is fully imported, else None. While a background thread imports
    it, ``sys.modules["torch"]`` already holds the half-initialised module (no ``torch.cuda``
    yet): this neither imports torch nor returns that."""
    torch = sys.modules.get("torch")
    if torch is None or getattr(getattr(torch, "__spec__", None), "_initializing", False):
        return None
    return torch


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def training_threads(gui: bool = False, cores: int | None = None) -> int:
    """Intra-op threads for a training run: every core but one (two with a GUI to keep
    responsive), at least one; ``OMP_NUM_THREADS`` when the user set it."""
    user = os.environ.get("OMP_NUM_THREADS", "").strip()
    if user.isdigit() and int(user) > 0:
        return int(user)
    cores = cpu_count() if cores is None else cores
    return max(1, cores - (2 if gui else 1))


def use_training_threads(n: int) -> int:
    """Give torch ``n`` intra-op threads; call it in the thread that trains (OpenMP keeps the
    setting per thread). Returns ``n``."""
    import torch  # deferred: torch loads only when this runs

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


__all__ = ["configure_process", "cpu_count", "loaded_torch", "training_threads",
           "use_training_threads"]
