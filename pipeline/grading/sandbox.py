"""Grade a submission's layers in a separate process; compare and score here.

:func:`grade_submission` runs the submission's side of every case in a child process
(:mod:`pipeline.grading.worker`) and judges the tensors it sends back against the
reference computed **in this process** (:func:`cases.compare_results`), so nothing the
submission does can change a verdict:

* the worker runs a private, read-only copy of the file, in its own session and its own PID
  namespace (:func:`pid_namespace`, where ``unshare`` and the kernel allow one) and, when the
  grader runs as root, as the unprivileged user ``nobody`` (when that user can read Python,
  torch and this project, :func:`worker_user`): it cannot signal the grader. ``os.kill`` of
  another process fails at the submission's line in any case (a ``PermissionError`` naming
  the target: :func:`worker.refuse_signals`). Where neither is possible a submission of the
  grader's own user can still kill it (through ``ctypes``, say); the class table is
  written row by row, so ``--resume`` loses nothing (:mod:`pipeline.grading.hku`);
* its address space is capped (``memory_limit`` MiB above what it uses before the import);
* **fails to import** (a syntax error, a missing module, ``sys.exit`` at import, an import
  that hangs for ``import_timeout`` seconds): every selected case fails with that reason;
* **raises** inside a case, or returns the wrong shape, dtype or values: that case fails
  with the first difference; the next case runs as usual;
* **hangs** (a case running longer than ``case_timeout``) or **ends the process**: the
  process is killed, the case fails, and a fresh process continues with the next case.
  After :data:`MAX_LOST_PROCESSES` such cases in one question its remaining cases fail
  unrun ("abandoned");
* **prints** more than ``output_limit`` bytes during a case: that case fails.

**The allowed-operations rule is deducted** (:mod:`pipeline.grading.scoring`): a question
with a forbidden use - in the source, attributed to its class
(:mod:`pipeline.grading.inspection`), or seen at run time while its cases ran or while the
file was imported (:mod:`pipeline.grading.monitor`) - loses all its points. Its
``forbidden`` list names each use and its line.

The result has, per question, ``score`` (after the deduction), ``max``, ``passed`` and
``total`` (base cases), ``failed``, ``failures`` (the first few), ``cases_score`` (before
the deduction), ``deducted``, ``forbidden``, ``extras`` (cases beyond the handout's text:
``passed``, ``failed``, ``skipped``, ``total``, ``failures``; no points) and ``seconds``;
and ``total``, ``max_total``, ``submission``, ``import_error``, ``forbidden_uses`` (every
use, with the questions it costs), ``output_sample`` and ``sandbox`` (the worker's user,
its isolation and memory cap).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import pwd
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.grading import worker
from pipeline.grading.cases import (
    QUESTIONS,
    SEED,
    case_generator,
    compare_results,
    question_cases,
    reference_results,
    select_questions,
)
from pipeline.grading.inspection import inspect_source
from pipeline.grading.scoring import all_uses, question_result

DEFAULT_CASE_TIMEOUT = 10.0  # s; this project's layers need < 0.2 s for the largest case
DEFAULT_IMPORT_TIMEOUT = 60.0  # s; importing torch alone takes a few seconds on a slow machine
DEFAULT_OUTPUT_LIMIT = 64 * 1024  # bytes a case may print before it fails
# MiB a submission may add to the worker (this project's layers pass every case with 64, not with 32)
DEFAULT_MEMORY_LIMIT = 2048
MAX_LOST_PROCESSES = 2  # hangs/exits per question before the rest of it is abandoned
MAX_EVENT_BYTES = 64 * 2**20  # one case's tensors are < 10 MB; anything larger is not a layer's result
OUTPUT_SAMPLE_CHARS = 400
WORKER_USER = "nobody"
_POLL_SECONDS = 0.25  # how often the captured output's size is checked while a case runs
# The worker is started as ``python -m pipeline.grading.worker`` from wherever the grader
# runs: put this project first on its import path.
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Outcome:
    problems: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    skipped: dict[tuple[str, int], str] = field(default_factory=dict)
    forbidden: dict[str, list[str]] = field(default_factory=dict)  # question (or "import") -> uses
    seconds: dict[str, float] = field(default_factory=dict)
    import_error: str | None = None


@dataclass
class _Job:
    """What every worker of one submission shares."""

    path: Path  # the private copy
    cases: dict[str, list]
    seed: int
    case_timeout: float
    import_timeout: float
    output_limit: int
    memory_limit: int
    user: tuple[int, int] | None
    capture: object
    isolation: tuple[str, ...] = ()  # the pid_namespace() prefix


def _plan_arguments(pending: list[tuple[str, int]]) -> list[str]:
    """Consecutive indices of one question as ``q2:3-55`` (the worker's argument format)."""
    spans: list[list] = []
    for question, index in pending:
        if spans and spans[-1][0] == question and spans[-1][2] == index - 1:
            spans[-1][2] = index
        else:
            spans.append([question, index, index])
    return [f"{q}:{a}-{b}" for q, a, b in spans]


def _readable_by_all(path: Path) -> bool:
    """Whether any user can reach ``path`` (every folder above it searchable, it readable)."""
    path = path.resolve()
    try:
        for folder in path.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def worker_user() -> tuple[tuple[int, int] | None, str]:
    """``((uid, gid), "nobody")`` when the grader is root and ``nobody`` can read what the worker
    needs; else ``(None, why the worker runs as the grader's own user)``."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() != 0:
        return None, f"{me} (the grader's own user: only root can start a process as another)"
    try:
        entry = pwd.getpwnam(WORKER_USER)
    except KeyError:
        return None, f"{me} (no user {WORKER_USER!r} on this machine)"
    needed = [Path(sys.executable), _PROJECT_ROOT, Path(torch.__file__).parent, Path(np.__file__).parent]
    needed.append(Path(os.__file__).parent)
    for path in needed:
        if not _readable_by_all(path):
            return None, f"{me} ({WORKER_USER!r} cannot read {path})"
    return (entry.pw_uid, entry.pw_gid), WORKER_USER


@functools.cache
def pid_namespace(user: tuple[int, int] | None) -> tuple[str, ...]:
    """The command prefix that starts the worker in a PID namespace of its own, or ``()``.

    In its own PID namespace the worker sees no process of the grader's: ``os.getppid()`` is 0
    and no signal it sends can reach the grader; it leaves the process group of ``unshare``
    (:func:`worker.leave_supervisor_group`), so ``kill(0, ...)`` reaches only the namespace,
    whose init (the worker) ignores it. Root can create one directly, another user
    through a user namespace (where the kernel allows them). Tried once per process, as the
    worker's ``user`` (``(uid, gid)``; None: the grader's own).
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    prefix = [unshare, "--pid", "--fork", "--kill-child"]
    if user is not None or os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    as_user = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
    try:
        done = subprocess.run([*prefix, "--", "true"], capture_output=True, timeout=10, check=False, **as_user)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (*prefix, "--") if done.returncode == 0 else ()


