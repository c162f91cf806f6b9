"""Stage ``stats``: dataset statistics and figures for MNIST and the composite dataset.

    python -m pipeline.stages.stats [--mnist-csv data/mnist_csv] [--mnist-npz data/mnist_npz] [--composite data/composite]
                                    [--out reports/data] [--params params.yaml]

Reads ``stats.seed`` (which random training images the sample grids show). Writes
``reports/data/{stats.json, mnist_head.txt, mnist_class_distribution.png,
mnist_first5.png, mnist_random20.png, composite_samples.png}``; see ``pipeline.data.stats``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.core.cli import PARAMS, path_arg, stage_main
from pipeline.core.params import load_all, require
from pipeline.data.stats import run_stats

log = logging.getLogger("pipeline.stages.stats")


def run(mnist_csv: Path, mnist_npz: Path, composite: Path, out: Path, params: Path) -> None:
    start = time.perf_counter()
    seed = require(load_all(params).stats, "stats").seed
    stats = run_stats(mnist_csv, composite, out, seed, mnist_npz)
    mnist = stats["mnist"]["train"]
    log.info("MNIST train mean %.4f std %.4f", mnist["mean"], mnist["std"])
    for split, entry in stats["composite"].items():
        if "label_agreement" in entry:
            log.info("composite %s: label agreement %.3f", split, entry["label_agreement"])
    log.info("wrote %s in %.1f s", out, time.perf_counter() - start)


main = stage_main(
    __doc__,
    [
        path_arg("--mnist-csv", "data/mnist_csv", "folder of the MNIST CSVs"),
        path_arg("--mnist-npz", "data/mnist_npz", "folder of the Practical 5 npz files"),
        path_arg("--composite", "data/composite", "composite dataset folder"),
        path_arg("--out", "reports/data", "output folder"),
        PARAMS,
    ],
    lambda args: run(args.mnist_csv, args.mnist_npz, args.composite, args.out, args.params),
)


if __name__ == "__main__":
    main()
