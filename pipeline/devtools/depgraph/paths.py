"""Repo-relative POSIX paths: the one spelling of a file that stages, closures and deps share."""

from __future__ import annotations

import ast
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


def is_marker(root: Path, path: str) -> bool:
    """Whether ``path`` is a package marker: an ``__init__.py`` holding a docstring and nothing else.

    Importing one runs no code, so no edit of it can change a stage's result: it is not a dep
    (declaring it would only rerun stages for a reworded docstring). The moment it holds a
    statement it is code, and the checker asks for it like any other module.
    """
    if PurePosixPath(path).name != "__init__.py" or not (root / path).is_file():
        return False
    body = ast.parse((root / path).read_text(encoding="utf-8"), filename=path).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return not body
