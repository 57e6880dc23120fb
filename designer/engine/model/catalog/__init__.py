"""Every layer type, declared once, as data.

The palette, the inspector, shape inference, the model builder and code export all read the
entries in :data:`CATALOG`; nothing about a layer is written anywhere else.

A :class:`LayerSpec` says:

* what the layer is (id, display name, category, a one-line doc with the formula),
* its ports (a fixed number of inputs, or a variadic merge with a minimum),
* its parameters (:class:`Param`: type, default, range or choices, a doc line),
* how to turn parameters plus the incoming shapes into concrete constructor arguments
  (``resolve``: fills in sizes that follow from the input and rejects values that disagree),
* its exact output shape (``infer``) and parameter count (``count_params``): formulas, so that
  checking a design never imports torch,
* what its readers need, declared on every entry (``memory``: what autograd keeps for backward;
  ``inside``: how look-inside shows it; ``data_fit``: what the data-fit check needs;
  tests/engine/test_catalog_complete.py fails when an entry leaves one out),
* the torch.nn class it builds (``module_name``; ``module`` is the class, imported on first use),
  how its forward step is applied (``apply``), and the lines code export writes for that step
  (``code``).

The package holds the schema and registry (:mod:`.schema`), the naming rules (:mod:`.names`) and one
module per category, each calling :func:`register` once per layer. The categories are imported
here in palette order: the palette shows categories and layers in registration order.

Importing this package does not import torch (seconds); building or running a layer does.
Shapes here never include the batch dimension.
"""

# The categories, in palette order (registration order is the order the palette shows).
# isort: off
from . import io, core, convolution, pooling, normalization, shape, activation, recurrent, window, merge, maxvit, code  # noqa: F401
# isort: on
from .names import _IDENT as _IDENT
from .names import RESERVED_NAMES, TORCH_MODULE_ATTRIBUTES, attr_problem, name_problem
from .schema import (
    CATALOG,
    DECLARED_FIELDS,
    INSIDE_VIEWS,
    MAX_DIM,
    MAX_ELEMENTS,
    PARAM_TYPES,
    Catalog,
    CodeContext,
    DataFit,
    LayerError,
    LayerSpec,
    MemoryUse,
    Param,
    ParamError,
    Shape,
    apply_layer,
    code_lines,
    fmt_shape,
    make_module,
    module_kwargs,
    pair,
    param_path,
    register,
)
from .schema import (
    _show as _show,
)

__all__ = [
    "CATALOG",
    "DECLARED_FIELDS",
    "INSIDE_VIEWS",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "PARAM_TYPES",
    "RESERVED_NAMES",
    "TORCH_MODULE_ATTRIBUTES",
    "Catalog",
    "CodeContext",
    "DataFit",
    "LayerError",
    "LayerSpec",
    "MemoryUse",
    "Param",
    "ParamError",
    "Shape",
    "apply_layer",
    "attr_problem",
    "code_lines",
    "fmt_shape",
    "make_module",
    "module_kwargs",
    "name_problem",
    "pair",
    "param_path",
    "register",
]
