"""Kinds of node: what a node of a graph is, and the behaviour that differs between kinds.

A node's ``type`` is a catalog id (``Conv2d``, ``Input``, ``Output``) or ``Block``, the use of
another network as a layer (:mod:`.blocks`); the saved file keeps that type string. Its
**kind** (:attr:`Node.kind <designer.engine.model.graph.Node.kind>`, :func:`kind_of`) is one object per
sort of node: :data:`INPUT`, :data:`OUTPUT`, :data:`LAYER` or :data:`BLOCK_USE`. What is
particular to a block use (which network it uses, its arguments, its ports) lives on
:class:`BlockUseKind`, as orange-canvas-core's ``MetaNode`` is a node with its own behaviour, so
that no code outside compares a type with ``"Block"``.

``NodeKind.method`` names the method of :class:`~designer.engine.model.interpreter.GraphInterpreter`
a node of that kind is dispatched to (``input``, ``output``, ``layer``, ``block``), as
torch.fx's ``Interpreter.run_node`` dispatches on ``node.op``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .catalog import CATALOG, LayerSpec, Param

if TYPE_CHECKING:
    from .graph import Graph

#: The type string of a block use, as saved files write it.
BLOCK = "Block"
MAX_REPEAT = 1000

BLOCK_SPEC = LayerSpec(
    id=BLOCK,
    display_name="Block",
    category="Blocks",
    doc="A network of this project used as one layer: its Inputs are the ports, its Output the "
        "result; repeat runs copies in sequence.",
    params=(
        Param("block", "text", "", "The network used as this layer"),
        Param("repeat", "int", 1, "Copies run one after the other (numbered 0, 1, ... like "
              "nn.Sequential)", min=1, max=MAX_REPEAT),
        Param("args", "values", {}, "Values of the block's parameters at this use"),
        Param("first", "values", {}, "Values only the first copy takes (a stage's first block "
              "strides)"),
    ),
    variadic=True,
    min_inputs=1,
    key_params=("block", "repeat"),
    prefix="block",
)


class NodeKind:
    """What every node of one kind shares. One instance per kind (:data:`INPUT`, ...)."""

    #: the GraphInterpreter method a node of this kind is dispatched to
    method = "layer"
    is_block = False
    is_input = False
    is_output = False
    #: parameters that hold values of a block's parameters (a use's ``args`` and ``first``)
    argument_fields: tuple[str, ...] = ()

    @property
    def is_port(self) -> bool:
        """An Input or an Output: where data enters or leaves a network (no layer of its own)."""
        return self.is_input or self.is_output

    def spec(self, type_id: str) -> LayerSpec | None:
        """The parameter schema and ports of a node of this kind and ``type_id``."""
        return CATALOG.get(type_id)

    def block_name(self, params: Mapping[str, Any]) -> str | None:
        """The network a block use instantiates (None for any other kind)."""
        return None

    def definition(self, node: Any, library: Mapping[str, Graph] | None) -> Graph | None:
        """The network a block use instantiates, from ``library`` (None when unknown or no use)."""
        return None

    def input_count(self, node: Any, library: Mapping[str, Graph] | None) -> int | None:
        """How many input ports the node has when its definition decides (a block use: its
        definition's Inputs); None when its spec alone says."""
        return None

    def bare_parameter(self, type_id: str) -> bool:
        """Whether the node's weights are a bare tensor (a Parameter layer) rather than a module."""
        spec = CATALOG.get(type_id)
        return spec is not None and spec.bare_parameter

    def holds_module(self, type_id: str) -> bool:
        """Whether the built network holds a module (or a Parameter layer's tensor) for the node;
        a layer that only acts in forward (Reshape, Add) and the Inputs and Outputs hold none."""
        spec = CATALOG.get(type_id)
        return spec is not None and spec.module_name is not None

    def __repr__(self) -> str:
        return f"<{self.method} kind>"

    def __reduce__(self) -> tuple:
        return _kind_named, (self.method,)  # a copy or an unpickled node keeps the one instance


class InputKind(NodeKind):
    method = "input"
    is_input = True


class OutputKind(NodeKind):
    method = "output"
    is_output = True


class LayerKind(NodeKind):
    """A catalog layer (anything but an Input, an Output or a block use)."""

    method = "layer"


class BlockUseKind(NodeKind):
    """A network of the project used as one layer (:mod:`.blocks`): its parameters name the
    network (``block``), the copies (``repeat``) and the values of its parameters (``args``,
    ``first``); its input ports are its definition's Inputs."""

    method = "block"
    is_block = True
    argument_fields = ("args", "first")

    def spec(self, type_id: str) -> LayerSpec | None:
        return BLOCK_SPEC

    def block_name(self, params: Mapping[str, Any]) -> str | None:
        name = params.get("block")
        return name if isinstance(name, str) else None

    def definition(self, node: Any, library: Mapping[str, Graph] | None) -> Graph | None:
        if not library:
            return None
        return library.get(node.params.get("block"))

    def input_count(self, node: Any, library: Mapping[str, Graph] | None) -> int | None:
        definition = self.definition(node, library)
        return None if definition is None else len(definition.inputs())

    def bare_parameter(self, type_id: str) -> bool:
        return False

    def holds_module(self, type_id: str) -> bool:
        return True  # its network, built (an nn.Sequential of the copies when it repeats)


INPUT = InputKind()
OUTPUT = OutputKind()
LAYER = LayerKind()
BLOCK_USE = BlockUseKind()
_KINDS: dict[str, NodeKind] = {"Input": INPUT, "Output": OUTPUT, BLOCK: BLOCK_USE}


def _kind_named(method: str) -> NodeKind:
    return {k.method: k for k in (INPUT, OUTPUT, LAYER, BLOCK_USE)}[method]


def kind_of(type_id: Any) -> NodeKind:
    """The kind of a node of type ``type_id`` (any other text, known or not, is a layer)."""
    try:
        return _KINDS.get(type_id, LAYER)
    except TypeError:  # unhashable: no type at all (a document edited by hand)
        return LAYER


__all__ = [
    "BLOCK",
    "BLOCK_SPEC",
    "BLOCK_USE",
    "INPUT",
    "LAYER",
    "MAX_REPEAT",
    "OUTPUT",
    "BlockUseKind",
    "InputKind",
    "LayerKind",
    "NodeKind",
    "OutputKind",
    "kind_of",
]
