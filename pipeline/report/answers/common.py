"""The builders any assignment's questions use: a comparison of two variants, a training curve, a
per-epoch log printed the handout's way, a test accuracy. Which variant or comparison each one reads
is an argument, given by ``references/answers/<assignment>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pipeline.report.answers.base import Built, Reader, builder, has, table
from pipeline.report.answers.sentences import confusions, curve_behaviour, paired_comparison
from pipeline.report.formats import pct

SEED_STUDY = "seed_study/summary.json"


def seed_study_comparisons(inputs: Reader) -> list[Mapping[str, Any]]:
    """The studied comparisons in ``seed_study/summary.json`` that carry a key and a verdict, or []."""
    summary = inputs.json(SEED_STUDY)
    comparisons = summary.get("comparisons") if isinstance(summary, Mapping) else None
    return [
        c
        for c in comparisons or []
        if isinstance(c, Mapping) and isinstance(c.get("key"), str) and isinstance(c.get("verdict"), str)
    ]


def seed_study_verdict(inputs: Reader, key: str) -> str | None:
    """The seed study's sentence on comparison ``key`` (stage ``seed_study_summary``), if it was studied."""
    for c in seed_study_comparisons(inputs):
        if c["key"] == key:
            return c["verdict"]
    return None


def _loss_sentence(data: Mapping, names: tuple[str, str]) -> str:
    a, b = data["a"], data["b"]
    lower = a if a["test_loss"] < b["test_loss"] else b
    return f"Test loss: {a['test_loss']:.4f} against {b['test_loss']:.4f} (lower for `{lower['variant']}`)."


def _parameters_sentence(data: Mapping, names: tuple[str, str]) -> str:
    a, b = data["a"], data["b"]
    ratio = a["parameters"] / b["parameters"]
    fewer = f"{ratio:.1f}x fewer" if ratio > 1 else f"{1 / ratio:.1f}x more" if ratio < 1 else "as many"
    second = names[1][:1].upper() + names[1][1:]
    return f"{second} has {b['parameters']:,} trainable parameters against {a['parameters']:,}: {fewer}."


# What a comparison's answer says after the paired test (its ``then:`` in the YAML).
THEN: dict[str, Callable[[Mapping, tuple[str, str]], str]] = {
    "loss": _loss_sentence,
    "parameters": _parameters_sentence,
}


@builder
def comparison(
    inputs: Reader, comparison: str, names: tuple[str, str], then: Literal["loss", "parameters"] = "loss"
) -> Built | None:
    """Comparison ``comparison`` (``compare@``'s file, a key of params ``analysis.comparisons``), its two
    variants called ``names``: the seed study's typical figure first where there is one, then this run's."""
    rel = f"comparisons/{comparison}.json"
    data = inputs.json(rel)
    needed = [f"{s}.{k}" for s in "ab" for k in ("variant", "test_accuracy", "test_loss", "parameters")]
    needed += [f"mcnemar.{k}" for k in ("images", "a_only_correct", "b_only_correct", "p_value")]
    if not has(data, *needed):
        return None
    text = paired_comparison(names, data, inputs.verdicts.alpha)
    sources: tuple[str, ...] = (rel,)
    study = next((c for c in seed_study_comparisons(inputs) if c["key"] == comparison), None)
    if study and has(study, "n", "seeds"):
        text = (
            f"Typically (seed study): {study['verdict']} "
            f"This report's run of each (random seed {study['seeds'][0]}): {text}"
        )
        sources += (SEED_STUDY,)
    return f"{text} {THEN[then](data, names)}".strip(), sources


@builder
def curve(inputs: Reader, variant: str) -> Built | None:
    """How the variant's training and held-out loss and accuracy move over the epochs."""
    rel = f"{variant}/plots/epochs.csv"
    rows = table(inputs.text(rel), "epoch", "train_loss", "train_accuracy")
    if not rows:
        return None
    held = next((h for h in ("val", "test") if f"{h}_loss" in rows[0] and f"{h}_accuracy" in rows[0]), None)
    if held is None:
        return None
    return curve_behaviour(rows, held, inputs.verdicts), (rel,)


@builder
def confused_classes(inputs: Reader, variant: str) -> Built | None:
    """The variant's most frequent mistakes and its weakest class."""
    rel = f"{variant}/eval/predictions.csv"
    rows = table(inputs.text(rel), "label", "predicted")
    return None if not rows else (confusions(rows), (rel,))


@builder
def accuracy(inputs: Reader, variant: str, split: Literal["test", "val"] = "test") -> Built | None:
    rel = f"{variant}/metrics.json"
    metrics = inputs.json(rel)
    if not has(metrics, f"{split}_accuracy"):
        return None
    name = "test" if split == "test" else "validation"
    return f"`{variant}`: {pct(metrics[f'{split}_accuracy'])} {name} accuracy.", (rel,)


def _loss_line(r: Mapping[str, str], n: int) -> str:
    return f"Epoch [{r['epoch']}/{n}], Loss: {float(r['train_loss']):.4f}"


def _train_val_line(r: Mapping[str, str], n: int) -> str:
    line = (
        f"Epoch {r['epoch']}: Train Loss: {float(r['train_loss']):.4f}, "
        f"Train Accuracy: {100 * float(r['train_accuracy']):.2f}%"
    )
    if "val_loss" in r:
        line += (
            f" | Validation Loss: {float(r['val_loss']):.4f}, "
            f"Validation Accuracy: {100 * float(r['val_accuracy']):.2f}%"
        )
    return line


def _train_test_line(r: Mapping[str, str], n: int) -> str:
    line = f"Epoch {r['epoch']} Loss: {float(r['train_loss']):.4f} Accuracy: {100 * float(r['train_accuracy']):.2f}"
    if "test_loss" in r:
        line += f" Test Loss: {float(r['test_loss']):.4f} Test Accuracy: {100 * float(r['test_accuracy']):.2f}"
    return line


# How each handout's training loop prints an epoch (``line:`` in the YAML): one row of epochs.csv, n epochs.
LINES: dict[str, Callable[[Mapping[str, str], int], str]] = {
    "loss": _loss_line,
    "train_val": _train_val_line,
    "train_test": _train_test_line,
}


@builder
def epoch_log(
    inputs: Reader, variant: str, line: Literal["loss", "train_val", "train_test"], test_accuracy: bool = False
) -> Built | None:
    """The per-epoch log of ``epochs.csv`` printed the handout's way, closed by the test accuracy
    when the handout's script prints it last."""
    rel = f"{variant}/plots/epochs.csv"
    rows = table(inputs.text(rel), "epoch", "train_loss", "train_accuracy")
    if not rows:
        return None
    body = "\n".join(LINES[line](r, len(rows)) for r in rows)
    sources: tuple[str, ...] = (rel,)
    metrics_rel = f"{variant}/metrics.json"
    metrics = inputs.json(metrics_rel) if test_accuracy else None
    if has(metrics, "test_accuracy"):
        body += f"\n\nTest Accuracy: {100 * metrics['test_accuracy']:.2f}%"
        sources += (metrics_rel,)
    return f"In the handout's format, from our run:\n\n```\n{body}\n```", sources
