"""MobileNet v1 (Howard et al., 2017, arXiv:1704.04861): width multiplier α, resolution multiplier ρ."""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN

__all__ = ["MobileNetV1", "mobilenet_v1"]

# (output channels at α=1, stride) of the 13 depthwise-separable blocks (Table 1 of the paper).
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1))
ALPHAS = (0.25, 0.5, 0.75, 1.0)


class MobileNetV1(nn.Module):
    stage_names = ("features",)

    def __init__(self, alpha: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        cin = int(32 * alpha)
        layers: list[nn.Module] = [ConvBN(3, cin, 3, 2)]
        for cout, stride in BLOCKS:
            cout = int(cout * alpha)
            layers += [ConvBN(cin, cin, 3, stride, groups=cin), ConvBN(cin, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


# Table 6 (width multiplier at 224) and Table 7 (resolution at α=1) of the paper.
_DECLARED = {
    "alpha=1.0,resolution=224": Declared(569e6, 4.2e6, "MobileNet paper Table 6"),
    "alpha=0.75,resolution=224": Declared(325e6, 2.6e6, "MobileNet paper Table 6"),
    "alpha=0.5,resolution=224": Declared(149e6, 1.3e6, "MobileNet paper Table 6"),
    "alpha=0.25,resolution=224": Declared(41e6, 0.5e6, "MobileNet paper Table 6"),
    "alpha=1.0,resolution=192": Declared(418e6, 4.2e6, "MobileNet paper Table 7"),
    "alpha=1.0,resolution=160": Declared(290e6, 4.2e6, "MobileNet paper Table 7"),
    "alpha=1.0,resolution=128": Declared(186e6, 4.2e6, "MobileNet paper Table 7"),
}


@register_model(
    "mobilenet_v1",
    family="mobilenet",
    paper="Howard et al., MobileNets: Efficient CNNs for Mobile Vision Applications, 2017 (arXiv:1704.04861)",
    aliases=("mobilenet", "mbv1"),
    choices={"alpha": ALPHAS},
    declared=_DECLARED,
)
def mobilenet_v1(alpha: float = 1.0, num_classes: int = 1000) -> MobileNetV1:
    """MobileNet v1 at width α; the resolution multiplier is the input size (e.g. --resolution 160)."""
    return MobileNetV1(alpha=alpha, num_classes=num_classes)
