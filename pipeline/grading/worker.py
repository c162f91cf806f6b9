"""The grading process's child: imports one submission and runs its side of the cases it is given.

    python -m pipeline.grading.worker SUBMISSION RESULT_FD SEED MEMORY_MIB q1:0-47 q2:0-55 ...

Started by :mod:`pipeline.grading.sandbox`, never by hand. The submission's code runs
only here, so an infinite loop, ``sys.exit``, a segfault or a flood of output ends
this process and not the grader. This process **computes, it does not judge**: for each
case it builds the submission's layer, runs forward and backward (:func:`cases.run_layer`)
and sends the tensors back; the grader compares them with the reference it computes itself.
A submission that replaces functions here (``pipeline.grading.cases.compare``, say)
changes nothing the grader decides.

Before the submission is imported, the process limits its own address space to what it
uses then plus ``MEMORY_MIB`` (``RLIMIT_AS``, soft and hard: the submission cannot raise
it), so a layer that allocates without end fails its case with an out-of-memory error
instead of taking the machine's memory; ``os.kill`` of any other process raises
PermissionError (:func:`refuse_signals`). Every case runs under
:class:`pipeline.grading.monitor.ForbiddenCalls` (the allowed-operations rule at run time).

Results go to the inherited file descriptor ``RESULT_FD`` as one JSON object per line (the
submission's own prints go to stdout and stderr, which the sandbox captures and measures):

    {"event": "ready", "forbidden": [...]}                 the submission imported
    {"event": "import_error", "error": "..."}              it did not (the process then exits)
    {"event": "start", "question": "q2", "index": 7, "output": 0}   a case begins (the sandbox's clock starts)
    {"event": "done", "question": "q2", "index": 7, "result": {...}, "forbidden": [...], "seconds": 0.01,
     "output": 512}

``result``: ``{"tensors": {name: {"npy": base64} | "a <type>" | null}}``, or ``{"raised": "..."}``,
``{"missing": "..."}`` (no such class), ``{"skipped": "..."}`` (an extra case whose keyword the
constructor does not take). ``output``: the bytes the captured stdout + stderr file holds at
that moment (flushed), measured here: a fast case's start and done arrive together.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from pipeline.grading.cases import case_generator, construct, missing_keywords, question_cases, run_layer
from pipeline.grading.monitor import ForbiddenCalls, structure_uses

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


def limit_memory(extra_mib: int) -> None:
    """Cap the address space at its present size plus ``extra_mib`` (torch alone maps far more
    virtual memory than it uses, so a fixed cap would be wrong on another build). Linux only:
    elsewhere there is no /proc/self/statm and no cap."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    limit = pages * os.sysconf("SC_PAGE_SIZE") + extra_mib * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _target(pid: int) -> str:
    """What ``os.kill(pid, ...)`` reaches, in words."""
    if pid == os.getppid():  # also 0 == 0 in the worker's PID namespace, where the parent is not visible
        return "its parent process"
    if pid == 0:
        return "its own process group"
    if pid == -1:
        return "every process it may signal"
    return f"process group {-pid}" if pid < 0 else f"process {pid}"


def refuse_signals(event: str, args: tuple) -> None:
    """An audit hook (:func:`sys.addaudithook`, which the submission cannot remove): ``os.kill`` and
    ``os.killpg`` of any process but this one raise PermissionError at the submission's line instead.

    Why refuse what the sandbox would absorb: in the worker's PID namespace ``os.getppid()`` is 0,
    and ``os.kill(0, SIGKILL)`` ended ``unshare``; this process then died a moment later (its
    ``--kill-child`` signal), before or after it had sent ``ready``, so the grader's stated reason
    depended on timing. Refused before any signal is sent, the attempt is the same exception on
    every run, and names what it tried. (A signal sent around this hook, through ``ctypes``, reaches
    nothing: :func:`leave_supervisor_group`.)
    """
    if event not in ("os.kill", "os.killpg"):
        return
    pid, sig = args
    if sig == 0 or (event == "os.kill" and pid == os.getpid()):
        return  # a liveness probe, or a signal to itself: at most it ends its own case, as sys.exit does
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    target = (f"process group {pid}" if pid else "its own process group") if event == "os.killpg" else _target(pid)
    raise PermissionError(f"the submission tried to send {name} to {target} ({event}({pid}, {sig})); "
                          "the grader allows no signal to another process")  # fmt: skip


