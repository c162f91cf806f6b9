"""Stage ``mitigation@<row>``: one row of the CSE 849 mitigation study, trained and evaluated.

    python -m pipeline.stages.mitigation ROW [--params params.yaml] [--out reports/mitigation]

Reads params ``mitigation_study`` and ``variants.<base>``. Trains the base variant with the
row's augmentation for the study's epochs (:mod:`pipeline.mitigation_study`), evaluates the
kept checkpoint as ``evaluate@`` does (test and validation accuracy, shortcut, occlusion,
counterfactual) and writes ``reports/mitigation/<row>.json``. No model file is kept: the
study is about the comparison; the main model is ``train@cse849``'s.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pipeline.checkpoint import save_checkpoint
from pipeline.cli import PARAMS, arg, path_arg, stage_main
from pipeline.config import load_params
from pipeline.data.common.errors import DataError
from pipeline.datasets import load_splits
from pipeline.engine import check_model_and_loss, fit, select_device
from pipeline.evaluation import evaluate_checkpoint
from pipeline.io import write_json
from pipeline.mitigation_study import load_study, row_result, row_variant

log = logging.getLogger("pipeline.stages.mitigation")


def run(row: str, params_path: Path, out: Path) -> dict:
    params = load_params(params_path)
    variant = row_variant(params, load_study(params), row)  # validated before anything is read
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
    write_json(out / f"{row}.json", payload)
    log.info(
        "%s: test accuracy %.4f, shortcut rate %.4f, flip rate %.4f; wrote %s",
        variant.name,
        payload["test_accuracy"],
        payload["shortcut"]["shortcut_rate"],
        payload["counterfactual"]["flip_rate"],
        out / f"{row}.json",
    )
    return payload


main = stage_main(
    __doc__,
    [
        arg("row", help="a key of mitigation_study.rows"),
        PARAMS,
        path_arg("--out", "reports/mitigation", "output folder"),
    ],
    lambda args: run(args.row, args.params, args.out),
)


if __name__ == "__main__":
    main()
