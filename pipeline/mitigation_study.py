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

from pipeline.config import VariantConfig


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
