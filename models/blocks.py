"""Blocks the hybrid families share (RepViT, EfficientViT, LeViT, FastViT, MobileNetV4, MobileViT, EdgeNeXt): a
conv-BN that folds into one conv, BN + Linear that folds into one Linear, a residual wrapper, LeViT's and
EfficientViT's four-conv stride-16 stem, and the stem → stages → head skeleton of a staged net.

Each was written once per family before (same logic, same sizes); sharing them leaves every model's MACs and
parameters as they were (tests/test_analysis.py checks each against its published figures).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvNorm", "NormLinear", "Residual", "conv_stem16", "StagedNet"]


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
