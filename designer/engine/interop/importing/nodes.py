"""One traced module's fx graph mapped node by node to designer layers: placeholders and the
output are the network's Input and Output layers, a call of a submodule the catalog has is that
layer (:data:`~designer.engine.model.catalog.importers.CONVERTERS`), any other submodule a block use,
a parameter a Parameter layer, and functions, operators and methods their catalog layers."""

from __future__ import annotations

import inspect
import itertools
import operator
import re
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from torch import nn

from ...model.blocks import BLOCK
from ...model.catalog import CATALOG, attr_problem, name_problem
from ...model.catalog.importers import CONVERTERS, SAME, Call, Made, Pieces, Unmapped
from ...model.catalog.names import list_item
from ...model.nodes import kind_of
from .exported import (
    ATEN_IGNORED,
    aten_name,
    exported_layer,
    is_exported,
    model_class_name,
    weighted_op_layer,
)
from .kept import FUNCTION, ProgramMaker, dtype_kind, tensor_layer
from .report import source_line

# An auxiliary output's loss weight: the model does not say; GoogLeNet's paper used 0.3.
AUX_WEIGHT = 0.3
# The layers this machinery makes itself, not op mappings: a parameter used in forward (fx's
# get_attr), a list of tensors a block concatenates at once (DenseNet's layers), an exported
# module with nothing between its input and output.
PARAMETER, LIST_CONCAT, NOTHING = "Parameter", "Concat", "Identity"
# Methods that return their input's values: the input itself
ALIASES = ("contiguous", "clone", "detach")


@dataclass
class ImportedLayer:
    name: str
    type: str
    params: dict[str, Any]
    inputs: list[str]
    child: ImportedNet | None = None  # a block use: the imported submodule
    attr: str | None = None  # the module attribute when it cannot be the name (block1-0)


@dataclass
class ImportedNet:
    """A module imported as one network, before blocks are shared."""

    cls: str  # the module's class name
    attr: str  # its attribute in the parent ("" for the top)
    layers: list[ImportedLayer]
    sequential: bool
    ok: bool = True
    network: str = ""  # the definition it uses, once shared
    list_dim: int | None = None  # called with a list of tensors, concatenated along this axis
    args: dict[str, Any] = field(default_factory=dict)


# What a parameter used per sample (a Parameter layer, expanded over the batch: ViT's class
# token, ConvNeXt's layer scale) may feed; any other use takes the tensor whole (a Tensor layer).
PER_SAMPLE_USES = ("mul", "add", "cat", "expand", "iadd", "imul", "sub", "concat", "mul_",
                   "add_")


def _input_alias(value: Any, placeholders: list) -> int | None:
    """The placeholder index a graph value is (a placeholder itself, or an ATen cast to the
    dtype it has already / alias / clone / detach of one), else None."""
    while isinstance(value, torch.fx.Node) and value.op == "call_function" \
            and aten_name(value.target) in ("to", "alias", "clone", "detach", "_to_copy") \
            and value.args and isinstance(value.args[0], torch.fx.Node):
        src, dst = value.args[0].meta.get("val"), value.meta.get("val")
        if getattr(src, "dtype", 0) != getattr(dst, "dtype", 1):
            return None
        value = value.args[0]
    return placeholders.index(value) if value in placeholders else None


def _all_float(node: torch.fx.Node) -> bool:
    """Whether every tensor a call takes and makes is floating-point."""
    metas = [tensor_meta(a) for a in node.all_input_nodes] + [tensor_meta(node)]
    return all(m.dtype.is_floating_point for m in metas if m is not None)


def _batch_first(node: torch.fx.Node, batch: int) -> bool:
    """Whether every tensor a call takes and makes has the batch (or a 1 that broadcasts over
    it) as its first axis: what a catalog layer's per-sample shape rule needs."""
    # (a parameter read here is a Parameter layer, expanded over the batch, or a whole Tensor
    # layer, which the caller checks)
    metas = [tensor_meta(a) for a in node.all_input_nodes if a.op != "get_attr"]
    metas.append(tensor_meta(node))
    return all(len(m.shape) > 0 and m.shape[0] in (batch, 1) for m in metas if m is not None)


def _call_name(node: Any) -> str:
    """The name of what a node calls (an ATen op's without overload): "mul", "expand"."""
    t = node.target
    return aten_name(t) or getattr(t, "__name__", str(t)) if node.op != "call_method" else t


def tensor_meta(node: Any):
    """The shape fx's shape propagation recorded for a node with one tensor value, else None."""
    from torch.fx.passes.shape_prop import (
        TensorMetadata,  # deferred: torch loads only when this runs
    )

    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    return meta if isinstance(meta, TensorMetadata) else None


