"""Programs: the code a Function layer keeps (an imported op the catalog has no layer for).

A program is plain JSON, never Python source: a list of **steps**, each one call of a torch
function, a ``torch.nn.functional`` function, a tensor method, an operator or an ATen op, with its
arguments. The last step's result is the layer's output. Nothing in a program is evaluated as
code: an op is a name looked up in one of a few namespaces (:data:`NAMESPACES`), refused when it
reads or writes files, changes global state or reaches private machinery (:func:`op_problem`)::

    {"inputs": [{"layout": "batch", "dtype": "float"}],
     "steps": [{"op": "torch.flatten", "args": [{"in": 0}, 2]},
               {"op": "method.transpose", "args": [{"step": 0}, 1, 2]}],
     "output": {"layout": "batch", "dtype": "float"}}

Arguments are JSON values: numbers, true/false, null, texts and lists as themselves, and
``{"in": i}`` (the layer's input i), ``{"step": j}`` (an earlier step's result), ``{"tuple":
[...]}``, ``{"slice": [start, stop, step]}``, ``{"ellipsis": 1}``, ``{"dtype": "float32"}``,
``{"device": 1}`` (the device of the layer's first input), ``{"float": "inf"}`` (also "-inf",
"nan"), ``{"memory_format": "contiguous_format"}``.

Each input has a **layout**: "batch" (the batch axis first: the shape a design shows is one
sample's), "one" (a first axis of 1 that broadcasts over the batch, as a (1, L) table of
positions: the shape shown is without it), "whole" (a tensor without a batch axis: its shape is
the whole tensor's) or "tuple" (a block's several results, with the shape of each item). The
output has one too. Sizes the model computed from its input (``x.size(0)``)
are steps of the program, so a program runs at any batch size.

This module loads torch only to run or check a program on tensors (:func:`run_program`,
:func:`infer_program`); validating one (:func:`check_program`) and writing it as Python
(:func:`program_code`) need none.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

#: Where an op's name is looked up: "torch.NAME", "F.NAME" (torch.nn.functional), "method.NAME"
#: (a method of the first argument), "operator.NAME", "aten.NAME.OVERLOAD" (torch.ops.aten),
#: "getattr.NAME" (an attribute of a tensor: shape, dtype ...), "builtin.NAME" (int, float ...).
NAMESPACES = ("torch", "F", "method", "operator", "aten", "getattr", "builtin")
LAYOUTS = ("batch", "one", "whole", "tuple")
DTYPES = ("float", "int", "bool")
MAX_STEPS = 512
MAX_DEPTH = 8
MAX_ITEMS = 256  # entries of one list or tuple argument
# Names no program may call: files, global state, hooks, storage, autograd and process plumbing.
_DENIED = re.compile(r"load|save|file|set_|seed|rng|hub|compile|export|jit|print|storage|numpy|"
                     r"tolist|pin_memory|share_memory|register|backward|retain_grad|data_ptr|"
                     r"record_stream|resize|apply_|map_|dlpack|pickle|grad_enabled|deterministic|"
                     r"num_threads|default|warn|profil|library|classes|distributed|autograd")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,80}$")
_DUNDER = re.compile(r"^__(r?(add|sub|mul|truediv|floordiv|pow|matmul|mod|and|or|xor|lshift|"
                     r"rshift)|neg|invert|abs|pos)__$")
_TENSOR_ATTRS = ("shape", "dtype", "device", "ndim", "T", "mT", "H", "mH", "real", "imag",
                 "is_cuda")
_BUILTINS = ("int", "float", "bool", "len", "min", "max", "abs", "round")
_OPERATORS = {  # name -> (infix symbol, arity) for code; None: written as a call
    "add": ("+", 2), "sub": ("-", 2), "mul": ("*", 2), "truediv": ("/", 2),
    "floordiv": ("//", 2), "mod": ("%", 2), "pow": ("**", 2), "matmul": ("@", 2),
    "and_": ("&", 2), "or_": ("|", 2), "xor": ("^", 2), "lshift": ("<<", 2),
    "rshift": (">>", 2), "eq": ("==", 2), "ne": ("!=", 2), "lt": ("<", 2), "le": ("<=", 2),
    "gt": (">", 2), "ge": (">=", 2), "neg": ("-", 1), "pos": ("+", 1), "invert": ("~", 1),
    "not_": ("not ", 1), "getitem": (None, 2),
}
# In-place operators run as their plain form: the result is the same tensor value, and a design's
# layers never write into a tensor another layer holds.
_INPLACE = {"iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "truediv",
            "ifloordiv": "floordiv", "imod": "mod", "ipow": "pow", "imatmul": "matmul",
            "iand": "and_", "ior": "or_", "ixor": "xor"}
_DTYPE_NAMES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                "uint8", "bool", "complex64", "complex128")
_MEMORY_FORMATS = ("contiguous_format", "channels_last", "preserve_format", "channels_last_3d")


class ProgramError(ValueError):
    """A program that cannot be used: the message says which step and why."""


# --------------------------------------------------------------------------------------------
# checking (no torch)
# --------------------------------------------------------------------------------------------


def op_problem(op: Any) -> str | None:
    """Why ``op`` cannot be a step's op (None: it can). Only the name is checked here; whether
    torch has it is checked when the program runs."""
    if not isinstance(op, str) or "." not in op or len(op) > 120:
        return f"an op is written namespace.name ({', '.join(NAMESPACES)}), got {op!r}"
    space, _, name = op.partition(".")
    if space not in NAMESPACES:
        return f"{op!r}: the namespace must be one of {', '.join(NAMESPACES)}"
    if space == "aten":
        parts = name.split(".")
        if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
            return f"{op!r}: an ATen op is written aten.NAME.OVERLOAD"
        base = parts[0]
    else:
        if not _IDENT.match(name):
            return f"{op!r}: {name!r} is not a plain name"
        base = name
    if space == "getattr":
        return None if name in _TENSOR_ATTRS else (
            f"{op!r}: a program reads only these tensor attributes: {', '.join(_TENSOR_ATTRS)}")
    if space == "builtin":
        return None if name in _BUILTINS else (
            f"{op!r}: a program calls only these builtins: {', '.join(_BUILTINS)}")
    if space == "operator":
        return None if name in _OPERATORS or name in _INPLACE else (
            f"{op!r}: not an arithmetic, comparison or indexing operator")
    if space == "method" and _DUNDER.match(name):
        return None
    if base.startswith("_") and space != "aten":
        return f"{op!r}: private names cannot be called"
    if _DENIED.search(base.lower()):
        return f"{op!r}: a program cannot call ops that touch files, global state or hooks"
    return None


def check_program(value: Any) -> dict[str, Any]:
    """``value`` as a program (a copy, lists normalised), or ProgramError saying what is wrong."""
    if not isinstance(value, dict) or set(value) - {"inputs", "steps", "output"}:
        raise ProgramError("a program is an object with inputs, steps and output")
    inputs = value.get("inputs", [])
    if not isinstance(inputs, list) or len(inputs) > 64:
        raise ProgramError("inputs: a list of at most 64 {layout, dtype} objects")
    ins = [_check_port(p, f"inputs[{i}]") for i, p in enumerate(inputs)]
    steps = value.get("steps")
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        raise ProgramError(f"steps: a list of 1 to {MAX_STEPS} calls")
    out_steps = []
    for j, step in enumerate(steps):
        where = f"step {j + 1}"
        if not isinstance(step, dict) or "op" not in step or set(step) - {"op", "args", "kwargs"}:
            raise ProgramError(f"{where}: a step is an object with op, args and kwargs")
        why = op_problem(step["op"])
        if why:
            raise ProgramError(f"{where}: {why}")
        args = step.get("args", [])
        kwargs = step.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ProgramError(f"{where}: args is a list and kwargs an object")
        for k in kwargs:
            if not isinstance(k, str) or not _IDENT.match(k) or k.startswith("_"):
                raise ProgramError(f"{where}: the keyword {k!r} is not a plain name")
        out_steps.append({"op": step["op"],
                          "args": [_check_value(a, where, len(ins), j, 0) for a in args],
                          "kwargs": {k: _check_value(v, where, len(ins), j, 0)
                                     for k, v in kwargs.items()}})
    output = _check_port(value.get("output", {"layout": "batch", "dtype": "float"}), "output")
    return {"inputs": ins, "steps": out_steps, "output": output}


def _check_port(p: Any, where: str, items: bool = True) -> dict[str, Any]:
    """A port: its layout and dtype; a "tuple" port (a block's several results) also lists its
    items, each a layout, a dtype and its (design) shape."""
    if not isinstance(p, dict) or set(p) - {"layout", "dtype", "items", "shape", "fold"}:
        raise ProgramError(f"{where}: an object with layout and dtype")
    layout, dtype = p.get("layout", "batch"), p.get("dtype", "float")
    if layout not in LAYOUTS or dtype not in DTYPES or layout == "tuple" and not items:
        raise ProgramError(f"{where}: layout is one of {LAYOUTS}, dtype one of {DTYPES}")
    out: dict[str, Any] = {"layout": layout, "dtype": dtype}
    if "fold" in p:  # the first axis holds the batch this many times (batch x windows)
        k = p["fold"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1 << 16 \
                or layout != "batch":
            raise ProgramError(f"{where}: fold is a count from 1, for a batch layout")
        out["fold"] = k
    if "shape" in p:
        shape = p["shape"]
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1 << 24
                for v in shape):
            raise ProgramError(f"{where}: shape is a list of at most 8 sizes")
        out["shape"] = list(shape)
    if layout == "tuple":
        parts = p.get("items")
        if not isinstance(parts, list) or not parts or len(parts) > 64:
            raise ProgramError(f"{where}: a tuple port lists its items")
        out["items"] = [_check_port(q, f"{where}.items[{i}]", items=False)
                        for i, q in enumerate(parts)]
        if any("shape" not in q for q in out["items"]):
            raise ProgramError(f"{where}: each item of a tuple port has a shape")
    return out


def _check_value(v: Any, where: str, n_in: int, step: int, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ProgramError(f"{where}: arguments nest too deeply")
    if v is None or isinstance(v, (bool, int, str)):
        if isinstance(v, str) and len(v) > 200:
            raise ProgramError(f"{where}: a text argument is too long")
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ProgramError(f"{where}: write infinities and NaN as {{'float': 'inf'}}")
        return v
    if isinstance(v, list):
        if len(v) > MAX_ITEMS:
            raise ProgramError(f"{where}: a list of more than {MAX_ITEMS} values")
        return [_check_value(x, where, n_in, step, depth + 1) for x in v]
    if not isinstance(v, dict) or len(v) != 1:
        raise ProgramError(f"{where}: {v!r} is not a value a program can hold")
    (key, x), = v.items()
    if key == "in":
        if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < n_in:
            raise ProgramError(f"{where}: input {x!r} does not exist (the layer has {n_in})")
    elif key == "step":
        if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < step:
            raise ProgramError(f"{where}: refers to step {x!r}, which is not an earlier step")
    elif key in ("tuple", "slice"):
        if not isinstance(x, list) or len(x) > MAX_ITEMS or key == "slice" and len(x) != 3:
            raise ProgramError(f"{where}: {key} holds a list" + (" of 3" if key == "slice" else ""))
        return {key: [_check_value(a, where, n_in, step, depth + 1) for a in x]}
    elif key == "ellipsis" or key == "device":
        x = 1
    elif key == "dtype":
        if x not in _DTYPE_NAMES:
            raise ProgramError(f"{where}: dtype is one of {', '.join(_DTYPE_NAMES)}")
    elif key == "float":
        if x not in ("inf", "-inf", "nan"):
            raise ProgramError(f"{where}: float is 'inf', '-inf' or 'nan'")
    elif key == "memory_format":
        if x not in _MEMORY_FORMATS:
            raise ProgramError(f"{where}: memory_format is one of {', '.join(_MEMORY_FORMATS)}")
    else:
        raise ProgramError(f"{where}: {key!r} is not a kind of value a program holds")
    return {key: x}


# --------------------------------------------------------------------------------------------
# running (torch)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def resolve_op(op: str) -> Any:
    """The callable of an op name (ProgramError when torch has no such op)."""
    import operator

    import torch  # deferred: torch loads only when a program runs

    why = op_problem(op)
    if why:
        raise ProgramError(why)
    space, _, name = op.partition(".")
    if space == "getattr":
        return lambda t: getattr(t, name)
    if space == "operator":
        return getattr(operator, _INPLACE.get(name, name))
    if space == "builtin":
        return {"int": int, "float": float, "bool": bool, "len": len, "min": min, "max": max,
                "abs": abs, "round": round}[name]
    if space == "method":
        if not callable(getattr(torch.Tensor, name, None)):
            raise ProgramError(f"{op!r}: tensors have no method {name!r}")

        def method(t, *args, **kwargs):
            return getattr(t, name)(*args, **kwargs)

        return method
    if space == "aten":
        base, overload = name.split(".")
        try:
            return getattr(getattr(torch.ops.aten, base), overload)
        except (AttributeError, RuntimeError):
            raise ProgramError(f"{op!r}: torch has no such ATen op") from None
    owner = torch if space == "torch" else torch.nn.functional
    fn = getattr(owner, name, None)
    if fn is None or not callable(fn) or isinstance(fn, type):
        raise ProgramError(f"{op!r}: {'torch' if space == 'torch' else 'F'} has no function "
                           f"{name!r}")
    return fn


def _value(v: Any, xs: list, results: list, device: Any) -> Any:
    import torch  # deferred: torch loads only when a program runs

    if isinstance(v, list):
        return [_value(a, xs, results, device) for a in v]
    if not isinstance(v, dict):
        return v
    (key, x), = v.items()
    if key == "in":
        return xs[x]
    if key == "step":
        return results[x]
    if key == "tuple":
        return tuple(_value(a, xs, results, device) for a in x)
    if key == "slice":
        return slice(*(_value(a, xs, results, device) for a in x))
    if key == "ellipsis":
        return Ellipsis
    if key == "dtype":
        return getattr(torch, x)
    if key == "device":
        return device
    if key == "float":
        return float(x)
    return getattr(torch, x)  # memory_format


def run_program(program: dict[str, Any], xs: list) -> Any:
    """Run a (checked) program on its inputs ``xs``; the last step's result."""
    device = next((x.device for x in xs if hasattr(x, "device")),
                  next((x[0].device for x in xs if isinstance(x, tuple) and x
                        and hasattr(x[0], "device")), None))
    results: list[Any] = []
    for step in program["steps"]:
        fn = resolve_op(step["op"])
        args = [_value(a, xs, results, device) for a in step["args"]]
        kwargs = {k: _value(v, xs, results, device) for k, v in step["kwargs"].items()}
        results.append(fn(*args, **kwargs))
    return results[-1]


def example_inputs(program: dict[str, Any], shapes: list[tuple[int, ...]], batch: int,
                   device: str = "meta") -> list:
    """Tensors for a program's inputs of these (design) shapes: a batch axis in front of "batch"
    inputs, zeros (meta tensors hold none) of each input's dtype."""
    import torch  # deferred: torch loads only when a program runs

    dtypes = {"float": torch.float32, "int": torch.long, "bool": torch.bool}

    def make(port: dict[str, Any], shape: Any) -> Any:
        if port["layout"] == "tuple":  # a block's several results: the shapes it had
            return tuple(make(q, q["shape"]) for q in port["items"])
        lead = {"batch": (batch * port.get("fold", 1),), "one": (1,)}.get(port["layout"], ())
        return torch.zeros((*lead, *shape), dtype=dtypes[port["dtype"]], device=device)

    return [make(port, shape) for port, shape in zip(program["inputs"], shapes)]


def infer_program(program: dict[str, Any], shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The output's design shape (one sample's for a "batch" output, else the whole tensor's),
    by running the program on meta tensors of the input shapes (batch 2); an op that needs values
    (``nonzero``) runs on small zero tensors instead."""
    import torch  # deferred: torch loads only when a program runs

    if len(shapes) != len(program["inputs"]):
        raise ProgramError(f"its code takes {len(program['inputs'])} input(s), "
                           f"{len(shapes)} connected")
    with torch.no_grad():
        try:
            y = run_program(program, example_inputs(program, shapes, 2))
        except NotImplementedError:
            if sum(math.prod(s) for s in shapes) > 1 << 22:
                raise
            y = run_program(program, example_inputs(program, shapes, 2, device="cpu"))
    if not isinstance(y, torch.Tensor):
        raise ProgramError(f"its code returns a {type(y).__name__}, not a tensor")
    out = program["output"]
    if out["layout"] in ("batch", "one"):
        if y.dim() == 0:
            raise ProgramError("its code returns a number per batch, not a tensor per sample")
        lead = 2 * out.get("fold", 1) if out["layout"] == "batch" else 1
        if y.shape[0] != lead:  # sizes fixed for another input (a view to (-1, 16))
            raise ProgramError(f"its code gives a first axis of {y.shape[0]} where the batch "
                               f"{'' if lead == 2 else f'x {lead // 2} '}belongs: it holds sizes "
                               "for the input it was imported with")
        return tuple(int(s) for s in y.shape[1:])
    return tuple(int(s) for s in y.shape)


# --------------------------------------------------------------------------------------------
# code
# --------------------------------------------------------------------------------------------


def program_code(program: dict[str, Any], inputs: list[str], out: str) -> list[str]:
    """The forward lines of a program: one assignment per step, the last to ``out``."""
    lines: list[str] = []
    names: list[str] = []
    steps = program["steps"]
    for j, step in enumerate(steps):
        var = out if j == len(steps) - 1 else f"{out}_{j}"
        lines.append(f"{var} = {step_code(step, inputs, names)}")
        names.append(var)
    return lines


def step_code(step: dict[str, Any], inputs: list[str], names: list[str]) -> str:
    """One step as a Python expression (its arguments' variables named by ``inputs`` and the
    earlier steps' ``names``)."""
    op = step["op"]
    why = op_problem(op)
    if why:  # a checked program never gets here: names stay plain identifiers in code
        raise ProgramError(why)
    space, _, name = op.partition(".")
    args = [_code(a, inputs, names) for a in step["args"]]
    call = args + [f"{k}={_code(v, inputs, names)}" for k, v in step["kwargs"].items()]
    if space == "torch":
        return f"torch.{name}({', '.join(call)})"
    if space == "F":
        return f"torch.nn.functional.{name}({', '.join(call)})"
    if space == "aten":
        return f"torch.ops.aten.{name}({', '.join(call)})"
    if space == "builtin":
        return f"{name}({', '.join(call)})"
    if space == "getattr":
        return f"{args[0]}.{name}"
    if space == "method":
        return f"{args[0]}.{name}({', '.join(call[1:])})"
    name = _INPLACE.get(name, name)
    symbol, arity = _OPERATORS[name]
    if name == "getitem":
        return f"{args[0]}[{_index_code(step['args'][1], inputs, names)}]"
    if arity == 1:
        return f"{symbol}{args[0]}" if symbol != "not " else f"(not {args[0]})"
    return f"({args[0]} {symbol} {args[1]})"


def _index_code(v: Any, inputs: list[str], names: list[str]) -> str:
    """A subscript: slices as ``a:b``, a tuple without its parentheses."""
    if isinstance(v, dict) and "slice" in v:
        parts = ["" if a is None else _code(a, inputs, names) for a in v["slice"]]
        return ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] else "")
    if isinstance(v, dict) and "tuple" in v:
        items = [_index_code(a, inputs, names) for a in v["tuple"]]
        return ", ".join(items) + ("," if len(items) == 1 else "") if items else "()"
    return _code(v, inputs, names)


def _code(v: Any, inputs: list[str], names: list[str]) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_code(a, inputs, names) for a in v) + "]"
    if not isinstance(v, dict):
        from .pysource import literal  # deferred: pysource loads torch (the helper modules)

        return literal(v)
    (key, x), = v.items()
    if key == "in":
        return inputs[x]
    if key == "step":
        return names[x]
    if key == "tuple":
        items = [_code(a, inputs, names) for a in x]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if key == "slice":
        return f"slice({', '.join(_code(a, inputs, names) for a in x)})"
    if key == "ellipsis":
        return "..."
    if key == "dtype":
        return f"torch.{x}"
    if key == "device":
        return f"{inputs[0]}.device" if inputs else "None"
    if key == "float":
        return f"float({x!r})"
    return f"torch.{x}"  # memory_format


def program_summary(program: dict[str, Any]) -> str:
    """A short label for a program: its ops, e.g. ``flatten, transpose``."""
    ops = []
    for step in program.get("steps", []):
        op = str(step.get("op", ""))
        name = op.split(".")[1] if "." in op else op
        if op.startswith("getattr.") or name in ("getitem", "size", "sym_size"):
            continue
        if not ops or ops[-1] != name:
            ops.append(name)
    text = ", ".join(ops[:4]) + (" ..." if len(ops) > 4 else "")
    return text or "getitem"


__all__ = ["DTYPES", "LAYOUTS", "NAMESPACES", "ProgramError", "check_program", "example_inputs",
           "infer_program", "op_problem", "program_code", "program_summary", "resolve_op",
           "run_program", "step_code"]
