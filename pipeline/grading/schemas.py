"""The schemas of the graders' files: ``autograder.json`` (autograde) and ``<variant>/grade.json``
(grade_cse849, which embeds evaluate's shortcut block). Checked before writing and by the report on
reading (:mod:`pipeline.report.schemas`); typing only, so the report imports no grader."""

# No ``from __future__ import annotations`` here: TypedDict sees NotRequired[...] only in
# evaluated annotations (with strings it counts every key as required on Python 3.11).
from typing import NotRequired, TypedDict

from pipeline.core.schemas import Fraction
from pipeline.inference.schemas import Shortcut


class Grade(TypedDict):
    """``<variant>/grade.json`` (grade_cse849): this project's re-implementation of the course's grading, on the deliverable."""

    graded: bool
    correct: NotRequired[int]
    images: NotRequired[int]
    accuracy: NotRequired[Fraction]
    points: NotRequired[int]
    max_points: NotRequired[int]
    shortcut: NotRequired[Shortcut | None]  # null without the composite's metadata (no digit labels)


class AutograderScores(TypedDict):
    """``autograder.json`` (autograde): the totals (and per question ``q<k>``: max, passed, score, total)."""

    total: int
    max_total: int
    forbidden_uses: int
