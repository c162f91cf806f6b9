"""The seed study's summary: per studied comparison the paired differences over N seeds, the
verdict that follows them, and the figure of every run (what the ``seed_study_summary`` stage writes).

Kept apart from :mod:`pipeline.studies.seed_study`, which the expensive ``seed_study@<variant>``
stages import: a change to a figure or to a verdict's wording reruns no training.

The verdict follows every test it reports (:mod:`pipeline.analysis.paired_tests`): the sign count
and its exact sign test, the mean with its t-interval, and what N seeds can show at all. A
t-interval widened past 0 by one seed is said to be, naming the seed; a comparison whose
variants differ in more than its factor opens with "Not a fair comparison". Whether they do
is ``compare@<key>``'s finding (``reports/comparisons/<key>.json``), read here rather than
worked out again from params: this stage then reads no variant's params, and adding a
variant to ``params.yaml`` leaves it current.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from pipeline.analysis.paired_tests import fairness_first, paired_difference
from pipeline.analysis.schemas import Comparison, SeedStudySummary
from pipeline.core.config import ConfigError
from pipeline.core.io import read_json, write_json
from pipeline.core.params import Params, load_all, require
from pipeline.core.schemas import SeedStudyRuns, check
from pipeline.plots import save_figure

log = logging.getLogger(__name__)


def comparison_summary(
    key: str,
    params: Params,
    runs: Mapping[str, Sequence[Mapping]],
    confidence: float,
    alpha: float,
    found: Sequence[str] = (),
) -> dict:
    """One studied comparison: its paired statistics, whether it is fair (``found``: the params
    its variants differ in besides the factor, as ``compare@<key>`` lists them), and its verdict."""
    cmp = params.comparison(key)
    summary = {
        "key": key,
        "title": cmp.title,
        "a": cmp.a,
        "b": cmp.b,
        **paired_difference(runs[cmp.a], runs[cmp.b], confidence),
        "fair": not found,
        "confounds": list(found),
    }
    summary["verdict"] = verdict(summary, alpha)
    return summary


def _outlier_note(c: Mapping[str, Any]) -> str:
    """Why a t-interval contains 0 although every seed points one way: the seed whose removal
    moves the interval off 0, if one does; else ""."""
    diffs = np.asarray(c["differences_points"], dtype=np.float64)
    if diffs.size < 4 or not (c["a_ahead"] == diffs.size or c["b_ahead"] == diffs.size):
        return ""
    worst = int(np.argmax(np.abs(diffs - np.median(diffs))))
    rest = np.delete(diffs, worst)
    half = stats.t.ppf(0.5 + c["confidence"] / 2, rest.size - 1) * rest.std(ddof=1) / np.sqrt(rest.size)
    if abs(rest.mean()) <= half:
        return ""
    return (
        f" because of one seed: random seed {c['seeds'][worst]} gives {diffs[worst]:+.2f} points, "
        f"and without it the interval is {rest.mean() - half:+.2f} to {rest.mean() + half:+.2f}"
    )


def _ahead(c: Mapping[str, Any]) -> str:
    n = c["n"]
    for side in ("a", "b"):
        if c[f"{side}_ahead"] == n:
            return f"`{c[side]}` ahead in every seed ({n} of {n})"
    text = f"`{c['a']}` ahead in {c['a_ahead']} of {n} seeds, `{c['b']}` in {c['b_ahead']}"
    return text + (f", tied in {c['ties']}" if c["ties"] else "")


def verdict(c: Mapping[str, Any], alpha: float) -> str:
    """The study's sentence for one comparison; its wording follows the sign test and the t-interval."""
    n, level = c["n"], round(100 * c["confidence"])
    p, pmin = c["sign_test_p"], c["sign_test_min_p"]
    by_sign = p is not None and p < alpha
    by_t = c["distinguishable"]
    unanimous = n > 0 and (c["a_ahead"] == n or c["b_ahead"] == n)
    leader = c["a"] if (c["a_ahead"] > c["b_ahead"] if by_sign or unanimous else c["mean_points"] > 0) else c["b"]
    other = c["b"] if leader == c["a"] else c["a"]
    if by_sign and by_t and (c["a_ahead"] > c["b_ahead"]) != (c["mean_points"] > 0):
        head = f"Over {n} seeds, the sign test and the t-interval point opposite ways"
    elif by_sign and by_t:
        head = f"Over {n} seeds, `{leader}` is more accurate than `{other}` by both tests"
    elif by_t:
        confirm = f"cannot confirm it at {n} seeds" if pmin >= alpha else "does not confirm it"
        head = f"Over {n} seeds, `{leader}` is more accurate than `{other}` by the t-interval; the sign test {confirm}"
    elif by_sign:
        head = f"Over {n} seeds, `{leader}` is ahead of `{other}` by the sign test; the t-interval includes 0"
    elif unanimous:
        head = (
            f"Over {n} seeds, `{leader}` is ahead of `{other}` in every seed, yet neither test reaches the "
            f"{alpha:g} level"
        )
    else:
        head = f"Over {n} seeds, neither test tells `{c['a']}` and `{c['b']}` apart at the {alpha:g} level"
    interval = f"{level}% t-interval {c['ci_low_points']:+.2f} to {c['ci_high_points']:+.2f}"
    t_part = f"mean a - b {c['mean_points']:+.2f} points ({interval}, " + (
        "which excludes 0)" if by_t else f"which includes 0{_outlier_note(c)})"
    )
    if p is None:
        sign_part = "every seed tied: no sign test"
    else:
        sign_part = f"exact sign test p = {p:.4g}" + (f" (below {alpha:g})" if by_sign else "")
        if pmin >= alpha:
            sign_part += f"; {n} seeds cannot reach p < {alpha:g} with a sign test (smallest possible p {pmin:.4g})"
    ahead = f"{n} of {n} seeds" if unanimous and not (by_sign or by_t) else _ahead(c)
    return fairness_first(f"{head}: {ahead}; {t_part}; {sign_part}.", c["a"], c["b"], c["fair"], c["confounds"])


