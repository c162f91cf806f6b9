"""The JSON files the report reads, as typed dictionaries: one schema per kind of file.

Each ``TypedDict`` lists the keys a reader relies on and their types; a producer may
write more keys (a reader never depends on one that is not listed here). :data:`SCHEMAS`
says which schema a file under ``reports/`` has, by path; :func:`check` validates a parsed
file against it and names the file and the key that is off, so a producer that changes
its output fails the report at once, naming what changed, instead of a ``KeyError`` deep
in a table. The report checks every file it reads (:meth:`pipeline.report.inputs.Inputs.json`);
``tests/test_schemas.py`` checks every committed file and that each schema still has one.

Written by hand rather than with a validation library: the checks needed are keys and
types of plain JSON, which the standard ``typing`` introspection covers in a page.
"""

# No ``from __future__ import annotations`` here: TypedDict sees NotRequired[...] only in
# evaluated annotations (with strings it counts every key as required on Python 3.11).
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, Required, TypedDict

from pipeline.core.errors import PipelineError
from pipeline.core.scalars import scalar_matches


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
    (``engine.kernel_facts``; absent from runs made before it was recorded)."""

    train_seconds: NonNegative
    train_images_per_second: NonNegative
    device: NotRequired[str]  # cpu or cuda
    cpu_capability: NotRequired[str]  # torch.backends.cpu.get_cpu_capability()
    threads: NotRequired[int]
    torch: NotRequired[str]  # torch.__version__


# --------------------------------------------------------------------------- evaluate@<variant>


class Averages(TypedDict):
    precision: Fraction
    recall: Fraction
    f1: Fraction


class ClassScores(Averages):
    support: int


class Shortcut(TypedDict):
    """Accuracy where the planted digit agrees with the label and where it disagrees."""

    agree_accuracy: Fraction | None  # None: no such test image
    agree_count: int
    disagree_accuracy: Fraction | None
    disagree_count: int
    gap_points: Points | None
    shortcut_rate: Fraction | None
    predicted_digit_rate: NotRequired[Fraction | None]


class Occluded(TypedDict):
    """One region blanked in every test image (``digit_blanked``, ``cifar_blanked``)."""

    accuracy: Fraction
    change_points: Points
    predicted_digit_rate: NotRequired[Fraction | None]


class Counterfactual(TypedDict):
    """The test images drawn again with a digit of another class."""

    accuracy: Fraction
    flip_rate: Fraction
    images: int
    predicted_digit_rate: Fraction


class Evaluation(TypedDict):
    """``<variant>/eval/metrics.json``: the kept checkpoint on the test set (on the validation
    split when the test split is unlabelled: ``val_*`` instead of ``test_*``, and ``notes``)."""

    misclassified: int
    macro: Averages
    per_class: dict[str, ClassScores]
    test_accuracy: NotRequired[Fraction]
    test_loss: NotRequired[NonNegative]
    test_examples: NotRequired[int]
    val_accuracy: NotRequired[Fraction]
    val_loss: NotRequired[NonNegative]
    val_examples: NotRequired[int]
    notes: NotRequired[list[str]]
    weighted: NotRequired[Averages]
    single_view_accuracy: NotRequired[Fraction]  # variants that average the image and its mirror
    shortcut: NotRequired[Shortcut | None]  # composite data only
    occlusion: NotRequired[dict[str, Occluded] | None]
    counterfactual: NotRequired[Counterfactual]


# --------------------------------------------------------------------------- studies and comparisons


class ComparedVariant(TypedDict):
    variant: str
    test_accuracy: Fraction
    test_loss: NonNegative
    parameters: int


class McNemar(TypedDict):
    """Both variants' predictions on the same test images, paired image by image."""

    images: int
    a_only_correct: int  # images a classifies right and b wrong
    b_only_correct: int  # and the reverse; the images both get right or wrong say nothing about a - b
    p_value: Fraction  # exact two-sided McNemar: binomial test of a_only_correct in the discordant images at 1/2


