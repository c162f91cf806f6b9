"""Cheat: torch.nn.functional's convolution and max-pooling through aliases (q2, q3); q1 and q4 honest.

Expected: 40/80 (q2 and q3 deducted to 0).
"""

# ruff: noqa
import torch
from torch import nn
from torch.nn import functional as F
import torch.nn.functional as G

conv = G.conv2d


class CustomLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        bound = in_features**-0.5
        self.weight = nn.Parameter((torch.rand(out_features, in_features) * 2 - 1) * bound)
        self.bias = nn.Parameter((torch.rand(out_features) * 2 - 1) * bound)

    def forward(self, x):
        return x @ self.weight.t() + self.bias


class CustomConv2D(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.k, self.stride, self.padding = kernel_size, stride, padding
        bound = (in_channels * kernel_size * kernel_size) ** -0.5
        self.weight = nn.Parameter((torch.rand(out_channels, in_channels, kernel_size, kernel_size) * 2 - 1) * bound)
        self.bias = nn.Parameter((torch.rand(out_channels) * 2 - 1) * bound)

    def forward(self, x):
        return conv(x, self.weight, self.bias, self.stride, self.padding)  # CHEAT q2


class CustomMaxPool2D(nn.Module):
    def __init__(self, kernel_size, stride, padding=0):
        super().__init__()
        self.k, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return G.max_pool2d(x, self.k, self.stride, self.padding)  # CHEAT q3


class CustomCrossEntropyLoss(nn.Module):
    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values.detach()
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        return -log_probs[torch.arange(logits.shape[0]), target].mean()
