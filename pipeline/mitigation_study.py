"""CSE 849 mitigation study: remedies against the planted shortcut, compared at one budget.

Every row of ``mitigation_study.rows`` (params.yaml) is the ``base`` variant (its data,
network, optimizer, schedule, loss, checkpoint rule, evaluation and seed) trained for
``mitigation_study.epochs`` epochs with the row's training-time augmentation and nothing
else changed: the seed's baseline preprocessing (flip only), the seed's ``RandomErasing``
and ``GaussianNoise``, both, and two remedies that know where the digit is (patch shuffle,
digit blanking). Each row is trained and evaluated by ``mitigation@<row>``
(:mod:`pipeline.stages.mitigation`) with the same engine and evaluation as every variant:
validation and test accuracy, accuracy where the digit agrees / disagrees with the label,
shortcut rate, occlusion and the counterfactual flip rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.config import AugmentConfig, ConfigError, VariantConfig, build, load_variant, section, validate_augment


@dataclass(frozen=True)
class MitigationStudy:
    base: str  # the variant every row is built from
    epochs: int  # the budget: the same number of epochs for every row
    rows: dict[str, AugmentConfig]  # row -> its training-time augmentation (the only difference)


def load_study(params: Mapping[str, Any]) -> MitigationStudy:
    """``mitigation_study`` from params, checked: a known composite base variant, a positive budget,
    at least two rows, each a valid augmentation block."""
    raw = section(params, "mitigation_study")
    if not isinstance(raw, Mapping):
        raise ConfigError("mitigation_study: expected a mapping with base, epochs, rows")
    unknown = sorted(set(raw) - {"base", "epochs", "rows"})
    if unknown:
        raise ConfigError(f"mitigation_study.{unknown[0]}: unknown key; allowed keys: base, epochs, rows")
    base = section(params, "mitigation_study.base")
    epochs = section(params, "mitigation_study.epochs")
    rows = section(params, "mitigation_study.rows")
    if not isinstance(base, str):
        raise ConfigError(f"mitigation_study.base: expected a variant name, got {base!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"mitigation_study.epochs: expected a positive integer, got {epochs!r}")
    if not isinstance(rows, Mapping) or len(rows) < 2:
        raise ConfigError("mitigation_study.rows: expected at least two rows (name: augmentation block)")
    built = {}
    for name, block in rows.items():
        key = f"mitigation_study.rows.{name}"
        if not isinstance(block, Mapping):
            raise ConfigError(f"{key}: expected an augmentation block (hflip, random_erasing, ...), got {block!r}")
        built[name] = build(AugmentConfig, block, key)
        validate_augment(built[name], key)
    return MitigationStudy(base=base, epochs=epochs, rows=built)


def row_variant(params: Mapping[str, Any], study: MitigationStudy, row: str) -> VariantConfig:
    """The base variant with the row's augmentation and the study's epochs; named ``<base>@<row>``."""
    if row not in study.rows:
        raise ConfigError(f"mitigation_study.rows.{row}: unknown row; allowed: {', '.join(study.rows)}")
    base = load_variant(study.base, params)
    if base.data.format != "image_folder":
        raise ConfigError(f"mitigation_study.base: {study.base!r} is not trained on composite images (image_folder)")
    return dataclasses.replace(
        base,
        name=f"{base.name}@{row}",
        data=dataclasses.replace(base.data, augment=study.rows[row]),
        train=dataclasses.replace(base.train, epochs=study.epochs),
    )


def row_result(
    row: str, variant: VariantConfig, metrics: Mapping, facts: Mapping, evaluation: Mapping, seconds: float
) -> dict:
    """One row of the study's table: what it changed, how it scored, how long it trained."""
    return {
        "row": row,
        "variant": variant.name,
        "augment": dataclasses.asdict(variant.data.augment),
        "epochs": variant.train.epochs,
        "checkpoint_epoch": facts["checkpoint_epoch"],
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "val_accuracy": metrics.get("val_accuracy"),
        "val_loss": metrics.get("val_loss"),
        "shortcut": evaluation["shortcut"],
        "occlusion": evaluation["occlusion"],
        "counterfactual": evaluation["counterfactual"],
        "train_seconds": seconds,
    }
