"""Dependency-graph checker: every DVC stage declares exactly the project code it runs.

The rule, for every stage of ``dvc.yaml``:

* **missing** -- every project file the stage's entry point imports (transitively, including
  imports inside functions, ``try``/``except`` and ``if TYPE_CHECKING`` blocks) must be covered
  by a declared dep (the file itself, or a folder that contains it); otherwise editing that file
  would not rerun the stage.
* **extra** -- every declared dep that is code (a ``.py`` file, or a folder holding ``.py``
  files, under ``pipeline/`` or ``benchmarks/``) must be imported by the stage; otherwise
  editing it would rerun the stage for nothing. A leaf package (a folder without
  sub-packages, such as a model family or ``pipeline/data/common``) counts as one unit:
  it is declared rightly when the stage imports any file of it.
* **orphan** -- every ``.py`` file under ``pipeline/`` must be imported by at least one stage,
  or be listed in :data:`ORPHAN_ALLOWLIST` (tools run outside DVC).
* **entry** -- a stage whose command names a module or script that does not exist.

Usage::

    python -m pipeline.devtools.depgraph [--root .] [--suggest]

prints the problems (and, with ``--suggest``, each stage's exact list of code deps, ready to
paste into ``dvc.yaml``) and exits with status 1 when there is any problem.

Everything here is plain static analysis (``ast``) except :func:`load_stages`, which asks DVC
itself for the stages, so ``foreach`` expansion and ``${...}`` interpolation are DVC's own.
Nothing is imported or executed from the analysed code.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import os
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from ruamel.yaml import YAML, YAMLError

# Code that lives under pipeline/ but is run outside DVC, so no stage imports it. Patterns are
# fnmatch-style, matched against repo-relative POSIX paths ("*" also matches "/").
ORPHAN_ALLOWLIST: dict[str, str] = {
    "pipeline/timing.py": "run by `make repro-timed` around `dvc repro`, not by a stage",
    "pipeline/devtools/*": "developer tools (this checker), run by tests and by hand",
}

# Declared deps under these top-level folders are "code deps" and checked for being extra.
CODE_ROOTS = ("pipeline", "benchmarks")

# The two plugin registries that import a sub-module chosen at run time (see plugin_files()).
MODEL_REGISTRY = "pipeline/models/__init__.py"
MODEL_FAMILIES = "pipeline/models"
READER_REGISTRY = "pipeline/data/readers/__init__.py"
READER_MODULES = "pipeline/data/readers"

_PARAMS_FILE = "params.yaml"


class DepGraphError(RuntimeError):
    """The analysis itself failed (an unparsable source file, an unreadable params file)."""


# ----------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class StageSpec:
    """One expanded DVC stage, as DVC sees it.

    ``name`` is DVC's addressing name (``train@tdm_max``; ``sub/dvc.yaml:name`` for a
    ``dvc.yaml`` outside the root). ``deps`` are the declared non-params deps as repo-relative
    POSIX paths; ``param_keys`` the keys of its ``params.yaml`` params deps; ``outs`` every
    output (outs, metrics and plots alike) as a repo-relative POSIX path.
    """

    name: str
    cmd: str
    deps: tuple[str, ...]
    param_keys: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()

    @property
    def foreach_key(self) -> str | None:
        """``tdm_max`` for ``train@tdm_max``; None for a stage that is not a foreach item."""
        return self.name.rpartition("@")[2] if "@" in self.name else None


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
# :func:`analyze` run parses each of them once. Valid for one run only (files may change).
ImportCache = dict[tuple[str, tuple[str, ...]], list[tuple[str, int]]]


@dataclass(frozen=True)
class Problem:
    """One finding. ``chain`` (missing files only) runs from the entry point to ``path``."""

    kind: str  # "missing" | "extra" | "orphan" | "entry"
    stage: str | None
    path: str
    chain: tuple[str, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        head = f"[{self.kind}] {self.stage}: {self.path}" if self.stage else f"[{self.kind}] {self.path}"
        if self.kind == "missing":
            head += " is imported but not declared as a dep"
            if self.chain:
                head += "\n    import chain: " + "\n      -> ".join(self.chain)
        elif self.kind == "extra":
            head += " is declared as a dep but not imported"
        elif self.kind == "orphan":
            head += " is imported by no stage (and is not in ORPHAN_ALLOWLIST)"
        if self.detail:
            head += f"\n    {self.detail}"
        return head


@dataclass
class StageAnalysis:
    """The result of analysing one stage: its entry files, closure and plugin folders."""

    stage: StageSpec
    entries: list[str]
    closure: Closure
    plugin_dirs: dict[str, str] = field(default_factory=dict)  # folder -> reason (model families)
    problems: list[Problem] = field(default_factory=list)


# ----------------------------------------------------------------------------- DVC stages
def load_stages(root: str | os.PathLike) -> list[StageSpec]:
    """Every stage with a command, expanded by DVC itself (foreach, interpolation)."""
    # DVC is slow to import: only here, so the pure-Python parts stay fast.
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    specs: list[StageSpec] = []
    with Repo(os.fspath(root)) as repo:
        root_dir = repo.root_dir
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue  # a .dvc file (imported / added data), not a pipeline stage
            cmd = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
            dvcfile_dir = os.path.relpath(os.path.dirname(stage.dvcfile.path), root_dir)
            name = stage.name if dvcfile_dir == "." else f"{_posix(dvcfile_dir)}/dvc.yaml:{stage.name}"
            deps: list[str] = []
            keys: list[str] = []
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    if _posix(os.path.relpath(dep.fs_path, root_dir)) == _PARAMS_FILE:
                        keys.extend(dep.params or [])
                    continue
                deps.append(_repo_relative(dep, root_dir))
            outs = tuple(_repo_relative(out, root_dir) for out in stage.outs)
            specs.append(StageSpec(name=name, cmd=cmd, deps=tuple(deps), param_keys=tuple(keys), outs=outs))
    return specs


def _repo_relative(dep, root_dir: str) -> str:
    """A dep's or out's path relative to the repo root (POSIX); its text as written when outside the repo."""
    try:
        rel = os.path.relpath(dep.fs_path, root_dir)
    except (TypeError, ValueError):
        return str(dep.def_path)
    if rel.startswith("..") or os.path.isabs(rel):
        return str(dep.def_path)
    return _posix(rel)


def _posix(path: str) -> str:
    return PurePosixPath(Path(path).as_posix()).as_posix()


def _norm(path: str) -> str:
    """``./data/raw/`` -> ``data/raw``."""
    norm = os.path.normpath(path).replace(os.sep, "/").strip("/") if path else ""
    return "" if norm == "." else norm


# ----------------------------------------------------------------------------- entry points
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
            targets.append(("script", _norm(word)))
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
        found, ok = _module_files(root, "", target.split("."))
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


def _script_dirs(cmd: str) -> list[str]:
    """``sys.path[0]`` of each script a command runs (its folder), for absolute imports."""
    dirs = []
    for kind, target in _python_targets(cmd):
        if kind == "script":
            parent = _norm(str(PurePosixPath(target).parent))
            if parent not in dirs:
                dirs.append(parent)
    return dirs


# ----------------------------------------------------------------------------- import resolution
def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _module_files(root: Path, base: str, parts: Sequence[str]) -> tuple[list[str], bool]:
    """Files Python executes to import ``parts`` (dotted name split) found below folder ``base``.

    Returns (files, found): the ``__init__.py`` of every package on the way plus the module's
    own file, and whether the whole dotted name was found. Like Python, a folder with an
    ``__init__.py`` wins over ``name.py``, which wins over a namespace folder.
    """
    files: list[str] = []
    cur = base
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        path = _join(cur, part)
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
        top = _join(base, parts[0])
        if (root / top).is_dir() or (root / f"{top}.py").is_file():
            files, found = _module_files(root, base, parts)
            folder = _join(base, "/".join(parts))
            return files, (folder if found and (root / folder).is_dir() else None)
    return [], None


def _submodule(root: Path, pkg_dir: str, name: str) -> list[str]:
    """``from pkg import name``: the files of ``pkg/name`` when it is a sub-module, else []."""
    files, found = _module_files(root, pkg_dir, [name])
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
            if node.level:  # relative: the package of this file, then up level-1 times
                base = PurePosixPath(here)
                for _ in range(node.level - 1):
                    base = base.parent
                pkg_dir = "" if str(base) == "." else str(base)
                if node.module:
                    files, ok = _module_files(root, pkg_dir, node.module.split("."))
                    add(files, node.lineno)
                    pkg_dir = _join(pkg_dir, node.module.replace(".", "/")) if ok else None
                else:
                    init = _join(pkg_dir, "__init__.py")
                    add([init] if (root / init).is_file() else [], node.lineno)
            else:
                files, pkg_dir = _resolve_absolute(root, node.module or "", search_dirs)
                add(files, node.lineno)
            if pkg_dir is not None:
                for alias in node.names:
                    if alias.name != "*":
                        add(_submodule(root, pkg_dir, alias.name), node.lineno)
        elif isinstance(node, ast.Call) and _is_literal_import_call(node):
            name = node.args[0].value
            if not name.startswith("."):
                add(_resolve_absolute(root, name, search_dirs)[0], node.lineno)
    return found


def _is_literal_import_call(node: ast.Call) -> bool:
    func = node.func
    callee = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return (
        callee in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _extend_closure(
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
    _extend_closure(closure, {f: Origin(None) for f in files}, Path(root), search_dirs)
    return closure


def import_chain(closure: Closure, path: str) -> tuple[str, ...]:
    """``(entry, ..., importer:line, path)``: how ``path`` got into the closure.

    Each element but the last is ``file:line`` of the import statement that pulled in the
    next one (or ``file (plugin rule: ...)`` for a file added by :func:`plugin_files`).
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


