"""Graph -> ``torch.nn.Module``.

Submodules are named after the nodes, so the state_dict keys are those of the exported code
(``fc1.weight``). ``forward`` runs the layers in topological order; a graph with several Inputs
takes them as positional arguments in graph order, and several Outputs come back as a tuple.

A block use (designer.engine.model.blocks) is a submodule of its own: the block's network built with the
values of that use, or an ``nn.Sequential`` of its copies when it repeats, so the state_dict is
hierarchical (``layer1.0.conv1.weight``). A layer switched off by a block parameter is ``None``
(no weights) and passes its input through; a ``sequential`` network numbers its modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .catalog import CATALOG, apply_layer, make_module
from .catalog.activation import parameter_size
from .catalog.names import list_item
from .graph import Graph, Node, is_aux_output
from .interpreter import GraphInterpreter
from .modules import StoredBuffer
from .nodes import NodeKind, kind_of
from .shapes import Analysis, analyze


class BuildError(ValueError):
    """The graph has errors, so no model can be built; the message lists them."""


@dataclass(frozen=True)
class Step:
    node_id: str
    name: str
    type: str
    inputs: tuple[str, ...]  # node ids feeding this step, in port order
    kwargs: dict[str, Any]
    attr: str = ""  # the module attribute: the name, or its position in a sequential network
    frozen: bool = False  # not trainable (Node.frozen)
    # the kind of the node it runs (designer.engine.model.nodes), from its type; read every forward
    kind: NodeKind = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", kind_of(self.type))

    @property
    def disabled(self) -> bool:
        """Switched off by a block parameter: the input passes through."""
        return bool(self.kwargs.get("_disabled"))


class ModuleMaker(GraphInterpreter):
    """The module each step of a forward program holds, by kind: a layer's torch module (or a
    Parameter layer's tensor; None for one that only acts in forward), a block use's network
    built per copy; Inputs and Outputs hold none. Dispatches steps, walks no graph."""

    def __init__(self) -> None:
        super().__init__(None)

    def layer(self, step: Step, args: list[Any]) -> nn.Module | nn.Parameter | None:
        return make_module(CATALOG[step.type], step.kwargs)

    def block(self, step: Step, args: list[Any]) -> nn.Module:
        return block_module(step.kwargs)


class GraphModule(nn.Module):
    """A model built from a design. ``steps`` is the forward program; modules hang off ``self``."""

    def __init__(self, steps: list[Step], input_ids: list[str], output_ids: list[str],
                 aux_weights: tuple[float, ...] = ()) -> None:
        super().__init__()
        # Underscored names cannot collide with node names (those start with a letter).
        self._steps = steps
        self._input_ids = input_ids
        self._output_ids = output_ids
        # The last len(aux_weights) outputs are auxiliary: returned in training mode only; the
        # layers that only feed them do not run in eval mode (GoogLeNet's aux heads).
        self._aux_weights = tuple(aux_weights)
        self._main_count = len(output_ids) - len(self._aux_weights)
        self._aux_only = _feeding_only(steps, output_ids[self._main_count:]) if aux_weights \
            else frozenset()
        bare = []  # Parameter layers: their tensors hang off self (key <name>, not <name>.weight)
        maker = ModuleMaker()
        for step in steps:
            kind = step.kind
            is_bare = kind.bare_parameter(step.type)
            if is_bare:
                bare.append(step)
            if step.disabled:
                if is_bare:
                    self.register_parameter(step.attr, None)
                elif kind.holds_module(step.type):
                    self.add_module(step.attr, None)  # as torchvision's downsample = None
                continue
            module = maker.run_node(step, [])
            if "." in step.attr:  # an item of a list of modules (a Hugging Face layers.0)
                self._add_item(step.attr, module, step.frozen)
                continue
            if isinstance(module, StoredBuffer):  # a Tensor layer's buffer (key <name>)
                self.register_buffer(step.attr, module.tensor, persistent=module.persistent)
            elif isinstance(module, nn.Parameter):
                module.requires_grad_(not step.frozen)
                self.register_parameter(step.attr, module)
            elif module is not None:
                if step.frozen:
                    freeze(module)
                self.add_module(step.attr, module)
        self._bare = bare
        if bare:
            self._register_load_state_dict_pre_hook(_BareKeys(bare))

    def _add_item(self, attr: str, module: nn.Module, frozen: bool) -> None:
        """Put a layer's module at ``list.index``: item ``index`` of the nn.ModuleList ``list``
        (made on its first item), so its keys are the model's (``layers.0.mlp.weight``)."""
        head, index = list_item(attr) or (attr, -1)
        items = self._modules.get(head)
        if items is None:  # a list for numbered items, a plain container for named ones
            items = nn.ModuleList() if isinstance(index, int) else nn.Module()
            self.add_module(head, items)
        if frozen and isinstance(module, nn.Module):
            freeze(module)
        if isinstance(index, str) and type(items) is nn.Module and isinstance(module, nn.Module):
            items.add_module(index, module)
            return
        if not isinstance(module, nn.Module) or not isinstance(items, nn.ModuleList) \
                or index != len(items):
            raise ValueError(f"{attr}: items of a list of modules are layers made in order "
                             f"(0, 1, ...), here item {index} after {len(items)}")
        items.append(module)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values = self.forward_all(*inputs)
        ids = self._output_ids if self.training else self._output_ids[:self._main_count]
        outs = tuple(values[o] for o in ids)
        return outs[0] if len(outs) == 1 else outs

    def forward_all(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model and return every node's output by node id (for inspecting activations;
        in eval mode, not those of layers that only feed auxiliary outputs)."""
        if len(inputs) != len(self._input_ids):
            raise TypeError(f"the model takes {len(self._input_ids)} input(s), got {len(inputs)}")
        values: dict[str, torch.Tensor] = dict(zip(self._input_ids, inputs))
        skip = self._aux_only if not self.training else ()
        for step in self._steps:
            kind = step.kind
            if kind.is_input or step.node_id in skip:
                continue
            # a layer without inputs (Parameter) gets the first model input, for its batch size
            args = [values[i] for i in step.inputs] or list(inputs[:1])
            if step.disabled:
                values[step.node_id] = args[0]
                continue
            if kind.is_block:  # its network, a submodule
                values[step.node_id] = self._child(step.attr)(*args)
                continue
            spec = CATALOG[step.type]
            module = self._child(step.attr) if spec.module_name is not None else None
            values[step.node_id] = apply_layer(spec, module, args, step.kwargs)
        return values


    def _child(self, attr: str) -> Any:
        """A step's module (or bare tensor): ``self.<attr>``, or an item of a list (layers.0)."""
        if "." in attr:
            head, _, index = attr.partition(".")
            items = self._modules[head]
            return items[int(index)] if index.isdigit() else getattr(items, index)
        return getattr(self, attr)


