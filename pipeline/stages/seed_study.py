"""Stage ``seed_study@<variant>``: one studied variant trained with the study's N seeds.

    python -m pipeline.stages.seed_study VARIANT [--params params.yaml] [--reports-dir reports]
                                                 [--out reports/seed_study/runs]

Reads params ``variants.<variant>`` and ``seed_study.seeds`` (N) and
``reports/<variant>/metrics.json``: the variant's committed run, which is the study's run with the variant's own seed (training is deterministic), so
it is read rather than repeated. Trains the other N - 1 seeds (``seed + 1`` ...) with the
variant's own set-up and writes ``reports/seed_study/runs/<variant>.json``: each run's
seed, test accuracy and loss and training time, and the mean, standard deviation, min and
max of the test accuracy. No model file is kept: the study is about the spread.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.cli import PARAMS, REPORTS_DIR, arg, path_arg, stage_main
from pipeline.config import load_params, load_variant
from pipeline.datasets import load_splits
from pipeline.engine import check_model_and_loss, fit, select_device
from pipeline.io import read_json, require_keys, write_json
from pipeline.seed_study import run_row, spread, study_seeds, study_size, with_seed

log = logging.getLogger("pipeline.stages.seed_study")


def run(name: str, params_path: Path, reports_dir: Path, out: Path) -> dict:
    params = load_params(params_path)
    n_seeds = study_size(params)
    variant = load_variant(name, params)  # validated before anything is read or trained
    check_model_and_loss(variant)
    seeds = study_seeds(variant.seed, n_seeds)
    committed_path = reports_dir / name / "metrics.json"
    committed = require_keys(read_json(committed_path), ("test_accuracy", "test_loss"), committed_path)
    runs = [run_row(seeds[0], committed, None)]
    device = select_device()
    started = time.perf_counter()
    for k, seed in enumerate(seeds[1:], start=2):
        seeded = with_seed(variant, seed)
        result = fit(seeded, load_splits(seeded.data, seed), device)
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
    write_json(out / f"{name}.json", payload)
    log.info("%s: %d seeds, wrote %s", name, len(seeds), out / f"{name}.json")
    return payload


main = stage_main(
    __doc__,
    [
        arg("variant", help="a variant named by one of seed_study.comparisons"),
        PARAMS,
        REPORTS_DIR,
        path_arg("--out", "reports/seed_study/runs", "output folder"),
    ],
    lambda args: run(args.variant, args.params, args.reports_dir, args.out),
)


if __name__ == "__main__":
    main()
