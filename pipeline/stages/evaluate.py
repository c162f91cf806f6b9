"""Stage ``evaluate@<variant>``: test-set metrics, confusion matrix and galleries of one model.

    python -m pipeline.stages.evaluate <variant> [--model PATH] [--data PATH] [--out DIR]

Reads ``models/<variant>.pt`` and the test split of the data it was trained on (the
checkpoint carries the variant's params, including the regions its ``data.occlusion`` names). Writes
``reports/<variant>/eval/{metrics.json, predictions.csv, confusion_matrix.png,
first20.png, misclassified.png}``; see :mod:`pipeline.inference.evaluation`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.cli import VARIANT, path_arg, stage_main
from pipeline.inference.evaluation import evaluate_checkpoint

main = stage_main(
    __doc__,
    [
        VARIANT,
        path_arg("--model", None, "checkpoint (default: models/<variant>.pt)"),
        path_arg("--data", None, "dataset folder (default: the one stored in the checkpoint)"),
        path_arg("--out", None, "output folder (default: reports/<variant>/eval)"),
    ],
    lambda args: evaluate_checkpoint(
        args.model or Path("models") / f"{args.variant}.pt",
        args.out or Path("reports") / args.variant / "eval",
        data_path=args.data,
        expected_variant=args.variant,
    ),
)


if __name__ == "__main__":
    main()
