"""The schemas of the files inference writes: ``<variant>/eval/metrics.json`` (evaluate@) and
``mitigation/<row>.json`` (evaluate_mitigation@). Checked by their producers before writing and by
the report on reading (:mod:`pipeline.report.schemas`); the walk is :func:`pipeline.core.schemas.check`."""

# No ``from __future__ import annotations`` here: TypedDict sees NotRequired[...] only in
# evaluated annotations (with strings it counts every key as required on Python 3.11).
from typing import Any, NotRequired, TypedDict

from pipeline.core.schemas import Fraction, NonNegative, Points


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
