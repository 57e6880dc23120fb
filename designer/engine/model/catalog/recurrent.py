"""Embedding, recurrent and attention layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .schema import (
    MAX_DIM,
    CountParams,
    DataFit,
    LayerError,
    MemoryUse,
    Param,
    _infer_size,
    _kw,
    register,
)

if TYPE_CHECKING:
    import torch


def _recurrent_params(gates: int) -> CountParams:
    def count(kw: dict) -> int:
        h, dirs = kw["hidden_size"], 2 if kw["bidirectional"] else 1
        total = 0
        for layer in range(kw["num_layers"]):
            i = kw["input_size"] if layer == 0 else h * dirs
            total += dirs * gates * h * (i + h + 2)  # W_ih, W_hh, b_ih, b_hh
        return total

    return count


def _mha_params(e: int, bias: bool) -> int:
    return 4 * e * e + (4 * e if bias else 0)  # in_proj (Q, K, V) and out_proj


register(
    id="Embedding",
    display_name="Embedding",
    category="Recurrent & Attention",
    doc="Looks up a learned vector for each token id: (L) int64 -> (L, embedding_dim).",
    params=(
        Param("num_embeddings", "int", 1000, "Vocabulary size (token ids 0..n-1)", min=1,
              max=10_000_000),
        Param("embedding_dim", "int", 64, "Size of each vector", min=1, max=MAX_DIM),
        Param("padding_idx", "int", None, "Token id whose vector stays zero (empty: none)", min=0,
              max=10_000_000, optional=True),
    ),
    module_name="Embedding",
    resolve=lambda p, ins, dts: _resolve_embedding(p),
    count_params=lambda kw: kw["num_embeddings"] * kw["embedding_dim"],
    infer=lambda p, ins: (*ins[0], p["embedding_dim"]),
    macs=lambda p, ins, out: 0,
    input_dtype="int",
    output_dtype="float",
    key_params=("num_embeddings", "embedding_dim"),
    prefix="embed",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("other", vocabulary="num_embeddings"),
)


def _resolve_embedding(p):
    if p["padding_idx"] is not None and p["padding_idx"] >= p["num_embeddings"]:
        raise LayerError(
            f"Embedding: padding_idx {p['padding_idx']} must be below num_embeddings "
            f"{p['num_embeddings']}"
        )
    return _kw(p, "num_embeddings", "embedding_dim", "padding_idx")


def _recurrent(id_: str, module: str, doc: str, extra: tuple[Param, ...] = (), *,
               saved_gates: int):
    """A recurrent layer; ``saved_gates``: floats it keeps for backward per time step and
    direction, in units of hidden_size (:class:`MemoryUse`)."""

    def resolve(p, ins, dts):
        size = _infer_size(p, "input_size", ins[0][-1], "features per time step", id_)
        if p["dropout"] > 0 and p["num_layers"] == 1:
            raise LayerError(f"{id_}: dropout acts between stacked layers; set num_layers above 1 "
                             f"or dropout to 0")
        kw = {"input_size": size, "hidden_size": p["hidden_size"], "num_layers": p["num_layers"]}
        if "nonlinearity" in p:
            kw["nonlinearity"] = p["nonlinearity"]
        kw.update({"batch_first": True, "dropout": p["dropout"],
                   "bidirectional": p["bidirectional"]})
        return kw

    def out_size(p):
        return p["hidden_size"] * (2 if p["bidirectional"] else 1)

    def apply(m, xs, kw):
        seq, h = m(xs[0])
        if kw["_output"] == "sequence":
            return seq
        if isinstance(h, tuple):  # LSTM: (h_n, c_n)
            h = h[0]
        import torch  # deferred: torch loads only when this runs

        return torch.cat((h[-2], h[-1]), dim=1) if kw["bidirectional"] else h[-1]

    def code(c):
        x = c.inputs[0]
        if c.params["output"] == "sequence":
            return [f"{c.out}, _ = {c.attr}({x})"]
        h = "(h_n, _)" if id_ == "LSTM" else "h_n"
        last = ("torch.cat((h_n[-2], h_n[-1]), dim=1)" if c.kwargs["bidirectional"] else "h_n[-1]")
        return [f"_, {h} = {c.attr}({x})", f"{c.out} = {last}  # final hidden state"]

    def infer(p, ins):
        resolve(p, ins, [])
        if p["output"] == "sequence":
            return (*ins[0][:-1], out_size(p))
        return (out_size(p),)

    def macs(p, ins, out):
        gates = {"LSTM": 4, "GRU": 3}.get(id_, 1)
        h, steps, d = p["hidden_size"], ins[0][0], 2 if p["bidirectional"] else 1
        size = p["input_size"] or ins[0][-1]
        total = 0
        for layer in range(p["num_layers"]):
            i = size if layer == 0 else h * d
            total += gates * (i * h + h * h) * steps * d
        return total

    params = (
        Param("input_size", "int", None, "Features per time step (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("hidden_size", "int", 128, "Size of the hidden state", min=1, max=MAX_DIM),
        Param("num_layers", "int", 1, "Stacked recurrent layers", min=1, max=64),
        *extra,
        Param("bidirectional", "bool", False, "Also read the sequence backwards (doubles the output)"),
        Param("dropout", "float", 0.0, "Dropout between stacked layers", min=0, max=0.999),
        Param("output", "choice", "last", "Whole sequence (L, H), or the final hidden state (H)",
              choices=("last", "sequence")),
    )
    register(
        id=id_,
        display_name=id_,
        category="Recurrent & Attention",
        doc=doc,
        params=params,
        module_name=module,
        resolve=lambda p, ins, dts: {**resolve(p, ins, dts), "_output": p["output"]},
        count_params=_recurrent_params({"LSTM": 4, "GRU": 3}.get(id_, 1)),
        apply=apply,
        code=code,
        infer=infer,
        macs=macs,
        input_rank=(2,),
        rank_words="(sequence length, features)",
        key_params=("hidden_size", "num_layers", "output"),
        prefix=id_.lower(),
        memory=MemoryUse("input", extra="recurrent", gates=saved_gates),
        inside="recurrent",
        data_fit=DataFit("hidden_size"),
    )


_recurrent("RNN", "RNN", "Elman RNN over (L, features): h_t = tanh(W_ih x_t + W_hh h_(t-1) + b).",
           (Param("nonlinearity", "choice", "tanh", "Activation of the hidden state",
                  choices=("tanh", "relu")),), saved_gates=2)
_recurrent("LSTM", "LSTM", "Long short-term memory over (L, features), with input/forget/output gates and a cell state.",
           saved_gates=20)
_recurrent("GRU", "GRU", "Gated recurrent unit over (L, features), with reset and update gates.",
           saved_gates=9)


def _resolve_mha(p, ins, dts):
    e = _infer_size(p, "embed_dim", ins[0][-1], "features per position", "MultiheadAttention")
    if e % p["num_heads"]:
        raise LayerError(
            f"MultiheadAttention: embed_dim {e} is not divisible by num_heads {p['num_heads']}: "
            f"pick a head count that divides {e}"
        )
    return {"embed_dim": e, "num_heads": p["num_heads"], "dropout": p["dropout"],
            "bias": p["bias"], "batch_first": True, "_causal": p["causal"]}


_CAUSAL = Param("causal", "bool", False,
                "Each position attends only to itself and earlier ones (decoder-only language models)")


def _causal_mask(x: torch.Tensor) -> torch.Tensor:
    """The additive causal mask for a batch-first (N, L, E) input: -inf above the diagonal, so
    position t attends to positions 0..t only. Exported code writes the same expression
    (:func:`_causal_mask_code`)."""
    from torch import nn  # deferred: torch loads only when this runs

    return nn.Transformer.generate_square_subsequent_mask(x.size(1), device=x.device, dtype=x.dtype)


def _causal_mask_code(x: str) -> list[str]:
    return ["nn.Transformer.generate_square_subsequent_mask(",
            f"    {x}.size(1), device={x}.device, dtype={x}.dtype)"]


def _mha_apply(m, xs, kw):
    x = xs[0]
    if kw.get("_causal"):
        return m(x, x, x, attn_mask=_causal_mask(x), need_weights=False)[0]
    return m(x, x, x, need_weights=False)[0]


def _mha_code(c):
    x = c.inputs[0]
    if c.kwargs.get("_causal"):
        first, last = _causal_mask_code(x)
        return [f"{c.out}, _ = {c.attr}(",
                f"    {x}, {x}, {x}, need_weights=False,",
                f"    attn_mask={first}",
                f"    {last})"]
    return [f"{c.out}, _ = {c.attr}({x}, {x}, {x}, need_weights=False)"]


def _attention_macs(e: int, steps: int) -> int:
    return 4 * e * e * steps + 2 * steps * steps * e


register(
    id="MultiheadAttention",
    display_name="MultiheadAttention",
    category="Recurrent & Attention",
    doc="Self-attention over (L, E): softmax(QK^T / sqrt(d)) V with num_heads heads; Q, K, V from the same input.",
    params=(
        Param("embed_dim", "int", None, "Features per position (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("num_heads", "int", 4, "Parallel attention heads (must divide embed_dim)", min=1,
              max=1024),
        Param("dropout", "float", 0.0, "Dropout on the attention weights", min=0, max=0.999),
        Param("bias", "bool", True, "Learn biases in the projections"),
        _CAUSAL,
    ),
    module_name="MultiheadAttention",
    resolve=_resolve_mha,
    count_params=lambda kw: _mha_params(kw["embed_dim"], kw["bias"]),
    apply=_mha_apply,
    code=_mha_code,
    infer=lambda p, ins: (_resolve_mha(p, ins, []), ins[0])[1],
    macs=lambda p, ins, out: _attention_macs(ins[0][-1], ins[0][0]),
    input_rank=(2,),
    rank_words="(sequence length, features)",
    key_params=("num_heads",),
    prefix="attn",
    memory=MemoryUse("input", extra="attention"),
    inside="attention",
    data_fit=DataFit("other"),
)


def _resolve_tel(p, ins, dts):
    e = _infer_size(p, "d_model", ins[0][-1], "features per position", "TransformerEncoderLayer")
    if e % p["nhead"]:
        raise LayerError(
            f"TransformerEncoderLayer: d_model {e} is not divisible by nhead {p['nhead']}: "
            f"pick a head count that divides {e}"
        )
    return {"d_model": e, "nhead": p["nhead"], "dim_feedforward": p["dim_feedforward"],
            "dropout": p["dropout"], "activation": p["activation"],
            "layer_norm_eps": p["layer_norm_eps"], "batch_first": True,
            "norm_first": p["norm_first"], "_causal": p["causal"]}


def _tel_apply(m, xs, kw):
    if kw.get("_causal"):
        return m(xs[0], src_mask=_causal_mask(xs[0]))
    return m(xs[0])


def _tel_code(c):
    x = c.inputs[0]
    if c.kwargs.get("_causal"):
        first, last = _causal_mask_code(x)
        return [f"{c.out} = {c.attr}(", f"    {x}, src_mask={first}", f"    {last})"]
    return [f"{c.out} = {c.attr}({x})"]


register(
    id="TransformerEncoderLayer",
    display_name="TransformerEncoderLayer",
    category="Recurrent & Attention",
    doc="Self-attention plus a feed-forward block, each with a residual connection and LayerNorm, over (L, E).",
    params=(
        Param("d_model", "int", None, "Features per position (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("nhead", "int", 4, "Attention heads (must divide d_model)", min=1, max=1024),
        Param("dim_feedforward", "int", 256, "Hidden size of the feed-forward block", min=1,
              max=MAX_DIM),
        Param("dropout", "float", 0.1, "Dropout probability", min=0, max=0.999),
        Param("activation", "choice", "relu", "Feed-forward activation", choices=("relu", "gelu")),
        Param("norm_first", "bool", False, "LayerNorm before each block (pre-norm)"),
        Param("layer_norm_eps", "float", 1e-5, "Added to the variance in both LayerNorms",
              min=1e-12, max=1),
        _CAUSAL,
    ),
    module_name="TransformerEncoderLayer",
    resolve=_resolve_tel,
    apply=_tel_apply,
    code=_tel_code,
    # attention, two feed-forward Linears, two LayerNorms
    count_params=lambda kw: (_mha_params(kw["d_model"], True)
                             + 2 * kw["d_model"] * kw["dim_feedforward"] + kw["dim_feedforward"]
                             + kw["d_model"] + 4 * kw["d_model"]),
    infer=lambda p, ins: (_resolve_tel(p, ins, []), ins[0])[1],
    macs=lambda p, ins, out: _attention_macs(ins[0][-1], ins[0][0])
    + 2 * ins[0][-1] * p["dim_feedforward"] * ins[0][0],
    input_rank=(2,),
    rank_words="(sequence length, features)",
    key_params=("nhead", "dim_feedforward"),
    prefix="encoder",
    memory=MemoryUse("input", extra="transformer"),
    inside="attention",
    data_fit=DataFit("other"),
)


# --------------------------------------------------------------------------------------------
# Import: the torch modules that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import Unmapped, imports_exported, imports_module, imports_weighted_op, is_tensor


@imports_module("torch.nn.MultiheadAttention", layers=("MultiheadAttention",),
                params=("num_heads", "dropout", "bias"), attention=True)
def _import_mha(m):
    if not m.batch_first or not m._qkv_same_embed_dim or m.bias_k is not None \
            or m.add_zero_attn:
        raise Unmapped("MultiheadAttention", "not batch_first, separate key/value sizes, "
                       "bias_k or add_zero_attn")
    return "MultiheadAttention", {"num_heads": m.num_heads, "dropout": m.dropout,
                                  "bias": m.in_proj_bias is not None}


_MHA_STATE = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}


@imports_exported("torch.nn.modules.activation.MultiheadAttention",
                  layers=("MultiheadAttention",), params=("num_heads", "dropout", "bias"),
                  attention=True)
def _import_exported_mha(g, rank):  # export decomposed it: one scaled_dot_product_attention
    ops, own, phs = g.ops, g.own, g.placeholders
    sdpa = [n for n, name in zip(ops, g.names) if name == "scaled_dot_product_attention"]
    w = own.get("in_proj_weight")
    first = ops[0] if ops else None
    # batch_first: the input is transposed to (L, N, E) first and the output back at the end
    batch_first = len(phs) == 1 and first is not None and g.names[0] == "transpose" \
        and first.args[0] is phs[0] and sorted(first.args[1:3]) == [0, 1]
    if len(sdpa) != 1 or w is None or set(own) - _MHA_STATE or w.shape[0] != 3 * w.shape[1] \
            or ("in_proj_bias" in own) != ("out_proj.bias" in own) or not batch_first \
            or any(a is not None for a in sdpa[0].args[3:4]) or sdpa[0].kwargs.get("attn_mask") \
            is not None or sdpa[0].kwargs.get("is_causal", False) or len(phs) != 1:
        raise Unmapped("MultiheadAttention", "not batch_first self-attention without a mask, "
                       "separate key/value sizes, bias_k or add_zero_attn")
    dropout = sdpa[0].args[4] if len(sdpa[0].args) > 4 else sdpa[0].kwargs.get("dropout_p", 0.0)
    return "MultiheadAttention", {"num_heads": int(sdpa[0].args[0].meta["val"].shape[1]),
                                  "dropout": float(dropout), "bias": "in_proj_bias" in own}


_EMBEDDING_PARAMS = ("num_embeddings", "embedding_dim", "padding_idx")


@imports_module("torch.nn.Embedding", layers=("Embedding",), params=_EMBEDDING_PARAMS)
def _import_embedding(m):
    if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
        raise Unmapped("Embedding", "max_norm, scale_grad_by_freq or sparse gradients")
    return "Embedding", {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
                         "padding_idx": m.padding_idx}


@imports_weighted_op("embedding", layers=("Embedding",), params=_EMBEDDING_PARAMS)
def _import_embedding_op(op, args, rank):  # aten.embedding(weight, ids, padding_idx, ...)
    weight = args[0]
    padding = args[1] if len(args) > 1 else -1
    if not is_tensor(weight) or weight.dim() != 2 or any(a for a in args[2:]):
        return None
    return "Embedding", {"num_embeddings": int(weight.shape[0]),
                         "embedding_dim": int(weight.shape[1]),
                         "padding_idx": None if padding is None or padding < 0 else int(padding)}
