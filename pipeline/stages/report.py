"""Stage ``report``: ``report/README.md`` and the self-contained ``report/index.html``.

    python -m pipeline.stages.report [--root .]

Reads the metrics, figures and tables other stages wrote under ``reports/`` (for every
variant in ``params.yaml`` ``variants`` and every comparison in ``analysis.comparisons``)
and ``references/handout_results.yaml``; see :mod:`pipeline.report`. Writes into its own
folder ``report/``, outside the ``reports/`` folder it depends on. A missing input is
reported as "not produced yet", not an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.cli import path_arg, stage_main
from pipeline.report import OUT, write_report

log = logging.getLogger("pipeline.stages.report")


def run(root: Path) -> None:
    report = write_report(root)
    log.info(
        "wrote %s/README.md (%d bytes) and %s/index.html (%d bytes, %d images embedded)",
        OUT,
        len(report.markdown.encode()),
        OUT,
        len(report.html.encode()),
        len(report.images),
    )


main = stage_main(__doc__, [path_arg("--root", ".", "repository root")], lambda args: run(args.root))


if __name__ == "__main__":
    main()
