"""EfficientNet-B0 (Tan & Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, ICML 2019,
arXiv:1905.11946) and its mobile variant EfficientNet-Lite0 (tensorflow/tpu models/official/efficientnet/lite).

B0 is MnasNet's MBConv searched again: a 3x3 stride-2 stem conv to 32, seven stages of MBConv (paper Table 1:
1x1 expansion, kxk depthwise, SE, 1x1 linear projection, identity add when the shapes match; the first stage a
depthwise-separable block without expansion), a 1x1 conv to 1280, a global mean and a Linear. The activation is
swish (SiLU) everywhere, in SE too; SE squeezes to a quarter of the block's *input* channels (its ratio 0.25 is
divided by the expansion because it is applied to the expanded channels) and gates with a sigmoid.
Lite0 is the same table without SE and with ReLU6 (TFLite's fused activation, int8-friendly).

Followed: timm `timm/models/efficientnet.py` (`_gen_efficientnet`: 'ds_r1_k3_s1_e1_c16_se0.25',
'ir_r2_k3_s2_e6_c24_se0.25', ...; `_gen_efficientnet_lite`) with `timm/models/_efficientnet_blocks.py`
(DepthwiseSeparableConv, InvertedResidual, SqueezeExcite: `round(mid * se_ratio / exp_ratio)` channels, biased
1x1 convs) and `_efficientnet_builder.py` (`se_from_exp=False`) at huggingface/pytorch-image-models aa4b5850c154
(2026-08-08). Padding is symmetric k // 2 as in timm's `efficientnet_b0` (not the TF 'same' of `tf_efficientnet_b0`).
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import StagedNet
from .common import ConvBN, SqueezeExcite

__all__ = ["MBConvSE", "EfficientNet", "efficientnet_b0", "efficientnet_lite0", "B0"]

# (expansion, kernel, stride, output channels, repeats): paper Table 1, timm's arch_def for B0 and Lite0 alike
B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
      (6, 3, 1, 320, 1))
SE_RATIO = 0.25


class MBConvSE(nn.Module):
    """[1x1 expand] → kxk depthwise → [SE] → 1x1 linear projection; identity add when shapes match (timm's
    InvertedResidual, or DepthwiseSeparableConv when `expansion` is 1)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int, act: type[nn.Module],
                 se_ratio: float = 0.0) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBN(cin, hidden, 1, act=act)] if expansion != 1 else []
        layers.append(ConvBN(hidden, hidden, kernel, stride, groups=hidden, act=act))
        if se_ratio:
            layers.append(SqueezeExcite(hidden, round(hidden * se_ratio / expansion), act=act))
        layers.append(ConvBN(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class EfficientNet(StagedNet):
    stage_names = ("stage0", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6")

    def __init__(self, table: tuple, act: type[nn.Module], se_ratio: float, num_classes: int = 1000,
                 stem: int = 32, features: int = 1280, dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = ConvBN(3, stem, 3, 2, act=act)
        cin = stem
        for index, (expansion, kernel, stride, cout, repeats) in enumerate(table):
            blocks = [MBConvSE(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expansion, act, se_ratio)
                      for r in range(repeats)]
            setattr(self, self.stage_names[index], nn.Sequential(*blocks))
            cin = cout
        self.head = ConvBN(cin, features, 1, act=act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.head(self.features(x))), 1))


_PAPER = ("Tan & Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, ICML 2019 "
          "(arXiv:1905.11946)")


@register_model(
    "efficientnet_b0",
    family="efficientnet",
    paper=_PAPER,
    aliases=("effnet_b0", "efficientnet"),
    declared={"": Declared(0.39e9, 5.3e6, "EfficientNet paper Table 2 (EfficientNet-B0: 5.3 M params, 0.39 B FLOPS, "
                           "counted as multiply-adds); timm's own count of the definition followed is 5.29 M / 0.4 GMACs "
                           "(pytorch-image-models aa4b5850c154 results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv)",
                           0.02)},
)
def efficientnet_b0(num_classes: int = 1000) -> EfficientNet:
    """EfficientNet-B0 at 224x224 (paper Table 1): swish, SE in every block (any multiple of 32 runs)."""
    return EfficientNet(B0, nn.SiLU, SE_RATIO, num_classes=num_classes)


@register_model(
    "efficientnet_lite0",
    family="efficientnet",
    paper=_PAPER + "; the Lite variants: tensorflow/tpu models/official/efficientnet/lite/README.md",
    aliases=("effnet_lite0",),
    declared={"": Declared(0.4e9, 4.65e6, "timm's own count of the definition followed (pytorch-image-models "
                           "aa4b5850c154 results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv: efficientnet_lite0 "
                           "4.65 M params, 0.4 GMACs, one digit: 385.2 M here); the authors' lite/README.md (tensorflow/tpu "
                           "07e173cc1597) lists 4.7 M params and 407 M MAdds, 5.7% above this count, their counter "
                           "not named", 0.05)},
)
def efficientnet_lite0(num_classes: int = 1000) -> EfficientNet:
    """EfficientNet-Lite0 at 224x224: B0's table without SE, ReLU6 instead of swish (any multiple of 32 runs)."""
    return EfficientNet(B0, nn.ReLU6, 0.0, num_classes=num_classes)
