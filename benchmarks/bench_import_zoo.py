"""Import zoo (issue 24): one small model per timm family and a list of Hugging Face models,
each imported with ``designer import`` and checked as bench_import.py checks torchvision's.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_import_zoo.py            # every model
    ... bench_import_zoo.py --only timm:resnet --only hf:gpt2   # some (a key, a family or model name)
    ... bench_import_zoo.py --timeout 120 --jobs 1 --json zoo.json --markdown
    ... bench_import_zoo.py --list                               # the models, nothing run
    ... bench_import_zoo.py --from zoo.json --markdown           # a saved run's report again

Every model is built with random weights (timm ``pretrained=False, num_classes=10``;
transformers from tiny configs: 2 layers, hidden 32, vocab 100, 16 tokens, images 32-64; nothing
is downloaded), then every parameter is moved by noise and BatchNorm statistics are drawn (so
zero-initialised weights count too), and imported in a subprocess of its own (``--timeout``
seconds: a hang or a crash stops only that model). For each model:

- imported, else the first causes (the ImportFailed report's first entries) and the exception;
- editable share: layer nodes that are not "Function" (kept as code) over all layer nodes, over
  every network (Inputs, Outputs and block uses not counted), and the share of the parameters
  that sit in editable layers (each parameter of the built design attributed to its node; a
  "Tensor" layer's parameters, used whole by code, are not), beside the import report's count;
- params equal (design vs model); the model's state_dict loaded with ``strict=True`` into the
  design and into the exported model.py, keys unchanged (the same set of keys);
- outputs equal: every output tensor within 1e-5 x max(1, the output's largest magnitude), eval
  mode, a batch of two random inputs (int64 token ids for text models), design and model.py;
- import time: ``import_model`` alone, after the model is built (seconds).

Prints one row per model, the totals and a histogram of the first failure causes (numbers,
paths and module names stripped; the most common first, with the models and the places in
their code), then how many models report each cause anywhere in their import reports.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The catalog layer an operation the catalog lacks is kept as (issue 24); not editable.
FUNCTION = "Function"
#: The layer of a tensor used whole (a parameter or buffer a Function reads, issue 24): an
#: editable node, but the parameters it holds are not in an editable layer (as the import
#: report counts them).
TENSOR = "Tensor"
TOLERANCE = 1e-5
RESULT_MARK = "ZOO-RESULT "

# One small model per timm family: (family, model name, extra create_model arguments, input
# side). The smallest variant of each family (by parameter count, timm 1.0.31), at 64x64 where
# the model allows (img_size=64 passed where it is built for one size), else at the smallest
# size that runs.
TIMM: list[tuple[str, str, dict[str, Any], int]] = [
    ("resnet", "resnet10t", {}, 64),
    ("seresnet", "seresnet18", {}, 64),
    ("ecaresnet", "ecaresnet26t", {}, 64),
    ("resnext", "resnext26ts", {'img_size': 64}, 64),
    ("resnetblur", "resnetblur18", {}, 64),
    ("resnetaa", "resnetaa34d", {}, 64),
    ("resnetrs", "resnetrs50", {}, 64),
    ("resnetv2", "resnetv2_18", {}, 64),
    ("regnetx", "regnetx_002", {}, 64),
    ("regnety", "regnety_002", {}, 64),
    ("regnetz", "regnetz_005", {}, 64),
    ("gernet", "gernet_s", {'img_size': 64}, 64),
    ("repvgg", "repvgg_a0", {'img_size': 64}, 64),
    ("mobileone", "mobileone_s1", {'img_size': 64}, 64),
    ("botnet", "botnet26t_256", {'img_size': 64}, 64),
    ("halonet", "halonet_h1", {}, 256),
    ("lambda_resnet", "lambda_resnet26t", {'img_size': 64}, 64),
    ("efficientnet", "efficientnet_b0", {}, 64),
    ("efficientnetv2", "efficientnetv2_rw_t", {}, 64),
    ("mixnet", "mixnet_s", {}, 64),
    ("mnasnet", "mnasnet_small", {}, 64),
    ("mobilenetv2", "mobilenetv2_035", {}, 64),
    ("fbnetc", "fbnetc_100", {}, 64),
    ("spnasnet", "spnasnet_100", {}, 64),
    ("tinynet", "tinynet_e", {}, 64),
    ("mobilenetv3", "mobilenetv3_small_050", {}, 64),
    ("mobilenetv4", "mobilenetv4_conv_small_035", {}, 64),
    ("lcnet", "lcnet_035", {}, 64),
    ("fbnetv3", "fbnetv3_b", {}, 64),
    ("hardcorenas", "hardcorenas_a", {}, 64),
    ("ghostnet", "ghostnet_050", {}, 64),
    ("ghostnetv2", "ghostnetv2_100", {}, 64),
    ("repghost", "repghostnet_050", {}, 64),
    ("rexnet", "rexnet_100", {}, 64),
    ("lcnetv2", "lcnetv2_small", {}, 64),
    ("densenet", "densenet121", {}, 64),
    ("dla", "dla46x_c", {}, 64),
    ("dpn", "dpn48b", {}, 64),
    ("hrnet", "hrnet_w18_small", {}, 64),
    ("inception_v3", "inception_v3", {}, 128),
    ("inception_v4", "inception_v4", {}, 128),
    ("inception_resnet_v2", "inception_resnet_v2", {}, 128),
    ("xception", "xception41p", {}, 64),
    ("legacy_xception", "legacy_xception", {}, 64),
    ("nfnet", "nfnet_l0", {}, 64),
    ("dm_nfnet", "dm_nfnet_f0", {}, 64),
    ("nf_regnet", "nf_regnet_b0", {}, 64),
    ("nf_resnet", "nf_resnet26", {}, 64),
    ("selecsls", "selecsls42", {}, 64),
    ("senet", "legacy_seresnet18", {}, 64),
    ("skresnet", "skresnet18", {}, 64),
    ("resnest", "resnest14d", {}, 64),
    ("res2net", "res2net50_14w_8s", {}, 64),
    ("tresnet", "tresnet_m", {}, 64),
    ("vgg", "vgg11", {}, 64),
    ("cspnet", "cspresnet50", {}, 64),
    ("cs3darknet", "cs3darknet_focus_s", {}, 64),
    ("darknet", "darknet17", {}, 64),
    ("cspnext", "cspnext_tiny", {}, 64),
    ("vovnet", "ese_vovnet19b_slim_dw", {}, 64),
    ("hgnet", "hgnet_tiny", {}, 64),
    ("hgnetv2", "hgnetv2_b0", {}, 64),
    ("convnext", "convnext_zepto_rms", {}, 64),
    ("convnextv2", "convnextv2_atto", {}, 64),
    ("convmixer", "convmixer_768_32", {}, 64),
    ("inception_next", "inception_next_atto", {}, 64),
    ("mambaout", "mambaout_femto", {}, 64),
    ("poolformer", "poolformer_s12", {}, 64),
    ("poolformerv2", "poolformerv2_s12", {}, 64),
    ("convformer", "convformer_s18", {}, 64),
    ("caformer", "caformer_s18", {}, 64),
    ("edgenext", "edgenext_xx_small", {}, 64),
    ("efficientformer", "efficientformer_l1", {}, 224),
    ("efficientformerv2", "efficientformerv2_s0", {'img_size': 64}, 64),
    ("efficientvit_mit", "efficientvit_b0", {}, 64),
    ("efficientvit_msra", "efficientvit_m0", {'img_size': 64}, 64),
    ("efficientvim", "efficientvim_m1", {}, 64),
    ("fasternet", "fasternet_t0", {}, 64),
    ("fastvit", "fastvit_t8", {}, 64),
    ("mobilevit", "mobilevit_xxs", {'img_size': 64}, 64),
    ("mobilevitv2", "mobilevitv2_050", {'img_size': 64}, 64),
    ("repvit", "repvit_m1", {'img_size': 64}, 64),
    ("shvit", "shvit_s1", {}, 64),
    ("starnet", "starnet_s050", {}, 64),
    ("swiftformer", "swiftformer_xs", {'img_size': 64}, 64),
    ("iformer", "iformer_t", {}, 64),
    ("lowformer", "lowformer_b0", {}, 64),
    ("rdnet", "rdnet_tiny", {}, 64),
    ("cpubone", "cpubone_nano", {}, 64),
    ("csatv2", "csatv2", {}, 64),
    ("vit", "vit_tiny_patch16_224", {'img_size': 64}, 64),
    ("deit", "deit_tiny_patch16_224", {'img_size': 64}, 64),
    ("vit_hybrid", "vit_tiny_r_s16_p8_224", {'img_size': 64}, 64),
    ("vit_relpos", "vit_relpos_small_patch16_224", {'img_size': 64}, 64),
    ("samvit", "samvit_base_patch16_224", {'img_size': 64}, 64),
    ("flexivit", "flexivit_small", {'img_size': 64}, 64),
    ("naflexvit", "naflexvit_base_patch16_gap", {'img_size': 64}, 64),
    ("eva", "eva02_tiny_patch14_224", {'img_size': 64}, 64),
    ("beit", "beit_base_patch16_224", {'img_size': 64}, 64),
    ("cait", "cait_xxs24_224", {'img_size': 64}, 64),
    ("coat", "coat_tiny", {'img_size': 64}, 64),
    ("convit", "convit_tiny", {'img_size': 64}, 64),
    ("crossvit", "crossvit_tiny_240", {}, 64),
    ("davit", "davit_tiny", {}, 64),
    ("focalnet", "focalnet_tiny_srf", {}, 64),
    ("gcvit", "gcvit_xxtiny", {'img_size': 64}, 64),
    ("hiera", "hiera_tiny_224", {'img_size': 64}, 64),
    ("hieradet", "hieradet_small", {}, 64),
    ("levit", "levit_128s", {'img_size': 64}, 64),
    ("maxvit", "maxvit_pico_rw_256", {'img_size': 64}, 64),
    ("coatnet", "coatnet_pico_rw_224", {'img_size': 64}, 64),
    ("maxxvit", "maxxvit_rmlp_nano_rw_256", {'img_size': 64}, 64),
    ("mixer", "mixer_s16_224", {'img_size': 64}, 64),
    ("resmlp", "resmlp_12_224", {'img_size': 64}, 64),
    ("gmlp", "gmlp_ti16_224", {'img_size': 64}, 64),
    ("mvitv2", "mvitv2_tiny", {'img_size': 64}, 64),
    ("nest", "nest_tiny", {'img_size': 64}, 64),
    ("nextvit", "nextvit_small", {}, 64),
    ("pit", "pit_ti_224", {'img_size': 64}, 64),
    ("pvt_v2", "pvt_v2_b0", {}, 64),
    ("sequencer", "sequencer2d_s", {'img_size': 64}, 64),
    ("swin", "swin_tiny_patch4_window7_224", {'img_size': 64}, 64),
    ("swinv2", "swinv2_tiny_window8_256", {'img_size': 64}, 64),
    ("swinv2_cr", "swinv2_cr_tiny_224", {'img_size': 64}, 64),
    ("tiny_vit", "tiny_vit_5m_224", {}, 64),
    ("tnt", "tnt_s_patch16_224", {'img_size': 64}, 64),
    ("twins", "twins_svt_small", {'img_size': 64}, 64),
    ("visformer", "visformer_tiny", {'img_size': 64}, 64),
    ("volo", "volo_d1_224", {'img_size': 64}, 64),
    ("xcit", "xcit_nano_12_p8_224", {'img_size': 64}, 64),
    ("vitamin", "vitamin_small_224", {'img_size': 64}, 64),
    ("mobilenetv5", "mobilenetv5_base", {}, 64),
]

TEXT_VOCAB = 100
TEXT_LENGTH = 16
_SMALL = {"vocab_size": TEXT_VOCAB, "hidden_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}
_TOKENS = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
_DECODER = {**_SMALL, "num_attention_heads": 4, "num_key_value_heads": 2, "use_cache": False,
            **_TOKENS}
_VISION = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2,
           "num_attention_heads": 2, "intermediate_size": 64}
_IDS = ("ids", (TEXT_LENGTH,))  # int64 token ids below TEXT_VOCAB
_IMAGE32, _IMAGE64 = ("float", (3, 32, 32)), ("float", (3, 64, 64))

# The Hugging Face models (transformers, random weights from tiny configs, use_cache=False):
# name -> (maker given the transformers module, input kind, one sample's input shape).
HF: dict[str, tuple[Callable[[Any], Any], str, tuple[int, ...]]] = {
    "gpt2": (lambda tf: tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=TEXT_VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2, use_cache=False,
        **_TOKENS)), *_IDS),
    "bert": (lambda tf: tf.BertForSequenceClassification(tf.BertConfig(**_SMALL, num_labels=3)),
             *_IDS),
    "distilbert": (lambda tf: tf.DistilBertForSequenceClassification(tf.DistilBertConfig(
        vocab_size=TEXT_VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
        max_position_embeddings=64, num_labels=3)), *_IDS),
    "roberta": (lambda tf: tf.RobertaForSequenceClassification(tf.RobertaConfig(
        **_SMALL, num_labels=3)), *_IDS),
    "llama": (lambda tf: tf.LlamaForCausalLM(tf.LlamaConfig(**_DECODER)), *_IDS),
    "qwen2": (lambda tf: tf.Qwen2ForCausalLM(tf.Qwen2Config(**_DECODER)), *_IDS),
    "mistral": (lambda tf: tf.MistralForCausalLM(tf.MistralConfig(**_DECODER)), *_IDS),
    "t5-encoder": (lambda tf: tf.T5EncoderModel(tf.T5Config(
        vocab_size=TEXT_VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        use_cache=False, **_TOKENS)), *_IDS),
    "vit": (lambda tf: tf.ViTForImageClassification(tf.ViTConfig(**_VISION, num_labels=10)),
            *_IMAGE32),
    "clip-vision": (lambda tf: tf.CLIPVisionModel(tf.CLIPVisionConfig(**_VISION)), *_IMAGE32),
    # 16 mel bins x 2 * max_source_positions frames
    "whisper-encoder": (lambda tf: tf.models.whisper.modeling_whisper.WhisperEncoder(
        tf.WhisperConfig(vocab_size=TEXT_VOCAB, num_mel_bins=16, d_model=32, encoder_layers=2,
                         encoder_attention_heads=2, encoder_ffn_dim=64, decoder_layers=2,
                         decoder_attention_heads=2, decoder_ffn_dim=64,
                         max_source_positions=16, max_target_positions=16, use_cache=False,
                         decoder_start_token_id=0, **_TOKENS)), "float", (16, 32)),
    "resnet-hf": (lambda tf: tf.ResNetForImageClassification(tf.ResNetConfig(
        embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic",
        num_labels=10)), *_IMAGE64),
    "convnext-hf": (lambda tf: tf.ConvNextForImageClassification(tf.ConvNextConfig(
        hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, num_labels=10)), *_IMAGE64),
    # beyond the list
    "albert": (lambda tf: tf.AlbertForSequenceClassification(tf.AlbertConfig(
        **_SMALL, embedding_size=16, num_labels=3)), *_IDS),
    "electra": (lambda tf: tf.ElectraForSequenceClassification(tf.ElectraConfig(
        **_SMALL, embedding_size=16, num_labels=3)), *_IDS),
    "opt": (lambda tf: tf.OPTForCausalLM(tf.OPTConfig(
        vocab_size=TEXT_VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        ffn_dim=64, max_position_embeddings=64, word_embed_proj_dim=32, use_cache=False,
        **_TOKENS)), *_IDS),
    "gpt-neox": (lambda tf: tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(**_DECODER)), *_IDS),
    "phi3": (lambda tf: tf.Phi3ForCausalLM(tf.Phi3Config(**_DECODER)), *_IDS),
    "gemma": (lambda tf: tf.GemmaForCausalLM(tf.GemmaConfig(**_DECODER, head_dim=8)), *_IDS),
    "deit-hf": (lambda tf: tf.DeiTForImageClassification(tf.DeiTConfig(
        **_VISION, num_labels=10)), *_IMAGE32),
    "swin-hf": (lambda tf: tf.SwinForImageClassification(tf.SwinConfig(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
        window_size=4, num_labels=10)), *_IMAGE32),
    "dinov2": (lambda tf: tf.Dinov2Model(tf.Dinov2Config(**_VISION)), *_IMAGE32),
}


# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


def model_keys() -> list[str]:
    """Every model of the zoo: ``timm:<family>`` and ``hf:<name>``."""
    return [f"timm:{f}" for f, *_ in TIMM] + [f"hf:{n}" for n in HF]


def selected(only: list[str]) -> list[str]:
    """The zoo's keys that ``only`` names (a key, a family, an HF name or a timm model name)."""
    keys = model_keys()
    if not only:
        return keys
    names = {f"timm:{f}": {f, m} for f, m, *_ in TIMM}
    chosen = [k for k in keys if any(o in (k, k.split(":", 1)[1]) or o in names.get(k, ())
                                     for o in only)]
    unknown = [o for o in only if not any(o in (k, k.split(":", 1)[1]) or o in names.get(k, ())
                                          for k in keys)]
    if unknown:
        raise SystemExit(f"not in the zoo: {', '.join(unknown)} (see --list)")
    return chosen


