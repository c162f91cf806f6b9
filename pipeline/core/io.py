"""Small file-system helpers shared by every stage.

Every stage writes its outputs through these helpers so that an interrupted or
failing stage never leaves a half-written file behind: data goes to a temporary
path in the same directory first and is renamed into place only when complete
(``os.replace`` is atomic on POSIX file systems).

A stage with several outputs writes them as one set (:func:`output_set`) and checks them
before its work (:func:`check_outputs`): not an input of the same command, not a device,
pipe or link (a rename would replace ``/dev/null`` or the ``/dev/stdout`` link), in a
folder that takes files. A full disk, a quota, a read-only mount or a denied folder is an
:class:`OutputError` naming the output, and the previous outputs stay as they were.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import glob
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError

PathLike = str | os.PathLike[str]

# Failures of the disk or its permissions, not of this code: a full disk or quota, a read-only
# mount, a folder this user may not write. They become one line naming the output, not a traceback.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


class OutputError(PipelineError):
    """An output that cannot or must not be written; the message names it (``path``) and why."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


def _disk_error(target: PathLike, exc: OSError) -> OutputError:
    name = errno.errorcode.get(exc.errno or 0, "")
    return OutputError(target, f"cannot write it: {exc.strerror or exc} ({name}); nothing was replaced")


def _special_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a real folder; else None."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)})"
    kinds = {stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device", stat.S_ISFIFO: "a named pipe"}
    return next((kind for is_kind, kind in kinds.items() if is_kind(mode)), "a socket")


def check_target(target: PathLike) -> None:
    """Refuse an output path that exists and is not a regular file or folder.

    Writing renames a temporary onto the path, which would replace ``/dev/null`` or the
    ``/dev/stdout`` link with a plain file (as root) or cut a link off from what it names.
    """
    kind = _special_kind(Path(target))
    if kind is not None:
        raise OutputError(target, f"is {kind}, not a regular file; refusing to replace it (name a new or regular file)")


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode when both exist, else the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_outputs(outputs: Iterable[PathLike], inputs: Mapping[str, PathLike | None] | None = None) -> None:
    """Check a command's outputs before any work: each is writable (:func:`check_target`, its folder
    created and written to) and none is one of ``inputs`` (``{"--model": path}``: what it reads)."""
    for out in map(Path, outputs):
        for label, source in (inputs or {}).items():
            if source is not None and same_file(out, source):
                raise OutputError(out, f"is also an input of this command ({label} {source}); refusing to overwrite it")
        check_target(out)
        _probe_writable(out)


def _probe_writable(out: Path) -> None:
    """Create and remove a file in the nearest existing folder of ``out``: that folder is writable
    (not a read-only mount, not another user's) and nothing stands where a folder must go."""
    existing = next(p for p in out.parents if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"{out}: cannot create its folder: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=existing)
    except OSError as exc:  # a disk error, or a folder that takes no new files (ENOENT in /proc)
        raise _disk_error(out, exc) from None
    os.close(fd)
    os.unlink(probe)


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
    check_target(target)
    try:
        with _atomic(target, suffix) as tmp:
            yield tmp
    except OSError as exc:
        if exc.errno in DISK_ERRNOS and _writing_here(exc, target.parent):
            raise _disk_error(target, exc) from None
        raise


def _writing_here(exc: OSError, folder: Path) -> bool:
    """Whether a disk error is about the output in ``folder``: it names a path there, or none (a write
    to an open file fails without a name), rather than an input the caller read inside the block."""
    return exc.filename is None or Path(exc.filename).absolute().is_relative_to(folder.absolute())


@contextlib.contextmanager
def _atomic(target: Path, suffix: str) -> Iterator[Path]:
    _make_parent(target)
    for stale in _temporary_siblings(target, suffix):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    except OSError as exc:  # as in _probe_writable: named by the target, not by a random temporary
        raise _disk_error(target, exc) from None
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
    except FileNotFoundError as exc:
        if exc.filename is None or not Path(exc.filename).is_relative_to(tmp) or tmp.exists():
            raise
        # a second writer of the same target removed this one's temporary as stale (see above)
        raise OutputError(
            target, f"its temporary {tmp.name} was removed while being written: is another process writing it?"
        ) from None
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def output_set(*targets: PathLike) -> Iterator[list[Path]]:
    """Write several outputs of one stage as a set: yield one temporary path per target (same order).

    Only when the block ends without an error are they renamed onto their targets, one right
    after the other; a failure before (a full disk, a read-only folder, a bug) leaves every
    target as it was, so a new model never sits beside the old run's metrics. Errors that name
    a temporary are given the target's name.
    """
    paths = [Path(t) for t in targets]
    for target in paths:
        check_target(target)
    names: dict[str, Path] = {}
    try:
        with contextlib.ExitStack() as stack:
            temps = [stack.enter_context(_atomic(t, "")) for t in paths]
            names = {str(tmp): t for tmp, t in zip(temps, paths, strict=True)}
            yield temps
            unwritten = [str(names[str(t)]) for t in temps if not t.exists()]
            if unwritten:  # a bug of the caller: renaming the others would break the set
                raise RuntimeError(f"output_set: nothing written for {', '.join(unwritten)}")
    except PipelineError as exc:  # a writer's error about a temporary (a full disk, NaN in JSON): its target
        message = str(exc)
        for tmp, target in names.items():
            message = message.replace(tmp, str(target))
        exc.args = (message,)
        raise
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        # a write to an open file fails without a name: then any of the set may be the one
        where = names.get(str(exc.filename)) or exc.filename or ", ".join(map(str, paths))
        raise _disk_error(where, exc) from None


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


# --------------------------------------------------------------------------- small tables (DVC plots read CSV)
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
