"""``mnist_npz`` (Practical 5): ``numpy.load("<path>/{train,test}.npz")``: ``x`` uint8 (N, 784),
``y`` integer (N,) in 0-9.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import DataError
from pipeline.data.common.formats import NPZ_NAMES
from pipeline.data.readers import MNIST_CLASSES, ImageSet


def read(path: Path, split: str) -> ImageSet:
    return read_mnist_npz(path / NPZ_NAMES[split])


def read_mnist_npz(file: str | os.PathLike[str]) -> ImageSet:
    """``numpy.load`` of a Practical 5 npz: ``x`` uint8 (N, 784), ``y`` integer (N,) in 0-9."""
    file = Path(file)
    # numpy takes anything that is neither a zip nor a .npy for a pickle, and its refusal then
    # advises loading it unsafely: a text or .npy file is named for what it is instead.
    if file.is_file():
        with open(file, "rb") as handle:
            start = handle.read(8)
        if not start.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip's first entry, or an empty zip
            raise DataError(f"{file}: not a .npz file (a zip archive of arrays x and y); it starts with {start!r}")
    try:
        with np.load(file, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise DataError(
                    f"{file}: missing array(s) {', '.join(missing)}; found {', '.join(archive.files) or 'none'}"
                )
            x, y = archive["x"], archive["y"]
    except FileNotFoundError:
        raise DataError(f"{file}: file not found") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{file}: not a readable .npz file: {exc}") from None
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 784:
        raise DataError(f"{file}: x must be uint8 with shape (N, 784), got {x.dtype} {x.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
        raise DataError(f"{file}: y must be integers with shape ({len(x)},), got {y.dtype} {y.shape}")
    bad = np.flatnonzero((y < 0) | (y > 9))
    if bad.size:
        raise DataError(f"{file}: y[{bad[0]}] = {y[bad[0]]} outside 0-9")
    images = torch.from_numpy(x.reshape(-1, 1, 28, 28).copy())
    return ImageSet(images, torch.from_numpy(y.astype(np.int64)), list(MNIST_CLASSES))
