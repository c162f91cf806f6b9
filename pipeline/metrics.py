"""Metric values shared by evaluation and the graders: one rounding rule, the shortcut figures.

Kept apart from :mod:`pipeline.evaluation` (models, data, figures) so that a grader of a
prediction file (:mod:`pipeline.cse849_grader`) computes the same figures as the
``evaluate`` stage without importing a model or the training engine.
"""

from __future__ import annotations

import torch

DIGITS = 6  # decimals kept in metrics.json and predictions.csv


def round_metric(value: float) -> float:
    return round(float(value), DIGITS)


def shortcut_metrics(labels: torch.Tensor, predicted: torch.Tensor, digits: torch.Tensor) -> dict:
    """Accuracy where the planted digit agrees with the label vs where it disagrees.

    ``gap_points``: agree accuracy minus disagree accuracy, in percentage points (a model
    using the digit shortcut has a large gap). ``shortcut_rate``: among disagreeing
    samples, the fraction predicted as the digit's class (chance is about 1/10).
    Accuracies of an empty group are ``None``.
    """
    agree = digits == labels
    disagree = ~agree
    correct = predicted == labels

    def mean(mask: torch.Tensor, values: torch.Tensor) -> float | None:
        return round_metric(values[mask].double().mean()) if bool(mask.any()) else None

    agree_acc, disagree_acc = mean(agree, correct), mean(disagree, correct)
    gap = None if agree_acc is None or disagree_acc is None else round_metric(100.0 * (agree_acc - disagree_acc))
    return {
        "agree_count": int(agree.sum()),
        "disagree_count": int(disagree.sum()),
        "agree_accuracy": agree_acc,
        "disagree_accuracy": disagree_acc,
        "gap_points": gap,
        "shortcut_rate": mean(disagree, predicted == digits),
        "predicted_digit_rate": mean(torch.ones_like(agree), predicted == digits),
    }
