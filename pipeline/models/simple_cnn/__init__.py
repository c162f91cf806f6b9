"""HKU A3: SimpleCNN, built from the assignment's own layers (:mod:`.layers`) or torch.nn's.

The custom layers and the assignment's cross-entropy live in this package because only
this model (and the autograder that grades them) uses them: editing them reruns the
HKU stages alone.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.models.simple_cnn import layers as custom


class SimpleCNN(nn.Module):
    """HKU A3 SimpleCNN: [conv5x5, BN, ReLU, maxpool2, dropout] x2, linear 1024->512, ReLU, linear 512->10.

    ``layers="custom"`` builds convolutions, pooling and linear layers from the
    assignment's own implementations (:mod:`pipeline.models.simple_cnn.layers`);
    ``"torch"`` uses ``torch.nn`` for the same network (the speed and correctness
    reference). The softmax of the HKU handout's last layer lives in the loss (cross-entropy
    on logits).
    """

    def __init__(self, layers: str = "custom", conv1_channels: int = 32, dropout: float = 0.25) -> None:
        super().__init__()
        if layers == "custom":
            conv, pool, linear = custom.CustomConv2D, custom.CustomMaxPool2D, custom.CustomLinear
        elif layers == "torch":
            conv, pool, linear = nn.Conv2d, nn.MaxPool2d, nn.Linear
        else:
            raise ValueError(f"layers must be 'custom' or 'torch', got {layers!r}")
        self.conv1 = conv(1, conv1_channels, 5)
        self.bn1 = nn.BatchNorm2d(conv1_channels)
        self.pool1 = pool(2)
        self.drop1 = nn.Dropout(dropout)
        self.conv2 = conv(conv1_channels, 64, 5)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool2 = pool(2)
        self.drop2 = nn.Dropout(dropout)
        self.fc1 = linear(64 * 4 * 4, 512)
        self.fc2 = linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.pool1(F.relu(self.bn1(self.conv1(x)))))
        x = self.drop2(self.pool2(F.relu(self.bn2(self.conv2(x)))))
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
        return self.fc2(x)


# torch.nn.Dropout's p: a probability (checked before the data loads, see pipeline.models.check_args).
ARG_RANGES = {"dropout": (0.0, 1.0)}


def build(layers: Literal["custom", "torch"] = "custom", conv1_channels: int = 32, dropout: float = 0.25) -> nn.Module:
    return SimpleCNN(layers=layers, conv1_channels=conv1_channels, dropout=dropout)


# HKU A3's own numerically stable cross-entropy (train.loss: custom_cross_entropy).
LOSSES = {"custom_cross_entropy": custom.CustomCrossEntropyLoss}
