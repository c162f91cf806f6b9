"""Grade a submission's layers in a separate process, with a time limit per case.

:func:`grade_submission` runs the cases of :mod:`pipeline.grading.cases` in a child
process (:mod:`pipeline.grading.worker`) that imports the submission, so nothing the
submission does can take the grader down:

* **fails to import** (a syntax error, a missing module, ``sys.exit`` at import, an import
  that hangs for ``import_timeout`` seconds): every selected case fails with that reason;
* **raises** inside a case, or returns the wrong shape, dtype or values: that case fails
  with the first difference (in the worker; the next case runs as usual);
* **hangs** (a case running longer than ``case_timeout``) or **ends the process**
  (``sys.exit``, ``os._exit``, a crash): the process is killed, the case fails, and a
  fresh process continues with the next case. After :data:`MAX_LOST_PROCESSES` such
  cases in one question the question's remaining cases fail unrun ("abandoned"), so one
  infinite loop costs seconds, not ``cases x case_timeout``;
* **prints** more than ``output_limit`` bytes during a case: that case fails (a layer
  that floods the console is not a working layer). The captured output is kept to a
  bounded size; the first lines are in the result for the reader.

The result has, per question, ``score``, ``max``, ``passed``, ``total``, ``failed``,
``failures`` (the first :data:`MAX_REPORTED_FAILURES` as ``{"case", "reason"}``),
``seconds``; and ``total``, ``max_total``, ``submission``, ``import_error``,
``forbidden_uses`` (the seed's allowed-operations rule, :mod:`pipeline.grading.inspection`;
reported, not deducted), ``output_sample``.

What the sandbox does not do: the submission runs inside the worker process, so code
written to cheat (forging the worker's result messages, reading the reference layers)
is not prevented; it is a guard against accidents - hangs, exits, crashes, floods - not
a security boundary. Malformed results fail the case; a TA should still read the code,
as the allowed-operations inspection does.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.grading import worker
from pipeline.grading.cases import (
    POINTS_PER_QUESTION,
    QUESTIONS,
    SEED,
    question_cases,
    score,
    select_questions,
)
from pipeline.grading.inspection import forbidden_uses

DEFAULT_CASE_TIMEOUT = 10.0  # s; this project's layers need < 0.2 s for the largest case
DEFAULT_IMPORT_TIMEOUT = 60.0  # s; importing torch alone takes a few seconds on a slow machine
DEFAULT_OUTPUT_LIMIT = 64 * 1024  # bytes a case may print before it fails
MAX_LOST_PROCESSES = 2  # hangs/exits per question before the rest of it is abandoned
MAX_REPORTED_FAILURES = 5
OUTPUT_SAMPLE_CHARS = 400
_POLL_SECONDS = 0.25  # how often the captured output's size is checked while a case runs
# The worker is started as ``python -m pipeline.grading.worker`` from wherever the grader
# runs: put this project first on its import path.
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Outcome:
    problems: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    import_error: str | None = None


def _plan_arguments(pending: list[tuple[str, int]]) -> list[str]:
    """Consecutive indices of one question as ``q2:3-55`` (the worker's argument format)."""
    spans: list[list] = []
    for question, index in pending:
        if spans and spans[-1][0] == question and spans[-1][2] == index - 1:
            spans[-1][2] = index
        else:
            spans.append([question, index, index])
    return [f"{q}:{a}-{b}" for q, a, b in spans]


def _kill(process: subprocess.Popen) -> None:
    """Kill the worker and anything it started (it leads its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _run_worker(
    path: Path,
    pending: list[tuple[str, int]],
    seed: int,
    case_timeout: float,
    import_timeout: float,
    output_limit: int,
    capture,
    outcome: _Outcome,
) -> tuple[str, int] | None:
    """Run the pending cases in one worker until it finishes, hangs or dies.

    Records every finished case in ``outcome``; returns the case that hung or ended the
    process (already recorded as failed), or None when the worker got through the plan.
    """
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", worker.__name__, str(path), str(write_fd), str(seed), *_plan_arguments(pending)]
    python_path = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=capture,
        stderr=subprocess.STDOUT,
        pass_fds=(write_fd,),
        start_new_session=True,
        env=env,
    )
    os.close(write_fd)
    selector = selectors.DefaultSelector()
    selector.register(read_fd, selectors.EVENT_READ)
    buffer = b""
    current: tuple[str, int] | None = None
    ready = False
    deadline = time.monotonic() + import_timeout
    output_at_start = 0
    try:
        while True:
            if current is not None and os.fstat(capture.fileno()).st_size - output_at_start > output_limit:
                _kill(process)  # a flood of output: stop it now rather than fill the disk
                outcome.problems[current] = [f"printed more than {output_limit} bytes"]
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(process)
                if current is None:
                    outcome.import_error = f"importing the submission took more than {import_timeout:g} s"
                    return None
                outcome.problems[current] = [f"timed out: no result after {case_timeout:g} s"]
                return current
            if not selector.select(min(remaining, _POLL_SECONDS)):
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:  # the worker exited
                code = process.wait()
                if current is not None:
                    outcome.problems[current] = [f"the process ended during this case (exit code {code})"]
                elif not ready and not outcome.import_error:
                    outcome.import_error = f"the process ended with exit code {code} while importing the submission"
                return current
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    event = json.loads(line)
                    kind = event["event"]
                except (ValueError, KeyError, TypeError):
                    _kill(process)  # only the submission could have written this
                    if current is None:
                        outcome.import_error = "the submission wrote into the grader's result channel"
                        return None
                    outcome.problems[current] = ["the submission wrote into the grader's result channel"]
                    return current
                if kind == "import_error":
                    outcome.import_error = event["error"]
                elif kind == "ready":
                    ready, deadline = True, float("inf")
                elif kind == "start":
                    current = (event["question"], event["index"])
                    deadline = time.monotonic() + case_timeout
                    output_at_start = _reported_output(event, capture)
                elif kind == "done":
                    problems = list(event["problems"])
                    printed = _reported_output(event, capture) - output_at_start
                    if printed > output_limit:
                        problems.append(f"printed {printed} bytes (limit {output_limit})")
                    outcome.problems[current] = problems
                    outcome.seconds[current[0]] = outcome.seconds.get(current[0], 0.0) + event["seconds"]
                    current, deadline = None, float("inf")
    finally:
        selector.close()
        os.close(read_fd)
        if process.poll() is None:
            _kill(process)


def _reported_output(event: dict, capture) -> int:
    """The captured output's size when the worker sent ``event`` (it measures it: several events
    can arrive in one read, after the case has printed); the file's size now if it could not."""
    size = event.get("output")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        return size
    return os.fstat(capture.fileno()).st_size


