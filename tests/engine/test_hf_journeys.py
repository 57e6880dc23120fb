"""Journeys of issue 24, "Use them": fine-tune an imported Hugging Face BERT as a text classifier
on a CSV of texts, and train an imported GPT-2 with the language-model recipe on a text file,
with ``designer import`` and ``designer train`` (the window's journeys are in
tests/ui/test_hf_journeys_ui.py).

The imported models hold sizes for their own 16 token ids and carry their weights
(``--weights``): the data is cut to fit them (the dataset's length and vocabulary), never the
design. Tiny configs (1 layer, hidden 32), a few dozen rows, a few epochs: seconds each."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest
import torch

from designer.cli import main
from designer.engine.document.project import Project, load_project, save_project
from designer.engine.services.train_project import prepare_trainer
from designer.engine.train.config import validate_training
from designer.engine.train.data import DatasetFix, check_model_data, load_dataset
from designer.engine.train.data.compat import token_embeddings
from designer.engine.train.recipes import recipe_of
from designer.engine.train.training import split_outputs

from .helpers import chain, train_exported_and_in_designer

BERT_CONFIG = ("num_hidden_layers=1", "hidden_size=32", "num_attention_heads=2",
               "intermediate_size=64", "vocab_size=100", "max_position_embeddings=32",
               "num_labels=2")
GPT2_CONFIG = ("n_layer=1", "n_embd=32", "n_head=2", "vocab_size=100", "n_positions=32")
POSITIVE = ["good", "great", "nice", "happy", "love", "wonderful", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "sad", "hate", "terrible", "horrible", "ugly"]
FILLER = ["the", "a", "movie", "film", "was", "it", "this", "and", "very", "quite"]
STORY = " ".join("The cat sat on the mat. The dog ran to the park." for _ in range(30))


def _import(spec: str, config: tuple[str, ...], out: Path) -> Path:
    args = ["import", spec, "-o", str(out), "--weights"]
    for item in config:
        args += ["--config", item]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    """The two imported projects (with their weights files), shared by the tests: copied per
    test by :func:`_copy`."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("imported")
    return {"bert": _import("transformers:BertForSequenceClassification", BERT_CONFIG,
                            folder / "bert.dnn.json"),
            "gpt2": _import("transformers:GPT2LMHeadModel", GPT2_CONFIG,
                            folder / "gpt2.dnn.json")}


def _copy(source: Path, folder: Path, **changes) -> Path:
    """The imported project and its weights in ``folder``; ``changes``: sections updated."""
    project = load_project(source)
    for section, values in changes.items():
        setattr(project, section, {**getattr(project, section), **values})
    weights = source.with_name(source.name.replace(".dnn.json", ".weights.pt"))
    (folder / weights.name).write_bytes(weights.read_bytes())
    return save_project(project, folder / source.name, backup=False)


def reviews(path: Path, rows: int = 64, extra_words: int = 0) -> Path:
    """Short reviews whose label is said by two of their six words (pos/neg), the rest filler;
    ``extra_words``: that many more distinct words (a vocabulary larger than the model's)."""
    rng = random.Random(0)
    extra = [f"word{i}" for i in range(extra_words)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["text", "label"])
        for i in range(rows):
            label = i % 2
            words = rng.sample(FILLER, 4) + rng.sample(POSITIVE if label else NEGATIVE, 2)
            words += extra[i * 3:(i + 1) * 3]
            rng.shuffle(words)
            out.writerow([" ".join(words), "pos" if label else "neg"])
    return path


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _check(project_file: Path, dataset: dict):
    project = load_project(project_file)
    training = validate_training(project.training)
    ds = load_dataset(dataset, project_file.parent)
    return recipe_of(training).check_data(project, ds, training)


# ---------------------------------------------------------------------------------------------
# BERT: a text classifier from a CSV of texts
# ---------------------------------------------------------------------------------------------


