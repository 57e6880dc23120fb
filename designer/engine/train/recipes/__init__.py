"""Recipes: the ways a project trains, one package each, found through one registry.

A recipe is declared once, as a :class:`RecipeSpec` registered under its id (``training.recipe``
in a project file): the networks it trains (its roles), its settings (declared with the same
schema as every other setting; :mod:`designer.engine.train.config` gathers them), the checks between its
networks, the dataset fit check and its one-click fixes, how a run is prepared (a
:class:`~designer.engine.train.recipes.base.Recipe` that the one trainer loop steps: pause, stop, the
NaN check, checkpoints and resuming are the trainer's, for every recipe), how its metrics read,
what its exported train.py writes and which live view the window shows (views are registered on
the UI side under the spec's ``view``). Code outside this package asks the spec (its members:
``accepts_aux_outputs``, ``uses``, ``hides``, ``view``, ``best``, :meth:`RecipeSpec.suggestion`,
...) and never compares a recipe's id (tests/engine/test_recipe_package.py checks).

Built-in recipes: :mod:`.supervised`, :mod:`.gan`, :mod:`.vae`, :mod:`.language_model`, each a
package: its declaration in ``__init__``, its exported train.py hooks in ``script.py`` (a
:class:`~designer.engine.train.recipes.script.TrainScript`: the one skeleton writes every recipe's
script), and as it grows its training, checks and events (see :mod:`.gan`). More come as
plug-ins: a package that declares an entry point in the group ``designer.recipes`` pointing at a
module (importing it registers its spec with :func:`register`).

Importing this package, and every recipe module, imports no torch: checking a design and
validating a file never pay for it. Preparing a run does.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...model.graph import Graph, Problem, is_aux_output
from ...model.shapes import analyze
from ..records import headline

if TYPE_CHECKING:
    from ..config import Setting
    from ..data.compat import DataCheck
    from .base import Recipe

#: The entry-point group of recipe plug-ins.
ENTRY_POINT_GROUP = "designer.recipes"
#: Recipes that come with the designer, in the order the settings form lists them.
BUILTIN_MODULES = ("supervised", "gan", "vae", "language_model")
#: The recipe of a project that names none (and what a run of an unknown recipe reads as).
DEFAULT_RECIPE = "supervised"


class RecipeError(ValueError):
    """A run cannot be prepared as designed; the message lists what to change.

    ``kind``: ``"design"`` (the networks have errors), ``"data"`` (the design does not fit the
    dataset; ``fixable`` when "Make the design fit" can repair it), ``"memory"`` or ``"build"``."""

    def __init__(self, message: str, kind: str = "design", fixable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.fixable = fixable


class UnknownRecipe(ValueError):
    pass


@dataclass(frozen=True)
class Role:
    """One network a recipe trains: the project's network named ``network`` (None: the network
    being trained, i.e. the current tab in the window or the project's first network)."""

    name: str
    network: str | None
    doc: str


