"""CSE 849 mitigation study, the evaluation side: each row's checkpoint tested as ``evaluate@`` tests a variant.

``evaluate_mitigation@<row>`` reads the checkpoint and training record that ``mitigation@<row>``
wrote (:mod:`pipeline.studies.mitigation`), runs :func:`pipeline.inference.evaluation.evaluate_checkpoint`
on it (validation and test accuracy, accuracy where the digit agrees / disagrees with the
label, shortcut rate, occlusion, the counterfactual flip rate) and writes the study's row,
``reports/mitigation/<row>.json``, which the report reads.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.errors import DataError
from pipeline.core.io import check_outputs, read_json, write_json
from pipeline.core.schemas import check
from pipeline.inference.evaluation import evaluate_checkpoint
from pipeline.inference.schemas import MitigationRow
from pipeline.studies.mitigation import MitigationRun
from pipeline.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

COMPOSITE_RESULTS = ("shortcut", "occlusion", "counterfactual")


def row_result(run: Mapping, evaluation: Mapping) -> dict:
    """One row of the study's table: the training record with the composite tests beside it."""
    payload = {k: run[k] for k in ("row", "variant", "augment", "epochs", "checkpoint_epoch")}
    payload.update({k: run[k] for k in ("test_accuracy", "test_loss", "val_accuracy", "val_loss")})
    payload.update({k: evaluation[k] for k in COMPOSITE_RESULTS})
    payload["train_seconds"] = run["train_seconds"]
    return payload


def evaluate_mitigation(row: str, models_dir: Path, runs_dir: Path, out: Path) -> dict:
    """Evaluate mitigation row ``row``'s checkpoint; write ``<out>/<row>.json``."""
    check_outputs([out / f"{row}.json"])
    run = check(read_json(runs_dir / f"{row}.json"), MitigationRun, f"mitigation/runs/{row}.json")
    model = models_dir / f"{row}.pt"
    variant = load_checkpoint(model).spec  # the row's variant, as it was trained
    with tempfile.TemporaryDirectory(prefix="mitigation-") as tmp:
        evaluation = evaluate_checkpoint(model, Path(tmp) / "eval", occlusion=variant.data.occlusion).metrics
    missing = [k for k in COMPOSITE_RESULTS if k not in evaluation]
    if missing:
        raise DataError(
            f"{variant.data.path}: no {', '.join(missing)} results (not a composite dataset with metadata.csv, "
            f"dataset.json and counterfactual_test.npz, as convert_composite writes); the study needs them"
        )
    payload = row_result(run, evaluation)
    write_json(out / f"{row}.json", check(payload, MitigationRow, f"mitigation/{row}.json"))
    log.info(
        "%s: test accuracy %.4f, shortcut rate %.4f, flip rate %.4f; wrote %s",
        row,
        payload["test_accuracy"],
        payload["shortcut"]["shortcut_rate"],
        payload["counterfactual"]["flip_rate"],
        out / f"{row}.json",
    )
    return payload
