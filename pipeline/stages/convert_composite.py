"""Stage ``convert_composite``: CIFAR-10 + MNIST -> the CSE 849 composite image dataset.

    python -m pipeline.stages.convert_composite [--raw data/raw] [--out data/composite] [--params params.yaml]

Reads ``composite.*`` from params.yaml (seed, split sizes, train_agreement). Layout and
sampling rules: see ``pipeline.data.convert``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from pipeline.config import ConfigError, load_params
from pipeline.data.convert import CompositeSpec, convert_composite
from pipeline.data.errors import DataError

log = logging.getLogger("pipeline.stages.convert_composite")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the composite CIFAR-10 + MNIST dataset.")
    parser.add_argument("--raw", default="data/raw", help="raw folder written by the download stage (default: %(default)s)")
    parser.add_argument("--out", default="data/composite", help="output folder (default: %(default)s)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    try:
        spec = CompositeSpec.from_params(load_params(args.params))
        summary = convert_composite(args.raw, args.out, spec)
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    counts = {split: s["count"] for split, s in summary["splits"].items()}
    log.info("wrote %s (%s) in %.1f s", args.out, counts, time.perf_counter() - start)


if __name__ == "__main__":
    main()