def make(key: str) -> tuple[Any, str, tuple[int, ...], str]:
    """The model of ``key`` (eval mode, randomised), its input kind, one sample's input shape
    and what it is (``timm resnet10t``)."""
    source, name = key.split(":", 1)
    if source == "timm":
        import timm  # imported here: an optional extra, loaded only in the model's subprocess

        _family, model_name, extra, side = next(t for t in TIMM if t[0] == name)
        m = timm.create_model(model_name, pretrained=False, num_classes=10, **extra)
        return randomise(m), "float", (3, side, side), f"timm {model_name}"
    # imported here: an optional extra, loaded only in the model's subprocess
    import transformers

    maker, kind, shape = HF[name]
    m = maker(transformers)
    return randomise(m), kind, shape, f"transformers {type(m).__name__}"


def randomise(m: Any) -> Any:
    """Non-trivial values everywhere: zero-initialised weights and norm statistics too."""
    import torch  # imported here: the parent process never loads torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            if p.is_floating_point():
                p.add_(torch.randn(p.shape, generator=g).to(p.dtype) * 0.02)
        for b in m.modules():
            if isinstance(b, torch.nn.modules.batchnorm._BatchNorm) and b.running_mean is not None:
                b.running_mean.copy_(torch.randn(b.running_mean.shape, generator=g) * 0.1)
                b.running_var.copy_(torch.rand(b.running_var.shape, generator=g) + 0.5)
    return m.eval()


