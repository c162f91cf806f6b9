"""The check itself: each stage's declared deps against its import closure, and the orphans.

For every stage of ``dvc.yaml`` (the full rule is in the package docstring): a file the stage
imports but does not declare is **missing**; declared code it does not import is **extra**
(a leaf package counts as one unit); a command that names a module or script that does not
exist is an **entry** problem; a ``pipeline/`` file no stage imports is an **orphan**.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipeline.devtools.depgraph.entries import entry_files, missing_entries, script_dirs
from pipeline.devtools.depgraph.imports import Closure, ImportCache, Origin, extend_closure, import_chain
from pipeline.devtools.depgraph.paths import covers, is_marker, norm, py_files
from pipeline.devtools.depgraph.plugins import plugin_files
from pipeline.devtools.depgraph.stages import StageSpec, load_stages, load_variants

# Code that lives under pipeline/ but is run outside DVC, so no stage imports it. Patterns are
# fnmatch-style, matched against repo-relative POSIX paths ("*" also matches "/").
ORPHAN_ALLOWLIST: dict[str, str] = {
    "pipeline/timing.py": "run by `make repro-timed` around `dvc repro`, not by a stage",
    "pipeline/devtools/*": "developer tools (this checker), run by tests and by hand",
}

# Declared deps under these top-level folders are "code deps" and checked for being extra.
CODE_ROOTS = ("pipeline", "benchmarks")


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
    markers: frozenset[str] = frozenset()  # package markers in the closure: imported, not deps
    problems: list[Problem] = field(default_factory=list)


def _is_code_dep(dep: str) -> bool:
    return dep.split("/")[0] in CODE_ROOTS


def _stage_closure(
    stage: StageSpec, entries: Sequence[str], root: Path, variants: Mapping[str, dict], cache: ImportCache
) -> tuple[Closure, dict[str, str]]:
    """The import closure of ``entries``, with the plugin rule applied until nothing new is
    required, and the plugin folders that rule named."""
    search_dirs = ["", *script_dirs(stage.cmd)]
    closure: Closure = {}
    extend_closure(closure, {f: Origin(None) for f in entries}, root, search_dirs, cache)
    plugin_dirs: dict[str, str] = {}
    while True:
        new_files, folders = plugin_files(stage, closure, variants, root)
        plugin_dirs.update(folders)
        new_files = {f: o for f, o in new_files.items() if f not in closure}
        if not new_files:
            return closure, plugin_dirs
        for path, origin in new_files.items():
            if (root / path).is_file():
                extend_closure(closure, {path: origin}, root, search_dirs, cache)
            else:
                closure[path] = origin  # required but absent: reported missing below


def analyze_stage(
    stage: StageSpec, root: str | os.PathLike, variants: Mapping[str, dict], cache: ImportCache | None = None
) -> StageAnalysis:
    """Closure (with the plugin rule applied to a fixed point) and entry/missing/extra problems."""
    root = Path(root)
    entries = entry_files(stage.cmd, root)
    closure, plugin_dirs = _stage_closure(stage, entries, root, variants, {} if cache is None else cache)
    markers = frozenset(p for p in closure if is_marker(root, p))
    analysis = StageAnalysis(stage, entries, closure, plugin_dirs, markers)
    for target in missing_entries(stage.cmd, root):
        analysis.problems.append(
            Problem(
                "entry",
                stage.name,
                target,
                detail="the command runs it, but it does not exist",
            )
        )
    deps = [norm(d) for d in stage.deps]
    for path in closure:
        if path not in markers and not any(covers(d, path) for d in deps):
            chain = (f"$ {stage.cmd}", *import_chain(closure, path))
            analysis.problems.append(Problem("missing", stage.name, path, chain=chain))
    analysis.problems.extend(_extra_deps(stage.name, deps, closure, root))
    return analysis


def _extra_deps(stage_name: str, deps: Sequence[str], closure: Closure, root: Path) -> list[Problem]:
    """Declared code deps (normalised ``deps``) that the stage's ``closure`` does not import."""
    problems: list[Problem] = []
    for dep in deps:
        if not _is_code_dep(dep):
            continue
        if dep.endswith(".py"):
            if dep not in closure:
                problems.append(Problem("extra", stage_name, dep))
            elif is_marker(root, dep):
                problems.append(
                    Problem("extra", stage_name, dep, detail="a package marker (a docstring only) is not code")
                )
        elif (root / dep).is_dir():
            files = py_files(root, dep)
            unused = [p for p in files if p not in closure]
            # A leaf package (no sub-packages: a model family, pipeline/data/common) is one
            # unit of code: declaring it is right when the stage imports any of it, so one
            # folder can be shared by stages that use different parts of it. Any larger
            # folder must be imported whole, or it would hide over-declared code.
            leaf = all(PurePosixPath(p).parent == PurePosixPath(dep) for p in files)
            if unused and (not leaf or len(unused) == len(files)):
                problems.append(
                    Problem(
                        "extra",
                        stage_name,
                        dep,
                        detail="folder holds code the stage does not import: " + ", ".join(unused),
                    )
                )
    return problems


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
    problems: list[Problem] = []
    if not (root / "pipeline").is_dir():
        return problems
    for path in py_files(root, "pipeline"):
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
