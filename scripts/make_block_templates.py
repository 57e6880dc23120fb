"""Generate the template projects built from blocks (``designer/templates/resnet18.dnn.json`` ...).

    .venv/bin/python scripts/make_block_templates.py            # rewrite them
    .venv/bin/python scripts/make_block_templates.py --check    # exit 1 if one is out of date

A block is a network of the project used as a layer (designer.engine.model.blocks).

- ``resnet-mini``: a stem, one ``ResidualBlock`` (parameters channels, stride, project) used three
  times, a Linear head; 78,042 parameters (the flat design it replaces had the same).
- ``resnet18``: torchvision's ResNet-18 written with two blocks, ``BasicBlock`` (planes, stride,
  downsample) and ``Downsample`` (a 1x1 convolution and a batch norm, numbered like nn.Sequential).
- ``mobilenet-v2``: torchvision's MobileNetV2 from a ``ConvBNActivation`` block nested in
  inverted residuals, with sequential blocks for torchvision's numbering (``features.2.conv.1.0``).
- ``vit-tiny``: a Vision Transformer with ViT-Tiny's sizes on 32x32 images, one ``EncoderBlock``
  repeated 12 times.

The torchvision ones have torchvision's state_dict keys in order, so
``load_state_dict(torchvision_state_dict, strict=True)`` works on the built model.
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
from designer.engine.model.blocks import block_param
from designer.engine.model.shapes import analyze

TEMPLATES = ROOT / "designer" / "templates"


def ref(name: str, mul: int = 1) -> dict[str, Any]:
    return {"ref": name} if mul == 1 else {"ref": name, "mul": mul}


def downsample_block() -> Net:
    """torchvision's ``downsample``: Conv2d 1x1 (stride) then BatchNorm2d, as nn.Sequential."""
    net = Net()
    net.graph.set_block_params([block_param("planes", "int", 64, "Output channels", min=1),
                                block_param("stride", "int", 1, "Stride of the 1x1 convolution",
                                            min=1)])
    net.graph.set_sequential(True)
    net.add("Input", "input", shape=[64, 56, 56])
    net.add("Conv2d", "conv", out_channels=ref("planes"), kernel_size=1, stride=ref("stride"),
            bias=False)
    net.add("BatchNorm2d", "bn")
    net.add("Output", "output")
    layout(net.graph)
    return net


def basic_block() -> Net:
    """torchvision's BasicBlock: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the input (through
    ``downsample`` when the block changes size), then ReLU."""
    net = Net()
    net.graph.set_block_params([
        block_param("planes", "int", 64, "Channels of both convolutions", min=1),
        block_param("stride", "int", 1, "Stride of the first convolution (2 halves the image)",
                    min=1),
        block_param("downsample", "bool", False, "Project the input with a 1x1 convolution "
                    "(when the stride or the channels change)"),
    ])
    net.add("Input", "input", shape=[64, 56, 56])
    net.add("Conv2d", "conv1", out_channels=ref("planes"), kernel_size=3, stride=ref("stride"),
            padding=1, bias=False)
    net.add("BatchNorm2d", "bn1")
    net.add("ReLU", "relu")
    net.add("Conv2d", "conv2", out_channels=ref("planes"), kernel_size=3, padding=1, bias=False)
    main = net.add("BatchNorm2d", "bn2")
    skip = net.add("Block", "downsample", "input", block="Downsample",
                   args={"planes": ref("planes"), "stride": ref("stride")})
    net.graph.set_when("downsample", "downsample")
    net.add("Add", "add", main, skip)
    net.add("ReLU", "relu_out")
    net.add("Output", "output")
    layout(net.graph)
    return net


