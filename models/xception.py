"""Xception (Chollet, CVPR 2017, arXiv:1610.02357): entry, middle and exit flows (Figure 5 of the paper).

Every separable conv is a 3x3 depthwise conv followed by a 1x1 pointwise conv, no nonlinearity in
between (Sec. 4.7), then BN. `scale` multiplies every width (rounded to a multiple of 8) so small
variants fit mobile budgets: scale=0.25 at 224x224 costs about 0.3 G mult-adds.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN, make_divisible

__all__ = ["Xception", "SeparableConv", "XceptionBlock", "xception"]

SCALES = (0.25, 0.5, 0.75, 1.0)
# Entry flow: (output channels, ReLU before the first separable conv); each block halves the size.
ENTRY = ((128, False), (256, True), (728, True))
MIDDLE_REPEATS = 8
# Exit flow: the last downsampling block (728 → 1024), then two separable convs with ReLU.
EXIT = ((728, 1024), (1536, 2048))


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 → pointwise 1x1 → BN (the paper's 'SeparableConv')."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class XceptionBlock(nn.Module):
    """[ReLU → SeparableConv] x len(widths), then a 3x3/2 max pool with a 1x1/2 conv shortcut,
    or no pool with an identity shortcut (middle flow)."""

    def __init__(self, cin: int, widths: tuple[int, ...], downsample: bool, first_relu: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for i, cout in enumerate(widths):
            if i > 0 or first_relu:
                layers.append(nn.ReLU(inplace=i > 0))  # the block input also feeds the shortcut
            layers.append(SeparableConv(c, cout))
            c = cout
        if downsample:
            layers.append(nn.MaxPool2d(3, 2, 1))
        self.body = nn.Sequential(*layers)
        self.shortcut = ConvBN(cin, c, 1, 2, act=None) if downsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Xception(nn.Module):
    stage_names = ("entry_flow", "middle_flow", "exit_flow")

    def __init__(self, scale: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        w = lambda c: make_divisible(c * scale)  # noqa: E731
        stem = (w(32), w(64))
        entry: list[nn.Module] = [ConvBN(3, stem[0], 3, 2, padding=0), ConvBN(stem[0], stem[1], 3, padding=0)]
        cin = stem[1]
        for cout, first_relu in ENTRY:
            entry.append(XceptionBlock(cin, (w(cout), w(cout)), downsample=True, first_relu=first_relu))
            cin = w(cout)
        self.entry_flow = nn.Sequential(*entry)
        self.middle_flow = nn.Sequential(*[XceptionBlock(cin, (cin,) * 3, downsample=False) for _ in range(MIDDLE_REPEATS)])
        (a, b), (c, d) = EXIT
        self.exit_flow = nn.Sequential(
            XceptionBlock(cin, (w(a), w(b)), downsample=True),
            SeparableConv(w(b), w(c)), nn.ReLU(inplace=True),
            SeparableConv(w(c), w(d)), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w(d), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.exit_flow(self.middle_flow(self.entry_flow(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


# Params: paper Table 3 (22,855,952). Mult-adds: the paper gives none; 8.4 G at 299x299 is the count
# of the reference Keras/timm implementations (timm `legacy_xception`: 8.40 GMACs, 22.86 M params).
_DECLARED = {
    "scale=1.0,resolution=299": Declared(8.4e9, 22_855_952, "Xception Table 3 (params); timm/Keras count (8.4 GMACs)", 0.03),
}


@register_model(
    "xception",
    family="xception",
    paper="Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, CVPR 2017 (arXiv:1610.02357)",
    choices={"scale": SCALES},
    declared=_DECLARED,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
)
def xception(scale: float = 1.0, num_classes: int = 1000) -> Xception:
    """Xception at width `scale` (all channels x scale, multiples of 8); designed for 299x299 input."""
    return Xception(scale=scale, num_classes=num_classes)
