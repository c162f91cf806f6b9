"""Answers to the handouts' written questions, computed from the files the stages wrote.

Which questions an assignment's report answers, and how, is data:
``references/answers/<assignment>.yaml`` (:mod:`.spec`) gives each question's fixed text or the
measured sentence builder that answers it, by name, with the variant or comparison it reads.
The builders live in :mod:`.common` (any assignment: comparisons, curves, logs) and one module per
assignment; the sentences they share in :mod:`.sentences`. Every sentence that states a result is
built from a measured value, and its wording follows the value; nothing here holds a measured number
or a conclusion of its own (tests/test_answers.py changes an input file and reads the new sentence).

Each :class:`Answer` names the files it read (paths under ``reports/``) so the report links them.
``answers(key, inputs)`` gives one assignment's answers; ``inputs`` is any :class:`.base.Reader`
(the report's :class:`pipeline.report.inputs.Inputs`).
"""

from __future__ import annotations

# The assignment modules register their builders on import: the YAML can name any of them.
from pipeline.report.answers import common, cse849, ds5220, prac5, tdm  # noqa: F401
from pipeline.report.answers.base import BUILDERS, Answer, Reader, dotted, has
from pipeline.report.answers.common import SEED_STUDY, seed_study_comparisons, seed_study_verdict
from pipeline.report.answers.spec import ANSWERS, Question, load_questions

__all__ = ["SEED_STUDY", "Answer", "answers", "dotted", "has", "seed_study_comparisons", "seed_study_verdict"]


def answers(key: str, inputs: Reader) -> list[Answer]:
    """The answers for assignment ``key`` (a key of references/handout_results.yaml) that its files allow;
    none for an assignment without ``references/answers/<key>.yaml``."""
    path = inputs.root / ANSWERS / f"{key}.yaml"
    if not path.is_file():
        return []
    questions = load_questions(path, inputs.params.variants, inputs.params.analysis.comparisons)
    return [a for a in (answer(q, inputs) for q in questions) if a is not None]


def answer(q: Question, inputs: Reader) -> Answer | None:
    """One question's answer: its fixed text, its measured sentence (after its lead), or both; None when
    only a measurement would answer it and the files it needs are missing."""
    built = BUILDERS[q.builder](inputs, **q.arguments) if q.builder else None
    if built is None:
        return Answer(q.question, q.asked, q.text, ()) if q.text else None
    text, sources = built
    before = q.text or q.lead
    return Answer(q.question, q.asked, f"{before} {text}" if before else text, sources)
