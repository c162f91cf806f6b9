"""``params.yaml`` loaded once into typed, validated objects.

Every value a stage reads comes through here. A bad value fails *before* any
work starts, with a message that names the full key (``variants.prac5.train.lr``)
and, where there is a fixed set, the allowed values.
"""

from __future__ import annotations

import dataclasses
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
from pipeline.core.schemas import SCALAR_NAMES, Wording, conform

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


class ParamsWording(Wording):
    """How params.yaml's errors word a mismatch: the value as written, "a number" rather than ``float``."""

    error = ConfigError
    mapping = "a mapping"
    mapping_type = Mapping
    not_finite = "must be a finite number"

    def got(self, value: Any) -> str:
        return repr(value)

    def scalar(self, tp: type, value: Any) -> str:
        return f"expected {SCALAR_NAMES[tp]}, got {value!r}"

    def union(self, value: Any, tp: Any, key: str, first: PipelineError) -> Any:
        """``X | None``: what was wrong as an X; a union of several types is not checked."""
        if len([a for a in typing.get_args(tp) if a is not type(None)]) == 1:
            raise first
        return value

    def record(self, value: Any, tp: type, key: str) -> Any:
        return build(tp, value, key)


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where YAML is loose (int -> float)."""
    return conform(value, tp, key, ParamsWording())


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
            kwargs[name] = coerce(mapping[name], hints[name], f"{key}.{name}")
        elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}.{name}: missing key")
    return cls(**kwargs)


def _choice(value: str, allowed: tuple[str, ...] | list[str], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(allowed)}")


def validate_positive(value: float, key: str) -> None:
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


def validate_probability(value: float, key: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: must be a probability in [0, 1], got {value!r}")


def validate_optimizer(opt: OptimizerConfig, key: str) -> None:
    """What torch would refuse only after the data has loaded, or silently ignore (Adam has
    no momentum argument), refused here with the key named."""
    _choice(opt.name, OPTIMIZERS, f"{key}.name")
    validate_positive(opt.lr, f"{key}.lr")
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
    validate_probability(aug.hflip, f"{key}.hflip")
    erasing = aug.random_erasing
    validate_probability(erasing.p, f"{key}.random_erasing.p")
    _range(erasing.scale, f"{key}.random_erasing.scale", 0.0, 1.0)
    _range(erasing.ratio, f"{key}.random_erasing.ratio", 1e-9)
    if aug.gaussian_noise.sigma < 0:
        raise ConfigError(f"{key}.gaussian_noise.sigma: must be >= 0, got {aug.gaussian_noise.sigma!r}")
    for name in ("patch_shuffle", "blank"):
        change: RegionAugmentConfig = getattr(aug, name)
        validate_probability(change.p, f"{key}.{name}.p")
        if change.p > 0 and not change.region:
            raise ConfigError(f"{key}.{name}.region: missing (a region of the composite layout, e.g. digit)")


def validate_variant(v: VariantConfig, key: str) -> None:
    """Semantic checks beyond types: allowed names, positive sizes, consistent shapes.

    The model name, its arguments and the loss are checked by
    :func:`pipeline.training.setup.check_model_and_loss` instead: they depend on the model
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
            validate_positive(s, f"{key}.data.normalize.std[{i}]")
    if not 0.0 <= v.data.val_fraction < 1.0:
        raise ConfigError(f"{key}.data.val_fraction: must be in [0, 1), got {v.data.val_fraction!r}")
    validate_augment(v.data.augment, f"{key}.data.augment")

    t = v.train
    validate_positive(t.epochs, f"{key}.train.epochs")
    validate_positive(t.batch_size, f"{key}.train.batch_size")
    validate_positive(t.eval_batch_size, f"{key}.train.eval_batch_size")
    validate_positive(t.log_every_steps, f"{key}.train.log_every_steps")
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