class _BareKeys:
    """Loads a state_dict written before Parameter layers were bare tensors: ``<name>.weight``
    of the layer's shape becomes ``<name>`` (checkpoints and weights files of older designs)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps

    def __call__(self, state, prefix, *args) -> None:
        for step in self.steps:
            _upgrade_key(state, prefix, step)


def _upgrade_key(state: dict[str, Any], prefix: str, step: Step) -> None:
    key = prefix + step.attr
    old = key + ".weight"
    if key in state or old not in state or step.disabled:
        return
    size = parameter_size(step.kwargs)
    if isinstance(state[old], torch.Tensor) and state[old].numel() == math.prod(size):
        state[key] = state.pop(old).reshape(size)  # else torch's size-mismatch message


def upgrade_state_dict(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with the keys of Parameter layers as they are now (``<path>.weight`` of a
    file written before they were bare tensors -> ``<path>``), for checking keys before a load."""
    out = dict(state)
    for path, module in model.named_modules():
        for step in getattr(module, "_bare", ()) if isinstance(module, GraphModule) else ():
            _upgrade_key(out, f"{path}." if path else "", step)
    return out


def _feeding_only(steps: list[Step], aux_ids: list[str]) -> frozenset[str]:
    """The steps that only the auxiliary outputs ``aux_ids`` need (none of the main ones)."""
    producers = {s.node_id: s for s in steps}
    main = [s.node_id for s in steps if s.kind.is_output and s.node_id not in aux_ids]

    def ancestors(ids: list[str]) -> set[str]:
        seen, todo = set(), list(ids)
        while todo:
            nid = todo.pop()
            if nid not in seen:
                seen.add(nid)
                todo += producers[nid].inputs
        return seen

    return frozenset(ancestors(aux_ids) - ancestors(main))


