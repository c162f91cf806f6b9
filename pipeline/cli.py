"""What every stage entry point shares: logging set-up and one-line errors.

A stage's ``main()`` does its work inside :func:`run_stage`; an expected failure
(bad params, bad data, a missing input: :data:`EXPECTED_ERRORS`) ends the process with
exit code 1 and a single ``error: ...`` line naming the file or key, instead of a
traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from pipeline.errors import PipelineError

# The project's own errors and the file-system failures a user causes and can fix. Any
# other exception (a KeyError, a TypeError, a ValueError from torch) is a bug in this code:
# it keeps its traceback instead of becoming a one-line message that hides it.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    PipelineError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def run_stage(work: Callable[[], None]) -> None:
    """Run ``work``; turn expected errors into ``error: <message>`` and exit status 1."""
    setup_logging()
    try:
        work()
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
