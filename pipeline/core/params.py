"""The whole of ``params.yaml`` as one typed tree, built and cross-checked by :func:`load_all`.

Every stage loads the whole file through it, so a mistake anywhere is reported before any stage
starts work, and each section's types and rules are written once, here (the variants' own, and
the reading of the file, in :mod:`pipeline.core.config`). Sections other than ``variants`` may be
absent (a repository with only a train stage, as the tests build); :func:`require` names a missing one.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.config import (
    DEFAULT_PARAMS,
    AugmentConfig,
    ConfigError,
    VariantConfig,
    build,
    coerce,
    load_params,
    validate_augment,
    validate_positive,
    validate_probability,
    validate_seed,
    validate_variant,
)


@dataclass(frozen=True)
class CompositeConfig:
    """``composite``: which CSE 849 composites ``convert_composite`` builds. The boxes of
    ``layout`` are checked by :class:`pipeline.data.common.composite.Layout` (the data layer's type)."""

    layout: dict[str, list[int]]
    seed: int  # drives which MNIST digit lands on which CIFAR image
    train_size: int
    val_size: int
    test_size: int
    train_agreement: float  # fraction of training samples whose digit equals the label


@dataclass(frozen=True)
class StatsConfig:
    seed: int  # which "random" training images the statistics stage's sample grid shows


@dataclass(frozen=True)
class ComparisonConfig:
    title: str  # what the comparison shows, e.g. "Max vs average pooling (TDM Q5b)"
    a: str  # variant name
    b: str  # variant name
    # The variant params (dotted paths, e.g. model.args.pool; a path covers what lies under it)
    # the comparison is about: a and b differing in any other param (the random seed aside)
    # makes it "not a fair comparison", said in its file and the report.
    factor: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PaddingConfig:
    kernel_size: int = 3
    paddings: list[int] = field(default_factory=lambda: [0, 1, 2])
    strides: list[int] = field(default_factory=lambda: [1, 2])


@dataclass(frozen=True)
class ClasswiseNormsConfig:
    variant: str
    layers: list[int] = field(default_factory=lambda: [1, 5])
    cv_threshold: float = 0.5  # a filter whose class-wise CV exceeds this is "class-specific"


@dataclass(frozen=True)
class AnalysisConfig:
    padding: PaddingConfig = field(default_factory=PaddingConfig)
    comparisons: dict[str, ComparisonConfig] = field(default_factory=dict)
    classwise_norms: ClasswiseNormsConfig | None = None


@dataclass(frozen=True)
class SeedStudyConfig:
    seeds: int  # N: runs per variant, the variant's own seed and the next N - 1
    confidence: float  # of the t-interval of each paired difference, e.g. 0.95
    comparisons: list[str] = field(default_factory=list)  # keys of analysis.comparisons


@dataclass(frozen=True)
class VerdictConfig:
    """``verdicts``: what a report sentence needs before it calls a result different, rising or done."""

    alpha: float  # exact tests (McNemar, sign test) call two variants distinguishable when p < alpha
    noise_multiple: float  # a gap or change counts when above this many times its noise
    trend_epochs: int  # "more epochs would help" needs the held-out loss to fall over this many last epochs
    train_loss_fall: float  # the training loss's last-epoch fall (a fraction) worth mentioning
    class_balance_ratio: float  # largest / smallest class count under this: "roughly balanced"
    standardized_tolerance: float  # |mean| and |std - 1| under this: a "standardized" batch
    shortcut_rate_max: float  # a mitigation row "removes the shortcut" under this shortcut rate ...
    flip_rate_max: float  # ... and under this counterfactual flip rate


@dataclass(frozen=True)
class MitigationStudy:
    base: str  # the variant every row is built from
    epochs: int  # the budget: the same number of epochs for every row
    rows: dict[str, AugmentConfig]  # row -> its training-time augmentation (the only difference)


@dataclass(frozen=True)
class LoaderBenchmarkConfig:
    """``benchmarks.loader``: the DS 5220 handout's fixed set-up that ``bench_loader`` times."""

    data: str  # torchvision's MNIST root
    batch_size: int
    lr: float
    seed: int


@dataclass(frozen=True)
class BenchmarksConfig:
    loader: LoaderBenchmarkConfig | None = None


@dataclass(frozen=True)
class TrainingCheckConfig:
    """``training_check``: when a finished training run is refused instead of saved (engine.fit)."""

    min_above_chance: float  # final val/test accuracy must beat the most frequent class's share by this much


@dataclass(frozen=True)
class ReproduceConfig:
    """``reproduce``: the gate's reproduction check (``pipeline/devtools/reproduce.py``)."""

    variants: list[str]  # retrained from scratch and compared with the committed results
    test_accuracy_tolerance: float  # allowed |difference| when the kernels differ (another CPU)


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml, typed and cross-checked (:func:`load_all`)."""

    variants: dict[str, VariantConfig]
    composite: CompositeConfig | None = None
    stats: StatsConfig | None = None
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    seed_study: SeedStudyConfig | None = None
    verdicts: VerdictConfig | None = None
    mitigation_study: MitigationStudy | None = None
    benchmarks: BenchmarksConfig = field(default_factory=BenchmarksConfig)
    reproduce: ReproduceConfig | None = None
    training_check: TrainingCheckConfig | None = None

    def variant(self, name: str) -> VariantConfig:
        if name not in self.variants:
            raise ConfigError(f"variants.{name}: unknown variant; allowed: {', '.join(sorted(self.variants))}")
        return self.variants[name]

    def comparison(self, key: str) -> ComparisonConfig:
        if key not in self.analysis.comparisons:
            allowed = ", ".join(self.analysis.comparisons) or "none"
            raise ConfigError(f"analysis.comparisons.{key}: no such comparison; allowed: {allowed}")
        return self.analysis.comparisons[key]

    def study_variants(self) -> list[str]:
        """The variants the seed study compares (over random seeds), each once, in order of first mention."""
        names: list[str] = []
        for key in require(self.seed_study, "seed_study").comparisons:
            cmp = self.comparison(key)
            names += [v for v in (cmp.a, cmp.b) if v not in names]
        return names

    def mitigation_row(self, row: str) -> VariantConfig:
        """The study's base variant with the row's augmentation and the study's epochs, named ``<base>@<row>``."""
        study = require(self.mitigation_study, "mitigation_study")
        if row not in study.rows:
            raise ConfigError(f"mitigation_study.rows.{row}: unknown row; allowed: {', '.join(study.rows)}")
        base = self.variants[study.base]
        return dataclasses.replace(
            base,
            name=f"{base.name}@{row}",
            data=dataclasses.replace(base.data, augment=study.rows[row]),
            train=dataclasses.replace(base.train, epochs=study.epochs),
        )


_T = typing.TypeVar("_T")


def require(value: _T | None, key: str) -> _T:
    """``value``, or an error naming the params.yaml section a stage needs and the file lacks."""
    if value is None:
        raise ConfigError(f"{key}: missing key in params.yaml")
    return value


def load_all(source: str | Path | Mapping[str, Any] = DEFAULT_PARAMS) -> Params:
    """params.yaml (a path, or the mapping already read) as one typed, cross-checked :class:`Params`."""
    raw = source if isinstance(source, Mapping) else load_params(source)
    known = {f.name for f in dataclasses.fields(Params)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown top-level key; allowed: {', '.join(sorted(known))}")
    entries = coerce(raw.get("variants", {}), dict[str, Any], "variants")
    variants = {name: _variant(name, entry) for name, entry in entries.items()}
    analysis = _analysis(raw.get("analysis", {}), variants)
    return Params(
        variants=variants,
        composite=_composite(raw["composite"]) if "composite" in raw else None,
        stats=_stats(raw["stats"]) if "stats" in raw else None,
        analysis=analysis,
        seed_study=_seed_study(raw["seed_study"], analysis, variants) if "seed_study" in raw else None,
        verdicts=_verdicts(raw["verdicts"]) if "verdicts" in raw else None,
        mitigation_study=_mitigation(raw["mitigation_study"], variants) if "mitigation_study" in raw else None,
        benchmarks=_benchmarks(raw.get("benchmarks", {})),
        reproduce=_reproduce(raw["reproduce"], variants) if "reproduce" in raw else None,
        training_check=_training_check(raw["training_check"]) if "training_check" in raw else None,
    )


def _composite(node: Any) -> CompositeConfig:
    cfg = build(CompositeConfig, node, "composite")
    validate_seed(cfg.seed, "composite.seed")
    for name in ("train_size", "val_size", "test_size"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"composite.{name}: expected a non-negative integer, got {getattr(cfg, name)!r}")
    if cfg.train_size < 1:
        raise ConfigError("composite.train_size: must be at least 1")
    validate_probability(cfg.train_agreement, "composite.train_agreement")
    return cfg


def _analysis(node: Any, variants: Mapping[str, VariantConfig]) -> AnalysisConfig:
    cfg = build(AnalysisConfig, node, "analysis")
    pad = cfg.padding
    if pad.kernel_size <= 0 or not pad.strides or min(pad.strides) <= 0 or not pad.paddings or min(pad.paddings) < 0:
        raise ConfigError("analysis.padding: kernel_size and strides must be positive, paddings non-negative")
    for key, cmp in cfg.comparisons.items():
        for side in ("a", "b"):
            name = getattr(cmp, side)
            if name not in variants:
                allowed = ", ".join(variants) or "none (params.yaml has no variants section)"
                raise ConfigError(f"analysis.comparisons.{key}.{side}: unknown variant {name!r}; allowed: {allowed}")
        for i, path in enumerate(cmp.factor):
            if path.split(".")[0] not in FACTOR_ROOTS:
                raise ConfigError(
                    f"analysis.comparisons.{key}.factor[{i}]: {path!r} is not a variant param under "
                    f"{', '.join(FACTOR_ROOTS)} (e.g. model.args.pool)"
                )
    norms = cfg.classwise_norms
    if norms is not None:
        if norms.variant not in variants:
            raise ConfigError(f"analysis.classwise_norms.variant: unknown variant {norms.variant!r}")
        if not norms.layers or min(norms.layers) < 1:
            raise ConfigError("analysis.classwise_norms.layers: 1-based conv block numbers, e.g. [1, 5]")
        validate_positive(norms.cv_threshold, "analysis.classwise_norms.cv_threshold")
    return cfg


FACTOR_ROOTS = ("data", "model", "train")  # what a comparison's factor may name (not name, not seed)


def _verdicts(node: Any) -> VerdictConfig:
    cfg = build(VerdictConfig, node, "verdicts")
    if not 0 < cfg.alpha < 1:
        raise ConfigError(f"verdicts.alpha: expected a number between 0 and 1, got {cfg.alpha}")
    for name in ("noise_multiple", "trend_epochs", "train_loss_fall", "standardized_tolerance"):
        validate_positive(getattr(cfg, name), f"verdicts.{name}")
    if not cfg.class_balance_ratio >= 1:
        raise ConfigError(
            f"verdicts.class_balance_ratio: expected a ratio of at least 1, got {cfg.class_balance_ratio}"
        )
    validate_probability(cfg.shortcut_rate_max, "verdicts.shortcut_rate_max")
    validate_probability(cfg.flip_rate_max, "verdicts.flip_rate_max")
    return cfg


def _stats(node: Any) -> StatsConfig:
    cfg = build(StatsConfig, node, "stats")
    validate_seed(cfg.seed, "stats.seed")
    return cfg


def _benchmarks(node: Any) -> BenchmarksConfig:
    cfg = build(BenchmarksConfig, node, "benchmarks")
    if cfg.loader is not None:
        validate_seed(cfg.loader.seed, "benchmarks.loader.seed")
        validate_positive(cfg.loader.batch_size, "benchmarks.loader.batch_size")
        validate_positive(cfg.loader.lr, "benchmarks.loader.lr")
    return cfg


def _seed_study(node: Any, analysis: AnalysisConfig, variants: Mapping[str, VariantConfig]) -> SeedStudyConfig:
    study = build(SeedStudyConfig, node, "seed_study")
    if study.seeds < 2:
        raise ConfigError(f"seed_study.seeds: at least 2 runs per variant are needed for a spread, got {study.seeds}")
    if not 0 < study.confidence < 1:
        raise ConfigError(f"seed_study.confidence: expected a number between 0 and 1, got {study.confidence}")
    for i, key in enumerate(study.comparisons):
        if key not in analysis.comparisons:
            allowed = ", ".join(analysis.comparisons) or "none"
            raise ConfigError(f"seed_study.comparisons[{i}]: {key!r} is not a key of analysis.comparisons ({allowed})")
        if study.comparisons.index(key) != i:
            raise ConfigError(f"seed_study.comparisons[{i}]: {key!r} is listed twice")
        for name in (analysis.comparisons[key].a, analysis.comparisons[key].b):
            validate_seed(variants[name].seed, f"variants.{name}.seed", runs=study.seeds)
    return study


def _training_check(node: Any) -> TrainingCheckConfig:
    cfg = build(TrainingCheckConfig, node, "training_check")
    if not 0.0 <= cfg.min_above_chance < 1.0:
        raise ConfigError(
            f"training_check.min_above_chance: expected an accuracy margin in [0, 1), got {cfg.min_above_chance!r}"
        )
    return cfg


def _reproduce(node: Any, variants: Mapping[str, VariantConfig]) -> ReproduceConfig:
    cfg = build(ReproduceConfig, node, "reproduce")
    if not cfg.variants:
        raise ConfigError("reproduce.variants: expected at least one variant")
    for i, name in enumerate(cfg.variants):
        if name not in variants:
            raise ConfigError(f"reproduce.variants[{i}]: unknown variant {name!r}; allowed: {', '.join(variants)}")
        if cfg.variants.index(name) != i:
            raise ConfigError(f"reproduce.variants[{i}]: {name!r} is listed twice")
    if not 0.0 <= cfg.test_accuracy_tolerance < 1.0:
        raise ConfigError(
            f"reproduce.test_accuracy_tolerance: expected an accuracy difference in [0, 1), got {cfg.test_accuracy_tolerance!r}"
        )
    return cfg


def _mitigation(node: Any, variants: Mapping[str, VariantConfig]) -> MitigationStudy:
    study = build(MitigationStudy, node, "mitigation_study")
    if study.base not in variants:
        raise ConfigError(f"mitigation_study.base: unknown variant {study.base!r}; allowed: {', '.join(variants)}")
    if variants[study.base].data.format != "image_folder":
        raise ConfigError(f"mitigation_study.base: {study.base!r} is not trained on composite images (image_folder)")
    validate_positive(study.epochs, "mitigation_study.epochs")
    if len(study.rows) < 2:
        raise ConfigError("mitigation_study.rows: expected at least two rows (name: augmentation block)")
    for name, augment in study.rows.items():
        validate_augment(augment, f"mitigation_study.rows.{name}")
    return study


def _variant(name: str, entry: Any) -> VariantConfig:
    """One entry of ``variants``, built and checked (``load_all`` calls this for each)."""
    key = f"variants.{name}"
    variant = build(VariantConfig, entry, key, name=name)
    validate_variant(variant, key)
    return variant