def sample(kind: str, shape: tuple[int, ...]) -> Any:
    """A batch of two random inputs of one sample's ``shape``."""
    import torch  # imported here: the parent process never loads torch

    g = torch.Generator().manual_seed(1)
    if kind == "ids":
        return torch.randint(0, TEXT_VOCAB, (2, *shape), generator=g)
    return torch.randn((2, *shape), generator=g)


# --------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------


def editable_layers(project: Any) -> tuple[int, int]:
    """(editable layer nodes, all layer nodes) over every network of the project: a layer is
    any node but an Input, an Output or a block use; editable unless it is a Function node
    (an operation kept as code). Works whether or not the Function layer exists."""
    editable = total = 0
    for graph in project.networks.values():
        for node in graph.nodes.values():
            if node.kind.is_port or node.kind.is_block:
                continue
            total += 1
            editable += node.type != FUNCTION
    return editable, total


def layer_paths(graph: Any, analysis: Any = None, prefix: str = "") -> dict[str, str]:
    """Module path in the built design -> node type, for every layer of ``graph`` and of the
    blocks it uses (a block that repeats: one path per copy, as nn.Sequential numbers them)."""
    from designer.engine.model.build import plan  # imported here: loads torch

    paths: dict[str, str] = {}
    for step in plan(graph, analysis):
        if step.kind.is_port:
            continue
        path = f"{prefix}{step.attr}"
        if step.kind.is_block:
            copies = step.kwargs["_copies"]
            for i, (_values, inner) in enumerate(copies):
                paths.update(layer_paths(step.kwargs["_graph"], inner,
                                         f"{path}.{i}." if len(copies) > 1 else f"{path}."))
        else:
            paths[path] = step.type
    return paths


