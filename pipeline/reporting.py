"""Writers for the small tabular files under ``reports/`` (DVC plots read CSV)."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from pipeline.io import atomic_path, write_text


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


@contextlib.contextmanager
def live_curves(*paths: Path) -> Iterator[Callable[..., None]]:
    """Yield ``show(*tables)``, which rewrites ``paths`` (one table of rows each) as a run goes, so
    ``dvc plots show`` draws a run in progress; if the block fails, the files are put back as they
    were (a refused or interrupted run leaves the previous run's curves beside its model).

    After a ``kill -9`` they show the killed run's epochs until the resumed run rewrites them
    (``git checkout`` restores the committed ones).
    """
    before = {Path(p): Path(p).read_bytes() if Path(p).is_file() else None for p in paths}

    def show(*tables: Iterable[Mapping[str, object]]) -> None:
        for path, rows in zip(paths, tables, strict=True):
            write_csv(path, rows)

    try:
        yield show
    except BaseException:  # Ctrl-C too: the resume state, not the curves, carries an unfinished run
        for path, data in before.items():
            with contextlib.suppress(OSError):  # a full disk must not hide the original error
                if data is None:
                    path.unlink(missing_ok=True)
                else:
                    with atomic_path(path) as tmp:
                        tmp.write_bytes(data)
        raise