# ----------------------------------------------------------------------------- plugin rule
def load_variants(root: str | os.PathLike) -> dict:
    """``variants`` of ``params.yaml`` (``{}`` when absent), read as DVC reads it (ruamel.yaml, YAML 1.2)."""
    path = Path(root) / _PARAMS_FILE
    if not path.is_file():
        return {}
    try:
        params = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    except YAMLError as exc:
        raise DepGraphError(f"cannot read {path}: {exc}") from exc
    variants = params.get("variants") or {}
    return variants if isinstance(variants, dict) else {}


def touched_variants(stage: StageSpec, variants: Mapping[str, dict]) -> list[str]:
    """The variants a stage works on, by the explicit rule of :func:`plugin_files`."""
    touched: list[str] = []

    def touch(name: str) -> None:
        if name in variants and name not in touched:
            touched.append(name)

    if stage.foreach_key is not None:  # (a) train@tdm_max -> tdm_max
        touch(stage.foreach_key)
    for dep in stage.deps:  # (b) models/<V>.pt declared as a dep
        p = PurePosixPath(dep)
        if len(p.parts) == 2 and p.parts[0] == "models" and p.suffix == ".pt":
            touch(p.stem)
    for key in stage.param_keys:  # (c) params variants.<V> or variants.<V>.<...>
        parts = key.split(".")
        if len(parts) >= 2 and parts[0] == "variants":
            touch(parts[1])
    return touched


