"""What a one-line edit of each module costs: the stages it reruns and their wall time.

For every ``.py`` file under ``pipeline/`` and ``benchmarks/``, the stages of ``dvc.lock``
whose deps cover it (the file itself, or a folder that contains it) are the stages an edit of
it reruns; its cost is the sum of those stages' wall seconds in ``reports/timing.json``
(``"stages": {stage: seconds}``, written by the last full regeneration). A covering stage
that timing.json does not time is listed as untimed, never counted as 0 seconds.

A module is in a *training closure* when a stage that trains weights covers it. The training
kinds are ``train@``, ``seed_study@`` and ``mitigation@``: each fits models and writes their
weights or the numbers measured on them. ``bench_*`` stages are reported but not counted as
training: they time the loader and the layers for a few minutes and write no weights.

Usage::

    python -m pipeline.devtools.edit_cost [--root .] [--markdown] [--declared]

``dvc.lock`` records the deps of the last regeneration, so a layout change shows only after
the next one; ``--declared`` reads the deps from ``dvc.yaml`` instead, as DVC expands them
(what the next regeneration will record), to measure a layout before paying for it. Without
it, only the standard library, PyYAML and the dependency checker's path rules
(:mod:`pipeline.devtools.depgraph.paths`: what a dep covers, which files a folder holds, the
same answers the checker gives): it reads two files and the tree, and imports nothing of the
analysed code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.devtools.depgraph.paths import covers, py_files

CODE_DIRS = ("pipeline", "benchmarks")
TRAINING_KINDS = ("train@", "seed_study@", "mitigation@")
# The closures the summary sizes: the training kinds, and the benchmarks for comparison.
CLOSURE_PREFIXES = (*TRAINING_KINDS, "bench_")
# Report both thresholds of issue 33: 10 min was the "before" headline, 3 min is the target.
THRESHOLDS_MIN = (10.0, 3.0)


class EditCostError(Exception):
    """An input file is missing or malformed; the message names the file and the key."""


@dataclass
class ModuleCost:
    """One module: the stages that cover it, their timed seconds and any untimed ones."""

    module: str
    stages: list[str]
    seconds: float
    untimed: list[str] = field(default_factory=list)
    training: bool = False

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def kind_of(stage: str) -> str:
    """``train@cse849`` -> ``train@``; a stage without ``@`` is its own kind."""
    return stage.split("@", 1)[0] + "@" if "@" in stage else stage


def is_training(stage: str) -> bool:
    return kind_of(stage) in TRAINING_KINDS


def load_lock_deps(path: Path) -> dict[str, list[str]]:
    """``{stage: [dep path, ...]}`` from a ``dvc.lock``."""
    lock = _parsed(path, yaml.safe_load, "YAML")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        raise EditCostError(f"{path}: no 'stages' mapping")
    deps: dict[str, list[str]] = {}
    for name, entry in stages.items():
        raw = entry.get("deps", []) if isinstance(entry, dict) else None
        if not isinstance(raw, list) or not all(isinstance(d, dict) and "path" in d for d in raw):
            raise EditCostError(f"{path}: stages.{name}.deps is not a list of {{path: ...}} entries")
        deps[name] = [str(d["path"]) for d in raw]
    return deps


def load_declared_deps(root: Path) -> dict[str, list[str]]:
    """``{stage: [dep path, ...]}`` from ``dvc.yaml``, expanded by DVC (foreach, interpolation)."""
    from pipeline.devtools.depgraph import load_stages  # imports DVC: only for --declared

    if not (root / "dvc.yaml").is_file():
        raise EditCostError(f"{root / 'dvc.yaml'}: no such file (run from the repository root or pass --root)")
    return {stage.name: list(stage.deps) for stage in load_stages(root)}


def load_timings(path: Path) -> dict[str, float]:
    """``{stage: wall seconds}`` from ``timing.json``'s ``"stages"`` mapping."""
    return read_timing(path)[0]


def read_timing(path: Path) -> tuple[dict[str, float], str]:
    """``timing.json`` read once: the seconds per stage, and which run they come from (the file,
    its date and CPU count), for the output."""
    stages, doc = _timing_doc(path)
    source = f"seconds from {path.parent.name}/{path.name} (run of {doc.get('date', 'unknown date')}, {doc.get('cpus', '?')} CPUs)"
    return stages, source