def resnet18_net() -> Net:
    net = Net()
    net.add("Input", "image", shape=[3, 224, 224])
    net.add("Conv2d", "conv1", out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)
    net.add("BatchNorm2d", "bn1")
    net.add("ReLU", "relu")
    net.add("MaxPool2d", "maxpool", kernel_size=3, stride=2, padding=1)
    for i, planes in enumerate((64, 128, 256, 512), 1):
        first = {} if i == 1 else {"stride": 2, "downsample": True}
        net.add("Block", f"layer{i}", block="BasicBlock", repeat=2, args={"planes": planes},
                first=first)
    net.add("AdaptiveAvgPool2d", "avgpool", output_size=1)
    net.add("Flatten", "flatten")
    net.add("Linear", "fc", out_features=1000)
    net.add("Output", "logits")
    layout(net.graph)
    return net


def resnet18() -> Project:
    project = Project(
        name="ResNet-18",
        description="torchvision's ResNet-18, built from blocks: a 7x7 stem, four stages of two "
        "BasicBlocks each (64, 128, 256 and 512 channels; the first block of stages 2-4 strides "
        "by 2 and projects its input with a Downsample block), global average pooling and a "
        "1000-way Linear. Its state_dict keys are torchvision's (layer2.0.downsample.0.weight), "
        "so torchvision's weights load strictly; {params} parameters. Double-click a stage to "
        "open BasicBlock; set repeat to 3 for a deeper stage.",
        networks={"resnet18": resnet18_net().graph, "BasicBlock": basic_block().graph,
                  "Downsample": downsample_block().graph},
        dataset={"kind": "torchvision", "name": "CIFAR10", "resize": [224, 224],
                 "normalize": True, "val_fraction": 0.1, "download": True},
        training={"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0001,
                  "epochs": 10, "batch_size": 64},
        metadata={"id": "resnet18", "order": 20,
                  "teaches": "Blocks: one BasicBlock definition used eight times with different "
                  "parameters (planes, stride, downsample), repeated twice per stage.",
                  "expected": "{params} parameters, the state_dict of torchvision.models."
                  "resnet18() key for key.",
                  "generated_by": "scripts/make_block_templates.py"},
    )
    return _finish(project)


# ---------------------------------------------------------------------------------------------
# resnet-mini: one parametrised residual block used three times
# ---------------------------------------------------------------------------------------------


def residual_block() -> Net:
    """Conv-BN-ReLU-Conv-BN plus the skip path, then ReLU; the skip path is projected by a 1x1
    Conv-BN when ``project`` is on (the channels or the size change)."""
    net = Net()
    net.graph.set_block_params([
        block_param("channels", "int", 16, "Channels of both convolutions", min=1),
        block_param("stride", "int", 1, "Stride of the first convolution (2 halves the image)",
                    min=1),
        block_param("project", "bool", False, "Project the skip path with a 1x1 Conv-BN (when "
                    "the channels or the size change)"),
    ])
    net.add("Input", "input", shape=[16, 32, 32])
    net.add("Conv2d", "conv1", out_channels=ref("channels"), kernel_size=3, stride=ref("stride"),
            padding=1, bias=False)
    net.add("BatchNorm2d", "bn1")
    net.add("ReLU", "relu1")
    net.add("Conv2d", "conv2", out_channels=ref("channels"), kernel_size=3, padding=1,
            bias=False)
    main = net.add("BatchNorm2d", "bn2")
    net.add("Conv2d", "proj", "input", out_channels=ref("channels"), kernel_size=1,
            stride=ref("stride"), bias=False)
    skip = net.add("BatchNorm2d", "proj_bn")
    net.graph.set_when("proj", "project")
    net.graph.set_when("proj_bn", "project")
    net.add("Add", "add", main, skip)
    net.add("ReLU", "relu2")
    net.add("Output", "output")
    layout(net.graph)
    return net


def resnet_mini_net() -> Net:
    net = Net()
    net.add("Input", "image", shape=[3, 32, 32])
    net.add("Conv2d", "stem", out_channels=16, kernel_size=3, padding=1, bias=False)
    net.add("BatchNorm2d", "stem_bn")
    net.add("ReLU", "stem_relu")
    net.add("Block", "b1", block="ResidualBlock", args={"channels": 16})
    net.add("Block", "b2", block="ResidualBlock", args={"channels": 32, "stride": 2,
                                                         "project": True})
    net.add("Block", "b3", block="ResidualBlock", args={"channels": 64, "stride": 2,
                                                         "project": True})
    net.add("AdaptiveAvgPool2d", "pool", output_size=1)
    net.add("Flatten", "flatten")
    net.add("Linear", "fc", out_features=10)
    net.add("Output", "logits")
    layout(net.graph)
    return net


