"""The one annotation walker, and the schemas of the files the training stages write.

:func:`conform` walks a value against a type annotation (scalars by :func:`scalar_matches`,
lists, mappings, unions, ``Annotated`` ranges, ``TypedDict`` and dataclass records) and names the
key that is off: params.yaml (:func:`pipeline.core.config.coerce`) and the JSON files under
``reports/`` (:func:`check`) share it, so a value the parameters accept is a value the reports
accept. A ``TypedDict`` lists the keys a reader relies on and their types; a producer may write
more keys. Each producer owns the schema of what it writes: here those of ``train@`` and
``seed_study@`` (which every later stage reads), the others beside their producers
(``inference/``, ``analysis/``, ``grading/``); :mod:`pipeline.report.schemas` says which file
has which. Written by hand rather than with a validation library: keys and types of plain JSON
and YAML are what the standard ``typing`` introspection covers in a page.
"""

# No ``from __future__ import annotations`` here: TypedDict sees NotRequired[...] only in
# evaluated annotations (with strings it counts every key as required on Python 3.11).
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, NotRequired, Required, TypedDict

from pipeline.core.errors import PipelineError


class SchemaError(PipelineError):
    """A report input whose content does not have the shape its schema says."""


@dataclass(frozen=True)
class Range:
    """The values a number may take (``Annotated[float, Range(...)]``); every float must be finite anyway."""

    low: float
    high: float
    what: str


# JSON reads NaN and Infinity, and a hand-edited 1.7 is a float: the report showed "nan%" and "170.00%".
Fraction = Annotated[float, Range(0.0, 1.0, "a fraction")]  # accuracies, rates, p-values: 0.984 = 98.4%
Points = Annotated[float, Range(-100.0, 100.0, "a difference in percentage points")]
NonNegative = Annotated[float, Range(0.0, math.inf, "a non-negative number")]  # losses, seconds


# --------------------------------------------------------------------------- train@<variant>


class Metrics(TypedDict):
    """``<variant>/metrics.json``: what experiments compare (DVC metrics)."""

    test_accuracy: NotRequired[Fraction]  # absent for an unlabelled test split (the course's CSE 849 zip) ...
    test_loss: NotRequired[NonNegative]
    test_labelled: NotRequired[bool]  # ... which says so: false
    val_accuracy: NotRequired[Fraction]  # variants with a validation split
    val_loss: NotRequired[NonNegative]


class FirstBatch(TypedDict):
    images_shape: list[int]
    labels_shape: list[int]
    mean: float
    std: float


class TrainingFacts(TypedDict):
    """``<variant>/training.json``: facts of the run that do not vary between machines."""

    epochs: int
    checkpoint_epoch: int
    parameters: int
    train_examples: int
    first_batch: NotRequired[FirstBatch]


class Timings(TypedDict):
    """``<variant>/timings.json``: this machine's training time, and what picked its kernels
    (``training.setup.kernel_facts``; absent from runs made before it was recorded)."""

    train_seconds: NonNegative
    train_images_per_second: NonNegative
    device: NotRequired[str]  # cpu or cuda
    cpu_capability: NotRequired[str]  # torch.backends.cpu.get_cpu_capability()
    threads: NotRequired[int]
    torch: NotRequired[str]  # torch.__version__


# --------------------------------------------------------------------------- seed_study@<variant>


class Spread(TypedDict):
    mean: float
    std: float | None  # None for a single seed
    min: float
    max: float


class SeedRuns(TypedDict):
    seeds: list[int]
    test_accuracy: Spread


class SeedRun(TypedDict):
    seed: int
    test_accuracy: Fraction
    test_loss: NonNegative
    train_seconds: float | None  # None for the first seed: its run is train@<variant>'s


class SeedStudyRuns(SeedRuns):
    """``seed_study/runs/<variant>.json`` (seed_study@<variant>): one variant's runs over the random seeds."""

    variant: str
    first_run_from: str
    runs: list[SeedRun]


# --------------------------------------------------------------------------- the walk

SCALAR_NAMES: dict[type, str] = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def scalar_matches(value: Any, tp: type) -> bool:
    """Whether ``value`` may stand for a ``tp``: a float takes an int (YAML and JSON both write ``1.0`` back
    as ``1``) but not a bool; an int refuses a bool (Python's ``True`` is an int, a user's ``true`` is not a count).
    """
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Annotated:
        return _type_name(typing.get_args(tp)[0])
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _join(key: str, name: object) -> str:
    return f"{key}.{name}" if key else str(name)


