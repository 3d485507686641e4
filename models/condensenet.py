"""CondenseNet (Huang et al., CVPR 2018, arXiv:1711.09224) in its deployed, condensed form.

After training, a learned group convolution is condensed into: an index select that gathers, for
each of the G groups, the input channels that group kept (Sec. 4.1, 'Index'), BN-ReLU, a standard
1x1 group convolution and a channel shuffle ('Permute'); the classifier keeps half of its input
features the same way. This is the `condensenet_converted` model of the authors' code
(ShichenLiu/CondenseNet), ImageNet setting: stages 4-6-8-10-8, growth 8-16-32-64-128, bottleneck 4,
G = C (groups = condensation factor), 3x3 group conv with G groups.

The index select is a gather along the channel axis (ONNX Gather, TFLite GATHER, both builtin and
int8-capable), not a 1x1 permutation conv: it costs no mult-adds, where a permutation conv would add
C_in x C_in of them per layer, and it also expresses what a learned index can hold that a
permutation cannot: a channel read by several groups, or by none. With seeded weights the index is
a fixed permutation (group g reads channels g, g+G, g+2G, ...); a user's state_dict brings its own.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

from .common import ChannelShuffle

__all__ = ["CondenseNet", "IndexSelect", "CondensedConv", "DenseLayer", "condensenet", "interleave_index"]

STAGES = (4, 6, 8, 10, 8)
GROWTH = (8, 16, 32, 64, 128)
BOTTLENECK = 4
GROUPS = (4, 8)
CLASSIFIER_KEEP = 0.5


def interleave_index(channels: int, groups: int) -> torch.Tensor:
    """The permutation that puts channels g, g+G, g+2G, ... into group g (a (n, G) → (G, n) transpose)."""
    return torch.arange(channels).reshape(channels // groups, groups).t().reshape(-1)


class IndexSelect(nn.Module):
    """Gather channels (dim 1) by a fixed index buffer; loaded with the weights, never trained."""

    def __init__(self, index: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("index", index.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.index_select(x, 1, self.index)


class CondensedConv(nn.Module):
    """A condensed learned group conv: index select → BN → ReLU → 1x1 conv with G groups → shuffle."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        self.select = IndexSelect(interleave_index(cin, groups))
        self.norm = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, groups=groups, bias=False)
        self.shuffle = ChannelShuffle(groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(self.relu(self.norm(self.select(x)))))


class DenseLayer(nn.Module):
    """Condensed 1x1 (to 4k) → BN-ReLU-3x3 group conv (to k); the k new maps are concatenated to the input."""

    def __init__(self, cin: int, growth: int, groups: int) -> None:
        super().__init__()
        mid = BOTTLENECK * growth
        self.conv1 = CondensedConv(cin, mid, groups)
        self.conv2 = nn.Sequential(
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, growth, 3, padding=1, groups=groups, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv2(self.conv1(x))), 1)


class CondenseNet(nn.Module):
    stage_names = ("block1", "block2", "block3", "block4", "block5")

    def __init__(self, groups: int = 4, num_classes: int = 1000) -> None:
        super().__init__()
        channels = 2 * GROWTH[0]
        self.stem = nn.Conv2d(3, channels, 3, 2, 1, bias=False)
        for i, (name, layers, growth) in enumerate(zip(self.stage_names, STAGES, GROWTH)):
            block: list[nn.Module] = []
            for _ in range(layers):
                block.append(DenseLayer(channels, growth, groups))
                channels += growth
            # Transitions are a 2x2 average pool only (no compression, Sec. 4.2); BN-ReLU ends the last block.
            last = i == len(STAGES) - 1
            block.append(nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True)) if last else nn.AvgPool2d(2, 2))
            setattr(self, name, nn.Sequential(*block))
        self.pool = nn.AdaptiveAvgPool2d(1)
        kept = int(channels * CLASSIFIER_KEEP)
        self.select = IndexSelect(torch.arange(0, channels, channels // kept))
        self.fc = nn.Linear(kept, num_classes)

    def seeded_init(self, generator: torch.Generator) -> None:
        """Redraw every conv Kaiming-normal by fan-in (called by `init_weights`).

        Dense blocks are pre-activation: nothing normalises a conv's output before it joins the
        concatenation, and with BN at identity the fan-out init grows each layer's maps by up
        to in/out channels (x1000 over the network at G=8). Fan-in keeps new maps at the scale
        of their inputs, which int8 needs: TFLite gives every tensor of a concat chain one scale.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(self.select(torch.flatten(self.pool(x), 1)))


# Paper Table 5 (ImageNet) and the authors' README: CondenseNet-74 with G = C = 4 and G = C = 8.
# Those FLOPs come from the authors' `measure_model`, which also counts ReLU and pooling outputs
# (12.7 M here) and the classifier before condensing (2064 inputs, +1.0 M): that count gives 530.4 M
# and 275.3 M. Conv and linear mult-adds alone are 516.6 M (-2.3%) and 261.5 M (-4.6%, hence the
# 5% tolerance for G = C = 8).
_DECLARED = {
    # The authors' counter (utils.measure_model) adds one op per ReLU output to the mult-adds:
    # 11.0 M here, the same for every G, which is why plain MACs sit 12 M under both rows.
    "g=4": Declared(529e6, 4.8e6, "CondenseNet paper Table 5 (G=C=4: 529 M FLOPs, 4.8 M params)", 0.03, ("relu",)),
    "g=8": Declared(274e6, 2.9e6, "CondenseNet paper Table 5 (G=C=8: 274 M FLOPs, 2.9 M params)", 0.03, ("relu",)),
}


@register_model(
    "condensenet",
    family="condensenet",
    paper="Huang et al., CondenseNet: An Efficient DenseNet using Learned Group Convolutions, CVPR 2018 (arXiv:1711.09224)",
    aliases=("condensenet74", "condensenet_74"),
    choices={"g": GROUPS},
    declared=_DECLARED,
)
def condensenet(g: int = 4, num_classes: int = 1000) -> CondenseNet:
    """CondenseNet-74 (ImageNet) after condensing, with G = C = `g` groups."""
    return CondenseNet(groups=g, num_classes=num_classes)