def resnet_mini() -> Project:
    project = Project(
        name="Mini ResNet (CIFAR-10)",
        description="A stem Conv-BN-ReLU (16 channels), then three uses of one ResidualBlock "
        "(Conv-BN-ReLU-Conv-BN, Add with the skip path, ReLU) at 16, 32 and 64 channels; the last "
        "two halve the image with stride 2 and project their skip path with a 1x1 Conv-BN (the "
        "block's project parameter). Global average pooling, Flatten and Linear(64, 10) classify. "
        "Trained on CIFAR-10 with random crops and flips, SGD with momentum and a cosine schedule: "
        "roughly 80-85% after 30 epochs, with {params} parameters, 27 times fewer than the plain "
        "CNN on CIFAR-10. Double-click a block to open ResidualBlock; add a fourth use for a deeper "
        "network. CIFAR-10 (170 MB) is downloaded on first use.",
        networks={"model": resnet_mini_net().graph, "ResidualBlock": residual_block().graph},
        dataset={"kind": "torchvision", "name": "CIFAR10", "task": "classification",
                 "normalize": True, "augment_crop_padding": 4, "augment_hflip": True,
                 "val_fraction": 0.1, "split_seed": 0, "download": True},
        training={"loss": "cross_entropy", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                  "weight_decay": 0.0005, "scheduler": "cosine", "epochs": 30,
                  "batch_size": 128, "seed": 0},
        metadata={"id": "resnet-mini", "order": 7,
                  "teaches": "Residual connections and blocks: each block adds its input back to "
                  "its output (Add), so deep networks train easily; one ResidualBlock definition "
                  "is used three times with its parameters channels, stride and project (a 1x1 "
                  "convolution on the skip path where the channel count changes).",
                  "expected": "Roughly 80-85% test accuracy on CIFAR-10 after 30 epochs with "
                  "augmentation (a GPU helps). {params} parameters.",
                  "generated_by": "scripts/make_block_templates.py"},
    )
    return _finish(project)


# ---------------------------------------------------------------------------------------------
# mobilenet-v2: torchvision's MobileNetV2, key for key
# ---------------------------------------------------------------------------------------------

# torchvision's inverted residual settings: expand ratio t, channels c, repeats n, first stride s
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_activation() -> Net:
    """torchvision's Conv2dNormActivation: Conv2d (no bias), BatchNorm2d, ReLU6, numbered 0-2."""
    net = Net()
    net.graph.set_block_params([
        block_param("channels", "int", 32, "Output channels", min=1),
        block_param("kernel_size", "int", 3, "Kernel size", min=1),
        block_param("stride", "int", 1, "Stride (2 halves the image)", min=1),
        block_param("padding", "int", 1, "Zero padding: (kernel_size - 1) / 2 keeps the size",
                    min=0),
        block_param("groups", "int", 1, "Groups: the channel count makes it depthwise", min=1),
    ])
    net.graph.set_sequential(True)
    net.add("Input", "input", shape=[32, 112, 112])
    net.add("Conv2d", "conv", out_channels=ref("channels"), kernel_size=ref("kernel_size"),
            stride=ref("stride"), padding=ref("padding"), groups=ref("groups"), bias=False)
    net.add("BatchNorm2d", "bn")
    net.add("ReLU6", "act")
    net.add("Output", "output")
    layout(net.graph)
    return net


def _inverted_params(net: Net, hidden: int, out: int, stride: int) -> None:
    net.graph.set_block_params([
        block_param("hidden", "int", hidden, "Channels inside: the input's times the expand "
                    "ratio", min=1),
        block_param("out", "int", out, "Output channels", min=1),
        block_param("stride", "int", stride, "Stride of the depthwise convolution", min=1),
    ])


