"""MobileNet v2 (Sandler et al., CVPR 2018, arXiv:1801.04381): inverted residuals, linear bottlenecks."""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN, make_divisible

__all__ = ["MobileNetV2", "InvertedResidual", "mobilenet_v2"]

# (expansion t, output channels c at α=1, repeats n, stride of the first repeat s): Table 2 of the paper.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) → 3x3 depthwise (ReLU6) → 1x1 linear projection; identity add when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBN(cin, hidden, 1, act=nn.ReLU6)] if expansion != 1 else []
        layers += [ConvBN(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6), ConvBN(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    stage_names = ("features",)

    def __init__(self, alpha: float = 1.0, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        cin = make_divisible(32 * alpha)
        # The last 1x1 conv keeps 1280 channels below α=1 and grows above it (paper Sec. 6.1).
        last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
        layers: list[nn.Module] = [ConvBN(3, cin, 3, 2, act=nn.ReLU6)]
        for t, c, n, s in BLOCKS:
            cout = make_divisible(c * alpha)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(ConvBN(cin, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# Paper Table 4 gives 1.0-224 (300 M, 3.4 M) and 1.4-224 (585 M; it prints 6.9 M params); the width x resolution grid is the
# authors' released-checkpoint table (tensorflow/models slim/nets/mobilenet/README.md), MACs rounded
# to 1 M. Left out: 0.5-96 (18 M) and 0.35-96 (11 M), where we count 18.9 M / 11.9 M: 1 M of rounding
# plus the 1280x1000 classifier (1.28 M) is 5-9% of so small a total.
_TABLE = "MobileNet v2 authors' checkpoint table (slim/nets/mobilenet README)"
_GRID = {
    1.0: (3.47e6, {224: 300, 192: 221, 160: 154, 128: 99, 96: 56}),
    0.75: (2.61e6, {224: 209, 192: 153, 160: 107, 128: 69, 96: 39}),
    0.5: (1.95e6, {224: 97, 192: 71, 160: 50, 128: 32}),
    0.35: (1.66e6, {224: 59, 192: 43, 160: 30, 128: 20}),
}
_DECLARED = {
    f"alpha={a},resolution={r}": Declared(m * 1e6, p, _TABLE, 0.03)
    for a, (p, by_res) in _GRID.items()
    for r, m in by_res.items()
}
_DECLARED.update({
    "alpha=1.0,resolution=224": Declared(300e6, 3.47e6, "paper Table 4 (300 M, 3.4 M); 3.47 M in the checkpoint table", 0.03),
    "alpha=1.4,resolution=224": Declared(585e6, 6.06e6, "paper Table 4 (585 M); params of the checkpoint table", 0.03),
    "alpha=1.3,resolution=224": Declared(509e6, 5.34e6, _TABLE, 0.03),
})


@register_model(
    "mobilenet_v2",
    family="mobilenet",
    paper="Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018 (arXiv:1801.04381)",
    aliases=("mbv2", "mobilenetv2"),
    choices={"alpha": ALPHAS},
    declared=_DECLARED,
)
def mobilenet_v2(alpha: float = 1.0, num_classes: int = 1000) -> MobileNetV2:
    """MobileNet v2 at width α; the resolution multiplier is the input size (e.g. --resolution 160)."""
    return MobileNetV2(alpha=alpha, num_classes=num_classes)