def snake(text: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", text).lower()


def _single_layer(net: ImportedNet) -> tuple[str, dict] | None:
    """An imported network that is one layer between its input and its output (an exported
    ReLU's ``aten.relu``), or nothing between them (Identity): that layer's (type, params)."""
    if not net.ok or net.list_dim is not None:
        return None
    layers = net.layers
    if [la.type for la in layers] == ["Input", "Output"] and layers[1].inputs == [layers[0].name]:
        return NOTHING, {}
    if len(layers) != 3 or layers[0].type != "Input" or layers[2].type != "Output":
        return None
    mid = layers[1]
    if mid.child is not None or kind_of(mid.type).is_block or CATALOG[mid.type].bare_parameter \
            or mid.inputs != [layers[0].name] or layers[2].inputs != [mid.name]:
        return None
    return mid.type, dict(mid.params)


class NetBuilder:
    """Maps the nodes of one traced module to designer layers."""

    # ``imp`` is the tracing.ModuleImporter that made this builder (not imported: tracing
    # imports this module)
    def __init__(self, imp: Any, module: nn.Module, path: str, net: ImportedNet,
                 graph: torch.fx.Graph, children: list[str]) -> None:
        self.imp, self.module, self.path, self.net, self.graph = imp, module, path, net, graph
        self.by_fx: dict[str, str] = {}
        self.used: set[str] = set(children) if not net.sequential else set()
        self.used |= {n for n, _ in module.named_parameters(recurse=False)}
        self.pieces: dict[str, tuple[str, Pieces]] = {}  # a chunk's node -> its input, pieces
        self.called: set[str] = set()
        self.stopped = False
        self.named: set[str] = set()  # children already drawn under their own name
        self.attention: str | None = None
        self.whole: set[str] = set()  # layers whose output has no batch axis (Tensor layers)
        # the model's batch (a value whose first axis folds it with another, a window
        # attention's batch x windows, is a multiple: kept as code with that fold)
        self.batch = imp.batch

    def fresh(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "layer"
        if not base[0].isalpha():
            base = "m_" + base
        name, i = base, 1
        while name in self.used or name_problem(name):
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def sub(self, target: str) -> str:
        return f"{self.path}.{target}" if self.path else target

    def label(self, node: torch.fx.Node) -> str:
        """A layer's name for an op: an exported graph's node names count through the whole
        program (add__3), so they lose the count and the in-place mark (add)."""
        if not is_exported(self.module):
            return node.name
        return re.sub(r"_*\d*$", "", node.name) or node.name

    def run(self) -> None:
        net = self.net
        for node in self.graph.nodes:
            if self.stopped:
                break
            if node.op in ("call_function", "call_method", "get_attr") and not node.users:
                continue  # a value forward computes and never uses (res2net's first spx[0])
            try:
                made = self.map(node)
            except Unmapped as exc:
                target = node.target if node.op in ("call_module", "get_attr") else ""
                self.imp.unsupported(self.sub(target) if target else self.path, exc.op,
                                     exc.reason, source_line(node))
                self.fail(node)
                continue
            except KeyError:  # fed by a value that could not be mapped: reported there
                self.fail(node, report=False)
                continue
            if made is None:
                continue
            if isinstance(made, str):
                self.by_fx[node.name] = made
                continue
            net.layers += made
            self.by_fx[node.name] = made[-1].name
            if made[-1].child is not None and not made[-1].child.ok:
                self.fail(node, report=False, keep=True)
        self.unused_tensors()
        # weights of children never called are lost: report them (parameter-free ones are not)
        for name, child in self.module.named_children():
            if any(c.startswith(f"{name}.") for c in self.called):  # a list's items, each
                for key in child.state_dict():  # a child whose tensors are read one by one
                    if "." not in key and f"{name}.{key}" not in self.called \
                            and not any(c.startswith(f"{name}.") and "." not in c[len(name) + 1:]
                                        and isinstance(getattr(child, c[len(name) + 1:], None),
                                                       nn.Module) for c in self.called) \
                            and not self.stopped:
                        self.imp.unsupported(self.sub(f"{name}.{key}"), model_class_name(child),
                                             "never read in forward: its values would be lost")
                        net.ok = False
                for item, sub in child.named_children():
                    if f"{name}.{item}" not in self.called and not self.stopped \
                            and any(True for _ in sub.state_dict()):
                        self.imp.unsupported(self.sub(f"{name}.{item}"), model_class_name(sub),
                                             "never called in forward: its weights would be "
                                             "lost")
                        net.ok = False
                continue
            if name not in self.called and self.tied(name, child):
                continue  # its tensors are another module's (tied): loaded through that one
            if name not in self.called and not isinstance(child, (nn.ModuleList, nn.ModuleDict)) \
                    and any(True for _ in child.state_dict()) and not self.stopped:
                self.imp.unsupported(self.sub(name), type(child).__name__,
                                     "never called in forward: its weights would be lost")
                net.ok = False

    def unused_tensors(self) -> None:
        """The module's own parameters and persistent buffers forward never reads (a BatchNorm's
        num_batches_tracked in eval): Tensor layers feeding nothing, so the keys stay."""
        if self.stopped or is_exported(self.module) and not self.net.ok:
            return
        read = {n.target for n in self.graph.nodes if n.op == "get_attr"}
        persistent = {k for k in self.module._buffers
                      if k not in self.module._non_persistent_buffers_set}
        for key, t in [*self.module._parameters.items(),
                       *((k, self.module._buffers[k]) for k in persistent)]:
            if t is None or key in read or name_problem(key) or t.dim() == 0 \
                    and key != "num_batches_tracked":
                continue
            kind = "parameter" if isinstance(t, nn.Parameter) else "buffer"
            try:
                type_, params = tensor_layer(t, kind)  # a scalar: shape [1], scalar
            except Unmapped:
                continue
            self.used.add(key)
            self.net.layers.insert(1, ImportedLayer(key, type_, params, []))

    def tied(self, name: str, child: nn.Module) -> bool:
        """Whether every tensor of a child never called is also another part's (T5's ``shared``
        embedding is its encoder's): the report names the tied keys."""
        state = child.state_dict(keep_vars=True)
        if not state:
            return False
        owners = self.imp.tensor_keys()
        prefix = f"{self.sub(name)}."
        found = {}
        for key, t in state.items():
            other = [k for k in owners.get(t.data_ptr(), []) if not k.startswith(prefix)]
            if not other:
                return False
            found[prefix + key] = other[0]
        self.imp.report.tied.update(found)
        return True

    def fail(self, node: torch.fx.Node, report: bool = True, keep: bool = False) -> None:
        self.net.ok = False
        if not keep:
            self.by_fx.pop(node.name, None)
        if self.imp.partial:
            self.stopped = True
            layers = self.net.layers
            if keep:  # the use is whole but its block is not: stop before it
                layers.pop()
            last = next((la.name for la in reversed(layers) if la.type != "Output"), None)
            if last is not None:
                layers.append(ImportedLayer(self.fresh("output"), "Output", {}, [last]))

    def sources(self, node: torch.fx.Node) -> list[str]:
        out: list[str] = []
        for a in node.args:
            items = a if isinstance(a, (list, tuple)) else [a]
            out += [self.by_fx[x.name] for x in items
                    if isinstance(x, torch.fx.Node) and tensor_meta(x) is not None]
        return out

    def map(self, node: torch.fx.Node) -> list[ImportedLayer] | str | None:
        if node.op == "placeholder":
            shape = list(tensor_meta(node).shape[1:]) if tensor_meta(node) is not None else []
            # an exported module's input is named after what fed it (max_pool2d): "input"
            plain = node.name == "x" or is_exported(self.module) and sum(
                n.op == "placeholder" for n in self.graph.nodes) == 1
            meta = tensor_meta(node)
            kind = dtype_kind(meta.dtype) if meta is not None else "float"
            index = [n for n in self.graph.nodes if n.op == "placeholder"].index(node)
            whole = index in self.imp.whole_args.get(id(self.module), ())
            if whole:  # a block fed a tensor with no batch axis (a window attention's mask)
                shape = [int(s) for s in meta.shape]
            params = {"shape": shape, **({"dtype": {"int": "int64", "bool": "bool"}[kind]}
                                         if kind != "float" else {})}
            name = self.fresh("input" if plain else node.name)
            if whole:
                self.whole.add(name)
            return [ImportedLayer(name, "Input", params, [])]
        if node.op == "output":
            value = node.args[0]
            if is_exported(self.module) and isinstance(value, (tuple, list)) \
                    and len(value) == 1:  # an exported program returns a flat tuple
                value = value[0]
            if isinstance(value, torch.fx.Node) and value.op == "call_function" \
                    and isinstance(value.target, type) and issubclass(value.target, tuple) \
                    and not value.kwargs:  # a named tuple made in forward (GoogLeNetOutputs)
                value = tuple(value.args)
            if self.path == "" and self.imp.training_top and isinstance(value, (tuple, list)) \
                    and len(value) > 1 and all(isinstance(v, torch.fx.Node)
                                               and tensor_meta(v) is not None for v in value):
                # training's (main, aux2, aux1): the main output, then auxiliary ones
                main = ImportedLayer(self.fresh("output"), "Output", {},
                                     [self.by_fx[value[0].name]])
                aux = [ImportedLayer(self.fresh("aux_output"), "Output", {"aux_weight": AUX_WEIGHT},
                              [self.by_fx[v.name]]) for v in value[1:]]
                self.imp.report.aux_outputs = {a.inputs[0]: AUX_WEIGHT for a in aux}
                return [main, *aux]
            if isinstance(value, (tuple, list, dict)) and (self.path == "" or not isinstance(
                    value, dict)):
                made = self.named_outputs(value)
                if made is not None:
                    return made
            if not isinstance(value, torch.fx.Node) or tensor_meta(value) is None:
                raise Unmapped("output", "returns something other than one tensor (a tuple, a "
                                "list or a dict): a design's network returns one tensor")
            key = self.imp.output_names[0] if self.path == "" \
                and len(self.imp.output_names) == 1 else "output"  # a ModelOutput's logits
            name = self.fresh(key)
            if key != "output":
                self.imp.report.outputs[name] = f"the model's output {key!r}"
            return [ImportedLayer(name, "Output", {}, [self.by_fx[value.name]])]
        if node.op == "call_module":
            made = self.call_module(node)
            if isinstance(made, list) and any(src in self.whole for la in made
                                              for src in la.inputs):
                self.whole.update(la.name for la in made)  # fed a whole tensor: one too (T5's
            return made  # relative position bias, an Embedding of a (L, L) table of buckets)
        if node.op == "get_attr":
            if any(_call_name(u) not in PER_SAMPLE_USES for u in node.users):
                return self.stored(node)  # used whole (an embedding's table): a Tensor layer
            try:
                return self.get_attr(node)
            except Unmapped:
                return self.stored(node)
        if aten_name(node.target) in ATEN_IGNORED:
            return None
        try:
            if self.whole and any(src in self.whole for src in self.sources(node)):
                # a layer's shape rule reads one sample: a tensor with no batch axis stays code
                raise Unmapped(self.label(node), "a tensor used whole")
            if not _all_float(node):  # masks, positions: the catalog's layers compute on floats
                raise Unmapped(self.label(node), "integer or boolean tensors")
            if not _batch_first(node, self.batch):  # a layer works per sample: the batch first
                raise Unmapped(self.label(node), "a tensor whose first axis is not the batch")
            return self.function(node)
        except Unmapped:
            if tensor_meta(node) is None:  # not a tensor (unbind's pieces): computed inside the
                return None  # Function layers that take from it
            return self.kept_as_code(node)

    # -- kept as code ----------------------------------------------------------------------

    def module_result(self, call: torch.fx.Node, index: Any) -> str | None:
        """Result ``index`` of a module returning several (an unflattened module also returns
        values its caller reuses: a norm's input cast to its own dtype, the residual), when it is
        one layer can stand for: the module's input itself (an alias) or, for a module mapped to
        one layer, that layer's output. None: the result is taken by a Function layer."""
        sub = self.module.get_submodule(call.target)
        if not is_exported(sub) or not isinstance(index, int) or call.name not in self.by_fx:
            return None
        out = next(n for n in sub.graph.nodes if n.op == "output").args[0]
        if not isinstance(out, (list, tuple)) or not -len(out) <= index < len(out):
            return None
        phs = [n for n in sub.graph.nodes if n.op == "placeholder"]
        aliases = [_input_alias(v, phs) for v in out]
        k = aliases[index]
        if k is not None:
            arg = call.args[k] if k < len(call.args) else None
            return self.by_fx.get(arg.name) if isinstance(arg, torch.fx.Node) else None
        layer = next((la for la in self.net.layers if la.name == self.by_fx[call.name]), None)
        if layer is not None and layer.child is None \
                and sum(a is None for a in aliases) == 1:
            return layer.name  # the one real result of a module mapped to one layer
        return None

    def named_outputs(self, value: Any) -> list[ImportedLayer] | None:
        """The model's several results (a tuple, a dict, a ModelOutput): one Output each, named
        after its key where the probe's result has keys (logits first, as the model returns
        them); None when one is not a tensor a layer made."""
        items = list(value.values()) if isinstance(value, dict) else list(value)
        items = [v for v in items if v is not None]
        if not items or not all(isinstance(v, torch.fx.Node) and tensor_meta(v) is not None
                                and v.name in self.by_fx for v in items):
            return None
        keys = list(self.imp.output_names) if self.path == "" else []
        if len(keys) != len(items):
            keys = ["output"] + [f"output_{i}" for i in range(1, len(items))]
        outs = []
        for key, v in zip(keys, items):
            name = self.fresh(key)
            outs.append(ImportedLayer(name, "Output", {}, [self.by_fx[v.name]]))
            if self.path == "":
                self.imp.report.outputs[name] = f"the model's output {key!r}"
        return outs

    def kept_as_code(self, node: torch.fx.Node) -> list[ImportedLayer]:
        """A call no layer stands for, as a Function layer running that call (values computed
        only to feed it run inside it too)."""
        def tensor_input(a: torch.fx.Node) -> str:
            return self.by_fx[a.name]

        maker = ProgramMaker(self.batch, tensor_input)
        meta = tensor_meta(node)
        program = maker.make(node, meta)
        for port, name in zip(program["inputs"], maker.inputs):
            if port["layout"] == "tuple":  # a block's results: each item as it came
                continue
            if name in self.whole:  # a Tensor layer's whole tensor, whatever its first size
                port["layout"] = "whole"
                port.pop("fold", None)
            elif port["layout"] == "whole":  # a layer's output carries the batch axis
                port["layout"] = "batch"
        # made from whole tensors or constants alone: no batch in it, whatever its first size
        constant = all(n in self.whole for n in maker.inputs) \
            and not any(p["layout"] == "tuple" for p in program["inputs"])
        if not maker.inputs:  # made from constants alone (torch.arange(16)): it takes the
            first = next((la for la in self.net.layers if la.type == "Input"), None)  # input,
            if first is None:  # unused, for a port (a layer with no input is a source)
                raise Unmapped(self.label(node), "a value made from constants alone in a "
                               "network without an input")
            maker.inputs.append(first.name)
            kind = {"int64": "int", "bool": "bool"}.get(first.params.get("dtype"), "float")
            program["inputs"].append({"layout": "batch", "dtype": kind})
        name = self.fresh(self.label(node))
        if constant:  # made from whole tensors alone: whole too, whatever its first size
            program["output"] = {"layout": "whole", "dtype": program["output"]["dtype"]}
        if program["output"]["layout"] == "whole":
            self.whole.add(name)
        self.imp.report.functions += 1
        return [ImportedLayer(name, FUNCTION, {"program": program}, list(maker.inputs))]

    def stored(self, node: torch.fx.Node) -> list[ImportedLayer] | None:
        """A parameter or buffer used in forward as it is (a position table, rotary
        frequencies): a Tensor layer under its own key."""
        target = node.target
        if not any(tensor_meta(u) is not None for u in node.users) and not node.users:
            return None
        owner_path, _, leaf = target.rpartition(".")
        try:
            owner = self.module.get_submodule(owner_path) if owner_path else self.module
        except AttributeError:
            raise Unmapped("get_attr", f"{target}: no such attribute") from None
        tensor = getattr(owner, leaf, None)
        if not isinstance(tensor, torch.Tensor):
            raise Unmapped("get_attr", f"{target} is not a tensor")
        if isinstance(tensor, nn.Parameter):
            kind = "parameter"
        elif leaf in owner._buffers:
            kind = "constant" if leaf in owner._non_persistent_buffers_set else "buffer"
        else:
            kind = "constant"  # a tensor attribute (an exported program's lifted constant)
        if kind == "constant":  # in no state_dict: any name does (_tensor_constant0)
            type_, params = tensor_layer(tensor, kind)
            if params["stored"] == "constant":
                name = self.fresh(target.replace(".", "_").strip("_") or "constant")
                self.whole.add(name)  # a value the model holds, whatever its first size
                return [ImportedLayer(name, type_, params, [])]
        if owner_path:
            # a child's tensor read by this module (BEiT's F.linear(x, self.qkv.weight, bias)):
            # kept at its key (attr qkv.weight) when the child is never called itself
            if "." in owner_path or any(n.op == "call_module" and n.target == owner_path
                                        for n in self.graph.nodes) \
                    or list_item(target) is None or any(True for _ in owner.children()):
                raise Unmapped("get_attr", f"{target} belongs to a child module: a layer holds "
                                "only its own network's tensors")
            type_, params = tensor_layer(tensor, kind)
            name = self.fresh(target)
            self.whole.add(name)
            self.called.add(target)
            return [ImportedLayer(name, type_, params, [], attr=target)]
        attr = None if not name_problem(target) else target
        if attr is not None and attr_problem(attr):
            raise Unmapped("get_attr", f"the name {target!r} can name neither a layer nor an "
                            f"attribute ({attr_problem(attr)})")
        type_, params = tensor_layer(tensor, kind)
        if kind == "constant" and params["stored"] == "buffer":
            self.imp.report.constants_saved.append(self.sub(target))
        if tensor.dim() > 1 and tensor.shape[0] == 1:  # (1, L): broadcast over the batch
            params["batch_axis"] = True
        name = target if attr is None and target not in self.named else self.fresh(target)
        self.named.add(name)
        self.used.add(name)
        if not params.get("batch_axis"):
            self.whole.add(name)
        return [ImportedLayer(name, type_, params, [], attr=attr)]

    def call_module(self, node: torch.fx.Node) -> list[ImportedLayer]:
        target = node.target
        module = self.module.get_submodule(target)
        cls = model_class_name(module)
        if "." in target:
            made = self.module_list_use(node)
            if made is not None:
                return made
            name = target.split(".", 1)[0]
            head = self.module.get_submodule(name)
            container = isinstance(head, (nn.ModuleList, nn.ModuleDict)) or (
                # a module used only as a holder here (timm's head.global_pool called from the
                # model's forward): never called itself, no tensors of its own
                not any(n.op == "call_module" and n.target == name for n in self.graph.nodes)
                and not any(t is not None for t in (*head._parameters.values(),
                                                     *head._buffers.values())))
            if list_item(target) is None or not container or self.net.sequential:
                raise Unmapped(cls, f"calls {target}, a module inside a child module (the "
                                "designer keeps each module's calls inside it)")
            # an item of a list of modules, or a module of a holder, called on its own (a
            # Hugging Face layers.0 with a mask beside its input): a layer whose module
            # attribute is that item
        has_state = any(True for _ in module.state_dict())
        if target in self.called and has_state:
            raise Unmapped(cls, "called more than once: weights shared between two places")
        self.called.add(target)
        attr = None
        if self.net.sequential:
            name = self.fresh(snake(cls))
        elif target in self.named or name_problem(target):
            if has_state and target not in self.named:  # its keys must stay: an attribute apart
                why = attr_problem(target)
                if why:
                    raise Unmapped(cls, f"the attribute name {target!r} can be neither a layer's "
                                    f"name ({name_problem(target)}) nor its module attribute "
                                    f"({why}): its state_dict keys would change")
                attr = target
            name = self.fresh(target)
        else:
            name = target
            self.named.add(target)
        conv = CONVERTERS.for_module(module)
        try:
            found = (conv, conv.run(module)) if conv is not None else None
        except Unmapped:  # a use no layer has (padding 'same'): the module is a block
            found = None
        if found is None and is_exported(module):  # one op on its own weights: that layer
            call = self.imp.calls.get(id(module))
            first = call[0][0] if call and call[0] else None
            rank = first.dim() if isinstance(first, torch.Tensor) else None
            found = exported_layer(module, rank) or weighted_op_layer(module, rank)
        if found is not None:
            conv, made = found
            srcs = self.sources(node)
            if conv.attention and not is_exported(module):
                srcs = self.self_attention(node, cls)
            if len(srcs) != 1 or node.kwargs and not conv.attention:
                raise Unmapped(cls, "called with several tensors or keyword arguments")
            # a chain (timm's BatchNormAct2d: the norm, then its activation): the first layer
            # is the module (its name, so its keys), the others follow it under names of their own
            steps = [s if isinstance(s, Made) else Made(*s)
                     for s in (made if isinstance(made, list) else [made])]
            if len(steps) > 1 and self.net.sequential:
                # positional keys (2.weight) would shift: every module keeps its attribute
                self.net.sequential = False
                kept = [la for la in self.net.layers if la.type != "Input"]
                for i, la in enumerate(kept):
                    la.attr = str(i)
                attr = target
            layers = [ImportedLayer(name, steps[0].layer, dict(steps[0].params), srcs, attr=attr)]
            for step in steps[1:]:
                layers.append(ImportedLayer(self.fresh(step.name.format(label=name)), step.layer,
                                            dict(step.params), [layers[-1].name]))
            return layers
        if type(module).forward is nn.Module.forward or isinstance(module, nn.ModuleList):
            raise Unmapped(cls, "a container without a forward of its own")
        tensors = [a for a in (*node.args, *node.kwargs.values())
                   if isinstance(a, torch.fx.Node) and tensor_meta(a) is not None]
        self.imp.whole_args[id(module)] = {i for i, a in enumerate(tensors)
                                           if self.by_fx.get(a.name) in self.whole}
        child = self.imp.import_module(module, self.sub(target), target)
        srcs = self.sources(node)
        if node.kwargs:  # tensors passed by keyword (a mask): after the others, in the order of
            try:  # forward's parameters, as the block's Inputs are
                order = list(inspect.signature(module.forward).parameters)
            except (TypeError, ValueError):  # pragma: no cover - builtins
                order = list(node.kwargs)
            for key in sorted(node.kwargs, key=lambda k: order.index(k) if k in order else 99):
                v = node.kwargs[key]
                if isinstance(v, torch.fx.Node) and tensor_meta(v) is not None:
                    srcs.append(self.by_fx[v.name])
        if not srcs:
            raise Unmapped(cls, "takes no tensor input")
        if is_exported(module) and len(srcs) == 1 and not has_state:
            layer = _single_layer(child)  # an exported ReLU, MaxPool2d ...: that layer
            if layer is not None:
                return [ImportedLayer(name, layer[0], layer[1], srcs, attr=attr)]
        if child.list_dim is not None and len(srcs) > 1:  # the list it concatenates, as a layer
            cat = ImportedLayer(self.fresh(f"{target}_input"), LIST_CONCAT,
                                {"dim": child.list_dim}, srcs)
            return [cat, ImportedLayer(name, BLOCK, {}, [cat.name], child, attr)]
        return [ImportedLayer(name, BLOCK, {}, srcs, child, attr)]

    def module_list_chains(self) -> dict[str, list[torch.fx.Node]]:
        """The nn.ModuleList children whose items are all called once, in order, as a chain
        (``for layer in self.layers: x = layer(x)``): attribute -> the calls, in order."""
        if getattr(self, "_chains", None) is not None:
            return self._chains
        self._chains: dict[str, list[torch.fx.Node]] = {}
        calls: dict[str, list[torch.fx.Node]] = {}
        for n in self.graph.nodes:
            if n.op == "call_module" and "." in n.target:
                calls.setdefault(n.target.split(".", 1)[0], []).append(n)
        for head, nodes in calls.items():
            child = getattr(self.module, head, None)
            if not isinstance(child, nn.ModuleList) or type(child) is not nn.ModuleList \
                    or len(nodes) != len(child) \
                    or [n.target for n in nodes] != [f"{head}.{i}" for i in range(len(child))]:
                continue
            first = nodes[0]
            ok = len(first.args) == 1 and isinstance(first.args[0], torch.fx.Node) \
                and not first.kwargs
            for a, b in itertools.pairwise(nodes):
                ok = ok and b.args == (a,) and not b.kwargs and set(a.users) == {b}
            if ok:
                self._chains[head] = nodes
        return self._chains

    def module_list_use(self, node: torch.fx.Node) -> list[ImportedLayer] | str | None:
        """A call of an item of an nn.ModuleList chain: the whole list as one block use named
        after the list, whose network is sequential (its keys are the list's: ``layers.0.*``);
        the later items' calls are that use. None: not such a chain."""
        head = node.target.split(".", 1)[0]
        nodes = self.module_list_chains().get(head)
        if nodes is None or self.net.sequential or name_problem(head):
            return None
        if node is not nodes[0]:  # the same use: only its last item's output is used outside
            return head if head in self.called else None
        if head in self.named:
            return None
        items = getattr(self.module, head)
        seq = nn.Sequential(*items)  # the same modules: their probed calls and outputs hold
        seq.training = items.training  # import_module restores this mode on the items
        self.keep = [*getattr(self, "keep", []), seq]  # keep id(seq) unique while importing
        call = self.imp.calls.get(id(items[0]))
        if call is not None:
            self.imp.calls[id(seq)] = call
        self.called.add(head)
        self.named.add(head)
        child = self.imp.import_module(seq, self.sub(head), head)
        srcs = self.sources(node)
        if len(srcs) != 1:
            raise Unmapped("ModuleList", "its first item takes no tensor input")
        return [ImportedLayer(head, BLOCK, {}, srcs, child)]

    def self_attention(self, node: torch.fx.Node, cls: str) -> list[str]:
        q, k, v = (list(node.args) + [node.kwargs.get(n) for n in ("key", "value")])[:3] \
            if len(node.args) < 3 else node.args[:3]
        extra = {k_: v_ for k_, v_ in node.kwargs.items() if k_ not in ("key", "value")}
        if not (q is k is v) or extra.get("need_weights", True) or \
                any(extra.get(n) is not None for n in ("attn_mask", "key_padding_mask")) \
                or any(u.op != "call_function" or u.target is not operator.getitem
                       or (u.args[1] != 0 and u.users) for u in node.users):
            raise Unmapped(cls, "attention other than self-attention with "
                            "need_weights=False and no mask, whose output [0] is used")
        self.attention = node.name
        return [self.by_fx[q.name]]

    def get_attr(self, node: torch.fx.Node) -> list[ImportedLayer] | None:
        try:
            tensor = self.module.get_parameter(node.target)
        except AttributeError:
            if not any(tensor_meta(u) is not None for u in node.users):
                return None
            raise Unmapped("get_attr", f"{node.target} is a buffer or constant tensor used in "
                            "forward (only learnable parameters become Parameter layers)")
        if "." in node.target:
            raise Unmapped("get_attr", f"{node.target} belongs to a child module")
        ranks = {len(tensor_meta(u).shape) for u in node.users if tensor_meta(u) is not None}
        if ranks == {tensor.dim()} and tensor.shape[0] == 1:  # ViT's class_token (1, 1, d)
            shape, batch_axis = list(tensor.shape[1:]), True
        elif ranks == {tensor.dim() + 1}:  # ConvNeXt's layer_scale (d, 1, 1) times (N, d, h, w)
            shape, batch_axis = list(tensor.shape), False
        else:
            raise Unmapped("get_attr", f"{node.target} used at ranks {sorted(ranks)}, not as a "
                            "per-sample tensor")
        # the layer's name is the parameter's key (or its module attribute, as for a module)
        attr = None if not name_problem(node.target) else node.target
        if attr is not None and attr_problem(attr):
            raise Unmapped("get_attr", f"the parameter name {node.target!r} can name neither a "
                            f"layer nor an attribute ({attr_problem(attr)})")
        name = node.target if attr is None else self.fresh(node.target)  # reserved in __init__
        return [ImportedLayer(name, PARAMETER, {"shape": shape, "init": "zeros",
                                                "batch_axis": batch_axis}, [], attr=attr)]

    def function(self, node: torch.fx.Node) -> list[ImportedLayer] | str | None:
        """A function, operator, method or ATen op: the layers its converter makes
        (:data:`~designer.engine.model.catalog.importers.CONVERTERS`, by the op's name)."""
        t, args = node.target, node.args
        aten = aten_name(t)  # an ATen op of an exported program: named as its torch function
        what = aten or getattr(t, "__name__", str(t))
        if aten in ATEN_IGNORED:
            return None
        out = tensor_meta(node)
        x = args[0] if args else None
        src = self.by_fx.get(x.name) if isinstance(x, torch.fx.Node) else None
        if what == "getitem" and isinstance(x, torch.fx.Node) \
                and x.name == self.attention:
            return self.by_fx[x.name]
        if what == "getitem" and isinstance(x, torch.fx.Node) and x.op == "call_module":
            made = self.module_result(x, args[1])
            if made is not None:
                return made
        conv = CONVERTERS.get("call", what)
        if conv is not None and conv.pieces:  # several results, each used through [i]
            pieces = conv.run(self.call(node, what, aten is not None))
            if pieces is not None:
                self.pieces[node.name] = (self.by_fx[x.name], pieces)
                return None
        if out is None:  # sizes, shape checks, an unbind's pieces: computed inside the calls
            return None  # they feed (kept as code), or reported where they cannot be
        if what == "getitem" and x.name in self.pieces:
            source, pieces = self.pieces[x.name]
            return self.made(node, pieces.steps[args[1]], [source])
        if conv is not None and conv.inputs == "all":  # a merge: every tensor argument feeds it
            made = conv.run(self.call(node, what, aten is not None))
            if made is not None:
                return self.made(node, made, None)
        if tensor_meta(x) is None:
            raise Unmapped(what, "an operation on something other than a tensor")
        if src is None:
            raise KeyError(x.name)
        if what in ALIASES:
            return src
        if what == "expand":
            layer = next((la for la in self.net.layers if la.name == src), None)
            if layer is None or layer.child is not None \
                    or not CATALOG[layer.type].bare_parameter \
                    or tuple(out.shape[1:]) != tuple(tensor_meta(x).shape[1:]):
                raise Unmapped(what, "expand other than a parameter over the batch")
            return src
        if conv is not None and conv.inputs == "first" and not conv.pieces:
            made = conv.run(self.call(node, what, aten is not None))
            if made is not None:
                return self.made(node, made, [src])
        raise Unmapped(what, "no designer layer for this function")

    def call(self, node: torch.fx.Node, what: str, aten: bool) -> Call:
        """What a call converter sees of a node."""
        x = node.args[0] if node.args else None
        meta, out = tensor_meta(x), tensor_meta(node)
        many = node.meta.get("tensor_meta")
        return Call(what, node.target, tuple(node.args), dict(node.kwargs), aten=aten,
                    in_shape=tuple(meta.shape) if meta is not None else None,
                    out_shape=tuple(out.shape) if out is not None else None,
                    out_shapes=[tuple(m.shape) for m in many]
                    if out is None and isinstance(many, (list, tuple)) else [],
                    batch=self.batch,
                    is_tensor=lambda a: isinstance(a, torch.fx.Node),
                    tensor_inputs=lambda: len(self.sources(node)))

    def made(self, node: torch.fx.Node, made: Any, srcs: list[str] | None
             ) -> list[ImportedLayer] | str:
        """The layers of a converter's result: one (layer, params) or a chain of them, each fed
        by the one before; the first by ``srcs`` (None: every tensor argument). :data:`SAME`:
        the input itself."""
        if srcs is None:
            srcs = self.sources(node)
        if made is SAME:
            return srcs[0]
        if len(set(srcs)) != len(srcs):  # torch.cat([x, x]): one edge per port and source
            raise Unmapped(self.label(node), "the same tensor fed twice")
        layers: list[ImportedLayer] = []
        for step in made if isinstance(made, list) else [made]:
            if not isinstance(step, Made):
                step = Made(*step)
            name = self.fresh(step.name.format(label=self.label(node)))
            layers.append(ImportedLayer(name, step.layer, dict(step.params), srcs))
            srcs = [name]
        return layers
