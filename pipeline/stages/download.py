"""Stage ``download``: fetch and verify MNIST and CIFAR-10 into ``data/raw``.

    python -m pipeline.stages.download [--raw data/raw] [--provenance reports/data/provenance.json]

The source is the offline mirror named by the environment variable ``CNN_DATA_MIRROR``
when set, otherwise the internet (see ``pipeline.data.sources``). The provenance record
has no absolute paths or times: re-running from the same source gives the same bytes.
"""

from __future__ import annotations

import argparse
import logging

from pipeline.cli import run_stage
from pipeline.data.sources import MIRROR_ENV, download, mirror_from_env
from pipeline.io import write_json

log = logging.getLogger("pipeline.stages.download")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=f"Download and verify MNIST and CIFAR-10 (set {MIRROR_ENV} to use a local mirror)."
    )
    parser.add_argument("--raw", default="data/raw", help="output folder for the raw datasets (default: %(default)s)")
    parser.add_argument(
        "--provenance", default="reports/data/provenance.json", help="provenance JSON to write (default: %(default)s)"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    record = download(args.raw, mirror_from_env())
    write_json(args.provenance, record)
    log.info("wrote %s and %s", args.raw, args.provenance)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_stage(lambda: run(args))


if __name__ == "__main__":
    main()
