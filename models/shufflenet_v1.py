"""ShuffleNet v1 (Zhang et al., CVPR 2018, arXiv:1707.01083), faithful to Table 1 of the paper."""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.errors import ConfigError
from mobiledeploy.registry import Declared, register_model

from .common import ChannelShuffle, SqueezeExcite

__all__ = ["ShuffleNetV1", "ShuffleV1Unit", "shufflenet_v1", "stage_widths", "STAGE_WIDTHS_1X"]

# Output channels of Stages 2-4 at 1x, per group count g (Table 1).
STAGE_WIDTHS_1X = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088), 8: (384, 768, 1536)}
SCALES = (0.25, 0.5, 1.0, 1.5, 2.0)
REPEATS = (4, 8, 4)
# Stem (Conv1) width per scale, as in the authors' released models (megvii ShuffleNet-Series):
# 24 at 1x and 1.5x, 48 at 2x, 12 below 1x; rounded up to a multiple of g so that the first
# stride-2 unit's branch (stage width - stem width) splits evenly into g groups.
STEM_1X = {0.25: 12, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}


def stem_width(groups: int, scale: float) -> int:
    return -(-STEM_1X[scale] // groups) * groups


def stage_widths(groups: int, scale: float) -> tuple[int, int, int]:
    """Stage output channels for `groups` at width `scale`; raises ConfigError when not realisable."""
    if groups not in STAGE_WIDTHS_1X:
        raise ConfigError(f"shufflenet_v1: g={groups} is not valid (choose from {', '.join(map(str, STAGE_WIDTHS_1X))})")
    widths = tuple(c * scale for c in STAGE_WIDTHS_1X[groups])
    if any(w != int(w) or int(w) % groups for w in widths):
        raise ConfigError(
            f"shufflenet_v1: width {scale}x gives stage channels {widths}, not whole multiples of g={groups} "
            f"(choose a width from {', '.join(f'{s}x' for s in SCALES)})"
        )
    return tuple(int(w) for w in widths)  # type: ignore[return-value]


def bottleneck_width(out_channels: int, groups: int) -> int:
    """1/4 of the unit's output, rounded to a multiple of g so both grouped 1x1 convs split evenly."""
    return max(groups, round(out_channels / 4 / groups) * groups)


class ShuffleV1Unit(nn.Module):
    """GConv1x1 → BN → ReLU → shuffle → DWConv3x3 → BN → GConv1x1 → BN, plus shortcut.

    Stride 2: 3x3 average pool on the shortcut and concat (channels grow by the branch output);
    stride 1: identity shortcut and add. ReLU after the add/concat.
    """

    def __init__(
        self, cin: int, cout: int, stride: int, groups: int, first_grouped: bool, shuffle: bool, se_ratio: int = 0
    ) -> None:
        super().__init__()
        self.stride = stride
        mid = bottleneck_width(cout, groups)
        branch_out = cout - cin if stride == 2 else cout
        g1 = groups if first_grouped else 1
        self.gconv1 = nn.Conv2d(cin, mid, 1, groups=g1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU(inplace=True)
        self.shuffle = ChannelShuffle(groups) if shuffle and groups > 1 else nn.Identity()
        self.dwconv = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.gconv2 = nn.Conv2d(mid, branch_out, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch_out)
        self.se = SqueezeExcite(branch_out, max(1, branch_out // se_ratio)) if se_ratio else nn.Identity()
        self.shortcut_pool = nn.AvgPool2d(3, 2, 1) if stride == 2 else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shuffle(self.relu1(self.bn1(self.gconv1(x))))
        out = self.bn2(self.dwconv(out))
        out = self.se(self.bn3(self.gconv2(out)))
        if self.shortcut_pool is not None:
            return self.relu(torch.cat((self.shortcut_pool(x), out), 1))
        return self.relu(x + out)


class ShuffleNetV1(nn.Module):
    stage_names = ("stage2", "stage3", "stage4")

    def __init__(
        self, groups: int = 3, scale: float = 1.0, shuffle: bool = True, num_classes: int = 1000, se_ratio: int = 0
    ) -> None:
        super().__init__()
        widths = stage_widths(groups, scale)
        stem = stem_width(groups, scale)
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for i, (cout, repeats) in enumerate(zip(widths, REPEATS)):
            units = []
            for j in range(repeats):
                first = i == 0 and j == 0  # the first 1x1 of Stage 2 is not grouped: its input is small
                units.append(ShuffleV1Unit(cin, cout, 2 if j == 0 else 1, groups, not first, shuffle, se_ratio))
                cin = cout
            setattr(self, self.stage_names[i], nn.Sequential(*units))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.stem(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


_T1 = "paper Table 1 (1x, per g)"
_CLASS = "paper Table 2 row label (same budget for every g; the paper tunes widths only roughly)"
_DECLARED = {f"g={g},scale=1.0": Declared(m * 1e6, None, _T1) for g, m in {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}.items()}
_DECLARED.update({f"g={g},scale=0.5": Declared(38e6, None, _CLASS, 0.07) for g in (1, 2, 4)})
_DECLARED.update({f"g={g},scale=0.25": Declared(13e6, None, _CLASS, 0.04) for g in (1, 2, 3, 4)})
_DECLARED.update({
    "g=3,scale=0.5": Declared(38e6, 0.7e6, "paper Tables 2/8; params from the authors' released model"),
    "g=3,scale=1.5": Declared(292e6, 3.4e6, "paper Table 5; params from the authors' released model"),
    "g=3,scale=2.0": Declared(524e6, 5.4e6, "paper Tables 5/8; params from the authors' released model"),
    "g=3,scale=1.0": Declared(137e6, 1.9e6, _T1 + "; params from the authors' released model"),
    "g=8,scale=0.5": Declared(40e6, 1.0e6, "authors' released model (megvii ShuffleNet-Series)"),
    "g=8,scale=1.5": Declared(290e6, 4.3e6, "authors' released model (megvii ShuffleNet-Series)"),
    "g=8,scale=2.0": Declared(522e6, 6.5e6, "authors' released model (megvii ShuffleNet-Series)"),
    "g=8,scale=0.25": Declared(13e6, None, _CLASS + "; g=8 needs a 16-channel stem, so it lands above", 0.25),
    # SE on the branch output before the add/concat, as SE-ResNet places it on the residual branch;
    # r=16 (the SENet default) gives 526.5 M.
    "g=3,scale=2.0,se=16": Declared(527e6, None, "paper Table 5 (ShuffleNet 2x with SE, g=3: 527 MFLOPs)", 0.03),
})


@register_model(
    "shufflenet_v1",
    family="shufflenet",
    paper="Zhang et al., ShuffleNet: An Extremely Efficient CNN for Mobile Devices, CVPR 2018 (arXiv:1707.01083)",
    aliases=("v1", "shufflenet"),
    choices={"g": tuple(STAGE_WIDTHS_1X), "scale": SCALES},
    declared=_DECLARED,
)
def shufflenet_v1(g: int = 3, scale: float = 1.0, shuffle: bool = True, se: int = 0, num_classes: int = 1000) -> ShuffleNetV1:
    """ShuffleNet v1 `scale`x with `g` groups; `shuffle=False` for the ablation; `se=r` adds SE (ratio r)
    on each unit's branch output, before the add/concat (paper Table 5 uses r=16 at 2x, g=3)."""
    return ShuffleNetV1(groups=g, scale=scale, shuffle=shuffle, num_classes=num_classes, se_ratio=se)