def editable_parameters(project: Any, design: Any) -> tuple[int, int]:
    """(parameters in editable layers, all parameters) of the built design: each parameter is
    attributed to the layer whose module holds it. Function nodes hold none; a Tensor layer's
    parameter (used whole, by code) is not editable, a Parameter layer's is (as the import
    report counts them). A parameter no layer claims counts as not editable."""
    paths = layer_paths(project.networks["model"])
    editable = total = 0
    for key, p in design.named_parameters():
        owner = key
        while owner and owner not in paths:
            owner = owner.rpartition(".")[0]
        total += p.numel()
        editable += p.numel() if owner and paths[owner] not in (FUNCTION, TENSOR) else 0
    return editable, total


def tensors(out: Any) -> list[Any]:
    """The tensors of a model's output in order: a tensor, tuples and lists, dicts and
    ModelOutput dataclasses (their values), None left out."""
    import torch  # imported here: the parent process never loads torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):  # transformers' ModelOutput is an OrderedDict
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in tensors(o)]
    return []


def output_diff(got: Any, want: Any) -> tuple[float, float, str]:
    """(max abs difference, scale = max(1, largest output magnitude), what differs)."""
    got, want = tensors(got), tensors(want)
    scale = max([1.0] + [w.detach().abs().max().item() for w in want
                         if w.numel() and w.is_floating_point()])
    if len(got) != len(want):
        return float("inf"), scale, f"{len(got)} output tensors, the model gives {len(want)}"
    diff = 0.0
    for g, w in zip(got, want):
        if g.shape != w.shape:
            return float("inf"), scale, f"output shape {list(g.shape)}, model {list(w.shape)}"
        if g.numel():
            diff = max(diff, (g.detach().double() - w.detach().double()).abs().max().item())
    return diff, scale, ""


