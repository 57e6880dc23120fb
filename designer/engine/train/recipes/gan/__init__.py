"""The GAN recipe: a generator and a discriminator trained against each other.

Declared here (settings, checks, words, export); the training step is
:class:`.training.GanRecipe` and the exported script :mod:`.script`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ....model.graph import Problem
from ....model.schema import Param as Setting  # config.Setting; config imports the recipes
from .. import RecipeError, RecipeSpec, Role, format_general, register
from .checks import DISCRIMINATOR, GAN_NETWORKS, GENERATOR, gan_problems

GAN_LOSSES = ("non_saturating", "minimax")
_GAN = (("recipe", ("gan",)),)


class Gan(RecipeSpec):
    id = "gan"
    title = "GAN"
    doc = "a generator and a discriminator trained against each other"
    roles = (Role(GENERATOR, GENERATOR, "noise in, a fake sample out"),
             Role(DISCRIMINATOR, DISCRIMINATOR, "a sample in, one logit out"))
    hides = ("loss", "lr", "l1", "early_stopping")
    lr_keys = ("lr_d", "lr_g")
    view = "gan"
    loss_label = "D + G loss"
    # D and G play against each other: their losses rise and fall with the game, not with how
    # good the samples are, so the lowest D + G loss is often the least-trained generator
    best = None
    no_best_reason = "its D and G losses do not measure sample quality"
    settings = (
        Setting("lr_d", "float", 0.0002, "Learning rate of the discriminator (GAN)", min=1e-8,
                max=10.0, applies=_GAN, label="GAN: discriminator LR"),
        Setting("lr_g", "float", 0.0002, "Learning rate of the generator (GAN)", min=1e-8,
                max=10.0, applies=_GAN, label="GAN: generator LR"),
        Setting("beta1", "float", 0.5, "Adam's beta1 for both GAN optimizers (0.5 is the usual "
                "GAN choice; Adam's own default is 0.9)", min=0.0, max=0.999,
                applies=(("recipe", ("gan",)), ("optimizer", ("adam", "adamw"))),
                label="GAN: Adam beta1"),
        Setting("d_steps", "int", 1, "Discriminator updates per generator update (GAN)", min=1,
                max=100, applies=_GAN, label="GAN: D steps per G step"),
        Setting("gan_loss", "choice", "non_saturating", "Generator loss: non_saturating "
                "(maximise log D(G(z)), strong gradients from the start) or minimax (minimise "
                "log(1 - D(G(z))), the original game)", choices=GAN_LOSSES, applies=_GAN,
                label="GAN: generator loss"),
    )

    def problems(self, project) -> list:
        return gan_problems(project.networks)

    def suggestion(self, project, current: RecipeSpec):
        if not set(GAN_NETWORKS) <= set(project.networks):
            return None
        return Problem("warning", "The project has a generator and a discriminator but trains "
                       f"with the {current.id} recipe, which uses only the first network: set "
                       f"training.recipe to {self.id} to train them as a GAN.", (),
                       f"{self.id}_recipe")

    def check_data(self, project, ds, training, network=None, analyses=None):
        from .training import check_gan_data  # imports torch

        return check_gan_data(project.networks, ds)

    def prepare(self, project, ds, training, network=None, callback=None):
        from .training import GanError, prepare_gan  # imports torch

        try:
            return prepare_gan(project.networks, ds, training, callback=callback)
        except GanError as exc:
            raise RecipeError(str(exc)) from None

    def format_metrics(self, label: str, m: dict[str, Any]) -> str:
        if "loss_d" not in m:
            return super().format_metrics(label, m)
        return (f"{label} D {m['loss_d']:.4f} G {m['loss_g']:.4f} "
                f"D(x) {m['d_real']:.2f} D(G(z)) {m['d_fake']:.2f}")

    def batch_text(self, m: dict[str, Any]) -> str:
        if "loss_d" not in m:
            return ""
        return f"D {m['loss_d']:.3f} G {m['loss_g']:.3f}"

    def describe_optimizer(self, t: dict[str, Any]) -> str:
        """Two learning rates (lr_d, lr_g), Adam's beta1, D steps per G step and the generator
        loss; ``lr`` is not used, so it is not shown."""
        opt = str(t.get("optimizer", "?"))
        rates = f"lr_d {format_general(t.get('lr_d'))} lr_g {format_general(t.get('lr_g'))}"
        parts = [f"GAN {opt} {rates}"]
        if opt in ("adam", "adamw"):
            parts.append(f"beta1 {format_general(t.get('beta1'))}")
        parts.append(f"d_steps {t.get('d_steps')}")
        parts.append(f"{t.get('gan_loss')} G loss")
        return ", ".join(parts)

    def headline(self, history: list[dict[str, Any]]) -> str:
        """The final D(x) and D(G(z)) (validation if kept, else training)."""
        for r in reversed(history):
            for phase in ("val", "train"):
                m = r.get(phase)
                if isinstance(m, dict) and "d_real" in m and "d_fake" in m:
                    try:
                        return f"D(x) {float(m['d_real']):.2f}, D(G(z)) {float(m['d_fake']):.2f}"
                    except (TypeError, ValueError):
                        return ""
        return ""

    def no_evaluation_note(self, run_dir) -> str:
        return ("A GAN run has no predictions to score: its generator makes samples from noise. "
                "Its sample grids (one per epoch) are in " + str(Path(run_dir) / "samples"))

    def describe_event(self, event: Any) -> str | None:
        return None  # the sample grids go to <run>/samples; the epoch line says enough

    def train_source(self, project, project_dir=None, format: bool = True):
        from .script import gan_train_source  # imports torch (through codegen)

        return gan_train_source(project, project_dir=project_dir, format=format)


GAN = register(Gan())
