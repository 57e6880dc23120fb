"""Generate the template projects built from blocks (``templates/resnet18.dnn.json`` ...).

    .venv/bin/python scripts/make_block_templates.py            # rewrite them
    .venv/bin/python scripts/make_block_templates.py --check    # exit 1 if one is out of date

A block is a network of the project used as a layer (designer.engine.blocks). ``resnet18`` is
torchvision's ResNet-18 written with two blocks, ``BasicBlock`` (its parameters planes, stride and
downsample) and ``Downsample`` (a 1x1 convolution and a batch norm, numbered like nn.Sequential):
its state_dict keys are torchvision's, so ``load_state_dict(torchvision_state_dict, strict=True)``
works on the built model and on the exported model.py.
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

from designer.engine.blocks import block_param
from designer.engine.project import Project, project_to_json
from designer.engine.shapes import analyze

TEMPLATES = ROOT / "templates"


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


def _finish(project: Project) -> Project:
    analysis = analyze(project.graph)
    if not analysis.ok:
        msgs = "; ".join(p.message for p in analysis.errors)
        raise SystemExit(f"template {project.metadata['id']} does not check clean: {msgs}")
    count = f"{analysis.total_params:,}"
    project.description = project.description.replace("{params}", count)
    project.metadata["expected"] = project.metadata["expected"].replace("{params}", count)
    return project


PROJECTS = (resnet18,)


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
