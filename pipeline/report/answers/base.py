"""What every answer module shares: the :class:`Answer`, the :class:`Reader` of the stages' files,
small lookups over those files, and the registry of measured sentence builders.

A builder is a function ``(inputs, **arguments) -> (text, sources) | None`` registered under its
own name with :func:`builder`; ``references/answers/<assignment>.yaml`` picks it by that name and
gives its arguments (which variant, which comparison), so no builder names a variant. None means
a file it needs is missing (or older than its reader): the question is then left out, never
answered with a guess.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from pipeline.core.config import ConfigError, section
from pipeline.core.params import Params, VerdictConfig


class Reader(Protocol):
    def json(self, rel: str) -> Any | None: ...

    def text(self, rel: str) -> str | None: ...

    @property
    def root(self) -> Path: ...  # the repository: references/answers/ is read from it

    @property
    def params(self) -> Params: ...  # which variants and comparisons an answer may name

    @property
    def verdicts(self) -> VerdictConfig: ...  # params.yaml ``verdicts``: the bars a sentence needs


@dataclass(frozen=True)
class Answer:
    question: str  # the handout's own id, e.g. "5b"
    asked: str  # what the handout asks, in brief
    text: str  # Markdown; None-free: a missing input gives no Answer at all
    sources: tuple[str, ...]  # files under reports/ the text was computed from


Built = tuple[str, tuple[str, ...]]  # a builder's text and the files under reports/ it read
Builder = Callable[..., Built | None]

BUILDERS: dict[str, Builder] = {}


def builder(fn: Builder) -> Builder:
    """Register ``fn`` under its own name, the name the answers' YAML files choose it by."""
    if fn.__name__ in BUILDERS:
        raise ValueError(f"two answer builders are named {fn.__name__!r}")
    BUILDERS[fn.__name__] = fn
    return fn


def table(text: str | None, *columns: str) -> list[dict[str, str]] | None:
    """The CSV's rows, or None when it is missing, empty or lacks one of ``columns``."""
    rows = None if text is None else list(csv.DictReader(io.StringIO(text)))
    return rows if rows and all(c in rows[0] for c in columns) else None


def dotted(mapping: Any, path: str) -> Any:
    """``mapping["a"]["b"]`` for ``"a.b"``; KeyError naming the path when a part is missing (the walk
    of :func:`pipeline.core.config.section`, whose error speaks of params.yaml, which a report file is not)."""
    try:
        return section(mapping, path)
    except ConfigError:
        raise KeyError(path) from None


def has(obj: Any, *paths: str) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``obj`` is a mapping holding every ``a.b`` path (a file older than its reader may lack one);
    the type checker then knows it is a mapping."""
    if not isinstance(obj, Mapping):
        return False
    try:
        for path in paths:
            dotted(obj, path)
    except KeyError:
        return False
    return True


def layer_rows(summary: Any) -> list[dict[str, Any]]:
    """The layers of an ``analysis/layer_summary.json`` as ``{type, module, shape, params}``; [] when absent."""
    layers = summary.get("layers") if isinstance(summary, Mapping) else None
    if not isinstance(layers, list) or not all(has(r, "layer", "module", "output_shape", "params") for r in layers):
        return []
    return [
        {"type": str(r["layer"]).rsplit("-", 1)[0], "module": r["module"], "shape": list(r["output_shape"] or []),
         "params": int(r["params"])}
        for r in layers
    ]  # fmt: skip
