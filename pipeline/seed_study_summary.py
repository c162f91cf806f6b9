"""The seed study's summary: per studied comparison the paired differences over N seeds, and
the figure of every run (what the ``seed_study_summary`` stage writes).

Kept apart from :mod:`pipeline.seed_study` (its statistics), which the expensive
``seed_study@<variant>`` stages import: a change to a figure reruns no training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pipeline.config import ConfigError, load_all, require
from pipeline.io import read_json, write_json
from pipeline.plots import save_figure
from pipeline.schemas import SeedStudyRuns, SeedStudySummary, check
from pipeline.seed_study import comparison_summary, verdict

log = logging.getLogger(__name__)


def differences_figure(
    runs: Mapping[str, Sequence[Mapping]], spreads: Mapping[str, Mapping], comparisons: Sequence[Mapping]
) -> Figure:
    """Left: each variant's test accuracy per seed (dots) with its mean +- std (``spreads``: what
    :func:`spread` wrote into the runs files); right: each comparison's paired differences (dots)
    with their mean and t-interval, and 0 marked."""
    names = list(runs)
    height = 0.9 + 0.42 * max(len(names), len(comparisons))
    fig = Figure(figsize=(11, height), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.15])
    for y, name in enumerate(names):
        acc = np.array([100 * float(r["test_accuracy"]) for r in runs[name]])
        left.scatter(acc, np.full(acc.size, y), s=14, color="tab:blue", alpha=0.55, zorder=2)
        mean, std = 100 * spreads[name]["mean"], 100 * (spreads[name]["std"] or 0.0)
        left.errorbar(mean, y, xerr=std, fmt="o", color="black", capsize=4, markersize=5, zorder=3)
    left.set_yticks(range(len(names)), [f"{n}" for n in names], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("test accuracy (%): each seed, and mean +- std", fontsize=8)
    left.set_title("Test accuracy over seeds", fontsize=10)
    left.grid(axis="x", alpha=0.3)
    for y, c in enumerate(comparisons):
        diffs = np.asarray(c["differences_points"], dtype=np.float64)
        right.scatter(diffs, np.full(diffs.size, y), s=14, color="tab:orange", alpha=0.6, zorder=2)
        if c["ci_low_points"] is not None:
            err = [[c["mean_points"] - c["ci_low_points"]], [c["ci_high_points"] - c["mean_points"]]]
            color = "black" if c["distinguishable"] else "tab:gray"
            right.errorbar(c["mean_points"], y, xerr=err, fmt="D", color=color, capsize=4, markersize=5, zorder=3)
    right.axvline(0, color="tab:red", linewidth=1, linestyle="--")
    right.set_yticks(range(len(comparisons)), [f"{c['a']} - {c['b']}" for c in comparisons], fontsize=8)
    right.invert_yaxis()
    level = round(100 * comparisons[0]["confidence"]) if comparisons else 95
    right.set_xlabel(f"a - b (accuracy points): each seed, and mean with its {level}% t-interval", fontsize=8)
    right.set_title("Paired differences (grey: interval contains 0)", fontsize=10)
    right.grid(axis="x", alpha=0.3)
    return fig


def summarize(params_path: Path, runs_dir: Path, out: Path) -> dict:
    """Read every studied variant's runs file; write ``summary.json`` and ``differences.png`` to ``out``."""
    params = load_all(params_path)
    study = require(params.seed_study, "seed_study")
    runs, variants = {}, {}
    for name in params.study_variants():
        path = runs_dir / f"{name}.json"
        data = check(read_json(path), SeedStudyRuns, path.as_posix())
        if len(data["runs"]) != study.seeds:
            raise ConfigError(
                f"{path}: {len(data['runs'])} runs, but seed_study.seeds is {study.seeds}: run `dvc repro seed_study@{name}`"
            )
        runs[name] = data["runs"]
        variants[name] = {"seeds": data["seeds"], "test_accuracy": data["test_accuracy"]}
    comparisons = []
    for key in study.comparisons:
        cmp = params.comparison(key)
        summary = comparison_summary(key, cmp.title, cmp.a, cmp.b, runs, study.confidence)
        summary["verdict"] = verdict(summary)
        comparisons.append(summary)
        log.info("%s: %s", key, summary["verdict"])
    payload = {"seeds": study.seeds, "confidence": study.confidence, "variants": variants, "comparisons": comparisons}
    save_figure(
        differences_figure(runs, {n: v["test_accuracy"] for n, v in variants.items()}, comparisons),
        out / "differences.png",
    )
    write_json(out / "summary.json", check(payload, SeedStudySummary, "seed_study/summary.json"))
    log.info("wrote %s and %s", out / "summary.json", out / "differences.png")
    return payload
