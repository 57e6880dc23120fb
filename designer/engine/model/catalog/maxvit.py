"""MaxViT's attention: multi-head self-attention over square windows with a learned relative
position bias (torchvision's RelativePositionalMultiHeadAttention, same state_dict keys)."""

from __future__ import annotations

import math

from .schema import DataFit, LayerError, MemoryUse, Param, Shape, register


def _resolve_rel_attention(p: dict, ins: list[Shape], dts: list[str]) -> dict:
    *_, n, d = ins[0]
    head_dim, side = p["head_dim"], p["window_size"]
    if d % head_dim:
        raise LayerError(f"RelativePositionAttention: {d} features per position are not a "
                         f"multiple of head_dim {head_dim}: set head_dim to a divisor of {d}")
    if n != side * side:
        raise LayerError(f"RelativePositionAttention: the input has {n} positions per window, "
                         f"but window_size {side} means {side * side}: set window_size so "
                         "that its square is the second to last size of the input")
    return {"feat_dim": d, "head_dim": head_dim, "max_seq_len": side * side}


def _rel_attention_params(kw: dict) -> int:
    d, side = kw["feat_dim"], round(math.sqrt(kw["max_seq_len"]))
    heads = d // kw["head_dim"]
    return (d * 3 * d + 3 * d) + (d * d + d) + (2 * side - 1) ** 2 * heads


def _rel_attention_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    *lead, n, d = ins[0]
    windows = math.prod(lead)
    return windows * (4 * n * d * d + 2 * n * n * d)


register(
    id="RelativePositionAttention",
    display_name="RelativePositionAttention",
    category="Recurrent & Attention",
    doc="MaxViT's window self-attention on (..., window_size^2, D): per head "
    "y = softmax(q k^T / sqrt(D) + B) v, B a learned bias per relative offset; then a Linear.",
    params=(
        Param("head_dim", "int", 32, "Features per head (heads = features / head_dim)", min=1,
              max=65536),
        Param("window_size", "int", 7, "Side of the square window: the input has its square "
              "positions", min=1, max=4096),
    ),
    module_name="RelativePositionAttention",
    helper_module=True,
    resolve=_resolve_rel_attention,
    count_params=lambda kw: _rel_attention_params(kw),
    infer=lambda p, ins: (_resolve_rel_attention(p, ins, []), ins[0])[1],
    macs=_rel_attention_macs,
    input_rank=(2, 3),
    rank_words="(positions, features) or (windows, positions, features)",
    key_params=("head_dim", "window_size"),
    prefix="attn",
    # as before: what its inside keeps is not counted yet (an under-count)
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)


# --------------------------------------------------------------------------------------------
# Import: torchvision's MaxViT attention imports as this layer (designer import)
# --------------------------------------------------------------------------------------------

from .importers import Unmapped, imports_module


@imports_module("torchvision.models.maxvit.RelativePositionalMultiHeadAttention",
                layers=("RelativePositionAttention",), params=("head_dim", "window_size"))
def _import_relative_attention(m):
    if m.size * m.size != m.max_seq_len or m.n_heads * m.head_dim != m.to_qkv.in_features:
        raise Unmapped(type(m).__name__, "a window that is not square or heads that do not "
                       "split the features")
    return "RelativePositionAttention", {"head_dim": m.head_dim, "window_size": m.size}
