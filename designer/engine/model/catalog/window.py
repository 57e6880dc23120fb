"""Swin Transformer's layers: window attention with shifted windows (V1 and V2) and the patch
merging that halves a stage's map. They work channels-last, on (height, width, channels), as
torchvision's Swin does; their classes are designer.engine.model.modules', with torchvision's parameter
and buffer names, so its state_dicts load unchanged."""

from __future__ import annotations

import math

from .schema import MAX_DIM, DataFit, LayerError, MemoryUse, Param, _infer_size, pair, register

_CPB_HIDDEN = 512  # V2's position-bias MLP: Linear(2, 512), ReLU, Linear(512, heads)


def _attention_params(window: int):
    return (
        Param("dim", "int", None, "Channels, the last axis (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("window_size", "ints", window, "Window height and width, in positions", min=1,
              max=1024, length=2),
        Param("shift_size", "ints", 0, "Cyclic shift of the windows (Swin shifts every second "
              "block by half a window); 0: none", min=0, max=1024, length=2),
        Param("num_heads", "int", 1, "Attention heads (must divide dim)", min=1, max=1024),
        Param("qkv_bias", "bool", True, "Learn biases in the query/key/value projection"),
        Param("proj_bias", "bool", True, "Learn a bias in the output projection"),
        Param("attention_dropout", "float", 0.0, "Dropout on the attention weights", min=0,
              max=0.999),
        Param("dropout", "float", 0.0, "Dropout on the output", min=0, max=0.999),
    )


_MAX_WINDOW = 4096  # positions in one window (the index buffer is its square, int64)


def _make_attention_resolver(label: str):
    def resolve(p, ins, dts):
        c = _infer_size(p, "dim", ins[0][-1], "channels in its last axis", label)
        if c % p["num_heads"]:
            raise LayerError(f"{label}: {c} channels do not split into num_heads "
                             f"{p['num_heads']}: pick a head count that divides {c}")
        window, shift = list(pair(p["window_size"])), list(pair(p["shift_size"]))
        if window[0] * window[1] > _MAX_WINDOW:
            raise LayerError(f"{label}: a window of {window[0]} x {window[1]} positions is more "
                             f"than {_MAX_WINDOW} (its position index holds the square of that): "
                             "Swin uses 7 x 7")
        if label.endswith("V2") and min(window) < 2:
            raise LayerError(f"{label}: window_size {min(window)} on an axis: V2's relative "
                             "coordinates are scaled by (window - 1), so each side must be at "
                             "least 2")
        for axis, (w, s) in enumerate(zip(window, shift)):
            if s >= w:
                raise LayerError(f"{label}: shift_size {s} is not smaller than window_size {w} "
                                 f"(axis {axis}): shift by less than a window (half of it in "
                                 "Swin)")
        # as given (one int for a square window): the module takes either
        return {"dim": c, "window_size": p["window_size"], "shift_size": p["shift_size"],
                "num_heads": p["num_heads"], "qkv_bias": p["qkv_bias"],
                "proj_bias": p["proj_bias"], "attention_dropout": p["attention_dropout"],
                "dropout": p["dropout"]}

    return resolve


def _attention_count(v2: bool):
    def count(kw):
        c, heads = kw["dim"], kw["num_heads"]
        wh, ww = pair(kw["window_size"])
        n = 3 * c * c + (3 * c if kw["qkv_bias"] else 0) + c * c + (c if kw["proj_bias"] else 0)
        if v2:  # logit scale per head, the position-bias MLP
            return n + heads + 3 * _CPB_HIDDEN + _CPB_HIDDEN * heads
        return n + (2 * wh - 1) * (2 * ww - 1) * heads  # the bias table

    return count


def _attention_macs(v2: bool):
    def macs(p, ins, out):
        h, w, c = ins[0]
        wh, ww = pair(p["window_size"])
        tokens = math.ceil(h / wh) * wh * math.ceil(w / ww) * ww  # padded to whole windows
        # qkv and output projections, Q K^T and attention x V within each window
        n = 4 * tokens * c * c + 2 * tokens * wh * ww * c
        if v2:
            n += (2 * wh - 1) * (2 * ww - 1) * _CPB_HIDDEN * (2 + p["num_heads"])
        return n

    return macs


def _window_shape(label: str):
    resolve = _make_attention_resolver(label)

    def infer(p, ins):
        resolve(p, ins, [])
        return ins[0]

    return infer


_WINDOW_DOC = ("over (H, W, C) in windows of window_size (padded to whole windows), rolled by "
               "shift_size: ")

for _name, _v2, _doc, _window in (
        ("ShiftedWindowAttention", False, "Swin self-attention " + _WINDOW_DOC
         + "softmax(QK^T / sqrt(C/heads) + B) V, B a learned relative-position table.", 7),
        ("ShiftedWindowAttentionV2", True, "Swin V2 attention " + _WINDOW_DOC
         + "softmax(cos(Q, K) * scale + 16 sigmoid(MLP(coords))) V.", 8)):
    register(
        id=_name,
        display_name=_name,
        category="Recurrent & Attention",
        doc=_doc,
        params=_attention_params(_window),
        module_name=_name,
        helper_module=True,
        resolve=_make_attention_resolver(_name),
        count_params=_attention_count(v2=_v2),
        infer=_window_shape(_name),
        macs=_attention_macs(v2=_v2),
        input_rank=(3,),
        rank_words="(height, width, channels)",
        key_params=("window_size", "shift_size", "num_heads"),
        prefix="attn",
        # as before: what its inside keeps is not counted yet (an under-count)
        memory=MemoryUse("nothing"),
        inside="layer",
        data_fit=DataFit("other"),
    )


