"""DS 5220 PS4 Q3: the two-convolution CNN."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DS5220CNN(nn.Module):
    """DS 5220 Q3: conv 1->10 k5, pool; conv 10->20 k5, pool; 320->128->10 (47,658 parameters).

    As in the handout, there is no activation between the two linear layers.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(320, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.fc2(self.fc1(x.flatten(1)))
        return F.log_softmax(x, dim=1)


def build() -> nn.Module:
    return DS5220CNN()
