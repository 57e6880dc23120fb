"""An epoch's metrics record (a line of a run's metrics.jsonl) read for people and for ranking:
the loss a run ranks its epochs by, the best epoch, the headline figure.

Plain functions of plain data, imported by the run folder's code and by the recipes alike."""

from __future__ import annotations

import math
from typing import Any


def monitored_loss(record: dict[str, Any]) -> float | None:
    """The loss a run ranks its epochs by, as the trainer does when it decides what best.pt
    holds: the validation loss when the run has validation data (a NaN one ranks nowhere, it is
    not replaced by the training loss), else the training loss."""
    val = record.get("val")
    part = val if isinstance(val, dict) and val else record.get("train")
    v = part.get("loss") if isinstance(part, dict) else None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def best_record(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch whose weights best.pt holds: the first with the lowest monitored loss."""
    best, best_loss = None, math.inf
    for record in history:
        loss = monitored_loss(record)
        if loss is not None and loss < best_loss:
            best, best_loss = record, loss
    return best


#: The headline figure of a record, in order of preference: (phase key, label, percent?)
_HEADLINE = (("accuracy", "accuracy", True), ("r2", "R²", False), ("mae", "MAE", False),
             ("mse", "MSE", False), ("loss", "loss", False))


def headline(record: dict[str, Any] | None) -> str:
    """"accuracy 98.05%" (validation, else training) for a metrics record; "" if none."""
    if not record:
        return ""
    for phase in ("val", "train"):
        part = record.get(phase)
        if not isinstance(part, dict):
            continue
        for key, label, percent in _HEADLINE:
            v = part.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                text = f"{v:.2%}" if percent else f"{v:.4g}"
                return f"{label} {text}" + ("" if phase == "val" else " (training)")
    return ""
