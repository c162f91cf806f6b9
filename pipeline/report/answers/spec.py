"""``references/answers/<assignment>.yaml``: which questions an assignment's report answers, in order,
and how: fixed text, or a measured sentence builder chosen by name with its arguments.

An entry is ``question`` (the handout's id) and ``asked`` (the question in brief), then either
``text`` (a fixed textbook answer), or ``builder`` with its arguments under ``with`` (a function
registered in :data:`pipeline.report.answers.base.BUILDERS`) and an optional ``lead``, fixed text
said before the measured sentence and only with it. ``text`` with a ``builder`` is said in any
case, and the measured sentence follows when its files exist. The loader refuses what the report
could only get wrong later: an unknown builder or argument, a missing one, an argument of the
wrong type, a variant that is not in params ``variants``, a comparison not in
``analysis.comparisons``; each error names the file and the key.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from pipeline.core.errors import PipelineError
from pipeline.report.answers.base import BUILDERS

ANSWERS = Path("references/answers")  # <key>.yaml per key of references/handout_results.yaml
KEYS = ("question", "asked", "text", "lead", "builder", "with")
# Builder arguments that name what params.yaml defines: (what they name, where params defines it).
NAMED = {
    "variant": ("variant", "variants"),
    "variants": ("variant", "variants"),
    "comparison": ("comparison", "analysis.comparisons"),
}


@dataclass(frozen=True)
class Question:
    question: str  # the handout's own id, e.g. "5b"
    asked: str  # what the handout asks, in brief
    text: str = ""  # fixed: the whole answer, or what the measured sentence follows
    lead: str = ""  # fixed, said before the measured sentence and only with it
    builder: str = ""  # a name in BUILDERS; "" for a fixed answer
    arguments: Mapping[str, Any] = field(default_factory=dict)


def load_questions(path: str | Path, variants: Collection[str], comparisons: Collection[str]) -> list[Question]:
    """The file's questions, each checked against the builders and params' ``variants`` and ``comparisons``."""
    path = Path(path)
    # Read as params.yaml is (DVC's YAML 1.2 loader), as references/deviations.yaml is.
    entries = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise PipelineError(f"{path}: expected a list of questions")
    questions: list[Question] = []
    for i, entry in enumerate(entries):
        q = _question(path, i, entry)
        if any(q.question == seen.question for seen in questions):
            raise PipelineError(f"{path}: {q.question}: answered twice (its heading would be ambiguous)")
        if q.builder:
            _check_arguments(f"{path}: {q.question}.with", q.builder, q.arguments, variants, comparisons)
        questions.append(q)
    return questions


def _question(path: Path, i: int, entry: Any) -> Question:
    if not isinstance(entry, Mapping):
        raise PipelineError(f"{path}: entry {i + 1}: expected a mapping with {', '.join(KEYS)}")
    where = f"{path}: {entry.get('question', f'entry {i + 1}')}"
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise PipelineError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(KEYS)}")
    for key in ("question", "asked", "text", "lead", "builder"):
        if key in entry and not (isinstance(entry[key], str) and entry[key]):
            raise PipelineError(f"{where}.{key}: expected a non-empty string (quote an id like 2.2)")
    for key in ("question", "asked"):
        if key not in entry:
            raise PipelineError(f"{where}: missing {key}")
    if "text" not in entry and "builder" not in entry:
        raise PipelineError(f"{where}: missing text or builder (the answer says nothing)")
    if "builder" not in entry and ("lead" in entry or "with" in entry):
        raise PipelineError(f"{where}.{'lead' if 'lead' in entry else 'with'}: only meaningful with a builder")
    if "lead" in entry and "text" in entry:
        raise PipelineError(f"{where}.lead: give text (always said) or lead (said with the measurement), not both")
    name = entry.get("builder", "")
    if name and name not in BUILDERS:
        raise PipelineError(f"{where}.builder: unknown builder {name!r}; known: {', '.join(sorted(BUILDERS))}")
    arguments = entry.get("with") or {}
    if not isinstance(arguments, Mapping):
        raise PipelineError(f"{where}.with: expected a mapping of the builder's arguments")
    fields = {k: entry[k] for k in ("question", "asked", "text", "lead", "builder") if k in entry}
    frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in arguments.items()}
    return Question(**fields, arguments=frozen)


def _check_arguments(
    where: str, name: str, arguments: Mapping[str, Any], variants: Collection[str], comparisons: Collection[str]
) -> None:
    """Every argument the builder takes, none it does not, each of its annotated type; an argument of a
    :data:`NAMED` name names what params.yaml defines."""
    fn = BUILDERS[name]
    params = list(inspect.signature(fn).parameters.values())[1:]  # after the inputs
    hints = typing.get_type_hints(fn)
    known = {p.name for p in params}
    for key in arguments:
        if key not in known:
            raise PipelineError(f"{where}.{key}: {name} takes no such argument; it takes {', '.join(sorted(known))}")
    for p in params:
        if p.name not in arguments:
            if p.default is inspect.Parameter.empty:
                raise PipelineError(f"{where}.{p.name}: missing (required by {name})")
            continue
        value = arguments[p.name]
        if not _fits(value, hints[p.name]):
            shown = list(value) if isinstance(value, tuple) else value  # as the YAML wrote it
            raise PipelineError(f"{where}.{p.name}: {shown!r} is not {_describe(hints[p.name])}")
        if p.name in NAMED:
            kind, section = NAMED[p.name]
            for n in (value,) if isinstance(value, str) else value:
                if n not in (comparisons if kind == "comparison" else variants):
                    raise PipelineError(f"{where}.{p.name}: unknown {kind} {n!r} (not in params.yaml {section})")


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value has the builder's annotated type: str, int, bool, a Literal, a tuple of str."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        count = None if args[-1] is Ellipsis else len(args)
        return (
            isinstance(value, (list, tuple)) and count in (None, len(value)) and all(isinstance(v, str) for v in value)
        )
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is tuple:
        return "a list of strings" if args[-1] is Ellipsis else f"a list of {len(args)} strings"
    return f"a {hint.__name__}"
