"""AlexNet, the single-tower variant the ShuffleNet paper compares against (Table 8, ~720 MFLOPs).

Krizhevsky, "One weird trick for parallelizing CNNs" (arXiv:1404.5997): 64-192-384-256-256
channels, no grouped convs; 714 M mult-adds and 61.1 M params at 224x224.
"""

from __future__ import annotations

import torch
from torch import nn

from mobiledeploy.registry import Declared, register_model

__all__ = ["AlexNet", "alexnet", "ExportableAdaptiveAvgPool2d"]


class ExportableAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """`AdaptiveAvgPool2d` that exports to ONNX at any input size.

    ONNX has no adaptive pooling, so torch refuses to export it unless the output divides the
    input. Shapes are static at export, so the bins PyTorch would use (start = floor(i*H/o),
    end = ceil((i+1)*H/o)) are computed in Python and pooled separably with slice + mean +
    concat, which is exactly the adaptive average. At 224x224 AlexNet's map is already 6x6
    and the module is the identity, so the paper's cost figures are untouched.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        oh, ow = (self.output_size, self.output_size) if isinstance(self.output_size, int) else self.output_size
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if (h, w) == (oh, ow):
            return x
        if h % oh == 0 and w % ow == 0:
            return nn.functional.avg_pool2d(x, (h // oh, w // ow))
        x = torch.cat([x[:, :, (i * h) // oh: -((-(i + 1) * h) // oh), :].mean(2, keepdim=True) for i in range(oh)], 2)
        return torch.cat([x[:, :, :, (j * w) // ow: -((-(j + 1) * w) // ow)].mean(3, keepdim=True) for j in range(ow)], 3)


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
        self.avgpool = ExportableAdaptiveAvgPool2d((6, 6))
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
