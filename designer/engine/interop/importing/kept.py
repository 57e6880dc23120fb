"""What the catalog has no layer for, kept as code: an fx node's call becomes a Function layer
(:mod:`designer.engine.model.catalog.code`) whose program is that call, with the values that only
feed it (sizes read off a tensor, the pieces of an ``unbind``) computed inside it; a buffer or a
parameter used whole becomes a Tensor layer under its own key."""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any

import torch
import torch.fx

from ...model.catalog.importers import Unmapped
from ...model.program import check_program, op_problem

FUNCTION, TENSOR = "Function", "Tensor"
# A non-persistent buffer up to this many values is kept in the design (its values written into
# the document); a larger one is saved in the weights file like a persistent one.
MAX_CONSTANT = 65_536


def dtype_kind(dtype: Any) -> str:
    """"float", "int" or "bool" for a torch dtype."""
    if dtype == torch.bool:
        return "bool"
    return "float" if dtype.is_floating_point or dtype.is_complex else "int"


def special(v: float) -> str:
    """A non-finite float as a program writes it: "nan", "inf" or "-inf"."""
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def fold(meta: Any, batch: int) -> int:
    """How many times the batch a value's first axis holds (a window attention's batch x
    windows), 1 when it is the batch or not a multiple of it."""
    shape = tuple(meta.shape)
    return shape[0] // batch if shape and shape[0] > batch and shape[0] % batch == 0 else 1


def layout(meta: Any, batch: int) -> str:
    """"batch" when a value's first axis is the batch, "one" when it is 1 (broadcast over the
    batch), else "whole"."""
    shape = tuple(meta.shape)
    if not shape:
        return "whole"
    if shape[0] == batch or fold(meta, batch) > 1:
        return "batch"
    return "one" if shape[0] == 1 else "whole"


def port(meta: Any, batch: int) -> dict[str, Any]:
    """A program port for a value: its layout, dtype and fold (when the batch is folded)."""
    out = {"layout": layout(meta, batch), "dtype": dtype_kind(meta.dtype)}
    if fold(meta, batch) > 1:
        out["fold"] = fold(meta, batch)
    return out


def design_shape(meta: Any, batch: int) -> list[int]:
    shape = [int(s) for s in meta.shape]
    return shape if layout(meta, batch) == "whole" else shape[1:]


def op_name(node: torch.fx.Node) -> str:
    """The program op of an fx node's call (Unmapped when it is none of the namespaces a
    program may call)."""
    t = node.target
    if node.op == "call_method":
        name = f"method.{t}"
    elif isinstance(t, torch._ops.OpOverload):
        if t.namespace != "aten":
            raise Unmapped(str(t), f"{t} is not an ATen op")
        name = f"aten.{t.overloadpacket.__name__}.{t._overloadname}"
    elif t is builtins.getattr:
        name = f"getattr.{node.args[1]}"
    elif getattr(operator, getattr(t, "__name__", ""), None) is t:
        name = f"operator.{t.__name__}"
    elif getattr(builtins, getattr(t, "__name__", ""), None) is t:
        name = f"builtin.{t.__name__}"
    elif getattr(torch.nn.functional, getattr(t, "__name__", ""), None) is t:
        name = f"F.{t.__name__}"
    elif getattr(torch, getattr(t, "__name__", ""), None) is t:
        name = f"torch.{t.__name__}"
    elif getattr(torch.Tensor, getattr(t, "__name__", ""), None) is t:
        name = f"method.{t.__name__}"
    else:
        where = getattr(t, "__module__", "") or ""
        raise Unmapped(getattr(t, "__name__", str(t)),
                       f"calls {where}.{getattr(t, '__name__', t)}, which is not a torch "
                       "function, tensor method, operator or ATen op")
    # a view of a tensor the design may not lay out as the model did (a dropped .contiguous()
    # between layers): reshape gives the same values, copying only when it must
    if not any(isinstance(a, torch.dtype) for a in node.args[1:]):  # view(dtype) reinterprets
        name = {"method.view": "method.reshape", "aten.view.default": "aten.reshape.default",
                "aten._unsafe_view.default": "aten.reshape.default"}.get(name, name)
    why = op_problem(name)
    if why:
        raise Unmapped(name, why)
    return name


