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

import logging
from pathlib import Path

from pipeline.cli import PARAMS, REPORTS_DIR, arg, path_arg, stage_main
from pipeline.comparisons import compare, comparison_markdown, load_comparison
from pipeline.config import load_params
from pipeline.io import read_json, require_keys, write_json, write_text

log = logging.getLogger("pipeline.stages.compare")


def run(key: str, params_path: Path, reports_dir: Path, out: Path) -> dict:
    cmp = load_comparison(load_params(params_path), key)
    metrics, counts = {}, {}
    for name in (cmp.a, cmp.b):
        path = reports_dir / name / "metrics.json"
        metrics[name] = require_keys(read_json(path), ("test_accuracy", "test_loss"), path)
        path = reports_dir / name / "analysis" / "param_counts.json"
        counts[name] = require_keys(read_json(path), ("trainable",), path)
    result = compare(cmp, metrics, counts)
    write_json(out / f"{key}.json", result)
    write_text(out / f"{key}.md", comparison_markdown(result))
    log.info(
        "%s: %s - %s = %+.2f accuracy points; wrote %s",
        key,
        cmp.a,
        cmp.b,
        result["accuracy_diff_points"],
        out / f"{key}.json",
    )
    return result


main = stage_main(
    __doc__,
    [
        arg("key", metavar="KEY", help="a key of analysis.comparisons in params.yaml"),
        PARAMS,
        REPORTS_DIR,
        path_arg("--out", "reports/comparisons", "output folder"),
    ],
    lambda args: run(args.key, args.params, args.reports_dir, args.out),
)


if __name__ == "__main__":
    main()
