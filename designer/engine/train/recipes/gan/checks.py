"""The GAN's checks between its two networks: a generator (its Input is the noise vector, its
Output a fake sample) and a discriminator (a sample in, one logit out). :func:`gan_problems`
says what to change when they do not fit together; the recipe is
:mod:`designer.engine.train.recipes.gan`."""

from __future__ import annotations

from typing import Any

from ....model.graph import Graph, Problem
from ....model.shapes import analyze

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"
GAN_NETWORKS = (GENERATOR, DISCRIMINATOR)

# Layers that only move values around: looked through to find the layer a network ends with.
_PASS_THROUGH = {"Reshape", "Flatten", "Identity", "Dropout", "Output", "Permute"}


def gan_problems(networks: dict[str, Graph], analyses: dict[str, Any] | None = None
                 ) -> list[Problem]:
    """The GAN checks: both networks exist, the generator's output fits the discriminator's
    input, the discriminator ends in one logit; warnings for a Sigmoid at the end of the
    discriminator and a generator that does not end in Tanh (real samples are scaled to [-1, 1])."""
    missing = [n for n in GAN_NETWORKS if n not in networks]
    if missing:
        have = ", ".join(repr(n) for n in networks) or "none"
        return [Problem("error", f"GAN: a GAN project needs two networks named 'generator' and "
                        f"'discriminator'; this one has {have}. Rename its networks, or set "
                        f"training.recipe to supervised.", (), "gan_networks")]
    problems: list[Problem] = []
    infos: dict[str, Any] = {}
    for net in GAN_NETWORKS:
        graph = networks[net]
        analysis = (analyses or {}).get(net) or analyze(graph)
        ins, outs = graph.inputs(), graph.outputs()
        if len(ins) != 1 or len(outs) != 1:
            problems.append(Problem(
                "error", f"GAN: the {net} needs exactly one Input and one Output (it has "
                f"{len(ins)} Input(s) and {len(outs)} Output(s)).",
                tuple(n.id for n in ins + outs), "gan_io"))
            continue
        if not analysis.ok:
            continue  # the network's own errors are reported; shapes are unknown until fixed
        inp, out = ins[0], outs[0]
        infos[net] = (inp, out, tuple(analysis.infos[inp.id].output_shape or ()),
                      tuple(analysis.infos[out.id].output_shape or ()))
        if inp.params.get("dtype", "float32") != "float32":
            what = ("the noise vector" if net == GENERATOR else "a real or generated sample")
            problems.append(Problem(
                "error", f"GAN: the {net}'s Input '{inp.name}' takes int64 token ids, but it "
                f"receives {what} (float32): set its dtype to float32.", (inp.id,), "gan_dtype"))
    if DISCRIMINATOR in infos:
        d_in, d_out, d_in_shape, d_out_shape = infos[DISCRIMINATOR]
        if d_out_shape != (1,):
            last = _last_layer(networks[DISCRIMINATOR], d_out.id)
            hint = (f" set out_features of '{last.name}' to 1" if last is not None
                    and last.type == "Linear" else " end it in a Linear layer with out_features 1")
            problems.append(Problem(
                "error", f"GAN: the discriminator must give one logit per sample (output shape "
                f"1), but its Output '{d_out.name}' has shape {_shape(d_out_shape)}:{hint}.",
                (d_out.id,), "gan_logit"))
        last = _last_layer(networks[DISCRIMINATOR], d_out.id)
        if last is not None and last.type == "Sigmoid":
            problems.append(Problem(
                "warning", f"GAN: the discriminator ends in a Sigmoid ('{last.name}'); the GAN "
                "loss (BCE with logits) applies the sigmoid itself, so remove it and output the "
                "raw logit.", (last.id,), "gan_sigmoid"))
    if GENERATOR in infos:
        _, g_out, _, g_out_shape = infos[GENERATOR]
        last = _last_layer(networks[GENERATOR], g_out.id)
        if last is not None and last.type != "Tanh":
            problems.append(Problem(
                "warning", f"GAN: the generator ends in {last.type} ('{last.name}'), but real "
                "samples are scaled to [-1, 1]: end it in Tanh so its fakes can take the same "
                "values.", (last.id,), "gan_tanh"))
        if DISCRIMINATOR in infos:
            d_in, _, d_in_shape, _ = infos[DISCRIMINATOR]
            if g_out_shape != d_in_shape:
                problems.append(Problem(
                    "error", f"GAN: the generator makes samples of shape {_shape(g_out_shape)} "
                    f"(its Output '{g_out.name}'), but the discriminator's Input '{d_in.name}' "
                    f"expects {_shape(d_in_shape)}: set that Input's shape to "
                    f"{list(g_out_shape)}, or change the generator's last layers (e.g. its "
                    f"Reshape) so that it makes {_shape(d_in_shape)}.", (), "gan_shape"))
    return problems


def _last_layer(graph: Graph, output_id: str):
    """The layer a network ends with, looking through reshapes, dropout and the Output."""
    nid = output_id
    seen = set()
    while nid not in seen:
        seen.add(nid)
        node = graph.nodes[nid]
        if node.type not in _PASS_THROUGH:
            return node
        preds = graph.in_edges(nid)
        if len(preds) != 1:
            return None
        nid = preds[0].src
    return None


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "?"


__all__ = ["DISCRIMINATOR", "GAN_NETWORKS", "GENERATOR", "gan_problems"]
