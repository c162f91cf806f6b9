"""Measured comparisons of two variants (``analysis.comparisons`` in params.yaml).

Used by the ``compare`` stage (:mod:`pipeline.stages.compare`), one comparison per run:
both variants' test accuracy and loss (from their ``metrics.json``) and trainable
parameter count (from their ``analysis/param_counts.json``), and the differences a - b.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.config import ComparisonConfig, load_all
from pipeline.io import read_json, require_keys, rounded, write_json, write_text
from pipeline.schemas import Comparison, check

log = logging.getLogger(__name__)


def compare(
    cmp: ComparisonConfig, metrics: Mapping[str, Mapping[str, Any]], counts: Mapping[str, Mapping[str, int]]
) -> dict:
    """Both variants' measured test accuracy, loss and trainable parameter count, and the differences a - b.

    ``metrics`` and ``counts`` map a variant name to its ``metrics.json`` / ``param_counts.json``.
    """
    sides = {}
    for side in ("a", "b"):
        name = getattr(cmp, side)
        m = metrics[name]
        sides[side] = {
            "variant": name,
            "test_accuracy": rounded(m["test_accuracy"]),
            "test_loss": rounded(m["test_loss"]),
            "parameters": int(counts[name]["trainable"]),
        }
    a, b = sides["a"], sides["b"]
    return {
        "title": cmp.title,
        "a": a,
        "b": b,
        "accuracy_diff_points": rounded(100.0 * (a["test_accuracy"] - b["test_accuracy"])),
        "test_loss_diff": rounded(a["test_loss"] - b["test_loss"]),
        "parameter_ratio": rounded(a["parameters"] / b["parameters"]) if b["parameters"] else None,
    }


def comparison_markdown(r: Mapping[str, Any]) -> str:
    """One comparison's section (``## title``, the table, the differences)."""
    a, b = r["a"], r["b"]
    better = (
        a["variant"] if r["accuracy_diff_points"] > 0 else b["variant"] if r["accuracy_diff_points"] < 0 else "neither"
    )
    ratio = "n/a" if r["parameter_ratio"] is None else f"{r['parameter_ratio']:.2f}"
    lines = [
        f"## {r['title']}",
        "",
        "| | variant | test accuracy | test loss | parameters |",
        "|---|---|---:|---:|---:|",
        f"| a | {a['variant']} | {100 * a['test_accuracy']:.2f}% | {a['test_loss']:.4f} | {a['parameters']:,} |",
        f"| b | {b['variant']} | {100 * b['test_accuracy']:.2f}% | {b['test_loss']:.4f} | {b['parameters']:,} |",
        "",
        f"a - b: {r['accuracy_diff_points']:+.2f} accuracy points, test loss {r['test_loss_diff']:+.4f}; "
        f"parameters a/b = {ratio}. Higher accuracy: {better}.",
        "",
    ]
    return "\n".join(lines)


def run_comparison(key: str, params_path: Path, reports_dir: Path, out: Path) -> dict:
    """Compare the two variants of ``analysis.comparisons.<key>``; write ``<key>.json`` and ``<key>.md`` to ``out``."""
    cmp = load_all(params_path).comparison(key)
    metrics, counts = {}, {}
    for name in (cmp.a, cmp.b):
        path = reports_dir / name / "metrics.json"
        metrics[name] = require_keys(read_json(path), ("test_accuracy", "test_loss"), path)
        path = reports_dir / name / "analysis" / "param_counts.json"
        counts[name] = require_keys(read_json(path), ("trainable",), path)
    result = compare(cmp, metrics, counts)
    write_json(out / f"{key}.json", check(result, Comparison, f"comparisons/{key}.json"))
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
