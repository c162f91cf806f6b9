"""In-memory datasets: each split lives as one uint8 tensor; work is done per batch.

The handouts push every image through PIL transforms one at a time inside a
DataLoader. Here a dataset is read from its handout's format once
(:mod:`pipeline.data.readers`), kept as a ``(N, C, H, W)`` uint8 tensor, and
``ToTensor`` + ``Normalize`` + augmentation are applied to whole batches. The
arithmetic is the same as torchvision's (``(x / 255 - mean) / std``), so a
variant keeps its handout's semantics while the hot path has no per-sample Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from pipeline.core.config import AugmentConfig, ConfigError, DataConfig
from pipeline.core.errors import DataError
from pipeline.data.common.composite import Layout
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
        if not 0 < n_val < len(train.labels):
            raise DataError(
                f"{cfg.path}: val_fraction {cfg.val_fraction} of the {len(train.labels)} training images holds out "
                f"{n_val}, leaving {len(train.labels) - n_val} to train on; both splits need at least one image"
            )
        order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(seed))
        val, train = subset(train, order[:n_val].sort().values), subset(train, order[n_val:].sort().values)
    return Splits(train=train, val=val, test=test)


# Normalization lives in pipeline.training.normalizer (no reader imports); re-exported here.


# --------------------------------------------------------------------------- augmentation


class BatchAugment:
    """Training-time augmentations of a whole batch, driven by one generator, no per-sample Python.

    Each follows the torchvision v2 transform of the same name (the CSE 849 handout's suggestions),
    drawn independently per image as the handout's per-image pipeline does:

    - ``patch_shuffle`` (ours): with probability ``p``, the named region of the composite
      layout is replaced by the same region of another random image of the batch. On the
      CSE 849 composites the region is the digit: it stays a real digit but no longer tells
      the label, which removes the planted shortcut from the training signal.
    - ``blank``: with probability ``p``, the named region is set to black (uint8 0, what the
      occlusion test of ``evaluate@`` does).
    - ``hflip``: ``RandomHorizontalFlip(p)`` of the whole image.
    - ``random_erasing``: ``RandomErasing(p, scale, ratio, value)``: up to 10 tries per image
      to draw a rectangle (area fraction uniform in ``scale``, aspect ratio log-uniform in
      ``ratio``) that fits; an image where none fits is left as it is.
    - ``gaussian_noise``: ``GaussianNoise(mean, sigma, clip)``: ``x + mean + sigma * N(0, 1)``
      on every pixel, clamped to [0, 1] only with ``clip``.

    Region changes work on the uint8 pixels (before normalization, so black is 0 exactly);
    the rest on the normalized batch, as the handout places them after ``Normalize``.
    """

    ERASING_TRIES = 10  # torchvision's RandomErasing.get_params

    def __init__(self, cfg: AugmentConfig, layout: Layout | None = None, key: str = "data.augment") -> None:
        self.cfg = cfg
        # The named regions resolved against the data's layout now, before any training step.
        self.boxes: dict[str, tuple[int, int, int, int]] = {}
        for name in ("patch_shuffle", "blank"):
            change = getattr(cfg, name)
            if change.p > 0:
                if layout is None:
                    raise ConfigError(
                        f"{key}.{name}.region: the data has no composite layout (its dataset.json, written by "
                        f"convert_composite), so region {change.region!r} is unknown"
                    )
                self.boxes[name] = layout.box(change.region, f"{key}.{name}.region")

    @property
    def active(self) -> bool:
        c = self.cfg
        return bool(c.hflip or c.random_erasing.p or c.gaussian_noise.sigma or c.gaussian_noise.mean or self.boxes)

    def __call__(
        self, images_u8: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        """uint8 batch -> normalized, augmented float batch. Every random draw comes from the CPU
        ``generator`` (the same numbers on any device, so a run is reproducible)."""
        c = self.cfg
        n = images_u8.shape[0]

        def chance(p: float) -> torch.Tensor:
            return (torch.rand(n, generator=generator) < p).to(images_u8.device)

        if "patch_shuffle" in self.boxes:
            top, left, h, w = self.boxes["patch_shuffle"]
            images_u8 = images_u8.clone()
            donors = torch.randint(0, n, (n,), generator=generator).to(images_u8.device)
            take = chance(c.patch_shuffle.p)
            region = images_u8[:, :, top : top + h, left : left + w]
            region[take] = region[donors][take]  # region is a view: writes into the batch
        if "blank" in self.boxes:
            top, left, h, w = self.boxes["blank"]
            images_u8 = images_u8.clone()
            images_u8[chance(c.blank.p), :, top : top + h, left : left + w] = 0
        x = normalize(images_u8)
        if c.hflip:
            flip = chance(c.hflip)
            x[flip] = x[flip].flip(-1)
        if c.random_erasing.p:
            x = self._erase(x, chance(c.random_erasing.p), generator)
        noise = c.gaussian_noise
        if noise.sigma or noise.mean:
            x = x + (noise.mean + torch.randn(x.shape, generator=generator).to(x.device) * noise.sigma)
            if noise.clip:
                x = x.clamp(0.0, 1.0)
        return x

    def _erase(self, x: torch.Tensor, which: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One rectangle per chosen image, all images at once: the tries are drawn as an
        ``(N, 10)`` table and each image keeps its first rectangle that fits."""
        c = self.cfg.random_erasing
        n, _, height, width = x.shape
        tries = self.ERASING_TRIES
        area = torch.empty(n, tries).uniform_(c.scale[0], c.scale[1], generator=generator) * (height * width)
        log_ratio = torch.tensor(c.ratio, dtype=torch.float64).log().tolist()
        aspect = torch.empty(n, tries).uniform_(log_ratio[0], log_ratio[1], generator=generator).exp()
        h = (area * aspect).sqrt().round().long()
        w = (area / aspect).sqrt().round().long()
        fits = (h < height) & (w < width)
        first = fits.long().argmax(1, keepdim=True)  # the first try that fits (0 if none does)
        h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)
        which = which.cpu() & fits.any(1)
        top = (torch.rand(n, generator=generator) * (height - h + 1)).long()  # randint(0, H - h + 1)
        left = (torch.rand(n, generator=generator) * (width - w + 1)).long()
        rows = torch.arange(height).view(1, -1)
        cols = torch.arange(width).view(1, -1)
        in_rows = (rows >= top.view(-1, 1)) & (rows < (top + h).view(-1, 1))  # (n, H)
        in_cols = (cols >= left.view(-1, 1)) & (cols < (left + w).view(-1, 1))  # (n, W)
        mask = in_rows[:, :, None] & in_cols[:, None, :] & which.view(-1, 1, 1)
        return x.masked_fill(mask[:, None].to(x.device), c.value)


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
