"""Micro-networks of ShuffleNet v2's guideline experiments (Ma et al., ECCV 2018, Sec. 2, Tables 1-4).

Each family holds mult-adds (nearly) fixed while one design choice varies, so a device's latency
says what MACs cannot. Every net is: a 1x1 stem conv from the 3 input channels, `blocks` repeated
blocks, global average pooling. Every conv is bias-free and followed by ReLU (which runtimes fuse
into the conv) unless the variant removes it. The paper used 56x56 inputs and 10 blocks.

- `g1_ratio` (G1, equal channel width minimises memory access): blocks of two 1x1 convs,
  c1→c2 then c2→c1, with c2 = ratio·c1 and c1 = floor(width/√ratio), so c1·c2 ≈ width² (the
  paper's Table 1 channel pairs: (128,128), (90,180), (52,312), (36,432) for width 128).
- `g2_groups` (G2, excessive group convolution raises memory access): 1x1 group convs c→c
  with c ≈ width·√groups (rounded to a multiple of groups), so c²/groups ≈ width².
- `g3_fragments` (G3, fragmentation reduces parallelism): per block one 1x1 conv c→c (1
  fragment), k convs in series through a narrower width m with 2·c·m + (k-2)·m² ≈ c², or k
  parallel 1x1 convs c→c/k concatenated; all ≈ c² mult-adds per pixel.
- `g4_elementwise` (G4, element-wise ops are not free): a ResNet bottleneck (1x1 c→c/4, 3x3,
  1x1 c/4→c) with or without its ReLUs and its identity shortcut (add).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mobiledeploy.errors import ConfigError
from mobiledeploy.registry import register_model

__all__ = ["MicroNet", "g1_channels", "g2_channels", "g3_series_width", "g1_ratio", "g2_groups", "g3_fragments",
           "g4_elementwise"]

_PAPER = "Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design, ECCV 2018 (arXiv:1807.11164)"


def g1_channels(width: int, ratio: int) -> tuple[int, int]:
    """(c1, c2) with c2 = ratio·c1 and c1·c2 ≈ width² (floor, as the paper's pairs)."""
    c1 = max(1, math.floor(width / math.sqrt(ratio)))
    return c1, ratio * c1


def g2_channels(width: int, groups: int) -> int:
    """c, a multiple of `groups`, with c²/groups ≈ width²."""
    return max(groups, round(width * math.sqrt(groups) / groups) * groups)


def g3_series_width(width: int, fragments: int) -> int:
    """Inner width m of `fragments` 1x1 convs in series with 2·c·m + (k-2)·m² ≈ c²."""
    if fragments == 2:
        return max(1, round(width / 2))
    return max(1, round(width * (math.sqrt(fragments - 1) - 1) / (fragments - 2)))


def _conv(cin: int, cout: int, kernel: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False)


class ConvReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 1, groups: int = 1, relu: bool = True) -> None:
        super().__init__(_conv(cin, cout, kernel, groups), *([nn.ReLU(inplace=True)] if relu else []))


class ParallelBlock(nn.Module):
    """k parallel 1x1 convs c→c/k, concatenated back to c channels."""

    def __init__(self, channels: int, fragments: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(ConvReLU(channels, channels // fragments) for _ in range(fragments))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Bottleneck(nn.Module):
    """ResNet bottleneck 1x1 → 3x3 → 1x1, with its ReLUs and identity shortcut switchable (G4)."""

    def __init__(self, channels: int, relu: bool, shortcut: bool) -> None:
        super().__init__()
        mid = max(1, channels // 4)
        self.conv1 = ConvReLU(channels, mid, relu=relu)
        self.conv2 = ConvReLU(mid, mid, kernel=3, relu=relu)
        self.conv3 = _conv(mid, channels)
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))
        if self.shortcut:
            y = y + x
        return self.relu(y)


class MicroNet(nn.Module):
    """1x1 stem from RGB → blocks → global average pool; the output is the pooled features."""

    def __init__(self, stem_channels: int, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.stem = ConvReLU(3, stem_channels)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.blocks(self.stem(x))), 1)


def _positive(name: str, **values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: {key} must be a positive integer (got {value!r})")


@register_model("g1_ratio", family="microbench", paper=_PAPER + ", Table 1 (G1)", choices={"ratio": (1, 2, 6, 12)})
def g1_ratio(ratio: int = 1, width: int = 32, blocks: int = 10) -> MicroNet:
    """G1: blocks of 1x1 convs c1→c2→c1 at channel ratio c2/c1 = `ratio`, c1·c2 ≈ width²."""
    _positive("g1_ratio", width=width, blocks=blocks)
    c1, c2 = g1_channels(width, ratio)
    return MicroNet(c1, [nn.Sequential(ConvReLU(c1, c2), ConvReLU(c2, c1)) for _ in range(blocks)])


@register_model("g2_groups", family="microbench", paper=_PAPER + ", Table 2 (G2)", choices={"groups": (1, 2, 4, 8)})
def g2_groups(groups: int = 1, width: int = 64, blocks: int = 10) -> MicroNet:
    """G2: `blocks` 1x1 group convs c→c with `groups` groups, c²/groups ≈ width²."""
    _positive("g2_groups", width=width, blocks=blocks)
    c = g2_channels(width, groups)
    return MicroNet(c, [ConvReLU(c, c, groups=groups) for _ in range(blocks)])


@register_model("g3_fragments", family="microbench", paper=_PAPER + ", Table 3 (G3)",
                choices={"fragments": (1, 2, 4), "layout": ("series", "parallel")})
def g3_fragments(fragments: int = 1, layout: str = "series", width: int = 64, blocks: int = 10) -> MicroNet:
    """G3: per block `fragments` 1x1 convs in series or in parallel at ≈ width² mult-adds per pixel."""
    _positive("g3_fragments", width=width, blocks=blocks)
    if layout == "parallel" and width % fragments:
        raise ConfigError(f"g3_fragments: width {width} must be a multiple of fragments={fragments} in parallel")

    def block() -> nn.Module:
        if fragments == 1:
            return ConvReLU(width, width)
        if layout == "parallel":
            return ParallelBlock(width, fragments)
        m = g3_series_width(width, fragments)
        return nn.Sequential(ConvReLU(width, m), *[ConvReLU(m, m) for _ in range(fragments - 2)], ConvReLU(m, width))

    return MicroNet(width, [block() for _ in range(blocks)])


@register_model("g4_elementwise", family="microbench", paper=_PAPER + ", Table 4 (G4)",
                choices={"relu": (True, False), "shortcut": (True, False)})
def g4_elementwise(relu: bool = True, shortcut: bool = True, width: int = 64, blocks: int = 10) -> MicroNet:
    """G4: ResNet bottlenecks (1x1 c→c/4, 3x3, 1x1 c/4→c) with or without ReLU and shortcut."""
    _positive("g4_elementwise", width=width, blocks=blocks)
    return MicroNet(width, [Bottleneck(width, relu, shortcut) for _ in range(blocks)])