def differences_figure(
    runs: Mapping[str, Sequence[Mapping]], spreads: Mapping[str, Mapping], comparisons: Sequence[Mapping]
) -> Figure:
    """Top: each variant's test accuracy per seed (dots) with its mean +- std (``spreads``: what
    :func:`spread` wrote into the runs files); bottom: each comparison's paired differences (dots)
    with their mean and t-interval, and 0 marked. A page wide (7.5 in), so 8 pt prints at 8 pt."""
    names = list(runs)
    rows = [len(names), len(comparisons)]
    fig = Figure(figsize=(7.5, 2.2 + 0.3 * sum(rows)), layout="constrained")
    left, right = fig.subplots(2, 1, height_ratios=[r + 1.5 for r in rows])
    for y, name in enumerate(names):
        acc = np.array([100 * float(r["test_accuracy"]) for r in runs[name]])
        left.scatter(acc, np.full(acc.size, y), s=14, color="tab:blue", alpha=0.55, zorder=2)
        mean, std = 100 * spreads[name]["mean"], 100 * (spreads[name]["std"] or 0.0)
        left.errorbar(mean, y, xerr=std, fmt="o", color="black", capsize=4, markersize=5, zorder=3)
    left.set_yticks(range(len(names)), [f"{n}" for n in names], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("test accuracy (%): each random seed, and mean +- std", fontsize=8)
    left.set_title("Test accuracy over random seeds", fontsize=10)
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
    right.set_xlabel(f"a - b (accuracy points): each random seed, and mean with its {level}% t-interval", fontsize=8)
    right.set_title("Paired differences (grey: interval contains 0)", fontsize=10)
    right.grid(axis="x", alpha=0.3)
    seeds = sorted({len(r) for r in runs.values()})
    fig.suptitle(
        f"Seed study: each variant trained with {' or '.join(map(str, seeds))} random seeds, and the paired differences",
        fontsize=11,
    )
    return fig


def summarize(params_path: Path, runs_dir: Path, comparisons_dir: Path, out: Path) -> dict:
    """Read every studied variant's runs file and every studied comparison's ``compare@`` file
    (for its confounds); write ``summary.json`` and ``differences.png`` to ``out``."""
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
    alpha = require(params.verdicts, "verdicts").alpha
    comparisons = []
    for key in study.comparisons:
        path = comparisons_dir / f"{key}.json"
        if not path.is_file():
            raise ConfigError(
                f"{path}: missing; the seed study reads its confounds from it: run `dvc repro compare@{key}`"
            )
        found = check(read_json(path), Comparison, path.as_posix())["confounds"]
        summary = comparison_summary(key, params, runs, study.confidence, alpha, found)
        comparisons.append(summary)
        log.info("%s: %s", key, summary["verdict"])
    payload = {
        "seeds": study.seeds,
        "confidence": study.confidence,
        "alpha": alpha,
        "variants": variants,
        "comparisons": comparisons,
    }
    save_figure(
        differences_figure(runs, {n: v["test_accuracy"] for n, v in variants.items()}, comparisons),
        out / "differences.png",
    )
    write_json(out / "summary.json", check(payload, SeedStudySummary, "seed_study/summary.json"))
    log.info("wrote %s and %s", out / "summary.json", out / "differences.png")
    return payload
