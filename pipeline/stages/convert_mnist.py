"""Stage ``convert_mnist``: MNIST IDX -> Kaggle-style CSV (TDM 40200) and npz (Practical 5).

    python -m pipeline.stages.convert_mnist [--raw data/raw] [--csv-out data/mnist_csv] [--npz-out data/mnist_npz]

Formats: see ``pipeline.data.convert``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.core.cli import path_arg, stage_main
from pipeline.data.convert import convert_mnist

log = logging.getLogger("pipeline.stages.convert_mnist")


def run(raw: Path, csv_out: Path, npz_out: Path) -> None:
    start = time.perf_counter()
    counts = convert_mnist(raw, csv_out, npz_out)
    log.info("wrote %s and %s (%s) in %.1f s", csv_out, npz_out, counts, time.perf_counter() - start)


main = stage_main(
    __doc__,
    [
        path_arg("--raw", "data/raw", "raw folder written by the download stage"),
        path_arg("--csv-out", "data/mnist_csv", "output folder for the CSVs"),
        path_arg("--npz-out", "data/mnist_npz", "output folder for the npz files"),
    ],
    lambda args: run(args.raw, args.csv_out, args.npz_out),
)


if __name__ == "__main__":
    main()
