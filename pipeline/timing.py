"""Run a command and record its wall time as JSON (``make repro-timed``).

    python -m pipeline.timing --out reports/timing.json -- dvc repro

Writes ``{"dvc_repro_seconds": ..., "stages": {...}, "date": ..., "command": ...,
"cpus": ...}`` (the first key is ``--key``) atomically, and only when the command
succeeds; the exit status is the command's. ``date`` is when the command finished, in UTC.

``stages`` holds each DVC stage's wall seconds (keyed by stage name): the command's
output is passed through line by line, and a stage runs from DVC's ``Running stage
'<name>':`` line to the next one (or to the end), so a stage's time includes DVC's own
hashing and lock-file update after it. Commands that print no such lines give ``{}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pipeline.core.io import write_json

STAGE_START = re.compile(r"^Running stage '([^']+)':")


def timed_run(command: list[str], out=None) -> tuple[int, float, dict[str, float]]:
    """Run ``command``; return (exit status, wall seconds, {stage: wall seconds}).

    Its stdout and stderr are copied, line by line, to ``out`` (default: this process's
    stdout) as they arrive, so a long run shows its progress as before.
    """
    out = out or sys.stdout
    start = time.perf_counter()
    marks: list[tuple[str, float]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = STAGE_START.match(line)
            if found:
                marks.append((found.group(1), time.perf_counter()))
            out.write(line)
            out.flush()
        status = proc.wait()
    end = time.perf_counter()
    ends = [t for _, t in marks[1:]] + [end]
    stages = {name: round(stop - begin, 1) for (name, begin), stop in zip(marks, ends)}
    return status, end - start, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out", type=Path, default=Path("reports/timing.json"), help="JSON to write (default: %(default)s)"
    )
    parser.add_argument("--key", default="dvc_repro_seconds", help="name of the seconds field (default: %(default)s)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to time, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (usage: python -m pipeline.timing --out FILE -- COMMAND ...)")
    try:
        status, seconds, stages = timed_run(command)
    except FileNotFoundError:
        print(f"error: {command[0]}: command not found", file=sys.stderr)
        return 127
    if status != 0:
        print(
            f"error: `{shlex.join(command)}` exited with status {status} after {seconds:.1f} s; {args.out} not written",
            file=sys.stderr,
        )
        return status
    write_json(
        args.out,
        {
            args.key: round(seconds, 1),
            "stages": stages,
            "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "command": shlex.join(command),
            "cpus": os.cpu_count(),
        },
    )
    print(f"{shlex.join(command)}: {seconds:.1f} s wall -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
