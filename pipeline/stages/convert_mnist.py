"""Stage ``convert_mnist``: MNIST IDX -> Kaggle-style CSV (TDM 40200) and npz (Practical 5).

    python -m pipeline.stages.convert_mnist [--raw data/raw] [--csv-out data/mnist_csv] [--npz-out data/mnist_npz]

Formats: see ``pipeline.data.convert``.
"""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.cli import run_stage
from pipeline.data.convert import convert_mnist

log = logging.getLogger("pipeline.stages.convert_mnist")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Convert the raw MNIST IDX files to CSV and npz.")
    parser.add_argument(
        "--raw", default="data/raw", help="raw folder written by the download stage (default: %(default)s)"
    )
    parser.add_argument("--csv-out", default="data/mnist_csv", help="output folder for the CSVs (default: %(default)s)")
    parser.add_argument(
        "--npz-out", default="data/mnist_npz", help="output folder for the npz files (default: %(default)s)"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    counts = convert_mnist(args.raw, args.csv_out, args.npz_out)
    log.info("wrote %s and %s (%s) in %.1f s", args.csv_out, args.npz_out, counts, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_stage(lambda: run(args))


if __name__ == "__main__":
    main()
