"""Generate the GAN template projects (``designer/templates/gan-*.dnn.json``) from the definitions
below.

    .venv/bin/python scripts/make_gan_templates.py            # rewrite the GAN templates
    .venv/bin/python scripts/make_gan_templates.py --check    # exit 1 if one is out of date

A GAN project holds two networks, ``generator`` (noise in, sample out) and ``discriminator``
(sample in, one logit out), and trains with ``training.recipe = "gan"``. The networks are written
with the same builder and layout as ``scripts/make_templates.py`` (imported from it: the
engine's wrapped layout, so a long generator reads at the zoom that fits the window), and the
output is reproducible byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_templates import Net, layout

from designer.engine.document.project import Project, project_to_json
from designer.engine.model.shapes import analyze
from designer.engine.train.recipes.gan.checks import gan_problems

TEMPLATES = ROOT / "designer" / "templates"


def generator(latent: int, widths: list[int], image: list[int]) -> Net:
    """Noise -> (Linear -> LeakyReLU(0.2) -> BatchNorm1d) per width -> Linear -> Tanh -> image."""
    net = Net()
    net.add("Input", "noise", shape=[latent])
    for i, width in enumerate(widths, 1):
        net.add("Linear", f"fc{i}", out_features=width)
        net.add("LeakyReLU", f"lrelu{i}", negative_slope=0.2)
        net.add("BatchNorm1d", f"bn{i}")
    size = 1
    for s in image:
        size *= s
    net.add("Linear", f"fc{len(widths) + 1}", out_features=size)
    net.add("Tanh", "tanh")
    net.add("Reshape", "to_image", shape=list(image))
    net.add("Output", "fake")
    # A row per block (Linear, LeakyReLU, BatchNorm), wrapped like lines of text.
    layout(net.graph, tuple(f"fc{i}" for i in range(2, len(widths) + 2)))
    return net


def discriminator(image: list[int], widths: list[int]) -> Net:
    """Image -> Flatten -> (Linear -> LeakyReLU(0.2)) per width -> Linear(., 1): one logit."""
    net = Net()
    net.add("Input", "image", shape=list(image))
    net.add("Flatten", "flatten")
    for i, width in enumerate(widths, 1):
        net.add("Linear", f"fc{i}", out_features=width)
        net.add("LeakyReLU", f"lrelu{i}", negative_slope=0.2)
    net.add("Linear", f"fc{len(widths) + 1}", out_features=1)
    net.add("Output", "logit")
    layout(net.graph)
    return net


GAN_TRAINING = {"recipe": "gan", "optimizer": "adam", "lr_d": 0.0002, "lr_g": 0.0002,
                "beta1": 0.5, "d_steps": 1, "gan_loss": "non_saturating", "seed": 0}


def gan_digits() -> dict[str, Any]:
    return {
        "id": "gan-digits",
        "order": 10,
        "name": "GAN on digits (offline)",
        "generator": generator(32, [64, 128], [1, 8, 8]),
        "discriminator": discriminator([1, 8, 8], [128, 64]),
        "teaches": "A generative adversarial network: a generator turns random noise into "
        "images, a discriminator learns to tell them from real ones, and each improves against "
        "the other.",
        "expected": "Digit-like shapes in the sample grid after 15-30 epochs (about a second "
        "per epoch on a CPU); D(x) and D(G(z)) settle near 0.5. Generator {g_params} "
        "parameters, discriminator {d_params}.",
        "description": "Two networks trained against each other on scikit-learn's 8x8 digits "
        "(offline). The generator (tab 'generator') maps 32 random numbers through Linear -> "
        "LeakyReLU(0.2) -> BatchNorm1d layers of 64 and 128 units to 64 pixels, Tanh and a "
        "reshape to 1x8x8; the discriminator (tab 'discriminator') flattens an image and scores "
        "it with Linear(64, 128) -> LeakyReLU -> Linear(128, 64) -> LeakyReLU -> Linear(64, 1), "
        "one logit. Real images are scaled to [-1, 1] to match the Tanh. Each batch, the "
        "discriminator learns to score real images 1 and fakes 0 (BCE with logits), then the "
        "generator learns to make the discriminator score its fakes 1 (the non-saturating "
        "loss); both use Adam with lr 0.0002 and beta1 0.5. Watch the sample grid turn from "
        "noise into digits, and D(x) and D(G(z)) meet near 0.5.",
        "dataset": {"kind": "digits", "task": "classification", "normalize": False,
                    "val_fraction": 0.1, "split_seed": 0},
        "training": {**GAN_TRAINING, "lr_d": 0.0005, "lr_g": 0.0005, "epochs": 40,
                     "batch_size": 32},
    }


def gan_mnist() -> dict[str, Any]:
    return {
        "id": "gan-mnist",
        "order": 11,
        "name": "GAN on MNIST",
        "generator": generator(100, [128, 256, 512, 1024], [1, 28, 28]),
        "discriminator": discriminator([1, 28, 28], [512, 256]),
        "teaches": "The classic fully connected GAN: a generator from 100 noise numbers to a "
        "28x28 digit and an MLP discriminator, trained adversarially.",
        "expected": "The sample grid turns from noise into digit strokes over the first epochs; "
        "an epoch (54,000 images) took about 3 minutes on a shared 2-core CPU, so a GPU is the "
        "place for the 20 epochs set here. Generator {g_params} parameters, discriminator "
        "{d_params}.",
        "description": "The generator Linear(100, 128) -> LeakyReLU(0.2) -> BatchNorm1d(128) -> "
        "Linear(128, 256) -> LeakyReLU(0.2) -> BatchNorm1d(256) -> Linear(256, 512) -> "
        "LeakyReLU(0.2) -> BatchNorm1d(512) -> Linear(512, 1024) -> LeakyReLU(0.2) -> "
        "BatchNorm1d(1024) -> Linear(1024, 784) -> Tanh -> reshape to 1x28x28 ({g_params} "
        "parameters) turns 100 random numbers into an image; the MLP discriminator Flatten -> "
        "Linear(784, 512) -> LeakyReLU(0.2) -> Linear(512, 256) -> LeakyReLU(0.2) -> "
        "Linear(256, 1) ({d_params} parameters) scores real against generated images. MNIST "
        "images are scaled to [-1, 1] to match the Tanh. Adam with lr 0.0002 and beta1 0.5 for "
        "both, BCE with logits and the non-saturating generator loss. MNIST is downloaded on "
        "first use; the 'GAN on digits' template runs offline.",
        "dataset": {"kind": "torchvision", "name": "MNIST", "task": "classification",
                    "normalize": False, "val_fraction": 0.1, "split_seed": 0, "download": True},
        "training": {**GAN_TRAINING, "epochs": 20, "batch_size": 64},
    }


DEFINITIONS = [gan_digits, gan_mnist]


def build(defn: dict[str, Any]) -> Project:
    counts = {}
    networks = {}
    for net_name in ("generator", "discriminator"):
        graph = defn[net_name].graph
        analysis = analyze(graph)
        if not analysis.ok:
            msgs = "; ".join(p.message for p in analysis.errors)
            raise SystemExit(f"template {defn['id']}: the {net_name} does not check clean: {msgs}")
        networks[net_name] = graph
        counts[net_name] = f"{analysis.total_params:,}"
    problems = gan_problems(networks)
    if problems:
        raise SystemExit(f"template {defn['id']}: {'; '.join(p.message for p in problems)}")

    def fill(text: str) -> str:
        return text.replace("{g_params}", counts["generator"]).replace(
            "{d_params}", counts["discriminator"])

    meta = {"id": defn["id"], "order": defn["order"], "teaches": defn["teaches"],
            "expected": fill(defn["expected"]), "generated_by": "scripts/make_gan_templates.py"}
    return Project(name=defn["name"], description=fill(defn["description"]), networks=networks,
                   dataset=defn["dataset"], training=defn["training"], metadata=meta)


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    out = {}
    for fn in DEFINITIONS:
        defn = fn()
        out[TEMPLATES / f"{defn['id']}.dnn.json"] = project_to_json(build(defn))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed files instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8", newline="\n")
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