def _kill(process: subprocess.Popen) -> None:
    """Kill the worker and anything it started: its process group (it leads one), or, in a PID
    namespace, ``unshare``'s, whose death ends the worker (``--kill-child``) and its namespace."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def decode(value):
    """A worker's encoded tensor (``{"npy": base64}``) as a tensor; a type name stays a string."""
    if isinstance(value, dict) and isinstance(value.get("npy"), str):
        array = np.load(io.BytesIO(base64.b64decode(value["npy"])), allow_pickle=False)
        return torch.from_numpy(np.array(array))
    return value if isinstance(value, str) else None


def _judge(job: _Job, outcome: _Outcome, event: dict) -> None:
    """Record one finished case: compare the worker's tensors with the reference, computed here."""
    question, index = event["question"], event["index"]
    case = job.cases[question][index]
    result = event.get("result") if isinstance(event.get("result"), dict) else {}
    uses = [str(u) for u in event.get("forbidden") or []][:20]
    if uses:
        known = outcome.forbidden.setdefault(question, [])
        known.extend(u for u in uses if u not in known)
    if "missing" in result:
        outcome.problems[(question, index)] = [str(result["missing"])]
        return
    if "skipped" in result and case.extra:
        outcome.skipped[(question, index)] = str(result["skipped"])
        outcome.problems[(question, index)] = []
        return
    actual = {"raised": result.get("raised")}
    if isinstance(result.get("tensors"), dict):
        actual["tensors"] = {str(k): decode(v) for k, v in result["tensors"].items()}
    expected = reference_results(case, case_generator(question, index, job.seed))
    try:
        outcome.problems[(question, index)] = compare_results(actual, expected)
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. an array numpy cannot compare
        outcome.problems[(question, index)] = [f"result not comparable: {type(exc).__name__}: {exc}"]


