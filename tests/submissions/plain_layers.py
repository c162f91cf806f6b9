"""A plain, correct HKU A3 submission (the way a student would write it): the autograder's test fixture.

tests/test_autograder.py grades it as it is (80/80) and with one planted fault at a time.
Each line a fault replaces is marked ``# FAULT:<name>`` so the test can check that the
replacement really happened.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn import init


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class CustomLinear(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            init.uniform_(self.bias, -1 / math.sqrt(self.weight.shape[1]), 1 / math.sqrt(self.weight.shape[1]))

    def forward(self, x):
        y = x @ self.weight.t()  # FAULT:exit
        return y if self.bias is None else y + self.bias


class CustomConv2D(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None

    def forward(self, x):
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # FAULT:padding
        out = self.weight.reshape(self.weight.shape[0], -1) @ cols
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, 1)
        out = out.reshape(n, -1, h_out, w_out)
        return out[0] if unbatched else out


class CustomMaxPool2D(nn.Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)

    def forward(self, x):
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        padded = x.new_full((n, c, h + 2 * ph, w + 2 * pw), float("-inf"))
        padded[:, :, ph : ph + h, pw : pw + w] = x
        h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        cols = F.unfold(padded.reshape(n * c, 1, h + 2 * ph, w + 2 * pw), (kh, kw), stride=(sh, sw))
        out = cols.max(dim=1).values  # FAULT:ties
        out = out.reshape(n, c, h_out, w_out)
        return out[0] if unbatched else out


class CustomCrossEntropyLoss(nn.Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be one of 'mean', 'sum', 'none'; got {reduction!r}")
        self.reduction = reduction

    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values.detach()  # FAULT:unstable
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        losses = -log_probs[torch.arange(logits.shape[0]), target]
        if self.reduction == "none":
            return losses
        return losses.sum() if self.reduction == "sum" else losses.mean()
