"""What the report reads: the files under ``reports/``, params, the seeds' numbers, and which stage writes a missing file."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import VariantConfig, build, load_params
from pipeline.deviations import DEVIATIONS, load_deviations
from pipeline.errors import PipelineError

SEED_RESULTS = Path("references/seed_results.yaml")


REPORTS = "reports"  # the folder the report reads: every stage's outputs


OUT = "report"  # the folder README.md / index.html are written to; their links are relative to it


# Who writes what, for files dvc.yaml does not (yet) declare: used only in the
# "not produced yet" hint. dvc.yaml, when it declares the file, always wins. First match wins.
FALLBACK_STAGES: list[tuple[str, str]] = [
    (r"reports/timing\.json", "!make repro-timed"),  # written outside DVC, by the Makefile
    (r"reports/data/provenance\.json", "download"),
    (r"reports/data/.*", "stats"),
    (r"reports/autograder\.json", "autograde"),
    (r"reports/benchmarks/loader\.json", "bench_loader"),
    (r"reports/benchmarks/layers\.json", "bench_layers"),
    (r"reports/comparisons/([^/]+?)\.[^/]*", r"compare@\1"),
    (r"reports/seed_study/runs/([^/]+?)\.json", r"seed_study@\1"),
    (r"reports/seed_study/.*", "seed_study_summary"),
    (r"reports/mitigation/([^/]+?)\.json", r"mitigation@\1"),
    (r"reports/analysis/padding_shapes\..*", "padding"),
    (r"reports/([^/]+)/(metrics\.json|plots/.*)", r"train@\1"),
    (r"reports/([^/]+)/eval/.*", r"evaluate@\1"),
    (r"reports/([^/]+)/analysis/.*", r"analyze@\1"),
    (r"reports/[^/]+/classwise_norms/.*", "classwise_norms"),
    (r"reports/[^/]+/q1_test\.txt", "predict_cse849"),
]


class Inputs:
    """The repository as the report sees it: params, seed results, stage map, report files."""

    def __init__(self, root: str | Path = ".") -> None:
        self.root = Path(root)
        self.params = load_params(self.root / "params.yaml")
        seeds = self.root / SEED_RESULTS
        if not seeds.exists():
            raise FileNotFoundError(f"{seeds}: not found (the seeds' reported numbers)")
        self.seeds: dict[str, Any] = load_params(seeds)
        deviations = self.root / DEVIATIONS
        self.deviations = load_deviations(deviations) if deviations.exists() else []
        self.stages = stage_outputs(self.root / "dvc.yaml", self.params)

    # ---- files under reports/

    def path(self, rel: str) -> Path:
        return self.root / posixpath.normpath(posixpath.join(REPORTS, rel))

    def exists(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def json(self, rel: str) -> Any | None:
        """The parsed file, or None when it does not exist (yet). Broken JSON is an error."""
        file = self.path(rel)
        if not file.is_file():
            return None
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PipelineError(f"{file}: invalid JSON at line {exc.lineno}: {exc.msg}") from None

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
        """The stage that writes ``reports/<rel>``: from dvc.yaml, else the expected name."""
        full = posixpath.normpath(posixpath.join(REPORTS, rel))
        for out, stage in self.stages.items():
            if full == out or full.startswith(out.rstrip("/") + "/"):
                return stage
        for pattern, stage in FALLBACK_STAGES:
            match = re.fullmatch(pattern, full)
            if match:
                return match.expand(stage)
        return None

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
        return list(self.params.get("variants") or {})

    def comparisons(self) -> dict[str, Mapping[str, Any]]:
        """params.yaml ``analysis.comparisons``, in its order: ``{key: {title, a, b}}``."""
        found = (self.params.get("analysis") or {}).get("comparisons") or {}
        return {str(k): v if isinstance(v, Mapping) else {} for k, v in found.items()}

    def variant(self, name: str) -> VariantConfig | None:
        """The typed config of ``name`` (defaults filled in), or None if params has no such variant."""
        raw = (self.params.get("variants") or {}).get(name)
        if raw is None:
            return None
        return build(VariantConfig, raw, f"variants.{name}", name=name)


_INTERP = re.compile(r"\$\{([^}]+)\}")


def stage_outputs(dvc_yaml: Path, params: Mapping[str, Any]) -> dict[str, str]:
    """``{output path: stage name}`` for every out/metric/plot file declared in dvc.yaml.

    ``foreach`` stages are expanded as DVC names them (``train@prac5``); ``${key}``,
    ``${item}`` and ``${item.a.b}`` are substituted. Only used to name the stage in a
    "not produced yet" hint, so an unreadable dvc.yaml just means no names.
    """
    try:
        doc = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))
        stages = doc.get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    mapping: dict[str, str] = {}

    def lookup(expr: str, scope: Mapping[str, Any]) -> Any:
        node: Any = scope
        for part in expr.strip().split("."):
            node = node[part] if isinstance(node, Mapping) else None
            if node is None:
                raise KeyError(expr)
        return node

    def substitute(text: str, scope: Mapping[str, Any]) -> str:
        return _INTERP.sub(lambda m: str(lookup(m.group(1), scope)), text)

    def collect(name: str, body: Mapping[str, Any], scope: Mapping[str, Any]) -> None:
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind) or []:
                path = next(iter(entry)) if isinstance(entry, Mapping) else entry
                try:
                    mapping.setdefault(posixpath.normpath(substitute(str(path), scope)), name)
                except KeyError:
                    continue

    for name, body in stages.items():
        if not isinstance(body, Mapping):
            continue
        if "foreach" in body and isinstance(body.get("do"), Mapping):
            items = body["foreach"]
            if isinstance(items, str):
                try:
                    items = lookup(_INTERP.fullmatch(items.strip()).group(1), params)
                except (AttributeError, KeyError):
                    continue
            pairs = (
                items.items()
                if isinstance(items, Mapping)
                else ((v if isinstance(v, str) else i, v) for i, v in enumerate(items or []))
            )
            for key, item in pairs:
                collect(f"{name}@{key}", body["do"], {**params, "key": key, "item": item})
        else:
            collect(name, body, params)
    return mapping