def leave_supervisor_group() -> None:
    """In a PID namespace of its own (this process is its PID 1, under ``unshare``), leave the process
    group it shares with ``unshare``: then no signal sent from inside, by any means, can end
    ``unshare`` (and this process with it, at a moment that depends on timing). Signals the
    submission sends to its group reach only the namespace, whose init ignores them."""
    if os.getpid() == 1:
        os.setsid()


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
    message = str(exc).strip()
    text = (f"{type(exc).__name__}: {message}" if message else type(exc).__name__).splitlines()[0][:300]
    if isinstance(exc, MemoryError) or "can't allocate memory" in text:
        text += " [out of memory: the grader's memory limit]"
    return text + where


def encode(value) -> dict | str | None:
    """A tensor as base64 ``.npy`` (exact, any shape and dtype numpy has); anything else by its type."""
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        return f"a {type(value).__name__}"
    try:
        array = value.detach().cpu().numpy()
    except (TypeError, RuntimeError):  # bfloat16, sparse, ...: not what torch's layers return
        return f"a tensor of dtype {value.dtype}"
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return {"npy": base64.b64encode(buffer.getvalue()).decode("ascii")}


def run_one(impl, path: Path, question: str, index: int, case, seed: int) -> tuple[dict, list[str]]:
    """The submission's side of one case: ``(result, forbidden uses seen while it ran)``."""
    cls = getattr(impl, case.layer, None)
    if not isinstance(cls, type):
        return {"missing": f"{path.name} defines no class {case.layer}"}, []
    missing = missing_keywords(cls, dict(case.kwargs)) if case.extra else []
    if missing:
        return {"skipped": f"the constructor takes no keyword {', '.join(missing)}"}, []
    monitor = ForbiddenCalls(str(path))
    try:
        with monitor:
            layer = construct(cls, case)
            if case.expect_error:
                return {"raised": None}, monitor.uses
            results = run_layer(layer, case, case_generator(question, index, seed))
        forbidden = monitor.uses + structure_uses(layer)
        return {"tensors": {name: encode(value) for name, value in results.items()}}, forbidden
    except Exception as exc:  # noqa: BLE001 - any error of the graded code is a failed case
        return {"raised": _last_line(exc)}, monitor.uses


def main(argv: list[str]) -> int:
    path, result_fd, seed, memory = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    plan = parse_plan(argv[4:])

    def send(**event) -> None:
        data = memoryview((json.dumps(event) + "\n").encode())
        while data:  # a pipe may take a large event in parts
            data = data[os.write(result_fd, data) :]

    # The cases are tiny: intra-op threads only add overhead (and stall on a shared machine).
    torch.set_num_threads(1)
    leave_supervisor_group()
    warm_up()  # before the submission is imported: none of its code runs in it
    limit_memory(memory)
    sys.addaudithook(refuse_signals)
    monitor = ForbiddenCalls(str(path))
    try:
        with monitor:
            impl = import_submission(path)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt at import too
        send(event="import_error", error=_last_line(exc))
        return 0
    send(event="ready", forbidden=monitor.uses)
    cases = {q: question_cases(q, seed) for q in dict.fromkeys(q for q, _ in plan)}
    for question, index in plan:
        send(event="start", question=question, index=index, output=output_size())
        start = time.perf_counter()
        result, forbidden = run_one(impl, path, question, index, cases[question][index], seed)
        seconds = round(time.perf_counter() - start, 4)
        send(event="done", question=question, index=index, result=result, forbidden=forbidden, seconds=seconds,
             output=output_size())  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
