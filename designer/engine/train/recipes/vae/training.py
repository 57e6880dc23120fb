"""The VAE recipe's training step (:class:`VaeRecipe`, on the shared trainer) and how a run is
prepared (:func:`prepare_vae`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ....lazy import F, nn, torch
from ....model.graph import Graph
from .. import RecipeError, design_errors, error_list
from ..base import MeanMetrics, Recipe, StepOutput
from .checks import DECODER, ENCODER, VAE_NETWORKS, check_vae_data, vae_problems
from .events import VAE_METRIC_KEYS, VaeSamples

#: Samples decoded from the fixed noise (8 x 8) and validation images reconstructed (4 pairs a row).
PREVIEW_SAMPLES = 64
PREVIEW_RECONSTRUCTIONS = 32
#: Most validation means sent for the latent scatter.
SCATTER_POINTS = 2000


# ---------------------------------------------------------------------------------------------
# The training step
# ---------------------------------------------------------------------------------------------


def encode(encoder, x) -> tuple[Any, Any]:
    """The encoder's mean and log-variance (two Outputs, or one vector split in half)."""
    out = encoder(x)
    if isinstance(out, tuple):
        return out[0], out[1]
    d = out.shape[1] // 2
    return out[:, :d], out[:, d:]


def vae_loss(decoded, target, mu, logvar, loss: str, beta: float) -> tuple[Any, Any, Any]:
    """(total, reconstruction, KL): each term summed over one sample's values, averaged over the
    batch; ``total = recon + beta * KL``. The exported train.py computes exactly this."""
    if loss == "bce":
        recon = F.binary_cross_entropy_with_logits(decoded, target, reduction="none")
    else:
        recon = (decoded - target) ** 2
    recon = recon.flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    return recon + beta * kl, recon, kl