def plugin_files(
    stage: StageSpec,
    closure: Closure,
    variants: Mapping[str, dict],
    root: str | os.PathLike,
) -> tuple[dict[str, Origin], dict[str, str]]:
    """Files a stage runs through the two importlib-based registries, which ``ast`` cannot see.

    Why this exists: ``pipeline/models/__init__.py`` imports ``pipeline.models.<model name>``
    (one *family folder* per model name) and ``pipeline/data/readers/__init__.py`` imports
    ``pipeline.data.readers.<format>`` with ``importlib``, the name coming from ``params.yaml``
    at run time. Static analysis only sees the registry, so without this rule a stage could
    omit its model family (editing the model would not retrain) or list every family
    (editing one model would retrain them all). The explicit rule:

    * The variants a stage *touches* (:func:`touched_variants`) are
      (a) its foreach key, when the stage is ``<name>@<key>`` and ``key`` is a variant;
      (b) every variant ``V`` whose checkpoint ``models/V.pt`` the stage declares as a dep;
      (c) every variant ``V`` whose params ``variants.V`` (or a key below it) the stage declares
          (e.g. a benchmark that builds that variant's model).
    * If the closure runs the model registry, each touched variant needs its model family
      folder ``pipeline/models/<variants.V.model.name>``: every ``.py`` file in it.
    * If the closure runs the readers registry **and** the stage declares the variant's data
      (``variants.V.data.path`` or a sub-folder of it) as a dep, it needs
      ``pipeline/data/readers/<variants.V.data.format>.py``. A stage that touches a variant
      only through its checkpoint (e.g. to draw its filters) reads none of its data.

    Returns (files to add with the Origin to report, family folders -> reason). The caller
    adds the files' own imports and applies the rule again until nothing new appears.
    """
    root = Path(root)
    files: dict[str, Origin] = {}
    folders: dict[str, str] = {}
    deps = [_norm(d) for d in stage.deps]
    for name in touched_variants(stage, variants):
        variant = variants.get(name) or {}
        model_name = (variant.get("model") or {}).get("name")
        data = variant.get("data") or {}
        if MODEL_REGISTRY in closure and model_name:
            folder = f"{MODEL_FAMILIES}/{model_name}"
            reason = f"plugin rule: variant {name} uses model {model_name}"
            folders[folder] = reason
            for path in _py_files(root, folder) or [f"{folder}/__init__.py"]:  # an absent family is reported missing
                files.setdefault(path, Origin(MODEL_REGISTRY, None, reason))
        data_path, fmt = _norm(str(data.get("path") or "")), data.get("format")
        reads_data = any(d == data_path or d.startswith(data_path + "/") for d in deps) if data_path else False
        if READER_REGISTRY in closure and fmt and reads_data:
            reason = f"plugin rule: variant {name} reads format {fmt}"
            files.setdefault(f"{READER_MODULES}/{fmt}.py", Origin(READER_REGISTRY, None, reason))
    return files, folders


