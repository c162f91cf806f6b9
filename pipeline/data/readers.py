"""Readers: every dataset format the assignments start from -> in-memory tensors.

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

import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.data.errors import DataError
from pipeline.data.formats import (
    COMPOSITE_SPLITS,
    CSV_NAMES,
    METADATA,
    METADATA_COLUMNS,
    MNIST_RAW_SUBDIR,
    NPZ_NAMES,
    TEST_LABELS,
    csv_columns,
    mnist_idx_path,
)
from pipeline.data.idx import idx_shape
from pipeline.data.imageio import WORKERS, decode_images

log = logging.getLogger(__name__)

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
    if fmt == "mnist_csv":
        return read_mnist_csv(path / CSV_NAMES[split])
    if fmt == "mnist_npz":
        return read_mnist_npz(path / NPZ_NAMES[split])
    if fmt == "mnist_torchvision":
        return read_mnist_torchvision(path, split)
    return read_image_folder(path, split)


# --------------------------------------------------------------------------- MNIST CSV


_NUMERIC = re.compile(r"^\s*-?\d+(\.\d+)*\s*$")  # a data value as a column name (pandas adds .1, .2 to duplicates)


def _where(file: Path, row: int, column: str) -> str:
    """``file: row R (line L), column 'C'``; rows count data lines from 1, the header is line 1."""
    return f"{file}: row {row + 1} (line {row + 2}), column {column!r}"


_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")


def _raise_first_non_integer(file: Path, column: str) -> None:
    """Find and report the first cell of ``column`` that is not an integer (re-read as text, the original spelling)."""
    text = pd.read_csv(file, usecols=[column], dtype=str, keep_default_na=False)[column]
    for row, cell in enumerate(text):
        if cell.strip() == "":
            raise DataError(f"{_where(file, row, column)}: missing value (the line has fewer than 785 fields?)")
        if not _INTEGER.match(cell):
            raise DataError(f"{_where(file, row, column)}: {cell!r} is not an integer")
    raise DataError(f"{file}: column {column!r} does not hold integers")  # not reached for pandas' own parsing


def load_mnist_csv_frame(file: str | os.PathLike[str]) -> pd.DataFrame:
    """``pandas.read_csv`` of a Kaggle-style MNIST CSV, validated: header, column count, integer cells, ranges."""
    file = Path(file)
    try:
        frame = pd.read_csv(file)
    except FileNotFoundError:
        raise DataError(f"{file}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: empty file (expected a header line label,1x1,...,28x28)") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().replace("Error tokenizing data. C error: ", "")
        raise DataError(f"{file}: wrong number of columns: {detail} (expected 785)") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{file}: cannot read as CSV: {exc}") from None
    expected = csv_columns()
    columns = [str(c) for c in frame.columns]
    if columns[0] != "label" and all(_NUMERIC.match(c) for c in columns):
        raise DataError(f"{file}: missing header: the first line is data; expected label,1x1,1x2,...,28x28")
    if len(columns) != len(expected):
        raise DataError(f"{file}: header has {len(columns)} columns, expected {len(expected)} (label + 784 pixels)")
    for i, (got, want) in enumerate(zip(columns, expected)):
        if got != want:
            raise DataError(f"{file}: header column {i + 1} is {got!r}, expected {want!r}")
    if not isinstance(frame.index, pd.RangeIndex):  # pandas moved a surplus first field into the index
        raise DataError(f"{file}: wrong number of columns: the data lines have more fields than the header's {len(columns)}")
    for column, dtype in frame.dtypes.items():
        if not pd.api.types.is_integer_dtype(dtype):
            _raise_first_non_integer(file, column)
    data = frame.to_numpy()
    bad_labels = np.flatnonzero((data[:, 0] < 0) | (data[:, 0] > 9))
    if bad_labels.size:
        row = int(bad_labels[0])
        raise DataError(f"{_where(file, row, 'label')}: label {data[row, 0]} outside 0-9")
    bad_pixels = np.argwhere((data[:, 1:] < 0) | (data[:, 1:] > 255))
    if bad_pixels.size:
        row, col = (int(v) for v in bad_pixels[0])
        raise DataError(f"{_where(file, row, expected[col + 1])}: pixel value {data[row, col + 1]} outside 0-255")
    return frame


def frame_to_imageset(frame: pd.DataFrame) -> ImageSet:
    """A validated MNIST CSV frame (label + 784 pixels per row) -> ``ImageSet`` (N, 1, 28, 28)."""
    data = frame.to_numpy()
    images = torch.from_numpy(data[:, 1:].astype(np.uint8).reshape(-1, 1, 28, 28))
    labels = torch.from_numpy(data[:, 0].astype(np.int64))
    return ImageSet(images, labels, list(MNIST_CLASSES))


def read_mnist_csv(file: str | os.PathLike[str]) -> ImageSet:
    return frame_to_imageset(load_mnist_csv_frame(file))


# --------------------------------------------------------------------------- MNIST npz


def read_mnist_npz(file: str | os.PathLike[str]) -> ImageSet:
    """``numpy.load`` of a Practical 5 npz: ``x`` uint8 (N, 784), ``y`` integer (N,) in 0-9."""
    file = Path(file)
    try:
        with np.load(file, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise DataError(f"{file}: missing array(s) {', '.join(missing)}; found {', '.join(archive.files) or 'none'}")
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


# --------------------------------------------------------------------------- torchvision MNIST


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


# --------------------------------------------------------------------------- image folders


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_folders(split_dir: Path) -> list[str]:
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: folder not found")
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and _visible(e.name))
    if not classes:
        raise DataError(f"{split_dir}: no class folders (expected {split_dir}/<class>/<image>)")
    return classes


def _files_under(folder: Path) -> list[str]:
    """Visible files under ``folder``, recursively, in ImageFolder's sorted walk order, relative to it."""
    found = []
    for current, dirs, names in sorted(os.walk(folder, followlinks=True)):
        dirs[:] = [d for d in dirs if _visible(d)]
        rel = Path(current).relative_to(folder)
        found.extend((rel / n).as_posix() for n in sorted(names) if _visible(n))
    return found


