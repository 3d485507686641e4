"""MobileViT-XXS (Mehta & Rastegari, MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision
Transformer, ICLR 2022, arXiv:2110.02178): a hybrid CNN-transformer.

MobileNet v2 blocks (expansion 2 for XXS) and, from stride 8 on, MobileViT blocks: a 3x3 conv and a 1x1 conv to
the transformer width d, the map unfolded into 2x2 patches (each of the 4 pixel positions of a patch is a
sequence over the patches), L pre-norm transformer layers (4 heads, LayerNorm, SiLU feed-forward), a LayerNorm,
folded back, a 1x1 conv to C, concatenated with the block's input and fused by a 3x3 conv. SiLU everywhere.
The widths, depths and feed-forward sizes are the paper's Table 4 (appendix) as the authors' code writes them
(apple/ml-cvnets, cvnets/models/classification/config/mobilevit.py, "xx_small").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import StagedNet
from .common import ConvBN

__all__ = ["MobileViT", "MobileViTBlock", "mobilevit_xxs"]

# (kind, out channels, stride, blocks | (transformer width d, layers L, feed-forward)); MV2 expansion 2
XXS = (("mv2", 16, 1, 1), ("mv2", 24, 2, 3), ("vit", 48, 2, (64, 2, 128)), ("vit", 64, 2, (80, 4, 160)),
       ("vit", 80, 2, (96, 3, 192)))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(ConvBN(cin, hidden, 1, act=nn.SiLU), ConvBN(hidden, hidden, 3, stride, groups=hidden, act=nn.SiLU),
                                   ConvBN(hidden, cout, 1, act=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


class TransformerLayer(nn.Module):
    """Pre-norm: x + MHSA(LN(x)), then x + FFN(LN(x)) with SiLU."""

    def __init__(self, dim: int, ffn: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.SiLU(), nn.Linear(ffn, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))
        return x + self.ffn(self.norm2(x))


class MobileViTBlock(nn.Module):
    def __init__(self, channels: int, dim: int, layers: int, ffn: int, patch: int = 2) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(ConvBN(channels, channels, 3, act=nn.SiLU), nn.Conv2d(channels, dim, 1, bias=False))
        self.transformer = nn.Sequential(*[TransformerLayer(dim, ffn) for _ in range(layers)], nn.LayerNorm(dim))
        self.project = ConvBN(dim, channels, 1, act=nn.SiLU)
        self.fuse = ConvBN(2 * channels, channels, 3, act=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local(x)
        p, size = self.patch, y.shape[-2:]
        if size[0] % p or size[1] % p:  # as the authors' code: resized to whole patches and back (7x7 at 224)
            y = F.interpolate(y, size=(-(-size[0] // p) * p, -(-size[1] // p) * p), mode="bilinear", align_corners=False)
        b, d, h, w = y.shape
        # (B, d, H, W) → (B * p * p, H/p * W/p, d): one sequence per pixel position within a patch
        tokens = y.reshape(b, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, -1, d)
        tokens = self.transformer(tokens)
        y = tokens.reshape(b, p, p, h // p, w // p, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
        if (h, w) != tuple(size):
            y = F.interpolate(y, size=tuple(size), mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, self.project(y)], dim=1))


class MobileViT(StagedNet):
    stage_names = ("layer1", "layer2", "layer3", "layer4", "layer5")

    def __init__(self, config: tuple, num_classes: int = 1000, stem: int = 16, last_factor: int = 4) -> None:
        super().__init__()
        self.stem = ConvBN(3, stem, 3, 2, act=nn.SiLU)
        cin = stem
        for name, (kind, cout, stride, spec) in zip(self.stage_names, config):
            if kind == "mv2":
                blocks = [InvertedResidual(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(spec)]
            else:
                dim, layers, ffn = spec
                blocks = [InvertedResidual(cin, cout, stride), MobileViTBlock(cout, dim, layers, ffn)]
            setattr(self, name, nn.Sequential(*blocks))
            cin = cout
        self.head = ConvBN(cin, cin * last_factor, 1, act=nn.SiLU)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin * last_factor, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.head(self.features(x))), 1))


@register_model(
    "mobilevit_xxs",
    family="mobilevit",
    paper="Mehta & Rastegari, MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision Transformer, ICLR 2022 "
          "(arXiv:2110.02178)",
    aliases=("mobilevit", "mvit_xxs"),
    declared={"resolution=256": Declared(None, 1.3e6, "MobileViT paper Table 1 (MobileViT-XXS: 1.3 M params; the paper gives no FLOPs "
                                        "for XXS)", 0.03)},
)
def mobilevit_xxs(num_classes: int = 1000) -> MobileViT:
    """MobileViT-XXS at 256x256 as trained (any multiple of 32 runs)."""
    return MobileViT(XXS, num_classes=num_classes)
