"""torchvision's Swin Transformers (V1 and V2) import exactly: window attention and patch merging
are catalog layers (designer.engine.model.modules' classes, with torchvision's parameter and buffer
names), so torchvision's state_dict loads unchanged into the built design and into the exported
model.py, and both give torchvision's outputs, with and without padding to whole windows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from designer.engine.document.project import project_from_json, project_to_json
from designer.engine.interop.codegen import model_source, network_class_names
from designer.engine.model import modules
from designer.engine.model.build import build_model
from designer.engine.model.catalog import CATALOG

from .helpers import import_exactly, randomise, single_layer

torchvision = pytest.importorskip("torchvision")
swin = pytest.importorskip("torchvision.models.swin_transformer")


def _small_swin(v2: bool) -> nn.Module:
    extra = {"block": swin.SwinTransformerBlockV2, "downsample_layer": swin.PatchMergingV2} \
        if v2 else {}
    torch.manual_seed(0)
    return randomise(swin.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2],
                                          num_heads=[2, 2], window_size=[4, 4],
                                          num_classes=10, **extra))


# 32: 8x8 then 4x4 tokens, whole windows; 44: 11x11 then 6x6, both padded to whole windows (and
# an odd map for patch merging)
@pytest.mark.parametrize("size", [32, 44])
@pytest.mark.parametrize("v2", [False, True], ids=["swin", "swin_v2"])
def test_a_small_swin_imports_exactly(v2, size, tmp_path):
    model = _small_swin(v2)
    state = model.state_dict()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    # built and exported: same parameters, strict loads, torchvision's outputs
    project, report, built = import_exactly(model, (3, size, size), "swin", tmp_path, x=x)
    types = {n.type for g in project.networks.values() for n in g.nodes.values()}
    attention, merging = ("ShiftedWindowAttentionV2", "PatchMergingV2") if v2 else \
        ("ShiftedWindowAttention", "PatchMerging")
    assert {attention, merging} <= types
    block = "SwinTransformerBlockV2" if v2 else "SwinTransformerBlock"
    assert report.blocks[block] == 4  # shifted or not, one definition with the shift a parameter
    assert sorted(built.state_dict()) == sorted(state)  # the buffers too, same keys

    again = project_from_json(project_to_json(project))
    assert again.to_dict() == project.to_dict()

    assert network_class_names(project)["model"] == "Swin"
    source = model_source(project)
    imports = [line.strip() for line in source.splitlines()
               if line.strip().startswith(("import ", "from "))]
    assert imports == ["import torch", "from torch import nn"], imports
    merging_base = source.index("class PatchMerging(nn.Module):")  # V2 derives from it
    assert v2 is False or merging_base < source.index("class PatchMergingV2(PatchMerging):")
    # the attention's base class comes with it, defined first; the other version's class not
    base = source.index("class WindowAttention(nn.Module):")
    assert base < source.index(f"class {attention}(WindowAttention):")
    other = "ShiftedWindowAttention" if v2 else "ShiftedWindowAttentionV2"
    assert f"class {other}(" not in source


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
@pytest.mark.parametrize("window, shift", [([4, 4], [0, 0]), ([4, 4], [2, 2]),
                                           ([3, 5], [1, 2]), ([4, 4], [0, 2])])
def test_window_attention_equals_torchvision(v2, window, shift):
    name = "ShiftedWindowAttentionV2" if v2 else "ShiftedWindowAttention"
    theirs = randomise(getattr(swin, name)(16, window, shift, 2))
    ours = getattr(modules, name)(16, window, shift, 2).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for key, value in ours.state_dict().items():  # the buffers are computed alike
        if key.startswith("relative_") and not key.endswith("bias_table"):
            assert torch.equal(value, theirs.state_dict()[key]), key
    for h, w in ((8, 8), (9, 10), (4, 4), (3, 7)):
        x = torch.randn(2, h, w, 16)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_patch_merging_equals_torchvision(v2):
    name = "PatchMergingV2" if v2 else "PatchMerging"
    theirs = randomise(getattr(swin, name)(8))
    ours = getattr(modules, name)(8).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for h, w in ((8, 8), (9, 7)):
        x = torch.randn(2, h, w, 8)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=1e-6)


SHAPES = [
    ("ShiftedWindowAttention", {"num_heads": 2, "window_size": 4, "shift_size": 2}, (8, 8, 16)),
    ("ShiftedWindowAttention", {"num_heads": 3, "window_size": [3, 5], "shift_size": [1, 2],
                                "qkv_bias": False}, (7, 9, 12)),
    ("ShiftedWindowAttentionV2", {"num_heads": 2, "window_size": 4, "shift_size": 2},
     (9, 6, 8)),
    ("ShiftedWindowAttentionV2", {"proj_bias": False}, (3, 3, 4)),
    ("PatchMerging", {}, (8, 8, 6)),
    ("PatchMerging", {"eps": 1e-6}, (7, 5, 3)),
    ("PatchMergingV2", {}, (9, 4, 5)),
    ("PatchMergingV2", {}, (1, 1, 2)),
]


@pytest.mark.parametrize("layer, params, shape", SHAPES)
def test_inferred_shape_and_parameters_equal_the_module(layer, params, shape):
    from designer.engine.model.shapes import analyze

    g, node_id = single_layer(layer, params, [shape], "float32")
    analysis = analyze(g)
    assert analysis.ok, [p.message for p in analysis.problems]
    info = analysis.infos[node_id]
    model = build_model(g).eval()
    real = getattr(model, g.nodes[node_id].name)
    assert info.params == sum(p.numel() for p in real.parameters())
    with torch.no_grad():
        y = model(torch.randn(2, *shape))
    assert tuple(y.shape) == (2, *info.output_shape)
    assert info.macs > 0


def test_heads_that_do_not_divide_the_channels_are_refused():
    from designer.engine.model.shapes import analyze

    g, _ = single_layer("ShiftedWindowAttention", {"num_heads": 3}, [(8, 8, 16)], "float32")
    messages = [p.message for p in analyze(g).problems]
    assert any("num_heads 3" in m for m in messages), messages
    g, _ = single_layer("ShiftedWindowAttention", {"window_size": 4, "shift_size": 4},
                        [(8, 8, 16)], "float32")
    messages = [p.message for p in analyze(g).problems]
    assert any("shift_size 4" in m for m in messages), messages
    assert CATALOG["PatchMerging"].infer({"dim": None, "eps": 1e-5}, [(5, 6, 3)]) == (3, 3, 6)


def test_windows_that_cannot_work_are_refused_with_a_message():
    from designer.engine.model.catalog import CATALOG, LayerError

    v2 = CATALOG["ShiftedWindowAttentionV2"]
    with pytest.raises(LayerError, match="at least 2"):
        v2.resolve({**v2.defaults(), "window_size": [1, 4], "shift_size": 0}, [(8, 8, 16)], [])
    v1 = CATALOG["ShiftedWindowAttention"]
    with pytest.raises(LayerError, match="more than 4096"):
        v1.resolve({**v1.defaults(), "window_size": 100, "shift_size": 0}, [(8, 8, 16)], [])