class RecipeSpec:
    """The declaration of one recipe. Subclass it, set the class attributes, override what
    differs, and :func:`register` an instance.

    Attributes:
      ``id``, ``title``, ``doc``: the registry key, a display name, one line of help.
      ``roles``: the networks trained (see :class:`Role`).
      ``settings``: the recipe's own training settings (each with
      ``applies=(("recipe", (id,)),)``); ``hides``: shared settings it does not use (greyed out);
      ``uses``: the shared settings that only some recipes use that it does (initial weights,
      frozen BatchNorm in eval mode).
      ``accepts_aux_outputs``: its loss takes auxiliary outputs (``aux_weight`` > 0); the
      others refuse a design that has them.
      ``lr_keys``: which settings ``designer train --lr`` sets.
      ``evaluates``: whether a run's model makes predictions to evaluate (confusion matrix,
      "try it"); ``view``: the id of the window's live view (registered on the UI side);
      ``loss_label``: what its "loss" is, where it is a sum (History's curve labels).
      ``best``: what "best" means for it: a run's best.pt holds the epoch with the lowest
      ``best`` (validation, else training) and early stopping waits for it to improve. None:
      none of its figures says which epoch is best (``no_best_reason`` says why), so a run keeps
      last.pt only and early stopping is off (the window and the export say so).
    """

    id = ""
    title = ""
    doc = ""
    roles: tuple[Role, ...] = (Role("model", None, "the network trained"),)
    settings: tuple[Setting, ...] = ()
    hides: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    accepts_aux_outputs = False
    lr_keys: tuple[str, ...] = ("lr",)
    # the dataset kind a text file given to ``designer train --dataset`` is read as ("text": one
    # text to model); None: the design decides (a CSV of texts for token-id inputs)
    text_dataset: str | None = None
    evaluates = False
    view = ""
    loss_label = ""  # what the trainer's "loss" sums when that needs saying ("D + G loss")
    best: str | None = "loss"
    no_best_reason = ""

    def best_why(self, has_val: bool) -> str | None:
        """What put a run's best.pt there ("lowest validation loss"); None: no best.pt."""
        if self.best is None:
            return None
        return f"lowest {'validation' if has_val else 'training'} {self.best}"

    # -- networks and checks -------------------------------------------------------------------

    def networks(self, project, network: str | None = None) -> dict[str, Graph]:
        """Role -> graph for a project (missing networks are left out: :meth:`problems` says).
        ``network``: the network the user is training (the window's current tab)."""
        out: dict[str, Graph] = {}
        for role in self.roles:
            name = role.network or network or next(iter(project.networks), None)
            if name in project.networks:
                out[role.name] = project.networks[name]
        return out

    def trains_several(self) -> bool:
        return len(self.roles) > 1

    def problems(self, project) -> list[Problem]:
        """Problems between the networks (each network's own problems are reported apart)."""
        missing = [r for r in self.roles if r.network and r.network not in project.networks]
        if not missing:
            return []
        have = ", ".join(repr(n) for n in project.networks) or "none"
        need = " and ".join(repr(r.network) for r in self.roles if r.network)
        return [Problem("error", f"{self.title}: the {self.id} recipe trains networks named "
                        f"{need}; this project has {have}. Rename its networks, or choose "
                        f"another training.recipe.", (), f"{self.id}_networks")]

    def suggestion(self, project, current: RecipeSpec) -> Problem | None:
        """A hint for a project that trains with the ``current`` recipe although its networks
        are made for this one (None: no hint)."""
        return None

    def check_data(self, project, ds, training: dict[str, Any], network: str | None = None,
                   analyses: dict[str, Any] | None = None) -> DataCheck:
        """Does the design fit the dataset (with one-click fixes where it can)?"""
        raise NotImplementedError

    # -- a run ---------------------------------------------------------------------------------

    def prepare(self, project, ds, training: dict[str, Any], network: str | None = None,
                callback: Callable[[Any], None] | None = None) -> Recipe:
        """Check everything, build the networks with the training seed and return the training
        recipe (torch). Raises :class:`RecipeError` listing every error."""
        raise NotImplementedError

    def trained_model(self, recipe: Recipe):
        """The module whose predictions are evaluated after a run (``evaluates`` recipes)."""
        return recipe.modules().get("model")

    # -- words ---------------------------------------------------------------------------------

    def format_metrics(self, label: str, metrics: dict[str, Any]) -> str:
        """One phase's metrics in a line (``designer train``'s epoch lines)."""
        parts = [f"{label} loss {format_fixed(metrics.get('loss'), '.4f')}"]
        return " ".join(parts)

    def batch_text(self, metrics: dict[str, Any]) -> str:
        """The running metrics beside the progress bar (after the loss)."""
        return ""

    def describe_optimizer(self, training: dict[str, Any]) -> str:
        """How a run optimizes, in a few words (the History list and the log)."""
        return f"{training.get('optimizer', '?')} lr {format_general(training.get('lr'))}"

    def headline(self, history: list[dict[str, Any]]) -> str:
        """The figure that sums up a run's last epoch (its metrics records, as metrics.jsonl
        holds them) in the History list and ``designer runs`` ("" when none)."""
        return headline(history[-1] if history else None)

    def no_evaluation_note(self, run_dir) -> str:
        """Why a run of this recipe has no Evaluate (``evaluates`` is False), and what to look
        at instead."""
        return (f"A {self.title} run has no predictions to score; its previews of each epoch "
                f"are in {Path(run_dir) / 'samples'}")

    def describe_event(self, event: Any) -> str | None:
        """A line for ``designer train`` about one of this recipe's own events (None: nothing)."""
        return None

    # -- export --------------------------------------------------------------------------------

    def train_source(self, project, project_dir=None, format: bool = True) -> str | None:
        """The exported train.py for this recipe (None: this design has none yet)."""
        return None

    def __repr__(self) -> str:
        return f"<recipe {self.id!r}>"


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

