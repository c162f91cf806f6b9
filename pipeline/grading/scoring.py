"""Scores from a submission's verdicts: per question, the deduction for forbidden uses, and the summary.

:func:`question_result` turns the verdicts the sandbox collected (:mod:`pipeline.grading.sandbox`)
into one question's result. The rule: ``floor(20 * passed / total)`` over the base cases, and a
question with any forbidden use - in the source, attributed to its class, or seen at run time
while its cases ran or while the file was imported - loses :data:`FORBIDDEN_DEDUCTION` of it.
"""

from __future__ import annotations

from pipeline.grading.cases import POINTS_PER_QUESTION, QUESTIONS, score

FORBIDDEN_DEDUCTION = 1.0  # the fraction of a question's points a forbidden use costs: all of them
MAX_REPORTED_FAILURES = 5


def all_uses(static, outcome) -> list[dict]:
    """Every forbidden use, from the source and at run time, with the questions it costs."""
    uses = [{"use": f"line {u.line}: {u.use}", "questions": list(u.questions)} for u in static]
    every = sorted(QUESTIONS)
    for where, seen in outcome.forbidden.items():
        uses.extend({"use": use, "questions": every if where == "import" else [where]} for use in seen)
    return uses


def question_result(q: str, cases: list, outcome, static) -> dict:
    """Score, failures, deduction and extras of one question."""

    def failures(indices):
        return [
            {"case": f"#{i} {cases[i].description}", "reason": "; ".join(outcome.problems[(q, i)])}
            for i in indices
            if outcome.problems[(q, i)]
        ]

    base = [i for i, c in enumerate(cases) if not c.extra]
    extra = [i for i, c in enumerate(cases) if c.extra and (q, i) not in outcome.skipped]
    failed, failed_extras = failures(base), failures(extra)
    passed = len(base) - len(failed)
    forbidden = [f"line {u.line}: {u.use}" for u in static if q in u.questions]
    forbidden += outcome.forbidden.get("import", []) + outcome.forbidden.get(q, [])
    cases_score = score(passed, len(base))
    deducted = round(cases_score * FORBIDDEN_DEDUCTION) if forbidden else 0
    return {
        "title": QUESTIONS[q].title,
        "score": cases_score - deducted,
        "max": POINTS_PER_QUESTION,
        "passed": passed,
        "total": len(base),
        "failed": len(failed),
        "failures": failed[:MAX_REPORTED_FAILURES],
        "cases_score": cases_score,
        "deducted": deducted,
        "forbidden": forbidden,
        "extras": {
            "passed": len(extra) - len(failed_extras),
            "failed": len(failed_extras),
            "skipped": sorted(set(outcome.skipped[(q, i)] for i in range(len(cases)) if (q, i) in outcome.skipped)),
            "total": len(cases) - len(base),
            "failures": failed_extras[:MAX_REPORTED_FAILURES],
        },
        "seconds": round(outcome.seconds.get(q, 0.0), 3),
    }


def format_summary(results: dict) -> str:
    """The score table, then per question the failed cases, the forbidden uses and the extras."""
    rows = [f"{'Question':<9}{'Score':>8}{'Cases':>12}{'Time':>9}  Layer"]
    questions = [q for q in QUESTIONS if q in results]
    for q in questions:
        r = results[q]
        note = f"  (-{r['deducted']}: forbidden operations)" if r.get("deducted") else ""
        rows.append(
            f"{q:<9}{r['score']:>4}/{r['max']:<3}{r['passed']:>7}/{r['total']:<4}{r['seconds']:>8.2f}s  {r['title']}{note}"
        )
    rows.append(f"{'Total':<9}{results['total']:>4}/{results['max_total']:<3}")
    if results.get("import_error"):
        rows.append(f"  IMPORT ERROR: {results['import_error']}")
    for q in questions:
        r = results[q]
        if not results.get("import_error"):
            rows.extend(f"  FAIL {q} {f['case']}: {f['reason']}" for f in r["failures"])
            if r["failed"] > len(r["failures"]):
                rows.append(f"  ... and {r['failed'] - len(r['failures'])} more failed case(s) in {q}")
        if r["forbidden"]:
            rows.append(f"  {q}: {len(r['forbidden'])} forbidden use(s), {r['deducted']} point(s) deducted:")
            rows.extend(f"    {use}" for use in r["forbidden"])
        x = r["extras"]
        if x["total"] and not results.get("import_error"):
            skipped = f"; skipped: {', '.join(x['skipped'])}" if x["skipped"] else ""
            rows.append(
                f"  {q} extras beyond the handout (no points): {x['passed']} passed, {x['failed']} failed{skipped}"
            )
            rows.extend(f"    FAIL {f['case']}: {f['reason']}" for f in x["failures"])
    unreached = [u["use"] for u in results.get("forbidden_uses", []) if not u["questions"]]
    if unreached:
        rows.append("  forbidden use(s) no graded class reaches (not deducted): " + "; ".join(unreached))
    if results.get("sandbox"):
        box = results["sandbox"]
        rows.append(f"  (sandbox: the worker ran as {box['user']}, in {box['isolation']})")
    return "\n".join(rows)
