"""Stage ``evaluate@<variant>``: test-set metrics, confusion matrix and galleries of one model.

    python -m pipeline.stages.evaluate <variant> [--model PATH] [--data PATH] [--out DIR]

Reads ``models/<variant>.pt`` and the test split of the data it was trained on (the
checkpoint carries the variant's params, including its ``data.occlusion`` boxes). Writes
``reports/<variant>/eval/{metrics.json, predictions.csv, confusion_matrix.png,
first20.png, misclassified.png}``; see :mod:`pipeline.evaluation`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import run_stage
from pipeline.evaluation import evaluate_checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate one trained variant on its test split.")
    parser.add_argument("variant", help="a key under `variants:` in params.yaml")
    parser.add_argument("--model", type=Path, help="checkpoint (default: models/<variant>.pt)")
    parser.add_argument("--data", type=Path, help="dataset folder (default: the one stored in the checkpoint)")
    parser.add_argument("--out", type=Path, help="output folder (default: reports/<variant>/eval)")
    args = parser.parse_args(argv)

    run_stage(
        lambda: evaluate_checkpoint(
            args.model or Path("models") / f"{args.variant}.pt",
            args.out or Path("reports") / args.variant / "eval",
            data_path=args.data,
            expected_variant=args.variant,
        )
    )


if __name__ == "__main__":
    main()
