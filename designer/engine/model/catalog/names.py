"""Which names a node may have: identifiers that clash neither with Python nor with
torch.nn.Module nor with the exported code."""

from __future__ import annotations

import keyword
import re
from typing import Any

from .schema import _show

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # used with fullmatch: "$" matches before a final newline
_ATTR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a module attribute (block1-0), with fullmatch
# an item of a list of modules (a Hugging Face model's layers.0): the list's attribute, its index
_ITEM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.(0|[1-9][0-9]{0,4}|[A-Za-z_][A-Za-z0-9_]*)")
# Names that would collide with nn.Module attributes or read badly in exported code. The
# attributes of an nn.Module instance (torch 2.x; "training" too) are listed here rather than read
# from torch, so that checking a name needs no torch; tests/engine/test_catalog.py fails when an
# installed torch adds one. (Names starting with "_" are refused by _IDENT anyway.)
TORCH_MODULE_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters",
    "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to",
    "to_empty", "train", "training", "type", "xpu", "zero_grad",
})
RESERVED_NAMES = frozenset(
    TORCH_MODULE_ATTRIBUTES
    | {"self", "torch", "nn", "F", "math", "model", "inputs", "x"}
    | {"forward_all"}  # designer.engine.model.build.GraphModule
)


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a node, or None if it can."""
    if not isinstance(name, str) or not name:
        return "a name must be a non-empty text"
    if len(name) > 64:
        return "a name must be at most 64 characters"
    if not _IDENT.fullmatch(name):
        return (f"{_show(name)} is not a valid name: use letters, digits and underscores, "
                f"starting with a letter")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{_show(name)} is a Python keyword"
    if name in RESERVED_NAMES:
        return f"{_show(name)} is reserved (it clashes with torch.nn.Module or the exported code)"
    return None



def list_item(attr: str) -> tuple[str, int | str] | None:
    """``("layers", 0)`` for an attribute that is an item of a list of modules (``layers.0``),
    ``("head", "fc")`` for a module inside a container module (``head.fc``), else None."""
    item = _ITEM.fullmatch(attr) if isinstance(attr, str) else None
    if item is None:
        return None
    index = item.group(2)
    return item.group(1), int(index) if index.isdigit() else index


def attr_problem(attr: Any) -> str | None:
    """Why ``attr`` cannot be a node's module attribute apart from its name (an imported model's
    ``block1-0``: letters, digits, "_" and "-"; no dot, which nests modules), or None."""
    if not isinstance(attr, str) or not attr:
        return "a module attribute must be a non-empty text"
    if len(attr) > 64:
        return "a module attribute must be at most 64 characters"
    item = _ITEM.fullmatch(attr)
    if item is not None:
        attr = item.group(1)  # the list's attribute is checked as one
    elif not _ATTR.fullmatch(attr):
        return (f"{_show(attr)} is not a module attribute: use letters, digits, '_' and '-', "
                "starting with a letter or a digit, or list.INDEX for an item of a list")
    # only torch.nn.Module's own attributes: the exported code reaches an attribute apart from
    # its layer's name as self.<attr> or getattr(self, ...), never as a variable (LLaMA's model)
    if attr in TORCH_MODULE_ATTRIBUTES or attr == "forward_all" or keyword.iskeyword(attr):
        return f"{_show(attr)} is reserved (it clashes with torch.nn.Module or Python)"
    return None
