"""Stage ``compare@<key>``: one measured comparison of two variants (``analysis.comparisons.<key>``).

    python -m pipeline.stages.compare KEY [--params params.yaml] [--reports-dir reports] [--out reports/comparisons]

Reads the params ``analysis.comparisons.<key>`` (``title``, ``a``, ``b``: variant names),
``reports/<a>/metrics.json``, ``reports/<b>/metrics.json`` (test accuracy and loss of the
checkpoint kept by training) and ``reports/<a>/analysis/param_counts.json``,
``reports/<b>/analysis/param_counts.json`` (written by ``analyze@<variant>``). Writes:

``reports/comparisons/<key>.json``   both sides and the differences a - b (DVC metrics)
``reports/comparisons/<key>.md``     the same as a markdown section (``## <title>``)
"""

from __future__ import annotations

from pipeline.analysis.compare import compare
from pipeline.core.cli import PARAMS, REPORTS_DIR, arg, path_arg, stage_main

main = stage_main(
    __doc__,
    [
        arg("key", metavar="KEY", help="a key of analysis.comparisons in params.yaml"),
        PARAMS,
        REPORTS_DIR,
        path_arg("--out", "reports/comparisons", "output folder"),
    ],
    lambda args: compare(args.key, args.params, args.reports_dir, args.out),
)


if __name__ == "__main__":
    main()
