"""ShuffleNet v2 (Ma et al., ECCV 2018, arXiv:1807.11164), Table 5 of the paper."""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN, SqueezeExcite, channel_shuffle

__all__ = ["ShuffleNetV2", "ShuffleV2Unit", "shufflenet_v2"]

STAGE_WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}
REPEATS = (4, 8, 4)


class ShuffleV2Unit(nn.Module):
    """Stride 1: channel split, branch on one half, concat, shuffle. Stride 2: both halves downsample.

    With `se_ratio=r`, SE gates the whole unit output after the concat (C channels, C/r neurons).
    That is the placement the paper's numbers support: its 2x model with SE costs 597 MFLOPs
    (Table 8), 6 M over 591, and SE over the concat with C/2 neurons (the ratio Appendix Table 2
    gives for SE-ShuffleNet v2-164) adds 5.95 M; SE on the branch alone adds at most 3 M.
    """

    def __init__(self, cin: int, cout: int, stride: int, se_ratio: int = 0) -> None:
        super().__init__()
        self.stride = stride
        branch = cout // 2
        bin_ = cin if stride == 2 else branch
        if stride == 2:
            self.branch1 = nn.Sequential(ConvBN(cin, cin, 3, 2, groups=cin, act=None), ConvBN(cin, branch, 1))
        self.branch2 = nn.Sequential(
            ConvBN(bin_, branch, 1),
            ConvBN(branch, branch, 3, stride, groups=branch, act=None),
            ConvBN(branch, branch, 1),
        )
        self.se = SqueezeExcite(cout, max(1, cout // se_ratio)) if se_ratio else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            out = torch.cat((left, self.branch2(right)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(self.se(out), 2)


class ShuffleNetV2(nn.Module):
    stage_names = ("stage2", "stage3", "stage4")

    def __init__(self, scale: float = 1.0, num_classes: int = 1000, se_ratio: int = 0) -> None:
        super().__init__()
        *widths, last = STAGE_WIDTHS[scale]
        self.stem = ConvBN(3, 24, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 24
        for name, cout, repeats in zip(self.stage_names, widths, REPEATS):
            units = [ShuffleV2Unit(cin if i == 0 else cout, cout, 2 if i == 0 else 1, se_ratio) for i in range(repeats)]
            setattr(self, name, nn.Sequential(*units))
            cin = cout
        self.conv5 = ConvBN(cin, last, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.stem(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


# Table 5 (FLOPs) and the authors' released models (params).
_DECLARED = {
    "scale=0.5": Declared(41e6, 1.4e6, "ShuffleNet v2 paper Table 5 / Table 8"),
    "scale=1.0": Declared(146e6, 2.3e6, "ShuffleNet v2 paper Table 5 / Table 8"),
    "scale=1.5": Declared(299e6, 3.5e6, "ShuffleNet v2 paper Table 5 / Table 8"),
    "scale=2.0": Declared(591e6, 7.4e6, "ShuffleNet v2 paper Table 5 / Table 8"),
    # Table 8, "ShuffleNet v2 2x (ours, with SE)"; SE neurons = 1/2 of the channels (Appendix Table 2).
    "scale=2.0,se=2": Declared(597e6, None, "ShuffleNet v2 paper Table 8 (2x with SE: 597 MFLOPs)", 0.03),
}


@register_model(
    "shufflenet_v2",
    family="shufflenet",
    paper="Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design, ECCV 2018 (arXiv:1807.11164)",
    aliases=("v2",),
    choices={"scale": tuple(STAGE_WIDTHS)},
    declared=_DECLARED,
)
def shufflenet_v2(scale: float = 1.0, se: int = 0, num_classes: int = 1000) -> ShuffleNetV2:
    """ShuffleNet v2 `scale`x; `se=r` adds SE (ratio r) on every unit's output (the paper uses r=2)."""
    return ShuffleNetV2(scale=scale, num_classes=num_classes, se_ratio=se)
