"""MobileOne-S0 (Vasu et al., MobileOne: An Improved One millisecond Mobile Backbone, CVPR 2023, arXiv:2206.04040):
a plain stack of re-parameterisable depthwise and pointwise blocks, trained with several branches and deployed as
one conv each.

Every MobileOne block (models/blocks.py) sums, before its ReLU: `branches` kxk conv-BNs (S0 trains with 4, the
"over-parameterisation factor" k of the paper), a 1x1 conv-BN (the "scale" branch, 3x3 blocks only) and a BN alone
(the identity, when input and output shapes match). A unit of a stage is a depthwise 3x3 block then a pointwise 1x1
block to the stage's width; a stage's first unit has stride 2. The stem is one 3x3 stride-2 block (a single kxk
branch) to 48 channels, the head a global mean and a Linear, no 1x1 head conv.

`reparameterize()` (timm's convention, converters/reparam.py, `export --reparameterize`) folds each block into one
conv with bias, the form the paper counts and times; `build_model("mobileone_s0", deploy=True)` builds that form.
The training form counts 1,051.9 M MACs and 5.29 M params at 224 (tests/test_zoo.py); timm's results table
(pytorch-image-models aa4b5850c154 results/benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv) lists 5.29 M and
1.09 GMACs, which is this count plus one per element of each BN, add and ReLU (1,051.9 M + 36.5 M = 1,088.4 M; its
benchmark.py profiles with DeepSpeed's flops profiler).
Followed: timm `timm/models/byobnet.py` (`mobileone_s0`: `_mobileone_bcfg(wf=(0.75, 1.0, 1.0, 2.0),
num_conv_branches=4)`, depths (2, 8, 10, 1) of widths 64·wf, 128, 256, 512·wf; stem_type 'one', 48 channels;
MobileOneBlock) at huggingface/pytorch-image-models aa4b5850c154 (2026-08-08), adapted there from
github.com/apple/ml-mobileone.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .blocks import MobileOneBlock, StagedNet
from .common import deploy_form

__all__ = ["MobileOne", "mobileone_s0", "S0"]

# (blocks, width) per stage: timm's _mobileone_bcfg depths with widths (64, 128, 256, 512) x wf (0.75, 1, 1, 2)
S0 = ((2, 48), (8, 128), (10, 256), (1, 1024))


class MobileOne(StagedNet):
    stage_names = ("stage0", "stage1", "stage2", "stage3")

    def __init__(self, table: tuple, stem: int = 48, branches: int = 4, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = MobileOneBlock(3, stem, 3, 2)
        cin = stem
        for index, (depth, width) in enumerate(table):
            blocks: list[nn.Module] = []
            for i in range(depth):
                blocks += [MobileOneBlock(cin, cin, 3, 2 if i == 0 else 1, groups=cin, branches=branches),
                           MobileOneBlock(cin, width, 1, branches=branches)]
                cin = width
            setattr(self, self.stage_names[index], nn.Sequential(*blocks))
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


@register_model(
    "mobileone_s0",
    family="mobileone",
    paper="Vasu et al., MobileOne: An Improved One millisecond Mobile Backbone, CVPR 2023 (arXiv:2206.04040)",
    aliases=("mobileone",),
    declared={"deploy=True": Declared(275e6, 2.1e6, "MobileOne paper, ImageNet-1k comparison table (MobileOne-S0: 2.1 M "
                                      "params, 275 M FLOPs, counted as multiply-adds after re-parameterisation); timm's "
                                      "count of the definition followed, re-parameterised, is 2.08 M / 0.28 GMACs "
                                      "(pytorch-image-models aa4b5850c154 results/benchmark-infer-amp-nchw-pt291-cu130-"
                                      "5090.csv)", 0.02)},
)
def mobileone_s0(num_classes: int = 1000, deploy: bool = False) -> MobileOne:
    """MobileOne-S0 at 224x224 (any multiple of 32 runs), 4 branches per block; `deploy=True` builds the
    re-parameterised form."""
    model = MobileOne(S0, num_classes=num_classes)
    if deploy:
        deploy_form(model)
    return model
