"""``mnist_csv`` (TDM 40200): ``<path>/mnist_{train,test}.csv`` read with ``pandas.read_csv``;
header ``label,1x1,...,28x28`` checked, every cell an integer (pixels 0-255, labels 0-9).
Errors name the file, row, line and column.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.core.errors import DataError
from pipeline.data.common.formats import CSV_NAMES, csv_columns
from pipeline.data.readers import MNIST_CLASSES, ImageSet


def read(path: Path, split: str) -> ImageSet:
    return read_mnist_csv(path / CSV_NAMES[split])


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
        raise DataError(
            f"{file}: wrong number of columns: the data lines have more fields than the header's {len(columns)}"
        )
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