class Comparison(TypedDict):
    """``comparisons/<key>.json`` (compare@<key>): a vs b, measured."""

    title: str
    a: ComparedVariant
    b: ComparedVariant
    accuracy_diff_points: Points
    test_loss_diff: float
    parameter_ratio: float
    fair: bool  # a and b differ in the comparison's factor only (the random seed aside)
    confounds: list[str]  # every other param they differ in, "path: a-value vs b-value"
    mcnemar: McNemar
    verdict: str


class PairedDifference(TypedDict):
    """One comparison of the seed study: a - b over the same random seeds, with its t-interval."""

    key: str
    a: str
    b: str
    n: int
    seeds: list[int]
    differences_points: list[float]
    mean_points: float
    std_points: float
    ci_low_points: float
    ci_high_points: float
    confidence: float
    a_ahead: int
    b_ahead: int
    ties: int
    distinguishable: bool  # the t-interval excludes 0
    sign_test_p: float | None  # exact two-sided sign test on the seeds that are not tied; None if all are
    sign_test_min_p: float  # the smallest p a sign test can reach with these seeds (every seed one way)
    fair: bool
    confounds: list[str]
    verdict: str


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


class SeedStudySummary(TypedDict):
    """``seed_study/summary.json`` (seed_study_summary)."""

    seeds: int
    confidence: float
    alpha: float  # params verdicts.alpha: the sign test's level
    comparisons: list[PairedDifference]
    variants: dict[str, SeedRuns]


class MitigationRow(TypedDict):
    """``mitigation/<row>.json`` (mitigation@<row>): one remedy at the study's budget."""

    row: str
    variant: str
    augment: dict[str, Any]  # dataclasses.asdict(AugmentConfig): the report rebuilds it with config.build
    epochs: int
    checkpoint_epoch: int
    test_accuracy: Fraction
    test_loss: NonNegative
    val_accuracy: Fraction | None
    val_loss: NonNegative | None
    shortcut: Shortcut
    occlusion: dict[str, Occluded]
    counterfactual: Counterfactual
    train_seconds: float


class NormSummary(TypedDict):
    filters: int
    mean_cv: float
    median_cv: float
    max_cv: float
    cv_threshold: float
    class_specific_filters: int
    dead_filters: int


class FilterNorm(TypedDict):
    cv: float
    argmax_class: int
    mean_norm: float


class LayerNorms(TypedDict):
    """One conv block of ``<variant>/classwise_norms/classwise_norms.json``."""

    summary: NormSummary
    per_filter: dict[str, FilterNorm]


# --------------------------------------------------------------------------- grading and timing


class AutograderScores(TypedDict):
    """``autograder.json`` (autograde): the totals (and per question ``q<k>``: max, passed, score, total)."""

    total: int
    max_total: int
    forbidden_uses: int


class Grade(TypedDict):
    """``<variant>/grade.json`` (grade_cse849): this project's re-implementation of the course's grading, on the deliverable."""

    graded: bool
    correct: NotRequired[int]
    images: NotRequired[int]
    accuracy: NotRequired[Fraction]
    points: NotRequired[int]
    max_points: NotRequired[int]
    shortcut: NotRequired[Shortcut | None]  # null without the composite's metadata (no digit labels)


class RunTiming(TypedDict):
    """``timing.json`` (``make repro-timed``): the whole run and each stage's wall time."""

    command: str
    cpus: int
    date: str
    dvc_repro_seconds: float
    stages: NotRequired[dict[str, float]]


# "pass" is a keyword: the functional form names it.
LayerResult = TypedDict(
    "LayerResult",
    {"kind": str, "name": str, "custom_s": float, "torch_s": float, "ratio": float, "target": float, "pass": bool},
)


class LayerBenchmark(TypedDict):
    """``benchmarks/layers.json`` (bench_layers)."""

    reliable: bool
    reliability_note: str
    results: list[LayerResult]


class LoaderResult(TypedDict):
    seconds: float
    speedup_vs_seed_style: float
    test_accuracy: Fraction


class LoaderBenchmark(TypedDict):
    """``benchmarks/loader.json`` (bench_loader)."""

    reliable: bool
    reliability_note: str
    results: dict[str, LoaderResult]


