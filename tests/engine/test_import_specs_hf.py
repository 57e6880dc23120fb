"""``designer import transformers:ClassName`` and ``timm:NAME``: the specs, ``--config`` (key=value
and JSON files), the input a model takes by default, the missing-package and offline messages,
and ``--partial`` that keeps nothing. Every model is built from a tiny config with random weights:
nothing is downloaded (the offline tests stand in for the download with the error it raises)."""

from __future__ import annotations

import importlib
import json
import socket
from types import SimpleNamespace
from urllib.error import URLError

import pytest
import torch
from torch import nn

from designer import cli
from designer.engine.document.project import load_project
from designer.engine.interop import importing
from designer.engine.model.build import build_model
from designer.engine.services import model_import
from designer.engine.services.model_import import (
    PretrainedUnavailable,
    load_spec,
    offline_message,
    parse_config,
    spec_input_defaults,
)

BERT = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
        "intermediate_size": 64, "vocab_size": 100, "max_position_embeddings": 32}
GPT2 = ["n_layer=1", "n_embd=32", "n_head=2", "vocab_size=100", "n_positions=32"]
LLAMA = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
         "num_key_value_heads": 1, "intermediate_size": 64, "vocab_size": 100,
         "max_position_embeddings": 32}
VIT = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
       "intermediate_size": 64, "image_size": 32, "patch_size": 8, "num_labels": 3}


def _offline_error() -> OSError:
    """What transformers raises when the hub cannot be reached (the name lookup failing)."""
    try:
        raise socket.gaierror(-3, "Temporary failure in name resolution")
    except socket.gaierror as cause:
        try:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files, "
                          "and couldn't find them in the cached files.") from cause
        except OSError as exc:
            return exc


# -- --config ----------------------------------------------------------------------------------


def test_config_values_are_json_literals_else_text():
    config = parse_config(["num_hidden_layers=2", "hidden_act=gelu", "tie_word_embeddings=false",
                           "layer_norm_eps=1e-6", "sizes=[1, 2]", "note=a=b", "pad_token_id=null"])
    assert config.values == {"num_hidden_layers": 2, "hidden_act": "gelu",
                             "tie_word_embeddings": False, "layer_norm_eps": 1e-6,
                             "sizes": [1, 2], "note": "a=b", "pad_token_id": None}
    assert config.typed == set(config.values)


def test_a_config_file_is_read_as_json_and_later_options_override_it(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"num_hidden_layers": 4, "gradient_checkpointing": False}))
    config = parse_config(["hidden_size=32", str(path), "num_hidden_layers=1"])
    assert config.values == {"hidden_size": 32, "num_hidden_layers": 1,
                             "gradient_checkpointing": False}
    # the file's keys pass as they are (a hub's config.json has keys of other versions)
    assert config.typed == {"hidden_size", "num_hidden_layers"}


@pytest.mark.parametrize(("text", "item", "message"), [
    ('{"num_hidden_layers": 2,}', "bad.json", r"bad.json: not valid JSON \(.* at line 1, column"),
    ("[1, 2]", "list.json", "expected a JSON object of settings, not list"),
    (None, "missing.json", "missing.json: no such file"),
    (None, "num_hidden_layers", "expected key=value"),
    (None, "2x=3", "expected key=value"),
])
def test_config_errors_say_what_to_write(tmp_path, monkeypatch, text, item, message):
    monkeypatch.chdir(tmp_path)
    if text is not None:
        (tmp_path / item).write_text(text)
    with pytest.raises(ValueError, match=message):
        parse_config([item])


def test_config_is_for_the_hugging_face_specs_only():
    with pytest.raises(ValueError, match="--config is for transformers:ClassName and timm:NAME"):
        load_spec("torchvision:resnet18", config={"num_classes": 3})


# -- transformers ------------------------------------------------------------------------------


def test_a_transformers_class_is_built_from_its_config_class_in_eval_mode():
    transformers = pytest.importorskip("transformers")
    model, name = load_spec("transformers:BertForSequenceClassification", config=BERT)
    assert isinstance(model, transformers.BertForSequenceClassification)
    assert name == "BertForSequenceClassification" and not model.training
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    assert model.config.use_cache is False and model.config.return_dict is True
    assert spec_input_defaults(model) == ((16,), "int64")
    kept, _ = load_spec("transformers:BertModel", config={**BERT, "use_cache": True})
    assert kept.config.use_cache is True  # what the user sets stays


def test_gpt2_from_key_values_and_llama_from_a_config_file(tmp_path):
    transformers = pytest.importorskip("transformers")
    gpt2, name = load_spec("transformers:GPT2LMHeadModel",
                           config=parse_config([*GPT2, "activation_function=gelu"]))
    assert isinstance(gpt2, transformers.GPT2LMHeadModel) and name == "GPT2LMHeadModel"
    assert gpt2.config.n_embd == 32 and gpt2.config.activation_function == "gelu"
    assert gpt2.config.use_cache is False
    assert spec_input_defaults(gpt2) == ((16,), "int64")
    path = tmp_path / "llama.json"
    path.write_text(json.dumps({**LLAMA, "max_position_embeddings": 8}))
    llama, _ = load_spec("transformers:LlamaForCausalLM", config=parse_config([str(path)]))
    assert isinstance(llama, transformers.LlamaForCausalLM)
    assert llama.config.num_key_value_heads == 1 and llama.config.use_cache is False
    assert spec_input_defaults(llama) == ((8,), "int64")  # no more tokens than positions


