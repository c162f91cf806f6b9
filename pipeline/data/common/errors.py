"""The one exception class every data reader, converter and downloader raises.

A ``DataError`` message always names the file (and, where it applies, the line,
row or column) so that the stage entry points can print it as a one-line
``error: ...`` and exit non-zero.
"""

from __future__ import annotations

from pipeline.errors import PipelineError


class DataError(PipelineError):
    """Bad or missing input data: corrupt file, wrong format, failed checksum, no source."""
