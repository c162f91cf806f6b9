"""Metric values computed from labels and predictions: the classification report (scikit-learn), the softmax confidence, the shortcut figures.

Kept apart from :mod:`pipeline.inference.evaluation` (models, data, figures) so that a grader of a
prediction file (:mod:`pipeline.grading.cse849`) computes the same figures as the
``evaluate`` stage without importing a model or the training engine.
"""

from __future__ import annotations

import torch

from pipeline.core.io import rounded


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
        return rounded(values[mask].double().mean()) if bool(mask.any()) else None

    agree_acc, disagree_acc = mean(agree, correct), mean(disagree, correct)
    gap = None if agree_acc is None or disagree_acc is None else rounded(100.0 * (agree_acc - disagree_acc))
    return {
        "agree_count": int(agree.sum()),
        "disagree_count": int(disagree.sum()),
        "agree_accuracy": agree_acc,
        "disagree_accuracy": disagree_acc,
        "gap_points": gap,
        "shortcut_rate": mean(disagree, predicted == digits),
        "predicted_digit_rate": mean(torch.ones_like(agree), predicted == digits),
    }


def classification_metrics(labels: torch.Tensor, predicted: torch.Tensor, n_classes: int) -> dict:
    """Accuracy, per-class precision / recall / F1 / support and their macro and weighted means.

    Classes that are never predicted get precision 0 (scikit-learn's ``zero_division=0``).
    ``per_class`` is keyed by the class index as a string (``"0"``, ``"1"``, ...).
    """
    # Imported here: scikit-learn takes ~1.2 s to import, and the CSE 849 grader, which imports
    # this module for shortcut_metrics, never needs it.
    from sklearn.metrics import precision_recall_fscore_support

    y, p = labels.numpy(), predicted.numpy()
    classes = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(y, p, labels=classes, zero_division=0)
    out: dict = {"accuracy": rounded((y == p).mean()) if len(y) else 0.0}
    for average in ("macro", "weighted"):
        pa, ra, fa, _ = precision_recall_fscore_support(y, p, labels=classes, average=average, zero_division=0)
        out[average] = {"precision": rounded(pa), "recall": rounded(ra), "f1": rounded(fa)}
    out["per_class"] = {
        str(c): {
            "precision": rounded(precision[c]),
            "recall": rounded(recall[c]),
            "f1": rounded(f1[c]),
            "support": int(support[c]),
        }
        for c in classes
    }
    return out


def confidences(logits: torch.Tensor) -> torch.Tensor:
    """Softmax probability of the predicted class (also right for log-softmax outputs: softmax(log p) = p)."""
    return torch.softmax(logits.float(), dim=1).max(dim=1).values
