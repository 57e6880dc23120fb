"""Training and validation metrics, accumulated with torch on the device.

Updates are pure tensor operations (no ``.item()``): the values are read only when a report is
due (a batch event, the end of an epoch), so a GPU never waits on the host in between.

Classification: loss, accuracy, top-5 accuracy (more than 5 classes), macro precision, recall and
F1 and the confusion matrix (rows: true class, columns: predicted). Regression: loss, MSE, MAE,
R2. Reconstruction: loss and MSE.
"""

from __future__ import annotations

from typing import Any

import torch


class MetricAccumulator:
    """Sums over one phase (an epoch's training or validation) of one task.

    :meth:`update` only keeps references to the batch's (detached) loss, output and target;
    they are folded into the sums in one vectorised pass over many batches when a report is
    due or ``flush_every`` batches are pending (few, so little memory stays held). Measured:
    about 10 us per batch on one CPU thread, under 1% of a 784-128-10 MLP step at batch 64.

    ``full``: also the costlier metrics (confusion matrix, top-5, regression MAE/R2); the
    training phase keeps to loss and accuracy.
    """

    def __init__(self, task: str, num_classes: int | None, device: torch.device,
                 full: bool = True, flush_every: int = 16) -> None:
        self.task = task
        self.classes = num_classes or 0
        self.full = full
        self.device = device
        self.flush_every = flush_every
        fdt = torch.float32 if device.type == "mps" else torch.float64
        self._fdt = fdt
        zero = torch.zeros((), dtype=fdt, device=device)
        self.loss_sum = zero.clone()
        self.count = 0  # samples (known on the host, no sync)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.top5 = torch.zeros((), dtype=torch.int64, device=device)
        self.confusion = (torch.zeros(self.classes * self.classes, dtype=torch.int64,
                                      device=device) if full and task == "classification" else None)
        self.sse, self.sae, self.sy, self.syy = (zero.clone() for _ in range(4))
        self.elements = 0
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def update(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        """Record one batch (no computation here; see the class docstring)."""
        self._pending.append((loss.detach(), output.detach(), target))
        self.count += target.shape[0]
        if len(self._pending) >= self.flush_every:
            self._flush()

    @torch.no_grad()
    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        dev = self.device
        losses = torch.stack([p[0].reshape(()) for p in pending]).to(self._fdt)
        sizes = torch.tensor([p[2].shape[0] for p in pending], dtype=self._fdt, device=dev)
        self.loss_sum += (losses * sizes).sum()
        output = torch.cat([p[1] for p in pending])
        target = torch.cat([p[2] for p in pending])
        n = target.shape[0]
        if self.task == "classification":
            pred = predictions(output)
            self.correct += (pred == target).sum()
            if self.full:
                c = self.classes
                self.confusion += torch.bincount(target * c + pred.clamp(0, c - 1), minlength=c * c)
                if c > 5 and output.dim() == 2 and output.shape[1] >= 5:
                    top = output.topk(5, dim=1).indices
                    self.top5 += (top == target[:, None]).any(1).sum()
        elif self.full:
            out = output.reshape(n, -1).to(self._fdt)
            y = target.reshape(n, -1).to(self._fdt)
            diff = out - y
            self.sse += (diff * diff).sum()
            self.sae += diff.abs().sum()
            self.sy += y.sum()
            self.syy += (y * y).sum()
            self.elements += y.numel()

    def running(self) -> dict[str, float]:
        """Loss (and accuracy) so far; reads the device once."""
        if not self.count:
            return {}
        self._flush()
        if self.task == "classification":
            vals = torch.stack([self.loss_sum.float(), self.correct.float()]).tolist()
            return {"loss": vals[0] / self.count, "accuracy": vals[1] / self.count}
        return {"loss": float(self.loss_sum) / self.count}

    def compute(self) -> dict[str, Any]:
        """Every metric of the phase, as plain numbers (and a nested list for the confusion)."""
        if not self.count:
            return {}
        out: dict[str, Any] = self.running()
        if self.task == "classification" and self.full:
            c = self.classes
            cm = self.confusion.view(c, c).cpu()
            if c > 5:
                out["top5_accuracy"] = int(self.top5) / self.count
            out.update(macro_scores(cm))
            out["confusion"] = cm.tolist()
        elif self.task != "classification" and self.full and self.elements:
            mse = float(self.sse) / self.elements
            out["mse"] = mse
            if self.task == "regression":
                out["mae"] = float(self.sae) / self.elements
                mean = float(self.sy) / self.elements
                total = float(self.syy) - self.elements * mean * mean
                out["r2"] = 1.0 - float(self.sse) / total if total > 1e-12 else float("nan")
        return out


def predictions(output: torch.Tensor) -> torch.Tensor:
    """Class indices from logits ``(N, C)``; a single logit ``(N, 1)`` means class 1 when > 0."""
    output = output.detach()
    if output.dim() == 2 and output.shape[1] == 1:
        return (output[:, 0] > 0).long()
    return output.reshape(output.shape[0], -1).argmax(1)


def macro_scores(confusion: torch.Tensor) -> dict[str, float]:
    """Macro-averaged precision, recall and F1 from a confusion matrix (0 where undefined)."""
    cm = confusion.to(torch.float64)
    tp = cm.diagonal()
    predicted = cm.sum(0)
    actual = cm.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(actual > 0, tp / actual.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300),
                     torch.zeros_like(tp))
    return {"precision": float(precision.mean()), "recall": float(recall.mean()),
            "f1": float(f1.mean())}