def exported_model(project: Any, tmp: Path) -> Any:
    """The design's exported model.py, imported and instantiated."""
    from designer.engine.interop.codegen import model_source, network_class_names

    path = tmp / "model.py"
    path.write_text(model_source(project), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"zoo_exported_{os.getpid()}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, network_class_names(project)["model"])()


def first_line(exc: BaseException) -> str:
    """An error's first line, with the next one when the first only announces it ("The design
    has 1 error(s):")."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        text = f"{text} {lines[1].lstrip('- ')}"
    # a problem deep in nested blocks: only the innermost block, so the problem itself stays
    return re.sub(r"(in block '[^']*' used as '[^']*': )+", _innermost, text)[:300]


def _innermost(found: re.Match) -> str:
    uses = re.findall(r"used as ('[^']*')", found.group(0))
    return f"in {uses[-1]}: "


def run_import(m: Any, kind: str, shape: tuple[int, ...], name: str) -> tuple[Any, Any]:
    """``import_model`` with int64 inputs for token ids: the ``input_dtype`` keyword when the
    import has it (issue 24), else as before it (a float input)."""
    from designer.engine.interop.importing import import_model

    if kind == "ids":
        try:
            return import_model(m, shape, name=name, input_dtype="int64")
        except TypeError as exc:  # an import without the keyword: as today
            if "unexpected keyword argument 'input_dtype'" not in str(exc):
                raise
    return import_model(m, shape, name=name)


def measure(key: str) -> dict[str, Any]:
    """Everything the zoo records for one model (run in the model's own subprocess)."""
    import torch  # imported here: the parent process never loads torch

    from designer.engine.interop.importing import ImportFailed, build_design
    from designer.engine.interop.importing.report import exception_source

    r: dict[str, Any] = {"key": key, "imported": False, "ok": False}

    def fail(stage: str, cause: str, error: str = "", causes: list[str] | None = None
             ) -> dict[str, Any]:
        r.update(stage=stage, cause=cause, error=error, causes=causes or [cause])
        return r

    try:
        m, kind, shape, what = make(key)
        x = sample(kind, shape)
        with torch.no_grad():
            want = m(x)
    except Exception as exc:  # noqa: BLE001 - a model the zoo cannot build is one row
        return fail("model", first_line(exc), type(exc).__name__)
    r.update(model=what, input=[*shape], dtype="int64" if kind == "ids" else "float32",
             params=sum(p.numel() for p in m.parameters()))
    t = time.perf_counter()
    try:
        project, report = run_import(m, kind, shape, key.split(":", 1)[1])
    except ImportFailed as exc:
        r["import_s"] = round(time.perf_counter() - t, 3)
        entries = exc.report.unsupported
        r["unsupported"] = len(entries)
        r["all_causes"] = sorted({normalise(f"{u.op}: {u.reason}") for u in entries})
        r["where"] = code_place(entries[0].source) if entries else ""
        return fail("import", f"{entries[0].op}: {entries[0].reason}" if entries else str(exc),
                    "ImportFailed", [str(u)[:300] for u in entries[:3]])
    except Exception as exc:  # noqa: BLE001 - any other error of the import is its cause
        r["import_s"] = round(time.perf_counter() - t, 3)
        r["where"] = code_place(exception_source(exc))
        return fail("import", first_line(exc), type(exc).__name__)
    r["import_s"] = round(time.perf_counter() - t, 3)
    r["imported"] = True
    # the report's own count, where it has one: editable layers, kept as code, their parameters
    for k in ("editable_layers", "functions", "editable_parameters", "parameters"):
        r[f"report_{k.replace('parameters', 'params')}"] = getattr(report, k, None)
    r["editable_layers"], r["layers"] = editable_layers(project)
    try:
        design = build_design(project).eval()
        r["editable_params"], r["design_params"] = editable_parameters(project, design)
    except Exception as exc:  # noqa: BLE001
        return fail("build", first_line(exc), type(exc).__name__)
    r["params_equal"] = r["design_params"] == r["params"]
    state = m.state_dict()
    r["keys_equal"] = set(design.state_dict()) == set(state)
    r["strict_design"] = _strict_load(design, state, r, "design")
    r["diff_design"], r["scale"], r["outputs_note"] = _run(design, x, want, r, "design")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ours = exported_model(project, Path(tmp)).eval()
        r["keys_equal_export"] = set(ours.state_dict()) == set(state)
        r["strict_export"] = _strict_load(ours, state, r, "export")
        r["diff_export"], _scale, note = _run(ours, x, want, r, "export")
        r["outputs_note"] = r["outputs_note"] or note
    except Exception as exc:  # noqa: BLE001
        r["strict_export"] = False
        r["diff_export"] = float("inf")
        r.setdefault("export_error", f"{type(exc).__name__}: {first_line(exc)}")
    bound = TOLERANCE * r["scale"]
    r["outputs_equal"] = r["diff_design"] <= bound and r["diff_export"] <= bound
    r["ok"] = all(r[k] for k in ("params_equal", "keys_equal", "keys_equal_export",
                                 "strict_design", "strict_export", "outputs_equal"))
    if not r["ok"]:
        fail(*_first_check_failed(r))
    return r


def _strict_load(module: Any, state: dict[str, Any], r: dict[str, Any], where: str) -> bool:
    try:
        module.load_state_dict(state, strict=True)
        return True
    except Exception as exc:  # noqa: BLE001
        r[f"{where}_load_error"] = state_problem(module, state) or first_line(exc)
        return False


def state_problem(module: Any, state: dict[str, Any]) -> str:
    """What keeps ``state`` from loading strictly: missing and unexpected keys, shapes that
    differ, each with its count and a first example."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    return "; ".join(f"{len(keys)} {what} (first: {keys[0]})" for what, keys in (
        ("keys missing from the model's", missing), ("keys the design lacks", unexpected),
        ("shapes differ", shapes)) if keys)


def _run(module: Any, x: Any, want: Any, r: dict[str, Any], where: str
         ) -> tuple[float, float, str]:
    import torch  # imported here: the parent process never loads torch

    try:
        with torch.no_grad():
            return output_diff(module(x), want)
    except Exception as exc:  # noqa: BLE001
        r[f"{where}_run_error"] = f"{type(exc).__name__}: {first_line(exc)}"
        return float("inf"), 1.0, f"{where} does not run"


def _first_check_failed(r: dict[str, Any]) -> tuple[str, str, str]:
    """(stage, cause, error) of the first check an imported model fails."""
    if not r["params_equal"]:
        return "params", (f"parameters differ: design {r['design_params']:,}, model "
                          f"{r['params']:,}"), ""
    if not r["keys_equal"] or not r["strict_design"]:
        return "state_dict", r.get("design_load_error", "state_dict keys differ"), ""
    if "export_error" in r:
        return "export", r["export_error"], r["export_error"].split(":")[0]
    if not r["keys_equal_export"] or not r["strict_export"]:
        return "state_dict", "model.py: " + r.get("export_load_error", "keys differ"), ""
    for where in ("design", "export"):
        if f"{where}_run_error" in r:
            return "outputs", f"{where} does not run: {r[f'{where}_run_error']}", ""
    return "outputs", r["outputs_note"] or f"outputs differ by {max(r['diff_design'], r['diff_export']):.1e}" \
        f" (scale {r['scale']:.1e})", ""


# --------------------------------------------------------------------------------------------
# The run: one subprocess per model
# --------------------------------------------------------------------------------------------


def child(key: str, threads: int) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(RESULT_MARK + json.dumps(measure(key)), flush=True)


def run_one(key: str, timeout: float, threads: int) -> dict[str, Any]:
    """One model in a subprocess of its own; a timeout or a crash is that model's cause."""
    t = time.perf_counter()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", key,
           "--threads", str(threads)]
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_OFFLINE": "1"}
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"key": key, "imported": False, "ok": False, "stage": "timeout",
                "cause": f"no result within {timeout:.0f} s", "error": "Timeout",
                "wall_s": round(time.perf_counter() - t, 1)}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            r = json.loads(line[len(RESULT_MARK):])
            r["wall_s"] = round(time.perf_counter() - t, 1)
            return r
    tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return {"key": key, "imported": False, "ok": False, "stage": "crash",
            "cause": f"the subprocess died (exit status {done.returncode}): {tail[:200]}",
            "error": "Crash", "wall_s": round(time.perf_counter() - t, 1)}


