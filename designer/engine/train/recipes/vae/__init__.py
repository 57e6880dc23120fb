"""The VAE recipe: an encoder and a decoder trained as a variational autoencoder.

This package holds the whole recipe: here its declaration (roles, settings, words); in
:mod:`.checks` the checks between its networks and with the dataset; in :mod:`.training` its
training step (:class:`VaeRecipe`, on the shared trainer: pause, stop, the NaN check,
checkpoints and resuming are the trainer's); in :mod:`.events` its events; in :mod:`.script` its
exported ``train.py``.
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

from pathlib import Path
from typing import Any

from ....model.schema import Param as Setting  # = config.Setting (config would gather us half-made)
from .. import RecipeSpec, Role, format_fixed, format_general, register
from .checks import DECODER, ENCODER, VAE_NETWORKS, check_vae_data, vae_problems
from .events import VAE_METRIC_KEYS, VAE_METRIC_LABELS, VaeSamples
from .training import VaeRecipe, encode, prepare_vae, vae_loss

VAE_LOSSES = ("bce", "mse")

_VAE = (("recipe", ("vae",)),)


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


VAE = register(Vae())

__all__ = ["DECODER", "ENCODER", "VAE", "VAE_LOSSES", "VAE_METRIC_KEYS", "VAE_METRIC_LABELS",
           "VAE_NETWORKS", "Vae", "VaeRecipe", "VaeSamples", "check_vae_data", "encode",
           "prepare_vae", "vae_loss", "vae_problems"]
