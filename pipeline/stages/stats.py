"""Stage ``stats``: dataset statistics and figures for MNIST and the composite dataset.

    python -m pipeline.stages.stats [--mnist-csv data/mnist_csv] [--mnist-npz data/mnist_npz] [--composite data/composite]
                                    [--out reports/data] [--params params.yaml]

Reads ``stats.seed`` (which random training images the sample grids show). Writes
``reports/data/{stats.json, mnist_head.txt, mnist_class_distribution.png,
mnist_first5.png, mnist_random20.png, composite_samples.png}``; see ``pipeline.data.stats``.
"""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.cli import run_stage
from pipeline.config import ConfigError, load_params, section
from pipeline.data.stats import run_stats

log = logging.getLogger("pipeline.stages.stats")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Dataset statistics and figures.")
    parser.add_argument("--mnist-csv", default="data/mnist_csv", help="folder of the MNIST CSVs (default: %(default)s)")
    parser.add_argument(
        "--mnist-npz", default="data/mnist_npz", help="folder of the Practical 5 npz files (default: %(default)s)"
    )
    parser.add_argument("--composite", default="data/composite", help="composite dataset folder (default: %(default)s)")
    parser.add_argument("--out", default="reports/data", help="output folder (default: %(default)s)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: %(default)s)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    seed = section(load_params(args.params), "stats.seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"stats.seed: expected an integer, got {seed!r}")
    stats = run_stats(args.mnist_csv, args.composite, args.out, seed, args.mnist_npz)
    mnist = stats["mnist"]["train"]
    log.info("MNIST train mean %.4f std %.4f", mnist["mean"], mnist["std"])
    for split, entry in stats["composite"].items():
        if "label_agreement" in entry:
            log.info("composite %s: label agreement %.3f", split, entry["label_agreement"])
    log.info("wrote %s in %.1f s", args.out, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_stage(lambda: run(args))


if __name__ == "__main__":
    main()
