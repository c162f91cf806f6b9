"""Cheat (the reliability audit's A_killparent): one line at import kills the grading process.

The worker refuses `os.kill` of any other process (and runs in a PID namespace of its own, or as
another user, where the signal could not reach the grader anyway): the line raises PermissionError,
the same on every run. Expected: 0/80 (the file does not import: "tried to send SIGKILL to its
parent process"; `os` at import is a forbidden use of every question).
"""

# ruff: noqa
import torch
from torch import nn
from torch.nn import functional as F
import os, signal

os.kill(os.getppid(), signal.SIGKILL)  # CHEAT all


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
        n, c, h, w = x.shape
        p = self.padding
        padded = x.new_full((n * c, 1, h + 2 * p, w + 2 * p), float("-inf"))
        padded[:, 0, p : p + h, p : p + w] = x.reshape(n * c, h, w)
        h_out = (h - self.k + 2 * p) // self.stride + 1
        w_out = (w - self.k + 2 * p) // self.stride + 1
        cols = F.unfold(padded, self.k, stride=self.stride)
        return cols.max(dim=1).values.reshape(n, c, h_out, w_out)


class CustomCrossEntropyLoss(nn.Module):
    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values.detach()
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        return -log_probs[torch.arange(logits.shape[0]), target].mean()
