"""Timing on a shared machine: interleaved repeats, min and median, and a reliability verdict.

The benchmark stages run inside ``dvc repro``, right after training stages and next to
whatever else the machine is doing. Three things keep their numbers honest there:

* **Interleaving.** The sides being compared run in rounds, each side once per round
  (A, B, A, B, ...), instead of all of A and then all of B, so a slow period hits every side
  alike instead of one. By default every other round runs in reverse order (A, B, B, A, A,
  B, ...): then no side always runs first (or always right after a particular other side),
  and a steady drift (the machine warming up, a load that ramps up or down) averages out
  across the sides too. ``alternate=False`` gives the plain A, B, A, B.
* **Minimum and median.** Background load only ever adds time, so the fastest of several
  runs is the least disturbed one: ratios are quoted from the per-side minimums, and also
  from the medians (the typical run). The *spread* of a side, median / minimum, says how
  disturbed its runs were.
* **A verdict.** The 1-minute load average and the number of cores are recorded before and
  after, and :func:`judge` marks the result unreliable when the machine was busy (the rule is
  in its docstring). A verdict is printed and written, never a silent failure: the numbers
  are still the best this run could get.

Nothing here imports torch or the pipeline; the clock, the load average and ``sleep`` can be
replaced (the tests drive it with fakes).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

SPREAD_LIMIT = 1.3  # median / minimum above this for any side: its runs were disturbed
LOAD_SLACK = 0.5  # load (runnable tasks) tolerated beyond the cores the benchmark leaves free

Measured = Callable[[], "float | None"]


def run_order(sides: Sequence[str], repeats: int, alternate: bool = True) -> list[str]:
    """The order :func:`interleave` runs ``sides`` in: ``repeats`` rounds, each side once per round.

    >>> run_order("AB", 3)
    ['A', 'B', 'B', 'A', 'A', 'B']
    >>> run_order("AB", 3, alternate=False)
    ['A', 'B', 'A', 'B', 'A', 'B']
    """
    order: list[str] = []
    for i in range(repeats):
        order += list(sides)[::-1] if alternate and i % 2 == 1 else list(sides)
    return order


def interleave(
    sides: Mapping[str, Measured],
    repeats: int,
    warmup: int = 0,
    alternate: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of each run of each side, the sides interleaved as in :func:`run_order`.

    ``warmup`` untimed rounds come first (in the same interleaved order). A side that
    returns a number reports its own seconds (e.g. an epoch that times only its training
    steps, not the set-up or evaluation around them); one that returns ``None`` is timed
    by ``clock`` around the call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for name in run_order(list(sides), warmup, alternate):
        sides[name]()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for name in run_order(list(sides), repeats, alternate):
        start = clock()
        reported = sides[name]()
        elapsed = clock() - start
        times[name].append(float(reported) if reported is not None else elapsed)
    return times


def summarize(runs: Sequence[float]) -> dict:
    """``min_s``, ``median_s``, ``spread`` (median / min) and the runs themselves (``runs_s``)."""
    if not runs:
        raise ValueError("no runs to summarize")
    lo, mid = min(runs), statistics.median(runs)
    return {"min_s": lo, "median_s": mid, "spread": mid / lo if lo > 0 else float("inf"), "runs_s": list(runs)}


def cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_state(loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg) -> dict:
    """The load averages (1, 5, 15 minutes) and the core count, now."""
    try:
        load = [float(x) for x in loadavg()]
    except OSError:  # not available on this platform
        load = []
    return {"load_average": load, "cores": cores()}


def load_threshold(n_cores: int, threads: int, slack: float = LOAD_SLACK) -> float:
    """The 1-minute load of *other* work above which the machine counts as busy: the cores the
    benchmark leaves free (``cores - threads``, at least 0) plus ``slack``. 0.5 on 2 cores with 2 threads."""
    return max(n_cores - threads, 0) + slack


def judge(
    before: Mapping,
    after: Mapping,
    threads: int,
    spreads: Mapping[str, float],
    spread_limit: float = SPREAD_LIMIT,
    slack: float = LOAD_SLACK,
) -> tuple[bool, str]:
    """``(reliable, note)`` for a run, from :func:`machine_state` before and after and the spreads.

    The rule (a run is unreliable when any of these holds):

    1. **busy before**: the 1-minute load average before the run is above
       :func:`load_threshold` (``max(cores - threads, 0) + 0.5``): other work was already using
       more than the cores the benchmark leaves free;
    2. **busy after**: the 1-minute load average after the run, less the benchmark's own
       ``threads`` (which it contributes itself while it runs), is above the same threshold.
       Lenient on purpose: it only catches load that the benchmark cannot account for;
    3. **disturbed runs**: any side's spread (median / minimum) is above ``spread_limit`` (1.3).

    The 1-minute average decays with a time constant of one minute, so right after a
    training stage it still counts that stage for a minute or two (see ``--settle``).
    """
    n_cores = int(before.get("cores") or after.get("cores") or 1)
    threshold = load_threshold(n_cores, threads, slack)
    problems = []
    load_before = (before.get("load_average") or [None])[0]
    load_after = (after.get("load_average") or [None])[0]
    if load_before is None or load_after is None:
        problems.append("load average unavailable on this platform")
    else:
        if load_before > threshold:
            problems.append(
                f"busy before: 1-min load average {load_before:.2f} > {threshold:.2f} "
                f"(free cores {max(n_cores - threads, 0)} + slack {slack:g})"
            )
        if load_after - threads > threshold:
            problems.append(
                f"busy after: 1-min load average {load_after:.2f} - {threads} own threads "
                f"= {load_after - threads:.2f} > {threshold:.2f}"
            )
    noisy = {name: s for name, s in spreads.items() if s > spread_limit}
    if noisy:
        worst = ", ".join(f"{name} {s:.2f}" for name, s in sorted(noisy.items(), key=lambda kv: -kv[1])[:3])
        problems.append(
            f"disturbed runs: median / min above {spread_limit:g} for {len(noisy)} of {len(spreads)} ({worst})"
        )
    if problems:
        return False, "; ".join(problems)
    load_text = (
        f"1-min load average {load_before:.2f} before, {load_after:.2f} after" if load_before is not None else ""
    )
    return True, (
        f"calm: {load_text} (threshold {threshold:.2f} + {threads} own threads after); "
        f"every median / min <= {spread_limit:g}"
    )


def wait_for_calm(
    max_wait: float,
    threshold: float,
    loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    poll: float = 5.0,
) -> float:
    """Wait (at most ``max_wait`` seconds) until the 1-minute load average is at most ``threshold``;
    returns the seconds waited. Meant for the load a just-finished stage leaves in the average."""
    start = clock()
    while max_wait > 0 and loadavg()[0] > threshold:
        waited = clock() - start
        if waited >= max_wait:
            break
        sleep(min(poll, max_wait - waited))
    return clock() - start


def verdict_line(reliable: bool, note: str) -> str:
    """The printed form of :func:`judge`'s verdict."""
    return f"reliable: {'yes' if reliable else 'NO'} ({note})"
