"""Seed study: the variants of each studied comparison trained with N seeds (params ``seed_study``).

One training run cannot tell a 0.3-point difference from seed-to-seed noise. Here every
variant that takes part in a studied comparison (``seed_study.comparisons``, keys of
``analysis.comparisons``) is trained with the random seeds ``seed, seed + 1, ..., seed + N - 1``
(its own ``seed`` first), each with the variant's own set-up: same data, epochs,
optimizer and schedule; only the seed differs, and with it the initial weights, the
shuffling order and the augmentation draws. The first of those runs is the variant's
committed one: training is deterministic, so ``train@<variant>``'s ``metrics.json`` *is*
the run with seed ``seed`` and is read, not repeated.

The two variants of every comparison here share their seed, so run k of one and run k of
the other start from the same random state: the difference is *paired* by seed. The
statistics of those pairs (:mod:`pipeline.paired_tests`) and their wording
(:mod:`pipeline.analysis.seed_study_summary`) are not here: this module is what the training stage
``seed_study@<variant>`` imports, and rewording a verdict must not retrain anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.core.config import VariantConfig
from pipeline.core.io import rounded


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