def _make_merging_resolver(label: str):
    def resolve(p, ins, dts):
        c = _infer_size(p, "dim", ins[0][-1], "channels in its last axis", label)
        return {"dim": c, "eps": p["eps"]}

    return resolve


def _merging_shape(p, ins):
    h, w, c = ins[0]
    _infer_size(p, "dim", c, "channels in its last axis", "PatchMerging")
    return (-(-h // 2), -(-w // 2), 2 * c)


def _merging_macs(p, ins, out):
    h, w, c2 = out
    return h * w * (4 * c2 // 2) * c2 + h * w * 4 * c2  # the Linear, the LayerNorm (at most)


def _merging_params():
    return (
        Param("dim", "int", None, "Channels, the last axis (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("eps", "float", 1e-5, "The LayerNorm's eps", min=1e-12, max=1),
    )


# Swin's downsampling (V1: LayerNorm(4C) then the Linear; V2: the Linear, then LayerNorm(2C))
for _id, _order, _norm in (("PatchMerging", "LayerNorm, Linear to 2C (no bias)", 4),
                           ("PatchMergingV2", "Linear to 2C (no bias), LayerNorm", 2)):
    register(
        id=_id,
        display_name=_id,
        category="Recurrent & Attention",
        doc=f"Swin{' V2' if _norm == 2 else ''} downsampling of (H, W, C): each 2x2 patch -> 4C "
        f"features, {_order}: (ceil(H/2), ceil(W/2), 2C).",
        params=_merging_params(),
        module_name=_id,
        helper_module=True,
        resolve=_make_merging_resolver(_id),
        # the Linear 4C x 2C, the LayerNorm's scale and shift over its width
        count_params=lambda kw, n=_norm: 8 * kw["dim"] ** 2 + 2 * n * kw["dim"],
        infer=_merging_shape,
        macs=_merging_macs,
        input_rank=(3,),
        rank_words="(height, width, channels)",
        key_params=(),
        prefix="downsample",
        # as before: what its inside keeps is not counted yet (an under-count)
        memory=MemoryUse("nothing"),
        inside="layer",
        data_fit=DataFit("other"),
    )


# --------------------------------------------------------------------------------------------
# Import: torchvision's Swin modules that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import Unmapped, imports_module, one

_SWIN = "torchvision.models.swin_transformer"


@imports_module(f"{_SWIN}.ShiftedWindowAttention", f"{_SWIN}.ShiftedWindowAttentionV2",
                layers=("ShiftedWindowAttention", "ShiftedWindowAttentionV2"),
                params=("window_size", "shift_size", "num_heads", "qkv_bias", "proj_bias",
                        "attention_dropout", "dropout"))
def _import_window_attention(m):
    from torch import nn  # deferred: declaring converters needs no torch; they run with it

    cls, dim = type(m).__name__, m.qkv.in_features
    v2 = hasattr(m, "cpb_mlp")
    if type(m.qkv) is not nn.Linear or type(m.proj) is not nn.Linear \
            or m.qkv.out_features != 3 * dim or m.proj.in_features != dim \
            or m.proj.out_features != dim or len(m.window_size) != 2 \
            or len(m.shift_size) != 2 or any(s >= w for s, w in zip(m.shift_size,
                                                                      m.window_size)):
        raise Unmapped(cls, "projections other than Linear(dim, 3 dim) and Linear(dim, "
                       "dim), or a shift not smaller than the window")
    if v2 and [type(x) for x in m.cpb_mlp] != [nn.Linear, nn.ReLU, nn.Linear] \
            or v2 and (m.cpb_mlp[0].out_features != 512 or m.cpb_mlp[2].bias is not None):
        raise Unmapped(cls, "a position-bias MLP other than Linear(2, 512), ReLU, "
                       "Linear(512, heads, bias=False)")
    return cls, {"window_size": one(list(m.window_size)), "shift_size": one(list(m.shift_size)),
                 "num_heads": m.num_heads, "qkv_bias": m.qkv.bias is not None,
                 "proj_bias": m.proj.bias is not None,
                 "attention_dropout": float(m.attention_dropout), "dropout": float(m.dropout)}


@imports_module(f"{_SWIN}.PatchMerging", f"{_SWIN}.PatchMergingV2",
                layers=("PatchMerging", "PatchMergingV2"), params=("eps",))
def _import_patch_merging(m):
    from torch import nn  # deferred: declaring converters needs no torch; they run with it

    cls = type(m).__name__
    width = (4 if cls == "PatchMerging" else 2) * m.dim  # V2 norms after the Linear
    n = m.norm
    if type(n) is not nn.LayerNorm or tuple(n.normalized_shape) != (width,) \
            or not n.elementwise_affine or n.bias is None \
            or type(m.reduction) is not nn.Linear or m.reduction.bias is not None:
        raise Unmapped(cls, "a norm layer other than nn.LayerNorm (with scale and shift), the "
                       "designer's PatchMerging uses")
    return cls, {"eps": n.eps}
