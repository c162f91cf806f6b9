"""Readers: every dataset format the assignments start from -> in-memory tensors.

One module per format (``pipeline/data/readers/<format>.py``), imported only when a
split in that format is read: a stage training an MNIST variant never imports the
image-folder reader, and ``dvc.yaml`` declares ``pipeline/data/readers/${item.data.format}.py``
per variant.

The training engine calls ``read_split(fmt, path, split)`` and gets an ``ImageSet``:
the whole split decoded once into one uint8 tensor ``(N, C, H, W)`` plus int64
labels, so no per-sample Python runs while training. Each format is read the way its
assignment reads it:

``mnist_csv`` (TDM 40200)          ``<path>/mnist_{train,test}.csv`` with ``pandas.read_csv``;
                                   header ``label,1x1,...,28x28`` checked, every cell an
                                   integer (pixels 0-255, labels 0-9).
``mnist_torchvision`` (DS 5220, HKU) ``torchvision.datasets.MNIST(path, download=False)``
                                   ``.data`` / ``.targets`` (IDX files under
                                   ``<path>/MNIST/raw``; their headers are checked first).
``mnist_npz`` (Practical 5)        ``numpy.load("<path>/{train,test}.npz")``: ``x`` uint8
                                   (N, 784), ``y`` integer (N,) in 0-9.
``image_folder`` (CSE 849)         ``<path>/{train,val}/<class>/<file>`` with ImageFolder
                                   semantics (class folders sorted by name -> label index,
                                   files sorted, recursively), and the flat ``<path>/test/``
                                   with labels from ``<path>/test_labels.csv``
                                   (``filename,label``; label = class index or class name).
                                   The test split's classes are those of the train (else val)
                                   folder. A dataset from elsewhere (class folders ``0``..``9``,
                                   no ``metadata.csv``, no ``test_labels.csv``) is read the same
                                   way; unlabelled test images get label -1.

In image folders, hidden files (names starting with ``.``) are skipped; any other file
that is not a decodable L or RGB image of the same size as the rest is an error naming
it. All errors are ``DataError`` with the file and, for CSVs, the row, line and column.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.core.errors import DataError
from pipeline.data.common.composite import Layout
from pipeline.data.common.formats import COMPOSITE_SPLITS

FORMATS = ("mnist_csv", "mnist_torchvision", "mnist_npz", "image_folder")
MNIST_CLASSES = [str(d) for d in range(10)]
MNIST_SPLITS = ("train", "test")
FOLDER_SPLITS = COMPOSITE_SPLITS
UNLABELLED = -1


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8, (N, C, H, W), C=1 for MNIST, 3 for composite
    labels: torch.Tensor  # int64, (N,); -1 where a test folder has no labels
    classes: list[str]  # class names, index = label
    files: list[str] | None = None  # image folders: file names relative to the split folder, in order
    digit_labels: torch.Tensor | None = None  # composite data: the MNIST digit pasted on each image
    layout: Layout | None = None  # composite data: where the photo and the digit sit (its dataset.json)
    root: Path | None = None  # image folders: the dataset folder read (a zip's unpacked copy)

    def __len__(self) -> int:
        return len(self.labels)


def read_split(fmt: str, path: str | os.PathLike[str], split: str) -> ImageSet:
    """Read one split of a dataset in format ``fmt`` stored at ``path`` (see module docstring)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}; allowed: {', '.join(FORMATS)}")
    allowed = FOLDER_SPLITS if fmt == "image_folder" else MNIST_SPLITS
    if split not in allowed:
        raise DataError(f"{path}: format {fmt} has no split {split!r}; allowed: {', '.join(allowed)}")
    images = importlib.import_module(f"{__name__}.{fmt}").read(path, split)
    if len(images) == 0:  # every use divides by the count: an epoch, an accuracy, a mean
        raise DataError(f"{path}: the {split} split ({fmt}) has no images")
    return images
