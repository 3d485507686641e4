"""ResNet-50 (He et al., CVPR 2016) and ResNeXt-50 32x4d (Xie et al., CVPR 2017): the heavy references.

Bottleneck units with the stride on the 3x3 conv, as in the ResNeXt paper's Table 1 (and
fb.resnet.torch / torchvision); the original ResNet paper strides the first 1x1 instead (3.8 G).
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ConvBN

__all__ = ["ResNet", "Bottleneck", "resnet50", "resnext50_32x4d"]

# (bottleneck width at cardinality 1, units) of conv2_x … conv5_x; the output is 4x the width.
STAGES_50 = ((64, 3), (128, 4), (256, 6), (512, 3))
EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 reduce → 3x3 (grouped for ResNeXt, carries the stride) → 1x1 expand, plus shortcut, ReLU."""

    def __init__(self, cin: int, width: int, cout: int, stride: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBN(cin, width, 1), ConvBN(width, width, 3, stride, groups=groups), ConvBN(width, cout, 1, act=None)
        )
        self.shortcut = ConvBN(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    stage_names = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, groups: int = 1, width_per_group: int = 64, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBN(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        cin = 64
        for i, (name, (planes, units)) in enumerate(zip(self.stage_names, STAGES_50)):
            width, cout = planes * width_per_group // 64 * groups, planes * EXPANSION
            stride = 1 if i == 0 else 2
            blocks = [Bottleneck(cin if j == 0 else cout, width, cout, stride if j == 0 else 1, groups) for j in range(units)]
            setattr(self, name, nn.Sequential(*blocks))
            cin = cout
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


# ResNeXt paper Table 1: ResNet-50 4.1 x 10^9 FLOPs (mult-adds), 25.5 x 10^6 params;
# ResNeXt-50 (32x4d) 4.2 x 10^9, 25.0 x 10^6.
_T1 = "ResNeXt paper Table 1"


@register_model(
    "resnet50",
    family="resnet",
    paper="He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (arXiv:1512.03385); "
    "complexity as in Xie et al., ResNeXt, CVPR 2017, Table 1",
    aliases=("resnet", "r50", "resnet_50"),
    declared={"": Declared(4.1e9, 25.5e6, _T1 + " (ResNet-50: 4.1 GFLOPs, 25.5 M params)", 0.03)},
)
def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 with bottleneck units (stride on the 3x3, 'v1.5')."""
    return ResNet(groups=1, width_per_group=64, num_classes=num_classes)


@register_model(
    "resnext50_32x4d",
    family="resnet",
    paper="Xie et al., Aggregated Residual Transformations for Deep Neural Networks (ResNeXt), CVPR 2017 (arXiv:1611.05431)",
    aliases=("resnext50", "resnext", "resnext_50"),
    declared={"": Declared(4.2e9, 25.0e6, _T1 + " (ResNeXt-50 32x4d: 4.2 GFLOPs, 25.0 M params)", 0.03)},
)
def resnext50_32x4d(num_classes: int = 1000) -> ResNet:
    """ResNeXt-50 with cardinality 32 and bottleneck width 4d (grouped 3x3 convs)."""
    return ResNet(groups=32, width_per_group=4, num_classes=num_classes)
