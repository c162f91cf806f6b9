"""CSE 849 mitigation study, the training side: remedies against the planted shortcut at one budget.

Every row of ``mitigation_study.rows`` (params.yaml) is the ``base`` variant (its data,
network, optimizer, schedule, loss, checkpoint rule, evaluation and random seed) trained for
``mitigation_study.epochs`` epochs with the row's training-time augmentation and nothing
else changed: the CSE 849 handout's baseline preprocessing (flip only), its ``RandomErasing``
and ``GaussianNoise``, both, and two remedies that know where the digit is (patch shuffle,
digit blanking). ``mitigation@<row>`` trains a row with the same engine as every variant and
writes its checkpoint and its training record (:class:`MitigationRun`);
``evaluate_mitigation@<row>`` (:mod:`pipeline.inference.mitigation`) then evaluates the
checkpoint as ``evaluate@`` does. Rewording or extending the evaluation retrains nothing.

The study's params (``mitigation_study``) are typed and checked by :func:`pipeline.core.params.load_all`;
:meth:`pipeline.core.params.Params.mitigation_row` builds a row's variant.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from pipeline.core.config import VariantConfig
from pipeline.core.io import check_outputs, output_set, write_json
from pipeline.core.params import load_all
from pipeline.core.schemas import check
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.datasets import load_splits
from pipeline.training.engine import fit
from pipeline.training.resume import ResumeStore
from pipeline.training.setup import check_model_and_loss, select_device

log = logging.getLogger(__name__)


class MitigationRun(TypedDict):
    """``reports/mitigation/runs/<row>.json``: what a row changed and how its training ended."""

    row: str
    variant: str
    augment: dict[str, Any]
    epochs: int
    checkpoint_epoch: int
    test_accuracy: float
    test_loss: float
    val_accuracy: float | None
    val_loss: float | None
    train_seconds: float


def run_record(row: str, variant: VariantConfig, metrics: Mapping, facts: Mapping, seconds: float) -> MitigationRun:
    """A row's training record: what it changed, how its kept checkpoint scored, how long it trained."""
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
        "train_seconds": seconds,
    }


def mitigation(row: str, params_path: Path, models_dir: Path, runs_dir: Path) -> MitigationRun:
    """Train mitigation row ``row``; write ``<models_dir>/<row>.pt`` and ``<runs_dir>/<row>.json`` as one set.

    The training keeps a resume state (``.resume/mitigation@<row>/``, removed once both are
    written): a rerun after an interruption continues from the last finished epoch."""
    params = load_all(params_path)  # the whole file validated before anything is read
    variant = params.mitigation_row(row)
    check_model_and_loss(variant)
    outputs = (models_dir / f"{row}.pt", runs_dir / f"{row}.json")
    check_outputs(outputs)  # a read-only or mistyped folder is refused before the training
    splits = load_splits(variant.data, variant.seed)
    store = ResumeStore(f"mitigation@{row}")  # the run's resume state, kept until the row is written
    result = fit(variant, splits, select_device(), resume=store.run(), check=params.training_check)
    record = run_record(row, variant, result.metrics, result.facts, result.timings["train_seconds"])
    input_shape = tuple(splits.train.images.shape[1:])
    with output_set(*outputs) as (model, run):
        save_checkpoint(model, variant, result.model, result.normalizer, input_shape, splits.classes)
        write_json(run, check(record, MitigationRun, f"mitigation/runs/{row}.json"))
    store.clear()
    log.info("%s: test accuracy %.4f; wrote %s and %s", row, record["test_accuracy"], *outputs)
    return record