class VaeRecipe(Recipe):
    """Encoder, decoder, one optimizer over both; see the module docstring.

    ``latent``: the size d of z. ``callback`` receives the :class:`VaeSamples` events (give it
    the trainer's callback)."""

    name = "vae"

    def __init__(self, encoder, decoder, latent: int,
                 callback: Callable[[Any], None] | None = None,
                 preview: int = PREVIEW_SAMPLES) -> None:
        self.encoder = encoder
        self.decoder = decoder
        self.latent = int(latent)
        self.callback = callback
        self.preview = preview
        self.epoch = 0
        self.last_samples: VaeSamples | None = None
        self.sample_dir: Path | None = None  # when set: each epoch's grids as PNG files

    def modules(self) -> dict[str, Any]:
        return {ENCODER: self.encoder, DECODER: self.decoder}

    def metrics(self, dataset, device, full: bool) -> MeanMetrics:
        return MeanMetrics(VAE_METRIC_KEYS, device)

    def parameters(self) -> list:
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    # -- set-up ------------------------------------------------------------------------------------

    def setup(self, ctx) -> None:
        from ...training import (  # deferred: torch loads only when this runs
            TrainingError,
            make_optimizer,
            make_scheduler,
        )

        cfg = ctx.config
        self.ctx = ctx
        self.device = ctx.device
        self.encoder.to(ctx.device)
        self.decoder.to(ctx.device)
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise TrainingError("the VAE's networks have no trainable parameters")
        self.optimizer = make_optimizer(cfg, params)
        self.scheduler = make_scheduler(cfg, self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=ctx.mixed_precision)
        self.clip = cfg["grad_clip"]
        self.loss_name = cfg["vae_loss"]
        self.beta = cfg["vae_beta"]
        self.seed = cfg["seed"]
        # The preview noise and the validation noise have their own generators, so they never
        # shift the training noise (torch's global generator, which the trainer seeds and
        # checkpoints).
        g = torch.Generator().manual_seed(self.seed + 2)
        self.fixed_noise = torch.randn((self.preview, self.latent), generator=g).to(ctx.device)
        self._val_gen = torch.Generator().manual_seed(self.seed + 3)
        ds = ctx.dataset
        self.dataset = ds
        self._unnorm = None
        if ds.mean is not None:  # undo the dataset's standardisation: back to [0, 1] first
            view = (1, len(ds.mean)) + (1,) * (len(ds.sample_shape) - 1)
            self._unnorm = (
                torch.tensor(ds.std, dtype=torch.float32, device=ctx.device).view(view),
                torch.tensor(ds.mean, dtype=torch.float32, device=ctx.device).view(view))

    def target(self, x):
        """A batch as the reconstruction target: the dataset's normalisation undone."""
        x = x.float()
        if self._unnorm is not None:
            x = x * self._unnorm[0] + self._unnorm[1]
        return x

    def _losses(self, x, eps=None):
        mu, logvar = encode(self.encoder, x)
        if eps is None:
            eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        decoded = self.decoder(z)
        return vae_loss(decoded, self.target(x), mu, logvar, self.loss_name, self.beta)

    # -- steps -------------------------------------------------------------------------------------

    def train_step(self, x, y) -> StepOutput:
        with self.ctx.autocast():
            loss, recon, kl = self._losses(x)
        self.ctx.guard(loss)
        opt = self.optimizer
        opt.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            if self.clip:
                self.scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(self.parameters(), self.clip)
            self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
            if self.clip:
                nn.utils.clip_grad_norm_(self.parameters(), self.clip)
            opt.step()
        out = torch.stack([loss.detach().float(), recon.detach().float(), kl.detach().float()])
        return StepOutput(out[0], out)

    def eval_step(self, x, y) -> StepOutput:
        with torch.no_grad():
            mu_shape = (x.shape[0], self.latent)
            eps = torch.randn(mu_shape, generator=self._val_gen).to(self.device)
            with self.ctx.autocast():
                loss, recon, kl = self._losses(x, eps)
            out = torch.stack([loss.float(), recon.float(), kl.float()])
        return StepOutput(out[0], out)

    # -- epochs, previews, checkpoints ---------------------------------------------------------------

    def end_epoch(self, monitored_loss: float | None) -> None:
        s = self.scheduler
        if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if monitored_loss is not None and math.isfinite(monitored_loss):
                s.step(monitored_loss)
        elif s is not None:
            s.step()
        self.epoch += 1
        self._val_gen.manual_seed(self.seed + 3)  # every epoch is validated with the same noise
        self.emit_samples()

    def _images(self, decoded):
        """Decoder outputs as images in [0, 1] (logits through a sigmoid for the BCE loss)."""
        x = decoded.float()
        x = torch.sigmoid(x) if self.loss_name == "bce" else x.clamp(0, 1)
        return x.cpu().numpy()

    def previews(self) -> VaeSamples:
        """This epoch's grids and latent scatter (eval mode, no gradients, no global RNG)."""
        from ..gan.training import as_images, make_grid  # deferred: torch loads only when this runs

        ds = self.dataset
        split = "val" if ds.n_val else "train"
        n_split = ds.n_val if ds.n_val else ds.n_train
        mods = self.modules().values()
        was = [m.training for m in mods]
        for m in mods:
            m.eval()
        try:
            with torch.no_grad():
                samples = as_images(self._images(self.decoder(self.fixed_noise)))
                k = min(PREVIEW_RECONSTRUCTIONS, n_split)
                x, _ = ds.batch(split, torch.arange(k, device=self.device))
                mu, _ = encode(self.encoder, x)
                originals = as_images(self.target(x).clamp(0, 1).cpu().numpy())
                recons = as_images(self._images(self.decoder(mu)))
                pairs = np.stack([originals, recons], 1).reshape(-1, *originals.shape[1:])
                latent = labels = None
                if self.latent == 2 and ds.n_val:
                    means, ys = [], []
                    count = min(ds.n_val, SCATTER_POINTS)
                    for start in range(0, count, 256):
                        idx = torch.arange(start, min(start + 256, count), device=self.device)
                        xb, yb = ds.batch("val", idx)
                        means.append(encode(self.encoder, xb)[0].float().cpu())
                        ys.append(yb.cpu())
                    latent = torch.cat(means).numpy()
                    if ds.task == "classification" and ds.class_names:
                        labels = torch.cat(ys).numpy()
        finally:
            for m, w in zip(mods, was):
                m.train(w)
        return VaeSamples(self.epoch, make_grid(pairs, nrow=8), make_grid(samples), latent,
                          labels, tuple(ds.class_names or ()) if labels is not None else ())

    def emit_samples(self) -> VaeSamples:
        from ..gan.training import save_grid  # deferred: torch loads only when this runs

        event = self.previews()
        if self.sample_dir is not None:
            folder = Path(self.sample_dir)
            path = save_grid(event.samples, folder / f"epoch_{self.epoch:03d}.png")
            save_grid(event.reconstructions, folder / f"reconstructions_{self.epoch:03d}.png")
            event = replace(event, sample_path=str(path))
        self.last_samples = event
        if self.callback is not None:
            self.callback(event)
        return event

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {ENCODER: self.encoder.state_dict(), DECODER: self.decoder.state_dict()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "fixed_noise": self.fixed_noise.detach().cpu(),
            "latent": self.latent,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from ...training import TrainingError  # deferred: torch loads only when this runs

        models = state.get("model")
        if not isinstance(models, dict) or set(models) != set(VAE_NETWORKS):
            raise TrainingError("the checkpoint does not hold an encoder and a decoder")
        for name, module in self.modules().items():
            try:
                module.load_state_dict(models[name])
            except RuntimeError as exc:
                first = str(exc).splitlines()
                detail = "; ".join(line.strip() for line in first[1:4]) or first[0]
                raise TrainingError(f"the checkpoint's {name} does not fit this design (were "
                                    f"layers changed since?): {detail[:300]}") from None
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
        noise = state.get("fixed_noise")
        if isinstance(noise, torch.Tensor) and noise.shape == self.fixed_noise.shape:
            self.fixed_noise = noise.to(self.device)
        self.epoch = int(state.get("epoch", 0) or 0)


def prepare_vae(networks: dict[str, Graph], ds, training: dict[str, Any],
                callback: Callable[[Any], None] | None = None,
                preview: int = PREVIEW_SAMPLES) -> VaeRecipe:
    """Check the two networks (with each other and with the dataset), build them with the
    training seed (encoder: seed, decoder: seed + 1) and return the recipe.

    Raises :class:`RecipeError` listing every error."""
    from ....model.build import BuildError, build_model  # deferred: torch loads only when this runs
    from ...config import (
        validate_training,  # imported here: a module-level import would be circular
    )
    from ...data.compat import memory_problem  # deferred: torch loads only when this runs

    cfg = validate_training(training)
    nets = {k: networks[k] for k in VAE_NETWORKS if k in networks}
    analyses, errors = design_errors(nets)
    problems, lat = vae_problems(networks, analyses)
    errors += [p.message for p in problems if p.severity == "error"]
    if errors:
        raise RecipeError(error_list("the VAE cannot be trained as designed", errors))
    check = check_vae_data(networks, ds, analyses)
    if not check.ok:
        hint = " (press \"Make the design fit\")" if check.fixes else ""
        raise RecipeError(error_list(f"the VAE does not fit the dataset{hint}",
                                     [p.message for p in check.errors]), "data",
                          fixable=bool(check.fixes))
    for net in VAE_NETWORKS:  # before anything is allocated: each training step must fit
        problem = memory_problem(networks[net], analyses[net], ds, cfg)
        if problem is not None and problem.severity == "error":
            errors.append(f"{net}: {problem.message}")
    if errors:
        raise RecipeError(error_list("the VAE does not fit in memory", errors), "memory")
    try:
        enc = build_model(networks[ENCODER], analyses[ENCODER], seed=cfg["seed"])
        dec = build_model(networks[DECODER], analyses[DECODER], seed=cfg["seed"] + 1)
    except BuildError as exc:
        raise RecipeError(str(exc), "build") from None
    return VaeRecipe(enc, dec, lat.d, callback=callback, preview=preview)
