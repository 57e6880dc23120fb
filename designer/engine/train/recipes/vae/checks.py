"""The VAE recipe's checks: between its encoder and decoder (the latent size, where the decoder
starts and ends) and with the dataset (what the decoder must output)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ....model.graph import Graph, Problem
from ....model.shapes import analyze

ENCODER = "encoder"
DECODER = "decoder"
VAE_NETWORKS = (ENCODER, DECODER)


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
