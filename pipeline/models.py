"""Every assignment's network, registered by name (timm style).

A variant in ``params.yaml`` names its model and keyword arguments; the training
engine builds it with :func:`create_model` and never branches on which
assignment it is running.

All models return logits or log-probabilities of shape ``(batch, 10)``. Models
that the analysis stage inspects also accept ``intermediate_outputs=True`` and
then return ``(output, [feature maps after each convolution block])``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

MODEL_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODEL_REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        MODEL_REGISTRY[name] = factory
        return factory

    return decorator


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; unknown names or arguments fail with the allowed ones."""
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(sorted(MODEL_REGISTRY))}")
    try:
        return MODEL_REGISTRY[name](**kwargs)
    except TypeError as exc:  # an argument the model does not take
        raise ValueError(f"model {name!r}: {exc}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- TDM 40200


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


@register("tdm_cnn")
def tdm_cnn(pool: str = "max") -> nn.Module:
    return TdmCNN(pool=pool)


# --------------------------------------------------------------------------- HKU A3


class SimpleCNN(nn.Module):
    """HKU A3 SimpleCNN: [conv5x5, BN, ReLU, maxpool2, dropout] x2, linear 1024->512, ReLU, linear 512->10.

    ``layers="custom"`` builds convolutions, pooling and linear layers from the
    assignment's own implementations (:mod:`pipeline.layers`); ``"torch"`` uses
    ``torch.nn`` for the same network (the speed and correctness reference).
    The softmax of the seed's last layer lives in the loss (cross-entropy on logits).
    """

    def __init__(self, layers: str = "custom", conv1_channels: int = 32, dropout: float = 0.25) -> None:
        super().__init__()
        if layers == "custom":
            from pipeline import layers as custom

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


@register("simple_cnn")
def simple_cnn(layers: str = "custom", conv1_channels: int = 32, dropout: float = 0.25) -> nn.Module:
    return SimpleCNN(layers=layers, conv1_channels=conv1_channels, dropout=dropout)


# --------------------------------------------------------------------------- Practical 5


class Prac5CNN(nn.Module):
    """Practical 5: conv 1->10 k8 s2 (28 -> 11), ReLU, linear 1210->10; no softmax layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=8, stride=2)
        self.fc1 = nn.Linear(10 * 11 * 11, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 28, 28)  # the seed feeds flat 784-vectors and reshapes here
        x = F.relu(self.conv1(x))
        return self.fc1(x.reshape(x.shape[0], -1))


@register("prac5_cnn")
def prac5_cnn() -> nn.Module:
    return Prac5CNN()


# --------------------------------------------------------------------------- DS 5220


class DS5220MLP(nn.Module):
    """DS 5220 Part 1: 784 -> 128 -> ReLU -> 10 -> log-softmax (101,770 parameters)."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.flatten = nn.Flatten(start_dim=1)
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc2(F.relu(self.fc1(self.flatten(x)))), dim=1)


@register("ds5220_mlp")
def ds5220_mlp(hidden: int = 128) -> nn.Module:
    return DS5220MLP(hidden=hidden)


class DS5220CNN(nn.Module):
    """DS 5220 Q3: conv 1->10 k5, pool; conv 10->20 k5, pool; 320->128->10 (47,658 parameters).

    As in the seed, there is no activation between the two linear layers.
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


@register("ds5220_cnn")
def ds5220_cnn() -> nn.Module:
    return DS5220CNN()


# --------------------------------------------------------------------------- CSE 849


class CSE849CNN(nn.Module):
    """CSE 849 Project 2 (Table 1, Figure 2): five conv-BN-ReLU blocks, max-pooling between
    them, adaptive average pooling to 1x1 and a linear layer 80 -> 10.

    The seed runs every convolution and pooling at stride 1. ``pool_stride`` makes
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

    @property
    def conv1(self) -> nn.Conv2d:  # the first layer, for filter plots
        return self.convs[0]

    def forward(self, x: torch.Tensor, intermediate_outputs: bool = False):
        features = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = F.relu(bn(conv(x)))
            features.append(x)
            if i < len(self.convs) - 1:
                x = self.pool(x)
        logits = self.fc(self.gap(x).flatten(1))
        return (logits, features) if intermediate_outputs else logits


@register("cse849_cnn")
def cse849_cnn(pool_kernel: int = 2, pool_stride: int = 2) -> nn.Module:
    return CSE849CNN(pool_kernel=pool_kernel, pool_stride=pool_stride)
