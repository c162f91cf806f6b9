"""Writers for the small tabular files under ``reports/`` (DVC plots read CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.io import write_text


def write_csv(path: str | Path, rows: Iterable[Mapping[str, object]]) -> None:
    """Rows of dicts -> CSV; the header is the union of keys in first-seen order."""
    rows = list(rows)
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
