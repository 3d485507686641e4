"""AlexNet, the single-tower variant the ShuffleNet paper compares against (Table 8, ~720 MFLOPs).

Krizhevsky, "One weird trick for parallelizing CNNs" (arXiv:1404.5997): 64-192-384-256-256
channels, no grouped convs; 714 M mult-adds and 61.1 M params at 224x224.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 36, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model(
    "alexnet",
    family="alexnet",
    paper="Krizhevsky, One weird trick for parallelizing CNNs, 2014 (arXiv:1404.5997); baseline of ShuffleNet Table 8",
    declared={"": Declared(720e6, 61.1e6, "ShuffleNet paper Table 8 (720 MFLOPs); params of the single-tower net")},
)
def alexnet(num_classes: int = 1000) -> AlexNet:
    """Single-tower AlexNet."""
    return AlexNet(num_classes=num_classes)