def _start(job: _Job, pending: list[tuple[str, int]]) -> tuple[subprocess.Popen, int]:
    """A worker for ``pending``, in its own session (as ``job.user`` when set); returns it and the result pipe."""
    read_fd, write_fd = os.pipe()
    command = [*job.isolation, sys.executable, "-m", worker.__name__, str(job.path), str(write_fd), str(job.seed)]
    command += [str(job.memory_limit), *_plan_arguments(pending)]
    python_path = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env["HOME"] = str(job.path.parent)  # not the grader's home: nothing of it for the submission to read
    user = {"user": job.user[0], "group": job.user[1], "extra_groups": []} if job.user else {}
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=job.capture,
        stderr=subprocess.STDOUT,
        pass_fds=(write_fd,),
        start_new_session=True,
        cwd=job.path.parent,
        env=env,
        **user,
    )
    os.close(write_fd)
    return process, read_fd


@dataclass
class _Progress:
    """Where one worker is: the case it runs, since when, and the unread part of its channel."""

    current: tuple[str, int] | None = None
    ready: bool = False
    deadline: float = 0.0
    output_at_start: int = 0
    buffer: bytearray = field(default_factory=bytearray)


def _handle(job: _Job, outcome: _Outcome, progress: _Progress, event: dict) -> None:
    kind = event["event"]
    if kind == "import_error":
        outcome.import_error = str(event["error"])
    elif kind == "ready":
        progress.ready, progress.deadline = True, float("inf")
        uses = [str(u) for u in event.get("forbidden") or []][:20]
        outcome.forbidden.setdefault("import", []).extend(u for u in uses if u not in outcome.forbidden["import"])
    elif kind == "start":
        progress.current = (event["question"], event["index"])
        progress.deadline = time.monotonic() + job.case_timeout
        progress.output_at_start = _reported_output(event, job.capture)
    elif kind == "done":
        _judge(job, outcome, event)
        printed = _reported_output(event, job.capture) - progress.output_at_start
        if printed > job.output_limit:
            outcome.problems[progress.current].append(f"printed {printed} bytes (limit {job.output_limit})")
        question = progress.current[0]
        outcome.seconds[question] = outcome.seconds.get(question, 0.0) + float(event.get("seconds") or 0.0)
        progress.current, progress.deadline = None, float("inf")


def _lose(outcome: _Outcome, progress: _Progress, reason: str) -> tuple[str, int] | None:
    """The worker is gone: fail the case it ran (or the import) with ``reason``."""
    if progress.current is not None:
        outcome.problems[progress.current] = [reason]
    elif not outcome.import_error:
        outcome.import_error = reason
    return progress.current


def _run_worker(job: _Job, pending: list[tuple[str, int]], outcome: _Outcome) -> tuple[str, int] | None:
    """Run the pending cases in one worker until it finishes, hangs or dies.

    Records every finished case in ``outcome``; returns the case that hung or ended the
    process (already recorded as failed), or None when the worker got through the plan.
    """
    process, read_fd = _start(job, pending)
    selector = selectors.DefaultSelector()
    selector.register(read_fd, selectors.EVENT_READ)
    progress = _Progress(deadline=time.monotonic() + job.import_timeout)
    try:
        while True:
            size = os.fstat(job.capture.fileno()).st_size
            if progress.current is not None and size - progress.output_at_start > job.output_limit:
                _kill(process)  # a flood of output: stop it now rather than fill the disk
                return _lose(outcome, progress, f"printed more than {job.output_limit} bytes")
            if time.monotonic() >= progress.deadline:
                _kill(process)
                if progress.current is None:
                    return _lose(outcome, progress, f"importing the submission took more than {job.import_timeout:g} s")
                return _lose(outcome, progress, f"timed out: no result after {job.case_timeout:g} s")
            if not selector.select(min(progress.deadline - time.monotonic(), _POLL_SECONDS)):
                continue
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:  # the worker exited
                code = process.wait()
                if progress.current is None and (progress.ready or outcome.import_error):
                    return None
                where = "during this case" if progress.current else "while importing the submission"
                return _lose(outcome, progress, f"the process ended {where} (exit code {code})")
            progress.buffer += chunk
            if len(progress.buffer) > MAX_EVENT_BYTES:
                _kill(process)
                return _lose(outcome, progress, f"the worker sent more than {MAX_EVENT_BYTES} bytes for one case")
            while (end := progress.buffer.find(b"\n")) >= 0:
                line = bytes(progress.buffer[:end])
                del progress.buffer[: end + 1]
                try:
                    _handle(job, outcome, progress, json.loads(line))
                except (ValueError, KeyError, TypeError, AttributeError):
                    _kill(process)  # only the submission could have written this
                    return _lose(outcome, progress, "the submission wrote into the grader's result channel")
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


