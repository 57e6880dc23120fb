"""Hugging Face transformers and timm models import exactly (#24): built from small configs with
random weights (nothing downloaded), imported, built and exported to model.py; the design and the
exported module load the model's state_dict strictly and give its outputs, at a batch size other
than the import's probe."""

from __future__ import annotations

import re

import pytest
import torch

from designer.engine.interop.codegen import model_source, network_class_names
from designer.engine.interop.importing import import_model
from designer.engine.interop.importing.report import ImportReport
from designer.engine.model.build import build_model

from .helpers import load_module

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

_TEXT = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2,
         "intermediate_size": 64, "vocab_size": 100, "max_position_embeddings": 64}


def _first(out):
    """The main result: a ModelOutput's first tensor (logits), a tuple's first item."""
    if isinstance(out, dict):
        return next(v for v in out.values() if isinstance(v, torch.Tensor))
    return out[0] if isinstance(out, tuple) else out


def _exactly(model, shape, dtype, tmp_path, name) -> tuple[object, ImportReport]:
    model.eval()
    torch.manual_seed(0)
    project, report = import_model(model, shape, name=name, input_dtype=dtype)
    assert report.ok, report.summary()
    built = build_model(project.networks["model"]).eval()
    state = model.state_dict()
    assert set(built.state_dict()) == set(state)
    built.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(1)
    x = (torch.randint(0, 100, (3, *shape), generator=g) if dtype == "int64"
         else torch.randn(3, *shape, generator=g))
    with torch.no_grad():
        expected = _first(model(x))
        torch.testing.assert_close(_first(built(x)), expected, atol=1e-5, rtol=1e-5)
    mod = load_module(model_source(project), tmp_path, "exported_" + re.sub(r"\W", "_", name))
    exported = getattr(mod, network_class_names(project)["model"])().eval()
    exported.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(_first(exported(x)), expected, atol=1e-5, rtol=1e-5)
    return project, report


def test_gpt2_imports_exactly_with_named_outputs(tmp_path):
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64))
    project, report = _exactly(model, (16,), "int64", tmp_path, "gpt2")
    assert report.input_dtype == "int64" and report.via_export
    assert next(iter(report.outputs)) == "logits"  # the first Output: what a loss reads
    inputs = project.networks["model"].inputs()
    assert [n.params.get("dtype") for n in inputs] == ["int64"]


def test_bert_imports_exactly_as_editable_layers(tmp_path):
    model = transformers.BertForSequenceClassification(transformers.BertConfig(**_TEXT))
    project, report = _exactly(model, (16,), "int64", tmp_path, "bert")
    types = {n.type for g in project.networks.values() for n in g.nodes.values()}
    assert {"Embedding", "LayerNorm", "Linear"} <= types
    assert report.editable_parameters == report.parameters  # every weight in an editable layer
    assert 0 < report.functions < report.editable_layers


def test_llama_imports_exactly_with_its_decoder_layers_at_their_keys(tmp_path):
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**_TEXT,
                                                                   num_key_value_heads=1))
    project, report = _exactly(model, (16,), "int64", tmp_path, "llama")
    top = project.networks["model"]
    # the child called model keeps its attribute (its keys model.layers.0...)
    assert [n.attr for n in top.nodes.values() if n.kind.is_block] == ["model"]
    inner = next(g for name, g in project.networks.items() if name.startswith("LlamaModel"))
    assert [n.attr for n in inner.nodes.values() if n.attr and n.attr.startswith("layers.")] \
        == ["layers.0", "layers.1"]
    assert report.editable_parameters / report.parameters > 0.9


def test_vit_imports_exactly(tmp_path):
    model = transformers.ViTForImageClassification(transformers.ViTConfig(
        num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
        image_size=32, patch_size=8, num_labels=3))
    _exactly(model, (3, 32, 32), "float32", tmp_path, "vit")


@pytest.mark.parametrize("name", ["resnet10t", "convnext_atto", "efficientnet_b0",
                                  "vit_tiny_patch16_224", "mobilenetv3_small_050"])
def test_timm_families_import_exactly(name, tmp_path):
    timm = pytest.importorskip("timm")
    kwargs = {"img_size": 32} if name.startswith("vit") else {}
    model = timm.create_model(name, pretrained=False, num_classes=5, **kwargs)
    _exactly(model, (3, 32, 32), "float32", tmp_path, name)
