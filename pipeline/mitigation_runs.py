"""The mitigation study's runs: one row trained and evaluated as ``train@``/``evaluate@`` do.

What the ``mitigation@<row>`` stage does. Kept apart from :mod:`pipeline.mitigation_study`
(the study's params and rows), which the report reads without importing torch or the
training engine.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pipeline.checkpoint import save_checkpoint
from pipeline.config import load_all
from pipeline.data.common.errors import DataError
from pipeline.datasets import load_splits
from pipeline.engine import check_model_and_loss, fit, select_device
from pipeline.evaluation import evaluate_checkpoint
from pipeline.io import write_json
from pipeline.mitigation_study import row_result
from pipeline.schemas import MitigationRow, check

log = logging.getLogger(__name__)


def run_mitigation_row(row: str, params_path: Path, out: Path) -> dict:
    """Train and evaluate mitigation row ``row``; write ``<out>/<row>.json``."""
    variant = load_all(params_path).mitigation_row(row)  # the whole file validated before anything is read
    check_model_and_loss(variant)
    splits = load_splits(variant.data, variant.seed)
    result = fit(variant, splits, select_device())
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
    log.info(
        "%s: test accuracy %.4f, shortcut rate %.4f, flip rate %.4f; wrote %s",
        variant.name,
        payload["test_accuracy"],
        payload["shortcut"]["shortcut_rate"],
        payload["counterfactual"]["flip_rate"],
        out / f"{row}.json",
    )
    return payload