# ----------------------------------------------------------------------------- checks
def _covers(dep: str, path: str) -> bool:
    dep = _norm(dep)
    return dep == "" or path == dep or path.startswith(dep + "/")


def _py_files(root: Path, folder: str) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _is_code_dep(dep: str) -> bool:
    return dep.split("/")[0] in CODE_ROOTS


def _stage_closure(
    stage: StageSpec, entries: Sequence[str], root: Path, variants: Mapping[str, dict], cache: ImportCache
) -> tuple[Closure, dict[str, str]]:
    """The import closure of ``entries``, with the plugin rule applied until nothing new is
    required, and the plugin folders that rule named."""
    search_dirs = ["", *_script_dirs(stage.cmd)]
    closure: Closure = {}
    _extend_closure(closure, {f: Origin(None) for f in entries}, root, search_dirs, cache)
    plugin_dirs: dict[str, str] = {}
    while True:
        new_files, folders = plugin_files(stage, closure, variants, root)
        plugin_dirs.update(folders)
        new_files = {f: o for f, o in new_files.items() if f not in closure}
        if not new_files:
            return closure, plugin_dirs
        for path, origin in new_files.items():
            if (root / path).is_file():
                _extend_closure(closure, {path: origin}, root, search_dirs, cache)
            else:
                closure[path] = origin  # required but absent: reported missing below


def analyze_stage(
    stage: StageSpec, root: str | os.PathLike, variants: Mapping[str, dict], cache: ImportCache | None = None
) -> StageAnalysis:
    """Closure (with the plugin rule applied to a fixed point) and missing/extra problems."""
    root = Path(root)
    entries = entry_files(stage.cmd, root)
    closure, plugin_dirs = _stage_closure(stage, entries, root, variants, {} if cache is None else cache)
    analysis = StageAnalysis(stage, entries, closure, plugin_dirs)
    for target in missing_entries(stage.cmd, root):
        analysis.problems.append(
            Problem(
                "entry",
                stage.name,
                target,
                detail="the command runs it, but it does not exist",
            )
        )
    deps = [_norm(d) for d in stage.deps]
    for path in closure:
        if not any(_covers(d, path) for d in deps):
            chain = (f"$ {stage.cmd}", *import_chain(closure, path))
            analysis.problems.append(Problem("missing", stage.name, path, chain=chain))
    for dep in deps:
        if not _is_code_dep(dep):
            continue
        if dep.endswith(".py"):
            if dep not in closure:
                analysis.problems.append(Problem("extra", stage.name, dep))
        elif (root / dep).is_dir():
            files = _py_files(root, dep)
            unused = [p for p in files if p not in closure]
            # A leaf package (no sub-packages: a model family, pipeline/data/common) is one
            # unit of code: declaring it is right when the stage imports any of it, so one
            # folder can be shared by stages that use different parts of it. Any larger
            # folder must be imported whole, or it would hide over-declared code.
            leaf = all(PurePosixPath(p).parent == PurePosixPath(dep) for p in files)
            if unused and (not leaf or len(unused) == len(files)):
                analysis.problems.append(
                    Problem(
                        "extra",
                        stage.name,
                        dep,
                        detail="folder holds code the stage does not import: " + ", ".join(unused),
                    )
                )
    return analysis


def analyze(root: str | os.PathLike, stages: Sequence[StageSpec] | None = None) -> list[StageAnalysis]:
    """:func:`analyze_stage` for every stage of the repository at ``root``."""
    stages = load_stages(root) if stages is None else stages
    variants = load_variants(root)
    cache: ImportCache = {}
    return [analyze_stage(stage, root, variants, cache) for stage in stages]