def test_a_vision_model_takes_its_config_image_size():
    pytest.importorskip("transformers")
    vit, _ = load_spec("transformers:ViTForImageClassification", config=VIT)
    assert spec_input_defaults(vit) == ((3, 32, 32), "float32")


def test_transformers_spec_errors_say_what_to_write(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="BertConfig has no setting 'num_hidden_layer' "
                                         r"\(did you mean num_hidden_layers"):
        load_spec("transformers:BertModel", config={**BERT, "num_hidden_layer": 2})
    with pytest.raises(ValueError, match=r"not a transformers model class .*did you mean "
                                         "BertForSequenceClassification"):
        load_spec("transformers:BertForSequenceClasification")
    with pytest.raises(ValueError, match="a hub id names pretrained weights: add --pretrained"):
        load_spec("transformers:BertModel@bert-base-uncased")
    with pytest.raises(ValueError, match="name the weights as transformers:BertModel@hub-id"):
        load_spec("transformers:BertModel", pretrained=True)
    with pytest.raises(ValueError, match="not a multiple of the number of attention heads"):
        load_spec("transformers:BertModel", config={**BERT, "hidden_size": 30, "num_attention_heads": 4})


# -- timm ------------------------------------------------------------------------------------


def test_timm_models_are_made_without_weights_and_take_their_input_size():
    timm = pytest.importorskip("timm")
    model, name = load_spec("timm:resnet10t", config=parse_config(["num_classes=3"]))
    assert name == "resnet10t" and not model.training
    assert model.get_classifier().out_features == 3
    assert spec_input_defaults(model) == (tuple(timm.create_model(
        "resnet10t", pretrained=False).pretrained_cfg["input_size"]), "float32")
    with pytest.raises(ValueError, match=r"timm has no such model \(did you mean resnet10t"):
        load_spec("timm:resnet10")
    with pytest.raises(ValueError, match="unexpected keyword argument 'colour'"):
        load_spec("timm:resnet10t", config={"colour": 3})


# -- the input a model takes -------------------------------------------------------------------


def test_spec_input_defaults_without_the_libraries():
    assert spec_input_defaults(nn.Linear(4, 2)) == ((3, 224, 224), "float32")
    clip_like = SimpleNamespace(main_input_name="pixel_values",
                                config=SimpleNamespace(image_size=(48, 64), num_channels=1))
    assert spec_input_defaults(clip_like) == ((1, 48, 64), "float32")
    hf_resnet = SimpleNamespace(main_input_name="pixel_values", config=SimpleNamespace())
    assert spec_input_defaults(hf_resnet) == ((3, 224, 224), "float32")
    whisper = SimpleNamespace(main_input_name="input_features",
                              config=SimpleNamespace(num_mel_bins=80, max_source_positions=1500))
    assert spec_input_defaults(whisper) == ((80, 3000), "float32")
    timm_like = SimpleNamespace(pretrained_cfg={"input_size": (3, 160, 160)})
    assert spec_input_defaults(timm_like) == ((3, 160, 160), "float32")


class TokenModel(nn.Module):
    """Stands in for a transformers text model: its main input is token ids."""

    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, input_ids):
        return self.embed(input_ids)


def test_import_to_project_passes_the_models_own_input_on(monkeypatch):
    calls = []

    def recording(module, input_shape, name="", partial=False, **kwargs):
        calls.append((tuple(input_shape), kwargs))
        raise importing.ImportFailed(importing.ImportReport(name, list(input_shape)))

    monkeypatch.setattr(importing, "import_model", recording)
    model_import.import_to_project(TokenModel(), "tokens")
    model_import.import_to_project(TokenModel(), "tokens", (5,), input_dtype="bool")
    model_import.import_to_project(nn.Linear(4, 2), "linear", (4,))
    assert calls == [((16,), {"input_dtype": "int64"}), ((5,), {"input_dtype": "bool"}),
                     ((4,), {})]  # float32, the default, is not said
    with pytest.raises(ValueError, match="expected one of float32, int64, bool"):
        model_import.import_to_project(nn.Linear(4, 2), "linear", (4,), input_dtype="float16")


# -- missing packages and --pretrained offline -------------------------------------------------