class Wording:
    """How :func:`conform` reports a mismatch: the report files' way (a JSON type name, a value cut
    to 60 characters). :class:`pipeline.core.config.ParamsWording` is params.yaml's."""

    error: type[PipelineError] = SchemaError
    mapping = "an object"  # what a dict[...] annotation asks for
    mapping_type: type[Mapping[Any, Any]] = dict
    not_finite = "expected a finite number"

    def fail(self, key: str, text: str) -> NoReturn:
        raise self.error(f"{key}: {text}" if key else text)

    def got(self, value: Any) -> str:  # what a list or mapping got instead
        return type(value).__name__

    def scalar(self, tp: type, value: Any) -> str:
        return f"expected {_type_name(tp)}, got {value!r:.60}"

    def union(self, value: Any, tp: Any, key: str, first: PipelineError) -> Any:  # no option of tp matches
        self.fail(key, f"expected {' or '.join(_type_name(a) for a in typing.get_args(tp))}, got {value!r:.60}")

    def record(self, value: Any, tp: type, key: str) -> Any:  # a dataclass: report files have none
        raise TypeError(f"unsupported annotation {_type_name(tp)} for {key}")


def conform(value: Any, tp: Any, key: str, wording: Wording) -> Any:
    """``value`` checked against ``tp``, an int made a float where a float is expected; the first mismatch
    raises ``wording.error``, naming ``key``. One walk for params.yaml (:func:`pipeline.core.config.coerce`)
    and the report files (:func:`check`): a value the parameters accept is a value the reports accept."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if typing.is_typeddict(tp):
        return _typed_dict(value, tp, key, wording)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return wording.record(value, tp, key)
    if origin in (NotRequired, Required):  # kept by get_type_hints(include_extras=True), as Annotated is
        return conform(value, args[0], key, wording)
    if origin is Annotated:
        converted = conform(value, args[0], key, wording)
        bounds = next((m for m in tp.__metadata__ if isinstance(m, Range)), None)
        if bounds is not None and not bounds.low <= value <= bounds.high:
            wording.fail(key, f"expected {bounds.what} in [{bounds.low:g}, {bounds.high:g}], got {value!r:.60}")
        return converted
    if origin in (typing.Union, types.UnionType):
        return _union(value, tp, key, wording)
    if origin is list:
        if not isinstance(value, list):
            wording.fail(key, f"expected a list, got {wording.got(value)}")
        return [conform(item, args[0], f"{key}[{i}]", wording) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, wording.mapping_type):
            wording.fail(key, f"expected {wording.mapping}, got {wording.got(value)}")
        return {str(k): conform(item, args[1], _join(key, k), wording) for k, item in value.items()}
    if tp is type(None):
        return None if value is None else wording.fail(key, f"expected null, got {value!r:.60}")
    if tp not in SCALAR_NAMES:
        raise TypeError(f"unsupported annotation {_type_name(tp)} for {key}")  # a bug in a schema, not in a file
    if not scalar_matches(value, tp):  # a float takes an int, nothing takes a bool
        wording.fail(key, wording.scalar(tp, value))
    # No setting means infinity or NaN (`std: .inf` zeroes every input); no writer of a report file writes one.
    if tp is float and not math.isfinite(value):
        wording.fail(key, f"{wording.not_finite}, got {value!r}")
    return float(value) if tp is float else value


def _typed_dict(value: Any, tp: Any, key: str, wording: Wording) -> Any:
    """A JSON object with the keys of the TypedDict ``tp`` (more keys are allowed), each of its type."""
    if not isinstance(value, dict):
        wording.fail(key, f"expected an object ({tp.__name__}), got {type(value).__name__}")
    for name in sorted(tp.__required_keys__ - set(value)):
        wording.fail(_join(key, name), "missing")
    for name, field_tp in typing.get_type_hints(tp, include_extras=True).items():
        if name in value:
            conform(value[name], field_tp, _join(key, name), wording)
    return value


def _union(value: Any, tp: Any, key: str, wording: Wording) -> Any:
    """``value`` as the first option of ``tp`` it matches."""
    errors = []
    for option in typing.get_args(tp):
        try:
            return conform(value, option, key, wording)
        except wording.error as exc:
            errors.append(exc)
    return wording.union(value, tp, key, errors[0])


def check(value: Any, schema: Any, where: str) -> Any:
    """``value`` if it has the shape of ``schema``; else :class:`SchemaError` naming ``where`` and the key."""
    try:
        conform(value, schema, "", Wording())
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    return value
