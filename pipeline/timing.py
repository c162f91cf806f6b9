"""Run a command and record its wall time as JSON (``make repro-timed``).

    python -m pipeline.timing --out reports/timing.json -- dvc repro

Writes ``{"dvc_repro_seconds": ..., "date": ..., "command": ..., "cpus": ...}``
(the key is ``--key``) atomically, and only when the command succeeds; the exit
status is the command's. ``date`` is when the command finished, in UTC.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pipeline.io import write_json


def timed_run(command: list[str]) -> tuple[int, float]:
    """Run ``command`` (inheriting stdin/stdout/stderr); return (exit status, wall seconds)."""
    start = time.perf_counter()
    status = subprocess.call(command)
    return status, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/timing.json"), help="JSON to write (default: %(default)s)")
    parser.add_argument("--key", default="dvc_repro_seconds", help="name of the seconds field (default: %(default)s)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to time, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (usage: python -m pipeline.timing --out FILE -- COMMAND ...)")
    try:
        status, seconds = timed_run(command)
    except FileNotFoundError:
        print(f"error: {command[0]}: command not found", file=sys.stderr)
        return 127
    if status != 0:
        print(f"error: `{shlex.join(command)}` exited with status {status} after {seconds:.1f} s; "
              f"{args.out} not written", file=sys.stderr)
        return status
    write_json(args.out, {
        args.key: round(seconds, 1),
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": shlex.join(command),
        "cpus": os.cpu_count(),
    })
    print(f"{shlex.join(command)}: {seconds:.1f} s wall -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