def inverted_convs(expand: bool) -> Net:
    """The ``conv`` Sequential of an InvertedResidual: (1x1 expansion to ``hidden``,) a 3x3
    depthwise convolution, then a linear 1x1 projection to ``out`` and BatchNorm2d."""
    net = Net()
    # the defaults are the first use's (so the definition checks clean on its own)
    _inverted_params(net, *((96, 24, 2) if expand else (32, 16, 1)))
    net.graph.set_sequential(True)
    net.add("Input", "input", shape=[16 if expand else 32, 112, 112])
    if expand:
        net.add("Block", "expand", block="ConvBNActivation",
                args={"channels": ref("hidden"), "kernel_size": 1, "padding": 0})
    net.add("Block", "depthwise", block="ConvBNActivation",
            args={"channels": ref("hidden"), "stride": ref("stride"), "groups": ref("hidden")})
    net.add("Conv2d", "project", out_channels=ref("out"), kernel_size=1, bias=False)
    net.add("BatchNorm2d", "project_bn")
    net.add("Output", "output")
    layout(net.graph)
    return net


def inverted_residual(convs: str, skip: bool, shape: list[int], hidden: int, out: int,
                      stride: int) -> Net:
    """torchvision's InvertedResidual: ``conv`` (the Sequential above), plus the input when the
    block keeps the stride and the channels (use_res_connect). The defaults are a first use's."""
    net = Net()
    _inverted_params(net, hidden, out, stride)
    net.add("Input", "input", shape=shape)
    conv = net.add("Block", "conv", block=convs, args={"hidden": ref("hidden"),
                                                       "out": ref("out"),
                                                       "stride": ref("stride")})
    if skip:
        net.add("Add", "add", conv, "input")
    net.add("Output", "output")
    layout(net.graph)
    return net


def mobilenet_features() -> Net:
    """torchvision's ``features``: the stem, 17 inverted residuals, the 1x1 convolution to 1280."""
    net = Net()
    net.graph.set_sequential(True)
    net.add("Input", "input", shape=[3, 224, 224])
    net.add("Block", "stem", block="ConvBNActivation",
            args={"channels": 32, "stride": 2})
    cin = 32
    k = 0
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            k += 1
            stride = s if i == 0 else 1
            block = ("InvertedResidual1" if t == 1 else
                     "InvertedResidualSkip" if stride == 1 and cin == c else "InvertedResidual")
            net.add("Block", f"ir{k}", block=block,
                    args={"hidden": cin * t, "out": c, "stride": stride})
            cin = c
    net.add("Block", "head", block="ConvBNActivation",
            args={"channels": 1280, "kernel_size": 1, "padding": 0})
    net.add("Output", "output")
    layout(net.graph)
    return net


def classifier_block() -> Net:
    net = Net()
    net.graph.set_block_params([block_param("classes", "int", 1000, "Classes", min=1)])
    net.graph.set_sequential(True)
    net.add("Input", "input", shape=[1280])
    net.add("Dropout", "dropout", p=0.2)
    net.add("Linear", "fc", out_features=ref("classes"))
    net.add("Output", "output")
    layout(net.graph)
    return net


def mobilenet_v2_net() -> Net:
    net = Net()
    net.add("Input", "image", shape=[3, 224, 224])
    net.add("Block", "features", block="MobileNetV2Features")
    net.add("AdaptiveAvgPool2d", "pool", output_size=1)
    net.add("Flatten", "flatten")
    net.add("Block", "classifier", block="Classifier", args={"classes": 1000})
    net.add("Output", "logits")
    layout(net.graph)
    return net


