"""FastViT-T8 (Vasu et al., FastViT: A Fast Hybrid Vision Transformer using Structural Reparameterization, ICCV 2023,
arXiv:2303.14189): a re-parameterisable hybrid whose T variants mix tokens with RepMixer only (no attention).

The stem is three MobileOne blocks (models/blocks.py, shared with MobileOne; 3x3 stride 2, depthwise 3x3 stride 2,
1x1; GELU after each): each a sum of branches, conv-BN kxk, conv-BN 1x1 (the "scale" branch, when k > 1) and a BN
alone (the identity, when the shapes match). A stage after the first starts with a patch embedding: a grouped 7x7 stride-2 conv-BN (groups = input
channels, so 2 outputs per input channel) plus a 3x3 one (the RepLKNet large-kernel form), then a 1x1 MobileOne
block with GELU. A RepMixer block is x + γ·(mixer(x) - norm(x)) (mixer: a depthwise MobileOne block without act,
norm: a BN alone), then a residual ConvMlp (depthwise 7x7 conv-BN, 1x1 to 3x with bias, GELU, 1x1 back) scaled by
γ. The head is a MobileOne depthwise 3x3 block to 2x the width (channel multiplier 2) with SE (1/16, ReLU, sigmoid)
and GELU, a global mean and a Linear.

`reparameterize()` (timm's convention, converters/reparam.py, `--reparameterize`) folds every MobileOne block's
branches into one conv, each RepMixer into one depthwise 3x3 conv (γ included), each patch embedding's 7x7 and 3x3
into one 7x7; ConvMlp's conv-BN has `fuse()`. `build_model("fastvit_t8", deploy=True)` builds that form.
Followed: timm `timm/models/fastvit.py` (fastvit_t8: layers (2, 2, 4, 2), embed (48, 96, 192, 384), mlp ratio 3,
repmixer everywhere, layer scale 1e-5) at huggingface/pytorch-image-models aa4b5850c154 (2026-08-08), adapted there
from github.com/apple/ml-fastvit.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import ConvNorm, MobileOneBlock, StagedNet, conv_with
from .common import deploy_form

__all__ = ["MobileOneBlock", "RepMixer", "FastViT", "fastvit_t8"]

#: FastViT's MobileOne blocks end in GELU (timm fastvit.py's act_layer); the RepMixer's have none
_GeluBlock = partial(MobileOneBlock, act=nn.GELU)

#: layer scales of an untrained model (timm's training init is 1e-5, which leaves every block an identity)
SEEDED_LAYER_SCALE = 0.1


class ReparamLargeKernelConv(nn.Module):
    """Grouped kxk conv-BN + 3x3 conv-BN (RepLKNet), no SE or act in FastViT-T8; `reparameterize()` → one kxk conv."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int, small: int = 3) -> None:
        super().__init__()
        self.cin, self.cout, self.kernel, self.stride, self.groups, self.small = cin, cout, kernel, stride, groups, small
        self.large_conv = ConvNorm(cin, cout, kernel, stride, groups)
        self.small_conv = ConvNorm(cin, cout, small, stride, groups)
        self.reparam_conv: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return self.large_conv(x) + self.small_conv(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.reparam_conv is None:
            large, small, pad = self.large_conv.fuse(), self.small_conv.fuse(), (self.kernel - self.small) // 2
            weight = large.weight + nn.functional.pad(small.weight, [pad] * 4)
            self.reparam_conv = conv_with(self.cin, self.cout, self.kernel, self.stride, self.groups, weight,
                                      large.bias + small.bias)
            del self.large_conv, self.small_conv


class LayerScale2d(nn.Module):
    def __init__(self, channels: int, init: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma

    def seeded_init(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.gamma.fill_(SEEDED_LAYER_SCALE)


class RepMixer(nn.Module):
    """x + γ·(mixer(x) - norm(x)); `reparameterize()` → one depthwise kxk conv (timm RepMixer)."""

    def __init__(self, dim: int, kernel: int = 3) -> None:
        super().__init__()
        self.dim, self.kernel = dim, kernel
        self.norm = MobileOneBlock(dim, dim, kernel, groups=dim, act=None, scale=False, branches=0)
        self.mixer = MobileOneBlock(dim, dim, kernel, groups=dim, act=None)
        self.layer_scale = LayerScale2d(dim)
        self.reparam_conv: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return x + self.layer_scale(self.mixer(x) - self.norm(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.reparam_conv is None:
            (wm, bm), (wn, bn) = self.mixer.kernel_bias(), self.norm.kernel_bias()
            identity = torch.zeros_like(wm)
            identity[:, 0, self.kernel // 2, self.kernel // 2] = 1.0
            gamma = self.layer_scale.gamma
            weight, bias = identity + gamma.unsqueeze(-1) * (wm - wn), gamma.flatten() * (bm - bn)
            self.reparam_conv = conv_with(self.dim, self.dim, self.kernel, 1, self.dim, weight, bias)
            del self.norm, self.mixer, self.layer_scale


class ConvMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.conv = ConvNorm(dim, dim, 7, groups=dim)
        self.fc1, self.act, self.fc2 = nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.conv(x))))


class RepMixerBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.token_mixer = RepMixer(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio))
        self.layer_scale = LayerScale2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.token_mixer(x)
        return x + self.layer_scale(self.mlp(x))


def _patch_embed(cin: int, cout: int) -> nn.Sequential:
    """timm PatchEmbed(patch 7, stride 2): grouped (group size 1) 7x7 + 3x3, then a 1x1 MobileOne block with GELU."""
    return nn.Sequential(ReparamLargeKernelConv(cin, cout, 7, 2, groups=cin), _GeluBlock(cout, cout, 1))


class FastViT(StagedNet):
    stage_names = ("stage0", "stage1", "stage2", "stage3")

    def __init__(self, layers: tuple[int, ...], dims: tuple[int, ...], mlp_ratio: float = 3.0,
                 num_classes: int = 1000) -> None:
        super().__init__()
        d = dims[0]
        self.stem = nn.Sequential(_GeluBlock(3, d, 3, 2), _GeluBlock(d, d, 3, 2, groups=d), _GeluBlock(d, d, 1))
        cin = d
        for index, (dim, depth) in enumerate(zip(dims, layers)):
            blocks: list[nn.Module] = [_patch_embed(cin, dim)] if index else []
            blocks += [RepMixerBlock(dim, mlp_ratio) for _ in range(depth)]
            setattr(self, self.stage_names[index], nn.Sequential(*blocks))
            cin = dim
        self.final_conv = _GeluBlock(cin, 2 * cin, 3, groups=cin, se=True)
        self.head = nn.Linear(2 * cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.final_conv(self.features(x)).mean((2, 3)))


@register_model(
    "fastvit_t8",
    family="fastvit",
    paper="Vasu et al., FastViT: A Fast Hybrid Vision Transformer using Structural Reparameterization, ICCV 2023 "
          "(arXiv:2303.14189)",
    aliases=("fastvit",),
    declared={"resolution=256": Declared(0.7e9, 4.03e6, "timm's own count of the definition followed, training form "
                                         "(pytorch-image-models aa4b5850c154 results/benchmark-infer-amp-nchw-pt240-cu124-"
                                         "rtx3090.csv: 4.03 M params, 0.7 GMACs at 256; 4,026,232 and 690.1 M here; its pt291-"
                                         "cu130-5090.csv lists 4.0 M and 0.69 G, the re-parameterised 3,994,216 and 685.2 M "
                                         "here)", 0.02)},
)
def fastvit_t8(num_classes: int = 1000, deploy: bool = False) -> FastViT:
    """FastViT-T8 at 256x256 as trained (any multiple of 32 runs); `deploy=True` builds the re-parameterised form."""
    model = FastViT((2, 2, 4, 2), (48, 96, 192, 384), mlp_ratio=3.0, num_classes=num_classes)
    if deploy:
        deploy_form(model)
    return model