def normalise(cause: str) -> str:
    """A cause without what varies between models: file paths and line numbers, numbers,
    module paths and the class of the module it names (its models and places say which),
    memory addresses."""
    text = re.sub(r"\S*/\S+\.py(:\d+)?(:|,)?", "<file>", cause)
    text = re.sub(r"(in block '[^']*' used as '[^']*': )+", "", text)  # where in the design
    text = re.sub(r"\bin '[^']*': ", "", text)
    text = re.sub(r"\[[^\]]*\.py[^\]]*\]", "", text)  # the source line fx recorded
    text = re.sub(r"0x[0-9a-f]+", "<addr>", text)
    text = re.sub(r"'[\w-]+(\.[\w-]+)+'", "'<path>'", text)
    text = re.sub(r"\b[\w-]+(\.[\w-]+)*\.\d+\b", "<module>", text)  # blocks.0, layers.1.0
    text = re.sub(r"\b(?:[\w-]+\.)+([A-Za-z_]\w*)", r"\1", text)  # a key: its last name
    text = re.sub(r"^[A-Z]\w*: ", "<Module>: ", text)  # a module's class (VisionTransformer)
    text = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b", "N", text)
    text = re.sub(r"N(, N)+", "N, ...", text)
    return re.sub(r"\s+", " ", text).strip()[:200]


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _share(a: int | None, b: int | None) -> float | None:
    return None if not b else a / b