def _output_sample(capture) -> str:
    capture.seek(0)
    text = capture.read(OUTPUT_SAMPLE_CHARS + 1).decode("utf-8", errors="replace")
    return text if len(text) <= OUTPUT_SAMPLE_CHARS else text[:OUTPUT_SAMPLE_CHARS] + " [...]"


def grade_submission(
    path: str | os.PathLike[str],
    questions: list[str] | None = None,
    seed: int = SEED,
    case_timeout: float = DEFAULT_CASE_TIMEOUT,
    import_timeout: float = DEFAULT_IMPORT_TIMEOUT,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
) -> dict:
    """Grade the layers file at ``path`` on the selected questions (default: all); see the module docstring."""
    path = Path(path).resolve()
    selected = select_questions(questions or ["all"])
    if not path.is_file():
        raise FileNotFoundError(f"{path}: submission not found")
    cases = {q: question_cases(q, seed) for q in selected}
    pending = [(q, i) for q in selected for i in range(len(cases[q]))]
    outcome = _Outcome()
    lost: dict[str, int] = {}
    with tempfile.TemporaryFile() as capture:
        while pending and outcome.import_error is None:
            lost_case = _run_worker(path, pending, seed, case_timeout, import_timeout, output_limit, capture, outcome)
            if lost_case is not None:
                lost[lost_case[0]] = lost.get(lost_case[0], 0) + 1
                if lost[lost_case[0]] >= MAX_LOST_PROCESSES:  # abandon the rest of that question
                    reason = (
                        f"not run: {lost_case[0]} abandoned after {MAX_LOST_PROCESSES} cases hung or ended the process"
                    )
                    for case in pending:
                        if case[0] == lost_case[0] and case not in outcome.problems:
                            outcome.problems[case] = [reason]
            pending = [c for c in pending if c not in outcome.problems]
            if lost_case is None and pending and outcome.import_error is None:
                outcome.import_error = "the grading process stopped before every case ran"
        sample = _output_sample(capture)
    if outcome.import_error is not None:
        for case in pending:
            outcome.problems[case] = [f"the submission did not import: {outcome.import_error}"]

    results: dict = {}
    for q in selected:
        failures = [
            {"case": f"#{i} {case.description}", "reason": "; ".join(outcome.problems[(q, i)])}
            for i, case in enumerate(cases[q])
            if outcome.problems[(q, i)]
        ]
        passed = len(cases[q]) - len(failures)
        results[q] = {
            "title": QUESTIONS[q].title,
            "score": score(passed, len(cases[q])),
            "max": POINTS_PER_QUESTION,
            "passed": passed,
            "total": len(cases[q]),
            "failed": len(failures),
            "failures": failures[:MAX_REPORTED_FAILURES],
            "seconds": round(outcome.seconds.get(q, 0.0), 3),
        }
    results["total"] = sum(results[q]["score"] for q in selected)
    results["max_total"] = sum(results[q]["max"] for q in selected)
    results["submission"] = str(path)
    results["import_error"] = outcome.import_error
    results["forbidden_uses"] = forbidden_uses(path.read_text(encoding="utf-8", errors="replace"))
    results["output_sample"] = sample
    return results


def format_summary(results: dict) -> str:
    """The score table, then the failed cases, the import error and the forbidden uses."""
    rows = [f"{'Question':<9}{'Score':>8}{'Cases':>12}{'Time':>9}  Layer"]
    questions = [q for q in QUESTIONS if q in results]
    for q in questions:
        r = results[q]
        rows.append(
            f"{q:<9}{r['score']:>4}/{r['max']:<3}{r['passed']:>7}/{r['total']:<4}{r['seconds']:>8.2f}s  {r['title']}"
        )
    rows.append(f"{'Total':<9}{results['total']:>4}/{results['max_total']:<3}")
    if results.get("import_error"):
        rows.append(f"  IMPORT ERROR: {results['import_error']}")
    else:
        for q in questions:
            for failure in results[q]["failures"]:
                rows.append(f"  FAIL {q} {failure['case']}: {failure['reason']}")
            hidden = results[q]["failed"] - len(results[q]["failures"])
            if hidden > 0:
                rows.append(f"  ... and {hidden} more failed case(s) in {q}")
    uses = results.get("forbidden_uses") or []
    if uses:
        rows.append(f"  {len(uses)} use(s) of operations the seed does not allow (reported, not deducted):")
        rows.extend(f"    {use}" for use in uses)
    return "\n".join(rows)
