"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016, arXiv:1602.07360) with the paper's bypass variants.

1.0 follows Table 1 of the paper; 1.1 follows the authors' repository (DeepScale/SqueezeNet,
SqueezeNet_v1.1/README.md): a 64-channel 3x3 conv1 and pooling moved earlier, "2.4x less
computation than v1.0, without sacrificing accuracy". Pools use Caffe's ceil rounding; the
reference input is 227x227.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

__all__ = ["SqueezeNet", "Fire", "squeezenet1_0", "squeezenet1_1", "BYPASSES"]

BYPASSES = ("none", "simple", "complex")
# Fire modules (squeeze, expand 1x1, expand 3x3) of fire2-fire9; `None` marks a 3x3/2 max pool.
FIRES = {
    "1.0": (96, 7, ((16, 64, 64), (16, 64, 64), (32, 128, 128), None, (32, 128, 128), (48, 192, 192),
                    (48, 192, 192), (64, 256, 256), None, (64, 256, 256))),
    "1.1": (64, 3, ((16, 64, 64), (16, 64, 64), None, (32, 128, 128), (32, 128, 128), None, (48, 192, 192),
                    (48, 192, 192), (64, 256, 256), (64, 256, 256))),
}


class Fire(nn.Module):
    """Squeeze 1x1 → ReLU → expand (1x1 ‖ 3x3) → ReLU → concat, plus the optional bypass (paper Sec. 6).

    'simple' adds the input where channels match (fire3/5/7/9); 'complex' also bypasses the others
    (fire2/4/6/8) through a 1x1 conv with as many filters as the module outputs.
    """

    def __init__(self, cin: int, squeeze: int, expand1x1: int, expand3x3: int, bypass: str = "none") -> None:
        super().__init__()
        cout = expand1x1 + expand3x3
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.bypass: nn.Module | None = None
        if bypass in ("simple", "complex") and cin == cout:
            self.bypass = nn.Identity()
        elif bypass == "complex":
            self.bypass = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.squeeze(x))
        out = torch.cat((self.relu(self.expand1x1(s)), self.relu(self.expand3x3(s))), 1)
        return out if self.bypass is None else out + self.bypass(x)


class SqueezeNet(nn.Module):
    stage_names = ("features",)

    def __init__(self, version: str = "1.0", bypass: str = "none", num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        stem, kernel, fires = FIRES[version]
        layers: list[nn.Module] = [nn.Conv2d(3, stem, kernel, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True)]
        cin = stem
        for fire in fires:
            if fire is None:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
                continue
            layers.append(Fire(cin, *fire, bypass=bypass))
            cin = fire[1] + fire[2]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Conv2d(cin, num_classes, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


_PAPER = (
    "Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size, 2016 "
    "(arXiv:1602.07360)"
)
# Params: paper Table 1 (1,248,424; the simple bypass adds none, Table 6). Mult-adds: the paper gives
# none; the ShuffleNet paper's Table 6 lists SqueezeNet at 833 MFLOPs (= 1.0 at 227x227), torchvision
# 0.82 / 0.35 GFLOPS at 224, whose ratio (2.35) is the v1.1 notes' "2.4x less computation".
# Not matched: the v1.1 notes' absolute 1.72 / 0.72 GFLOPs (860 M / 360 M mult-adds if multiply
# and add are counted apart) are 3-8% off at either input size. Complex bypass: Table 6 prints
# 7.7 MB, but the 1x1 bypass convs the paper describes add 0.34 M params (6.4 MB at 32 bit), so
# no figure is declared for it.
_TV = "torchvision model docs"
_DECLARED_1_0 = {
    "bypass=none,resolution=227": Declared(833e6, 1_248_424, "ShuffleNet Table 6 (833 MFLOPs); SqueezeNet Table 1", 0.03),
    "bypass=simple,resolution=227": Declared(833e6, 1_248_424, "SqueezeNet Table 6: simple bypass, size of vanilla", 0.03),
    "bypass=none,resolution=224": Declared(820e6, 1_248_424, _TV + " (squeezenet1_0: 0.82 GFLOPS, 1.25 M)", 0.03),
}
_DECLARED_1_1 = {
    "bypass=none,resolution=224": Declared(350e6, 1_235_496, _TV + " (squeezenet1_1: 0.35 GFLOPS, 1.24 M)", 0.03),
    "bypass=simple,resolution=224": Declared(350e6, 1_235_496, "as vanilla: a simple bypass adds no params", 0.03),
}


@register_model(
    "squeezenet1_0",
    family="squeezenet",
    paper=_PAPER,
    aliases=("squeezenet", "squeezenet_1.0"),
    choices={"bypass": BYPASSES},
    declared=_DECLARED_1_0,
)
def squeezenet1_0(bypass: str = "none", num_classes: int = 1000) -> SqueezeNet:
    """SqueezeNet 1.0 (paper Table 1); `bypass` is 'none', 'simple' or 'complex' (paper Sec. 6)."""
    return SqueezeNet("1.0", bypass=bypass, num_classes=num_classes)


@register_model(
    "squeezenet1_1",
    family="squeezenet",
    paper=_PAPER + "; v1.1 from the authors' repository (DeepScale/SqueezeNet, SqueezeNet_v1.1)",
    aliases=("squeezenet_1.1",),
    choices={"bypass": BYPASSES},
    declared=_DECLARED_1_1,
)
def squeezenet1_1(bypass: str = "none", num_classes: int = 1000) -> SqueezeNet:
    """SqueezeNet 1.1: 3x3 conv1, earlier pooling; same fire modules and bypass options as 1.0."""
    return SqueezeNet("1.1", bypass=bypass, num_classes=num_classes)