def _decode(folder: Path, files: list[str], size=None, channels=None) -> torch.Tensor:
    paths = [folder / f for f in files]
    array = decode_images(paths, [str(p) for p in paths], size, channels, WORKERS, channels_first=True)
    return torch.from_numpy(array)


def _train_classes(root: Path) -> list[str] | None:
    for split in ("train", "val"):
        if (root / split).is_dir():
            return _class_folders(root / split)
    return None


def _test_labels(root: Path, files: list[str], classes: list[str] | None) -> torch.Tensor:
    table = root / TEST_LABELS
    if not table.is_file():
        log.warning("%s not found: test images are unlabelled (label %d)", table, UNLABELLED)
        return torch.full((len(files),), UNLABELLED, dtype=torch.int64)
    try:
        frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{table}: cannot read: {exc}") from None
    if list(frame.columns[:2]) != ["filename", "label"]:
        raise DataError(f"{table}: expected columns filename,label; got {','.join(map(str, frame.columns))}")
    index = {name: i for i, name in enumerate(classes or [])}
    by_file: dict[str, int] = {}
    for row, (name, value) in enumerate(zip(frame["filename"], frame["label"])):
        value = value.strip()
        if value in index:
            label = index[value]
        elif value.lstrip("-").isdigit():
            label = int(value)
        else:
            raise DataError(f"{table}: row {row + 1} (line {row + 2}): label {value!r} is neither a class index nor a class name")
        n_classes = len(classes) if classes else 10
        if not 0 <= label < n_classes:
            raise DataError(f"{table}: row {row + 1} (line {row + 2}): label {label} outside 0-{n_classes - 1}")
        by_file[name] = label
    missing = [f for f in files if f not in by_file]
    if missing:
        raise DataError(f"{table}: no label for test image {missing[0]!r} ({len(missing)} unlabelled in all)")
    extra = sorted(set(by_file) - set(files))
    if extra:
        raise DataError(f"{table}: lists {extra[0]!r}, which is not in {root / 'test'} ({len(extra)} such rows)")
    return torch.tensor([by_file[f] for f in files], dtype=torch.int64)


def read_image_folder(root: str | os.PathLike[str], split: str) -> ImageSet:
    """One split of an image-folder dataset (``train``/``val``: class folders; ``test``: flat)."""
    root = Path(root)
    split_dir = root / split
    if split == "test":
        images, files = read_image_dir(split_dir)
        classes = _train_classes(root)
        labels = _test_labels(root, files, classes)
        return ImageSet(images, labels, classes or list(MNIST_CLASSES), files)
    classes = _class_folders(split_dir)
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        inner = [f"{name}/{f}" for f in _files_under(split_dir / name)]
        if not inner:
            log.warning("%s: class folder is empty", split_dir / name)
        files.extend(inner)
        labels.extend([label] * len(inner))
    if not files:
        raise DataError(f"{split_dir}: no image files")
    images = _decode(split_dir, files)
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), classes, files)


def read_image_dir(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None, channels: int | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Every image in a flat folder, in sorted file-name order -> ``(uint8 (N, C, H, W), names)``.

    ``size`` is ``(height, width)``; with ``size``/``channels`` None they are taken from
    the first image. A sub-folder, an unreadable or non-image file, or an image of
    another size or channel count is an error naming the file. Hidden files are skipped.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    entries = sorted((e for e in os.scandir(path) if _visible(e.name)), key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir():
            raise DataError(f"{Path(entry.path)}: unexpected sub-folder in a flat image folder")
    files = [e.name for e in entries]
    if not files:
        raise DataError(f"{path}: no image files")
    return _decode(path, files, size, channels), files


# --------------------------------------------------------------------------- composite metadata


def read_composite_metadata(path: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The composite dataset's ``metadata.csv`` (``path``: the dataset folder or the file); None if absent.

    Columns: split, filename (relative to the split folder), label, digit_label,
    cifar_index, mnist_index.
    """
    path = Path(path)
    file = path / METADATA if path.is_dir() else path
    if not file.is_file():
        return None
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot read: {exc}") from None
    missing = [c for c in METADATA_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {', '.join(missing)}")
    for column in METADATA_COLUMNS[2:]:
        if not pd.api.types.is_integer_dtype(frame[column]):
            raise DataError(f"{file}: column {column!r} must hold integers")
    unknown = sorted(set(frame["split"]) - set(FOLDER_SPLITS))
    if unknown:
        raise DataError(f"{file}: unknown split {unknown[0]!r}")
    return frame
