"""Code: what an imported model does that the catalog has no layer for, kept faithfully.

* **Function**: a short program of torch calls (a function, a tensor method, an operator or an
  ATen op with its constant arguments; :mod:`designer.engine.model.program`), drawn, checked
  (its shape by running it on meta tensors), built and exported as those calls.
* **Tensor**: a tensor the model keeps and uses as it is (a buffer such as a position table or
  rotary frequencies, a parameter used other than per sample), registered on the network under
  its own name, so its state_dict key is the model's.
"""

from __future__ import annotations

import math

from ..program import LAYOUTS, infer_program, program_code, program_summary, run_program
from .schema import DataFit, LayerError, MemoryUse, Param, register

_DTYPE_OF = {"float": "float", "int": "int", "bool": "int"}  # a design's dtypes: float or int


def _resolve_function(p, ins, dts):
    program = p["program"]
    if len(ins) != len(program["inputs"]):
        raise LayerError(f"Function takes {len(program['inputs'])} input(s), as its code uses "
                         f"them, but {len(ins)} are connected")
    return {"program": program}


def _infer_function(p, ins):
    try:
        return infer_program(p["program"], [tuple(s) for s in ins])
    except LayerError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise LayerError(f"Function ({program_summary(p['program'])}) cannot run on inputs "
                         f"{', '.join(str(list(s)) for s in ins)}: {first}") from None


register(
    id="Function",
    display_name="Function (code)",
    category="Code",
    doc="Torch calls kept as code (an op of an imported model no layer stands for): each step "
    "calls a torch function, a tensor method, an operator or an ATen op; the last is the output.",
    params=(
        Param("program", "program",
              {"inputs": [{"layout": "batch", "dtype": "float"}],
               "steps": [{"op": "method.clone", "args": [{"in": 0}], "kwargs": {}}],
               "output": {"layout": "batch", "dtype": "float"}},
              "The calls, as data: inputs (layout, dtype), steps (op, args, kwargs), output"),
    ),
    variadic=True,
    min_inputs=1,
    input_dtype="any",
    resolve=_resolve_function,
    infer=_infer_function,
    apply=lambda m, xs, kw: run_program(kw["program"], xs),
    code=lambda c: program_code(c.params["program"], c.inputs, c.out),
    macs=lambda p, ins, out: 0,
    key_params=("program",),
    prefix="fn",
    memory=MemoryUse("both"),
    inside="layer",
    data_fit=DataFit("other"),
    output_dtype_of=lambda p: _DTYPE_OF[p["program"]["output"]["dtype"]],
    batched_of=lambda p: p["program"]["output"]["layout"] != "whole",
)


_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool")


def _resolve_tensor(p, ins, dts):
    if p["stored"] == "constant" and p["data"] and len(p["data"]) != math.prod(p["shape"]):
        raise LayerError(f"Tensor holds {len(p['data'])} values but its shape "
                         f"{list(p['shape'])} has {math.prod(p['shape'])}")
    if p["stored"] == "parameter" and not p["dtype"].startswith(("float", "bfloat")):
        raise LayerError("Tensor: a learnable parameter is a floating-point tensor: set dtype "
                         "to float32, or stored to buffer")
    if p["batch_axis"] and (len(p["shape"]) < 2 or p["shape"][0] != 1):
        raise LayerError(f"Tensor: batch_axis needs a shape starting with 1 and at least 2 axes, "
                         f"not {list(p['shape'])}")
    if p["scalar"] and list(p["shape"]) != [1]:
        raise LayerError("Tensor: a scalar has shape [1]")
    return {"shape": () if p["scalar"] else tuple(p["shape"]), "stored": p["stored"],
            "dtype": p["dtype"], "data": list(p["data"])}


register(
    id="Tensor",
    display_name="Tensor",
    category="Code",
    doc="A tensor the network keeps and uses as it is, with no batch axis (a buffer such as a "
    "position table, a parameter used whole): key <name> in the state_dict, as in the model.",
    params=(
        Param("shape", "shape", [16], "The whole tensor's shape"),
        Param("stored", "choice", "buffer", "parameter: learnable; buffer: saved in the "
              "state_dict, not learned; constant: not saved (values in the design)",
              choices=("parameter", "buffer", "constant")),
        Param("dtype", "choice", "float32", "The tensor's dtype", choices=_DTYPES),
        Param("data", "numbers", [], "A constant's values, flat (empty: zeros)",
              saved_if_set=True),
        Param("scalar", "bool", False, "A tensor with no axes (shape [1] here): a BatchNorm's "
              "num_batches_tracked", saved_if_set=True),
        Param("batch_axis", "bool", False, "Its first axis is 1 and stands for the batch "
              "(broadcast over it, as a (1, L) position table is): its shape in the design is "
              "one sample's", saved_if_set=True),
    ),
    num_inputs=0,
    module_name="stored_tensor",
    bare_parameter=True,
    resolve=_resolve_tensor,
    apply=lambda m, xs, kw: m,
    code=lambda c: [f"{c.out} = {c.attr}"],
    count_params=lambda kw: math.prod(kw["shape"]) if kw["stored"] == "parameter" else 0,
    infer=lambda p, ins: tuple(p["shape"][1:] if p["batch_axis"] else p["shape"]),
    # (a scalar is drawn and checked as shape [1]; built and exported with no axes)
    macs=lambda p, ins, out: 0,
    key_params=("shape", "stored"),
    prefix="tensor",
    memory=MemoryUse("nothing", output="weight"),
    inside="layer",
    data_fit=DataFit("other"),
    output_dtype_of=lambda p: "float" if p["dtype"].startswith(("float", "bfloat")) else "int",
    stored_code=lambda kw, attr: _tensor_init_code(kw, attr),
    batched_of=lambda p: False,
)


def _tensor_init_code(kw, attr: str) -> str:
    """The __init__ statement that registers a Tensor layer's tensor under ``attr`` (a literal)."""
    from ..pysource import literal  # deferred: pysource loads torch (the helper modules)

    shape = tuple(kw["shape"])
    dtype = f"torch.{kw['dtype']}"
    if kw["stored"] == "constant" and kw["data"]:
        values = [float(v) if isinstance(v, str) else v for v in kw["data"]]
        text = ", ".join(f"float({str(v)!r})" if isinstance(v, float) and not math.isfinite(v)
                         else literal(v) for v in values)
        made = f"torch.tensor([{text}], dtype={dtype}).reshape({literal(shape)})"
    else:
        made = f"torch.zeros({literal(shape)}, dtype={dtype})"
    if kw["stored"] == "parameter":
        return f"self.register_parameter({attr}, nn.Parameter({made}))"
    persistent = "" if kw["stored"] == "buffer" else ", persistent=False"
    return f"self.register_buffer({attr}, {made}{persistent})"


__all__ = ["LAYOUTS"]
