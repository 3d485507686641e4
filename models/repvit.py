"""RepViT-M1 (Wang et al., RepViT: Revisiting Mobile CNN From ViT Perspective, CVPR 2024, arXiv:2307.09283): a
MobileNetV3-like CNN with the ViT's separate token mixer and channel mixer, re-parameterisable.

Each block is a token mixer (a RepVGG-style depthwise 3x3: 3x3 conv-BN + 1x1 depthwise conv-BN + identity, then
nothing more in the M1 "legacy" form), an SE (ratio 0.25, in every other block of a stage, first one included), and a
channel mixer (1x1 conv-BN, GELU, 1x1 conv-BN, 2x expansion) with a residual. A stage starts with a downsampling
unit: a block without SE, a stride-2 depthwise 3x3 conv-BN, a 1x1 conv-BN to the new width and a residual channel
mixer. The stem is two stride-2 3x3 conv-BNs with GELU between; the head a global mean, then two BatchNorm1d +
Linear classifiers (the distillation head) whose outputs are averaged.

`reparameterize` (timm's `fuse()` on each such module, see converters/reparam.py) folds every conv-BN into one conv,
the token mixer's three branches into one depthwise 3x3, and the two BN + Linear heads into one Linear: the form
the paper times and counts (`build_model("repvit_m1", deploy=True)` builds that form directly). Followed: timm
`timm/models/repvit.py` (repvit_m1: embed (48, 96, 192, 384), depth (2, 2, 14, 2), legacy=True) at
huggingface/pytorch-image-models aa4b5850c154 (2026-08-08), adapted there from github.com/jameslahm/RepViT.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import ConvNorm, NormLinear, StagedNet
from .common import SqueezeExcite, deploy_form

__all__ = ["ConvNorm", "RepVggDw", "RepViT", "repvit_m1"]


class RepVggDw(nn.Module):
    """Token mixer: depthwise 3x3 conv-BN + depthwise 1x1 conv-BN + identity; `fuse()` → one depthwise 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv, self.conv1 = ConvNorm(channels, channels, 3, groups=channels), ConvNorm(channels, channels, 1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.conv1(x) + x

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        conv, conv1 = self.conv.fuse(), self.conv1.fuse()
        identity = torch.zeros_like(conv.weight)
        identity[:, :, 1, 1] = 1.0
        conv.weight.add_(nn.functional.pad(conv1.weight, [1, 1, 1, 1]) + identity)
        conv.bias.add_(conv1.bias)
        return conv


class ChannelMixer(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv1, self.act, self.conv2 = ConvNorm(channels, hidden), nn.GELU(), ConvNorm(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class RepViTBlock(nn.Module):
    def __init__(self, channels: int, se: bool, mlp_ratio: int = 2) -> None:
        super().__init__()
        reduced = max(8, int(channels * 0.25 + 4) // 8 * 8)  # timm's make_divisible(c / 4, 8, round_limit=0)
        self.token_mixer = RepVggDw(channels)
        self.se = SqueezeExcite(channels, reduced) if se else nn.Identity()
        self.channel_mixer = ChannelMixer(channels, channels * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_mixer(self.se(self.token_mixer(x)))


class Downsample(nn.Sequential):
    def __init__(self, cin: int, cout: int, mlp_ratio: int = 2) -> None:
        super().__init__(RepViTBlock(cin, se=False), ConvNorm(cin, cin, 3, 2, groups=cin), ConvNorm(cin, cout),
                         ChannelMixer(cout, cout * mlp_ratio))


class DistilledHead(nn.Module):
    """The classifier and the distillation classifier, averaged; `fuse()` → their mean as one Linear."""

    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.head, self.head_dist = NormLinear(features, classes), NormLinear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.head(x) + self.head_dist(x)) / 2

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        head, dist = self.head.fuse(), self.head_dist.fuse()
        head.weight.add_(dist.weight).div_(2)
        head.bias.add_(dist.bias).div_(2)
        return head


class RepViT(StagedNet):
    stage_names = ("stage0", "stage1", "stage2", "stage3")

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...], num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvNorm(3, widths[0] // 2, 3, 2), nn.GELU(), ConvNorm(widths[0] // 2, widths[0], 3, 2))
        cin = widths[0]
        for index, (width, depth) in enumerate(zip(widths, depths)):
            blocks: list[nn.Module] = [Downsample(cin, width)] if index else []
            blocks += [RepViTBlock(width, se=i % 2 == 0) for i in range(depth)]
            setattr(self, self.stage_names[index], nn.Sequential(*blocks))
            cin = width
        self.classifier = DistilledHead(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


@register_model(
    "repvit_m1",
    family="repvit",
    paper="Wang et al., RepViT: Revisiting Mobile CNN From ViT Perspective, CVPR 2024 (arXiv:2307.09283)",
    aliases=("repvit", "repvit_m0_9"),
    declared={"deploy=True": Declared(0.8e9, 5.1e6, "RepViT paper, ImageNet-1K table of its first arXiv version (RepViT-M1, renamed M0.9 "
                                      "later: 5.1 M params, 0.8 G MACs, counted after re-parameterisation; 815.6 M and 5.07 M here)", 0.03),
              "deploy=True,resolution=224": Declared(0.82e9, 5.07e6, "timm's own count of the definition followed "
                                                     "(pytorch-image-models aa4b5850c154 results/benchmark-infer-amp-"
                                                     "nchw-pt291-cu130-5090.csv: 5.07 M params, 0.82 GMACs)", 0.02)},
)
def repvit_m1(num_classes: int = 1000, deploy: bool = False) -> RepViT:
    """RepViT-M1 at 224x224 (any multiple of 32 runs); `deploy=True` builds the re-parameterised form."""
    model = RepViT((48, 96, 192, 384), (2, 2, 14, 2), num_classes=num_classes)
    if deploy:
        deploy_form(model)
    return model
