"""``ToTensor`` + ``Normalize`` for whole batches of uint8 images, and the statistics behind it.

Kept apart from :mod:`pipeline.training.datasets` so that code which only needs a checkpoint's
preprocessing (:mod:`pipeline.training.checkpoint`, the ``analyze`` stage) does not import the
dataset readers.
"""

from __future__ import annotations

import math

import torch

from pipeline.core.config import NormalizeConfig
from pipeline.core.errors import PipelineError


class Normalizer:
    """``ToTensor`` + ``Normalize`` for a batch of uint8 images: ``(x / 255 - mean) / std``."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self._mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)

    @classmethod
    def from_config(cls, cfg: NormalizeConfig, train_images: torch.Tensor) -> Normalizer:
        channels = train_images.shape[1]
        if cfg.mode == "none":
            return cls([0.0] * channels, [1.0] * channels)
        if cfg.mode == "train":
            return cls(*channel_stats(train_images))
        if len(cfg.mean) != channels:
            raise PipelineError(f"normalize.mean has {len(cfg.mean)} values but the images have {channels} channels")
        return cls(cfg.mean, cfg.std)

    def __call__(self, images_u8: torch.Tensor) -> torch.Tensor:
        x = images_u8.to(torch.float32).div_(255.0)
        return x.sub_(self._mean.to(x.device)).div_(self._std.to(x.device))

    def state(self) -> dict[str, list[float]]:
        return {"mean": self.mean, "std": self.std}


def channel_stats(images_u8: torch.Tensor, chunk: int = 8192) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased, as ``torch.std``) std of uint8 ``(N, C, H, W)`` images, in [0, 1].

    The DS 5220 handout's ``train_data.data.double().mean() / 255`` and ``.std() / 255``, computed from a
    256-bin histogram per channel: the sums are exact integers, so the result does not depend on
    chunking or summation order (one rounding at the end), and it is ~4x faster than summing
    float64 copies (45,000 composite images: 0.9 s against 3.5 s).
    """
    n_channels = images_u8.shape[1]
    hist = torch.zeros((n_channels, 256), dtype=torch.int64)
    for start in range(0, len(images_u8), chunk):
        block = images_u8[start : start + chunk]
        for c in range(n_channels):
            hist[c] += torch.bincount(block[:, c].reshape(-1), minlength=256)
    means, stds = [], []
    for c in range(n_channels):
        counts = hist[c].tolist()
        count = sum(counts)
        total = sum(v * n for v, n in enumerate(counts))
        squares = sum(v * v * n for v, n in enumerate(counts))
        var = (count * squares - total * total) / (count * max(count - 1, 1)) if count else 0.0
        means.append(total / count / 255.0 if count else 0.0)
        stds.append(math.sqrt(max(var, 0.0)) / 255.0)
    return means, stds
