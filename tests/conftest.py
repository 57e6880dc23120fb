import os

# Qt renders offscreen in tests; nothing needs a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config):
    # Tiny models on a 2-core machine: one intra-op thread is much faster than two fighting over
    # the cores (measured 3.9 ms vs 60 ms per MLP step under load). Imported lazily so collecting
    # an engine-only run stays light.
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
