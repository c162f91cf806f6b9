"""Stage ``download``: fetch and verify MNIST and CIFAR-10 into ``data/raw``.

    python -m pipeline.stages.download [--raw data/raw] [--provenance reports/data/provenance.json]

The source is the offline mirror named by the environment variable ``CNN_DATA_MIRROR``
when set, otherwise the internet (see ``pipeline.data.sources``). The provenance record
has no absolute paths or times: re-running from the same source gives the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.cli import path_arg, stage_main
from pipeline.core.io import write_json
from pipeline.data.sources import MIRROR_ENV, download, mirror_from_env

log = logging.getLogger("pipeline.stages.download")


def run(raw: Path, provenance: Path) -> None:
    record = download(raw, mirror_from_env())
    write_json(provenance, record)
    log.info("wrote %s and %s", raw, provenance)


main = stage_main(
    f"Download and verify MNIST and CIFAR-10 (set {MIRROR_ENV} to use a local mirror).",
    [
        path_arg("--raw", "data/raw", "output folder for the raw datasets"),
        path_arg("--provenance", "reports/data/provenance.json", "provenance JSON to write"),
    ],
    lambda args: run(args.raw, args.provenance),
)


if __name__ == "__main__":
    main()