_SPECS: dict[str, RecipeSpec] = {}
_loaded = False


def register(spec: RecipeSpec) -> RecipeSpec:
    """Add a recipe; an id that is taken is refused (a plug-in never replaces a recipe)."""
    if not spec.id or not spec.id.isidentifier():
        raise ValueError(f"a recipe id must be an identifier, got {spec.id!r}")
    if spec.id in _SPECS and _SPECS[spec.id] is not spec:
        raise ValueError(f"recipe {spec.id!r} is registered twice")
    _SPECS[spec.id] = spec
    _settings_changed()
    return spec


def unregister(recipe_id: str) -> None:
    """Remove a recipe (a test's own, once it is done); its settings leave the gathered ones."""
    if _SPECS.pop(recipe_id, None) is not None:
        _settings_changed()


def _settings_changed() -> None:
    """Gather the training settings again when they were gathered before this change."""
    config = sys.modules.get(f"{__package__.rsplit('.', 1)[0]}.config")
    if config is not None and hasattr(config, "TRAINING_SETTINGS"):
        config.gather_training_settings()


def _ensure_loaded() -> None:
    """Import the built-in recipe modules and the plug-ins (once)."""
    global _loaded
    if _loaded:
        return
    # The settings module gathers every recipe's settings and calls back here while it loads;
    # import it first so that call finds the registry whole.
    from .. import config  # noqa: F401
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    _load_plugins()


def _load_plugins() -> None:
    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001 - broken metadata of another package must not stop us
        return
    for ep in found:
        try:
            importlib.import_module(ep.value.split(":")[0])
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, never fatal
            print(f"designer: recipe plug-in {ep.name!r} ({ep.value}) failed to load: {exc}",
                  file=sys.stderr)


def specs() -> list[RecipeSpec]:
    """Every registered recipe, built-ins first."""
    _ensure_loaded()
    builtin = [_SPECS[n] for n in BUILTIN_MODULES if n in _SPECS]
    return builtin + [s for s in _SPECS.values() if s.id not in BUILTIN_MODULES]


def ids() -> list[str]:
    return [s.id for s in specs()]


def get(recipe_id: str) -> RecipeSpec:
    """The recipe registered as ``recipe_id``; an unknown id is an error naming the known ones."""
    _ensure_loaded()
    spec = _SPECS.get(recipe_id)
    if spec is None:
        raise UnknownRecipe(f"training.recipe: unknown recipe {recipe_id!r}; known recipes: "
                            f"{', '.join(ids())}")
    return spec


def recipe_id(project_or_training: Any) -> str:
    """The recipe id a project (or its ``training`` section) names; :data:`DEFAULT_RECIPE` if
    unset."""
    training = getattr(project_or_training, "training", project_or_training)
    value = training.get("recipe") if isinstance(training, dict) else None
    return value if isinstance(value, str) and value else DEFAULT_RECIPE