def find_orphans(
    root: str | os.PathLike,
    analyses: Sequence[StageAnalysis],
    allowlist: Mapping[str, str] = ORPHAN_ALLOWLIST,
) -> list[Problem]:
    """``.py`` files under ``pipeline/`` that no stage imports and no allowlist entry excuses."""
    root = Path(root)
    used = set().union(*(a.closure for a in analyses)) if analyses else set()
    problems = []
    if not (root / "pipeline").is_dir():
        return problems
    for path in _py_files(root, "pipeline"):
        if path in used or any(fnmatch.fnmatch(path, pattern) for pattern in allowlist):
            continue
        problems.append(Problem("orphan", None, path))
    return problems


def check(root: str | os.PathLike) -> list[Problem]:
    """Every problem of the repository at ``root``: missing, extra, entry, then orphans."""
    return problems_of(root, analyze(root))


def problems_of(root: str | os.PathLike, analyses: Sequence[StageAnalysis]) -> list[Problem]:
    """The stages' own problems, then the orphans among the files none of them imports."""
    return [p for a in analyses for p in a.problems] + find_orphans(root, analyses)


# ----------------------------------------------------------------------------- suggestions
def suggested_deps(analysis: StageAnalysis) -> list[str]:
    """The stage's exact code deps: the command's module or script first, then the rest
    sorted; plugin family folders as folders (the rule asks for the whole folder)."""
    folders = sorted(analysis.plugin_dirs)
    first = [e for e in analysis.entries if not e.endswith("/__init__.py")]
    out: list[str] = []
    for path in [*first, *sorted(analysis.closure)]:
        folder = next((f for f in folders if path.startswith(f + "/")), None)
        item = folder or path
        if item not in out:
            out.append(item)
    return out


def _templated(analysis: StageAnalysis, variants: Mapping[str, dict]) -> list[str] | None:
    """The suggestion with its own variant's plugin paths written as ``${item...}``."""
    key = analysis.stage.foreach_key
    if key is None or key not in variants:
        return None
    variant = variants[key] or {}
    model = (variant.get("model") or {}).get("name")
    fmt = (variant.get("data") or {}).get("format")
    subs = {}
    if model:
        subs[f"{MODEL_FAMILIES}/{model}"] = MODEL_FAMILIES + "/${item.model.name}"
    if fmt:
        subs[f"{READER_MODULES}/{fmt}.py"] = READER_MODULES + "/${item.data.format}.py"
    return [subs.get(d, d) for d in suggested_deps(analysis)]


def format_suggestions(analyses: Sequence[StageAnalysis], variants: Mapping[str, dict]) -> str:
    """YAML-ready dep lists: one per stage, or one ``${item...}`` template per foreach group
    when every item of the group needs the same list after substitution."""
    lines: list[str] = []
    done: set[str] = set()
    for a in analyses:
        name = a.stage.name
        if name in done:
            continue
        group_name = name.rpartition("@")[0] if "@" in name else None
        if group_name:
            group = [b for b in analyses if b.stage.name.rpartition("@")[0] == group_name and "@" in b.stage.name]
            templates = [_templated(b, variants) for b in group]
            if all(t is not None and t == templates[0] for t in templates):
                done.update(b.stage.name for b in group)
                lines.append(f"{group_name}:  # foreach template, same for all {len(group)} items")
                lines.extend(f"  - {d}" for d in templates[0])
                lines.append("")
                continue
        done.add(name)
        lines.append(f"{name}:")
        lines.extend(f"  - {d}" for d in suggested_deps(a))
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.depgraph",
        description="Check that every DVC stage declares exactly the project code it imports.",
    )
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    parser.add_argument(
        "--suggest",
        action="store_true",
        help="print each stage's exact code deps for dvc.yaml",
    )
    args = parser.parse_args(argv)

    root = Path(args.root).resolve()
    try:
        analyses = analyze(root)
    except DepGraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = problems_of(root, analyses)
    if args.suggest:
        print("# Code deps per stage (paste into dvc.yaml; data deps not shown)\n")
        print(format_suggestions(analyses, load_variants(root)))
    for problem in problems:
        print(problem)
    summary = (
        f"{len(problems)} problem(s) in {len(analyses)} stage(s)"
        if problems
        else f"ok: {len(analyses)} stage(s) declare exactly the code they import"
    )
    print(summary, file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
