"""The gate's reproduction check: retrain a few variants from scratch, compare with what is committed.

``dvc status`` proves that the committed results are *current*: their hashes match the code,
params and data. It cannot see a result edited by hand and recorded with ``dvc commit -f``.
This check re-executes: the variants under ``reproduce.variants`` in ``params.yaml`` are
trained again by their stage's own command (``train@<variant>`` in ``dvc.yaml``) in a scratch
copy of the checkout (the files git tracks or would track, without the committed ``models/``
and ``reports/``, so every compared file is written anew; the stage's dependencies git does
not hold, the data stages' outputs, linked in read-only), and each output is compared with
the committed one:

* where the run's kernels match the committed run's (``device``, ``cpu_capability``,
  ``threads`` and ``torch``, which ``train@<variant>`` records in its ``timings.json``), every
  output but ``timings.json`` (this machine's speed) must be byte-identical;
* elsewhere (another CPU sums floats in another order, so the weights differ in their last
  bits) the test accuracy must lie within ``reproduce.test_accuracy_tolerance``.

Usage::

    python -m pipeline.devtools.reproduce [--root .] [--variants V ...] [--keep]

prints the committed and the reproduced results side by side and exits with status 1 when
a variant does not reproduce (2 when it cannot run: no data, a stage that fails). The data
stages must have run first (``.ci/gate`` runs them before this).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.params import load_all, require
from pipeline.devtools.depgraph import StageSpec, load_stages

#: What picks a run's kernels (``pipeline.training.setup.kernel_facts``, recorded in ``timings.json``).
KERNEL_FACTS = ("device", "cpu_capability", "threads", "torch")
#: The output of ``train@<variant>`` that describes the machine, not the run: never compared.
MACHINE_OUTPUT = "timings.json"
#: Committed outputs: left out of the scratch copy, so that nothing compared is a leftover.
OUTPUT_DIRS = ("models", "reports")


class ReproduceError(PipelineError):
    """The check could not run (no data, a stage that failed): not a verdict on the results."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One variant: the committed run beside the scratch copy's."""

    variant: str
    committed_kernels: dict
    kernels: dict
    committed_accuracy: float | None
    accuracy: float | None
    differing: tuple[str, ...]  # outputs whose bytes differ (timings.json aside)
    tolerance: float
    seconds: float = 0.0

    @property
    def same_kernels(self) -> bool:
        return all(key in self.committed_kernels for key in KERNEL_FACTS) and all(
            self.committed_kernels[key] == self.kernels.get(key) for key in KERNEL_FACTS
        )

    @property
    def difference(self) -> float | None:
        if self.accuracy is None or self.committed_accuracy is None:
            return None
        return round(self.accuracy - self.committed_accuracy, 6)  # metrics carry six decimals

    @property
    def ok(self) -> bool:
        if self.same_kernels:
            return not self.differing
        return self.difference is not None and abs(self.difference) <= self.tolerance

    @property
    def result(self) -> str:
        if self.same_kernels:
            if not self.differing:
                return "ok: byte-identical"
            return f"FAIL: same kernels, but {len(self.differing)} output(s) differ: {', '.join(self.differing)}"
        if self.difference is None:
            return "FAIL: no test accuracy to compare (metrics.json)"
        verdict = "ok" if self.ok else "FAIL"
        relation = "<=" if self.ok else ">"
        return f"{verdict}: other kernels; |difference| {abs(self.difference):.4f} {relation} {self.tolerance:g}"


# --------------------------------------------------------------------------- the scratch copy


