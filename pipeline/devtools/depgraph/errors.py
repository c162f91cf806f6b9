"""The one exception of the checker: the analysis itself failed, as opposed to a finding."""

from __future__ import annotations


class DepGraphError(RuntimeError):
    """The analysis itself failed (an unparsable source file, an unreadable params file)."""
