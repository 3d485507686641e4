"""EdgeNeXt-XXS (Maaz et al., EdgeNeXt: Efficiently Amalgamated CNN-Transformer Architecture for Mobile Vision
Applications, CADL/ECCV Workshops 2022, arXiv:2206.10589): ConvNeXt-like stages whose last block attends across
channels, not tokens.

The stem is a 4x4 stride-4 conv and a LayerNorm over channels; each later stage starts with a LayerNorm and a 2x2
stride-2 conv. A conv block is a depthwise kxk conv (k = 3, 5, 7, 9 by stage), LayerNorm, a Linear to 4x, GELU, a
Linear back, a layer scale and the residual. The last block of stages 2-4 is an SDTA encoder: the channels split in
s groups (s = 2, 2, 3, 4), each but the last a depthwise 3x3 on its group plus the previous group's output
(Res2Net-like), concatenated; in stage 2 a Fourier positional encoding (sine/cosine of the normalised row and
column, from 32 frequencies each, through a 1x1 conv) is added; then x + γ·XCA(LayerNorm(x)) — transposed
attention: q and k L2-normalised over the tokens, a per-head learnt temperature, a C/h x C/h attention map per head
(4 heads) — then LayerNorm, the 4x MLP, γ, and the block's residual. The head is a global mean, a LayerNorm and a
Linear.

Followed: timm `timm/models/edgenext.py` (edgenext_xx_small: depths (2, 2, 6, 2), dims (24, 48, 88, 168), heads 4,
global blocks (0, 1, 1, 1), kernels (3, 5, 7, 9), d2 scales (2, 2, 3, 4), positional encoding in stage 2 only,
expansion 4, layer scale 1e-6) at huggingface/pytorch-image-models aa4b5850c154 (2026-08-08), adapted there from
github.com/mmaaz60/EdgeNeXt.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import StagedNet

__all__ = ["PositionalEncodingFourier", "CrossCovarianceAttn", "EdgeNeXt", "edgenext_xx_small"]

#: layer scales of an untrained model: timm's 1e-6 (and N(0, 0.01) linears) leave every block an identity
SEEDED_LAYER_SCALE = 1.0


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (timm LayerNorm2d), eps 1e-6."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PositionalEncodingFourier(nn.Module):
    """sin/cos of the normalised row and column index at `hidden` frequencies (temperature^(2⌊i/2⌋/hidden)), each
    scaled to 2π, through a 1x1 conv to `dim` channels: timm's PositionalEncodingFourier, op for op."""

    def __init__(self, dim: int, hidden: int = 32, temperature: float = 10000.0) -> None:
        super().__init__()
        self.token_projection = nn.Conv2d(2 * hidden, dim, 1)
        self.hidden, self.temperature, self.scale = hidden, temperature, 2 * math.pi

    def forward(self, shape: tuple[int, int, int]) -> torch.Tensor:
        inv_mask = ~torch.zeros(shape).to(dtype=torch.bool)
        y_embed = inv_mask.cumsum(1, dtype=torch.float32)
        x_embed = inv_mask.cumsum(2, dtype=torch.float32)
        y_embed = y_embed / (y_embed[:, -1:, :] + 1e-6) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + 1e-6) * self.scale
        dim_t = torch.arange(self.hidden, dtype=torch.int64).to(torch.float32)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.hidden)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return self.token_projection(torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class LayerScale(nn.Module):
    """γ · x over the last (channel) dimension; timm keeps γ as a bare parameter of the block."""

    def __init__(self, dim: int, init: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * x

    def seeded_init(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.gamma.fill_(SEEDED_LAYER_SCALE)


class ConvBlock(nn.Module):
    def __init__(self, dim: int, kernel: int, expansion: int = 4) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp, self.gamma = Mlp(dim, expansion * dim), LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        return x + self.gamma(self.mlp(self.norm(y))).permute(0, 3, 1, 2)


class CrossCovarianceAttn(nn.Module):
    """XCA: attention between channels: softmax(norm(q) norm(k)ᵀ · temperature) v per head, q, k, v (C/h x tokens)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 4, 1).unbind(0)
        attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * self.temperature
        return self.proj((attn.softmax(dim=-1) @ v).permute(0, 3, 1, 2).reshape(b, n, c))


class SplitTransposeBlock(nn.Module):
    """SDTA: multi-scale depthwise 3x3 over channel groups, [+ positional encoding], XCA, then the MLP."""

    def __init__(self, dim: int, scales: int, heads: int, pos_emb: bool, expansion: int = 4) -> None:
        super().__init__()
        width = max(math.ceil(dim / scales), dim // scales)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, groups=width) for _ in range(max(1, scales - 1)))
        self.pos_embd = PositionalEncodingFourier(dim) if pos_emb else None
        self.norm_xca, self.gamma_xca, self.xca = nn.LayerNorm(dim, eps=1e-6), LayerScale(dim), CrossCovarianceAttn(dim, heads)
        self.norm, self.mlp, self.gamma = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, expansion * dim), LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut, spx, spo = x, x.chunk(len(self.convs) + 1, dim=1), []
        sp = spx[0]
        for i, conv in enumerate(self.convs):
            sp = conv(sp if i == 0 else sp + spx[i])
            spo.append(sp)
        x = torch.cat([*spo, spx[-1]], 1)
        b, c, h, w = x.shape
        x = x.reshape(b, c, h * w).permute(0, 2, 1)
        if self.pos_embd is not None:
            x = x + self.pos_embd((b, h, w)).reshape(b, -1, x.shape[1]).permute(0, 2, 1)
        x = (x + self.gamma_xca(self.xca(self.norm_xca(x)))).reshape(b, h, w, c)
        return shortcut + self.gamma(self.mlp(self.norm(x))).permute(0, 3, 1, 2)


class EdgeNeXt(StagedNet):
    stage_names = ("stage0", "stage1", "stage2", "stage3")

    def __init__(self, dims: tuple[int, ...], depths: tuple[int, ...], heads: int = 4, kernels=(3, 5, 7, 9),
                 scales=(2, 2, 3, 4), global_blocks=(0, 1, 1, 1), pos_emb=(False, True, False, False),
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0]))
        cin = dims[0]
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            blocks: list[nn.Module] = [LayerNorm2d(cin), nn.Conv2d(cin, dim, 2, 2)] if i else []
            blocks += [ConvBlock(dim, kernels[i]) for _ in range(depth - global_blocks[i])]
            blocks += [SplitTransposeBlock(dim, scales[i], heads, pos_emb[i]) for _ in range(global_blocks[i])]
            setattr(self, self.stage_names[i], nn.Sequential(*blocks))
            cin = dim
        self.head_norm, self.head = LayerNorm2d(cin), nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_norm(self.features(x).mean((2, 3), keepdim=True)).flatten(1))


@register_model(
    "edgenext_xx_small",
    family="edgenext",
    paper="Maaz et al., EdgeNeXt: Efficiently Amalgamated CNN-Transformer Architecture for Mobile Vision Applications, "
          "ECCV Workshops 2022 (arXiv:2206.10589)",
    aliases=("edgenext_xxs", "edgenext"),
    declared={"resolution=256": Declared(261e6, 1.3e6, "EdgeNeXt authors' model zoo (github.com/mmaaz60/EdgeNeXt README, "
                                         "mmaaz60.github.io/EdgeNeXt): edgenext_xx_small 1.33 M params, 261 M MAdds at 256; "
                                         "1,327,216 and 257.9 M here (the authors' counter is not named; 1.2% apart); timm's own count "
                                         "(pytorch-image-models aa4b5850c154 results/benchmark-infer-amp-nchw-pt291-cu130-"
                                         "5090.csv): 1.33 M, 0.33 GMACs at 288, 326.4 M here", 0.02)},
)
def edgenext_xx_small(num_classes: int = 1000) -> EdgeNeXt:
    """EdgeNeXt-XXS at 256x256 as trained (any multiple of 32 runs)."""
    return EdgeNeXt((24, 48, 88, 168), (2, 2, 6, 2), num_classes=num_classes)
