"""Stage ``train@<variant>``: train one variant from params.yaml.

Writes ``models/<variant>.pt``; under ``reports/<variant>/``: ``metrics.json`` (test and
validation accuracy and loss: what experiments compare), ``training.json`` (epochs,
kept epoch, parameters, training examples), ``timings.json`` (this machine's speed, apart
so that a retrain changes no other file) and the per-epoch / per-step curves in ``plots/``.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.allocator import retain_freed_memory
from pipeline.checkpoint import save_checkpoint
from pipeline.cli import MODELS_DIR, REPORTS_DIR, VARIANT, stage_main
from pipeline.config import load_all
from pipeline.datasets import load_splits
from pipeline.engine import check_model_and_loss, fit, select_device
from pipeline.io import write_json
from pipeline.reporting import write_csv
from pipeline.schemas import Metrics, Timings, TrainingFacts, check


def train_variant(name: str, models_dir: Path = Path("models"), reports_dir: Path = Path("reports")) -> dict:
    variant = load_all().variant(name)  # the whole file validated before any data is read
    check_model_and_loss(variant)  # model name, arguments and loss too
    splits = load_splits(variant.data, variant.seed)
    result = fit(variant, splits, select_device())
    out = reports_dir / name
    input_shape = tuple(splits.train.images.shape[1:])
    save_checkpoint(models_dir / f"{name}.pt", variant, result.model, result.normalizer, input_shape, splits.classes)
    write_csv(out / "plots" / "epochs.csv", result.epochs)
    write_csv(out / "plots" / "steps.csv", result.steps)
    # the shapes the report and the studies read (pipeline/schemas.py)
    write_json(out / "training.json", check(result.facts, TrainingFacts, f"{name}/training.json"))
    write_json(out / "timings.json", check(result.timings, Timings, f"{name}/timings.json"))
    write_json(out / "metrics.json", check(result.metrics, Metrics, f"{name}/metrics.json"))
    return result.metrics


main = stage_main(
    __doc__,
    [VARIANT, MODELS_DIR, REPORTS_DIR],
    lambda args: train_variant(args.variant, args.models_dir, args.reports_dir),
    before=retain_freed_memory,  # no page faults for the per-step temporaries (pipeline/allocator.py)
)


if __name__ == "__main__":
    main()
