"""The import closure: every project file a set of files imports, transitively, found with ``ast``.

Nothing is imported or executed from the analysed code. A project module is one that exists
as a file under the root; every ``import`` and ``from ... import`` node counts, wherever it
sits (inside functions, ``try``/``except``, ``if TYPE_CHECKING``), and so does
``importlib.import_module("literal")``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from pipeline.devtools.depgraph.errors import DepGraphError
from pipeline.devtools.depgraph.paths import join


class Origin(NamedTuple):
    """Why a file is in a closure: who imported it (None for an entry point), where, and how."""

    importer: str | None
    line: int | None = None
    reason: str | None = None  # set for files added by the plugin rule

    def describe(self) -> str:
        where = f"{self.importer}:{self.line}" if self.line else str(self.importer)
        return f"{where} ({self.reason})" if self.reason else where


# file -> the Origin of its first discovery; insertion order = discovery order (BFS).
Closure = dict[str, Origin]

# (file, search dirs) -> its project imports: most files are reached by many stages, so one
# analysis run parses each of them once. Valid for one run only (files may change).
ImportCache = dict[tuple[str, tuple[str, ...]], list[tuple[str, int]]]


def module_files(root: Path, base: str, parts: Sequence[str]) -> tuple[list[str], bool]:
    """Files Python executes to import ``parts`` (dotted name split) found below folder ``base``.

    Returns (files, found): the ``__init__.py`` of every package on the way plus the module's
    own file, and whether the whole dotted name was found. Like Python, a folder with an
    ``__init__.py`` wins over ``name.py``, which wins over a namespace folder.
    """
    files: list[str] = []
    cur = base
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        path = join(cur, part)
        init = f"{path}/__init__.py"
        if (root / init).is_file():
            files.append(init)
        elif (root / f"{path}.py").is_file():
            files.append(f"{path}.py")
            return files, last  # a plain module has no sub-modules
        elif not (root / path).is_dir():
            return files, False
        cur = path
    return files, True


def _resolve_absolute(root: Path, name: str, search_dirs: Sequence[str]) -> tuple[list[str], str | None]:
    """(files, package folder or None) for ``import name``; ([], None) for a non-project module."""
    parts = name.split(".")
    for base in search_dirs:
        top = join(base, parts[0])
        if (root / top).is_dir() or (root / f"{top}.py").is_file():
            files, found = module_files(root, base, parts)
            folder = join(base, "/".join(parts))
            return files, (folder if found and (root / folder).is_dir() else None)
    return [], None


def _submodule(root: Path, pkg_dir: str, name: str) -> list[str]:
    """``from pkg import name``: the files of ``pkg/name`` when it is a sub-module, else []."""
    files, found = module_files(root, pkg_dir, [name])
    return files if found and files else []


def _imports_of(path: str, root: Path, search_dirs: Sequence[str]) -> list[tuple[str, int]]:
    """Project files imported anywhere in ``path`` (every Import/ImportFrom node), with lines.

    Also follows ``importlib.import_module("literal")`` and ``__import__("literal")`` calls
    whose argument is a plain string; computed names are the plugin rule's business.
    """
    try:
        tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=path)
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise DepGraphError(f"cannot parse {path}: {exc}") from exc
    here = str(PurePosixPath(path).parent)
    here = "" if here == "." else here
    found: list[tuple[str, int]] = []

    def add(files: Iterable[str], line: int) -> None:
        found.extend((f, line) for f in files)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_resolve_absolute(root, alias.name, search_dirs)[0], node.lineno)
        elif isinstance(node, ast.ImportFrom):
            add(_from_imports(node, here, root, search_dirs), node.lineno)
        elif isinstance(node, ast.Call):
            name = _literal_import_name(node)
            if name is not None and not name.startswith("."):
                add(_resolve_absolute(root, name, search_dirs)[0], node.lineno)
    return found


def _from_imports(node: ast.ImportFrom, here: str, root: Path, search_dirs: Sequence[str]) -> list[str]:
    """Project files of ``from X import a, b`` in a file of folder ``here``: those of ``X``,
    then those of each imported name that is a sub-module of ``X``."""
    pkg_dir: str | None
    if node.level:  # relative: the package of this file, then up level-1 times
        base = PurePosixPath(here)
        for _ in range(node.level - 1):
            base = base.parent
        base_dir = "" if str(base) == "." else str(base)
        if node.module:
            files, ok = module_files(root, base_dir, node.module.split("."))
            pkg_dir = join(base_dir, node.module.replace(".", "/")) if ok else None
        else:
            init = join(base_dir, "__init__.py")
            files = [init] if (root / init).is_file() else []
            pkg_dir = base_dir
    else:
        files, pkg_dir = _resolve_absolute(root, node.module or "", search_dirs)
    if pkg_dir is not None:
        for alias in node.names:
            if alias.name != "*":
                files.extend(_submodule(root, pkg_dir, alias.name))
    return files


def _literal_import_name(node: ast.Call) -> str | None:
    """``name`` of ``importlib.import_module("name")`` or ``__import__("name")``; None for any
    other call, and for a computed name (the plugin rule's business)."""
    func = node.func
    callee = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if callee not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def extend_closure(
    closure: Closure,
    seeds: Mapping[str, Origin],
    root: Path,
    search_dirs: Sequence[str],
    cache: ImportCache | None = None,
) -> None:
    """Add ``seeds`` and everything they import (breadth-first) to ``closure`` in place."""
    cache = {} if cache is None else cache
    queue = []
    for path, origin in seeds.items():
        if path not in closure:
            closure[path] = origin
            queue.append(path)
    while queue:
        current = queue.pop(0)
        key = (current, tuple(search_dirs))
        if key not in cache:
            cache[key] = _imports_of(current, root, search_dirs)
        for imported, line in cache[key]:
            if imported not in closure:
                closure[imported] = Origin(current, line)
                queue.append(imported)


def import_closure(files: Iterable[str], root: str | os.PathLike, search_dirs: Sequence[str] = ("",)) -> Closure:
    """Every project file ``files`` import, transitively, mapped to who imported it first.

    A project module is one that exists as a file under ``root`` (searched in ``search_dirs``,
    repo-relative folders, ``""`` being the root itself). Importing ``a.b.c`` runs
    ``a/__init__.py`` and ``a/b/__init__.py`` too, so they are included; ``from pkg import name``
    adds ``pkg/name.py`` (or ``pkg/name/__init__.py``) when that exists. The entry ``files``
    themselves are included with ``Origin(None)``.
    """
    closure: Closure = {}
    extend_closure(closure, {f: Origin(None) for f in files}, Path(root), search_dirs)
    return closure


def import_chain(closure: Closure, path: str) -> tuple[str, ...]:
    """``(entry, ..., importer:line, path)``: how ``path`` got into the closure.

    Each element but the last is ``file:line`` of the import statement that pulled in the
    next one (or ``file (plugin rule: ...)`` for a file added by the plugin rule).
    """
    chain = [path]
    seen = {path}
    origin = closure.get(path)
    while origin is not None and origin.importer is not None:
        chain.append(origin.describe())
        if origin.importer in seen:
            break
        seen.add(origin.importer)
        origin = closure.get(origin.importer)
    return tuple(reversed(chain))