#: Which schema a JSON file under ``reports/`` has: a path pattern relative to ``reports/``
#: per kind of file, first match wins; a file no pattern matches is read unchecked.
SCHEMAS: list[tuple[str, Any]] = [
    (r"[^/]+/metrics\.json", Metrics),
    (r"[^/]+/training\.json", TrainingFacts),
    (r"[^/]+/timings\.json", Timings),
    (r"[^/]+/eval/metrics\.json", Evaluation),
    (r"comparisons/[^/]+\.json", Comparison),
    (r"seed_study/summary\.json", SeedStudySummary),
    (r"seed_study/runs/[^/]+\.json", SeedStudyRuns),
    (r"mitigation/[^/]+\.json", MitigationRow),
    (r"[^/]+/classwise_norms/classwise_norms\.json", dict[str, LayerNorms]),
    (r"autograder\.json", AutograderScores),
    (r"[^/]+/grade\.json", Grade),
    (r"timing\.json", RunTiming),
    (r"benchmarks/layers\.json", LayerBenchmark),
    (r"benchmarks/loader\.json", LoaderBenchmark),
]


def schema_for(rel: str) -> Any | None:
    """The schema of ``reports/<rel>`` (:data:`SCHEMAS`), or None."""
    for pattern, schema in SCHEMAS:
        if re.fullmatch(pattern, rel):
            return schema
    return None


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Annotated:
        return _type_name(typing.get_args(tp)[0])
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _at(key: str, text: str) -> str:
    return f"{key}: {text}" if key else text


def _join(key: str, name: object) -> str:
    return f"{key}.{name}" if key else str(name)


def _problem(value: Any, tp: Any, key: str) -> str | None:
    """Why ``value`` is not of type ``tp`` (``key``: the dotted path to it, "" at the top), or None if it is."""
    if tp is Any:
        return None
    if typing.is_typeddict(tp):
        if not isinstance(value, dict):
            return _at(key, f"expected an object ({tp.__name__}), got {type(value).__name__}")
        for name in sorted(tp.__required_keys__ - set(value)):
            return _at(_join(key, name), "missing")
        for name, field_tp in typing.get_type_hints(tp, include_extras=True).items():
            found = _problem(value[name], field_tp, _join(key, name)) if name in value else None
            if found:
                return found
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (NotRequired, Required):  # kept by get_type_hints(include_extras=True), as Annotated is
        return _problem(value, args[0], key)
    if origin is Annotated:
        found = _problem(value, args[0], key)
        bounds = next((m for m in tp.__metadata__ if isinstance(m, Range)), None)
        if found or bounds is None or bounds.low <= value <= bounds.high:
            return found
        return _at(key, f"expected {bounds.what} in [{bounds.low:g}, {bounds.high:g}], got {value!r:.60}")
    if origin in (typing.Union, types.UnionType):
        if any(_problem(value, option, key) is None for option in args):
            return None
        return _at(key, f"expected {' or '.join(_type_name(a) for a in args)}, got {value!r:.60}")
    if origin is list:
        if not isinstance(value, list):
            return _at(key, f"expected a list, got {type(value).__name__}")
        return next((f for i, item in enumerate(value) if (f := _problem(item, args[0], f"{key}[{i}]"))), None)
    if origin is dict:
        if not isinstance(value, dict):
            return _at(key, f"expected an object, got {type(value).__name__}")
        return next((f for k, item in value.items() if (f := _problem(item, args[1], _join(key, k)))), None)
    if tp is type(None):
        return None if value is None else _at(key, f"expected null, got {value!r:.60}")
    ok = scalar_matches(value, tp)  # the rule params.yaml follows: a float takes an int, nothing takes a bool
    if ok and tp is float and not math.isfinite(value):  # no writer of these files writes NaN or infinity
        return _at(key, f"expected a finite number, got {value!r}")
    return None if ok else _at(key, f"expected {_type_name(tp)}, got {value!r:.60}")


def check(value: Any, schema: Any, where: str) -> Any:
    """``value`` if it has the shape of ``schema``; else :class:`SchemaError` naming ``where`` and the key."""
    found = _problem(value, schema, "")
    if found:
        raise SchemaError(f"{where}: {found}")
    return value