class ProgramMaker:
    """Builds the program of one fx node: tensors made by layers become the program's inputs
    (``tensor_input(node) -> layer name`` or KeyError), values that are not tensors are computed
    inside it, step by step."""

    def __init__(self, batch: int, tensor_input) -> None:
        self.batch = batch
        self.tensor_input = tensor_input
        self.inputs: list[str] = []  # layer names, in port order
        self.ports: list[dict[str, str]] = []
        self.steps: list[dict[str, Any]] = []
        self.step_of: dict[str, int] = {}

    def make(self, node: torch.fx.Node, meta: Any) -> dict[str, Any]:
        self.step(node)
        program = {"inputs": self.ports, "steps": self.steps, "output": port(meta, self.batch)}
        return check_program(program)

    def step(self, node: torch.fx.Node) -> int:
        if node.name in self.step_of:
            return self.step_of[node.name]
        if node.op not in ("call_function", "call_method"):
            raise Unmapped(node.op, f"{node.target} is needed as a value inside a call")
        op = op_name(node)
        args = [node.args[0]] if op.startswith("getattr.") else list(node.args)
        step = {"op": op, "args": [self.value(a) for a in args],
                "kwargs": {k: self.value(v) for k, v in node.kwargs.items()
                           if not (k == "layout" and v == torch.strided)}}
        self.steps.append(step)
        self.step_of[node.name] = len(self.steps) - 1
        return len(self.steps) - 1

    def value(self, a: Any) -> Any:
        from torch.fx.passes.shape_prop import TensorMetadata  # deferred: torch is loaded here

        if isinstance(a, torch.fx.Node):
            meta = a.meta.get("tensor_meta")
            if isinstance(meta, TensorMetadata):
                name = self.tensor_input(a)  # KeyError: fed by something not mapped
                if name not in self.inputs:
                    self.inputs.append(name)
                    self.ports.append(port(meta, self.batch))
                return {"in": self.inputs.index(name)}
            if isinstance(meta, (list, tuple)) and meta and all(
                    isinstance(m, TensorMetadata) for m in meta) and a.op == "call_module":
                name = self.tensor_input(a)  # a block's several results, a tuple
                if name not in self.inputs:
                    self.inputs.append(name)
                    self.ports.append({"layout": "tuple", "dtype": dtype_kind(meta[0].dtype),
                                       "items": [{**port(m, self.batch),
                                                  "shape": design_shape(m, self.batch)}
                                                 for m in meta]})
                return {"in": self.inputs.index(name)}
            return {"step": self.step(a)}
        if isinstance(a, bool) or a is None or isinstance(a, (int, str)):
            return a
        if isinstance(a, float):
            return a if math.isfinite(a) else {"float": special(a)}
        if isinstance(a, torch.Size):
            return {"tuple": [int(s) for s in a]}
        if isinstance(a, tuple):
            return {"tuple": [self.value(x) for x in a]}
        if isinstance(a, list):
            return [self.value(x) for x in a]
        if isinstance(a, slice):
            return {"slice": [self.value(a.start), self.value(a.stop), self.value(a.step)]}
        if a is Ellipsis:
            return {"ellipsis": 1}
        if isinstance(a, torch.dtype):
            return {"dtype": str(a).rsplit(".", 1)[-1]}
        if isinstance(a, torch.device):
            return {"device": 1}
        if isinstance(a, torch.memory_format):
            return {"memory_format": str(a).rsplit(".", 1)[-1]}
        raise Unmapped(type(a).__name__, f"an argument of type {type(a).__name__} ({a!r:.60}) "
                       "that a program cannot hold")


def tensor_layer(tensor: torch.Tensor, kind: str) -> tuple[str, dict[str, Any]]:
    """A Tensor layer's (type, params) for a parameter ("parameter"), a persistent buffer
    ("buffer") or a non-persistent one ("constant": its values kept in the design when small,
    else saved as a buffer)."""
    dtype = str(tensor.dtype).rsplit(".", 1)[-1]
    shape = [int(s) for s in tensor.shape]
    scalar = not shape
    if scalar:  # a scalar: shape [1] in the design, no axes when built (Tensor's scalar)
        shape = [1]
        tensor = tensor.reshape(1)
    if dtype not in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool"):
        raise Unmapped("get_attr", f"a {dtype} tensor used in forward")
    params: dict[str, Any] = {"shape": shape, "stored": kind, "dtype": dtype,
                              **({"scalar": True} if scalar else {})}
    if kind == "constant":
        if tensor.numel() > MAX_CONSTANT:
            params["stored"] = "buffer"
        else:
            flat = tensor.detach().reshape(-1).cpu()
            values = flat.tolist() if dtype != "bfloat16" else flat.float().tolist()
            params["data"] = [v if not isinstance(v, float) or math.isfinite(v) else special(v)
                              for v in values]
            if dtype == "bool":
                params["data"] = [int(v) for v in params["data"]]
    return TENSOR, params


__all__ = ["FUNCTION", "MAX_CONSTANT", "TENSOR", "ProgramMaker", "design_shape", "dtype_kind",
           "layout", "op_name", "tensor_layer"]
