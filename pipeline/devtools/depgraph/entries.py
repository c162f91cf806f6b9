"""A stage's command, resolved to the project files it runs first (its entry points).

``python -m pkg.mod`` and ``python path/x.py`` are recognised in every simple command of a
shell line (split on ``&&``, ``||``, ``;``, ``|``), after ``VAR=value`` and ``env`` prefixes
and the interpreter's own options; ``python -c`` runs no file.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from pathlib import Path, PurePosixPath

from pipeline.devtools.depgraph.imports import module_files
from pipeline.devtools.depgraph.paths import norm

_SHELL_SEPARATORS = {"&&", "||", ";", "|"}
_PY_OPTS_WITH_ARG = {"-X", "-W", "-Q"}


def _commands(cmd: str) -> list[list[str]]:
    """Shell words of each simple command of ``cmd`` (split on && || ; |)."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    out: list[list[str]] = [[]]
    for word in words:
        if word in _SHELL_SEPARATORS:
            out.append([])
        elif word.endswith(";") and len(word) > 1:
            out[-1].append(word[:-1])
            out.append([])
        else:
            out[-1].append(word)
    return [c for c in out if c]


def _python_targets(cmd: str) -> list[tuple[str, str]]:
    """``("module", "pkg.mod")`` / ``("script", "path/x.py")`` for each python invocation."""
    targets: list[tuple[str, str]] = []
    for words in _commands(cmd):
        i = 0
        while i < len(words) and ("=" in words[i] and not words[i].startswith("-")):
            i += 1  # VAR=value prefixes
        if i < len(words) and os.path.basename(words[i]) == "env":
            i += 1
            while i < len(words) and "=" in words[i]:
                i += 1
        if i >= len(words) or not fnmatch.fnmatch(os.path.basename(words[i]), "python*"):
            continue
        i += 1
        while i < len(words):
            word = words[i]
            if word == "-m":
                if i + 1 < len(words):
                    targets.append(("module", words[i + 1]))
                break
            if word.startswith("-m") and len(word) > 2:
                targets.append(("module", word[2:]))
                break
            if word == "-c" or word.startswith("-c"):
                break  # inline code: no file to analyse
            if word in _PY_OPTS_WITH_ARG:
                i += 2
                continue
            if word.startswith("-"):
                i += 1
                continue
            targets.append(("script", norm(word)))
            break
    return targets


def entry_files(cmd: str, root: str | os.PathLike) -> list[str]:
    """The project files a command runs first, repo-relative.

    ``python -m pkg.mod ...`` -> ``pkg/__init__.py`` (when present) and ``pkg/mod.py``, or
    ``pkg/mod/__init__.py`` and ``pkg/mod/__main__.py`` for a package; ``python path/x.py``
    -> ``path/x.py``. Leading ``VAR=value`` words are skipped. A target that does not exist
    under ``root`` yields nothing (see :func:`missing_entries`).
    """
    root = Path(root)
    files: list[str] = []
    for kind, target in _python_targets(cmd):
        if kind == "script":
            if (root / target).is_file():
                files.append(target)
            continue
        found, ok = module_files(root, "", target.split("."))
        package = target.replace(".", "/")
        if ok and (root / package).is_dir():  # a package: python -m runs its __main__.py
            main = f"{package}/__main__.py"
            ok = (root / main).is_file()
            found.append(main)
        if ok and found:
            files.extend(f for f in found if f not in files)
    return files


def missing_entries(cmd: str, root: str | os.PathLike) -> list[str]:
    """Python modules / scripts named by ``cmd`` that do not exist under ``root``."""
    root = Path(root)
    missing = []
    for kind, target in _python_targets(cmd):
        if kind == "script":
            if not (root / target).is_file():
                missing.append(target)
        elif not entry_files(f"python -m {target}", root):
            top = target.split(".")[0]
            if (root / top).is_dir() or (root / f"{top}.py").is_file():  # a project module
                missing.append(target)
    return missing


def script_dirs(cmd: str) -> list[str]:
    """``sys.path[0]`` of each script a command runs (its folder), for absolute imports."""
    dirs = []
    for kind, target in _python_targets(cmd):
        if kind == "script":
            parent = norm(str(PurePosixPath(target).parent))
            if parent not in dirs:
                dirs.append(parent)
    return dirs
