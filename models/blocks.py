"""Blocks the hybrid families share (RepViT, EfficientViT, LeViT, FastViT, MobileOne, MobileNetV4, MobileViT, EdgeNeXt,
EfficientNet): a conv-BN that folds into one conv, BN + Linear that folds into one Linear, a residual wrapper, LeViT's
and EfficientViT's four-conv stride-16 stem, the stem → stages → head skeleton of a staged net, and the MobileOne
block (FastViT's stem, patch embedding and RepMixer are built of it, MobileOne of nothing else).

Each was written once per family before (same logic, same sizes); sharing them leaves every model's MACs and
parameters as they were (tests/test_analysis.py checks each against its published figures).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import SqueezeExcite

__all__ = ["ConvNorm", "NormLinear", "Residual", "conv_stem16", "StagedNet", "MobileOneBlock", "bn_kernel", "conv_with"]


class ConvNorm(nn.Sequential):
    """Conv (no bias) + BN; `fuse()` returns the one conv with bias that computes the same."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        conv, bn = self[0], self[1]
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          groups=conv.groups)
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        return fused


class NormLinear(nn.Sequential):
    """BatchNorm1d + Linear; `fuse()` → one Linear."""

    def __init__(self, features: int, classes: int) -> None:
        super().__init__(nn.BatchNorm1d(features), nn.Linear(features, classes))

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        bn, linear = self[0], self[1]
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        fused = nn.Linear(linear.in_features, linear.out_features)
        fused.weight.copy_(linear.weight * scale[None, :])
        fused.bias.copy_(linear.weight @ (bn.bias - bn.running_mean * scale) + linear.bias)
        return fused


class Residual(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.m = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)


def conv_stem16(width: int, act: type[nn.Module]) -> nn.Sequential:
    """Four stride-2 3x3 conv-BNs to `width` (width/8, /4, /2, 1), `act` between them: LeViT's and EfficientViT's stem."""
    widths = (3, width // 8, width // 4, width // 2, width)
    layers: list[nn.Module] = []
    for cin, cout in zip(widths, widths[1:]):
        layers += [ConvNorm(cin, cout, 3, 2), act()]
    return nn.Sequential(*layers[:-1])


class StagedNet(nn.Module):
    """A net whose features are `embed` (its `stem`) and then its stages in `stage_names` order (the analysis reports
    each stage's output); its own `forward` adds the head."""

    stage_names: tuple[str, ...] = ()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


def bn_kernel(bn: nn.BatchNorm2d, cin: int, groups: int, kernel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A BN alone as a kxk conv (weight, bias): the identity kernel (1 at the centre of each channel's own input)
    scaled by BN (timm MobileOneBlock._fuse_bn_tensor)."""
    identity = torch.zeros(cin, cin // groups, kernel, kernel)
    for i in range(cin):
        identity[i, i % (cin // groups), kernel // 2, kernel // 2] = 1.0
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    return identity * scale[:, None, None, None], bn.bias - bn.running_mean * scale


def conv_with(cin: int, cout: int, kernel: int, stride: int, groups: int, weight: torch.Tensor,
              bias: torch.Tensor) -> nn.Conv2d:
    """A kxk conv (padding k // 2) holding `weight` and `bias`: a re-parameterised block's one conv."""
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups)
    conv.weight.data, conv.bias.data = weight.detach().clone(), bias.detach().clone()
    return conv


class MobileOneBlock(nn.Module):
    """Branches conv-BN kxk (×`branches`), conv-BN 1x1 (`scale`, k > 1), BN (identity, same shape), summed; then SE,
    then `act` (None: none). `reparameterize()` → one kxk conv with bias. timm's MobileOneBlock, the same logic in
    `timm/models/byobnet.py` (MobileOne, act ReLU) and `timm/models/fastvit.py` (act GELU, optional SE) at
    huggingface/pytorch-image-models aa4b5850c154."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU, scale: bool = True, branches: int = 1, se: bool = False) -> None:
        super().__init__()
        self.cin, self.cout, self.kernel, self.stride, self.groups = cin, cout, kernel, stride, groups
        self.identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.conv_kxk = nn.ModuleList(ConvNorm(cin, cout, kernel, stride, groups) for _ in range(branches))
        self.conv_scale = ConvNorm(cin, cout, 1, stride, groups) if kernel > 1 and scale else None
        self.reparam_conv: nn.Conv2d | None = None
        self.se = SqueezeExcite(cout, cout // 16) if se else nn.Identity()  # timm SEModule(rd_divisor=1): C/16, ReLU
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.act(self.se(self.reparam_conv(x)))
        outs = [branch(x) for branch in (self.conv_scale, self.identity) if branch is not None]
        outs += [conv(x) for conv in self.conv_kxk]
        out = outs[0]
        for other in outs[1:]:
            out = out + other
        return self.act(self.se(out))

    @torch.no_grad()
    def kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The one kxk kernel and bias the branches sum to."""
        weight = torch.zeros(self.cout, self.cin // self.groups, self.kernel, self.kernel)
        bias = torch.zeros(self.cout)
        if self.identity is not None:
            w, b = bn_kernel(self.identity, self.cin, self.groups, self.kernel)
            weight, bias = weight + w, bias + b
        if self.conv_scale is not None:
            fused, pad = self.conv_scale.fuse(), self.kernel // 2
            weight, bias = weight + nn.functional.pad(fused.weight, [pad] * 4), bias + fused.bias
        for conv in self.conv_kxk:
            fused = conv.fuse()
            weight, bias = weight + fused.weight, bias + fused.bias
        return weight, bias

    def reparameterize(self) -> None:
        if self.reparam_conv is None:
            weight, bias = self.kernel_bias()
            self.reparam_conv = conv_with(self.cin, self.cout, self.kernel, self.stride, self.groups, weight, bias)
            self.identity, self.conv_scale, self.conv_kxk = None, None, nn.ModuleList()
