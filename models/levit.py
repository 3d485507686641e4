"""LeViT-128S (Graham et al., LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference, ICCV 2021,
arXiv:2104.01136): a convolutional stem, then attention stages on tokens, hard-swish throughout.

The stem is four stride-2 3x3 conv-BNs (hard-swish between) to a 14x14 grid of 128-wide tokens at 224. Every linear
layer is a Linear (no bias) followed by a BatchNorm1d over the tokens. A block is x + Attention(x), then x + MLP(x)
(2x, hard-swish). Attention: q, k (16 per head) and v (2x = 32 per head) from one linear-BN, softmax(q kᵀ / 4 + a
learnt bias per head and relative offset (|dy|, |dx|)) v, hard-swish, a linear-BN back to the width. Between stages an
attention downsample: queries from every second token of every second row (k/v from all), heads = width / 16,
v 4x = 64 per head, no residual, then a residual MLP. Head: the tokens' mean, then the classifier and the
distillation classifier (BatchNorm1d + Linear each), averaged.

Every linear-BN, conv-BN and the heads have timm's `fuse()` (converters/reparam.py, `--reparameterize`).
Followed: timm `timm/models/levit.py` (levit_128s: embed (128, 256, 384), key dim 16, heads (4, 6, 8), depth
(2, 3, 4), attn and mlp ratio 2, stem 's16', hard-swish) at huggingface/pytorch-image-models aa4b5850c154
(2026-08-08), adapted there from github.com/facebookresearch/LeViT. As timm the bias table holds res² entries per
head (res = the stage's side at `img_size`), indexed |dy| · res + |dx|; a smaller input indexes the same table, so
any input up to `img_size` runs (a larger one would need a larger table: refused by the index).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import Residual, StagedNet, conv_stem16
from .repvit import DistilledHead

__all__ = ["LinearNorm", "LeViT", "levit_128s"]


class LinearNorm(nn.Module):
    """Linear (no bias) + BatchNorm1d over every token; `fuse()` → one Linear with bias."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.linear, self.bn = nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self.bn(y.flatten(0, 1)).reshape_as(y)

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        scale = self.bn.weight / (self.bn.running_var + self.bn.eps).sqrt()
        fused = nn.Linear(self.linear.in_features, self.linear.out_features)
        fused.weight.copy_(self.linear.weight * scale[:, None])
        fused.bias.copy_(self.bn.bias - self.bn.running_mean * scale)
        return fused


def _bias_index(side: int, grid: int, stride: int) -> torch.Tensor:
    """(queries, keys) indices |dy| · side + |dx| for a grid x grid map, queries every `stride`-th row and column."""
    keys = [(y, x) for y in range(grid) for x in range(grid)]
    queries = [(y, x) for y in range(0, grid, stride) for x in range(0, grid, stride)]
    return torch.tensor([[abs(q[0] - k[0]) * side + abs(q[1] - k[1]) for k in keys] for q in queries])


class Attention(nn.Module):
    """Multi-head attention with a learnt positional bias; `stride` 2 makes the queries from every second token of
    every second row (the attention downsample)."""

    def __init__(self, cin: int, cout: int, heads: int, value_ratio: float, side: int, stride: int = 1,
                 key_dim: int = 16) -> None:
        super().__init__()
        self.heads, self.key_dim, self.value_dim, self.side, self.stride = heads, key_dim, int(value_ratio * key_dim), side, stride
        self.qkv = LinearNorm(cin, heads * (self.value_dim + key_dim * (2 if stride == 1 else 1)))
        self.q = LinearNorm(cin, heads * key_dim) if stride > 1 else None
        self.proj = nn.Sequential(nn.Hardswish(), LinearNorm(heads * self.value_dim, cout))
        self.attention_biases = nn.Parameter(torch.zeros(heads, side * side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        grid = math.isqrt(n)
        index = _bias_index(self.side, grid, self.stride)
        bias = torch.index_select(self.attention_biases, 1, index.flatten()).reshape(self.heads, *index.shape)
        parts = self.qkv(x).reshape(b, n, self.heads, -1)
        if self.q is None:
            q, k, v = parts.split([self.key_dim, self.key_dim, self.value_dim], dim=3)
        else:
            k, v = parts.split([self.key_dim, self.value_dim], dim=3)
            sub = x.reshape(b, grid, grid, -1)[:, ::self.stride, ::self.stride].reshape(b, -1, x.shape[-1])
            q = self.q(sub).reshape(b, sub.shape[1], self.heads, self.key_dim)
        attn = (q.transpose(1, 2) @ k.permute(0, 2, 3, 1) * self.key_dim ** -0.5 + bias).softmax(dim=-1)
        return self.proj((attn @ v.transpose(1, 2)).transpose(1, 2).reshape(b, q.shape[1], -1))


def _mlp(dim: int, ratio: int = 2) -> Residual:
    return Residual(nn.Sequential(LinearNorm(dim, ratio * dim), nn.Hardswish(), LinearNorm(ratio * dim, dim)))


class LeViT(StagedNet):
    stage_names = ("stage0", "stage1", "stage2")

    def __init__(self, dims: tuple[int, ...], heads: tuple[int, ...], depths: tuple[int, ...], img_size: int = 224,
                 num_classes: int = 1000, key_dim: int = 16) -> None:
        super().__init__()
        d = dims[0]
        self.stem = conv_stem16(d, nn.Hardswish)
        side, cin = img_size // 16, d
        for index, (dim, head, depth) in enumerate(zip(dims, heads, depths)):
            blocks: list[nn.Module] = []
            if index:
                blocks += [Attention(cin, dim, cin // key_dim, 4.0, side, stride=2), _mlp(dim)]
                side = (side - 1) // 2 + 1
            for _ in range(depth):
                blocks += [Residual(Attention(dim, dim, head, 2.0, side)), _mlp(dim)]
            setattr(self, self.stage_names[index], nn.Sequential(*blocks))
            cin = dim
        self.classifier = DistilledHead(cin, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x).flatten(2).transpose(1, 2)  # the stem's map as tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(1))


@register_model(
    "levit_128s",
    family="levit",
    paper="Graham et al., LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference, ICCV 2021 "
          "(arXiv:2104.01136)",
    aliases=("levit",),
    declared={"": Declared(305e6, 7.8e6, "LeViT paper Table 1 (LeViT-128S: 305 M FLOPs, counted as multiply-adds, "
                           "7.8 M params; 304.7 M and 7,777,058 here)", 0.03),
              "resolution=224": Declared(0.30e9, 7.76e6, "timm's own count of the definition followed (pytorch-image-"
                                         "models aa4b5850c154 results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv: "
                                         "7.76 M params, 0.3 GMACs)", 0.03)},
)
def levit_128s(num_classes: int = 1000, img_size: int = 224) -> LeViT:
    """LeViT-128S at 224x224 (any square input up to `img_size`, a multiple of 16)."""
    return LeViT((128, 256, 384), (4, 6, 8), (2, 3, 4), img_size=img_size, num_classes=num_classes)
