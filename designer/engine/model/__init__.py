"""The design itself: layer schema and catalog, graphs, blocks, shape inference, memory estimates, layout and building a torch module. Imports no other engine layer."""
