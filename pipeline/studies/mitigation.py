"""CSE 849 mitigation study: remedies against the planted shortcut, compared at one budget.

Every row of ``mitigation_study.rows`` (params.yaml) is the ``base`` variant (its data,
network, optimizer, schedule, loss, checkpoint rule, evaluation and random seed) trained for
``mitigation_study.epochs`` epochs with the row's training-time augmentation and nothing
else changed: the CSE 849 handout's baseline preprocessing (flip only), its ``RandomErasing``
and ``GaussianNoise``, both, and two remedies that know where the digit is (patch shuffle,
digit blanking). Each row is trained and evaluated by ``mitigation@<row>``
(:mod:`pipeline.stages.mitigation`, through :func:`run_mitigation_row`) with the same
engine and evaluation as every variant: validation and test accuracy, accuracy where the
digit agrees / disagrees with the label, shortcut rate, occlusion and the counterfactual
flip rate.

The study's params (``mitigation_study``) are typed and checked by :func:`pipeline.core.config.load_all`;
:meth:`pipeline.core.config.Params.mitigation_row` builds a row's variant.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pipeline.training.checkpoint import save_checkpoint
from pipeline.core.config import VariantConfig, load_all
from pipeline.core.errors import DataError
from pipeline.training.datasets import load_splits
from pipeline.training.engine import check_model_and_loss, fit, select_device
from pipeline.inference.evaluation import evaluate_checkpoint
from pipeline.core.io import check_outputs, write_json
from pipeline.training.resume import ResumeStore
from pipeline.core.schemas import MitigationRow, check

log = logging.getLogger(__name__)


def row_result(
    row: str, variant: VariantConfig, metrics: Mapping, facts: Mapping, evaluation: Mapping, seconds: float
) -> dict:
    """One row of the study's table: what it changed, how it scored, how long it trained."""
    return {
        "row": row,
        "variant": variant.name,
        "augment": dataclasses.asdict(variant.data.augment),
        "epochs": variant.train.epochs,
        "checkpoint_epoch": facts["checkpoint_epoch"],
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "val_accuracy": metrics.get("val_accuracy"),
        "val_loss": metrics.get("val_loss"),
        "shortcut": evaluation["shortcut"],
        "occlusion": evaluation["occlusion"],
        "counterfactual": evaluation["counterfactual"],
        "train_seconds": seconds,
    }


def run_mitigation_row(row: str, params_path: Path, out: Path) -> dict:
    """Train and evaluate mitigation row ``row``; write ``<out>/<row>.json``.

    The training keeps a resume state (``.resume/mitigation@<row>/``, removed once the row is
    written): a rerun after an interruption continues from the last finished epoch."""
    params = load_all(params_path)  # the whole file validated before anything is read
    variant = params.mitigation_row(row)
    check_model_and_loss(variant)
    check_outputs([out / f"{row}.json"])  # a read-only or mistyped folder is refused before the training
    splits = load_splits(variant.data, variant.seed)
    store = ResumeStore(f"mitigation@{row}")  # the run's resume state, kept until the row is written
    result = fit(variant, splits, select_device(), resume=store.run(), check=params.training_check)
    with tempfile.TemporaryDirectory(prefix="mitigation-") as tmp:
        checkpoint = Path(tmp) / "model.pt"
        input_shape = tuple(splits.train.images.shape[1:])
        save_checkpoint(checkpoint, variant, result.model, result.normalizer, input_shape, splits.classes)
        evaluation = evaluate_checkpoint(checkpoint, Path(tmp) / "eval", occlusion=variant.data.occlusion).metrics
    missing = [k for k in ("shortcut", "occlusion", "counterfactual") if k not in evaluation]
    if missing:
        raise DataError(
            f"{variant.data.path}: no {', '.join(missing)} results (not a composite dataset with metadata.csv, "
            f"dataset.json and counterfactual_test.npz, as convert_composite writes); the study needs them"
        )
    payload = row_result(row, variant, result.metrics, result.facts, evaluation, result.timings["train_seconds"])
    write_json(out / f"{row}.json", check(payload, MitigationRow, f"mitigation/{row}.json"))
    store.clear()
    log.info(
        "%s: test accuracy %.4f, shortcut rate %.4f, flip rate %.4f; wrote %s",
        variant.name,
        payload["test_accuracy"],
        payload["shortcut"]["shortcut_rate"],
        payload["counterfactual"]["flip_rate"],
        out / f"{row}.json",
    )
    return payload
