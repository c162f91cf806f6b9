"""In-memory datasets: each split lives as one uint8 tensor; work is done per batch.

The seeds push every image through PIL transforms one at a time inside a
DataLoader. Here a dataset is read from its seed's format once
(:mod:`pipeline.data.readers`), kept as a ``(N, C, H, W)`` uint8 tensor, and
``ToTensor`` + ``Normalize`` + augmentation are applied to whole batches. The
arithmetic is the same as torchvision's (``(x / 255 - mean) / std``), so a
variant keeps its seed's semantics while the hot path has no per-sample Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from pipeline.config import AugmentConfig, DataConfig
from pipeline.data.readers import ImageSet, read_split


@dataclass
class Splits:
    train: ImageSet
    val: ImageSet | None
    test: ImageSet

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def subset(images: ImageSet, index: torch.Tensor) -> ImageSet:
    files = None if images.files is None else [images.files[i] for i in index.tolist()]
    return ImageSet(images=images.images[index], labels=images.labels[index], classes=images.classes, files=files)


def load_splits(cfg: DataConfig, seed: int) -> Splits:
    """Read train/val/test in the variant's format.

    Formats without a validation split hold out ``val_fraction`` of the training
    images, chosen by a generator seeded with the variant's seed.
    """
    train = read_split(cfg.format, cfg.path, "train")
    test = read_split(cfg.format, cfg.path, "test")
    val = None
    if cfg.format == "image_folder":
        val = read_split(cfg.format, cfg.path, "val")
    elif cfg.val_fraction > 0:
        n_val = int(round(len(train.labels) * cfg.val_fraction))
        order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(seed))
        val, train = subset(train, order[:n_val].sort().values), subset(train, order[n_val:].sort().values)
    return Splits(train=train, val=val, test=test)


# Normalization lives in pipeline.normalizer (no reader imports); re-exported here.


# --------------------------------------------------------------------------- augmentation


class BatchAugment:
    """Training-time augmentations on a whole normalized batch, driven by one generator.

    - ``hflip``: flip each image left-right with this probability (seed's RandomHorizontalFlip).
    - ``gaussian_noise_std``: add N(0, std^2) noise after normalization (torchvision's
      GaussianNoise with ``clip=False``, as the CSE 849 seed advises after Normalize).
    - ``random_erasing``: with this probability, erase one rectangle of 2-33% of the area,
      aspect ratio 0.3-3.3, with value 0 (torchvision's RandomErasing defaults).
    - ``patch_shuffle``: with this probability, a sample's ``patch_box`` region is replaced
      by the same region of another random sample in the batch. On the CSE 849 composites
      the box is the MNIST digit: the digit stays a realistic digit but no longer tells
      the label, which removes the planted shortcut from the training signal.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    @property
    def active(self) -> bool:
        c = self.cfg
        return bool(c.hflip or c.gaussian_noise_std or c.random_erasing or c.patch_shuffle)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        c = self.cfg
        n = x.shape[0]

        # Every random draw comes from the CPU generator (the same numbers on any device,
        # so a run is reproducible) and is moved to the batch's device.
        def chance(p: float) -> torch.Tensor:
            return (torch.rand(n, generator=generator) < p).to(x.device)

        if c.patch_shuffle:
            top, left, h, w = c.patch_box
            donors = torch.randint(0, n, (n,), generator=generator).to(x.device)
            take = chance(c.patch_shuffle)
            region = x[:, :, top : top + h, left : left + w]
            swapped = region[donors]
            region[take] = swapped[take]  # region is a view: writes into x
        if c.hflip:
            flip = chance(c.hflip)
            x[flip] = x[flip].flip(-1)
        if c.random_erasing:
            x = self._erase(x, chance(c.random_erasing), generator)
        if c.gaussian_noise_std:
            x = x + c.gaussian_noise_std * torch.randn(x.shape, generator=generator).to(x.device)
        return x

    @staticmethod
    def _erase(x: torch.Tensor, which: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One rectangle per chosen sample, all samples at once (no per-sample Python).

        Area and aspect ratio are drawn as in torchvision's RandomErasing; where the
        rectangle would not fit, torchvision retries, here it is clipped to the image.
        """
        n, _, height, width = x.shape
        area = torch.empty(n).uniform_(0.02, 0.33, generator=generator) * (height * width)
        ratio = torch.empty(n).uniform_(-1.2040, 1.1939, generator=generator).exp()  # log(0.3)..log(3.3)
        h = (area * ratio).sqrt().round().clamp(1, height - 1).long()
        w = (area / ratio).sqrt().round().clamp(1, width - 1).long()
        top = (torch.rand(n, generator=generator) * (height - h + 1)).long()
        left = (torch.rand(n, generator=generator) * (width - w + 1)).long()
        rows = torch.arange(height).view(1, -1)
        cols = torch.arange(width).view(1, -1)
        in_rows = (rows >= top.view(-1, 1)) & (rows < (top + h).view(-1, 1))  # (n, H)
        in_cols = (cols >= left.view(-1, 1)) & (cols < (left + w).view(-1, 1))  # (n, W)
        mask = in_rows[:, :, None] & in_cols[:, None, :] & which.cpu().view(-1, 1, 1)
        return x.masked_fill(mask[:, None].to(x.device), 0.0)


# --------------------------------------------------------------------------- batching


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` slices; shuffled (a fresh permutation) when ``generator`` is given.

    Like ``DataLoader(shuffle=True, drop_last=False)``: the last batch may be smaller.
    """
    n = labels.shape[0]
    if generator is None:
        for start in range(0, n, batch_size):
            yield images[start : start + batch_size], labels[start : start + batch_size]
        return
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield images[index], labels[index]


def num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size
