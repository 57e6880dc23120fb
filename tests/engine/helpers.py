"""Small graph builders shared by the engine tests."""

from __future__ import annotations

import torch

from designer.engine.graph import Graph


def single_layer(layer: str, params: dict | None = None, shapes=((3, 8, 8),),
                 dtype: str = "float32") -> tuple[Graph, str]:
    """Inputs (one per shape) -> one layer -> Output. Returns the graph and the layer's id."""
    g = Graph()
    node = g.add_node(layer, name="layer", params=params or {})
    for port, shape in enumerate(shapes):
        inp = g.add_node("Input", params={"shape": list(shape), "dtype": dtype})
        g.connect(inp.id, node.id, port)
    out = g.add_node("Output")
    g.connect(node.id, out.id)
    return g, node.id


def chain(*layers: tuple[str, dict], shape=(3, 8, 8), dtype: str = "float32") -> Graph:
    """Input -> layers in a row -> Output; layers are named after their prefix (fc1, conv1...)."""
    g = Graph()
    last = g.add_node("Input", params={"shape": list(shape), "dtype": dtype}).id
    for layer, params in layers:
        node = g.add_node(layer, params=params)
        g.connect(last, node.id)
        last = node.id
    out = g.add_node("Output")
    g.connect(last, out.id)
    return g


def sample_inputs(graph: Graph, batch: int = 2, generator: torch.Generator | None = None
                  ) -> list[torch.Tensor]:
    """A random batch for every Input of the graph, in the order forward() takes them."""
    xs = []
    for node in graph.inputs():
        shape = (batch, *node.params["shape"])
        if node.params["dtype"] == "int64":
            high = _vocab_below(graph, node.id)
            xs.append(torch.randint(0, high, shape, generator=generator))
        else:
            xs.append(torch.randn(shape, generator=generator))
    return xs


def _vocab_below(graph: Graph, input_id: str) -> int:
    """The smallest vocabulary of the Embeddings fed (directly or not) by an int64 Input."""
    sizes = [graph.nodes[n].params["num_embeddings"] for n in graph.downstream([input_id])
             if graph.nodes[n].type == "Embedding"]
    return min(sizes, default=2)
