"""Which schema each JSON file under ``reports/`` has, and the schemas only the report reads.

Each producer owns the schema of the files it writes (``pipeline/core/schemas.py`` for train@
and seed_study@, ``pipeline/inference/schemas.py``, ``pipeline/analysis/schemas.py``,
``pipeline/grading/schemas.py``); the files written outside the package (``timing.json`` by
``make repro-timed``, the benchmarks' JSON) have theirs here. :data:`SCHEMAS` maps a path to its
schema; the report checks every file it reads against it (:meth:`pipeline.report.inputs.Inputs.json`)
and ``tests/test_schemas.py`` checks every committed file."""

# No ``from __future__ import annotations`` here: TypedDict sees NotRequired[...] only in
# evaluated annotations (with strings it counts every key as required on Python 3.11).
import re
from typing import Any, NotRequired, TypedDict

from pipeline.analysis.schemas import Comparison, LayerNorms, SeedStudySummary
from pipeline.core.schemas import Fraction, Metrics, SeedStudyRuns, Timings, TrainingFacts
from pipeline.grading.schemas import AutograderScores, Grade
from pipeline.inference.schemas import Evaluation, MitigationRow


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
