"""MnasNet-A1 (Tan et al., CVPR 2019, arXiv:1807.11626): Figure 7(a) of the paper.

Blocks as in the authors' TensorFlow definition (tensorflow/tpu models/official/mnasnet,
`mnasnet_a1`): MBConv = 1x1 expand → kxk depthwise → SE (on the expanded channels, reduced to
a quarter of the block's *input* channels) → 1x1 linear projection, identity add when shapes match.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN, SqueezeExcite, make_divisible

__all__ = ["MnasNet", "MBConv", "mnasnet_a1"]

# (expansion, kernel, stride, output channels, repeats, SE): Figure 7(a).
BLOCKS = (
    (1, 3, 1, 16, 1, False),  # SepConv: no expansion, no residual
    (6, 3, 2, 24, 2, False),
    (3, 5, 2, 40, 3, True),
    (6, 3, 2, 80, 4, False),
    (6, 3, 1, 112, 2, True),
    (6, 5, 2, 160, 3, True),
    (6, 3, 1, 320, 1, False),
)
ALPHAS = (0.5, 0.75, 1.0, 1.4)
SE_RATIO = 0.25


class MBConv(nn.Module):
    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, expansion: int, se: bool, residual: bool = True
    ) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = residual and stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBN(cin, hidden, 1)] if expansion != 1 else []
        layers.append(ConvBN(hidden, hidden, kernel, stride, groups=hidden))
        if se:
            layers.append(SqueezeExcite(hidden, max(1, int(cin * SE_RATIO))))
        layers.append(ConvBN(hidden, cout, 1, act=None))
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MnasNet(nn.Module):
    stage_names = ("features",)

    def __init__(self, alpha: float = 1.0, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        cin = make_divisible(32 * alpha)
        layers: list[nn.Module] = [ConvBN(3, cin, 3, 2)]
        for i, (t, k, s, c, n, se) in enumerate(BLOCKS):
            cout = make_divisible(c * alpha)
            for j in range(n):
                layers.append(MBConv(cin, cout, k, s if j == 0 else 1, t, se, residual=i > 0))
                cin = cout
        layers.append(ConvBN(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# Paper Table 1 (ImageNet): MnasNet-A1, 3.9 M params, 312 M multiply-adds at 224x224.
_DECLARED = {"alpha=1.0": Declared(312e6, 3.9e6, "MnasNet paper Table 1 (MnasNet-A1: 312 M mult-adds, 3.9 M params)", 0.03)}


@register_model(
    "mnasnet_a1",
    family="mnasnet",
    paper="Tan et al., MnasNet: Platform-Aware Neural Architecture Search for Mobile, CVPR 2019 (arXiv:1807.11626)",
    aliases=("mnasnet", "semnasnet"),
    choices={"alpha": ALPHAS},
    declared=_DECLARED,
)
def mnasnet_a1(alpha: float = 1.0, num_classes: int = 1000) -> MnasNet:
    """MnasNet-A1 with depth multiplier α on every block (the 1280-channel head stays)."""
    return MnasNet(alpha=alpha, num_classes=num_classes)
