"""The trainer: runs a frozen snapshot (model, settings, dataset) in any thread and reports events.

Two parts with separate jobs:

* a :class:`Recipe` owns the networks, optimizers, schedulers and the step (forward, loss,
  backward, update). :class:`SupervisedRecipe` trains one network on inputs and targets; a GAN
  recipe with two networks and two optimizers plugs in the same way;
* the :class:`Trainer` owns the loop: epochs and batches, pause/resume/stop (checked between
  batches, so they take effect within one batch), the non-finite-loss check, metrics, events,
  the run folder and its checkpoints, and resuming.

Events (dataclasses below) go to one callback, called in the training thread; batch events are
throttled to ``batch_event_interval`` seconds (default 0.05, at most ~20 per second).
"""

from __future__ import annotations

import copy
import math
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ... import __version__
from .. import threads
from . import runs
from .config import validate_training
from .data.core import Dataset
from .events import (  # re-exported: the events live apart from torch
    Batch,
    CheckpointSaved,
    Epoch,
    Event,
    EventCallback,
    Failed,
    Finished,
    Paused,
    Resumed,
    Started,
    Stopped,
)
from .inside import InsideObserver, InsideOptions
from .recipes import DEFAULT_RECIPE, UnknownRecipe
from .recipes import get as recipe_spec
from .recipes.base import Recipe, StepOutput, TrainContext

NAN_HINT = ("lower the learning rate (training.lr), turn on gradient clipping "
            "(training.grad_clip, e.g. 1.0) or check the data for extreme values")


class TrainingError(ValueError):
    """Training cannot start or go on; the message says why (and what to change)."""


class NonFiniteLoss(TrainingError):
    pass


