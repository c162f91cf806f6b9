"""``ToTensor`` + ``Normalize`` for whole batches of uint8 images, and the statistics behind it.

Kept apart from :mod:`pipeline.datasets` so that code which only needs a checkpoint's
preprocessing (:mod:`pipeline.checkpoint`, the ``analyze`` stage) does not import the
dataset readers.
"""

from __future__ import annotations

import torch

from pipeline.config import NormalizeConfig
from pipeline.errors import PipelineError


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


def channel_stats(images_u8: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased) std of uint8 images scaled to [0, 1], in float64.

    Matches the seed's ``train_data.data.double().mean() / 255`` and ``.std() / 255``.
    Accumulates in chunks so a 45,000-image RGB split needs no float64 copy of itself.
    """
    channels = images_u8.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images_u8.shape[0], chunk):
        x = images_u8[start : start + chunk].to(torch.float64)
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    n = images_u8.shape[0] * images_u8.shape[2] * images_u8.shape[3]
    mean = total / n
    var = (total_sq - n * mean * mean) / (n - 1)
    return (mean / 255.0).tolist(), (var.sqrt() / 255.0).tolist()
