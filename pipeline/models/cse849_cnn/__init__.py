"""CSE 849 Project 2: the five-block CNN for the CIFAR-10 + MNIST composites."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CSE849CNN(nn.Module):
    """CSE 849 Project 2 (Table 1, Figure 2): five conv-BN-ReLU blocks, max-pooling between
    them, adaptive average pooling to 1x1 and a linear layer 80 -> 10.

    The handout runs every convolution and pooling at stride 1. ``pool_stride`` makes
    the pooling stride a parameter: at 2 the feature maps halve after each of the
    first four blocks (64 -> 32 -> 16 -> 8 -> 4), which is what fits a CPU budget.
    """

    channels = (16, 32, 48, 64, 80)

    def __init__(self, pool_kernel: int = 2, pool_stride: int = 2, num_classes: int = 10) -> None:
        super().__init__()
        kernels = (7, 3, 3, 3, 3)
        in_ch = 3
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for out_ch, k in zip(self.channels, kernels):
            self.convs.append(nn.Conv2d(in_ch, out_ch, kernel_size=k, padding=k // 2, bias=False))
            self.bns.append(nn.BatchNorm2d(out_ch))
            in_ch = out_ch
        self.pool = nn.MaxPool2d(pool_kernel, stride=pool_stride)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor, intermediate_outputs: bool = False):
        features = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = F.relu(bn(conv(x)))
            features.append(x)
            if i < len(self.convs) - 1:
                x = self.pool(x)
        logits = self.fc(self.gap(x).flatten(1))
        return (logits, features) if intermediate_outputs else logits


def build(pool_kernel: int = 2, pool_stride: int = 2) -> nn.Module:
    return CSE849CNN(pool_kernel=pool_kernel, pool_stride=pool_stride)