def _private_copy(path: Path) -> Path:
    """A read-only copy of the submission in a fresh folder any user can read (the worker may run
    as ``nobody``, who cannot read the grader's temporary folders or write beside the original)."""
    folder = Path(tempfile.mkdtemp(prefix="grading."))
    folder.chmod(0o755)
    copy = folder / path.name
    shutil.copyfile(path, copy)
    copy.chmod(0o444)
    return copy


def _run_all(job: _Job, pending: list[tuple[str, int]], outcome: _Outcome) -> None:
    """Workers until every pending case has a verdict (a lost case costs one restart)."""
    lost: dict[str, int] = {}
    while pending and outcome.import_error is None:
        lost_case = _run_worker(job, pending, outcome)
        if lost_case is not None:
            question = lost_case[0]
            lost[question] = lost.get(question, 0) + 1
            if lost[question] >= MAX_LOST_PROCESSES:  # abandon the rest of that question
                reason = f"not run: {question} abandoned after {MAX_LOST_PROCESSES} cases hung or ended the process"
                for case in pending:
                    if case[0] == question and case not in outcome.problems:
                        outcome.problems[case] = [reason]
        pending = [c for c in pending if c not in outcome.problems]
        if lost_case is None and pending and outcome.import_error is None:
            outcome.import_error = "the worker process ended between cases, before every case ran"
    for case in pending:
        outcome.problems[case] = [f"the submission did not import: {outcome.import_error}"]


def grade_submission(
    path: str | os.PathLike[str],
    questions: list[str] | None = None,
    seed: int = SEED,
    case_timeout: float = DEFAULT_CASE_TIMEOUT,
    import_timeout: float = DEFAULT_IMPORT_TIMEOUT,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
) -> dict:
    """Grade the layers file at ``path`` on the selected questions (default: all); see the module docstring."""
    path = Path(path).resolve()
    selected = select_questions(questions or ["all"])
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected a layers .py file (--submissions grades a folder)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: submission not found")
    if case_timeout <= 0 or import_timeout <= 0 or memory_limit <= 0:
        raise ValueError("the case and import time limits and the memory limit must be positive")
    source = path.read_text(encoding="utf-8", errors="replace")
    cases = {q: question_cases(q, seed) for q in selected}
    pending = [(q, i) for q in selected for i in range(len(cases[q]))]
    outcome = _Outcome()
    user, user_name = worker_user()
    isolation = pid_namespace(user)
    copy = _private_copy(path)
    try:
        with tempfile.TemporaryFile() as capture:
            job = _Job(copy, cases, seed, case_timeout, import_timeout, output_limit, memory_limit, user, capture)
            job.isolation = isolation
            _run_all(job, pending, outcome)
            sample = _output_sample(capture)
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)
    static = inspect_source(source, {QUESTIONS[q].layer: q for q in QUESTIONS})
    results = {q: question_result(q, cases[q], outcome, static) for q in selected}
    results["total"] = sum(results[q]["score"] for q in selected)
    results["max_total"] = sum(results[q]["max"] for q in selected)
    results["submission"] = str(path)
    results["import_error"] = outcome.import_error
    results["forbidden_uses"] = all_uses(static, outcome)
    results["output_sample"] = sample
    namespace = "its own PID namespace" if isolation else "no PID namespace of its own (no unshare)"
    results["sandbox"] = {"user": user_name, "isolation": namespace, "memory_limit_mib": memory_limit}
    return results
