"""The CSE 849 mitigation study in the report: one row per remedy, and a reading of the table.

Reads ``reports/mitigation/<row>.json`` (stage ``mitigation@<row>``) for every row of
params ``mitigation_study.rows``, in order. The reading is computed from those numbers:
the first row is the reference the others are compared with, and a remedy "removes the
shortcut" when it meets the bar the main model is held to (shortcut rate under 5% and
counterfactual flip rate under 3%).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline import config
from pipeline.answers import pct
from pipeline.config import AugmentConfig
from pipeline.report.document import Markdown, ref
from pipeline.report.formats import listed, points, seconds
from pipeline.report.tables import describe_augment

SHORTCUT_RATE_BAR = 0.05  # the bar of issue 15 for the main model: shortcut rate under 5% ...
FLIP_RATE_BAR = 0.03  # ... and counterfactual flip rate under 3%


def row_augment(row: Mapping[str, Any], name: str) -> AugmentConfig:
    """A row's augmentation block, typed (its JSON is ``dataclasses.asdict`` of the AugmentConfig it trained with)."""
    return config.build(AugmentConfig, row["augment"], f"mitigation/{name}.json augment")


def knows_the_digit(augment: AugmentConfig) -> bool:
    """Whether a remedy is told where the digit is (a region change), unlike the seed's two."""
    return bool(augment.patch_shuffle.p or augment.blank.p)


def removes_shortcut(row: Mapping[str, Any]) -> bool:
    return row["shortcut"]["shortcut_rate"] < SHORTCUT_RATE_BAR and row["counterfactual"]["flip_rate"] < FLIP_RATE_BAR


def _names(rows: list[str]) -> str:
    return listed([f"`{r}`" for r in rows])


def reading(results: dict[str, Mapping[str, Any]]) -> list[str]:
    """Sentences that follow the table: what removes the shortcut, and what it costs in accuracy."""
    names = list(results)
    reference_name = names[0]
    reference = results[reference_name]
    augments = {r: row_augment(results[r], r) for r in names}
    blind = [r for r in names[1:] if not knows_the_digit(augments[r])]
    told = [r for r in names[1:] if knows_the_digit(augments[r])]
    sentences = [
        f"Reference: `{reference_name}` ({describe_augment(augments[reference_name])}), test accuracy "
        f"{pct(reference['test_accuracy'])}, shortcut rate {pct(reference['shortcut']['shortcut_rate'])}, "
        f"flip rate {pct(reference['counterfactual']['flip_rate'])}."
    ]
    for group, label in ((blind, "that are not told where the digit is"), (told, "that know where the digit is")):
        if not group:
            continue
        working = [r for r in group if removes_shortcut(results[r])]
        best = min(group, key=lambda r: results[r]["counterfactual"]["flip_rate"])
        flip = results[best]["counterfactual"]["flip_rate"]
        if working:
            verdict = f"{_names(working)} {'removes' if len(working) == 1 else 'remove'} the shortcut"
        else:
            verdict = "none removes the shortcut"
        sentences.append(
            f"Of the remedies {label} ({_names(group)}), {verdict} (shortcut rate under "
            f"{pct(SHORTCUT_RATE_BAR, 0)} and flip rate under {pct(FLIP_RATE_BAR, 0)}); the lowest flip rate is "
            f"`{best}`'s, {pct(flip)} against the reference's {pct(reference['counterfactual']['flip_rate'])}."
        )
    costs = [f"`{r}` {points(results[r]['test_accuracy'] - reference['test_accuracy'])}" for r in names[1:]]
    sentences.append("Test accuracy against the reference: " + ", ".join(costs) + ".")
    return sentences


def mitigation_study_section(doc: Markdown, a: Mapping[str, Any]) -> None:
    inputs = doc.inputs
    doc.heading(3, "Mitigation study: remedies against the shortcut at one budget")
    study = inputs.params.mitigation_study
    rows = list(study.rows) if study is not None else []
    if study is None or not rows:
        doc.para("`params.yaml` has no `mitigation_study.rows`.")
        return
    doc.para(
        f"Each row is `{study.base}` (its network, optimizer, schedule, seed and evaluation, "
        f"including its test-time flip averaging when it has one) trained {study.epochs} epochs with "
        "the row's training-time augmentation and nothing else changed (params `mitigation_study`; torchvision "
        "v2 semantics, applied per batch). The seed suggests `RandomErasing` and `GaussianNoise`; patch shuffle "
        "(this project's remedy, used by the main model) and digit blanking are told where the digit is. "
        "Flip rate: the share of test predictions that change when the test image is drawn again with a digit "
        "of another class (the counterfactual test of `evaluate`)."
    )
    results: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        found = doc.json(f"mitigation/{row}.json", f"mitigation study row `{row}`")
        if found is not None:
            results[row] = found
    if not results:
        return
    table = []
    for row, r in results.items():
        shortcut, occlusion, flip = r["shortcut"], r["occlusion"], r["counterfactual"]
        table.append(
            [
                f"`{row}`",
                describe_augment(row_augment(r, row)),
                pct(r["val_accuracy"]) if r.get("val_accuracy") is not None else "n/a",
                pct(r["test_accuracy"]),
                pct(shortcut["agree_accuracy"]) if shortcut.get("agree_accuracy") is not None else "n/a",
                pct(shortcut["disagree_accuracy"]) if shortcut.get("disagree_accuracy") is not None else "n/a",
                pct(shortcut["shortcut_rate"]) if shortcut.get("shortcut_rate") is not None else "n/a",
                *(
                    pct(occlusion[k]["accuracy"]) if k in occlusion else "n/a"
                    for k in ("digit_blanked", "cifar_blanked")
                ),
                pct(flip["flip_rate"]),
                seconds(r["train_seconds"]),
            ]
        )
    doc.table(
        [
            "row",
            "training augmentation",
            "val accuracy",
            "test accuracy",
            "digit agrees",
            "digit disagrees",
            "shortcut rate",
            "digit blanked",
            "CIFAR blanked",
            "flip rate",
            "training time",
        ],
        table,
    )
    if len(results) == len(rows):
        doc.para(" ".join(reading(results)))
        total = sum(r["train_seconds"] for r in results.values())
        doc.para(f'All {len(rows)} rows trained in {seconds(total)} on this machine (column "training time").')
    files = ", ".join(ref(f"mitigation/{row}.json") for row in results)
    doc.para(f"From {files} (stage `mitigation`).")