def mobilenet_v2() -> Project:
    project = Project(
        name="MobileNetV2",
        description="torchvision's MobileNetV2, built from blocks: a stride-2 ConvBNActivation "
        "stem, 17 inverted residuals (a 1x1 convolution expands the channels six times, a 3x3 "
        "depthwise convolution filters each channel alone, a linear 1x1 convolution projects "
        "back; the input is added where stride and channels stay), a 1x1 convolution to 1280 "
        "channels, global average pooling and Dropout + Linear. Sequential blocks number their "
        "layers as torchvision does (features.2.conv.1.0.weight), so torchvision's weights load "
        "strictly; {params} parameters, 3 times fewer than ResNet-18. ReLU6 and depthwise "
        "convolutions (groups = channels) make it cheap on phones.",
        networks={"mobilenet_v2": mobilenet_v2_net().graph,
                  "MobileNetV2Features": mobilenet_features().graph,
                  "InvertedResidual1": inverted_residual("DepthwiseConvs", False, [32, 112, 112],
                                                         32, 16, 1).graph,
                  "InvertedResidual": inverted_residual("InvertedConvs", False, [16, 112, 112],
                                                        96, 24, 2).graph,
                  "InvertedResidualSkip": inverted_residual("InvertedConvs", True, [24, 56, 56],
                                                            144, 24, 1).graph,
                  "InvertedConvs": inverted_convs(True).graph,
                  "DepthwiseConvs": inverted_convs(False).graph,
                  "ConvBNActivation": conv_bn_activation().graph,
                  "Classifier": classifier_block().graph},
        dataset={"kind": "torchvision", "name": "CIFAR10", "resize": [224, 224],
                 "normalize": True, "val_fraction": 0.1, "download": True},
        training={"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.00004,
                  "epochs": 10, "batch_size": 64},
        metadata={"id": "mobilenet-v2", "order": 22,
                  "teaches": "Nested and sequential blocks: inverted residuals (expand, depthwise, "
                  "project) made of a ConvBNActivation block used with different kernel sizes, "
                  "strides and groups; sequential blocks give torchvision's numbered names.",
                  "expected": "{params} parameters, the state_dict of torchvision.models."
                  "mobilenet_v2() key for key.",
                  "generated_by": "scripts/make_block_templates.py"},
    )
    return _finish(project)


# ---------------------------------------------------------------------------------------------
# vit-tiny: a Vision Transformer (ViT-Tiny's sizes) on CIFAR-10's 32x32 images
# ---------------------------------------------------------------------------------------------

VIT_DIM, VIT_HEADS, VIT_DEPTH, VIT_PATCH = 192, 3, 12, 4


def encoder_block() -> Net:
    """A pre-norm transformer encoder block, as ViT writes it: x + attention(LayerNorm(x)), then
    x + MLP(LayerNorm(x)) with a GELU hidden layer ``mlp_ratio`` times wider."""
    net = Net()
    net.graph.set_block_params([
        block_param("dim", "int", VIT_DIM, "Features per token", min=1),
        block_param("heads", "int", VIT_HEADS, "Attention heads (must divide dim)", min=1),
        block_param("dropout", "float", 0.0, "Dropout after attention and in the MLP", min=0,
                    max=0.999),
    ])
    x = net.add("Input", "input", shape=[65, VIT_DIM])
    net.add("LayerNorm", "ln_1")
    net.add("MultiheadAttention", "self_attention", num_heads=ref("heads"))
    net.add("Dropout", "attn_dropout", p=ref("dropout"))
    x = net.add("Add", "attn_add", "attn_dropout", x)
    net.add("LayerNorm", "ln_2")
    net.add("Linear", "mlp_fc1", out_features=ref("dim", 4))
    net.add("GELU", "mlp_act")
    net.add("Dropout", "mlp_dropout1", p=ref("dropout"))
    net.add("Linear", "mlp_fc2", out_features=ref("dim"))
    net.add("Dropout", "mlp_dropout2", p=ref("dropout"))
    net.add("Add", "mlp_add", "mlp_dropout2", x)
    net.add("Output", "output")
    layout(net.graph)
    return net