def freeze(module: nn.Module) -> None:
    """Mark a layer or block not trainable: its parameters stop requiring gradients (the
    optimizer takes trainable ones only) and each submodule carries ``designer_frozen``, which
    the training setting ``freeze_bn_eval`` reads to keep frozen BatchNorm in eval mode."""
    for p in module.parameters():
        p.requires_grad_(False)
    for m in module.modules():
        m.designer_frozen = True


def is_frozen(module: nn.Module) -> bool:
    return bool(getattr(module, "designer_frozen", False))


def block_module(kwargs: dict[str, Any]) -> nn.Module:
    """The module of a block use: its network built per copy (an nn.Sequential of the copies when
    it repeats, numbered 0, 1, ... as torchvision's stages are)."""
    graph = kwargs["_graph"]
    copies = [_graph_module(graph, analysis) for _values, analysis in kwargs["_copies"]]
    return copies[0] if len(copies) == 1 else nn.Sequential(*copies)


def _graph_module(graph: Graph, analysis: Analysis) -> GraphModule:
    steps = plan(graph, analysis)
    inputs, outputs = ordered_io(graph, steps)
    return GraphModule(steps, inputs, outputs, aux_weights(graph, outputs))


def plan(graph: Graph, analysis: Analysis | None = None) -> list[Step]:
    """The forward program of a valid graph: one step per node in topological order."""
    analysis = analysis or analyze(graph)
    if not analysis.ok:
        lines = "\n".join(f"- {p.message}" for p in analysis.errors[:20])
        raise BuildError(f"The design has {len(analysis.errors)} error(s):\n{lines}")
    planner = Planner(graph, analysis)
    env = planner.run()
    return [env[nid] for nid in planner.order]


class Planner(GraphInterpreter):
    """The forward program: one :class:`Step` per node, in the analysis's order. Inputs and
    Outputs keep their names; in a ``sequential`` network a layer or block use is numbered as
    ``nn.Sequential`` numbers its modules."""

    def __init__(self, graph: Graph, analysis: Analysis) -> None:
        super().__init__(graph, analysis.order)
        self.analysis = analysis
        self.position = 0

    def node(self, node: Node, args: list[Step]) -> Step:  # an Input or an Output
        return self._step(node, args, node.module_attr)

    def layer(self, node: Node, args: list[Step]) -> Step:
        attr = node.module_attr
        if self.graph.sequential:
            attr, self.position = str(self.position), self.position + 1
        return self._step(node, args, attr)

    block = layer

    def _step(self, node: Node, args: list[Step], attr: str) -> Step:
        kwargs = dict(self.analysis.infos[node.id].kwargs or {})
        return Step(node.id, node.name, node.type, tuple(a.node_id for a in args), kwargs, attr,
                    node.frozen)


def ordered_io(graph: Graph, steps: list[Step]) -> tuple[list[str], list[str]]:
    """Input and Output node ids in the order forward() takes and returns them (auxiliary
    outputs after the main ones)."""
    order = {nid: i for i, nid in enumerate(graph.nodes)}
    inputs = sorted((s.node_id for s in steps if s.kind.is_input), key=order.__getitem__)
    outputs = sorted((s.node_id for s in steps if s.kind.is_output),
                     key=lambda nid: (is_aux_output(graph.nodes[nid]), order[nid]))
    return inputs, outputs


def aux_weights(graph: Graph, output_ids: list[str]) -> tuple[float, ...]:
    """The loss weights of the auxiliary outputs, in the order forward returns them."""
    return tuple(float(graph.nodes[o].params["aux_weight"]) for o in output_ids
                 if is_aux_output(graph.nodes[o]))


def build_model(graph: Graph, analysis: Analysis | None = None, seed: int | None = None
                ) -> GraphModule:
    """Build the design as a ``torch.nn.Module`` (raises :class:`BuildError` on an invalid graph).

    With ``seed`` the initial weights are reproducible.
    """
    steps = plan(graph, analysis)
    inputs, outputs = ordered_io(graph, steps)
    aux = aux_weights(graph, outputs)
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return GraphModule(steps, inputs, outputs, aux)
    return GraphModule(steps, inputs, outputs, aux)
