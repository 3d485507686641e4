"""EfficientViT-M0 (Liu et al., EfficientViT: Memory Efficient Vision Transformer with Cascaded Group Attention,
CVPR 2023, arXiv:2305.07027): a hybrid whose attention is cascaded over heads, in local 7x7 windows.

A block is a "sandwich": depthwise 3x3 conv-BN and a 2x conv FFN (ReLU) before and after one attention, each a
residual. The attention (cascaded group attention) gives each head its own slice of the channels; head i adds head
i-1's output to its slice, projects it to q, k, v with a 1x1 conv-BN, runs a depthwise 5x5 conv-BN on q, and
attends over the window with a learnt bias per head and relative offset (|dy|, |dx|); the heads' outputs are
concatenated, ReLU, 1x1 conv-BN. Maps larger than the window are padded to whole windows. Stages are separated by
a residual dw conv + FFN, a patch merging (1x1 to 4x, dw 3x3 stride 2, SE, 1x1) and another dw conv + FFN. The stem
is four stride-2 3x3 conv-BNs (ReLU between), the head a global mean and BatchNorm1d + Linear.

Every conv-BN and the head's BN + Linear has timm's `fuse()` (converters/reparam.py, `--reparameterize`).
Followed: timm `timm/models/efficientvit_msra.py` (efficientvit_m0: embed (64, 128, 192), depth (1, 2, 3), heads
(4, 4, 4), key dim 16, windows 7, q kernels 5) at huggingface/pytorch-image-models aa4b5850c154 (2026-08-08),
adapted there from github.com/microsoft/Cream/tree/main/EfficientViT. One difference in form, none in function
or size: the bias of an offset is indexed dy * window + dx (timm numbers the offsets in order of appearance; both
tables hold window² entries per head), so that a map smaller than the window (any input size) indexes the same table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import ConvNorm, NormLinear, Residual, StagedNet, conv_stem16
from .common import SqueezeExcite

__all__ = ["CascadedGroupAttention", "EfficientViT", "efficientvit_m0"]


def _dw_ffn(dim: int) -> list[nn.Module]:
    return [Residual(ConvNorm(dim, dim, 3, groups=dim)),
            Residual(nn.Sequential(ConvNorm(dim, 2 * dim), nn.ReLU(), ConvNorm(2 * dim, dim)))]


class CascadedGroupAttention(nn.Module):
    def __init__(self, dim: int, key_dim: int, heads: int, window: int, kernel: int = 5) -> None:
        super().__init__()
        self.key_dim, self.value_dim, self.window = key_dim, dim // heads, window  # value dim = attn_ratio · key dim
        self.scale = key_dim ** -0.5
        self.qkvs = nn.ModuleList(ConvNorm(dim // heads, 2 * key_dim + self.value_dim) for _ in range(heads))
        self.dws = nn.ModuleList(ConvNorm(key_dim, key_dim, kernel, groups=key_dim) for _ in range(heads))
        self.proj = nn.Sequential(nn.ReLU(), ConvNorm(self.value_dim * heads, dim))
        self.attention_biases = nn.Parameter(torch.zeros(heads, window * window))

    def _bias_index(self, h: int, w: int) -> torch.Tensor:
        """(h·w, h·w) indices into the table: |dy| · window + |dx| (a constant of the graph, made without torch ops)."""
        points = [(y, x) for y in range(h) for x in range(w)]
        return torch.tensor([[abs(a[0] - b[0]) * self.window + abs(a[1] - b[1]) for b in points] for a in points])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        index = self._bias_index(h, w)
        bias = torch.index_select(self.attention_biases, 1, index.flatten()).reshape(-1, *index.shape)
        feats, feat, out = x.chunk(len(self.qkvs), dim=1), None, []
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws)):
            feat = feats[i] if feat is None else feat + feats[i]
            q, k, v = qkv(feat).split([self.key_dim, self.key_dim, self.value_dim], dim=1)
            q, k, v = dw(q).flatten(2), k.flatten(2), v.flatten(2)
            attn = ((q * self.scale).transpose(-2, -1) @ k + bias[i]).softmax(dim=-1)
            feat = (v @ attn.transpose(-2, -1)).reshape(b, self.value_dim, h, w)
            out.append(feat)
        return self.proj(torch.cat(out, 1))


class LocalWindowAttention(nn.Module):
    """The attention over whole windows: a map no larger than one window attends at once, else padded and split."""

    def __init__(self, dim: int, key_dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.attn = CascadedGroupAttention(dim, key_dim, heads, window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.window
        if h <= s and w <= s:
            return self.attn(x)
        pad_b, pad_r = (s - h % s) % s, (s - w % s) % s
        y = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, pad_r, 0, pad_b))
        nh, nw = (h + pad_b) // s, (w + pad_r) // s
        y = y.reshape(b, nh, s, nw, s, c).transpose(2, 3).reshape(b * nh * nw, s, s, c).permute(0, 3, 1, 2)
        y = self.attn(y).permute(0, 2, 3, 1).reshape(b, nh, nw, s, s, c).transpose(2, 3).reshape(b, nh * s, nw * s, c)
        return y[:, :h, :w].permute(0, 3, 1, 2)


class EfficientViTBlock(nn.Sequential):
    def __init__(self, dim: int, key_dim: int, heads: int, window: int) -> None:
        super().__init__(*_dw_ffn(dim), Residual(LocalWindowAttention(dim, key_dim, heads, window)), *_dw_ffn(dim))


class PatchMerging(nn.Sequential):
    def __init__(self, dim: int, out: int) -> None:
        hidden = 4 * dim
        super().__init__(ConvNorm(dim, hidden), nn.ReLU(), ConvNorm(hidden, hidden, 3, 2, groups=hidden), nn.ReLU(),
                         SqueezeExcite(hidden, max(8, int(hidden * 0.25 + 4) // 8 * 8)), ConvNorm(hidden, out))


class EfficientViT(StagedNet):
    stage_names = ("stage0", "stage1", "stage2")

    def __init__(self, dims: tuple[int, ...], depths: tuple[int, ...], heads: tuple[int, ...], key_dim: int = 16,
                 window: int = 7, img_size: int = 224, num_classes: int = 1000) -> None:
        super().__init__()
        d = dims[0]
        self.stem = conv_stem16(d, nn.ReLU)
        resolution, cin = img_size // 16, d
        for index, (dim, depth, head) in enumerate(zip(dims, depths, heads)):
            blocks: list[nn.Module] = []
            if index:
                blocks += [*_dw_ffn(cin), PatchMerging(cin, dim), *_dw_ffn(dim)]
                resolution = (resolution - 1) // 2 + 1
            # timm: a stage whose map is smaller than the window attends over the whole map (its bias table that size)
            blocks += [EfficientViTBlock(dim, key_dim, head, min(window, resolution)) for _ in range(depth)]
            setattr(self, self.stage_names[index], nn.Sequential(*blocks))
            cin = dim
        self.head = NormLinear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


@register_model(
    "efficientvit_m0",
    family="efficientvit",
    paper="Liu et al., EfficientViT: Memory Efficient Vision Transformer with Cascaded Group Attention, CVPR 2023 "
          "(arXiv:2305.07027)",
    aliases=("efficientvit", "efficientvit_msra_m0"),
    declared={"": Declared(79e6, 2.3e6, "EfficientViT paper Table 1 (EfficientViT-M0: 2.3 M params, 79 M FLOPs, "
                           "counted as multiply-adds)", 0.05),
              "resolution=224": Declared(0.08e9, 2.33e6, "timm's own count of the definition followed (pytorch-image-"
                                         "models aa4b5850c154 results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv: "
                                         "2.33 M params, 0.08 GMACs; its pt210 tables list 2.35 M; 2,349,436 here)", 0.06)},
)
def efficientvit_m0(num_classes: int = 1000, img_size: int = 224) -> EfficientViT:
    """EfficientViT-M0; `img_size` sets the windows as timm does (a stage smaller than 7x7 attends over all of it),
    and any input size runs."""
    return EfficientViT((64, 128, 192), (1, 2, 3), (4, 4, 4), img_size=img_size, num_classes=num_classes)