class _StopRequested(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA, then MPS, then CPU; a named device that is missing is an error."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("training.device: CUDA is not available here (no NVIDIA GPU, or a "
                            "CPU-only PyTorch); choose auto or cpu")
    if name == "mps" and not has_mps:
        raise TrainingError("training.device: MPS (Apple GPU) is not available here; choose auto "
                            "or cpu")
    return torch.device(name)


def make_optimizer(cfg: dict[str, Any], params, lr: float | None = None,
                   betas: tuple[float, float] | None = None) -> torch.optim.Optimizer:
    """The configured optimizer over the trainable ``params``, at ``lr`` (default: ``cfg["lr"]``);
    Adam and AdamW with ``betas`` (default: torch's (0.9, 0.999); a GAN passes (beta1, 0.999)).

    Every recipe builds its optimizers here, and exported scripts with the same function
    (``recipes.script.MAKE_OPTIMIZER``), so that a script's first epoch is the designer's.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        raise TrainingError("the model has no trainable parameters")
    lr = cfg["lr"] if lr is None else lr
    betas = (0.9, 0.999) if betas is None else betas
    wd, name = cfg["weight_decay"], cfg["optimizer"]
    if name == "sgd":
        nesterov = cfg["nesterov"] and cfg["momentum"] > 0
        return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=nesterov,
                               weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise TrainingError(f"training.optimizer: unknown optimizer {name!r}")  # pragma: no cover


def make_scheduler(cfg: dict[str, Any], optimizer: torch.optim.Optimizer):
    name = cfg["scheduler"]
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg["step_size"], cfg["gamma"])
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["gamma"],
                                                          patience=2)
    return None


LOSSES: dict[str, Callable[[], nn.Module]] = {
    "cross_entropy": nn.CrossEntropyLoss, "nll": nn.NLLLoss, "mse": nn.MSELoss,
    "l1": nn.L1Loss, "smooth_l1": nn.SmoothL1Loss, "bce_with_logits": nn.BCEWithLogitsLoss,
}


def split_outputs(model, out) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The output the loss reads and the auxiliary ones (training mode only, after the main
    ones): of several main Outputs the first (an imported model's logits; the others, hidden
    states and the like, stay out of the loss)."""
    if not isinstance(out, tuple):
        return out, ()
    weights = getattr(model, "_aux_weights", ())
    n_aux = len(weights) if model.training and len(out) > len(weights) else 0
    main, aux = (out[:-n_aux], out[-n_aux:]) if n_aux else (out, ())
    return main[0], tuple(aux)


class SupervisedRecipe(Recipe):
    """One network, one optimizer: ``loss(model(x), y)`` (+ an L1 penalty), then a step."""

    name = "supervised"

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def set_train(self, training: bool) -> None:
        self.model.train(training)
        ctx = getattr(self, "ctx", None)
        if training and ctx is not None and ctx.config.get("freeze_bn_eval"):
            from torch.nn.modules.batchnorm import (
                _BatchNorm,  # deferred: torch loads only when this runs
            )

            from ..model.build import is_frozen  # deferred: torch loads only when this runs

            for m in self.model.modules():  # frozen BatchNorm keeps its running statistics
                if isinstance(m, _BatchNorm) and is_frozen(m):
                    m.eval()

    def setup(self, ctx: TrainContext) -> None:
        cfg = ctx.config
        self.ctx = ctx
        self.model.to(ctx.device)
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.scheduler = make_scheduler(cfg, self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=ctx.mixed_precision)
        self.loss_fn = LOSSES[cfg["loss"]]()
        self.clip = cfg["grad_clip"]
        self.l1 = cfg["l1"]
        self.l1_params = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        ds = ctx.dataset
        self.task, self.loss_name = ds.task, cfg["loss"]
        self.classes = ds.num_classes or 0

    def target(self, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Targets in the form the loss expects for this output."""
        if self.task == "classification":
            if self.loss_name in ("cross_entropy", "nll"):
                return y
            if out.dim() == 2 and out.shape[1] == 1:  # one logit for two classes
                return y.to(out.dtype).unsqueeze(1)
            return nn.functional.one_hot(y, self.classes).to(out.dtype).view_as(out)
        return y.view_as(out) if y.numel() == out.numel() else y

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.ctx.autocast():
            out, aux = split_outputs(self.model, self.model(x))
            weights = getattr(self.model, "_aux_weights", ())
            loss = self.loss_fn(out, self.target(y, out))
            for w, a in zip(weights, aux):  # GoogLeNet's: loss + 0.3 * (aux1 + aux2) in order
                loss = loss + w * self.loss_fn(a, self.target(y, a))
        return loss, out

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        loss, out = self._loss(x, y)
        if self.l1:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.l1_params)
        self.ctx.guard(loss)
        opt = self.optimizer
        opt.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            if self.clip:
                self.scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
            if self.clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            opt.step()
        return StepOutput(loss.detach(), out.detach())

    @torch.no_grad()
    def eval_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        loss, out = self._loss(x, y)
        return StepOutput(loss, out)

    def end_epoch(self, monitored_loss: float | None) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if monitored_loss is not None and math.isfinite(monitored_loss):
                self.scheduler.step(monitored_loss)
        else:
            self.scheduler.step()

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()
            detail = "; ".join(line.strip() for line in first[1:4]) or first[0]
            raise TrainingError(f"the checkpoint does not fit this design (were layers changed "
                                f"since?): {detail[:300]}") from None
        if state.get("optimizer"):
            try:
                self.optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as exc:
                raise TrainingError(f"the checkpoint's optimizer state does not fit the "
                                    f"optimizer settings: {exc}") from None
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    status: str  # "finished", "stopped" or "failed"
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_loss: float | None = None
    message: str = ""
    run_dir: Path | None = None


class Trainer:
    """Trains a snapshot; see the module docstring.

    ``model``: a built module (``build_model(graph, seed=...)``), owned by the trainer from now
    on. ``training``: the project's ``training`` section (checked here). ``run_dir``: where the
    run writes its files (None: nothing is written). ``resume``: continue the run in ``run_dir``
    from its ``last.pt``. ``extra_config``: more to record in config.json (the project, the
    dataset section). ``inside``: an ``inside.InsideOptions`` to watch inside every layer from
    the first batch (or :meth:`observe` / :meth:`stop_observing` from any thread while running).
    Call :meth:`run` (blocking) in any thread, or :meth:`start` for a thread.
    """

    def __init__(self, model: nn.Module | None, dataset: Dataset, training: dict[str, Any],
                 *, run_dir: str | Path | None = None, callback: EventCallback | None = None,
                 recipe: Recipe | None = None, resume: bool = False,
                 extra_config: dict[str, Any] | None = None,
                 batch_event_interval: float = 0.05, cpu_threads: int | None = None,
                 inside: Any = None) -> None:
        try:
            self.config = validate_training(training)
        except ValueError as exc:  # ConfigError: the message names the setting
            raise TrainingError(str(exc)) from None
        self.dataset = dataset
        if recipe is None:
            if model is None:
                raise TrainingError("no model to train")
            recipe = SupervisedRecipe(model)
        self.recipe = recipe
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callback = callback
        self.resume_run = resume
        self.extra_config = copy.deepcopy(extra_config or {})
        self.batch_event_interval = batch_event_interval
        # torch's CPU threads for this run (engine.threads; None: its choice for a headless run)
        self.cpu_threads = cpu_threads or threads.training_threads()
        self.state = "idle"
        self.batches_done = 0  # over the whole run: tests and progress read it
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._thread: threading.Thread | None = None
        self.result: Result | None = None
        # inside.InsideOptions while observing the layers (set from any thread); the observer
        # itself is made and used on the training thread
        self._inside_options = inside
        self._inside: Any = None

    # ---- control (any thread) ----------------------------------------------------------------

    def pause(self) -> None:
        """Pause before the next batch (takes effect within one batch)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """Stop before the next batch; the checkpoints are kept and last.pt is brought up to date."""
        self._stop.set()
        self._running.set()

    def observe(self, options: Any = None) -> None:
        """Watch inside every layer (``inside.InsideOptions``; None: the defaults) from the next
        batch on: InsideSummary and InsideSample events, and files in ``<run>/inside/``."""
        if options is None:
            options = InsideOptions()
        self._inside_options = options

    def stop_observing(self) -> None:
        """No more inside events from the next batch on (hooks only live within a batch)."""
        self._inside_options = None

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def start(self) -> threading.Thread:
        """Run in a new daemon thread; returns the thread."""
        self._thread = threading.Thread(target=self.run, name="designer-trainer", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> Result | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    # ---- the run -------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if self.callback is not None:
            self.callback(event)

    def run(self) -> Result:
        """Train until done, stopped or failed; never raises (failures become a Failed event)."""
        self.state = "running"
        started = time.perf_counter()
        threads.use_training_threads(self.cpu_threads)  # in this thread: OpenMP's is per thread
        self._batch_in_epoch = 0
        try:
            result = self._run(started)
        except _StopRequested:
            self._save_last(stopped=True)
            self.state = "stopped"
            result = Result("stopped", self._epochs_done, self.history, self._best_epoch,
                            self._best_loss, run_dir=self.run_dir)
            self._emit(Stopped(self.epoch, self._batch_in_epoch, self._epochs_done,
                               _s(self.run_dir)))
        except Exception as exc:  # noqa: BLE001 - anything else becomes a message, not a dead thread
            self.state = "failed"
            msg = str(exc) if isinstance(exc, (TrainingError, ValueError)) else (
                f"{type(exc).__name__}: {exc}")
            if isinstance(exc, torch.cuda.OutOfMemoryError):
                msg = "the GPU ran out of memory: lower training.batch_size or make the model smaller"
            tb = traceback.format_exc()
            epoch = self.epoch or None
            batch = self._batch_in_epoch if epoch else None
            result = Result("failed", getattr(self, "_epochs_done", 0), self.history,
                            getattr(self, "_best_epoch", None), getattr(self, "_best_loss", None),
                            message=msg, run_dir=self.run_dir)
            try:
                self._emit(Failed(msg, tb, epoch, batch, _s(self.run_dir)))
            except Exception:  # noqa: BLE001 - a listener failing on Failed must not raise here
                traceback.print_exc()
        self.result = result
        return result

    def _run(self, started: float) -> Result:
        cfg = self.config
        ds = self.dataset
        self._epochs_done = 0
        self._best_epoch: int | None = None
        self._best_loss: float | None = None
        self._last_saved_epoch = None
        device = pick_device(cfg["device"])
        notes = list(self.recipe.notes)
        amp = bool(cfg["mixed_precision"]) and device.type == "cuda"
        if cfg["mixed_precision"] and not amp:
            notes.append("mixed precision needs a CUDA device; training in float32")
        self.device = device
        torch.manual_seed(cfg["seed"])  # dropout and other random layers
        self._gen = torch.Generator().manual_seed(cfg["seed"])  # shuffling and augmentation
        ds = ds.to(device)
        self._ds = ds
        self._sync_check = device.type == "cpu"  # reading a CPU loss costs nothing
        self._bad = None
        ctx = TrainContext(device, cfg, ds, amp, _weak_guard(self))
        self.recipe.setup(ctx)
        if ds.n_train < 1:
            raise TrainingError("the dataset has no training samples")
        if self.resume_run:
            self._load_resume()
        elif self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / runs.METRICS).write_text("", encoding="utf-8")
        if self.run_dir is not None:
            runs.write_json(self.run_dir / runs.CONFIG, self._config_record(device, amp))
        bs = cfg["batch_size"]
        n = ds.n_train
        nb = max(1, math.ceil(n / bs))
        drop_single = n > bs and n % bs == 1  # a batch of one breaks BatchNorm in training
        if drop_single:
            nb -= 1
        start_epoch = self._epochs_done
        epochs = cfg["epochs"]
        # wall time of the whole run so far (History shows it): a resumed run goes on counting
        prior = self.history[-1].get("elapsed_s") if self.history else 0.0
        prior = prior if isinstance(prior, (int, float)) and math.isfinite(prior) else 0.0
        self._emit(Started(_s(self.run_dir), str(device), epochs, start_epoch, nb, n, ds.n_val,
                           amp, tuple(notes)))
        # what "best" means is the recipe's (its spec's ``best``); without it no best.pt is kept
        # and early stopping, which waits for a better epoch, is off
        keeps_best = _keeps_best(self.recipe.name)
        patience = cfg["early_stopping"] if keeps_best else 0
        since_best = 0
        if self.history and self._best_epoch is not None:
            since_best = self._epochs_done - self._best_epoch
        batch_time = None  # seconds per batch, for the ETA
        reason = "completed"
        for epoch in range(start_epoch + 1, epochs + 1):
            self.epoch = epoch
            t0 = time.perf_counter()
            train = self._train_epoch(epoch, epochs, nb, bs, n, batch_time)
            train_time = time.perf_counter() - t0
            batch_time = train_time / nb
            val = self._evaluate() if ds.n_val else {}
            monitored = val.get("loss", train.get("loss"))
            lr = self.recipe.lr()
            self.recipe.end_epoch(monitored)
            improved = keeps_best and monitored is not None and math.isfinite(monitored) and (
                self._best_loss is None or monitored < self._best_loss)
            if improved:
                self._best_loss, self._best_epoch, since_best = monitored, epoch, 0
            else:
                since_best += 1
            self._epochs_done = epoch
            now = time.perf_counter()
            record = {"epoch": epoch, "lr": lr, "time_s": round(now - t0, 4),
                      "elapsed_s": round(prior + now - started, 3),
                      "samples_per_s": round(n / train_time, 1) if train_time > 0 else None,
                      "train": train, "val": val}
            self.history.append(runs.jsonable(record))
            if self.run_dir is not None:
                runs.append_metrics(self.run_dir, record)
                if improved:
                    path = self._save("best", epoch)
                    self._emit(CheckpointSaved(str(path), "best", epoch))
                path = self._save("last", epoch)
                self._emit(CheckpointSaved(str(path), "last", epoch))
            self._emit(Epoch(epoch, epochs, train, val, lr, record["time_s"],
                             record["samples_per_s"] or 0.0, improved))
            if patience and since_best >= patience:
                reason = "early stopping"
                break
        self.state = "finished"
        final = self.history[-1]["val"] or self.history[-1]["train"] if self.history else {}
        self._emit(Finished(self._epochs_done, reason, self._best_epoch, self._best_loss, final,
                            _s(self.run_dir), time.perf_counter() - started))
        return Result("finished", self._epochs_done, self.history, self._best_epoch,
                      self._best_loss, message=reason, run_dir=self.run_dir)

    def _guard(self, loss: torch.Tensor) -> None:
        """Check a training loss before backward: exactly on CPU, lazily on accelerators."""
        if self._sync_check:
            if not math.isfinite(loss.item()):
                self._raise_nonfinite(f"batch {self._batch_in_epoch + 1}")
        else:
            bad = ~torch.isfinite(loss.detach())
            self._bad = bad if self._bad is None else self._bad | bad

    def _check_lazy(self, first: int, last: int) -> None:
        """On accelerators: did any loss since the last check go non-finite? (one sync)"""
        if self._bad is not None:
            bad, self._bad = bool(self._bad), None
            if bad:
                where = f"batch {last}" if first == last else f"one of batches {first}-{last}"
                self._raise_nonfinite(where)

    def _raise_nonfinite(self, where: str) -> None:
        kept = (f"; the last good checkpoint (epoch {self._last_saved_epoch}) is kept"
                if self._last_saved_epoch is not None else "")
        raise NonFiniteLoss(f"the loss became NaN or infinite in epoch {self.epoch}, {where}: "
                            f"{NAN_HINT}{kept}")

    def _wait_if_paused(self, epoch: int) -> None:
        self.state = "paused"
        self._emit(Paused(epoch, self._batch_in_epoch))
        self._running.wait()
        if self._stop.is_set():
            raise _StopRequested
        self.state = "running"
        self._emit(Resumed(epoch, self._batch_in_epoch))

    def _train_epoch(self, epoch: int, epochs: int, nb: int, bs: int, n: int,
                     batch_time: float | None) -> dict[str, Any]:
        ds, recipe = self._ds, self.recipe
        recipe.set_train(True)
        acc = recipe.metrics(ds, self.device, full=False)
        perm = torch.randperm(n, generator=self._gen)
        if self.device.type != "cpu":
            perm = perm.to(self.device, non_blocking=True)
        augment = ds.augments
        gen = self._gen
        interval = self.batch_event_interval
        t0 = time.perf_counter()
        next_emit = t0 + interval
        checked = 0
        stop, running = self._stop, self._running
        self._batch_in_epoch = 0
        for b in range(nb):
            if stop.is_set():
                raise _StopRequested
            if not running.is_set():
                self._wait_if_paused(epoch)
            idx = perm[b * bs:(b + 1) * bs] if b < nb - 1 else perm[b * bs:]
            if b == nb - 1 and n > bs and n % bs == 1:
                idx = idx[:-1]
            x, y = ds.batch("train", idx, augment, gen)
            inside = self._inside_now()
            if inside is not None and inside.wants(self.batches_done + 1, b == nb - 1,
                                                   b == nb - 1 and epoch == epochs):
                with inside.capture(epoch, b + 1, self.batches_done + 1, sample=b == nb - 1):
                    out = recipe.train_step(x, y)
            else:
                out = recipe.train_step(x, y)
            acc.update(out.loss, out.output, y)
            self._batch_in_epoch = b + 1
            self.batches_done += 1
            now = time.perf_counter()
            if now >= next_emit or b == nb - 1:
                if not self._sync_check:
                    self._check_lazy(checked + 1, b + 1)
                    checked = b + 1
                run = acc.running()
                elapsed = now - t0
                rate = acc.count / elapsed if elapsed > 0 else 0.0
                per_batch = elapsed / (b + 1)
                left = (nb - b - 1 + (epochs - epoch) * nb) * per_batch
                self._emit(Batch(epoch, b + 1, nb, run.get("loss", float("nan")),
                                 {k: v for k, v in run.items() if k != "loss"}, rate, left))
                next_emit = time.perf_counter() + interval
        if not self._sync_check:
            self._check_lazy(checked + 1, nb)
        return acc.compute()

    def _inside_now(self) -> Any:
        """The observer for the options asked for now (made on this, the training, thread)."""
        options = self._inside_options
        if options is None:
            self._inside = None
        elif self._inside is None or self._inside.options is not options:
            self._inside = InsideObserver(self.recipe.modules(), options, self._emit,
                                          self.run_dir, self._ds, self.device)
        return self._inside

    @torch.no_grad()
    def _evaluate(self) -> dict[str, Any]:
        ds, recipe = self._ds, self.recipe
        recipe.set_train(False)
        acc = recipe.metrics(ds, self.device, full=True)
        bs = max(self.config["batch_size"], 256)
        idx_all = torch.arange(ds.n_val, device=self.device)
        for start in range(0, ds.n_val, bs):
            if self._stop.is_set():
                raise _StopRequested
            x, y = ds.batch("val", idx_all[start:start + bs])
            out = recipe.eval_step(x, y)
            acc.update(out.loss, out.output, y)
        return acc.compute()

    # ---- checkpoints and resuming --------------------------------------------------------------

    def _config_record(self, device: torch.device, amp: bool) -> dict[str, Any]:
        return {**self.extra_config, **(self.recipe.record or {}), "training": self.config,
                "data": self._data_info(),
                "recipe": self.recipe.name, "device": str(device), "mixed_precision": amp,
                "designer_version": __version__, "torch_version": torch.__version__}

    def _data_info(self) -> dict[str, Any]:
        info = self.dataset.info()
        return info

    def _checkpoint(self, epoch: int, **extra: Any) -> dict[str, Any]:
        state = self.recipe.state_dict()
        state.update(epoch=epoch, recipe=self.recipe.name,
                     config=runs.jsonable({"training": self.config,
                                           "dataset": self.extra_config.get("dataset"),
                                           "data": self._data_info()}),
                     best_epoch=self._best_epoch, best_loss=self._best_loss,
                     rng={"torch": torch.get_rng_state(), "shuffle": self._gen.get_state()},
                     **extra)
        return state

    def _save(self, kind: str, epoch: int, **extra: Any) -> Path:
        path = self.run_dir / (runs.BEST if kind == "best" else runs.LAST)
        runs.save_checkpoint(path, self._checkpoint(epoch, **extra))
        if kind == "last":
            self._last_saved_epoch = epoch
        return path

    def _save_last(self, stopped: bool) -> None:
        """On stop: last.pt holds the weights as they are now (a batch boundary)."""
        if self.run_dir is None or not hasattr(self, "_epochs_done") or not hasattr(self, "_gen"):
            return
        try:
            path = self._save("last", self._epochs_done, stopped_in_epoch=self.epoch,
                              stopped_at_batch=self._batch_in_epoch)
            self._emit(CheckpointSaved(str(path), "last", self._epochs_done))
            runs.mark_stopped(self.run_dir, self.epoch, self._batch_in_epoch)  # for its label
        except Exception:  # noqa: BLE001, S110 - keeping the previous checkpoint is all we can do
            pass

    def _load_resume(self) -> None:
        if self.run_dir is None:
            raise TrainingError("resume needs a run folder")
        runs.remove_run_temporaries(self.run_dir)  # a killed run's half-written checkpoints
        state = runs.load_checkpoint(self.run_dir / runs.LAST, map_location=self.device)
        if state.get("recipe", DEFAULT_RECIPE) != self.recipe.name:
            raise TrainingError(f"{self.run_dir}: the run was trained with the "
                                f"{state.get('recipe')} recipe, not {self.recipe.name}")
        self.recipe.load_state_dict(state)
        epoch = int(state.get("epoch", 0))
        self._epochs_done = epoch
        self._last_saved_epoch = epoch
        self._best_epoch = state.get("best_epoch")
        self._best_loss = state.get("best_loss")
        rng = state.get("rng") or {}
        if isinstance(rng.get("torch"), torch.Tensor):
            torch.set_rng_state(rng["torch"].cpu())
        if isinstance(rng.get("shuffle"), torch.Tensor):
            self._gen.set_state(rng["shuffle"].cpu())
        self.history = runs.truncate_history(self.run_dir, epoch)
        if epoch >= self.config["epochs"]:
            raise TrainingError(f"the run already has {epoch} epoch(s); ask for more than that "
                                f"(training.epochs, or --epochs) to continue it")


def _keeps_best(recipe_name: str) -> bool:
    """Does a run of this recipe keep a best.pt (its spec declares what best means)? A recipe
    outside the registry (a test's, a script's) keeps the trainer's default: lowest loss."""
    try:
        return recipe_spec(recipe_name).best is not None
    except UnknownRecipe:
        return True


def _weak_guard(trainer: Trainer) -> Callable[[torch.Tensor], None]:
    """The loss guard a recipe calls, without a reference cycle recipe -> trainer -> recipe (so a
    finished trainer and its model and optimizer are freed at once, not at the next GC pass)."""
    ref = weakref.ref(trainer)

    def guard(loss: torch.Tensor) -> None:
        t = ref()
        if t is not None:
            t._guard(loss)

    return guard


def _s(p: Path | None) -> str | None:
    return str(p) if p is not None else None


__all__ = [
    "LOSSES",
    "NAN_HINT",
    "Batch",
    "CheckpointSaved",
    "Epoch",
    "Failed",
    "Finished",
    "NonFiniteLoss",
    "Paused",
    "Recipe",
    "Result",
    "Resumed",
    "Started",
    "StepOutput",
    "Stopped",
    "SupervisedRecipe",
    "TrainContext",
    "Trainer",
    "TrainingError",
    "make_optimizer",
    "make_scheduler",
    "pick_device",
]