def recipe_of(project_or_training: Any) -> RecipeSpec:
    """The spec of a project's (or ``training`` section's) recipe (:class:`UnknownRecipe` if
    the id is not registered)."""
    return get(recipe_id(project_or_training))


def get_or_default(rid: Any) -> RecipeSpec:
    """The recipe registered as ``rid``; the default recipe for an unknown id or none (a
    run of a plug-in that is not installed, a form holding a value it refuses)."""
    try:
        return get(rid or DEFAULT_RECIPE)
    except (UnknownRecipe, TypeError):
        return get(DEFAULT_RECIPE)


def cross_network_problems(project) -> list[Problem]:
    """Problems between the networks of one project, by its recipe's checks."""
    try:
        spec = recipe_of(project)
    except UnknownRecipe as exc:
        return [Problem("error", str(exc), (), "unknown_recipe")]
    return spec.problems(project)


def prepare_run(project, ds, training: dict[str, Any] | None = None, network: str | None = None,
                callback: Callable[[Any], None] | None = None, run_dir=None
                ) -> tuple[RecipeSpec, Recipe]:
    """The one run-preparation step of the CLI and the window: the project's recipe checks the
    design against ``ds`` and builds its networks. ``training``: the settings to train with
    (default: the project's); ``network``: the network being trained (the window's tab);
    ``run_dir``: where previews go (``<run>/samples``). Raises :class:`RecipeError`."""
    from ..config import validate_training  # imported here: a module-level import would be circular

    training = validate_training(project.training if training is None else training)
    spec = get(training["recipe"])
    if not spec.accepts_aux_outputs:
        aux = [f"{n.name} ({role})" for role, g in spec.networks(project, network).items()
               for n in g.outputs() if is_aux_output(n)]
        if aux:
            raise RecipeError(f"the {spec.id} recipe has no loss for auxiliary outputs "
                              f"(aux_weight > 0): {', '.join(aux)}; set their aux_weight to 0 "
                              "or remove them")
    recipe = spec.prepare(project, ds, training, network=network, callback=callback)
    if run_dir is not None:
        recipe.sample_dir = Path(run_dir) / "samples"
    return spec, recipe


def design_errors(networks: dict[str, Graph], analyses: dict[str, Any] | None = None,
                  several: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Analyse each network; return the analyses and the error messages (prefixed with the
    role when a recipe trains several networks)."""
    analyses = dict(analyses or {})
    errors: list[str] = []
    for role, graph in networks.items():
        a = analyses.get(role) or analyze(graph)
        analyses[role] = a
        errors += [f"{role}: {p.message}" if several else p.message for p in a.errors]
    return analyses, errors


def error_list(head: str, errors: list[str], limit: int = 10) -> str:
    lines = "\n".join(f"- {m}" for m in errors[:limit])
    more = f"\n- ... and {len(errors) - limit} more" if len(errors) > limit else ""
    return f"{head} ({len(errors)} error(s)):\n{lines}{more}"


def format_general(v: Any) -> str:
    """A number as ``%g`` (a learning rate: "0.0002"); anything else as ``str``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return f"{v:g}"


def format_fixed(v: Any, fmt: str) -> str:
    """A number in ``fmt`` (".4f"); "nan" for anything that is not a finite number."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "nan"
    return format(v, fmt)


__all__ = [
    "BUILTIN_MODULES",
    "DEFAULT_RECIPE",
    "ENTRY_POINT_GROUP",
    "RecipeError",
    "RecipeSpec",
    "Role",
    "UnknownRecipe",
    "cross_network_problems",
    "design_errors",
    "error_list",
    "format_fixed",
    "format_general",
    "get",
    "get_or_default",
    "ids",
    "prepare_run",
    "recipe_id",
    "recipe_of",
    "register",
    "specs",
    "unregister",
]
