"""What the report reads: the files under ``reports/``, params, the handouts' numbers, and which stage writes a missing file."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

from pipeline.core.config import VariantConfig, load_params
from pipeline.core.errors import PipelineError
from pipeline.core.params import ComparisonConfig, Params, VerdictConfig, load_all, require
from pipeline.core.schemas import check
from pipeline.report.deviations import DEVIATIONS, load_deviations
from pipeline.report.schemas import schema_for

HANDOUT_RESULTS = Path("references/handout_results.yaml")


REPORTS = "reports"  # the folder the report reads: every stage's outputs


OUT = "report"  # the folder README.md / index.html are written to; their links are relative to it


# Which stage writes a file under reports/, for the "not produced yet" hint: a pattern per
# dvc.yaml output, first match wins. A table rather than dvc.yaml read at report time: the
# report needs no DVC (nor a copy of its foreach/${...} expansion) to name a stage, and
# tests/test_depgraph.py checks every output DVC itself expands against this table.
WRITERS: list[tuple[str, str]] = [
    (r"reports/timing\.json", "!make repro-timed"),  # written outside DVC, by the Makefile
    (r"reports/data/provenance\.json", "download"),
    (r"reports/data/.*", "stats"),
    (r"reports/autograder\.json", "autograde"),
    (r"reports/benchmarks/loader\.json", "bench_loader"),
    (r"reports/benchmarks/layers\.json", "bench_layers"),
    (r"reports/comparisons/([^/]+?)\.[^/]*", r"compare@\1"),
    (r"reports/seed_study/runs/([^/]+?)\.json", r"seed_study@\1"),
    (r"reports/seed_study/.*", "seed_study_summary"),
    (r"reports/mitigation/runs/([^/]+?)\.json", r"mitigation@\1"),
    (r"reports/mitigation/([^/]+?)\.json", r"evaluate_mitigation@\1"),
    (r"reports/analysis/padding_shapes\..*", "padding"),
    (r"reports/([^/]+)/(metrics|training|timings)\.json", r"train@\1"),
    (r"reports/([^/]+)/plots/.*", r"train@\1"),
    (r"reports/([^/]+)/eval/.*", r"evaluate@\1"),
    (r"reports/([^/]+)/analysis/.*", r"analyze@\1"),
    (r"reports/[^/]+/classwise_norms/.*", "classwise_norms"),
    (r"reports/[^/]+/q1_test\.txt", "predict_cse849"),
    (r"reports/[^/]+/q1_model\.pt", "export_cse849"),
    (r"reports/[^/]+/grade\.json", "grade_cse849"),
]


def stage_for(path: str) -> str | None:
    """The stage (``train@prac5``; ``!command`` for a file written outside DVC) that writes the
    repo-relative ``path``, or None when no pattern of :data:`WRITERS` matches."""
    for pattern, stage in WRITERS:
        match = re.fullmatch(pattern, path)
        if match:
            return match.expand(stage)
    return None


class Inputs:
    """The repository as the report sees it: params, the handouts' reported results, stage map, report files."""

    def __init__(self, root: str | Path = ".") -> None:
        self.root = Path(root)
        self.params: Params = load_all(self.root / "params.yaml")
        seeds = self.root / HANDOUT_RESULTS
        if not seeds.exists():
            raise FileNotFoundError(f"{seeds}: not found (the handouts' reported numbers)")
        self.seeds: dict[str, Any] = load_params(seeds)
        deviations = self.root / DEVIATIONS
        self.deviations = load_deviations(deviations) if deviations.exists() else []

    # ---- files under reports/

    def path(self, rel: str) -> Path:
        return self.root / posixpath.normpath(posixpath.join(REPORTS, rel))

    def exists(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def json(self, rel: str) -> Any | None:
        """The parsed file, or None when it does not exist (yet). Broken JSON, or content that
        does not have its schema's shape (:mod:`pipeline.core.schemas`), is an error naming the file."""
        file = self.path(rel)
        if not file.is_file():
            return None
        try:
            value = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PipelineError(f"{file}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        schema = schema_for(posixpath.normpath(rel))
        return value if schema is None else check(value, schema, str(file))

    def text(self, rel: str) -> str | None:
        file = self.path(rel)
        return file.read_text(encoding="utf-8") if file.is_file() else None

    def metrics(self, variant: str) -> dict | None:
        """What ``train@<variant>`` recorded: ``metrics.json`` with the run's facts
        (``training.json``) and timings (``timings.json``) merged in; None before it ran."""
        metrics = self.json(f"{variant}/metrics.json")
        if metrics is None:
            return None
        for rel in (f"{variant}/training.json", f"{variant}/timings.json"):
            metrics = {**(self.json(rel) or {}), **metrics}
        return metrics

    # ---- provenance of a missing file

    def stage_for(self, rel: str) -> str | None:
        """The stage that writes ``reports/<rel>`` (:data:`WRITERS`), or None."""
        return stage_for(posixpath.normpath(posixpath.join(REPORTS, rel)))

    def missing(self, rel: str) -> str:
        """'not produced yet (run `dvc repro <stage>`)' for ``reports/<rel>``."""
        stage = self.stage_for(rel)
        if stage is None:
            command = "dvc repro"
        elif stage.startswith("!"):
            command = stage[1:]
        else:
            command = f"dvc repro {stage}"
        return f"not produced yet (run `{command}`)"

    # ---- variants from params.yaml

    def variant_names(self) -> list[str]:
        """Every variant of params.yaml, in its order: what the report shows, with no list of its own."""
        return list(self.params.variants)

    def comparisons(self) -> dict[str, ComparisonConfig]:
        """params.yaml ``analysis.comparisons``, in its order."""
        return dict(self.params.analysis.comparisons)

    @property
    def verdicts(self) -> VerdictConfig:
        """params.yaml ``verdicts``: the bars the report's sentences need (what :mod:`pipeline.report.answers` reads)."""
        return require(self.params.verdicts, "verdicts")

    def variant(self, name: str) -> VariantConfig | None:
        """The typed config of ``name`` (defaults filled in), or None if params has no such variant."""
        return self.params.variants.get(name)