def test_fine_tune_an_imported_bert_on_a_csv_of_texts_with_designer_train(
        imported, tmp_path, capsys):
    project = _copy(imported["bert"], tmp_path)
    data = reviews(tmp_path / "reviews.csv")
    run = tmp_path / "run"
    rc = main(["train", str(project), "--dataset", str(data), "--epochs", "4", "--batch-size",
               "8", "--lr", "0.003", "--device", "cpu", "--out", str(run)])
    err = capsys.readouterr().err
    assert rc == 0, err
    # the CSV is read as texts and labels, cut to the 16 token ids the model takes
    assert "note: dataset.max_length set to 16 to fit the design" in err
    assert "reviews.csv: 51 training + 13 validation samples of 16 int64, 2 classes" in err
    assert "initial weights bert.weights.pt: loaded 25 of 25 tensors" in err
    history = _history(run)
    losses = [h["train"]["loss"] for h in history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert history[-1]["val"]["accuracy"] > 0.5  # above chance on two balanced classes
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["kind"] == "csv_text" and config["dataset"]["max_length"] == 16
    assert len(config["init_weights"]["loaded"]) == 25


def test_the_fit_check_cuts_the_data_to_an_imported_bert(imported, tmp_path):
    """The design's sizes hold for 16 token ids and 100 embeddings: the check asks for the
    dataset's max_length and vocab_size (DatasetFix), never a new Input shape."""
    project = _copy(imported["bert"], tmp_path)
    data = reviews(tmp_path / "reviews.csv", extra_words=150)
    dataset = {"kind": "csv_text", "path": data.name}
    check = _check(project, dataset)
    assert not check.ok and check.fixes == []
    assert check.dataset_fixes == [DatasetFix("max_length", 16), DatasetFix("vocab_size", 100)]
    length, vocab = check.errors
    assert length.message == (
        "the dataset gives sequences of 64 token ids but input takes 16, and the design's "
        "sizes hold for 16 only (an imported model): set dataset.max_length to 16")
    assert vocab.message.startswith(
        "bert > embeddings > word_embeddings has 100 embeddings, but the vocabulary has ")
    assert "set dataset.vocab_size to 100" in vocab.message
    assert vocab.node_ids == ("bert",)  # pinned on the block use of the trained network
    check = _check(project, {**dataset, "max_length": 16})
    assert check.dataset_fixes == [DatasetFix("vocab_size", 100)]
    assert _check(project, {**dataset, "max_length": 16, "vocab_size": 100}).problems == []
    # only the embedding of the token ids counts (not the positions', 32, nor token types', 2)
    graph = load_project(project).networks["model"]
    assert [(n.name, where) for n, where in token_embeddings(graph, "input")] == [
        ("word_embeddings", ("bert", "embeddings"))]


def test_a_dataset_setting_the_project_chose_is_reported_not_changed(imported, tmp_path, capsys):
    data = reviews(tmp_path / "reviews.csv")
    project = _copy(imported["bert"], tmp_path, dataset={
        "kind": "csv_text", "path": data.name, "max_length": 24})
    rc = main(["train", str(project), "--epochs", "1", "--device", "cpu",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "error: the dataset gives sequences of 24 token ids but input takes 16" in err
    assert "set dataset.max_length to 16" in err and "note: dataset" not in err


# ---------------------------------------------------------------------------------------------
# GPT-2: the language-model recipe on a text file
# ---------------------------------------------------------------------------------------------


def test_train_an_imported_gpt2_with_the_language_model_recipe(imported, tmp_path, capsys):
    project = _copy(imported["gpt2"], tmp_path, training={"recipe": "language_model",
                                                           "lm_sample_length": 40})
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    run = tmp_path / "run"
    rc = main(["train", str(project), "--dataset", str(story), "--epochs", "3", "--batch-size",
               "8", "--lr", "0.003", "--device", "cpu", "--out", str(run)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "note: dataset.seq_length set to 16 to fit the design" in err
    assert "next-token prediction over 17 tokens" in err
    # the model's vocabulary of 100 is larger than the text's: a warning, never a new head
    assert "warning: the model scores 100 tokens at each position, the text's vocabulary has 17" \
        in err
    assert "initial weights gpt2.weights.pt: loaded 17 of 17 tensors" in err
    assert "sample after epoch 3" in err
    history = _history(run)
    losses = [h["train"]["loss"] for h in history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert history[-1]["val"]["loss"] < math.log(17)  # better than guessing among 17 tokens
    sample = (run / "samples" / "epoch_003.txt").read_text(encoding="utf-8")
    assert sample.startswith("The ") and len(sample) == len("The ") + 40 + 1
    assert set(sample[4:-1]) <= set(STORY)  # only the text's characters are sampled


def test_without_its_weights_the_gpt2_head_is_fitted_to_the_text(imported, tmp_path):
    """No weights to keep (no training.init_weights): the head is the design's to change, and
    the fix sets lm_head's out_features to the text's vocabulary (as for a hand-made design)."""
    project = _copy(imported["gpt2"], tmp_path, training={"recipe": "language_model"})
    loaded = load_project(project)
    loaded.training.pop("init_weights")
    save_project(loaded, project, backup=False)
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    check = _check(project, {"kind": "text", "path": story.name, "seq_length": 16})
    assert not check.ok
    assert [(f.param, f.value) for f in check.fixes] == [("out_features", 17)]
    assert "set lm_head's out_features to 17" in check.errors[0].message


# ---------------------------------------------------------------------------------------------
# several Outputs: the first is trained
# ---------------------------------------------------------------------------------------------


def test_a_design_with_several_outputs_trains_its_first():
    g = chain(("Linear", {"out_features": 3}), shape=(4,))
    last = next(e.src for e in g.edges if g.nodes[e.dst].type == "Output")
    extra = g.add_node("Output", name="hidden")
    g.connect(last, extra.id)
    ds = load_dataset({"kind": "synthetic", "name": "spirals"})
    g.set_params(g.inputs()[0].id, {"shape": list(ds.sample_shape)})
    g.set_params(last, {"out_features": ds.num_classes})
    check = check_model_data(g, ds, {})
    assert check.ok, check.problems
    (warning,) = check.problems
    assert warning.message == ("the design has 2 Outputs: training uses the first, output1, and "
                               "leaves hidden out of the loss")

    project = Project(name="two outputs", networks={"model": g},
                      dataset={"kind": "synthetic", "name": "spirals"},
                      training={"epochs": 2, "lr": 0.01, "device": "cpu"})
    _, _, trainer = prepare_trainer(project, ds, validate_training(project.training),
                                    run_dir=None)
    result = trainer.run()
    assert result.status == "finished" and len(trainer.history) == 2
    assert trainer.history[-1]["train"]["loss"] < trainer.history[0]["train"]["loss"]

    class Two(torch.nn.Module):
        _aux_weights = (0.3,)

    model = Two()
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    assert split_outputs(model, a) == (a, ())
    main_out, aux = split_outputs(model, (a, b, c))  # training: two main, one auxiliary
    assert main_out is a and aux == (c,)
    model.eval()
    main_out, aux = split_outputs(model, (a, b))  # eval: the auxiliary one is not returned
    assert main_out is a and aux == ()


def test_the_exported_train_py_trains_the_imported_gpt2_as_the_designer_does(
        imported, tmp_path):
    """train.py of the language-model recipe loads the imported weights too (and samples the
    text's tokens only): one epoch ends with the designer's tensors, bit for bit."""
    (tmp_path / "story.txt").write_text(STORY, encoding="utf-8")
    project_file = _copy(imported["gpt2"], tmp_path, dataset={
        "kind": "text", "path": "story.txt", "seq_length": 16}, training={
        "recipe": "language_model", "epochs": 1, "batch_size": 8, "lm_sample_length": 20,
        "device": "cpu"})
    src, _, _ = train_exported_and_in_designer(load_project(project_file), tmp_path)
    assert "load_init_weights(" in src and "[0, -1, : len(data.vocab)]" in src


def test_a_hand_made_design_with_errors_is_offered_its_input_shape(tmp_path):
    """Only a design without errors of its own is probed for the length it can take: one with
    an error is offered the dataset's length as before (Input.shape)."""
    (tmp_path / "story.txt").write_text(STORY, encoding="utf-8")
    ds = load_dataset({"kind": "text", "path": str(tmp_path / "story.txt"), "seq_length": 12})
    v = len(ds.vocab)
    g = chain(("Embedding", {"num_embeddings": v, "embedding_dim": 8}),
              ("Linear", {"in_features": 5, "out_features": v}), shape=(20,), dtype="int64")
    check = check_model_data(g, ds, {})
    assert [(f.param, f.value) for f in check.fixes] == [("shape", [12])]
    assert check.dataset_fixes == []
