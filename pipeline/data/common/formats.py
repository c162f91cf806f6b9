"""File names and column layouts shared by the converters (writers) and the readers."""

from __future__ import annotations

import os
from pathlib import Path

# The raw folder (``data/raw``) holds one sub-folder per dataset, so a stage can depend on
# MNIST without depending on CIFAR-10 (and the other way round).
RAW_MNIST = "mnist"  # data/raw/mnist: the torchvision root of MNIST (see MNIST_RAW_SUBDIR)
RAW_CIFAR = "cifar10"  # data/raw/cifar10: the verified CIFAR-10 archive

# Decompressed MNIST IDX files in torchvision's layout: <root>/MNIST/raw/<prefix>-<kind>-ubyte
MNIST_RAW_SUBDIR = Path("MNIST", "raw")
MNIST_PREFIX = {"train": "train", "test": "t10k"}  # split -> file-name prefix
MNIST_KIND_SUFFIX = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}

CSV_NAMES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}  # Kaggle-style MNIST CSVs
NPZ_NAMES = {"train": "train.npz", "test": "test.npz"}  # Practical 5 npz files
TEST_LABELS = "test_labels.csv"  # composite: filename,label for the flat test folder
METADATA = "metadata.csv"  # composite: one row per sample
METADATA_COLUMNS = ["split", "filename", "label", "digit_label", "cifar_index", "mnist_index"]
COMPOSITE_SPLITS = ("train", "val", "test")
# composite: what the counterfactual test re-renders the test split from (pipeline.inference.counterfactual):
# the CIFAR-10 test images, the MNIST test digits and their labels, and per test row of
# metadata.csv (in order) the MNIST index of a digit of another class
COUNTERFACTUAL = "counterfactual_test.npz"


def csv_columns(rows: int = 28, cols: int = 28) -> list[str]:
    """``["label", "1x1", ..., "28x28"]``: pixel names are row x column, 1-based (Kaggle mnist-in-csv)."""
    return ["label"] + [f"{r}x{c}" for r in range(1, rows + 1) for c in range(1, cols + 1)]


def mnist_idx_name(split: str, kind: str) -> str:
    """``train-images-idx3-ubyte`` etc. for split ``train``/``test`` and kind ``images``/``labels``."""
    return f"{MNIST_PREFIX[split]}-{MNIST_KIND_SUFFIX[kind]}"


def mnist_idx_path(root: str | os.PathLike[str], split: str, kind: str) -> Path:
    """Where the decompressed IDX file of ``split``/``kind`` lives under the raw root (``data/raw``)."""
    return Path(root) / MNIST_RAW_SUBDIR / mnist_idx_name(split, kind)
