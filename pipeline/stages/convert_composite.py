"""Stage ``convert_composite``: CIFAR-10 + MNIST -> the CSE 849 composite image dataset.

    python -m pipeline.stages.convert_composite [--raw data/raw] [--out data/composite] [--params params.yaml]

Reads ``composite.*`` from params.yaml (seed, split sizes, train_agreement, and the
``layout`` block: where the CIFAR image and the digit sit, written into ``dataset.json``
for every later stage). Sampling rules: see ``pipeline.data.convert``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.core.cli import PARAMS, path_arg, stage_main
from pipeline.core.params import load_all, require
from pipeline.data.convert import CompositeSpec, composite_layout, convert_composite

log = logging.getLogger("pipeline.stages.convert_composite")


def run(raw: Path, out: Path, params: Path) -> None:
    start = time.perf_counter()
    cfg = require(load_all(params).composite, "composite")
    spec, layout = CompositeSpec.from_config(cfg), composite_layout(cfg)
    summary = convert_composite(raw, out, spec, layout)
    counts = {split: s["count"] for split, s in summary["splits"].items()}
    log.info("wrote %s (%s) in %.1f s", out, counts, time.perf_counter() - start)


main = stage_main(
    __doc__,
    [
        path_arg("--raw", "data/raw", "raw folder written by the download stage"),
        path_arg("--out", "data/composite", "output folder"),
        PARAMS,
    ],
    lambda args: run(args.raw, args.out, args.params),
)


if __name__ == "__main__":
    main()
