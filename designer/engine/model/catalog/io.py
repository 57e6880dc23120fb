"""Input / Output: the model's inputs and outputs."""

from __future__ import annotations

from .schema import DataFit, MemoryUse, Param, register

register(
    id="Input",
    display_name="Input",
    category="Input / Output",
    doc="A model input: one sample's shape without the batch dimension; float, or int64 token ids.",
    params=(
        Param("shape", "shape", [1, 28, 28], "Shape of one sample, without the batch dimension"),
        Param("dtype", "choice", "float32", "float32 for data, int64 for token ids (Embedding), "
              "bool for masks", choices=("float32", "int64", "bool")),
    ),
    num_inputs=0,
    infer=lambda p, ins: tuple(p["shape"]),
    key_params=("shape",),
    prefix="input",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="Output",
    display_name="Output",
    category="Input / Output",
    doc="A model output: forward() returns what arrives here. With aux_weight > 0 an auxiliary "
    "output (GoogLeNet's side heads): in training only, after the others; loss += w * its loss.",
    params=(
        Param("aux_weight", "float", 0.0, "0: a main output. Above 0: an auxiliary output, "
              "returned in training only; its loss counts this much (GoogLeNet: 0.3)",
              min=0.0, max=100.0, saved_if_set=True),
    ),
    key_params=("aux_weight",),
    num_inputs=1,
    has_output=False,
    input_dtype="any",
    apply=lambda m, xs, kw: xs[0],
    code=lambda ctx: [f"{ctx.out} = {ctx.inputs[0]}"],
    infer=lambda p, ins: ins[0],
    prefix="output",
    memory=MemoryUse("nothing", output="view"),
    inside="layer",
    data_fit=DataFit("input"),
)

