"""The composite dataset's ``metadata.csv``: one row per sample (CSE 849 composites).

Read by the image-folder reader (digit labels), the statistics stage and the counterfactual
test; written by :mod:`pipeline.data.convert`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pipeline.core.errors import DataError
from pipeline.data.common.formats import COMPOSITE_SPLITS, METADATA, METADATA_COLUMNS


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
    unknown = sorted(set(frame["split"]) - set(COMPOSITE_SPLITS))
    if unknown:
        raise DataError(f"{file}: unknown split {unknown[0]!r}")
    return frame
