"""Seed study: the variants of each studied comparison trained with N seeds, and the paired
differences with their confidence intervals (params ``seed_study``).

One training run cannot tell a 0.3-point difference from seed-to-seed noise. Here every
variant that takes part in a studied comparison (``seed_study.comparisons``, keys of
``analysis.comparisons``) is trained with the seeds ``seed, seed + 1, ..., seed + N - 1``
(its own ``seed`` first), each with the variant's own set-up: same data, epochs,
optimizer and schedule; only the seed differs, and with it the initial weights, the
shuffling order and the augmentation draws. The first of those runs is the variant's
committed one: training is deterministic, so ``train@<variant>``'s ``metrics.json`` *is*
the run with seed ``seed`` and is read, not repeated.

The two variants of every comparison here share their seed, so run k of one and run k of
the other start from the same random state: the difference is *paired* by seed. Per
comparison: the mean of the N paired differences (accuracy points, a - b), its
two-sided t-interval (``scipy.stats.t``, N - 1 degrees of freedom) at
``seed_study.confidence``, and in how many seeds each side is ahead. An interval that
contains 0 means "not distinguishable at N seeds".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from pipeline.config import ConfigError, VariantConfig
from pipeline.io import rounded


def study_seeds(first: int, n: int) -> list[int]:
    return [first + k for k in range(n)]


def with_seed(variant: VariantConfig, seed: int) -> VariantConfig:
    return dataclasses.replace(variant, seed=seed)


def run_row(seed: int, metrics: Mapping[str, Any], train_seconds: float | None) -> dict:
    """One run of a variant: its seed, test accuracy and loss (and the training time, if trained here)."""
    return {
        "seed": seed,
        "test_accuracy": rounded(metrics["test_accuracy"]),
        "test_loss": rounded(metrics["test_loss"]),
        "train_seconds": None if train_seconds is None else round(float(train_seconds), 2),
    }


def spread(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation (N - 1), min and max of ``values``."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": int(array.size),
        "mean": rounded(array.mean()),
        "std": rounded(array.std(ddof=1)) if array.size > 1 else None,
        "min": rounded(array.min()),
        "max": rounded(array.max()),
    }


def paired_difference(a_runs: Sequence[Mapping], b_runs: Sequence[Mapping], confidence: float) -> dict:
    """Test accuracy a - b in points, paired by seed: mean, t-interval, and who is ahead how often.

    Both sides must hold the same seeds; a seed on one side only is an error (a pairing
    that silently dropped runs would overstate the evidence).
    """
    a_by_seed = {int(r["seed"]): float(r["test_accuracy"]) for r in a_runs}
    b_by_seed = {int(r["seed"]): float(r["test_accuracy"]) for r in b_runs}
    if set(a_by_seed) != set(b_by_seed):
        raise ConfigError(
            f"seed_study: the two sides of a comparison were run with different seeds "
            f"({sorted(a_by_seed)} against {sorted(b_by_seed)}); give both variants the same seed"
        )
    seeds = sorted(a_by_seed)
    diffs = np.array([100.0 * (a_by_seed[s] - b_by_seed[s]) for s in seeds])
    n = diffs.size
    mean = float(diffs.mean())
    sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        low = high = math.nan
    elif sd == 0.0:
        low = high = mean  # every seed gives the same difference: no spread to widen it
    else:
        low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sd / math.sqrt(n))
    distinguishable = bool(n >= 2 and (low > 0 or high < 0))
    return {
        "seeds": seeds,
        "differences_points": [rounded(d) for d in diffs],
        "n": int(n),
        "mean_points": rounded(mean),
        "std_points": None if math.isnan(sd) else rounded(sd),
        "confidence": confidence,
        "ci_low_points": None if math.isnan(low) else rounded(low),
        "ci_high_points": None if math.isnan(high) else rounded(high),
        "a_ahead": int((diffs > 0).sum()),
        "b_ahead": int((diffs < 0).sum()),
        "ties": int((diffs == 0).sum()),
        "distinguishable": distinguishable,
    }


def comparison_summary(
    key: str, title: str, a: str, b: str, runs: Mapping[str, Sequence[Mapping]], confidence: float
) -> dict:
    return {
        "key": key,
        "title": title,
        "a": a,
        "b": b,
        **paired_difference(runs[a], runs[b], confidence),
    }


def verdict(c: Mapping[str, Any]) -> str:
    """The study's sentence for one comparison; its wording follows the interval."""
    n, level = c["n"], round(100 * c["confidence"])
    interval = f"{c['mean_points']:+.2f} points ({level}% CI {c['ci_low_points']:+.2f} to {c['ci_high_points']:+.2f})"
    ahead = f"`{c['a']}` ahead in {c['a_ahead']} of {n} seeds, `{c['b']}` in {c['b_ahead']}"
    if c["ties"]:
        ahead += f", tied in {c['ties']}"
    if c["distinguishable"]:
        higher, lower = (c["a"], c["b"]) if c["mean_points"] > 0 else (c["b"], c["a"])
        return (
            f"Over {n} seeds, `{higher}` is more accurate than `{lower}`: a - b = {interval}, "
            f"an interval that excludes 0; {ahead}."
        )
    return f"Over {n} seeds, a - b = {interval}: the interval contains 0, so the two are not distinguishable at {n} seeds; {ahead}."
