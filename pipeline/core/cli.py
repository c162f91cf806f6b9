"""What every stage entry point shares: its shape, logging set-up and one-line errors.

Every stage module ends the same way::

    main = stage_main(__doc__, [VARIANT, MODELS_DIR, path_arg("--out", "reports", "output folder")],
                      lambda args: run(args.variant, args.models_dir, args.out))

:func:`stage_main` builds the parser from the argument specs (the common ones are defined
here once), parses ``argv`` and does the work inside :func:`run_stage`: an expected failure
(bad params, bad data, a missing input: :data:`EXPECTED_ERRORS`) ends the process with exit
code 1 and a single ``error: ...`` line naming the file or key, instead of a traceback.

Exit status, the same for every command (``cnn-pipeline <command>``, ``python -m
pipeline.stages.<stage>``): 0 done; 1 an error the user can fix (a missing file, bad
params or data: one ``error:`` line); 2 a usage error (an unknown option, a missing
argument: argparse's usage message); 3 ``autograde`` only: graded, below full marks;
130 interrupted (Ctrl-C: one ``interrupted:`` line; an interrupted training resumes when rerun).
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.io import DISK_ERRNOS

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


def run_stage(work: Callable[[], object]) -> None:
    """Run ``work``; turn expected errors into ``error: <message>`` and exit status 1, and
    Ctrl-C into one ``interrupted: ...`` line and exit status 130."""
    setup_logging()
    try:
        work()
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # a full, read-only or failing disk met outside pipeline.core.io's writers
        if exc.errno not in DISK_ERRNOS:
            raise
        print(f"error: {exc.filename or 'a file'}: {exc.strerror} ({errno.errorcode[exc.errno]})", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:  # Ctrl-C: one line (training says where it stopped), the shell's 130
        print(f"interrupted: {exc}" if str(exc) else "interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(130)


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


VARIANT = arg("variant", help="a variant: a name under variants in params.yaml")
PARAMS = path_arg("--params", "params.yaml", "parameter file")
MODELS_DIR = path_arg("--models-dir", "models", "folder of the checkpoints <variant>.pt")
REPORTS_DIR = path_arg("--reports-dir", "reports", "folder of the stages' reports")
DEVICE = arg(
    "--device",
    default=None,
    help="auto (a GPU when present, else the CPU), cpu, cuda, cuda:N or mps (default: $CNN_PIPELINE_DEVICE, else auto)",
)

# reST markup of docstrings that a terminal shows literally: ``code``, :func:`name`, *emphasis*.
_REST = re.compile(r"``([^`]+)``|:[a-z]+:`~?([^`]+)`|(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])")


def plain_text(doc: str | None) -> str:
    """The first paragraph of a docstring without its reST markup: what ``--help`` shows."""
    first = (doc or "").strip().split("\n\n")[0]
    return _REST.sub(lambda m: next(g for g in m.groups() if g is not None), first)


def _module_prog() -> str | None:
    """``python -m pipeline.stages.train`` when run that way (DVC's stage commands), not ``train.py``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name}" if spec is not None and spec.name.startswith("pipeline.") else None


def stage_main(
    doc: str | None,
    arguments: Sequence[Arg],
    work: Callable[[argparse.Namespace], object],
    before: Callable[[], object] | None = None,
) -> Callable[..., None]:
    """A stage's ``main(argv=None, prog=None)``: parse ``arguments`` (description: the first
    paragraph of ``doc``, as plain text; ``prog``: the usage's program name, ``cnn-pipeline
    <command>`` when run as a sub-command), call ``before()`` (process set-up), then
    ``work(args)`` inside :func:`run_stage`."""

    def main(argv: list[str] | None = None, prog: str | None = None) -> None:
        parser = argparse.ArgumentParser(prog=prog or _module_prog(), description=plain_text(doc))
        for a in arguments:
            parser.add_argument(*a.flags, **a.options)
        args = parser.parse_args(argv)
        if before is not None:
            before()
        run_stage(lambda: work(args))

    return main
