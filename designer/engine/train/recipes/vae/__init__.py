"""The VAE recipe: an encoder and a decoder trained as a variational autoencoder.

This package holds the whole recipe: here its declaration (roles, settings, checks, words) and
its training step (:class:`VaeRecipe`, on the shared trainer: pause, stop, the NaN check,
checkpoints and resuming are the trainer's); in :mod:`.script` its exported ``train.py``.
Importing it imports no torch (``..lazy``): checking a design never pays for it.

The encoder maps a sample ``x`` to the mean ``mu`` and log-variance ``logvar`` of a Gaussian over
the latent code: either two Outputs of size ``d`` (mean first, then log-variance) or one Output
of size ``2 * d`` (its first half the mean). Each training batch:

1. ``z = mu + exp(0.5 * logvar) * eps`` with ``eps ~ N(0, 1)`` (the reparameterisation, so the
   gradient flows through the sampling);
2. the decoder turns ``z`` into a sample of the dataset's shape;
3. loss = reconstruction + ``vae_beta`` * KL, where the reconstruction is BCE with logits (the
   decoder outputs logits; ``vae_loss = "bce"``) or the squared error (``"mse"``) against the
   input with the dataset's normalisation undone (values in [0, 1] for images), and
   ``KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))``. Both terms are **summed over the values
   of one sample and averaged over the batch** (the ELBO per sample, as in Kingma & Welling and
   PyTorch's VAE example, which sums over the batch too).

Metrics per phase: ``loss``, ``recon`` and ``kl`` (sample-weighted means). After every epoch a
:class:`VaeSamples` event carries a grid of validation images beside their reconstructions, a
grid decoded from a fixed noise batch (its own seeded generator: the training noise is not
shifted) and, for a 2-D latent, the validation means with their class labels for a scatter plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ....lazy import F, nn, torch
from ....model.graph import Graph, Problem
from ....model.schema import Param as Setting  # = config.Setting (config would gather us half-made)
from ....model.shapes import analyze
from .. import (
    RecipeError,
    RecipeSpec,
    Role,
    design_errors,
    error_list,
    format_fixed,
    format_general,
    register,
)
from ..base import MeanMetrics, Recipe, StepOutput
from .events import VAE_METRIC_KEYS, VAE_METRIC_LABELS, VaeSamples

ENCODER = "encoder"
DECODER = "decoder"
VAE_NETWORKS = (ENCODER, DECODER)
VAE_LOSSES = ("bce", "mse")
#: Samples decoded from the fixed noise (8 x 8) and validation images reconstructed (4 pairs a row).
PREVIEW_SAMPLES = 64
PREVIEW_RECONSTRUCTIONS = 32
#: Most validation means sent for the latent scatter.
SCATTER_POINTS = 2000

_VAE = (("recipe", ("vae",)),)


# ---------------------------------------------------------------------------------------------
# Checks between the two networks and with the dataset
# ---------------------------------------------------------------------------------------------


@dataclass
class _Latent:
    """What the checks found out: the latent size and the nodes that set it."""

    d: int | None
    split: bool  # one Output of size 2d (True) or two Outputs of size d (False)
    enc_in: Any = None
    dec_in: Any = None
    dec_out: Any = None
    enc_in_shape: tuple[int, ...] = ()
    dec_out_shape: tuple[int, ...] = ()


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "?"


def vae_problems(networks: dict[str, Graph], analyses: dict[str, Any] | None = None
                 ) -> tuple[list[Problem], _Latent | None]:
    """The checks between encoder and decoder, each pinned to the node to change; and the latent
    size found (None when the networks do not say it yet)."""
    missing = [n for n in VAE_NETWORKS if n not in networks]
    if missing:
        have = ", ".join(repr(n) for n in networks) or "none"
        return [Problem("error", f"VAE: a VAE project needs two networks named 'encoder' and "
                        f"'decoder'; this one has {have}. Rename its networks, or set "
                        f"training.recipe to supervised.", (), "vae_networks")], None
    problems: list[Problem] = []
    enc, dec = networks[ENCODER], networks[DECODER]
    a_enc = (analyses or {}).get(ENCODER) or analyze(enc)
    a_dec = (analyses or {}).get(DECODER) or analyze(dec)
    e_ins, e_outs, d_ins, d_outs = enc.inputs(), enc.outputs(), dec.inputs(), dec.outputs()
    if len(e_ins) != 1 or len(e_outs) not in (1, 2):
        problems.append(Problem(
            "error", f"VAE: the encoder needs one Input (a sample) and one or two Outputs (the "
            f"mean and log-variance: two Outputs of size d, or one of size 2*d); it has "
            f"{len(e_ins)} Input(s) and {len(e_outs)} Output(s).",
            tuple(n.id for n in e_ins + e_outs), "vae_encoder_io"))
    if len(d_ins) != 1 or len(d_outs) != 1:
        problems.append(Problem(
            "error", f"VAE: the decoder needs exactly one Input (the latent code z) and one "
            f"Output (a sample); it has {len(d_ins)} Input(s) and {len(d_outs)} Output(s).",
            tuple(n.id for n in d_ins + d_outs), "vae_decoder_io"))
    if problems or not a_enc.ok or not a_dec.ok:
        return problems, None  # each network's own errors are reported; shapes come after

    def out_shape(analysis, node) -> tuple[int, ...]:
        info = analysis.infos.get(node.id)
        return tuple(info.output_shape or ()) if info else ()

    lat = _Latent(None, len(e_outs) == 1, e_ins[0], d_ins[0], d_outs[0],
                  out_shape(a_enc, e_ins[0]), out_shape(a_dec, d_outs[0]))
    for net, inp in ((ENCODER, e_ins[0]), (DECODER, d_ins[0])):
        if inp.params.get("dtype", "float32") != "float32":
            what = "a sample" if net == ENCODER else "the latent code z"
            problems.append(Problem(
                "error", f"VAE: the {net}'s Input '{inp.name}' takes int64 token ids, but it "
                f"receives {what} (float32): set its dtype to float32.", (inp.id,), "vae_dtype"))
    shapes = [out_shape(a_enc, o) for o in e_outs]
    if lat.split:
        (s,) = shapes
        if len(s) != 1 or s[0] % 2:
            problems.append(Problem(
                "error", f"VAE: the encoder's Output '{e_outs[0].name}' has shape {_shape(s)}; "
                "one Output must be a vector of size 2*d (the mean, then the log-variance of a "
                "d-dimensional latent): end the encoder in a Linear layer with an even "
                "out_features, e.g. 4 for a 2-D latent, or give it two Outputs of size d.",
                (e_outs[0].id,), "vae_encoder_size"))
        else:
            lat.d = s[0] // 2
    else:
        m, v = shapes
        if len(m) != 1 or m != v:
            problems.append(Problem(
                "error", f"VAE: the encoder's two Outputs are the mean and the log-variance of "
                f"the latent code, so both must be vectors of the same size d; "
                f"'{e_outs[0].name}' has shape {_shape(m)} and '{e_outs[1].name}' "
                f"{_shape(v)}: give the layers before them the same out_features.",
                tuple(o.id for o in e_outs), "vae_encoder_size"))
        else:
            lat.d = m[0]
    if lat.d is not None:
        z_shape = out_shape(a_dec, d_ins[0])
        if z_shape != (lat.d,):
            problems.append(Problem(
                "error", f"VAE: the encoder makes a {lat.d}-dimensional latent code, but the "
                f"decoder's Input '{d_ins[0].name}' takes {_shape(z_shape)}: set its shape to "
                f"[{lat.d}].", (d_ins[0].id,), "vae_latent"))
    return problems, lat


def check_vae_data(networks: dict[str, Graph], ds, analyses: dict[str, Any] | None = None):
    """Does the VAE fit the dataset? The encoder's Input takes the dataset's samples and the
    decoder gives back samples of that shape (a one-click fix for the encoder's Input and for
    a decoder that ends in a Reshape of the right size)."""
    from ...data.compat import (  # deferred: torch loads only when this runs
        DataCheck,
        DataProblem,
        ParamFix,
    )

    check = DataCheck(input_shape=tuple(ds.sample_shape), input_dtype=ds.dtype)
    if ds.dtype != "float32":
        check.problems.append(DataProblem(
            "error", f"{ds.name} holds token ids; a VAE here learns images or vectors of numbers "
            "(choose an image or table dataset)", (), (), "vae_data_dtype"))
        return check
    _, lat = vae_problems(networks, analyses)
    if lat is None:
        return check  # reported by the checks between the networks
    want = tuple(ds.sample_shape)
    if lat.enc_in_shape != want:
        check.problems.append(DataProblem(
            "error", f"the dataset's samples are {_shape(want)} but the encoder's Input "
            f"'{lat.enc_in.name}' takes {_shape(lat.enc_in_shape)}: set its shape to "
            f"{list(want)}", (lat.enc_in.id,), (ParamFix(lat.enc_in.id, "shape", list(want)),),
            "vae_data_input"))
    if lat.dec_out_shape != want:
        fixes: tuple = ()
        hint = (f"end the decoder in a layer that makes {_shape(want)} (e.g. a Linear with "
                f"out_features {math.prod(want)} and a Reshape to {list(want)})")
        last = _last_reshape(networks[DECODER], lat.dec_out.id)
        if last is not None and math.prod(lat.dec_out_shape) == math.prod(want):
            hint = f"set the shape of its Reshape '{last.name}' to {list(want)}"
            fixes = (ParamFix(last.id, "shape", list(want)),)
        check.problems.append(DataProblem(
            "error", f"the decoder must give back samples like the dataset's ({_shape(want)}), "
            f"but its Output '{lat.dec_out.name}' is {_shape(lat.dec_out_shape)}: {hint}",
            (lat.dec_out.id,), fixes, "vae_data_output"))
    return check


def _last_reshape(graph: Graph, output_id: str):
    """The Reshape a network ends with (looking through the Output and Identity), or None."""
    nid = output_id
    for _ in range(len(graph.nodes)):
        node = graph.nodes[nid]
        if node.type == "Reshape":
            return node
        preds = graph.in_edges(nid)
        if node.type not in ("Output", "Identity") or len(preds) != 1:
            return None
        nid = preds[0].src
    return None


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


# ---------------------------------------------------------------------------------------------
# The declaration
# ---------------------------------------------------------------------------------------------


class Vae(RecipeSpec):
    id = "vae"
    title = "VAE"
    doc = "an encoder and a decoder learn a latent code that reconstructs and generates samples"
    roles = (Role(ENCODER, ENCODER, "a sample in, the mean and log-variance of z out"),
             Role(DECODER, DECODER, "the latent code z in, a sample out"))
    hides = ("loss", "l1")
    lr_keys = ("lr",)
    view = "vae"
    best = "reconstruction + KL loss"
    settings = (
        Setting("vae_loss", "choice", "bce", "Reconstruction loss of the VAE: bce (the decoder "
                "outputs logits; binary cross-entropy against the input in [0, 1]) or mse "
                "(squared error); summed over a sample's values, averaged over the batch",
                choices=VAE_LOSSES, applies=_VAE, label="VAE: reconstruction loss"),
        Setting("vae_beta", "float", 1.0, "Weight of the KL term (beta-VAE; 1 is the plain "
                "VAE, larger values give a smoother latent space and blurrier reconstructions)",
                min=0.0, max=1000.0, applies=_VAE, label="VAE: KL weight (beta)"),
    )

    def problems(self, project) -> list:
        return vae_problems(project.networks)[0]

    def check_data(self, project, ds, training, network=None, analyses=None):
        return check_vae_data(project.networks, ds, analyses)

    def prepare(self, project, ds, training, network=None, callback=None):
        return prepare_vae(project.networks, ds, training, callback=callback)

    def format_metrics(self, label: str, m: dict[str, Any]) -> str:
        if "recon" not in m:
            return super().format_metrics(label, m)
        return (f"{label} loss {format_fixed(m.get('loss'), '.4f')} "
                f"recon {format_fixed(m.get('recon'), '.4f')} "
                f"KL {format_fixed(m.get('kl'), '.4f')}")

    def batch_text(self, m: dict[str, Any]) -> str:
        if "recon" not in m:
            return ""
        return f"recon {format_fixed(m.get('recon'), '.3f')} KL {format_fixed(m.get('kl'), '.3f')}"

    def describe_optimizer(self, t: dict[str, Any]) -> str:
        """The optimizer, the reconstruction loss and beta."""
        return (f"VAE {t.get('optimizer', '?')} lr {format_general(t.get('lr'))}, "
                f"{t.get('vae_loss')} reconstruction, beta {format_general(t.get('vae_beta'))}")

    def headline(self, history: list[dict[str, Any]]) -> str:
        """The final reconstruction and KL terms (validation if kept, else training)."""
        for r in reversed(history):
            for phase in ("val", "train"):
                m = r.get(phase)
                if isinstance(m, dict) and "recon" in m and "kl" in m:
                    try:
                        return f"recon {float(m['recon']):.1f}, KL {float(m['kl']):.1f}"
                    except (TypeError, ValueError):
                        return ""
        return ""

    def describe_event(self, event: Any) -> str | None:
        if isinstance(event, VaeSamples) and event.sample_path:
            folder = Path(event.sample_path).parent
            return f"epoch {event.epoch}: samples and reconstructions in {folder}"
        return None

    def train_source(self, project, project_dir=None, format: bool = True):
        from .script import vae_train_source  # imports torch (through codegen)

        return vae_train_source(project, project_dir=project_dir, format=format)


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


VAE = register(Vae())

__all__ = ["DECODER", "ENCODER", "VAE", "VAE_LOSSES", "VAE_METRIC_KEYS", "VAE_METRIC_LABELS",
           "VAE_NETWORKS", "Vae", "VaeRecipe", "VaeSamples", "check_vae_data", "encode",
           "prepare_vae", "vae_loss", "vae_problems"]