def scratch_copy(root: Path, dest: Path) -> None:
    """The files of ``root`` that git tracks or would track (not the ignored ones: data, venv,
    caches), as they are in the work tree, without the committed outputs (:data:`OUTPUT_DIRS`)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ReproduceError(f"{root}: cannot list the checkout's files with git ({exc})") from exc
    for rel in sorted(set(listed.split("\0")) - {""}):
        source = root / rel
        if rel.split("/", 1)[0] in OUTPUT_DIRS or not (source.exists() or source.is_symlink()):
            continue  # a committed output, or a tracked file deleted in the work tree
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / rel, follow_symlinks=False)


def link_data(root: Path, dest: Path, stage: StageSpec) -> None:
    """Link each dependency of ``stage`` that the copy lacks (a data stage's output) to the checkout's."""
    for dep in stage.deps:
        if os.path.isabs(dep) or (dest / dep).exists():
            continue  # read where it is, or copied with the code
        if not (dest / dep).resolve().is_relative_to(dest.resolve()):
            raise ReproduceError(f"{stage.name}: dependency {dep} lies outside the checkout; give its absolute path")
        if not (root / dep).exists():
            raise ReproduceError(
                f"{stage.name}: dependency {dep} is missing in {root}: run the data stages first "
                "(dvc repro download convert_mnist convert_composite)"
            )
        (dest / dep).parent.mkdir(parents=True, exist_ok=True)
        (dest / dep).symlink_to((root / dep).resolve(), target_is_directory=(root / dep).is_dir())


def run_stage(dest: Path, stage: StageSpec) -> float:
    """Run the stage's command in the copy (this interpreter as its ``python``); its wall time."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("PYTHONPATH", None)  # the copy's own package, as the stage in a checkout imports its own
    start = time.perf_counter()
    done = subprocess.run(stage.cmd, shell=True, cwd=dest, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        print(tail, file=sys.stderr)
        raise ReproduceError(
            f"{stage.name}: `{stage.cmd}` exited {done.returncode} in the scratch copy (its output above; "
            "--keep DIR keeps the copy)"
        )
    return time.perf_counter() - start


# --------------------------------------------------------------------------- comparing


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _test_accuracy(path: Path) -> float | None:
    value = _json(path).get("test_accuracy")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _same_bytes(a: Path, b: Path) -> bool:
    if a.is_dir() and b.is_dir():
        names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        if names != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
            return False
        return all(_same_bytes(a / name, b / name) for name in names)
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def compare(root: Path, dest: Path, stage: StageSpec, variant: str, tolerance: float) -> Outcome:
    """The committed outputs of ``stage`` (under ``root``) beside the copy's (under ``dest``)."""
    missing = [out for out in stage.outs if not (dest / out).exists()]
    if missing:
        raise ReproduceError(f"{stage.name}: `{stage.cmd}` did not write {', '.join(missing)}")
    compared = [out for out in stage.outs if Path(out).name != MACHINE_OUTPUT]
    timings = next((out for out in stage.outs if Path(out).name == MACHINE_OUTPUT), None)
    metrics = next((out for out in stage.outs if Path(out).name == "metrics.json"), None)
    if timings is None or metrics is None:
        raise ReproduceError(f"{stage.name}: expected {MACHINE_OUTPUT} and metrics.json among its outputs in dvc.yaml")
    return Outcome(
        variant=variant,
        committed_kernels=_json(root / timings),
        kernels=_json(dest / timings),
        committed_accuracy=_test_accuracy(root / metrics),
        accuracy=_test_accuracy(dest / metrics),
        differing=tuple(out for out in compared if not _same_bytes(root / out, dest / out)),
        tolerance=tolerance,
    )


def reproduce(
    root: Path, variants: Sequence[str], tolerance: float, scratch: Path | None = None, log=print
) -> list[Outcome]:
    """Retrain ``variants`` from scratch in a copy of ``root`` (in ``scratch``, or a temporary
    folder removed afterwards) and compare each with the committed results."""
    stages = {stage.name: stage for stage in load_stages(root)}
    missing = [v for v in variants if f"train@{v}" not in stages]
    if missing:
        raise ReproduceError(f"train@{missing[0]}: no such stage in {root / 'dvc.yaml'}")
    chosen = [stages[f"train@{variant}"] for variant in variants]
    where = contextlib.nullcontext(scratch) if scratch else tempfile.TemporaryDirectory(prefix="reproduce-")
    with where as folder:
        dest = Path(folder)
        scratch_copy(root, dest)
        outcomes = []
        for variant, stage in zip(variants, chosen, strict=True):
            link_data(root, dest, stage)
            log(f"reproduce: {stage.name}: {stage.cmd} (in {dest})")
            seconds = run_stage(dest, stage)
            outcome = compare(root, dest, stage, variant, tolerance)
            outcomes.append(dataclasses.replace(outcome, seconds=seconds))
    return outcomes


# --------------------------------------------------------------------------- the table


def _kernels(facts: dict) -> str:
    if not all(key in facts for key in KERNEL_FACTS):
        return "not recorded"
    return f"{facts['device']} {facts['cpu_capability']}, {facts['threads']} threads, torch {facts['torch']}"


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(outcomes: Sequence[Outcome]) -> str:
    """The committed and the reproduced results side by side, one row per variant."""
    header = (
        "variant",
        "committed run's kernels",
        "this run's kernels",
        "test acc",
        "reproduced",
        "diff",
        "time",
        "result",
    )
    rows = [header] + [
        (
            o.variant,
            _kernels(o.committed_kernels),
            "same" if o.same_kernels else _kernels(o.kernels),
            _accuracy(o.committed_accuracy),
            _accuracy(o.accuracy),
            "-" if o.difference is None else f"{o.difference:+.4f}",
            f"{o.seconds:.0f} s",
            o.result,
        )
        for o in outcomes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]) for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.reproduce",
        description="Retrain params.yaml's reproduce.variants from scratch in a scratch copy and compare "
        "them with the committed results (byte-identical on the same kernels, else test accuracy "
        "within reproduce.test_accuracy_tolerance).",
    )
    parser.add_argument("--root", default=".", help="the checkout (default: .)")
    parser.add_argument("--variants", nargs="+", metavar="V", help="instead of reproduce.variants")
    parser.add_argument("--keep", metavar="DIR", type=Path, help="make the scratch copy in DIR (empty) and keep it")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    try:
        cfg = require(load_all(root / "params.yaml").reproduce, "reproduce")
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            if any(args.keep.iterdir()):
                raise ReproduceError(f"--keep {args.keep}: not empty")
        outcomes = reproduce(root, args.variants or cfg.variants, cfg.test_accuracy_tolerance, args.keep)
    except PipelineError as exc:
        print(f"error: reproduce: {exc}", file=sys.stderr)
        return 2
    print(table(outcomes))
    failed = [o.variant for o in outcomes if not o.ok]
    if failed:
        print(f"error: reproduce: {', '.join(failed)} did not reproduce the committed results", file=sys.stderr)
        return 1
    print(f"reproduce: {len(outcomes)} variant(s) reproduce the committed results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