def _parsed(path: Path, loads: Callable[[str], Any], kind: str) -> Any:
    """``loads`` of the file's text; a missing or unparsable file is one line naming it."""
    if not path.is_file():
        raise EditCostError(f"{path}: no such file (run from the repository root or pass --root)")
    try:
        return loads(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise EditCostError(f"{path}: not valid {kind}: {exc}") from exc


def _timing_doc(path: Path) -> tuple[dict[str, float], dict]:
    doc = _parsed(path, json.loads, "JSON")
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        raise EditCostError(f'{path}: no "stages" mapping of stage -> seconds')
    for name, seconds in stages.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise EditCostError(f'{path}: "stages".{name} is {seconds!r}, not a number of seconds')
    return {name: float(seconds) for name, seconds in stages.items()}, doc


def find_modules(root: Path, dirs: Iterable[str] = CODE_DIRS) -> list[str]:
    """Every ``.py`` file under ``dirs``, repo-relative with ``/``, bytecode folders skipped."""
    return sorted(path for top in dirs for path in py_files(root, top))


def module_costs(
    modules: Iterable[str], lock_deps: Mapping[str, Sequence[str]], timings: Mapping[str, float]
) -> list[ModuleCost]:
    """Each module's covering stages and cost, most expensive first (then by name)."""
    rows = []
    for module in modules:
        stages = sorted(s for s, deps in lock_deps.items() if any(covers(d, module) for d in deps))
        rows.append(
            ModuleCost(
                module,
                stages,
                seconds=sum(timings[s] for s in stages if s in timings),
                untimed=[s for s in stages if s not in timings],
                training=any(is_training(s) for s in stages),
            )
        )
    return sorted(rows, key=lambda r: (-r.seconds, r.module))


def closure_sizes(rows: Sequence[ModuleCost], lock_deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Per stage prefix of :data:`CLOSURE_PREFIXES`, the most modules one of its stages covers."""
    per_stage = Counter(s for r in rows for s in r.stages)
    sizes: dict[str, int] = {}
    for stage in lock_deps:
        for prefix in CLOSURE_PREFIXES:
            if stage.startswith(prefix):
                sizes[prefix] = max(sizes.get(prefix, 0), per_stage[stage])
    return {prefix: sizes[prefix] for prefix in CLOSURE_PREFIXES if prefix in sizes}


def stage_summary(stages: Sequence[str]) -> str:
    """``train@ x11, report``: expanded stages grouped by kind (a lone one keeps its name)."""
    by_kind: dict[str, list[str]] = {}
    for stage in stages:
        by_kind.setdefault(kind_of(stage), []).append(stage)
    return ", ".join(names[0] if len(names) == 1 else f"{kind} x{len(names)}" for kind, names in by_kind.items())


def summary_lines(rows: Sequence[ModuleCost], sizes: Mapping[str, int]) -> list[str]:
    """The headline numbers: closures, modules above each threshold, untimed stages."""
    lines = [
        "training kinds: " + ", ".join(TRAINING_KINDS) + " (they fit weights; bench_* times code, writes none)",
        f"modules: {len(rows)}; in some training closure: {sum(r.training for r in rows)}",
    ]
    lines += [
        f"modules in one {kind} stage's closure (max over its stages): {n}"
        + ("" if kind in TRAINING_KINDS else " (not training)")
        for kind, n in sizes.items()
    ]
    for limit in THRESHOLDS_MIN:
        over = [r for r in rows if r.minutes > limit]
        outside = sum(not r.training for r in over)
        lines.append(f"modules costing more than {limit:g} min: {len(over)} ({outside} outside training closures)")
    untimed = sorted({s for r in rows for s in r.untimed})
    if untimed:
        lines.append("covering stages with no time in timing.json (not counted): " + ", ".join(untimed))
    return lines


def render(rows: Sequence[ModuleCost], sizes: Mapping[str, int], markdown: bool, source: str = "") -> str:
    """The table, most expensive first, then the summary (``source``: where the seconds came from)."""
    header = ("module", "minutes", "reruns", "training closure")
    body = [
        (
            r.module,
            f"{r.minutes:.1f}" + ("+" if r.untimed else ""),
            stage_summary(r.stages) or "-",
            "yes" if r.training else "no",
        )
        for r in rows
    ]
    summary = [*([source] if source else []), *summary_lines(rows, sizes)]
    note = "`+`: some covering stage is untimed, see the last line." if any(r.untimed for r in rows) else ""
    if markdown:
        table = [f"| {' | '.join(header)} |", "|---|---:|---|---|"]
        table += [f"| `{m}` | {mins} | {reruns} | {tr} |" for m, mins, reruns, tr in body]
        return "\n".join([*table, "", *(f"- {line}" for line in summary), *(["", note] if note else [])]) + "\n"
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(3)]
    table = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[3] for row in [header, *body]
    ]
    return "\n".join([*table, "", *summary, *([note] if note else [])]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--declared", action="store_true", help="deps from dvc.yaml as DVC expands it, not from dvc.lock"
    )
    args = parser.parse_args(argv)
    try:
        lock_deps = load_declared_deps(args.root) if args.declared else load_lock_deps(args.root / "dvc.lock")
        timings, source = read_timing(args.root / "reports" / "timing.json")
    except EditCostError as exc:
        print(f"edit_cost: {exc}", file=sys.stderr)
        return 2
    rows = module_costs(find_modules(args.root), lock_deps, timings)
    sys.stdout.write(render(rows, closure_sizes(rows, lock_deps), args.markdown, source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
