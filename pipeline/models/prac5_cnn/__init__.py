"""Practical 5: one convolution (10 kernels 8x8, stride 2) and a linear layer."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Prac5CNN(nn.Module):
    """Practical 5: conv 1->10 k8 s2 (28 -> 11), ReLU, linear 1210->10; no softmax layer.

    ``softmax_output=True`` ends the network with a softmax layer, the handout's experiment
    ("the softmax layer drops the model accuracy from approximately 93 to approximately
    90"): CrossEntropyLoss then applies its own log-softmax to probabilities, which squeezes
    every logit it sees into [0, 1] and flattens the gradients.
    """

    def __init__(self, softmax_output: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=8, stride=2)
        self.fc1 = nn.Linear(10 * 11 * 11, 10)
        self.softmax_output = softmax_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 28, 28)  # the handout feeds flat 784-vectors and reshapes here
        x = F.relu(self.conv1(x))
        out = self.fc1(x.reshape(x.shape[0], -1))
        return F.softmax(out, dim=1) if self.softmax_output else out


def build(softmax_output: bool = False) -> nn.Module:
    return Prac5CNN(softmax_output)
