"""Repo-relative POSIX paths: the one spelling of a file that stages, closures and deps share."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


def posix(path: str) -> str:
    return PurePosixPath(Path(path).as_posix()).as_posix()


def norm(path: str) -> str:
    """``./data/raw/`` -> ``data/raw``."""
    normed = os.path.normpath(path).replace(os.sep, "/").strip("/") if path else ""
    return "" if normed == "." else normed


def join(base: str, name: str) -> str:
    """``base/name``; just ``name`` when ``base`` is the root (``""``)."""
    return f"{base}/{name}" if base else name


def py_files(root: Path, folder: str) -> list[str]:
    """Every ``.py`` file below ``folder`` (sub-folders included, bytecode caches not), sorted."""
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts)


def covers(dep: str, path: str) -> bool:
    """Whether declaring ``dep`` makes DVC rerun the stage when ``path`` changes."""
    dep = norm(dep)
    return dep == "" or path == dep or path.startswith(dep + "/")
