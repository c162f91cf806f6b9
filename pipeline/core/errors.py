"""The base of the project's own exceptions: failures a user can fix.

Bad params, bad or missing data (:class:`DataError`), a foreign or broken checkpoint, an output that would
destroy an input: each raises a :class:`PipelineError` (or a subclass: ``ConfigError``,
``DataError``, ``CheckpointError``, ``TrainingDiverged``) whose message names the file,
line or key. The stage runner (:func:`pipeline.core.cli.run_stage`) prints exactly these, and
missing or unwritable files, as one line; any other exception is a bug in this code and
keeps its traceback.
"""

from __future__ import annotations


class PipelineError(ValueError):
    """A failure caused by the input, not by this code; the message says what to fix."""


class DataError(PipelineError):
    """Bad or missing input data: corrupt file, wrong format, failed checksum, no source.

    The message always names the file (and, where it applies, the line, row or column).
    """
