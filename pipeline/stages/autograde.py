"""DVC stage ``autograde``: grade HKU Assignment 3 Questions 1-4 and write the scores.

    python -m pipeline.stages.autograde --out reports/autograder.json

Grades this project's layers (``pipeline/models/simple_cnn/layers.py``) exactly as a
student's file is graded (:func:`pipeline.grading.sandbox.grade_submission`: a separate
process, every question) and writes (atomically, through :func:`pipeline.core.io.write_json`)
a metrics file::

    {"q1": {"score": 20, "max": 20, "passed": 48, "total": 48}, ..., "total": 80, "max_total": 80,
     "forbidden_uses": 0}

Failed checks lower the scores but do not fail the stage: the file is still written
and the exit code is 0 (the score is the result). The exit code is non-zero only when
the grader itself cannot run or the file cannot be written (one ``error:`` line).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.cli import path_arg, stage_main
from pipeline.core.io import write_json
from pipeline.core.schemas import check
from pipeline.grading.cases import QUESTIONS
from pipeline.grading.hku import PROJECT_LAYERS
from pipeline.grading.sandbox import grade_submission
from pipeline.grading.schemas import AutograderScores
from pipeline.grading.scoring import format_summary

log = logging.getLogger("pipeline.stages.autograde")

METRIC_KEYS = ("score", "max", "passed", "total")


def build_report(results: dict) -> AutograderScores:
    """Keep the numeric fields (a DVC metrics file): per question and the totals."""
    report: dict = {
        name: {key: int(results[name][key]) for key in METRIC_KEYS} for name in QUESTIONS if name in results
    }
    report["total"] = int(results["total"])
    report["max_total"] = int(results["max_total"])
    report["forbidden_uses"] = len(results["forbidden_uses"])
    return check(report, AutograderScores, "autograder.json")  # the shape the report reads


def run(out: Path) -> dict:
    results = grade_submission(PROJECT_LAYERS)
    print(format_summary(results))
    write_json(out, build_report(results))
    status = "all checks pass" if results["total"] == results["max_total"] else "some checks FAIL"
    log.info("%d/%d points (%s); wrote %s", results["total"], results["max_total"], status, out)
    return results


main = stage_main(
    __doc__, [path_arg("--out", "reports/autograder.json", "metrics JSON to write")], lambda args: run(args.out)
)


if __name__ == "__main__":
    main()
