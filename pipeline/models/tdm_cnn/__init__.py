"""TDM 40200 Q3-Q5: the two-convolution CNN, with max or average pooling (Q5b)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F


class TdmCNN(nn.Module):
    """TDM 40200 Q3: conv 1->8 k3 p1, pool 2; conv 8->16 k3 p1, pool 2; linear 784->10."""

    def __init__(self, pool: str = "max") -> None:
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        self.pool = nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2)
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, stride=1, padding=1)
        self.fc1 = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc1(x.reshape(x.shape[0], -1))


def build(pool: Literal["max", "avg"] = "max") -> nn.Module:
    return TdmCNN(pool=pool)
