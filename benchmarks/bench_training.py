"""Benchmark: the trainer against a hand-written PyTorch loop and the tutorial pipeline.

    .venv/bin/python benchmarks/bench_training.py [--samples 10000] [--epochs 1] [--rounds 10]
        [--cpu-time] [--model NAME] [--no-tutorial]

One process, MNIST-sized random data (``--samples`` images of 1x28x28, 10 classes), batch 64,
Adam, cross-entropy, CPU. Two models built by ``build_model`` from designs: the 784-128-10 MLP and
LeNet-5. For each model, in alternating rounds (so machine load hits every contender alike):

* trainer: :class:`designer.engine.train.training.Trainer` (no validation split, no run folder), its
  wall time for ``--epochs`` epochs including shuffling, metrics and events;
* hand loop: the loop one writes by hand over the same tensors (randperm, index, forward, loss,
  zero_grad, backward, step, ``loss.item()`` every 100 batches) on an identical copy of the model;
* tutorial: torchvision ``ToTensor()`` + ``Normalize`` on PIL images in a ``Dataset``, a
  ``DataLoader`` with 2 workers and shuffling (the pipeline of the PyTorch MNIST tutorials).

Reported: samples/s of each (median over rounds), trainer / hand loop (target >= 0.97: the
median of the per-round ratios, and the ratio of the best rounds) and
trainer / tutorial (the speed-up). ``--cpu-time`` runs one thread and divides by CPU seconds
(this process's plus the finished DataLoader workers'), which other processes on a busy machine
disturb far less than the wall clock. Figures go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.engine.model.build import build_model
from designer.engine.model.graph import Graph
from designer.engine.train.data.core import Dataset
from designer.engine.train.training import Trainer

BATCH = 64
CLOCK = time.perf_counter  # --cpu-time: cpu_seconds (steadier on a busy machine, 1 thread)


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the DataLoader's workers exit at
    the end of each epoch, so their work is counted too)."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime
MEAN, STD = 0.1307, 0.3081


def chain(*layers, shape=(1, 28, 28)) -> Graph:
    g = Graph()
    last = g.add_node("Input", params={"shape": list(shape)}).id
    for layer, params in layers:
        node = g.add_node(layer, params=params)
        g.connect(last, node.id)
        last = node.id
    g.connect(last, g.add_node("Output").id)
    return g


MODELS = {
    "MLP 784-128-10": chain(("Flatten", {}), ("Linear", {"out_features": 128}), ("ReLU", {}),
                            ("Linear", {"out_features": 10})),
    "LeNet-5": chain(("Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": 2}),
                     ("ReLU", {}), ("MaxPool2d", {"kernel_size": 2}),
                     ("Conv2d", {"out_channels": 16, "kernel_size": 5}), ("ReLU", {}),
                     ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}),
                     ("Linear", {"out_features": 120}), ("ReLU", {}),
                     ("Linear", {"out_features": 84}), ("ReLU", {}),
                     ("Linear", {"out_features": 10})),
}


def run_trainer(model: nn.Module, ds: Dataset, epochs: int) -> float:
    t0 = CLOCK()
    result = Trainer(model, ds, {"epochs": epochs, "batch_size": BATCH, "lr": 1e-3,
                                 "device": "cpu"}).run()
    elapsed = CLOCK() - t0
    assert result.status == "finished", result.message
    return ds.n_train * epochs / elapsed


def run_hand_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> float:
    t0 = CLOCK()
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for b, start in enumerate(range(0, n, BATCH)):
            idx = perm[start:start + BATCH]
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if b % 100 == 0:
                loss.item()
    return n * epochs / (CLOCK() - t0)


class PILDataset(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        from PIL import Image
        from torchvision import transforms

        self.images = [Image.fromarray(a, "L") for a in images]
        self.labels = labels.tolist()
        self.transform = transforms.Compose([transforms.ToTensor(),
                                             transforms.Normalize((MEAN,), (STD,))])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def run_tutorial(model: nn.Module, data: PILDataset, epochs: int) -> float:
    t0 = CLOCK()
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for b, (x, y) in enumerate(loader):
            out = model(x)
            loss = loss_fn(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if b % 100 == 0:
                loss.item()
    return len(data) * epochs / (CLOCK() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--tutorial-rounds", type=int, default=3)
    ap.add_argument("--no-tutorial", action="store_true")
    ap.add_argument("--cpu-time", action="store_true",
                    help="one thread, timed by CPU seconds (the DataLoader workers' included): "
                    "steadier figures on a machine busy with other work; samples per CPU second")
    ap.add_argument("--model", choices=list(MODELS), action="append",
                    help="only this model (repeatable)")
    args = ap.parse_args()
    if args.cpu_time:
        global CLOCK
        CLOCK = cpu_seconds
        torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.samples, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, args.samples)
    x = ((torch.from_numpy(images).float() / 255 - MEAN) / STD).unsqueeze(1).contiguous()
    y = torch.from_numpy(labels).long()
    empty = x[:0]
    ds = Dataset("random-mnist", "classification", x, y, empty, y[:0], (1, 28, 28), "float32",
                 [str(i) for i in range(10)])
    pil = None if args.no_tutorial else PILDataset(images, labels)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.samples:,} "
          f"samples x {args.epochs} epochs, batch {BATCH}, {args.rounds} rounds, timed by "
          f"{'CPU seconds' if args.cpu_time else 'wall clock'}")
    for name, graph in MODELS.items():
        if args.model and name not in args.model:
            continue
        base = build_model(graph, seed=0)
        run_hand_loop(copy.deepcopy(base), x[:2048], y[:2048], 1)  # warm up (first-call costs)
        run_trainer(copy.deepcopy(base), Dataset(**{**ds.__dict__, "x_train": x[:2048],
                                                     "y_train": y[:2048]}), 1)
        rates: dict[str, list[float]] = {"trainer": [], "hand loop": [], "tutorial": []}
        ratios = []
        for r in range(args.rounds):
            order = [("trainer", lambda m=base: run_trainer(copy.deepcopy(m), ds, args.epochs)),
                     ("hand loop",
                      lambda m=base: run_hand_loop(copy.deepcopy(m), x, y, args.epochs))]
            if r % 2:
                order.reverse()
            got = {}
            for label, fn in order:
                got[label] = fn()
                rates[label].append(got[label])
            ratios.append(got["trainer"] / got["hand loop"])
            if pil is not None and r < args.tutorial_rounds:
                rates["tutorial"].append(run_tutorial(copy.deepcopy(base), pil, args.epochs))
        med = {k: statistics.median(v) for k, v in rates.items() if v}
        print(f"\n{name}")
        for label, value in med.items():
            print(f"  {label:10s} {value:10,.0f} samples/s   (rounds: "
                  + ", ".join(f"{v:,.0f}" for v in rates[label]) + ")")
        print(f"  trainer / hand loop: {statistics.median(ratios):.3f} (median of per-round "
              f"ratios: " + ", ".join(f"{v:.3f}" for v in ratios) + ")")
        print(f"  trainer / hand loop, best round of each: "
              f"{max(rates['trainer']) / max(rates['hand loop']):.3f}")
        if "tutorial" in med:
            print(f"  trainer / tutorial pipeline: {med['trainer'] / med['tutorial']:.2f}x")


if __name__ == "__main__":
    main()
