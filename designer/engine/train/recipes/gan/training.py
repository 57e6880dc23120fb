"""The GAN recipe's training: a generator and a discriminator trained against each other.

Plugs into the shared :class:`~designer.engine.train.training.Trainer`, so pausing, stopping, the
NaN check, checkpoints and resuming behave exactly as in supervised training. Each training batch:

1. ``d_steps`` discriminator updates: real samples (the batch, scaled to [-1, 1] to match a Tanh
   generator) should score 1, fakes ``G(z)`` should score 0; loss ``BCE(D(x), 1) + BCE(D(G(z)), 0)``
   with logits (the sum, as in PyTorch's DCGAN example);
2. one generator update: non-saturating ``BCE(D(G(z)), 1)`` (default) or the original minimax
   ``-BCE(D(G(z)), 0)`` = ``log(1 - D(G(z)))``.

Each optimizer has its own learning rate (``training.lr_d``, ``training.lr_g``); Adam and AdamW
use ``betas=(training.beta1, 0.999)``. Metrics per phase: ``loss_d``, ``loss_g``, ``d_real``
(mean D(x), a probability) and ``d_fake`` (mean D(G(z)) before the discriminator's update), and
``loss`` = ``loss_d + loss_g`` for the trainer's bookkeeping. After every epoch the generator (in
eval mode) turns a fixed noise batch into samples, sent as a :class:`GanSamples` event with a
ready image grid, so the pictures of successive epochs are comparable.

Validation (when the dataset keeps a validation split) scores held-out real images and fresh
fakes without updating anything: a D(x) much higher on training than on validation images means
the discriminator memorises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ....model.graph import Graph
from ....model.shapes import analyze
from ...config import validate_training
from ...data.compat import DataCheck, DataProblem
from ...training import (
    Recipe,
    StepOutput,
    TrainContext,
    TrainingError,
    make_optimizer,
    make_scheduler,
)
from .checks import DISCRIMINATOR, GENERATOR, gan_problems
from .events import GAN_METRIC_KEYS, GanSamples

#: Samples in the preview grid (8 x 8).
PREVIEW_SAMPLES = 64


class GanError(TrainingError):
    """A GAN cannot be trained as designed; the message lists what to change."""


# ---------------------------------------------------------------------------------------------
# Preview grid
# ---------------------------------------------------------------------------------------------


def as_images(samples: np.ndarray) -> np.ndarray:
    """Samples of any shape as ``(N, C, H, W)`` images with C of 1 or 3 (vectors become one row,
    other channel counts show their first channel)."""
    x = np.asarray(samples, dtype=np.float32)
    n = x.shape[0]
    if x.ndim == 2:
        x = x.reshape(n, 1, 1, x.shape[1])
    elif x.ndim == 3:
        x = x[:, None]
    elif x.ndim > 4:
        x = x.reshape(n, x.shape[1], x.shape[2], -1)
    if x.shape[1] not in (1, 3):
        x = x[:, :1]
    return x


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 1,
              pad_value: float = 0.5) -> np.ndarray:
    """Tile images ``(N, C, H, W)`` in [0, 1] into one picture, ``nrow`` images per row (default:
    a square). Returns ``(H', W')`` for one channel, ``(H', W', 3)`` for three."""
    x = as_images(images)
    n, c, h, w = x.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_grid(grid: np.ndarray, path: str | Path) -> Path:
    """Write a grid from :func:`make_grid` as an 8-bit PNG (Pillow comes with torchvision)."""
    from PIL import Image  # deferred: PIL loads only when this runs

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


class GanMetrics:
    """Sample-weighted means of the GAN step outputs over one phase (no device sync until read)."""

    def __init__(self, device: torch.device) -> None:
        self._fdt = torch.float32 if device.type == "mps" else torch.float64
        self.sums = torch.zeros(len(GAN_METRIC_KEYS), dtype=self._fdt, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        n = target.shape[0]
        self.sums += output.detach().to(self._fdt) * n
        self.count += n

    def running(self) -> dict[str, float]:
        if not self.count:
            return {}
        values = (self.sums / self.count).tolist()
        out = dict(zip(GAN_METRIC_KEYS, values))
        return {"loss": out["loss_d"] + out["loss_g"], **out}

    def compute(self) -> dict[str, Any]:
        return self.running()


# ---------------------------------------------------------------------------------------------
# The recipe
# ---------------------------------------------------------------------------------------------


class GanRecipe(Recipe):
    """Two networks, two optimizers; see the module docstring.

    ``noise_shape``: one noise sample (the generator Input's shape). ``callback`` receives the
    :class:`GanSamples` events (give it the trainer's callback). ``preview``: how many samples
    the fixed noise holds."""

    name = "gan"

    def __init__(self, generator: nn.Module, discriminator: nn.Module,
                 noise_shape: tuple[int, ...], callback: Callable[[Any], None] | None = None,
                 preview: int = PREVIEW_SAMPLES) -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.noise_shape = tuple(int(s) for s in noise_shape)
        self.callback = callback
        self.preview = preview
        self.epoch = 0
        self.last_samples: GanSamples | None = None
        self.sample_dir: Path | None = None  # when set: each epoch's grid as epoch_NNN.png

    def modules(self) -> dict[str, nn.Module]:
        return {GENERATOR: self.generator, DISCRIMINATOR: self.discriminator}

    def metrics(self, dataset, device: torch.device, full: bool) -> GanMetrics:
        return GanMetrics(device)

    # -- set-up ------------------------------------------------------------------------------------

    def setup(self, ctx: TrainContext) -> None:
        cfg = ctx.config
        self.ctx = ctx
        self.device = ctx.device
        self.generator.to(ctx.device)
        self.discriminator.to(ctx.device)
        self.opt_d = _optimizer(cfg, self.discriminator.parameters(), cfg["lr_d"])
        self.opt_g = _optimizer(cfg, self.generator.parameters(), cfg["lr_g"])
        self.schedulers = [s for s in (make_scheduler(cfg, self.opt_d),
                                       make_scheduler(cfg, self.opt_g)) if s is not None]
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=ctx.mixed_precision)
                        for k in (GENERATOR, DISCRIMINATOR)}
        self.bce = nn.BCEWithLogitsLoss()
        self.clip = cfg["grad_clip"]
        self.d_steps = cfg["d_steps"]
        self.minimax = cfg["gan_loss"] == "minimax"
        seed = cfg["seed"]
        # The preview noise and the validation noise come from their own generators, so they
        # never shift the training noise (drawn from torch's global generator, which the
        # trainer seeds and checkpoints).
        g = torch.Generator().manual_seed(seed + 2)
        self.fixed_noise = torch.randn((self.preview, *self.noise_shape), generator=g)
        self.fixed_noise = self.fixed_noise.to(ctx.device)
        self._val_gen = torch.Generator().manual_seed(seed + 3)
        ds = ctx.dataset
        mean, std = ds.mean, ds.std
        self._unnorm = None
        if mean is not None:  # undo the dataset's standardisation: back to [0, 1] first
            view = (1, len(mean)) + (1,) * (len(ds.sample_shape) - 1)
            self._unnorm = (torch.tensor(std, dtype=torch.float32, device=ctx.device).view(view),
                            torch.tensor(mean, dtype=torch.float32, device=ctx.device).view(view))

    def real(self, x: torch.Tensor) -> torch.Tensor:
        """A batch from the dataset (values in [0, 1], maybe standardised) -> [-1, 1]."""
        x = x.float()
        if self._unnorm is not None:
            x = x * self._unnorm[0] + self._unnorm[1]
        return x * 2.0 - 1.0

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is not None:
            return torch.randn((n, *self.noise_shape), generator=generator).to(self.device)
        return torch.randn((n, *self.noise_shape), device=self.device)

    # -- steps -------------------------------------------------------------------------------------

    def _update(self, which: str, loss: torch.Tensor, opt: torch.optim.Optimizer,
                params: nn.Module) -> None:
        self.ctx.guard(loss)
        scaler = self.scalers[which]
        opt.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(loss).backward()
            if self.clip:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(params.parameters(), self.clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if self.clip:
                nn.utils.clip_grad_norm_(params.parameters(), self.clip)
            opt.step()

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake)
        loss = (self.bce(d_real, torch.ones_like(d_real))
                + self.bce(d_fake, torch.zeros_like(d_fake)))
        return loss, d_real, d_fake

    def _g_loss(self, d_out: torch.Tensor) -> torch.Tensor:
        if self.minimax:  # minimise log(1 - D(G(z))) = -BCE(D(G(z)), 0)
            return -self.bce(d_out, torch.zeros_like(d_out))
        return self.bce(d_out, torch.ones_like(d_out))

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        G, D = self.generator, self.discriminator
        real = self.real(x)
        n = real.shape[0]
        for k in range(self.d_steps):
            last = k == self.d_steps - 1
            with self.ctx.autocast():
                if last:  # this batch of fakes also trains the generator below
                    fake = G(self.noise(n))
                else:
                    with torch.no_grad():
                        fake = G(self.noise(n))
                loss_d, d_real, d_fake = self._d_loss(real, fake.detach())
            self._update(DISCRIMINATOR, loss_d, self.opt_d, D)
        with self.ctx.autocast():
            loss_g = self._g_loss(D(fake))
        self._update(GENERATOR, loss_g, self.opt_g, G)
        out = torch.stack([loss_d.detach().float(), loss_g.detach().float(),
                           torch.sigmoid(d_real.detach().float()).mean(),
                           torch.sigmoid(d_fake.detach().float()).mean()])
        return StepOutput(out[0] + out[1], out)

    @torch.no_grad()
    def eval_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        real = self.real(x)
        with self.ctx.autocast():
            fake = self.generator(self.noise(real.shape[0], self._val_gen))
            loss_d, d_real, d_fake = self._d_loss(real, fake)
            loss_g = self._g_loss(d_fake)
        out = torch.stack([loss_d.float(), loss_g.float(), torch.sigmoid(d_real.float()).mean(),
                           torch.sigmoid(d_fake.float()).mean()])
        return StepOutput(out[0] + out[1], out)

    # -- epochs, previews, checkpoints ---------------------------------------------------------------

    def end_epoch(self, monitored_loss: float | None) -> None:
        for s in self.schedulers:
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if monitored_loss is not None and math.isfinite(monitored_loss):
                    s.step(monitored_loss)
            else:
                s.step()
        self.epoch += 1
        self.emit_samples()

    @torch.no_grad()
    def samples(self) -> np.ndarray:
        """The generator's samples from the fixed noise, ``(N, ...)`` in [0, 1] (eval mode)."""
        G = self.generator
        was_training = G.training
        G.eval()
        try:
            out = G(self.fixed_noise)
        finally:
            G.train(was_training)
        return ((out.float().clamp(-1, 1) + 1) / 2).cpu().numpy()

    def emit_samples(self) -> GanSamples:
        images = as_images(self.samples())
        event = GanSamples(self.epoch, images, make_grid(images))
        self.last_samples = event
        if self.sample_dir is not None:
            save_grid(event.grid, Path(self.sample_dir) / f"epoch_{self.epoch:03d}.png")
        if self.callback is not None:
            self.callback(event)
        return event

    def lr(self) -> float:
        return float(self.opt_g.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {GENERATOR: self.generator.state_dict(),
                      DISCRIMINATOR: self.discriminator.state_dict()},
            "optimizer": {GENERATOR: self.opt_g.state_dict(),
                          DISCRIMINATOR: self.opt_d.state_dict()},
            "scheduler": [s.state_dict() for s in self.schedulers],
            "scaler": {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()},
            "fixed_noise": self.fixed_noise.detach().cpu(),
            "noise_shape": list(self.noise_shape),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        models = state.get("model")
        if not isinstance(models, dict) or set(models) != {GENERATOR, DISCRIMINATOR}:
            raise TrainingError("the checkpoint does not hold a generator and a discriminator")
        for name, module in self.modules().items():
            try:
                module.load_state_dict(models[name])
            except RuntimeError as exc:
                first = str(exc).splitlines()
                detail = "; ".join(line.strip() for line in first[1:4]) or first[0]
                raise TrainingError(f"the checkpoint's {name} does not fit this design (were "
                                    f"layers changed since?): {detail[:300]}") from None
        opts = state.get("optimizer") or {}
        for name, opt in ((GENERATOR, self.opt_g), (DISCRIMINATOR, self.opt_d)):
            if opts.get(name):
                try:
                    opt.load_state_dict(opts[name])
                except (ValueError, KeyError) as exc:
                    raise TrainingError(f"the checkpoint's {name} optimizer state does not fit "
                                        f"the optimizer settings: {exc}") from None
        for s, saved in zip(self.schedulers, state.get("scheduler") or []):
            s.load_state_dict(saved)
        for k, saved in (state.get("scaler") or {}).items():
            if k in self.scalers and self.scalers[k].is_enabled():
                self.scalers[k].load_state_dict(saved)
        noise = state.get("fixed_noise")
        if isinstance(noise, torch.Tensor) and noise.shape[1:] == self.fixed_noise.shape[1:]:
            self.fixed_noise = noise.to(self.device)
        self.epoch = int(state.get("epoch", 0) or 0)


def _optimizer(cfg: dict[str, Any], params, lr: float) -> torch.optim.Optimizer:
    """The configured optimizer at ``lr``; Adam and AdamW with ``betas=(beta1, 0.999)``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise TrainingError("a GAN network has no trainable parameters")
    return make_optimizer(cfg, params, lr=lr, betas=(cfg["beta1"], 0.999))


# ---------------------------------------------------------------------------------------------
# From a project to a recipe
# ---------------------------------------------------------------------------------------------


def check_gan_data(networks: dict[str, Graph], ds) -> DataCheck:
    """Does the GAN fit the dataset? The discriminator's Input must take the dataset's samples."""
    check = DataCheck(input_shape=tuple(ds.sample_shape), input_dtype=ds.dtype, output_size=1)
    graph = networks.get(DISCRIMINATOR)
    if graph is None or len(graph.inputs()) != 1:
        return check  # reported by gan_problems
    inp = graph.inputs()[0]
    if ds.dtype != "float32":
        check.problems.append(DataProblem(
            "error", f"{ds.name} holds token ids; a GAN here learns images or vectors of numbers "
            "(choose an image or table dataset)", (inp.id,), (), "gan_data_dtype"))
        return check
    shape = analyze(graph).infos.get(inp.id)
    got = tuple(shape.output_shape or ()) if shape else ()
    if got != tuple(ds.sample_shape):
        want = "x".join(map(str, ds.sample_shape))
        check.problems.append(DataProblem(
            "error", f"the dataset's samples are {want} but the discriminator's Input "
            f"'{inp.name}' takes {'x'.join(map(str, got)) or '?'}: set its shape to "
            f"{list(ds.sample_shape)} and make the generator's output {want} too",
            (inp.id,), (), "gan_data_shape"))
    return check


def prepare_gan(networks: dict[str, Graph], ds, training: dict[str, Any],
                callback: Callable[[Any], None] | None = None,
                preview: int = PREVIEW_SAMPLES) -> GanRecipe:
    """Check the two networks (with each other and with the dataset), build them with the
    training seed (generator: seed, discriminator: seed + 1) and return the recipe.

    Raises :class:`GanError` listing every error."""
    from ....model.build import BuildError, build_model  # deferred: torch loads only when this runs
    cfg = validate_training(training)
    analyses = {k: analyze(g) for k, g in networks.items() if k in (GENERATOR, DISCRIMINATOR)}
    errors = []
    for net, analysis in analyses.items():
        errors += [f"{net}: {p.message}" for p in analysis.errors]
    errors += [p.message for p in gan_problems(networks, analyses) if p.severity == "error"]
    if not errors:
        errors += [p.message for p in check_gan_data(networks, ds).errors]
    if not errors:  # before anything is allocated: each network's training step must fit
        from ...data.compat import memory_problem  # deferred: torch loads only when this runs

        for net in (GENERATOR, DISCRIMINATOR):
            problem = memory_problem(networks[net], analyses[net], ds, cfg)
            if problem is not None and problem.severity == "error":
                errors.append(f"{net}: {problem.message}")
    if errors:
        lines = "\n".join(f"- {m}" for m in errors[:10])
        raise GanError(f"the GAN cannot be trained as designed ({len(errors)} error(s)):\n{lines}")
    try:
        G = build_model(networks[GENERATOR], analyses[GENERATOR], seed=cfg["seed"])
        D = build_model(networks[DISCRIMINATOR], analyses[DISCRIMINATOR], seed=cfg["seed"] + 1)
    except BuildError as exc:
        raise GanError(str(exc)) from None
    noise = networks[GENERATOR].inputs()[0].params["shape"]
    return GanRecipe(G, D, tuple(noise), callback=callback, preview=preview)


__all__ = ["PREVIEW_SAMPLES", "GanError", "GanMetrics", "GanRecipe", "GanSamples", "as_images",
           "check_gan_data", "make_grid", "prepare_gan", "save_grid"]