def _weighted(group: list[dict[str, Any]], part: str, whole: str) -> float | None:
    """The share of all the models' parameters (each model's own count) that ``part`` of
    ``whole`` says are editable; a model without the figures counts as none."""
    total = sum(r.get("params", 0) for r in group)
    known = [r for r in group if r.get(part) is not None and r.get(whole)]
    if not total or not known:  # no model has the figures (an import report before them)
        return None
    return sum(r["params"] * r[part] / r[whole] for r in known) / total


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for r in results:
        diff = max(r.get("diff_design", float("nan")), r.get("diff_export", float("nan"))) \
            if r.get("imported") else None
        out.append([
            r["key"], r.get("model", "").split(" ", 1)[-1], _yes(r.get("imported")),
            _pct(_share(r.get("editable_layers"), r.get("layers"))),
            _pct(_share(r.get("editable_params"), r.get("design_params"))),
            _yes(r.get("params_equal")),
            _yes(r.get("strict_design") and r.get("keys_equal") if r.get("imported") else None),
            _yes(r.get("strict_export") and r.get("keys_equal_export")
                 if r.get("imported") else None),
            _yes(r.get("outputs_equal")) + (f" ({diff:.0e})" if diff is not None
                                            and math.isfinite(diff) else ""),
            f"{r['import_s']:.2f}" if "import_s" in r else "-",
            "" if r.get("ok") else f"{r.get('stage', '')}: {r.get('cause', '')}"[:120]
            .replace("|", "/"),
        ])
    return out


HEADER = ["model", "name", "imported", "editable layers", "editable params", "params equal",
          "strict design", "strict model.py", "outputs equal", "import s", "first cause"]


