"""``mnist_torchvision`` (DS 5220, HKU A3): ``torchvision.datasets.MNIST(path, download=False)``
``.data`` / ``.targets`` (IDX files under ``<path>/MNIST/raw``; their headers are checked first).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pipeline.core.errors import DataError
from pipeline.data.common.formats import MNIST_RAW_SUBDIR, mnist_idx_path
from pipeline.data.common.idx import idx_shape
from pipeline.data.readers import MNIST_CLASSES, ImageSet


def read(path: Path, split: str) -> ImageSet:
    return read_mnist_torchvision(path, split)


def read_mnist_torchvision(root: str | os.PathLike[str], split: str) -> ImageSet:
    """``torchvision.datasets.MNIST(root, train=..., download=False)``, headers checked first."""
    import torchvision

    root = Path(root)
    raw = root / MNIST_RAW_SUBDIR
    labels_path = mnist_idx_path(root, split, "labels")
    n_images = idx_shape(mnist_idx_path(root, split, "images"), "images")[0]
    n_labels = idx_shape(labels_path, "labels")[0]
    if n_images != n_labels:
        raise DataError(f"{raw}: {n_images} {split} images but {n_labels} labels")
    try:
        dataset = torchvision.datasets.MNIST(str(root), train=split == "train", download=False)
    except (RuntimeError, OSError, AssertionError, ValueError) as exc:
        raise DataError(f"{raw}: torchvision cannot load MNIST {split}: {exc}") from None
    labels = dataset.targets.to(torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{labels_path}: label outside 0-9")
    return ImageSet(dataset.data.unsqueeze(1).contiguous(), labels, list(MNIST_CLASSES))
