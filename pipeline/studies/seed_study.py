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
statistics of those pairs (:mod:`pipeline.analysis.paired_tests`) and their wording
(:mod:`pipeline.analysis.seed_study_summary`) are not here: this module is what the training stage
``seed_study@<variant>`` imports, and rewording a verdict must not retrain anything.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.config import VariantConfig
from pipeline.core.io import check_outputs, read_json, require_keys, rounded, write_json
from pipeline.core.params import load_all, require
from pipeline.core.schemas import SeedStudyRuns, check
from pipeline.training.datasets import load_splits
from pipeline.training.engine import fit
from pipeline.training.resume import ResumeStore
from pipeline.training.setup import check_model_and_loss, select_device

log = logging.getLogger(__name__)


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


def seed_study(name: str, params_path: Path, reports_dir: Path, out: Path) -> dict:
    """Train variant ``name`` with the study's seeds; write ``<out>/<name>.json``.

    The first seed's run is ``reports/<name>/metrics.json``, read rather than repeated:
    training is deterministic, so the committed run *is* the run with the variant's seed.
    Each run keeps a resume state (``.resume/seed_study@<name>/seed-<seed>.pt``, removed once
    the study is written): after an interruption, a rerun reads the finished runs back and
    continues the unfinished one from its last epoch.
    """
    params = load_all(params_path)  # the whole file validated before anything is read or trained
    n_seeds = require(params.seed_study, "seed_study").seeds
    variant = params.variant(name)
    check_model_and_loss(variant)
    seeds = study_seeds(variant.seed, n_seeds)
    committed_path = reports_dir / name / "metrics.json"
    committed = require_keys(read_json(committed_path), ("test_accuracy", "test_loss"), committed_path)
    check_outputs([out / f"{name}.json"])  # a read-only or mistyped folder is refused before the runs
    runs = [run_row(seeds[0], committed, None)]
    store = ResumeStore(f"seed_study@{name}")  # one resume state per run, kept until the study is written
    device = select_device()
    started = time.perf_counter()
    for k, seed in enumerate(seeds[1:], start=2):
        seeded = with_seed(variant, seed)
        splits = load_splits(seeded.data, seed)
        result = fit(seeded, splits, device, resume=store.run(f"seed-{seed}"), check=params.training_check)
        runs.append(run_row(seed, result.metrics, result.timings["train_seconds"]))
        log.info(
            "%s: run %d/%d (seed %d): test accuracy %.4f; %.0f s so far",
            name,
            k,
            len(seeds),
            seed,
            runs[-1]["test_accuracy"],
            time.perf_counter() - started,
        )
    payload = {
        "variant": name,
        "seeds": seeds,
        "first_run_from": f"{committed_path.as_posix()} (train@{name}, seed {seeds[0]})",
        "runs": runs,
        "test_accuracy": spread([r["test_accuracy"] for r in runs]),
    }
    write_json(out / f"{name}.json", check(payload, SeedStudyRuns, f"seed_study/runs/{name}.json"))
    store.clear()
    log.info("%s: %d seeds, wrote %s", name, len(seeds), out / f"{name}.json")
    return payload
