"""Stage ``convert_composite``: CIFAR-10 + MNIST -> the CSE 849 composite image dataset.

    python -m pipeline.stages.convert_composite [--raw data/raw] [--out data/composite] [--params params.yaml]

Reads ``composite.*`` from params.yaml (seed, split sizes, train_agreement). Layout and
sampling rules: see ``pipeline.data.convert``.
"""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.cli import run_stage
from pipeline.config import load_params
from pipeline.data.convert import CompositeSpec, convert_composite

log = logging.getLogger("pipeline.stages.convert_composite")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the composite CIFAR-10 + MNIST dataset.")
    parser.add_argument(
        "--raw", default="data/raw", help="raw folder written by the download stage (default: %(default)s)"
    )
    parser.add_argument("--out", default="data/composite", help="output folder (default: %(default)s)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: %(default)s)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    spec = CompositeSpec.from_params(load_params(args.params))
    summary = convert_composite(args.raw, args.out, spec)
    counts = {split: s["count"] for split, s in summary["splits"].items()}
    log.info("wrote %s (%s) in %.1f s", args.out, counts, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_stage(lambda: run(args))


if __name__ == "__main__":
    main()
