"""MobileNetV4 Conv-S and Hybrid-M (Qin et al., MobileNetV4: Universal Models for the Mobile Ecosystem, ECCV 2024,
arXiv:2404.10518): the Universal Inverted Bottleneck (UIB) and its four forms.

A UIB block is an optional depthwise conv before the expansion (`start`), the 1x1 expansion, an optional
depthwise conv after it (`mid`), and the 1x1 projection: both present = ExtraDW, mid only = IR (MobileNet v2's
block), start only = ConvNeXt-like, neither = FFN. The stride sits on the mid conv when there is one, else on the
start conv. The block table is the paper's Table 11 (MNv4-Conv-S), as timm writes it
(timm/models/mobilenetv3.py `_gen_mobilenet_v4`, 'mobilenetv4_conv_small': tokens like `uir_r1_a5_k5_s2_e3_c96` =
UIB, 1 repeat, start 5x5, mid 5x5, stride 2, expansion 3, 96 channels); ReLU throughout, the head a 1x1 conv to 1280
after the global pool (BN and ReLU, no bias) before the classifier.

Hybrid-M (`mobilenetv4_hybrid_medium`, paper Table 12) adds a FusedIB block (a full 3x3 expansion conv then a 1x1
projection, timm's EdgeResidual, `er_r1_k3_s2_e4_c48`) and Mobile MQA blocks (paper section 4: multi-query
attention, 4 heads of 64 sharing one key and one value projection; in stage 3 the keys and values are first
downsampled by a stride-2 depthwise 3x3 + BN, `mqa_r1_k3_h4_s1_v2_d64_c160`), each a pre-BN residual. Its UIB
and MQA blocks end in a layer scale (a learnt per-channel factor, initialised to 1e-5). Followed: timm
`timm/models/mobilenetv3.py` `_gen_mobilenet_v4`, `timm/models/_efficientnet_blocks.py` (UniversalInvertedResidual,
MobileAttention, EdgeResidual) and `timm/layers/attention2d.py` (MultiQueryAttention2d) at huggingface/
pytorch-image-models aa4b5850c154 (2026-08-08).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import StagedNet
from .common import ConvBN, make_divisible

__all__ = ["UIB", "FusedIB", "MobileMQA", "MobileNetV4", "mobilenet_v4_conv_small", "mobilenet_v4_hybrid_medium",
           "CONV_SMALL", "HYBRID_MEDIUM"]

# ("conv", kernel, stride, channels) or ("uib", start kernel, mid kernel, stride, expansion, channels, repeats)
CONV_SMALL = (
    (("conv", 3, 2, 32), ("conv", 1, 1, 32)),
    (("conv", 3, 2, 96), ("conv", 1, 1, 64)),
    (("uib", 5, 5, 2, 3.0, 96, 1), ("uib", 0, 3, 1, 2.0, 96, 4), ("uib", 3, 0, 1, 4.0, 96, 1)),
    (("uib", 3, 3, 2, 6.0, 128, 1), ("uib", 5, 5, 1, 4.0, 128, 1), ("uib", 0, 5, 1, 4.0, 128, 1),
     ("uib", 0, 5, 1, 3.0, 128, 1), ("uib", 0, 3, 1, 4.0, 128, 2)),
    (("conv", 1, 1, 960),),
)

# timm's Hybrid-M table; ("er", kernel, stride, expansion, channels), ("mqa", kv kernel, heads, kv stride, key dim, channels)
_MQA2, _MQA3 = ("mqa", 3, 4, 2, 64, 160), ("mqa", 3, 4, 1, 64, 256)
HYBRID_MEDIUM = (
    (("er", 3, 2, 4.0, 48),),
    (("uib", 3, 5, 2, 4.0, 80, 1), ("uib", 3, 3, 1, 2.0, 80, 1)),
    (("uib", 3, 5, 2, 6.0, 160, 1), ("uib", 0, 0, 1, 2.0, 160, 1), ("uib", 3, 3, 1, 4.0, 160, 1),
     ("uib", 3, 5, 1, 4.0, 160, 1), _MQA2, ("uib", 3, 3, 1, 4.0, 160, 1), _MQA2, ("uib", 3, 0, 1, 4.0, 160, 1), _MQA2,
     ("uib", 3, 3, 1, 4.0, 160, 1), _MQA2, ("uib", 3, 0, 1, 4.0, 160, 1)),
    (("uib", 5, 5, 2, 6.0, 256, 1), ("uib", 5, 5, 1, 4.0, 256, 1), ("uib", 3, 5, 1, 4.0, 256, 2),
     ("uib", 0, 0, 1, 2.0, 256, 1), ("uib", 3, 5, 1, 2.0, 256, 1), ("uib", 0, 0, 1, 2.0, 256, 1),
     ("uib", 0, 0, 1, 4.0, 256, 1), _MQA3, ("uib", 3, 0, 1, 4.0, 256, 1), _MQA3, ("uib", 5, 5, 1, 4.0, 256, 1), _MQA3,
     ("uib", 5, 0, 1, 4.0, 256, 1), _MQA3, ("uib", 5, 0, 1, 4.0, 256, 1)),
    (("conv", 1, 1, 960),),
)


class LayerScale2d(nn.Module):
    """A learnt per-channel factor (timm's LayerScale2d); the hybrid's UIB and MQA blocks end with it."""

    def __init__(self, channels: int, init: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), init))  # (C, 1, 1): the analysis sees a parameter operand

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma



#: a seeded (untrained) model's layer scales: timm's 1e-5 is a training init, learnt away; kept, it also scales the
#: hybrid's strided blocks (no residual) and an untrained model's logits vanish (1e-16 at 224). 1 on a block without
#: a residual, 0.1 on a residual one keeps every stage's activations O(1) (std 0.3-1.7 at 224; 0.2 grows to 18).
SEEDED_LAYER_SCALE = 0.1


class UIB(nn.Module):
    """Universal Inverted Bottleneck: [dw start] → 1x1 expand → [dw mid] → 1x1 project, identity add when shapes match."""

    def __init__(self, cin: int, cout: int, start: int, mid: int, stride: int, expansion: float,
                 layer_scale: float | None = None) -> None:
        super().__init__()
        hidden = make_divisible(cin * expansion)
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if start:
            layers.append(ConvBN(cin, cin, start, 1 if mid else stride, groups=cin, act=None))
        layers.append(ConvBN(cin, hidden, 1))
        if mid:
            layers.append(ConvBN(hidden, hidden, mid, stride, groups=hidden))
        layers.append(ConvBN(hidden, cout, 1, act=None))
        if layer_scale is not None:
            layers.append(LayerScale2d(cout, layer_scale))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out

    def seeded_init(self, generator: torch.Generator) -> None:
        if isinstance(self.block[-1], LayerScale2d):
            with torch.no_grad():
                self.block[-1].gamma.fill_(SEEDED_LAYER_SCALE if self.use_residual else 1.0)


class FusedIB(nn.Module):
    """FusedIB (timm's EdgeResidual): a full k x k expansion conv (BN, ReLU) then a 1x1 projection (BN), residual when
    the shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: float) -> None:
        super().__init__()
        self.use_residual = stride == 1 and cin == cout
        hidden = make_divisible(cin * expansion)
        self.block = nn.Sequential(ConvBN(cin, hidden, kernel, stride), ConvBN(hidden, cout, 1, act=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


class MobileMQA(nn.Module):
    """Mobile MQA block: x + scale · MQA(BN(x)). Queries: 1x1 conv to heads × key_dim; one key and one value (1x1 convs
    to key_dim), optionally after a stride-`kv_stride` depthwise conv + BN; attention per head over the shared keys;
    a 1x1 output conv."""

    def __init__(self, channels: int, kv_kernel: int, heads: int, kv_stride: int, key_dim: int,
                 layer_scale: float | None = 1e-5) -> None:
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.norm = nn.BatchNorm2d(channels)
        self.query = nn.Conv2d(channels, heads * key_dim, 1, bias=False)
        self.key, self.value = (nn.Sequential(*self._down(channels, kv_kernel, kv_stride),
                                              nn.Conv2d(channels, key_dim, 1, bias=False)) for _ in range(2))
        self.output = nn.Conv2d(heads * key_dim, channels, 1, bias=False)
        self.layer_scale = LayerScale2d(channels, layer_scale) if layer_scale is not None else nn.Identity()

    @staticmethod
    def _down(channels: int, kernel: int, stride: int) -> list[nn.Module]:
        if stride == 1:
            return []
        return [nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False), nn.BatchNorm2d(channels)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q = self.query(y).reshape(b, self.heads, self.key_dim, h * w).transpose(-1, -2)  # (B, heads, HW, key_dim)
        k = self.key(y).flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, hw, key_dim): one key for every head
        v = self.value(y).flatten(2).transpose(1, 2).unsqueeze(1)
        o = F.scaled_dot_product_attention(q, k.expand(-1, self.heads, -1, -1), v.expand(-1, self.heads, -1, -1))
        o = o.transpose(-1, -2).reshape(b, self.heads * self.key_dim, h, w)
        return x + self.layer_scale(self.output(o))

    def seeded_init(self, generator: torch.Generator) -> None:
        if isinstance(self.layer_scale, LayerScale2d):
            with torch.no_grad():
                self.layer_scale.gamma.fill_(SEEDED_LAYER_SCALE)


def _blocks(spec: tuple, cin: int, layer_scale: float | None) -> tuple[list[nn.Module], int]:
    """The blocks of one table entry and their output channels."""
    kind = spec[0]
    if kind == "conv":
        _, kernel, stride, cout = spec
        return [ConvBN(cin, cout, kernel, stride)], cout
    if kind == "er":
        _, kernel, stride, expansion, cout = spec
        return [FusedIB(cin, cout, kernel, stride, expansion)], cout
    if kind == "mqa":
        _, kv_kernel, heads, kv_stride, key_dim, cout = spec
        return [MobileMQA(cin, kv_kernel, heads, kv_stride, key_dim, layer_scale)], cin
    _, start, mid, stride, expansion, cout, repeats = spec
    blocks = [UIB(cin if r == 0 else cout, cout, start, mid, stride if r == 0 else 1, expansion, layer_scale)
              for r in range(repeats)]
    return blocks, cout


class MobileNetV4(StagedNet):
    stage_names = ("stage0", "stage1", "stage2", "stage3", "stage4")

    def __init__(self, table: tuple, num_classes: int = 1000, stem: int = 32, features: int = 1280,
                 layer_scale: float | None = None) -> None:
        super().__init__()
        self.stem = ConvBN(3, stem, 3, 2)
        cin = stem
        for index, stage in enumerate(table):
            blocks: list[nn.Module] = []
            for spec in stage:
                made, cin = _blocks(spec, cin, layer_scale)
                blocks += made
            setattr(self, f"stage{index}", nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = ConvBN(cin, features, 1)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.head(self.pool(self.features(x))), 1))


@register_model(
    "mobilenet_v4_conv_small",
    family="mobilenet",
    paper="Qin et al., MobileNetV4: Universal Models for the Mobile Ecosystem, ECCV 2024 (arXiv:2404.10518)",
    aliases=("mnv4_conv_s", "mobilenetv4_conv_small"),
    declared={"": Declared(0.2e9, 3.8e6, "MobileNetV4 paper Table 11 (MNv4-Conv-S: 3.8 M params, 0.2 G MACs, one digit: 186 M here)",
                           0.1)},
)
def mobilenet_v4_conv_small(num_classes: int = 1000) -> MobileNetV4:
    """MobileNetV4 Conv-S (paper Table 11): ReLU, no attention, 224x224."""
    return MobileNetV4(CONV_SMALL, num_classes=num_classes)


@register_model(
    "mobilenet_v4_hybrid_medium",
    family="mobilenet",
    paper="Qin et al., MobileNetV4: Universal Models for the Mobile Ecosystem, ECCV 2024 (arXiv:2404.10518)",
    aliases=("mnv4_hybrid_m", "mobilenetv4_hybrid_medium"),
    declared={"resolution=256": Declared(1.2e9, 10.5e6, "MobileNetV4 paper, ImageNet table (MNv4-Hybrid-M at 256 px: 10.5 M params, "
                                         "1.2 G MACs); this follows timm's definition, whose 11.07 M params and 1.27 G "
                                         "MACs (attention products counted) are 5-6% above the paper's", 0.07),
              "": Declared(0.98e9, 11.07e6, "timm's own count of the definition followed (pytorch-image-models aa4b5850c154 "
                           "results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv: 11.07 M params, 0.98 GMACs at 224)", 0.02)},
)
def mobilenet_v4_hybrid_medium(num_classes: int = 1000) -> MobileNetV4:
    """MobileNetV4 Hybrid-M (paper Table 12): Conv-M's UIBs with Mobile MQA blocks in the last two stages, ReLU, 224x224
    (any multiple of 32 runs)."""
    return MobileNetV4(HYBRID_MEDIUM, num_classes=num_classes, layer_scale=1e-5)
