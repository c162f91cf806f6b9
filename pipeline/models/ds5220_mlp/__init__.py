"""DS 5220 PS4 Part 1-3: the two-layer MLP."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DS5220MLP(nn.Module):
    """DS 5220 Part 1: 784 -> 128 -> ReLU -> 10 -> log-softmax (101,770 parameters)."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.flatten = nn.Flatten(start_dim=1)
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc2(F.relu(self.fc1(self.flatten(x)))), dim=1)


def build(hidden: int = 128) -> nn.Module:
    return DS5220MLP(hidden=hidden)
