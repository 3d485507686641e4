"""MobileNetV3 Large and Small (Howard et al., ICCV 2019, arXiv:1905.02244): Tables 1 and 2 of the paper.

Hard-swish and hard-sigmoid are `nn.Hardswish` / `nn.Hardsigmoid`: ONNX HardSwish / HardSigmoid,
which TFLite converters lower to builtin HARD_SWISH, or to ADD/RELU6/MUL (x * relu6(x + 3) / 6).
SE reduces the expanded channels to a quarter (rounded to a multiple of 8), ReLU, hard-sigmoid gate.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN, SqueezeExcite, make_divisible

__all__ = ["MobileNetV3", "InvertedResidualV3", "mobilenet_v3_large", "mobilenet_v3_small", "LARGE", "SMALL"]

RE, HS = nn.ReLU, nn.Hardswish
# (kernel, expansion channels, output channels, SE, activation, stride): paper Table 1 (Large).
LARGE = (
    (3, 16, 16, False, RE, 1), (3, 64, 24, False, RE, 2), (3, 72, 24, False, RE, 1),
    (5, 72, 40, True, RE, 2), (5, 120, 40, True, RE, 1), (5, 120, 40, True, RE, 1),
    (3, 240, 80, False, HS, 2), (3, 200, 80, False, HS, 1), (3, 184, 80, False, HS, 1), (3, 184, 80, False, HS, 1),
    (3, 480, 112, True, HS, 1), (3, 672, 112, True, HS, 1),
    (5, 672, 160, True, HS, 2), (5, 960, 160, True, HS, 1), (5, 960, 160, True, HS, 1),
)
# Paper Table 2 (Small).
SMALL = (
    (3, 16, 16, True, RE, 2), (3, 72, 24, False, RE, 2), (3, 88, 24, False, RE, 1),
    (5, 96, 40, True, HS, 2), (5, 240, 40, True, HS, 1), (5, 240, 40, True, HS, 1),
    (5, 120, 48, True, HS, 1), (5, 144, 48, True, HS, 1),
    (5, 288, 96, True, HS, 2), (5, 576, 96, True, HS, 1), (5, 576, 96, True, HS, 1),
)
ALPHAS = (0.75, 1.0)


class InvertedResidualV3(nn.Module):
    """1x1 expand → kxk depthwise → optional SE → 1x1 linear projection; identity add when shapes match."""

    def __init__(self, cin: int, hidden: int, cout: int, kernel: int, stride: int, se: bool, act: type[nn.Module]) -> None:
        super().__init__()
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBN(cin, hidden, 1, act=act)] if hidden != cin else []
        layers.append(ConvBN(hidden, hidden, kernel, stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden, make_divisible(hidden / 4), gate=nn.Hardsigmoid))
        layers.append(ConvBN(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV3(nn.Module):
    stage_names = ("features",)

    def __init__(
        self, config: tuple, last_channels: int, alpha: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
    ) -> None:
        super().__init__()
        cin, base = make_divisible(16 * alpha), 16
        layers: list[nn.Module] = [ConvBN(3, cin, 3, 2, act=HS)]
        for kernel, expansion, cout, se, act, stride in config:
            # The expansion is a factor of the block's input (as in the authors' TF definition), so
            # at α < 1 it follows the rounded-up input width rather than expansion x α.
            hidden = make_divisible(expansion / base * cin)
            layers.append(InvertedResidualV3(cin, hidden, make_divisible(cout * alpha), kernel, stride, se, act))
            cin, base = make_divisible(cout * alpha), cout
        head = 6 * cin
        layers.append(ConvBN(cin, head, 1, act=HS))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        # The last layers stay full width below α=1 (the authors' 'finegrain classification mode').
        last = make_divisible(last_channels * alpha) if alpha > 1.0 else last_channels
        self.classifier = nn.Sequential(
            nn.Linear(head, last), nn.Hardswish(inplace=True), nn.Dropout(dropout), nn.Linear(last, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


_PAPER = "Howard et al., Searching for MobileNetV3, ICCV 2019 (arXiv:1905.02244)"
# Paper Table 3 (ImageNet): Large 1.0 219 M MAdds / 5.4 M params, 0.75 155 M / 4.0 M;
# Small 1.0 56 M / 2.5 M, 0.75 44 M / 2.0 M. SE's 1x1 convs are counted as mult-adds here and there.
_DECLARED_LARGE = {
    "alpha=1.0": Declared(219e6, 5.4e6, "MobileNetV3 paper Table 3 (Large 1.0)", 0.03),
    "alpha=0.75": Declared(155e6, 4.0e6, "MobileNetV3 paper Table 3 (Large 0.75)", 0.03),
}
_DECLARED_SMALL = {
    "alpha=1.0": Declared(56e6, 2.5e6, "MobileNetV3 paper Table 3 (Small 1.0)", 0.03),
    "alpha=0.75": Declared(44e6, 2.0e6, "MobileNetV3 paper Table 3 (Small 0.75)", 0.03),
}


@register_model(
    "mobilenet_v3_large",
    family="mobilenet",
    paper=_PAPER,
    aliases=("mbv3_large", "mobilenet_v3", "mbv3"),
    choices={"alpha": ALPHAS},
    declared=_DECLARED_LARGE,
)
def mobilenet_v3_large(alpha: float = 1.0, num_classes: int = 1000) -> MobileNetV3:
    """MobileNetV3-Large at width α (paper Table 1)."""
    return MobileNetV3(LARGE, 1280, alpha=alpha, num_classes=num_classes)


@register_model(
    "mobilenet_v3_small",
    family="mobilenet",
    paper=_PAPER,
    aliases=("mbv3_small",),
    choices={"alpha": ALPHAS},
    declared=_DECLARED_SMALL,
)
def mobilenet_v3_small(alpha: float = 1.0, num_classes: int = 1000) -> MobileNetV3:
    """MobileNetV3-Small at width α (paper Table 2)."""
    return MobileNetV3(SMALL, 1024, alpha=alpha, num_classes=num_classes)
