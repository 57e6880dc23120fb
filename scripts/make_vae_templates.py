"""Generate the VAE template projects (``designer/templates/vae-*.dnn.json``) from the definitions
below.

    .venv/bin/python scripts/make_vae_templates.py            # rewrite the VAE templates
    .venv/bin/python scripts/make_vae_templates.py --check    # exit 1 if one is out of date

A VAE project holds two networks, ``encoder`` (a sample in; the mean and log-variance of the
latent code out, as two Outputs) and ``decoder`` (the latent code in, the logits of a sample
out), and trains with ``training.recipe = "vae"``. Built with the same builder and layout as
``scripts/make_templates.py``; the output is reproducible byte for byte.
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
from designer.engine.train.recipes.vae import vae_problems

TEMPLATES = ROOT / "designer" / "templates"


def encoder(image: list[int], widths: list[int], latent: int) -> Net:
    """Image -> Flatten -> (Linear -> ReLU) per width, then two heads: the mean and the
    log-variance of the latent code (two Outputs, mean first)."""
    net = Net()
    net.add("Input", "image", shape=list(image))
    net.add("Flatten", "flatten")
    for i, width in enumerate(widths, 1):
        net.add("Linear", f"fc{i}", out_features=width)
        net.add("ReLU", f"relu{i}")
    hidden = net.last
    net.add("Linear", "to_mean", hidden, out_features=latent)
    net.add("Output", "mean")
    net.add("Linear", "to_logvar", hidden, out_features=latent)
    net.add("Output", "log_variance")
    layout(net.graph)
    return net


def decoder(latent: int, widths: list[int], image: list[int]) -> Net:
    """z -> (Linear -> ReLU) per width -> Linear -> Reshape to the image: one logit per pixel."""
    net = Net()
    net.add("Input", "z", shape=[latent])
    for i, width in enumerate(widths, 1):
        net.add("Linear", f"fc{i}", out_features=width)
        net.add("ReLU", f"relu{i}")
    size = 1
    for s in image:
        size *= s
    net.add("Linear", f"fc{len(widths) + 1}", out_features=size)
    net.add("Reshape", "to_image", shape=list(image))
    net.add("Output", "logits")
    layout(net.graph)
    return net


def vae_digits() -> dict[str, Any]:
    return {
        "id": "vae-digits",
        "order": 12,
        "name": "VAE on digits (offline)",
        "encoder": encoder([1, 8, 8], [128, 64], 2),
        "decoder": decoder(2, [64, 128], [1, 8, 8]),
        "teaches": "A variational autoencoder: an encoder squeezes each image into a "
        "2-number code, a decoder draws the image back from it, and a KL term keeps the codes "
        "close to a standard normal so that random codes decode into new digits.",
        "expected": "Recognisable digits in the sample grid within a minute on a CPU, the "
        "digits sorted into regions of the 2-D latent scatter, reconstructions that keep each "
        "digit's shape. Encoder {e_params} parameters, decoder {d_params}.",
        "description": "Two networks trained together on scikit-learn's 8x8 digits (offline, "
        "pixels in [0, 1]). The encoder (tab 'encoder') flattens an image through Linear(64, "
        "128) -> ReLU -> Linear(128, 64) -> ReLU into two heads: the mean and the log-variance "
        "of a 2-D latent code. A code z = mean + exp(log-variance / 2) * noise is drawn (the "
        "reparameterisation trick) and the decoder (tab 'decoder') maps it through Linear(2, "
        "64) -> ReLU -> Linear(64, 128) -> ReLU -> Linear(128, 64) back to 8x8 pixel logits. "
        "The loss is the binary cross-entropy of the reconstruction plus the KL divergence of "
        "the code from a standard normal, both summed per image and averaged over the batch; "
        "Adam with lr 0.002. Watch the reconstructions sharpen, the sample grid turn into "
        "digits and the latent scatter sort the classes.",
        "dataset": {"kind": "digits", "task": "classification", "normalize": False,
                    "val_fraction": 0.1, "split_seed": 0},
        "training": {"recipe": "vae", "optimizer": "adam", "lr": 0.002, "vae_loss": "bce",
                     "vae_beta": 1.0, "epochs": 60, "batch_size": 32, "seed": 0},
    }


DEFINITIONS = [vae_digits]


def build(defn: dict[str, Any]) -> Project:
    counts = {}
    networks = {}
    for net_name in ("encoder", "decoder"):
        graph = defn[net_name].graph
        analysis = analyze(graph)
        if not analysis.ok:
            msgs = "; ".join(p.message for p in analysis.errors)
            raise SystemExit(f"template {defn['id']}: the {net_name} does not check clean: {msgs}")
        networks[net_name] = graph
        counts[net_name] = f"{analysis.total_params:,}"
    problems, _ = vae_problems(networks)
    if problems:
        raise SystemExit(f"template {defn['id']}: {'; '.join(p.message for p in problems)}")

    def fill(text: str) -> str:
        return text.replace("{e_params}", counts["encoder"]).replace(
            "{d_params}", counts["decoder"])

    meta = {"id": defn["id"], "order": defn["order"], "teaches": defn["teaches"],
            "expected": fill(defn["expected"]), "generated_by": "scripts/make_vae_templates.py"}
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
