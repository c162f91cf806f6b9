"""``params.yaml`` loaded once into typed, validated objects.

Every value a stage reads comes through here. A bad value fails *before* any
work starts, with a message that names the full key (``variants.prac5.train.lr``)
and, where there is a fixed set, the allowed values.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from pipeline.core.errors import PipelineError
from pipeline.core.scalars import SCALAR_NAMES, scalar_matches

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(PipelineError):
    """A problem in params.yaml, always naming the offending key."""


# --------------------------------------------------------------------------- schema

DATA_FORMATS = ("mnist_csv", "mnist_torchvision", "mnist_npz", "image_folder")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine")
PRECISIONS = ("float32", "bfloat16")
CHECKPOINT_SELECTION = ("last", "best_val_accuracy")


@dataclass(frozen=True)
class NormalizeConfig:
    """Channel-wise ``(x/255 - mean) / std``, as torchvision's ToTensor + Normalize.

    ``mode``: ``fixed`` uses ``mean``/``std`` as given; ``train`` measures them on
    the training split (DS 5220 computes them this way); ``none`` only scales to [0, 1].
    """

    mode: str = "fixed"
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class RandomErasingConfig:
    """``torchvision.transforms.v2.RandomErasing(p, scale, ratio, value)``, drawn per image.

    Applied after normalization, so ``value`` is in normalized units (0 = the mean colour)."""

    p: float = 0.0  # probability that an image gets one rectangle erased (0 = off)
    scale: list[float] = field(default_factory=lambda: [0.02, 0.33])  # erased area / image area
    ratio: list[float] = field(default_factory=lambda: [0.3, 3.3])  # aspect ratio range (log-uniform)
    value: float = 0.0


@dataclass(frozen=True)
class GaussianNoiseConfig:
    """``torchvision.transforms.v2.GaussianNoise(mean, sigma, clip)`` on every image, after normalization
    (the CSE 849 handout: ``clip=False`` there)."""

    mean: float = 0.0
    sigma: float = 0.0  # 0 = off
    clip: bool = False


@dataclass(frozen=True)
class RegionAugmentConfig:
    """A training-time change of one named region of a composite (``composite.layout``)."""

    p: float = 0.0  # probability per image (0 = off)
    region: str = ""  # "digit" or "cifar": a region of the dataset's layout (dataset.json)


@dataclass(frozen=True)
class AugmentConfig:
    """Batch-level augmentations, applied to training batches only (:class:`pipeline.training.datasets.BatchAugment`)."""

    hflip: float = 0.0  # probability of a horizontal flip of the whole image
    random_erasing: RandomErasingConfig = field(default_factory=RandomErasingConfig)
    gaussian_noise: GaussianNoiseConfig = field(default_factory=GaussianNoiseConfig)
    # The region is replaced by the same region of another image of the batch (its digit, say).
    patch_shuffle: RegionAugmentConfig = field(default_factory=RegionAugmentConfig)
    blank: RegionAugmentConfig = field(default_factory=RegionAugmentConfig)  # the region set to black (0)


@dataclass(frozen=True)
class DataConfig:
    format: str
    path: str
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    val_fraction: float = 0.0  # held out of train when the format has no validation split
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Composite data: regions of the dataset's layout re-tested blanked by evaluate@<variant>.
    occlusion: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizerConfig:
    name: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False


@dataclass(frozen=True)
class SchedulerConfig:
    name: str = "none"
    eta_min: float = 0.0  # final learning rate of the cosine schedule


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    optimizer: OptimizerConfig
    loss: str
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    precision: str = "float32"  # bfloat16 = CPU autocast (AMX); weights and optimizer stay float32
    channels_last: bool = False
    checkpoint: str = "last"
    eval_batch_size: int = 1000
    # Test-time augmentation: every evaluation (validation, test, the evaluate stage) averages
    # the softmax of each image and of its left-right mirror. Off by default.
    eval_hflip: bool = False
    log_every_steps: int = 100  # granularity of the per-step loss plot
    test_every_epoch: bool = True  # False: only the kept checkpoint sees the test set (saves time)


@dataclass(frozen=True)
class VariantConfig:
    name: str
    seed: int
    data: DataConfig
    model: ModelConfig
    train: TrainConfig


# --------------------------------------------------------------------------- generic builder


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where YAML is loose (int -> float)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin in (list,):
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (dict,):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        _, value_tp = typing.get_args(tp)
        return {str(k): _coerce(v, value_tp, f"{key}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(tp)):
            return None
        if len(options) == 1:  # X | None: a value must be an X
            return _coerce(value, options[0], key)
        return value
    if tp is Any:
        return value
    if tp in SCALAR_NAMES:
        if not scalar_matches(value, tp):
            raise ConfigError(f"{key}: expected {SCALAR_NAMES[tp]}, got {value!r}")
        # No setting means infinity or NaN: `std: .inf` would zero every input, `weight_decay: .inf`
        # would end in a NaN loss blamed on the learning rate.
        if tp is float and not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value) if tp is float else value
    raise TypeError(f"unsupported annotation {_type_name(tp)} for {key}")  # a bug here, not in params


def build(cls: type, mapping: Any, key: str, **extra: Any) -> Any:
    """Build dataclass ``cls`` from ``mapping``; anything but a mapping, unknown or missing keys are errors."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in extra}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key; allowed keys: {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = dict(extra)
    for name, fld in fields.items():
        if name in mapping:
            kwargs[name] = _coerce(mapping[name], hints[name], f"{key}.{name}")
        elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}.{name}: missing key")
    return cls(**kwargs)