@pytest.mark.parametrize("package", ["transformers", "timm"])
def test_a_missing_package_names_the_pip_line(monkeypatch, capsys, tmp_path, package):
    real = importlib.import_module

    def without(name, *args, **kwargs):
        if name.partition(".")[0] == package:
            raise ImportError(f"No module named '{package}'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without)
    spec = {"transformers": "transformers:BertModel", "timm": "timm:resnet18"}[package]
    with pytest.raises(ImportError, match=f"^{package} is not installed: "
                                          r"pip install 'designer\[hf\]'$"):
        load_spec(spec)
    assert cli.main(["import", spec, "-o", str(tmp_path / "m.dnn.json")]) == 2
    assert f"{package} is not installed: pip install 'designer[hf]'" in capsys.readouterr().err


def test_pretrained_transformers_offline_says_so_as_torchvision_does(monkeypatch, capsys,
                                                                       tmp_path):
    transformers = pytest.importorskip("transformers")
    asked = []

    def offline(cls, hub_id, **kwargs):
        asked.append((hub_id, kwargs))
        raise _offline_error()

    monkeypatch.setattr(transformers.BertModel, "from_pretrained", classmethod(offline))
    with pytest.raises(PretrainedUnavailable) as caught:
        load_spec("transformers:BertModel@bert-base-uncased", pretrained=True)
    assert str(caught.value) == offline_message("transformers")
    assert asked == [("bert-base-uncased", {"use_cache": False, "return_dict": True})]
    code = cli.main(["import", "transformers:BertModel@bert-base-uncased", "--pretrained",
                     "-o", str(tmp_path / "b.dnn.json")])
    err = capsys.readouterr().err
    assert code == 2 and "transformers' pretrained weights could not be downloaded" in err
    assert "(no network?)" in err


def test_pretrained_timm_and_torchvision_offline_say_the_same(monkeypatch):
    timm = pytest.importorskip("timm")
    torchvision = pytest.importorskip("torchvision")
    from huggingface_hub.errors import LocalEntryNotFoundError  # with timm: optional

    def hub_offline(name, pretrained=False, **kwargs):
        assert pretrained
        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the "
                                      "Hub and we cannot find the requested files in the local "
                                      "cache.") from socket.gaierror(-3, "Temporary failure")

    def url_offline(name, weights=None, **kwargs):
        assert weights == "DEFAULT"
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(timm, "create_model", hub_offline)
    monkeypatch.setattr(torchvision.models, "get_model", url_offline)
    for spec, library in (("timm:resnet18", "timm"), ("torchvision:resnet18", "torchvision")):
        with pytest.raises(PretrainedUnavailable) as caught:
            load_spec(spec, pretrained=True)
        assert str(caught.value) == offline_message(library)
        assert str(caught.value).startswith(f"{library}'s pretrained weights could not be "
                                            "downloaded (no network?)")


def test_a_pretrained_error_that_is_not_the_network_is_kept(monkeypatch):
    transformers = pytest.importorskip("transformers")

    def missing(cls, hub_id, **kwargs):
        raise OSError(f"{hub_id} is not a local folder and is not a valid model identifier")

    monkeypatch.setattr(transformers.BertModel, "from_pretrained", classmethod(missing))
    with pytest.raises(OSError, match="is not a valid model identifier") as caught:
        load_spec("transformers:BertModel@nobody/nothing", pretrained=True)
    assert not isinstance(caught.value, PretrainedUnavailable)


# -- the command line --------------------------------------------------------------------------


def test_the_cli_refuses_a_config_typo(tmp_path, capsys):
    pytest.importorskip("transformers")
    code = cli.main(["import", "transformers:BertModel", "--config", "num_hidden_layer=1",
                     "-o", str(tmp_path / "b.dnn.json")])
    assert code == 2
    assert "did you mean num_hidden_layers" in capsys.readouterr().err
    assert not (tmp_path / "b.dnn.json").exists()


def test_partial_that_keeps_nothing_fails_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "cum.py"
    src.write_text("import torch\nfrom torch import nn\n\n\nclass First(nn.Module):\n"
                   "    def __init__(self):\n        super().__init__()\n"
                   "        self.fc = nn.Linear(4, 4)\n\n"
                   "    def forward(self, x):\n        return self.fc(torch.cumsum(x, dim=1))\n")
    out = tmp_path / "first.dnn.json"
    code = cli.main(["import", f"{src}:First", "-o", str(out), "--input-shape", "4", "--partial",
                     "--weights"])
    err = capsys.readouterr().err
    if code == 0:  # the lead's Function nodes keep cumsum as code: the whole model imports
        pytest.skip("cumsum imports now; nothing left to stop at")
    assert code == 1 and "nothing was imported" in err and "cumsum" in err
    assert not out.exists() and not (tmp_path / "first.weights.pt").exists()


def test_the_cli_imports_a_timm_model_with_config(tmp_path, capsys):
    pytest.importorskip("timm")
    out = tmp_path / "r.dnn.json"
    code = cli.main(["import", "timm:resnet10t", "--config", "num_classes=3", "-o", str(out),
                     "--input-shape", "3,32,32"])
    assert code == 0, capsys.readouterr().err
    built = build_model(load_project(out).networks["model"]).eval()
    assert built(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_the_cli_imports_a_tiny_bert(tmp_path, capsys):
    pytest.importorskip("transformers")
    out = tmp_path / "bert.dnn.json"
    config = [f"--config={k}={v}" for k, v in BERT.items()]
    code = cli.main(["import", "transformers:BertForSequenceClassification", *config,
                     "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    (inp,) = load_project(out).networks["model"].inputs()
    assert inp.params["shape"] == [16]

