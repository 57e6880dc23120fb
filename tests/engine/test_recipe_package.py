"""A recipe is one declaration: nothing outside ``designer/engine/train/recipes/`` compares a recipe's
id, and a recipe declared once (here, in this test) is usable by the settings, the run
preparation, the trainer, the run history and the export without any other edit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from designer.engine.document.project import load_project
from designer.engine.train import config, recipes
from designer.engine.train.recipes.supervised import Supervised

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "designer"
RECIPES = PACKAGE / "engine" / "train" / "recipes"
TEMPLATES = PACKAGE / "templates"


def _strings(node: ast.AST) -> list[str]:
    """The string constants of an expression, looking into tuples, lists and sets."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def _about_a_task(node: ast.AST) -> bool:
    """``ds.task == "language_model"``: a dataset's task shares the language model's id."""
    return "task" in ast.unparse(node)


def recipe_id_uses(tree: ast.AST, ids: set[str]) -> list[tuple[int, str]]:
    """Where code compares against a recipe id, or passes one to a call (``get("gan")``,
    ``state.get("recipe", "supervised")``, ``applies=(("recipe", ("vae",)),)``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_about_a_task(s) for s in sides):
                continue
            if any(s in ids for side in sides for s in _strings(side)):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call):
            values = [*node.args, *(k.value for k in node.keywords if k.arg != "task")]
            hits = [s for v in values for sub in ast.walk(v) for s in _strings(sub)
                    if not _about_a_task(v)]
            if any(s in ids for s in hits):
                found.append((node.lineno, ast.unparse(node)[:120]))
    return found


def test_the_scan_finds_a_recipe_id_branch():
    ids = {"gan", "supervised"}
    code = ('if spec.id == "gan": pass\n'
            'x = get("supervised")\n'
            'ok = ds.task == "gan"\n'
            'y = spec.view\n')
    assert [line for line, _ in recipe_id_uses(ast.parse(code), ids)] == [1, 2]


def test_no_recipe_id_is_compared_outside_the_recipes_package():
    """Every branch on a recipe is a member of its declaration (RecipeSpec): code outside
    designer/engine/train/recipes asks the recipe, never compares its name."""
    ids = set(recipes.ids())
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if RECIPES in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{path.relative_to(ROOT)}:{line}: {text}"
                  for line, text in recipe_id_uses(tree, ids)]
    assert not found, "\n".join(found)


@pytest.fixture
def toy():
    """A recipe declared once: supervised training under another id, with a setting of its own."""

    class Toy(Supervised):
        id = "toy_recipe"
        title = "Toy"
        doc = "a test's recipe"
        settings = (config.Setting("toy_scale", "float", 2.0, "A toy setting", min=0.0,
                                   applies=(("recipe", ("toy_recipe",)),)),)

    spec = recipes.register(Toy())
    try:
        yield spec
    finally:
        recipes.unregister(spec.id)  # a test's recipe leaves no trace


def test_a_recipe_declared_once_is_usable_without_any_other_edit(toy, tmp_path):
    from designer.engine.interop.export import preview_sources
    from designer.engine.train.data import load_dataset
    from designer.engine.train.run_history import spec_of
    from designer.engine.train.training import Trainer

    training = config.validate_training({"recipe": toy.id})
    assert training["toy_scale"] == 2.0
    assert config.setting("training", "toy_scale").applies_to(training)
    assert config.setting("training", "init_weights").applies_to(training)  # uses, inherited
    assert toy.id in config.setting("training", "recipe").choices
    with pytest.raises(config.ConfigError):
        config.validate_training({"recipe": "supervised", "toy_scale": -1.0})

    project = load_project(TEMPLATES / "mlp-digits.dnn.json")
    project.training = {**project.training, "recipe": toy.id, "epochs": 1, "device": "cpu"}
    assert recipes.recipe_of(project) is toy
    ds = load_dataset(project.dataset, TEMPLATES)
    spec, recipe = recipes.prepare_run(project, ds)
    assert spec is toy
    result = Trainer(None, ds, config.validate_training(project.training), recipe=recipe,
                     run_dir=tmp_path / "run").run()
    assert result.status == "finished"
    assert spec_of({"recipe": toy.id, "training": project.training}) is toy
    sources = preview_sources(project, TEMPLATES, format=False)
    assert "def train(args" in sources["train.py"] and "toy_scale" in sources["train.py"]
