"""The measured sentences several answers share: a paired comparison of two runs, how a training
curve behaves, which classes are confused. Each is built from the numbers it states, and its
wording follows them: which of two variants is ahead, by how much, and whether the paired tests
tell them apart; where a held-out loss stops falling beyond its own noise; which digits are
confused. The bars a verdict needs (significance level, noise multiple, ...) are params ``verdicts``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from statistics import stdev
from typing import Any

from pipeline.core.params import VerdictConfig
from pipeline.report.formats import pct


def paired_comparison(names: tuple[str, str], data: Mapping[str, Any], alpha: float) -> str:
    """Which of two single runs is more accurate, by how much, and whether the same test images tell them
    apart: the exact McNemar test of ``compare@<key>`` (``data``: its ``comparisons/<key>.json``)."""
    (a, b), m = names, data["mcnemar"]
    acc_a, acc_b = data["a"]["test_accuracy"], data["b"]["test_accuracy"]
    diff = 100 * (acc_a - acc_b)
    if diff == 0:
        lead = f"{a} and {b} reach the same test accuracy, {pct(acc_a)}"
    else:
        hi, lo, hi_acc, lo_acc = (a, b, acc_a, acc_b) if diff > 0 else (b, a, acc_b, acc_a)
        lead = f"{hi} reaches {pct(hi_acc)} test accuracy against {pct(lo_acc)} for {lo}, {abs(diff):.2f} points higher"
    test = (
        f"of the same {m['images']:,} test images {a} alone gets {m['a_only_correct']:,} right and {b} alone "
        f"{m['b_only_correct']:,} (exact McNemar test, p = {m['p_value']:.2g})"
    )
    reading = (
        "so the test set tells these two runs apart; seed-to-seed spread is not part of that test"
        if m["p_value"] < alpha
        else f"not below {alpha:g}, so the test set does not tell these two runs apart"
    )
    text = f"{lead}; {test}, {reading}."
    if not data.get("fair", True):
        text = f"Not a fair comparison: the two variants also differ in {'; '.join(data['confounds'])}. {text}"
    return text


def held_out_noise(held: Sequence[float]) -> float | None:
    """The held-out loss's own epoch-to-epoch noise: the standard deviation of its changes over the
    second half of the run (past the steep start); None with fewer than two such changes."""
    half = held[len(held) // 2 :]
    steps = [b - a for a, b in zip(half, half[1:])]  # no numpy: the report stage imports none
    return stdev(steps) if len(steps) >= 2 else None


def _held_out_reading(
    held: Sequence[float], accs: Sequence[float], epochs: Sequence[int], name: str, v: VerdictConfig
) -> str:
    """Overfitting, still improving, or level: each claimed only beyond ``noise_multiple`` x the run's own noise."""
    best = min(range(len(held)), key=held.__getitem__)
    noise = held_out_noise(held)
    if noise is None:
        return (
            f"The {name} loss is lowest at epoch {epochs[best]} ({held[best]:.4f}); {len(held)} epochs are too few "
            f"to measure its epoch-to-epoch noise, so neither overfitting nor room to improve is claimed."
        )
    bar = v.noise_multiple * noise
    noise_text = f"{v.noise_multiple:g} x its epoch-to-epoch noise ({noise:.4f}, over the second half of the run)"
    start = max(0, len(held) - 1 - v.trend_epochs)
    fall = held[start] - held[-1]
    rise = held[-1] - held[best]
    if best < len(held) - 1 and rise > bar:
        return (
            f"The {name} loss is lowest at epoch {epochs[best]} ({held[best]:.4f}) and rises to {held[-1]:.4f} by the "
            f"last epoch, more than {noise_text}, while {name} accuracy went from {pct(accs[best])} to "
            f"{pct(accs[-1])}: overfitting after epoch {epochs[best]}."
        )
    if fall > bar:
        return (
            f"The {name} loss fell {fall:.4f} over the last {len(held) - 1 - start} epochs (to {held[-1]:.4f}), more "
            f"than {noise_text}: still improving, so more epochs would likely still help."
        )
    where = "at the last epoch" if best == len(held) - 1 else f"at epoch {epochs[best]}"
    return (
        f"The {name} loss is lowest {where} ({held[best]:.4f}) and ends at {held[-1]:.4f}; its last "
        f"{len(held) - 1 - start} epochs moved it by less than {noise_text}: level, neither overfitting nor still "
        f"improving beyond its noise."
    )


def curve_behaviour(rows: Sequence[Mapping[str, str]], held_out: str, v: VerdictConfig) -> str:
    """How training and held-out (``test`` or ``val``) loss and accuracy move over the epochs; verdicts from
    the held-out curve only (:func:`_held_out_reading`)."""
    epochs = [int(r["epoch"]) for r in rows]
    train = [float(r["train_loss"]) for r in rows]
    held = [float(r[f"{held_out}_loss"]) for r in rows]
    accs = [float(r[f"{held_out}_accuracy"]) for r in rows]
    rises = [epochs[i] for i in range(1, len(train)) if train[i] > train[i - 1]]
    parts = [
        f"The training loss falls from {train[0]:.4f} (epoch {epochs[0]}) to {train[-1]:.4f} (epoch {epochs[-1]})"
        + (" and falls every epoch." if not rises else f", rising at epoch(s) {', '.join(map(str, rises))}.")
    ]
    last_fall = (train[-2] - train[-1]) / train[-2] if len(train) >= 2 and train[-2] > 0 else 0.0
    if last_fall > v.train_loss_fall:
        parts.append(
            f"It still fell {100 * last_fall:.0f}% in the last epoch (the held-out loss says whether that helps)."
        )
    name = "test" if held_out == "test" else "validation"
    parts.append(_held_out_reading(held, accs, epochs, name, v))
    train_acc, held_acc = float(rows[-1]["train_accuracy"]), accs[-1]
    gap = 100 * (train_acc - held_acc)
    if gap > 0:
        parts.append(
            f"At the last epoch training accuracy ({pct(train_acc)}, averaged over the epoch while the weights "
            f"still change) is {gap:.2f} points above {name} accuracy ({pct(held_acc)})."
        )
    else:
        parts.append(
            f"At the last epoch {name} accuracy ({pct(held_acc)}) is at or above the training accuracy "
            f"({pct(train_acc)}, averaged over the epoch while the weights still change): no gap that would "
            f"show overfitting."
        )
    return " ".join(parts)


def confusions(rows: Sequence[Mapping[str, str]], classes: Sequence[str] | None = None, top: int = 3) -> str:
    """The most frequent (true -> predicted) mistakes and the class with the lowest recall."""
    name = (lambda i: classes[int(i)]) if classes else str
    pairs = Counter((r["label"], r["predicted"]) for r in rows if r["label"] != r["predicted"])
    support = Counter(r["label"] for r in rows)
    correct = Counter(r["label"] for r in rows if r["label"] == r["predicted"])
    if not pairs:
        return f"All {len(rows):,} test images are classified correctly."
    listed = ", ".join(f"{name(t)} read as {name(p)} ({n})" for (t, p), n in pairs.most_common(top))
    worst = min(support, key=lambda c: (correct[c] / support[c], c))
    return (
        f"{sum(pairs.values()):,} of {len(rows):,} test images are misclassified. The most frequent confusions "
        f"are {listed}. The class recognised least often is {name(worst)} "
        f"({pct(correct[worst] / support[worst])} of its {support[worst]:,} images)."
    )
