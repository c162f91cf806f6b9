"""Cheat: max-pooling from a module imported with importlib (q3); the rest honest.

Expected: 60/80 (q3 deducted to 0).
"""

# ruff: noqa
import torch
from torch import nn
from torch.nn import functional as F
import importlib


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
        n, _, h, w = x.shape
        h_out = (h - self.k + 2 * self.padding) // self.stride + 1
        w_out = (w - self.k + 2 * self.padding) // self.stride + 1
        cols = F.unfold(x, self.k, padding=self.padding, stride=self.stride)
        out = torch.einsum("ok,nkl->nol", self.weight.reshape(self.weight.shape[0], -1), cols)
        return (out + self.bias.reshape(1, -1, 1)).reshape(n, -1, h_out, w_out)


class CustomMaxPool2D(nn.Module):
    def __init__(self, kernel_size, stride, padding=0):
        super().__init__()
        self.k, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        functional = importlib.import_module("torch.nn." + "functional")  # CHEAT q3
        return functional.max_pool2d(x, self.k, self.stride, self.padding)


class CustomCrossEntropyLoss(nn.Module):
    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values.detach()
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        return -log_probs[torch.arange(logits.shape[0]), target].mean()
