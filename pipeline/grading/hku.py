"""Autograder for HKU Assignment 3, Questions 1-4 (the handout's ``python autograder.py -q q2``).

Usage::

    cnn-pipeline autograde -q all                         # this project's layers
    cnn-pipeline autograde --submission student/layers.py -q q2 --json q2.json
    cnn-pipeline autograde --submissions submissions/ --csv grades.csv

This is the project's re-implementation of the course's grader (the handout's own
``autograder.py`` is not public). A submission is a Python file defining the handout's
classes (``CustomLinear``, ``CustomConv2D``, ``CustomMaxPool2D``,
``CustomCrossEntropyLoss``), called the way the handout's text describes them
(:mod:`pipeline.grading.cases`). It runs in a separate, isolated process with a time limit
per case and a memory limit (:mod:`pipeline.grading.sandbox`); its results are compared
with torch's in the grading process. Each question (20 points, 80 in all) scores
``floor(20 * passed / total)`` of its base cases, and **loses all 20 points when its class
breaks the handout's allowed-operations rule** (in the source or at run time:
:mod:`pipeline.grading.inspection`, :mod:`pipeline.grading.monitor`); the report names each
such use and its line. Cases beyond the handout (``reduction=``, ``bias=False``, ...) are
reported and never cost points.

``--submissions DIR`` grades every ``DIR/<student>.py`` and ``DIR/<student>/layers.py``
and writes one CSV row per student (``--csv``, default ``DIR/grades.csv``) **as each
finishes**: the question scores, the total, the number of failed cases and of forbidden
uses, and the import error if any. A run that is stopped keeps every finished row;
``--resume`` continues it, skipping the students already in the table (a student whose
grading was under way when the grader itself was killed gets a row of zeros saying so).

Exit status: 0 when a single submission has full marks on every selected question, or a
folder's every file was graded; 3 when a submission was graded below full marks; 1 on an
error (a missing file); 2 on a usage error (an unknown question).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.io import check_outputs, write_json, write_text
from pipeline.grading.cases import QUESTIONS, SEED, select_questions
from pipeline.grading.sandbox import DEFAULT_CASE_TIMEOUT, DEFAULT_MEMORY_LIMIT, grade_submission
from pipeline.grading.scoring import format_summary
from pipeline.models.simple_cnn import layers

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


class GradeTable:
    """The class's grade table, one row appended (and flushed to disk) as each student finishes.

    ``<table>.grading`` names the student being graded while it is; a run killed meanwhile
    leaves it behind, and ``--resume`` then gives that student a row of zeros saying so
    (their code stopped the grader) instead of grading them again.
    """

    def __init__(self, path: Path, resume: bool) -> None:
        self.path, self.marker = path, path.with_name(path.name + ".grading")
        self.done: set[str] = set()
        if resume and path.exists():
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
                    raise PipelineError(f"{path}: not this autograder's grade table (header {reader.fieldnames})")
                self.done = {row["student"] for row in reader}
        else:
            write_text(path, ",".join(CSV_COLUMNS) + "\n")
            self.marker.unlink(missing_ok=True)

    def interrupted(self) -> str | None:
        """The student whose grading a killed run left unfinished, if any."""
        name = self.marker.read_text(encoding="utf-8").strip() if self.marker.is_file() else ""
        return name if name and name not in self.done else None

    def start(self, student: str) -> None:
        write_text(self.marker, student + "\n")

    def add(self, row: dict) -> None:
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n").writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
        self.done.add(row["student"])
        self.marker.unlink(missing_ok=True)


def _killed_row(student: str, path: Path, questions: list[str]) -> dict:
    reason = "the grader was killed while grading this submission (its code stopped the grading process)"
    row = {"student": student, "file": str(path), "total": 0, "max_total": 20 * len(questions)}
    row.update({q: 0 if q in questions else "" for q in QUESTIONS})
    row.update({"failed_cases": "", "forbidden_uses": "", "import_error": reason})
    return {column: row[column] for column in CSV_COLUMNS}


def grade_folder(
    folder: str | Path, questions: list[str], table: Path, resume: bool = False, **limits
) -> dict[str, dict]:
    """Grade every submission of ``folder`` (see :func:`find_submissions`) into ``table`` row by row;
    progress on stderr. Returns the results of the students graded by this run."""
    submissions = find_submissions(folder)
    grades = GradeTable(Path(table), resume)
    killed = grades.interrupted()
    if killed in submissions:
        grades.add(_killed_row(killed, submissions[killed], questions))
        print(f"{killed}: the previous run was killed while grading it; recorded as 0", file=sys.stderr)
    results = {}
    for n, (student, path) in enumerate(submissions.items(), 1):
        if student in grades.done:
            continue
        grades.start(student)
        results[student] = r = grade_submission(path, questions, **limits)
        grades.add(csv_row(student, r))
        note = f" (import error: {r['import_error']})" if r["import_error"] else ""
        print(f"[{n}/{len(submissions)}] {student}: {r['total']}/{r['max_total']}{note}", file=sys.stderr)
    return results


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or "cnn-pipeline autograde",
        description="Grade HKU Assignment 3 layers.py files, questions 1-4 (20 points each), with this project's "
        "re-implementation of the handout's autograder.py -q (the course's own is not public). Each submission runs "
        "in an isolated process with time and memory limits; a question whose class uses an operation the handout "
        "does not allow loses its 20 points.",
        epilog="Exit status: 0 full marks (with --submissions: every file graded); 1 an error (a missing file); "
        "2 a usage error; 3 graded, below full marks.",
    )
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
        type=_positive,
        default=DEFAULT_CASE_TIMEOUT,
        help="seconds a case may run before it fails (default %(default)g)",
    )
    parser.add_argument(
        "--memory-limit",
        type=_positive,
        default=DEFAULT_MEMORY_LIMIT,
        metavar="MIB",
        help="memory a submission may allocate, in MiB (default %(default)g)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --submissions: keep the rows already in the table and grade only the other students",
    )
    parser.add_argument(
        "--seed", type=int, default=SEED, help=f"base random seed of the generated cases (default {SEED})"
    )
    return parser


def _grade_class(args: argparse.Namespace, folder: Path, questions: list[str], limits: dict) -> int:
    """``--submissions DIR``: the class's grade table (``--csv``, default ``DIR/grades.csv``)."""
    table = args.csv or folder / "grades.csv"
    check_outputs([p for p in (table, args.json) if p is not None])  # before any grading
    graded = grade_folder(folder, questions, table, args.resume, **limits)
    if args.json:
        write_json(args.json, graded)
    print(f"autograder: graded {len(graded)} submission(s); wrote {table}")
    return 0


def _grade_one(args: argparse.Namespace, questions: list[str], limits: dict) -> int:
    """One file (``--submission``, default this project's): 0 at full marks, else 3."""
    submission = args.submission or PROJECT_LAYERS
    # before any grading: an output must not be the submission, nor /dev/stdout or another special file
    check_outputs([p for p in (args.csv, args.json) if p is not None], {"--submission": args.submission})
    results = grade_submission(submission, questions, **limits)
    print(format_summary(results))
    if args.json:
        write_json(args.json, results)
    return 0 if results["total"] == results["max_total"] else 3


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        questions = select_questions(args.question or ["all"])
    except ValueError as exc:
        parser.error(str(exc))
    limits = {"seed": args.seed, "case_timeout": args.case_timeout, "memory_limit": int(args.memory_limit)}
    try:
        if args.submissions is not None:
            return _grade_class(args, args.submissions, questions, limits)
        return _grade_one(args, questions, limits)
    except (FileNotFoundError, IsADirectoryError, PipelineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1  # as every command: 1 is an error the user can fix (pipeline/core/cli.py)


if __name__ == "__main__":
    sys.exit(main())
