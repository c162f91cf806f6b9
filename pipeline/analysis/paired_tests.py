"""Paired tests of two variants: image by image on one test set, and seed by seed over a seed study.

Both variants of a comparison are scored on the same test images, and in the seed study
run k of each starts from the same random seed, so every difference here is *paired*:

- one run each, one test set: an exact McNemar test. Only the images one model gets right
  and the other wrong (the discordant images) carry evidence about a - b; under "no
  difference" each of them is equally likely to go either way, so the count of one kind is
  Binomial(discordant, 1/2) (``scipy.stats.binomtest``).
- N seeds each: the N paired differences, their mean with a t-interval (``scipy.stats.t``),
  and the exact sign test on how many seeds each side is ahead (``binomtest`` again, ties
  dropped). The t-interval uses the sizes of the differences and one outlier seed can widen
  it past 0; the sign test uses only their directions. With N seeds the sign test cannot go
  below ``2 / 2**N`` (0.0625 at N = 5), so it is reported next to the p it could reach.

And whether a comparison is fair: :func:`confounds` lists the params the two variants
differ in beyond the comparison's named factor (the random seed aside).

No wording lives here (:mod:`pipeline.analysis.compare`, :mod:`pipeline.analysis.seed_study_summary`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from pipeline.core.config import ConfigError, VariantConfig
from pipeline.core.io import rounded

IGNORED = ("name", "seed")  # a variant's name and random seed are not conditions of the experiment


def significant(p: float) -> float:
    """A p-value to 6 significant digits: stable bytes across machines, and a tiny p stays tiny, not 0."""
    return float(f"{p:.6g}")


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """Exact two-sided McNemar test of two classifiers scored on the same images (same order)."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"mcnemar: the two sides must score the same images, got {a.shape} and {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    discordant = a_only + b_only
    p = stats.binomtest(a_only, discordant, 0.5).pvalue if discordant else 1.0
    return {"images": int(a.size), "a_only_correct": a_only, "b_only_correct": b_only, "p_value": significant(p)}


def sign_test(a_ahead: int, b_ahead: int) -> float | None:
    """Exact two-sided sign test of ``a_ahead`` against ``b_ahead`` (ties left out); None when there are none."""
    n = a_ahead + b_ahead
    return None if n == 0 else significant(stats.binomtest(a_ahead, n, 0.5).pvalue)


def smallest_sign_test_p(n: int) -> float:
    """The smallest two-sided p a sign test can give on ``n`` untied pairs: all of them one way."""
    return significant(min(1.0, 2.0 * 0.5**n)) if n else 1.0


def paired_difference(a_runs: Sequence[Mapping], b_runs: Sequence[Mapping], confidence: float) -> dict:
    """Test accuracy a - b in points, paired by seed: mean, t-interval, sign count and sign test.

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
    # rounded, as the files print them: a tie on the page is a tie in the count
    diffs = np.array([rounded(100.0 * (a_by_seed[s] - b_by_seed[s])) for s in seeds])
    n = diffs.size
    mean = float(diffs.mean())
    sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        low = high = math.nan
    elif sd == 0.0:
        low = high = mean  # every seed gives the same difference: no spread to widen it
    else:
        low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sd / math.sqrt(n))
    a_ahead, b_ahead = int((diffs > 0).sum()), int((diffs < 0).sum())
    return {
        "seeds": seeds,
        "differences_points": [float(d) for d in diffs],
        "n": int(n),
        "mean_points": rounded(mean),
        "std_points": None if math.isnan(sd) else rounded(sd),
        "confidence": confidence,
        "ci_low_points": None if math.isnan(low) else rounded(low),
        "ci_high_points": None if math.isnan(high) else rounded(high),
        "a_ahead": a_ahead,
        "b_ahead": b_ahead,
        "ties": int(n - a_ahead - b_ahead),
        "distinguishable": bool(n >= 2 and (low > 0 or high < 0)),
        "sign_test_p": sign_test(a_ahead, b_ahead),
        "sign_test_min_p": smallest_sign_test_p(int(n)),
    }


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A variant's params as ``{dotted.path: value}`` (dataclasses and mappings opened, lists kept whole)."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        node = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def _covered(path: str, factor: Sequence[str]) -> bool:
    return any(path == f or path.startswith(f + ".") for f in factor)


def confounds(a: VariantConfig, b: VariantConfig, factor: Sequence[str]) -> list[str]:
    """Every param ``a`` and ``b`` differ in outside ``factor`` (and the name and random seed), as
    ``"path: a-value vs b-value"``; a param one side does not set reads ``unset``."""
    flat_a, flat_b = _flat(a), _flat(b)
    found = []
    for path in sorted(set(flat_a) | set(flat_b)):
        if path.split(".")[0] in IGNORED or _covered(path, factor):
            continue
        va, vb = flat_a.get(path, "unset"), flat_b.get(path, "unset")
        if va != vb:
            found.append(f"{path}: {va!r} vs {vb!r}")
    return found


def fairness_first(text: str, a: str, b: str, fair: bool, found: Sequence[str]) -> str:
    """``text``, opened by "Not a fair comparison" and each confound when ``a`` and ``b`` differ in more
    than the comparison's factor: the one wording of the single-run and the seed-study verdicts."""
    if fair:
        return text
    return f"Not a fair comparison: `{a}` and `{b}` also differ in {'; '.join(found)}. {text}"
