"""Measured comparisons of two variants (``analysis.comparisons`` in params.yaml).

:func:`compare` is the ``compare@<key>`` stage's work (:mod:`pipeline.stages.compare`), one comparison per run:
both variants' test accuracy and loss (from their ``metrics.json``) and trainable
parameter count (from their ``analysis/param_counts.json``), the differences a - b, an
exact McNemar test on their per-image predictions (``eval/predictions.csv``: both are
scored on the same test images, so the difference is paired image by image), whether
the comparison is fair (the variants differ in its ``factor`` only), and the verdict.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.analysis.paired_tests import confounds, fairness_first, mcnemar
from pipeline.analysis.schemas import Comparison
from pipeline.core.config import ConfigError
from pipeline.core.io import output_set, read_json, require_keys, rounded, write_json, write_text
from pipeline.core.params import ComparisonConfig, load_all, require
from pipeline.core.schemas import check

log = logging.getLogger(__name__)


def correct_per_image(path: Path, variant: str) -> list[tuple[str, bool]]:
    """``(index, predicted == label)`` per row of ``variant``'s ``eval/predictions.csv``, in file order."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}); run `dvc repro evaluate@{variant}`") from exc
    if not rows or not {"index", "label", "predicted"} <= set(rows[0]):
        raise ConfigError(f"{path}: expected the columns index, label, predicted and at least one row")
    return [(r["index"], r["label"] == r["predicted"]) for r in rows]


def paired_test(a_path: Path, a: Sequence[tuple[str, bool]], b_path: Path, b: Sequence[tuple[str, bool]]) -> dict:
    """McNemar on two predictions files; they must list the same test images in the same order."""
    if [i for i, _ in a] != [i for i, _ in b]:
        raise ConfigError(
            f"{a_path} and {b_path}: not the same test images in the same order ({len(a)} and {len(b)} rows); "
            f"a paired test needs both variants scored on one test set"
        )
    return mcnemar([c for _, c in a], [c for _, c in b])


def verdict(r: Mapping[str, Any], alpha: float) -> str:
    """The comparison's sentence: the gap, the discordant images, McNemar's p, and fairness."""
    a, b, m = r["a"]["variant"], r["b"]["variant"], r["mcnemar"]
    diff = r["accuracy_diff_points"]
    lead = (
        f"`{a}` and `{b}` reach the same test accuracy"
        if diff == 0
        else f"`{a if diff > 0 else b}` is {abs(diff):.2f} points more accurate than `{b if diff > 0 else a}`"
    )
    test = (
        f"on the same {m['images']:,} test images `{a}` alone is right on {m['a_only_correct']:,} and `{b}` alone on "
        f"{m['b_only_correct']:,} (exact McNemar p = {m['p_value']:.2g})"
    )
    if m["p_value"] < alpha:
        reading = f"below {alpha:g}: the test set tells these two runs apart"
    else:
        reading = f"not below {alpha:g}: the test set does not tell these two runs apart"
    text = f"{lead}; {test}, {reading} (one run each: seed-to-seed spread is not in this test)."
    return fairness_first(text, a, b, r["fair"], r["confounds"])


def side_by_side(
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
        r["verdict"],
        "",
    ]
    if not r["fair"]:
        lines[1:1] = ["", f"**Not a fair comparison**: the variants also differ in {'; '.join(r['confounds'])}."]
    return "\n".join(lines)


def compare(key: str, params_path: Path, reports_dir: Path, out: Path) -> dict:
    """Compare the two variants of ``analysis.comparisons.<key>``; write ``<key>.json`` and ``<key>.md`` to ``out``."""
    params = load_all(params_path)
    cmp, alpha = params.comparison(key), require(params.verdicts, "verdicts").alpha
    metrics, counts, predictions = {}, {}, {}
    for name in (cmp.a, cmp.b):
        path = reports_dir / name / "metrics.json"
        metrics[name] = require_keys(read_json(path), ("test_accuracy", "test_loss"), path)
        path = reports_dir / name / "analysis" / "param_counts.json"
        counts[name] = require_keys(read_json(path), ("trainable",), path)
        predictions[name] = reports_dir / name / "eval" / "predictions.csv"
    result = side_by_side(cmp, metrics, counts)
    result["fair"] = not (found := confounds(params.variant(cmp.a), params.variant(cmp.b), cmp.factor))
    result["confounds"] = found
    a_path, b_path = predictions[cmp.a], predictions[cmp.b]
    result["mcnemar"] = paired_test(a_path, correct_per_image(a_path, cmp.a), b_path, correct_per_image(b_path, cmp.b))
    result["verdict"] = verdict(result, alpha)
    check(result, Comparison, f"comparisons/{key}.json")
    with output_set(out / f"{key}.json", out / f"{key}.md") as (json_tmp, md_tmp):  # both files or neither
        write_json(json_tmp, result)
        write_text(md_tmp, comparison_markdown(result))
    log.info(
        "%s: %s - %s = %+.2f accuracy points; wrote %s",
        key,
        cmp.a,
        cmp.b,
        result["accuracy_diff_points"],
        out / f"{key}.json",
    )
    return result
