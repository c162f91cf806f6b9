"""Autograder for HKU Assignment 3, Questions 1-4 (the seed's ``python autograder.py -q q2``).

Usage::

    python -m pipeline.autograder -q all                         # this project's layers
    python -m pipeline.autograder --submission student/layers.py -q q2 --json q2.json
    python -m pipeline.autograder --submissions submissions/ --csv grades.csv

A submission is a Python file defining the seed's classes (``CustomLinear``,
``CustomConv2D``, ``CustomMaxPool2D``, ``CustomCrossEntropyLoss``) with the seed's
constructor signatures. It is imported and run in a separate process with a time limit
per case (:mod:`pipeline.grading.sandbox`): whatever it does, the grader finishes and
reports. Each question (20 points, 80 in all) runs the cases of
:mod:`pipeline.grading.cases`; the score is ``floor(20 * passed / total)``. The source
is also checked against the seed's allowed operations
(:mod:`pipeline.grading.inspection`): uses are listed, not deducted.

``--submissions DIR`` grades every ``DIR/<student>.py`` and ``DIR/<student>/layers.py``
and writes one CSV row per student (``--csv``, default ``DIR/grades.csv``): the
question scores, the total, the number of failed cases and of forbidden uses, and the
import error if any.

Exit status: single submission: 0 when every selected question has full marks, else 1;
folder: 0 when every file was graded; 2 on a usage error (unknown question, missing file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.grading.cases import QUESTIONS, SEED, select_questions
from pipeline.grading.sandbox import (
    DEFAULT_CASE_TIMEOUT,
    format_summary,
    grade_submission,
)
from pipeline.io import write_json
from pipeline.models.simple_cnn import layers
from pipeline.reporting import write_csv

#: This project's own solution (graded by the ``autograde`` stage, as a file like any other;
#: imported here so that the dependency is visible to the dependency checker).
PROJECT_LAYERS = Path(layers.__file__).resolve()
CSV_COLUMNS = ("student", *QUESTIONS, "total", "max_total", "failed_cases", "forbidden_uses", "import_error", "file")


def find_submissions(folder: str | Path) -> dict[str, Path]:
    """``{student: file}`` for ``folder/<student>.py`` and ``folder/<student>/layers.py``, by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found")
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            found[entry.stem] = entry
        elif entry.is_dir() and (entry / "layers.py").is_file():
            found[entry.name] = entry / "layers.py"
    if not found:
        raise FileNotFoundError(f"{folder}: no submissions (expected <student>.py or <student>/layers.py)")
    return found


def csv_row(student: str, results: dict) -> dict:
    """One student's row of the grade table, its keys in :data:`CSV_COLUMNS` order (the CSV header)."""
    row = {
        "student": student,
        "file": results["submission"],
        "total": results["total"],
        "max_total": results["max_total"],
        "import_error": results["import_error"] or "",
        "forbidden_uses": len(results["forbidden_uses"]),
    }
    row["failed_cases"] = sum(results[q]["failed"] for q in QUESTIONS if q in results)
    row.update({q: results[q]["score"] if q in results else "" for q in QUESTIONS})
    return {column: row[column] for column in CSV_COLUMNS}


def grade_folder(folder: str | Path, questions: list[str], **limits) -> dict[str, dict]:
    """Grade every submission of ``folder`` (see :func:`find_submissions`); progress on stderr."""
    submissions = find_submissions(folder)
    results = {}
    for n, (student, path) in enumerate(submissions.items(), 1):
        results[student] = grade_submission(path, questions, **limits)
        r = results[student]
        note = f" (import error: {r['import_error']})" if r["import_error"] else ""
        print(f"[{n}/{len(submissions)}] {student}: {r['total']}/{r['max_total']}{note}", file=sys.stderr)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.autograder", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-q",
        "--question",
        action="append",
        default=None,
        metavar="Q",
        help="question to grade: q1, q2, q3, q4 or all (default: all); may be repeated",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--submission", type=Path, help=f"a layers.py to grade (default: this project's, {PROJECT_LAYERS.name})"
    )
    which.add_argument(
        "--submissions", type=Path, metavar="DIR", help="grade every DIR/<student>.py and DIR/<student>/layers.py"
    )
    parser.add_argument("--json", type=Path, help="write the full results (per question: score, failed cases) as JSON")
    parser.add_argument("--csv", type=Path, help="with --submissions: the grade table (default: DIR/grades.csv)")
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=DEFAULT_CASE_TIMEOUT,
        help="seconds a case may run before it fails (default %(default)g)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"base seed of the random cases (default {SEED})")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        questions = select_questions(args.question or ["all"])
    except ValueError as exc:
        parser.error(str(exc))
    limits = {"seed": args.seed, "case_timeout": args.case_timeout}
    try:
        if args.submissions is not None:
            graded = grade_folder(args.submissions, questions, **limits)
            table = args.csv or args.submissions / "grades.csv"
            write_csv(table, [csv_row(student, r) for student, r in graded.items()])
            if args.json:
                write_json(args.json, graded)
            print(f"autograder: graded {len(graded)} submission(s); wrote {table}")
            return 0
        results = grade_submission(args.submission or PROJECT_LAYERS, questions, **limits)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(results))
    if args.json:
        write_json(args.json, results)
    return 0 if results["total"] == results["max_total"] else 1


if __name__ == "__main__":
    sys.exit(main())
