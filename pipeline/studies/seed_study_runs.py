"""The seed study's training runs: one variant trained with the study's N random seeds.

What the ``seed_study@<variant>`` stage does. Kept apart from :mod:`pipeline.studies.seed_study`
(the study's statistics), which the summary stage and the report read without
importing torch or the training engine.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.core.config import load_all, require
from pipeline.training.datasets import load_splits
from pipeline.training.engine import check_model_and_loss, fit, select_device
from pipeline.core.io import check_outputs, read_json, require_keys, write_json
from pipeline.training.resume import ResumeStore
from pipeline.core.schemas import SeedStudyRuns, check
from pipeline.studies.seed_study import run_row, spread, study_seeds, with_seed

log = logging.getLogger(__name__)


def run_seed_study(name: str, params_path: Path, reports_dir: Path, out: Path) -> dict:
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
