"""Where this pipeline departs from the handouts: ``references/deviations.yaml``, checked against params.

Each entry states what the handout prescribes, what we do and why; ``params`` pins the
params.yaml values the text describes (:func:`stale_entries` lists the ones params no
longer holds, which tests/test_deviations.py requires to be none), and ``measured``
names figures in the stages' outputs that the report prints beside the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from pipeline.core.config import ConfigError, section
from pipeline.core.errors import PipelineError

DEVIATIONS = Path("references/deviations.yaml")
FIELDS = ("assignment", "topic", "handout_says", "ours", "why")


@dataclass(frozen=True)
class Measured:
    label: str
    file: str  # under reports/
    key: str  # dotted


@dataclass(frozen=True)
class Deviation:
    assignment: str  # a key of references/handout_results.yaml
    topic: str
    handout_says: str
    ours: str
    why: str
    params: dict[str, Any] = field(default_factory=dict)
    measured: tuple[Measured, ...] = ()


def load_deviations(path: str | Path = DEVIATIONS) -> list[Deviation]:
    path = Path(path)
    # Read as params.yaml is (DVC's YAML 1.2 loader): a pinned value compares with what the stages see.
    entries = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise PipelineError(f"{path}: expected a list of entries")
    out = []
    for i, entry in enumerate(entries):
        missing = [f for f in FIELDS if not isinstance(entry, Mapping) or not entry.get(f)]
        if missing:
            raise PipelineError(f"{path}: entry {i + 1}: missing {', '.join(missing)}")
        unknown = sorted(set(entry) - {*FIELDS, "params", "measured"})
        if unknown:
            raise PipelineError(f"{path}: entry {i + 1} ({entry['topic']}): unknown key {unknown[0]!r}")
        measured = tuple(Measured(**m) for m in entry.get("measured") or [])
        out.append(
            Deviation(**{f: entry[f] for f in FIELDS}, params=dict(entry.get("params") or {}), measured=measured)
        )
    return out


def stale_entries(deviations: list[Deviation], params: Mapping[str, Any]) -> list[str]:
    """One line per pinned value that params.yaml no longer holds."""
    stale = []
    for d in deviations:
        for key, value in d.params.items():
            try:
                actual = section(params, key)
            except ConfigError:
                stale.append(f"{d.topic}: {key} is not in params.yaml")
                continue
            if actual != value:
                stale.append(f"{d.topic}: {key} is {actual!r} in params.yaml, the text describes {value!r}")
    return stale
