"""Stage ``report``: ``report/README.md`` and the self-contained ``report/index.html``.

    python -m pipeline.stages.report [--root .]

Reads the metrics, figures and tables other stages wrote under ``reports/`` (for every
variant in ``params.yaml`` ``variants`` and every comparison in ``analysis.comparisons``)
and ``references/seed_results.yaml``; see :mod:`pipeline.report`. Writes into its own
folder ``report/``, outside the ``reports/`` folder it depends on. A missing input is
reported as "not produced yet", not an error.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli import run_stage
from pipeline.report import OUT, write_report

log = logging.getLogger("pipeline.stages.report")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)

    def work() -> None:
        report = write_report(args.root)
        log.info(
            "wrote %s/README.md (%d bytes) and %s/index.html (%d bytes, %d images embedded)",
            OUT,
            len(report.markdown.encode()),
            OUT,
            len(report.html.encode()),
            len(report.images),
        )

    run_stage(work)


if __name__ == "__main__":
    main()