def totals(results: list[dict[str, Any]]) -> dict[str, Any]:
    def of(group: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(group)
        imported = [r for r in group if r.get("imported")]
        shares = [_share(r["editable_layers"], r["layers"]) for r in imported if r.get("layers")]
        pshares = [_share(r.get("editable_params"), r.get("design_params")) for r in imported
                   if r.get("design_params")]
        return {
            "models": n,
            "imported": len(imported),
            "outputs_equal": sum(bool(r.get("outputs_equal")) for r in group),
            "all_checks": sum(bool(r.get("ok")) for r in group),
            "mean_editable_layers": sum(shares) / len(shares) if shares else None,
            "mean_editable_params": sum(pshares) / len(pshares) if pshares else None,
            # over every parameter of every model (each model's share of its own count; models
            # not imported count as not editable), then over the imported models only
            "param_weighted_editable": _weighted(group, "editable_params", "design_params"),
            "param_weighted_editable_imported": _weighted(imported, "editable_params",
                                                          "design_params"),
            # the same by the import report's own count (where it has one)
            "report_param_weighted_editable": _weighted(group, "report_editable_params",
                                                        "report_params"),
        }
    return {"timm": of([r for r in results if r["key"].startswith("timm:")]),
            "hf": of([r for r in results if r["key"].startswith("hf:")]),
            "all": of(results)}


def code_place(source: str) -> str:
    """Where in the model's code a cause arose, the same for every model that shares the code:
    ``file:line: code`` without the line number, the path from the package on
    (``timm/layers/norm_act.py: x = F.batch_norm(``)."""
    found = re.match(r"(.+?\.py):\d+: ?(.*)", source or "")
    if not found:
        return ""
    path, code = found.groups()
    path = re.sub(r".*/site-packages/", "", path)
    return f"{path}: {code[:70]}"


def histogram(results: list[dict[str, Any]], field: str = "first"
              ) -> list[tuple[int, str, list[str], list[tuple[str, int]]]]:
    """(models, normalised cause, the models, where in their code with counts) for the first
    cause of each model that failed a check (``first``), or for every cause an import reported
    anywhere (``all``: no places)."""
    counts: dict[str, list[str]] = collections.defaultdict(list)
    places: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        if r.get("ok"):
            continue
        if field == "first":
            cause = f"{r.get('stage')}: {normalise(r.get('cause', ''))}"
            counts[cause].append(r["key"])
            if r.get("where"):
                places[cause][r["where"]] += 1
        else:
            for cause in r.get("all_causes", []):
                counts[cause].append(r["key"])
    return sorted(((len(v), k, v, places[k].most_common(3)) for k, v in counts.items()),
                  key=lambda t: (-t[0], t[1]))


def print_report(results: list[dict[str, Any]], markdown: bool, top: int) -> None:
    table = rows(results)
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join("---" for _ in HEADER) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
                  for i, h in enumerate(HEADER[:-1])]
        print("  ".join(h.ljust(w) for h, w in zip(HEADER, widths)) + "  first cause")
        for row in table:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    print()
    for group, t in totals(results).items():
        if not t["models"]:
            continue
        print(f"{group}: {t['imported']}/{t['models']} imported "
              f"({_pct(t['imported'] / t['models'])}), outputs equal {t['outputs_equal']} "
              f"({_pct(t['outputs_equal'] / t['models'])}), every check {t['all_checks']}; "
              f"mean editable share: layers {_pct(t['mean_editable_layers'])}, params "
              f"{_pct(t['mean_editable_params'])} (imported models); parameter-weighted editable "
              f"{_pct(t['param_weighted_editable'])} of all models' parameters "
              f"({_pct(t['param_weighted_editable_imported'])} of the imported ones; by the "
              f"import reports' own count {_pct(t['report_param_weighted_editable'])})")
    for field, title in (("first", "First failure causes"),
                         ("all", "Causes anywhere in the import reports (models with each)")):
        hist = histogram(results, field)
        if not hist:
            continue
        print(f"\n{title} ({len(hist)} distinct):")
        for n, cause, keys, places in hist[:top]:
            names = ", ".join(k.split(":", 1)[1] for k in keys[:8]) + (" ..." if n > 8 else "")
            print(f"{n:4d}  {cause}\n        {names}")
            for place, count in places:
                print(f"        at {place} ({count})")


def save(path: Path, results: list[dict[str, Any]], wall_s: float | None) -> None:
    path.write_text(json.dumps({
        "results": results, "totals": totals(results), "first_causes": histogram(results),
        "all_causes": histogram(results, "all"), "wall_s": wall_s}, indent=1), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[],
                    help="a model (timm:resnet, hf:gpt2, a family, a timm model name); repeatable")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per model")
    ap.add_argument("--jobs", type=int, default=1, help="models imported at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per model")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument("--markdown", action="store_true", help="the table for RESULTS.md")
    ap.add_argument("--top", type=int, default=15, help="causes shown per histogram")
    ap.add_argument("--list", action="store_true", help="list the models and stop")
    ap.add_argument("--from", dest="saved", type=Path,
                    help="print the report of a saved --json run instead of running")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.threads)
        return
    if args.saved:  # its results again (with --json: saved again, totals recounted)
        saved = json.loads(args.saved.read_text(encoding="utf-8"))
        keys = set(selected(args.only))
        results = [r for r in saved["results"] if r["key"] in keys]
        if args.json:
            save(args.json, results, saved.get("wall_s"))
        print_report(results, args.markdown, args.top)
        return
    keys = selected(args.only)
    if args.list:
        for family, name, extra, side in TIMM:
            print(f"timm:{family:22s} {name:32s} 3x{side}x{side} {extra or ''}")
        for name, (_maker, kind, shape) in HF.items():
            print(f"hf:{name:24s} {kind} {list(shape)}")
        return
    results: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {k: pool.submit(run_one, k, args.timeout, args.threads) for k in keys}
        for i, k in enumerate(keys):
            r = results[k] = futures[k].result()
            status = "ok" if r.get("ok") else f"{r.get('stage')}: {r.get('cause', '')[:100]}"
            print(f"[{i + 1}/{len(keys)}] {k} {r.get('wall_s', 0):.0f} s: {status}",
                  file=sys.stderr, flush=True)
    ordered = [results[k] for k in keys]
    if args.json:
        save(args.json, ordered, round(time.perf_counter() - start, 1))
    print_report(ordered, args.markdown, args.top)


if __name__ == "__main__":
    main()
