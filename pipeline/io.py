"""Small file-system helpers shared by every stage.

Every stage writes its outputs through these helpers so that an interrupted or
failing stage never leaves a half-written file behind: data goes to a temporary
path in the same directory first and is renamed into place only when complete
(``os.replace`` is atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

PathLike = str | os.PathLike[str]


def _temporary_siblings(target: Path, suffix: str) -> list[Path]:
    """Temporaries :func:`atomic_path` made for ``target``: ``.<name>.<8 random characters><suffix>.tmp``
    (``tempfile.mkstemp``'s names), and not those of a sibling target such as ``<name>.json``."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"[a-z0-9_]{8}" + re.escape(suffix + ".tmp"))
    return [p for p in target.parent.glob(f".{glob.escape(target.name)}.*.tmp") if pattern.fullmatch(p.name)]


def _make_parent(target: Path) -> None:
    """Create ``target``'s folder; a file standing where a folder should be is named, not a traceback."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (target.parent, *target.parent.parents) if p.exists() and not p.is_dir()), None)
        raise NotADirectoryError(
            f"{target}: cannot create its folder: {blocker or target.parent} is a file, not a folder"
        ) from None


@contextlib.contextmanager
def atomic_path(target: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``target`` only on success.

    Works for files and for directories: the caller creates whatever it likes at
    the yielded path. On an exception the temporary path is removed and
    ``target`` is left as it was. A directory is only ever replaced by a directory
    (a converted dataset by its new version): a file is never written over a folder,
    which would delete everything in it (``IsADirectoryError`` instead). Temporaries
    left by an earlier write of the same target that was killed (``kill -9`` skips the
    clean-up) are removed first: one writer per target, as in a DVC stage.
    """
    target = Path(target)
    _make_parent(target)
    for stale in _temporary_siblings(target, suffix):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the caller decides whether it becomes a file or a directory
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            if not tmp.is_dir():
                raise IsADirectoryError(
                    f"{target}: is a directory; refusing to replace it (and its contents) with a file"
                )
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(target: PathLike, text: str) -> None:
    if Path(target).is_dir():  # refuse before any work (atomic_path would refuse after it)
        raise IsADirectoryError(f"{target}: is a directory; expected a file path")
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def require_keys(mapping: Any, keys: Iterable[str], where: PathLike) -> Any:
    """``mapping`` when it is a JSON object with every one of ``keys``; else an error naming the file."""
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            raise PipelineError(f"{where}: missing key {key!r} (re-run the stage that writes it: `dvc repro`)")
    return mapping


DIGITS = 6  # decimals kept for every measured value the stages write (metrics, statistics, studies)


def rounded(value: float) -> float:
    """The one rounding rule of the JSON and CSV writers: ``DIGITS`` decimals.

    Six decimals still tell apart two accuracies on a test set of up to a million images
    (they differ by at least 1/n), and leave out the last float bits, which can differ
    between machines and library versions.
    """
    return round(float(value), DIGITS)


def write_json(target: PathLike, obj: Any) -> None:
    """Write ``obj`` as stable, human-readable JSON (sorted keys, trailing newline).

    NaN and infinity are refused (``ValueError`` naming the file): they are not JSON, and a
    metric that is not finite means something upstream went wrong.
    """
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:
        raise PipelineError(f"{target}: refusing to write a non-finite number (NaN or infinity) as JSON") from None
    write_text(target, text + "\n")


def read_json(path: PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found (run the stage that writes it first: `dvc repro`)") from None
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


def md5_file(path: PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
