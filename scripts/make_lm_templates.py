"""Generate the language-model template projects (``designer/templates/char-lstm.dnn.json``,
``designer/templates/tiny-gpt.dnn.json``) from the definitions below.

    .venv/bin/python scripts/make_lm_templates.py            # rewrite the language-model templates
    .venv/bin/python scripts/make_lm_templates.py --check    # exit 1 if one is out of date

Both learn next-token prediction (``training.recipe = "language_model"``) on the shipped text
``designer/templates/data/tiny-stories.txt`` (offline; see ``designer/templates/data/README.md``),
one character at a time. The networks are written with the same builder and layout as ``scripts/make_templates.py``
(imported from it), and each Embedding and final Linear is sized to the text's vocabulary, read
from the file itself, so the output is reproducible byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_templates import Net, layout

from designer.engine.document.project import Project, project_to_json
from designer.engine.model.shapes import analyze
from designer.engine.train.data import check_model_data, load_dataset

TEMPLATES = ROOT / "designer" / "templates"
TEXT = "data/tiny-stories.txt"
SEQ_LENGTH = 64
DATASET = {"kind": "text", "path": TEXT, "task": "language_model", "tokenizer": "char",
           "seq_length": SEQ_LENGTH, "val_fraction": 0.1}
LM_TRAINING = {"recipe": "language_model", "lm_prompt": "The ", "lm_temperature": 0.8,
               "lm_sample_length": 200, "seed": 0}


def vocabulary_size() -> int:
    """Characters in the shipped text (every character of the file is in the vocabulary)."""
    return len(load_dataset(DATASET, TEMPLATES).vocab)


def char_lstm() -> dict[str, Any]:
    v = vocabulary_size()
    net = Net()
    net.chain(
        ("Input", "tokens", {"shape": [SEQ_LENGTH], "dtype": "int64"}),
        ("Embedding", "embed", {"num_embeddings": v, "embedding_dim": 32}),
        ("LSTM", "lstm", {"hidden_size": 256, "output": "sequence"}),
        ("Linear", "head", {"out_features": v}),
        ("Output", "logits"),
    )
    layout(net.graph)
    return {
        "id": "char-lstm",
        "order": 20,
        "name": "Character LSTM language model (offline)",
        "net": net,
        "teaches": "A language model: an LSTM reads a text one character at a time and, at every "
        "position, scores which character comes next; after each epoch it writes a sample of its "
        "own text.",
        "expected": "{epoch_note} The samples turn from random letters into spaced, word-like "
        "runs within a few epochs and into mostly real words (the, and, she, was) after about "
        "ten; validation perplexity falls from about 64 towards 5. {params} parameters.",
        "description": "Embedding({v}, 32) -> LSTM(hidden 256, the whole sequence) -> "
        "Linear(256, {v}): for each of the 64 characters of a window, the scores of the {v} "
        "possible next characters. Trained with next-token cross-entropy on "
        "designer/templates/data/tiny-stories.txt (59 KB of short stories written for this "
        "project), cut into windows of 64 characters; the last 10% of the text is validation. After each "
        "epoch the model continues the prompt 'The ' for 200 characters at temperature 0.8 "
        "(the LM tab and <run>/samples). The LSTM reads left to right, so each position sees "
        "only the characters before it: exactly what generation needs. {params} parameters.",
        "dataset": dict(DATASET),
        "training": {**LM_TRAINING, "optimizer": "adam", "lr": 0.003, "epochs": 20,
                     "batch_size": 32, "grad_clip": 1.0},
    }


def tiny_gpt() -> dict[str, Any]:
    v = vocabulary_size()
    d = 64
    net = Net()
    net.add("Input", "tokens", shape=[SEQ_LENGTH], dtype="int64")
    net.add("Embedding", "tok_embed", num_embeddings=v, embedding_dim=d)
    # a source layer (no input): one learned vector per position, added to the token vectors
    net.graph.add_node("Parameter", "pos_embed",
                       {"shape": [SEQ_LENGTH, d], "init": "normal", "std": 0.02}, id="pos_embed")
    net.add("Add", "embed", "tok_embed", "pos_embed")
    for i in (1, 2):
        net.add("TransformerEncoderLayer", f"block{i}", nhead=4, dim_feedforward=4 * d,
                dropout=0.1, activation="gelu", norm_first=True, causal=True)
    net.add("LayerNorm", "norm")
    net.add("Linear", "head", out_features=v)
    net.add("Output", "logits")
    layout(net.graph, ("block1",))
    return {
        "id": "tiny-gpt",
        "order": 21,
        "name": "Tiny GPT language model (offline)",
        "net": net,
        "teaches": "A decoder-only transformer, the shape of GPT: token embeddings plus learned "
        "position embeddings, causal self-attention blocks (each position attends only to "
        "earlier ones), a final LayerNorm and a Linear to the vocabulary.",
        "expected": "{epoch_note} Its samples become word-like more slowly than the LSTM's on "
        "so little text: spaced runs of letters after a few epochs, common words (the, and) "
        "after about 15-20. {params} parameters.",
        "description": "Token Embedding({v}, 64) + a learned position embedding (a Parameter of "
        "64 positions x 64, added) -> two pre-norm TransformerEncoderLayers (4 heads, "
        "feed-forward 256, GELU, dropout 0.1) with the causal mask, so each position sees only "
        "the characters before it -> LayerNorm -> Linear(64, {v}). Trained with next-token "
        "cross-entropy on designer/templates/data/tiny-stories.txt (59 KB of short stories "
        "written for this project) in windows of 64 characters; after each epoch it continues the prompt "
        "'The ' for 200 characters at temperature 0.8. Turning 'causal' off lets every position "
        "see the answer: the training loss collapses and the samples become nonsense. "
        "{params} parameters.",
        "dataset": dict(DATASET),
        "training": {**LM_TRAINING, "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.01,
                     "epochs": 30, "batch_size": 16, "grad_clip": 1.0},
    }


DEFINITIONS = [char_lstm, tiny_gpt]
#: Measured seconds per epoch on a shared 2-core CPU (``designer train --epochs 3``).
EPOCH_NOTES = {
    "char-lstm": "About 2-3 s per epoch, the sample included, on a shared 2-core CPU.",
    "tiny-gpt": "About 3 s per epoch, the sample included, on a shared 2-core CPU.",
}


def build(defn: dict[str, Any]) -> Project:
    graph = defn["net"].graph
    analysis = analyze(graph)
    if not analysis.ok:
        msgs = "; ".join(p.message for p in analysis.errors)
        raise SystemExit(f"template {defn['id']} does not check clean: {msgs}")
    ds = load_dataset(DATASET, TEMPLATES)
    check = check_model_data(graph, ds, {**defn["training"], "loss": "cross_entropy"}, analysis)
    if check.problems:
        raise SystemExit(f"template {defn['id']}: {'; '.join(p.message for p in check.problems)}")
    values = {"{params}": f"{analysis.total_params:,}", "{v}": str(len(ds.vocab)),
              "{epoch_note}": EPOCH_NOTES[defn["id"]]}

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    meta = {"id": defn["id"], "order": defn["order"], "teaches": defn["teaches"],
            "expected": fill(defn["expected"]), "generated_by": "scripts/make_lm_templates.py"}
    return Project(name=defn["name"], description=fill(defn["description"]),
                   networks={"model": graph}, dataset=defn["dataset"],
                   training=defn["training"], metadata=meta)


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    out = {}
    for fn in DEFINITIONS:
        defn = fn()
        out[TEMPLATES / f"{defn['id']}.dnn.json"] = project_to_json(build(defn))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed files instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8", newline="\n")
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
