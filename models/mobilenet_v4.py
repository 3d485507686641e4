"""MobileNetV4 Conv-S (Qin et al., MobileNetV4: Universal Models for the Mobile Ecosystem, ECCV 2024,
arXiv:2404.10518): the Universal Inverted Bottleneck (UIB) and its four forms.

A UIB block is an optional depthwise conv before the expansion (`start`), the 1x1 expansion, an optional
depthwise conv after it (`mid`), and the 1x1 projection: both present = ExtraDW, mid only = IR (MobileNet v2's
block), start only = ConvNeXt-like, neither = FFN. The stride sits on the mid conv when there is one, else on the
start conv. The block table is the paper's Table 11 (MNv4-Conv-S), as timm writes it
(timm/models/mobilenetv3.py `_gen_mobilenet_v4`, 'mobilenetv4_conv_small': tokens like `uir_r1_a5_k5_s2_e3_c96` =
UIB, 1 repeat, start 5x5, mid 5x5, stride 2, expansion 3, 96 channels); ReLU throughout, the head a 1x1 conv to 1280
after the global pool (BN and ReLU, no bias) before the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN, make_divisible

__all__ = ["UIB", "MobileNetV4", "mobilenet_v4_conv_small", "CONV_SMALL"]

# ("conv", kernel, stride, channels) or ("uib", start kernel, mid kernel, stride, expansion, channels, repeats)
CONV_SMALL = (
    (("conv", 3, 2, 32), ("conv", 1, 1, 32)),
    (("conv", 3, 2, 96), ("conv", 1, 1, 64)),
    (("uib", 5, 5, 2, 3.0, 96, 1), ("uib", 0, 3, 1, 2.0, 96, 4), ("uib", 3, 0, 1, 4.0, 96, 1)),
    (("uib", 3, 3, 2, 6.0, 128, 1), ("uib", 5, 5, 1, 4.0, 128, 1), ("uib", 0, 5, 1, 4.0, 128, 1),
     ("uib", 0, 5, 1, 3.0, 128, 1), ("uib", 0, 3, 1, 4.0, 128, 2)),
    (("conv", 1, 1, 960),),
)


class UIB(nn.Module):
    """Universal Inverted Bottleneck: [dw start] → 1x1 expand → [dw mid] → 1x1 project, identity add when shapes match."""

    def __init__(self, cin: int, cout: int, start: int, mid: int, stride: int, expansion: float) -> None:
        super().__init__()
        hidden = make_divisible(cin * expansion)
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if start:
            layers.append(ConvBN(cin, cin, start, 1 if mid else stride, groups=cin, act=None))
        layers.append(ConvBN(cin, hidden, 1))
        if mid:
            layers.append(ConvBN(hidden, hidden, mid, stride, groups=hidden))
        layers.append(ConvBN(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV4(nn.Module):
    stage_names = ("stage0", "stage1", "stage2", "stage3", "stage4")

    def __init__(self, table: tuple, num_classes: int = 1000, stem: int = 32, features: int = 1280) -> None:
        super().__init__()
        self.stem = ConvBN(3, stem, 3, 2)
        cin = stem
        for index, stage in enumerate(table):
            blocks: list[nn.Module] = []
            for spec in stage:
                if spec[0] == "conv":
                    _, kernel, stride, cout = spec
                    blocks.append(ConvBN(cin, cout, kernel, stride))
                else:
                    _, start, mid, stride, expansion, cout, repeats = spec
                    for r in range(repeats):
                        blocks.append(UIB(cin, cout, start, mid, stride if r == 0 else 1, expansion))
                        cin = cout
                cin = cout
            setattr(self, f"stage{index}", nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = ConvBN(cin, features, 1)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.classifier(torch.flatten(self.head(self.pool(x)), 1))


@register_model(
    "mobilenet_v4_conv_small",
    family="mobilenet",
    paper="Qin et al., MobileNetV4: Universal Models for the Mobile Ecosystem, ECCV 2024 (arXiv:2404.10518)",
    aliases=("mnv4_conv_s", "mobilenetv4_conv_small"),
    declared={"": Declared(0.2e9, 3.8e6, "MobileNetV4 paper Table 11 (MNv4-Conv-S: 3.8 M params, 0.2 G MACs, one digit: 186 M here)",
                           0.1)},
)
def mobilenet_v4_conv_small(num_classes: int = 1000) -> MobileNetV4:
    """MobileNetV4 Conv-S (paper Table 11): ReLU, no attention, 224x224."""
    return MobileNetV4(CONV_SMALL, num_classes=num_classes)
