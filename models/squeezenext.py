"""SqueezeNext (Gholami et al., CVPR-W 2018, arXiv:1803.10615), as released in amirgholami/SqueezeNext.

A block squeezes twice (1x1 to C/2, 1x1 to C/4), runs separable 3x1 and 1x3 convs (back to C/2) and
expands with a 1x1 to C; every conv is followed by BN and ReLU (the released Caffe prototxts). The
bypass is the identity, except in the first block of each stage, where it is a 1x1 conv (stride 2
from stage 2 on, like the block's first squeeze conv). The width multiplier scales the blocks only:
the 64-channel 7x7 stem and the 128-channel head conv are the same in 1.0- and 2.0-SqNxt-23.
Reference input: 227x227.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN

__all__ = ["SqueezeNext", "SqueezeNextBlock", "squeezenext", "STAGE_BLOCKS"]

STEM, HEAD = 64, 128
STAGE_WIDTHS = (32, 64, 128, 256)
STAGE_STRIDES = (1, 2, 2, 2)
# Blocks per stage of SqNxt-23 (conv1 + 21 blocks + fc): v1 is the baseline, v5 the paper's
# hardware-guided redistribution (Sec. 5: fewer blocks early, where the accelerator is least efficient).
STAGE_BLOCKS = {"v1": (6, 6, 8, 1), "v5": (2, 4, 14, 1)}
SCALES = (1.0, 1.5, 2.0)


class SqueezeNextBlock(nn.Module):
    """1x1 (C/2) → 1x1 (C/4) → 3x1 (C/2) → 1x3 (C/2) → 1x1 (C), plus the bypass, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, project: bool) -> None:
        super().__init__()
        half, quarter = cout // 2, cout // 4
        self.body = nn.Sequential(
            ConvBN(cin, half, 1, stride),
            ConvBN(half, quarter, 1),
            ConvBN(quarter, half, (3, 1)),
            ConvBN(half, half, (1, 3)),
            ConvBN(half, cout, 1),
        )
        self.shortcut = ConvBN(cin, cout, 1, stride) if project else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class SqueezeNext(nn.Module):
    stage_names = ("stage1", "stage2", "stage3", "stage4")

    def __init__(self, version: str = "v1", scale: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBN(3, STEM, 7, 2, padding=0), nn.MaxPool2d(3, 2, ceil_mode=True))
        cin = STEM
        for name, width, stride, blocks in zip(self.stage_names, STAGE_WIDTHS, STAGE_STRIDES, STAGE_BLOCKS[version]):
            cout = int(width * scale)
            units = [SqueezeNextBlock(cin, cout, stride, project=True)]
            units += [SqueezeNextBlock(cout, cout, 1, project=False) for _ in range(blocks - 1)]
            setattr(self, name, nn.Sequential(*units))
            cin = cout
        self.head = ConvBN(cin, HEAD, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(HEAD, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage4(self.stage3(self.stage2(self.stage1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(self.head(x)), 1))


# Params: the paper's ImageNet results table (1.0-SqNxt-23: 0.72 M; this count is 0.717 M). Its
# mult-add figures could not be checked against the paper's text, so none is declared: 278 M at
# 227x227 is what this implementation counts (pytorchcv, with conv biases, reports 287 M at 224).
_DECLARED = {
    "version=v1,scale=1.0,resolution=227": Declared(None, 0.72e6, "SqueezeNext paper, ImageNet table (0.72 M)", 0.03),
}


@register_model(
    "squeezenext",
    family="squeezenext",
    paper="Gholami et al., SqueezeNext: Hardware-Aware Neural Network Design, CVPR Workshops 2018 (arXiv:1803.10615)",
    aliases=("sqnxt",),
    choices={"version": tuple(STAGE_BLOCKS), "scale": SCALES},
    declared=_DECLARED,
)
def squeezenext(version: str = "v1", scale: float = 1.0, num_classes: int = 1000) -> SqueezeNext:
    """`scale`-SqNxt-23`version`: scale=1.0, version='v5' is 1.0-SqNxt-23v5 (v1 is the plain 1.0-SqNxt-23)."""
    return SqueezeNext(version=version, scale=scale, num_classes=num_classes)