def _choice(value: str, allowed: tuple[str, ...] | list[str], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(allowed)}")


def _positive(value: float, key: str) -> None:
    if not value > 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")


# Random seeds go to torch.manual_seed and numpy's default_rng, and the seed study adds the run
# index; numpy's legacy and scikit-learn's seeds stop at 2**32 - 1, the range every seed user takes.
SEED_RANGE = (0, 2**32 - 1)


def validate_seed(value: int, key: str, runs: int = 1) -> None:
    """A random seed (and, for ``runs`` > 1, the ``runs - 1`` seeds after it) within :data:`SEED_RANGE`."""
    low, high = SEED_RANGE
    if not low <= value <= high - (runs - 1):
        span = f" (and the {runs - 1} after it, one per run)" if runs > 1 else ""
        raise ConfigError(f"{key}: a random seed{span} must be an integer from {low} to {high}, got {value}")


def _probability(value: float, key: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: must be a probability in [0, 1], got {value!r}")


def validate_optimizer(opt: OptimizerConfig, key: str) -> None:
    """What torch would refuse only after the data has loaded, or silently ignore (Adam has
    no momentum argument), refused here with the key named."""
    _choice(opt.name, OPTIMIZERS, f"{key}.name")
    _positive(opt.lr, f"{key}.lr")
    if opt.weight_decay < 0:
        raise ConfigError(f"{key}.weight_decay: must be >= 0, got {opt.weight_decay!r}")
    if opt.name != "sgd" and (opt.momentum or opt.nesterov):
        raise ConfigError(f"{key}: momentum and nesterov are SGD settings; {opt.name!r} takes neither")
    if not 0.0 <= opt.momentum < 1.0:
        raise ConfigError(f"{key}.momentum: must be in [0, 1), got {opt.momentum!r}")
    if opt.nesterov and opt.momentum == 0:
        raise ConfigError(f"{key}.nesterov: Nesterov momentum needs momentum > 0")


def _range(values: list[float], key: str, low: float, high: float | None = None) -> None:
    """``[a, b]`` with ``low <= a <= b`` (``<= high``)."""
    ok = len(values) == 2 and low <= values[0] <= values[1] and (high is None or values[1] <= high)
    if not ok:
        bound = f"within [{low}, {high}]" if high is not None else f"from {low} up"
        raise ConfigError(f"{key}: expected [low, high] with low <= high, {bound}; got {values!r}")


def validate_augment(aug: AugmentConfig, key: str) -> None:
    """Probabilities in [0, 1], torchvision's RandomErasing ranges, and a region for each region change
    (whether the data has that region is known once it is read: :class:`pipeline.training.datasets.BatchAugment`)."""
    _probability(aug.hflip, f"{key}.hflip")
    erasing = aug.random_erasing
    _probability(erasing.p, f"{key}.random_erasing.p")
    _range(erasing.scale, f"{key}.random_erasing.scale", 0.0, 1.0)
    _range(erasing.ratio, f"{key}.random_erasing.ratio", 1e-9)
    if aug.gaussian_noise.sigma < 0:
        raise ConfigError(f"{key}.gaussian_noise.sigma: must be >= 0, got {aug.gaussian_noise.sigma!r}")
    for name in ("patch_shuffle", "blank"):
        change: RegionAugmentConfig = getattr(aug, name)
        _probability(change.p, f"{key}.{name}.p")
        if change.p > 0 and not change.region:
            raise ConfigError(f"{key}.{name}.region: missing (a region of the composite layout, e.g. digit)")


def validate_variant(v: VariantConfig, key: str) -> None:
    """Semantic checks beyond types: allowed names, positive sizes, consistent shapes.

    The model name, its arguments and the loss are checked by
    :func:`pipeline.training.engine.check_model_and_loss` instead: they depend on the model
    families, and configuration does not import model code (a stage that only reads
    params must not depend on every model).
    """
    validate_seed(v.seed, f"{key}.seed")
    _choice(v.data.format, DATA_FORMATS, f"{key}.data.format")
    if len(set(v.data.occlusion)) != len(v.data.occlusion) or not all(v.data.occlusion):
        raise ConfigError(f"{key}.data.occlusion: expected distinct region names, got {v.data.occlusion!r}")
    norm = v.data.normalize
    _choice(norm.mode, ("fixed", "train", "none"), f"{key}.data.normalize.mode")
    if norm.mode == "fixed":
        if not norm.mean or len(norm.mean) != len(norm.std):
            raise ConfigError(f"{key}.data.normalize: mode 'fixed' needs mean and std lists of equal length")
        for i, s in enumerate(norm.std):
            _positive(s, f"{key}.data.normalize.std[{i}]")
    if not 0.0 <= v.data.val_fraction < 1.0:
        raise ConfigError(f"{key}.data.val_fraction: must be in [0, 1), got {v.data.val_fraction!r}")
    validate_augment(v.data.augment, f"{key}.data.augment")

    t = v.train
    _positive(t.epochs, f"{key}.train.epochs")
    _positive(t.batch_size, f"{key}.train.batch_size")
    _positive(t.eval_batch_size, f"{key}.train.eval_batch_size")
    _positive(t.log_every_steps, f"{key}.train.log_every_steps")
    validate_optimizer(t.optimizer, f"{key}.train.optimizer")
    _choice(t.scheduler.name, SCHEDULERS, f"{key}.train.scheduler.name")
    # The cosine schedule falls from lr to eta_min: below 0 the run ends in gradient ascent.
    eta_min = t.scheduler.eta_min
    if not 0 <= eta_min < t.optimizer.lr:
        raise ConfigError(
            f"{key}.train.scheduler.eta_min: must be >= 0 and below train.optimizer.lr ({t.optimizer.lr!r}), "
            f"got {eta_min!r}"
        )
    _choice(t.precision, PRECISIONS, f"{key}.train.precision")
    _choice(t.checkpoint, CHECKPOINT_SELECTION, f"{key}.train.checkpoint")
    if t.checkpoint == "best_val_accuracy" and v.data.format != "image_folder" and v.data.val_fraction == 0:
        raise ConfigError(
            f"{key}.train.checkpoint: 'best_val_accuracy' needs a validation split (data.val_fraction > 0)"
        )


# --------------------------------------------------------------------------- loading


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """A YAML file read as DVC reads params.yaml: ruamel.yaml's safe loader, YAML 1.2 rules.

    A stage and DVC (``dvc params diff``, ``dvc.lock``, ``-S``) must see the same values.
    PyYAML follows YAML 1.1, where ``012`` is octal 10, ``on``/``yes`` are true and ``1:30``
    is 90; under YAML 1.2 they are 12, the strings ``on``/``yes`` (refused where a boolean
    is expected) and the string ``1:30``. So the file is read with the loader DVC itself uses
    (``dvc.utils.serialize.parse_yaml``). A key repeated in one mapping is refused, as DVC
    refuses the file, with both lines named.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the repository root)") from None
    try:
        params = YAML(typ="safe").load(text)
    except DuplicateKeyError:
        raise ConfigError(_duplicate_key(text, path)) from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {_one_line(exc)}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return params


def _one_line(exc: YAMLError) -> str:
    """ruamel's multi-line report (context, marks with the source line and a caret) as one line."""
    if not isinstance(exc, MarkedYAMLError):
        return " ".join(str(exc).split())
    parts = [exc.context, exc.problem]
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + "; ".join(p for p in parts if p)


def _duplicate_key(text: str, path: Path) -> str:
    """The error for a key repeated in one mapping: the key and both lines (from the node tree,
    which ruamel's own report lacks: it names the mapping's first line, not the first use)."""
    pending = [YAML(typ="safe").compose(text)]
    while pending:
        node = pending.pop()
        if isinstance(node, SequenceNode):
            pending += node.value
        elif isinstance(node, MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                pending.append(value_node)
                if not isinstance(key_node, ScalarNode):  # a complex key (`? [a, b]`): not in params
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    return (
                        f"{path}: line {line}: duplicate key {key_node.value!r} (first at line {first[key_node.value]}); "
                        f"YAML keeps only one of the two values and DVC refuses the file"
                    )
                first[key_node.value] = line
    return f"{path}: a key is repeated in one mapping"  # not reached: ruamel found one


def section(params: Mapping[str, Any], dotted: str) -> Any:
    """``section(params, "data.composite")`` with an error naming the missing key."""
    node: Any = params
    walked = []
    for part in dotted.split("."):
        walked.append(part)
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"{'.'.join(walked)}: missing key in params.yaml")
        node = node[part]
    return node


def _variant(name: str, entry: Any) -> VariantConfig:
    """One entry of ``variants``, built and checked (``load_all`` calls this for each)."""
    key = f"variants.{name}"
    variant = build(VariantConfig, entry, key, name=name)
    validate_variant(variant, key)
    return variant


# --------------------------------------------------------------------------- the whole file
#
# One typed tree for params.yaml, built and cross-checked by load_all(): every stage loads the
# whole file through it, so a mistake anywhere is reported before any stage starts work, and
# each section's types and rules are written once, here. Sections other than `variants` may be
# absent (a repository with only a train stage, as the tests build); require() names a missing one.


@dataclass(frozen=True)
class CompositeConfig:
    """``composite``: which CSE 849 composites ``convert_composite`` builds. The boxes of
    ``layout`` are checked by :class:`pipeline.data.common.layout.Layout` (the data layer's type)."""

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
    entries = _coerce(raw.get("variants", {}), dict[str, Any], "variants")
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
    _probability(cfg.train_agreement, "composite.train_agreement")
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
        _positive(norms.cv_threshold, "analysis.classwise_norms.cv_threshold")
    return cfg


FACTOR_ROOTS = ("data", "model", "train")  # what a comparison's factor may name (not name, not seed)


def _verdicts(node: Any) -> VerdictConfig:
    cfg = build(VerdictConfig, node, "verdicts")
    if not 0 < cfg.alpha < 1:
        raise ConfigError(f"verdicts.alpha: expected a number between 0 and 1, got {cfg.alpha}")
    for name in ("noise_multiple", "trend_epochs", "train_loss_fall", "standardized_tolerance"):
        _positive(getattr(cfg, name), f"verdicts.{name}")
    if not cfg.class_balance_ratio >= 1:
        raise ConfigError(
            f"verdicts.class_balance_ratio: expected a ratio of at least 1, got {cfg.class_balance_ratio}"
        )
    _probability(cfg.shortcut_rate_max, "verdicts.shortcut_rate_max")
    _probability(cfg.flip_rate_max, "verdicts.flip_rate_max")
    return cfg


def _stats(node: Any) -> StatsConfig:
    cfg = build(StatsConfig, node, "stats")
    validate_seed(cfg.seed, "stats.seed")
    return cfg


def _benchmarks(node: Any) -> BenchmarksConfig:
    cfg = build(BenchmarksConfig, node, "benchmarks")
    if cfg.loader is not None:
        validate_seed(cfg.loader.seed, "benchmarks.loader.seed")
        _positive(cfg.loader.batch_size, "benchmarks.loader.batch_size")
        _positive(cfg.loader.lr, "benchmarks.loader.lr")
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
    _positive(study.epochs, "mitigation_study.epochs")
    if len(study.rows) < 2:
        raise ConfigError("mitigation_study.rows: expected at least two rows (name: augmentation block)")
    for name, augment in study.rows.items():
        validate_augment(augment, f"mitigation_study.rows.{name}")
    return study
