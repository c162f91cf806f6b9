"""The grading process: imports one submission and runs the cases it is given.

    python -m pipeline.grading.worker SUBMISSION RESULT_FD SEED q1:0-47 q2:0-55 ...

Started by :mod:`pipeline.grading.sandbox`, never by hand. The submission's code runs
only here, so an infinite loop, ``sys.exit``, a segfault or a flood of output ends
this process and not the grader. Results go to the inherited file descriptor
``RESULT_FD`` as one JSON object per line (the submission's own prints go to stdout and
stderr, which the sandbox captures and measures):

    {"event": "ready"}                                   the submission imported
    {"event": "import_error", "error": "..."}            it did not (the process then exits)
    {"event": "start", "question": "q2", "index": 7, "output": 0}   a case begins (the sandbox's clock starts)
    {"event": "done", "question": "q2", "index": 7, "problems": [...], "seconds": 0.01, "output": 512}

``output``: the bytes the captured stdout + stderr file holds at that moment (flushed),
measured here rather than by the sandbox when it reads the event: a fast case's start and
done arrive together, and what it printed would already count as "before the start".
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from pipeline.grading.cases import QUESTIONS, case_generator, question_cases, run_case

MODULE_NAME = "submission"


def import_submission(path: Path):
    """Import ``path`` as a module (its folder first on ``sys.path``, so its own imports work)."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def warm_up() -> None:
    """One backward pass with an explicit gradient, before any case is timed.

    A process's first such call makes torch import what checks the gradient's shape
    (``torch.fx.experimental.symbolic_shapes``, and sympy with it): ~0.5 s once on the machine
    this was measured on, against ~2 ms for a whole case afterwards. Without this, that cost
    would count against the first case's time limit, and a slow or busy machine could fail a
    correct submission's first case.
    """
    x = torch.ones(2, requires_grad=True)
    (2 * x).backward(torch.ones(2))


def output_size() -> int:
    """Bytes in the file the sandbox captures stdout and stderr into (fd 1), after flushing
    both; -1 if the submission closed or replaced fd 1 (the sandbox then measures itself)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        return os.fstat(1).st_size
    except (OSError, ValueError, AttributeError):
        return -1


def parse_plan(items: list[str]) -> list[tuple[str, int]]:
    """``["q1:0-47", "q3:5-9"]`` -> ``[("q1", 0), ..., ("q1", 47), ("q3", 5), ...]``."""
    plan = []
    for item in items:
        question, _, span = item.partition(":")
        first, _, last = span.partition("-")
        plan.extend((question, i) for i in range(int(first), int(last) + 1))
    return plan


def _last_line(exc: BaseException) -> str:
    """``ErrorType: message (file:line)`` for the frame in the submission, when there is one."""
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".py") and "pipeline/grading" not in frame.filename:
            where = f" ({Path(frame.filename).name}:{frame.lineno})"
            break
    return f"{type(exc).__name__}: {exc}{where}"


def main(argv: list[str]) -> int:
    path, result_fd, seed, plan = Path(argv[0]), int(argv[1]), int(argv[2]), parse_plan(argv[3:])

    def send(**event) -> None:
        os.write(result_fd, (json.dumps(event) + "\n").encode())

    # The cases are tiny: intra-op threads only add overhead (and stall on a shared machine).
    torch.set_num_threads(1)
    warm_up()  # before the submission is imported: none of its code runs in it
    try:
        impl = import_submission(path)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt at import too
        send(event="import_error", error=_last_line(exc))
        return 0
    send(event="ready")
    cases = {q: question_cases(q, seed) for q in dict.fromkeys(q for q, _ in plan)}
    for question, index in plan:
        send(event="start", question=question, index=index, output=output_size())
        start = time.perf_counter()
        layer = QUESTIONS[question].layer
        if not isinstance(getattr(impl, layer, None), type):
            problems = [f"{path.name} defines no class {layer}"]
        else:
            problems = run_case(cases[question][index], impl, case_generator(question, index, seed))
        seconds = round(time.perf_counter() - start, 4)
        send(event="done", question=question, index=index, problems=problems, seconds=seconds, output=output_size())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