def vit_tiny_net() -> Net:
    d, side = VIT_DIM, 32 // VIT_PATCH
    net = Net()
    net.add("Input", "image", shape=[3, 32, 32])
    # patch embedding: one 4x4 patch per position, as a strided convolution
    net.add("Conv2d", "conv_proj", out_channels=d, kernel_size=VIT_PATCH, stride=VIT_PATCH)
    net.add("Reshape", "patches", shape=[d, side * side])
    net.add("Permute", "tokens", dims=[2, 1])
    net.graph.add_node("Parameter", "class_token", {"shape": [1, d], "init": "zeros"},
                       id="class_token")
    net.add("Concat", "with_class", "class_token", "tokens", dim=1)
    net.graph.add_node("Parameter", "pos_embedding",
                       {"shape": [side * side + 1, d], "init": "normal", "std": 0.02},
                       id="pos_embedding")
    net.add("Add", "embed", "with_class", "pos_embedding")
    net.add("Dropout", "dropout", p=0.0)
    net.add("Block", "encoder", block="EncoderBlock", repeat=VIT_DEPTH,
            args={"dim": d, "heads": VIT_HEADS})
    net.add("LayerNorm", "ln")
    net.add("Select", "class_out", dim=1, index=0)
    net.add("Linear", "head", out_features=10)
    net.add("Output", "logits")
    layout(net.graph)
    return net


def vit_tiny() -> Project:
    project = Project(
        name="ViT-Tiny (CIFAR-10)",
        description="A Vision Transformer with ViT-Tiny's sizes (192 features, 3 heads, 12 "
        "encoder blocks) on CIFAR-10's 32x32 images: a strided 4x4 convolution cuts the image "
        "into 64 patches and embeds each, a learned class token is put in front and learned "
        "position embeddings are added, then one EncoderBlock (pre-norm attention and a GELU MLP, "
        "each added back to its input) repeated 12 times; the class token's final features, "
        "after a LayerNorm, are classified by a Linear. {params} parameters. Transformers need "
        "more data or epochs than CNNs on CIFAR-10: expect about 60-70% after 30 epochs with "
        "augmentation. Set the encoder's repeat to 6 for a quicker model. CIFAR-10 (170 MB) is "
        "downloaded on first use.",
        networks={"vit": vit_tiny_net().graph, "EncoderBlock": encoder_block().graph},
        dataset={"kind": "torchvision", "name": "CIFAR10", "task": "classification",
                 "normalize": True, "augment_crop_padding": 4, "augment_hflip": True,
                 "val_fraction": 0.1, "split_seed": 0, "download": True},
        training={"loss": "cross_entropy", "optimizer": "adamw", "lr": 0.001,
                  "weight_decay": 0.05, "scheduler": "cosine", "epochs": 30, "batch_size": 128,
                  "grad_clip": 1.0, "seed": 0},
        metadata={"id": "vit-tiny", "order": 23,
                  "teaches": "A Vision Transformer from blocks: patch embedding, a class token and "
                  "positions (Parameter layers), and one EncoderBlock definition repeated 12 "
                  "times (its MLP width is dim * 4, a reference to a block parameter).",
                  "expected": "About 60-70% test accuracy on CIFAR-10 after 30 epochs with "
                  "augmentation (a GPU helps). {params} parameters.",
                  "generated_by": "scripts/make_block_templates.py"},
    )
    return _finish(project)


def _finish(project: Project) -> Project:
    analysis = analyze(project.graph)
    if not analysis.ok:
        msgs = "; ".join(p.message for p in analysis.errors)
        raise SystemExit(f"template {project.metadata['id']} does not check clean: {msgs}")
    count = f"{analysis.total_params:,}"
    project.description = project.description.replace("{params}", count)
    project.metadata["expected"] = project.metadata["expected"].replace("{params}", count)
    return project


PROJECTS = (resnet_mini, resnet18, mobilenet_v2, vit_tiny)


def outputs() -> dict[Path, str]:
    out = {}
    for fn in PROJECTS:
        project = fn()
        out[TEMPLATES / f"{project.metadata['id']}.dnn.json"] = project_to_json(project)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed files instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8", newline="\n")
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
