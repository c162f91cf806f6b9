"""What every stage entry point shares: its shape, logging set-up and one-line errors.

Every stage module ends the same way::

    main = stage_main(__doc__, [VARIANT, MODELS_DIR, path_arg("--out", "reports", "output folder")],
                      lambda args: run(args.variant, args.models_dir, args.out))

:func:`stage_main` builds the parser from the argument specs (the common ones are defined
here once), parses ``argv`` and does the work inside :func:`run_stage`: an expected failure
(bad params, bad data, a missing input: :data:`EXPECTED_ERRORS`) ends the process with exit
code 1 and a single ``error: ...`` line naming the file or key, instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Arg:
    """One command-line argument: what ``ArgumentParser.add_argument`` takes, as data."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


def path_arg(flag: str, default: str | None, what: str, **options: Any) -> Arg:
    """A path option; its help says the default."""
    if default is None:
        return arg(flag, type=Path, help=what, **options)
    return arg(flag, type=Path, default=Path(default), help=f"{what} (default: %(default)s)", **options)


VARIANT = arg("variant", help="a key under `variants:` in params.yaml")
PARAMS = path_arg("--params", "params.yaml", "parameter file")
MODELS_DIR = path_arg("--models-dir", "models", "folder of the checkpoints <variant>.pt")
REPORTS_DIR = path_arg("--reports-dir", "reports", "folder of the stages' reports")


def stage_main(
    doc: str | None,
    arguments: Sequence[Arg],
    work: Callable[[argparse.Namespace], object],
    before: Callable[[], object] | None = None,
) -> Callable[[list[str] | None], None]:
    """A stage's ``main(argv=None)``: parse ``arguments`` (description: the first paragraph of
    ``doc``), call ``before()`` (process set-up), then ``work(args)`` inside :func:`run_stage`."""

    def main(argv: list[str] | None = None) -> None:
        description = (doc or "").strip().split("\n\n")[0]
        parser = argparse.ArgumentParser(description=description)
        for a in arguments:
            parser.add_argument(*a.flags, **a.options)
        args = parser.parse_args(argv)
        if before is not None:
            before()
        run_stage(lambda: work(args))

    return main
