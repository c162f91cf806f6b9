"""The CSE 849 mitigation study in the report: one row per remedy, and a reading of the table.

Reads ``reports/mitigation/<row>.json`` (stage ``evaluate_mitigation@<row>``, which evaluates
``mitigation@<row>``'s checkpoint) for every row of params ``mitigation_study.rows``, in order. The reading is computed from those numbers:
the first row is the reference the others are compared with, and a remedy "removes the
shortcut" when it meets the bar the main model is held to (params ``verdicts.shortcut_rate_max``
and ``verdicts.flip_rate_max``). Every row is one training run: each accuracy and flip rate
carries its binomial standard error on the test images, and a gap to the reference counts only
beyond ``verdicts.noise_multiple`` standard errors of the difference (treated as unpaired: the
rows keep no per-image predictions, so this errs on the cautious side). Seed-to-seed spread is
not measured; the reading says so and what repeating the decisive rows would cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipeline.core import config
from pipeline.core.config import AugmentConfig
from pipeline.core.params import VerdictConfig
from pipeline.report.document import Markdown, ref
from pipeline.report.formats import listed, pct, points, seconds
from pipeline.report.tables import describe_augment


def row_augment(row: Mapping[str, Any], name: str) -> AugmentConfig:
    """A row's augmentation block, typed (its JSON is ``dataclasses.asdict`` of the AugmentConfig it trained with)."""
    return config.build(AugmentConfig, row["augment"], f"mitigation/{name}.json augment")


def knows_the_digit(augment: AugmentConfig) -> bool:
    """Whether a remedy is told where the digit is (a region change), unlike the handout's two."""
    return bool(augment.patch_shuffle.p or augment.blank.p)


def removes_shortcut(row: Mapping[str, Any], v: VerdictConfig) -> bool:
    return (
        row["shortcut"]["shortcut_rate"] < v.shortcut_rate_max and row["counterfactual"]["flip_rate"] < v.flip_rate_max
    )


def test_images(row: Mapping[str, Any]) -> int:
    """The labelled test images a row's accuracy is counted on (those whose digit agrees plus those it does not)."""
    return int(row["shortcut"]["agree_count"] + row["shortcut"]["disagree_count"])


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of a proportion ``p`` measured on ``n`` images."""
    return math.sqrt(p * (1 - p) / n) if n else math.nan


def with_error(p: float, n: int) -> str:
    return f"{pct(p)} +- {100 * standard_error(p, n):.2f}"


def _accuracy_gaps(results: dict[str, Mapping[str, Any]], v: VerdictConfig) -> str:
    """Each row's test accuracy against the reference's, and which gaps are within test-set noise."""
    names = list(results)
    ref_row = results[names[0]]
    within: list[str] = []
    beyond: list[str] = []
    for r in names[1:]:
        row = results[r]
        diff = row["test_accuracy"] - ref_row["test_accuracy"]
        se = math.hypot(
            standard_error(row["test_accuracy"], test_images(row)),
            standard_error(ref_row["test_accuracy"], test_images(ref_row)),
        )
        (beyond if abs(diff) > v.noise_multiple * se else within).append(
            f"`{r}` {points(diff)} (noise bar {100 * v.noise_multiple * se:.2f} points)"
        )
    text = "Test accuracy against the reference"
    if beyond:
        text += f", beyond {v.noise_multiple:g} standard errors of the difference: " + ", ".join(beyond)
    if within:
        text += (
            ("; " if beyond else ", ") + "within that noise, so not told apart by this test set: " + ", ".join(within)
        )
    return text + "."


def _names(rows: list[str]) -> str:
    return listed([f"`{r}`" for r in rows])


def _bar_text(v: VerdictConfig) -> str:
    return f"a shortcut rate under {pct(v.shortcut_rate_max, 0)} and a flip rate under {pct(v.flip_rate_max, 0)}"


def _half_met(results: dict[str, Mapping[str, Any]], group: list[str], v: VerdictConfig) -> list[str]:
    """Rows under the shortcut-rate bar whose flip rate is not: the digit still moves their predictions."""
    return [
        f"`{r}` meets the shortcut-rate bar ({pct(results[r]['shortcut']['shortcut_rate'])}) but not the flip-rate "
        f"bar: changing only the digit still changes {pct(results[r]['counterfactual']['flip_rate'])} of its test "
        f"predictions, so the digit still moves the network even where it no longer decides the class."
        for r in group
        if results[r]["shortcut"]["shortcut_rate"] < v.shortcut_rate_max
        and results[r]["counterfactual"]["flip_rate"] >= v.flip_rate_max
    ]


def reading(results: dict[str, Mapping[str, Any]], v: VerdictConfig) -> list[str]:
    """Sentences that follow the table: what removes the shortcut, what it costs in accuracy, and which
    gaps this one run per row cannot tell from noise."""
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
        working = [r for r in group if removes_shortcut(results[r], v)]
        best = min(group, key=lambda r: results[r]["counterfactual"]["flip_rate"])
        flip = results[best]["counterfactual"]["flip_rate"]
        if working:
            verdict = f"{_names(working)} {'meets' if len(working) == 1 else 'meet'} the bar for removing the shortcut"
        else:
            verdict = "none meets the bar for removing the shortcut"
        sentences.append(
            f"Of the remedies {label} ({_names(group)}), {verdict} ({_bar_text(v)}, params `verdicts`); the lowest "
            f"flip rate is `{best}`'s, {pct(flip)} against the reference's {pct(reference['counterfactual']['flip_rate'])}."
        )
        sentences += _half_met(results, group, v)
    sentences.append(_accuracy_gaps(results, v))
    return sentences


def _table_row(row: str, r: Mapping[str, Any]) -> list[str]:
    """One row of the study's table: its augmentation, accuracies (test with its standard error),
    shortcut and occlusion figures, flip rate with its standard error, and training time."""
    shortcut, occlusion, flip = r["shortcut"], r["occlusion"], r["counterfactual"]
    optional = lambda x: pct(x) if x is not None else "n/a"  # noqa: E731
    return [
        f"`{row}`",
        describe_augment(row_augment(r, row)),
        optional(r.get("val_accuracy")),
        with_error(r["test_accuracy"], test_images(r)),
        optional(shortcut.get("agree_accuracy")),
        optional(shortcut.get("disagree_accuracy")),
        optional(shortcut.get("shortcut_rate")),
        *(pct(occlusion[k]["accuracy"]) if k in occlusion else "n/a" for k in ("digit_blanked", "cifar_blanked")),
        with_error(flip["flip_rate"], int(flip["images"])),
        seconds(r["train_seconds"]),
    ]


def _one_run_caveat(results: dict[str, Mapping[str, Any]], epochs: int) -> str:
    """What one run per row cannot show, and the measured cost of repeating the two decisive rows."""
    names = list(results)
    best = min(names[1:], key=lambda r: results[r]["counterfactual"]["flip_rate"])
    cost = 2 * (results[names[0]]["train_seconds"] + results[best]["train_seconds"])
    return (
        f'Each row is one training run ({epochs} epochs, one random seed): "+-" is the standard error from the '
        f"number of test images alone, and the spread between random seeds is not measured, so gaps inside a few "
        f"standard errors may reverse with another seed. Two more random seeds of the decisive rows, `{names[0]}` "
        f"and `{best}`, would take about {seconds(cost)} of training at the times above; they were not run."
    )


def mitigation_study_section(doc: Markdown, a: Mapping[str, Any]) -> None:
    inputs = doc.inputs
    doc.heading(3, "Mitigation study: remedies against the shortcut at one budget")
    study = inputs.params.mitigation_study
    rows = list(study.rows) if study is not None else []
    if study is None or not rows:
        doc.para("`params.yaml` has no `mitigation_study.rows`.")
        return
    doc.para(
        f"Each row is `{study.base}` (its network, optimizer, schedule, random seed and evaluation, "
        f"including its test-time flip averaging when it has one) trained {study.epochs} epochs with "
        "the row's training-time augmentation and nothing else changed (params `mitigation_study`; torchvision "
        "v2 semantics, applied per batch). The handout suggests `RandomErasing` and `GaussianNoise`; patch shuffle "
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
    v = inputs.verdicts
    doc.table(
        [
            "row",
            "training augmentation",
            "val accuracy",
            "test accuracy +- SE",
            "digit agrees",
            "digit disagrees",
            "shortcut rate",
            "digit blanked",
            "CIFAR blanked",
            "flip rate +- SE",
            "training time",
        ],
        [_table_row(row, r) for row, r in results.items()],
    )
    if len(results) == len(rows):
        doc.para(" ".join(reading(results, v)))
        total = sum(r["train_seconds"] for r in results.values())
        doc.para(f'All {len(rows)} rows trained in {seconds(total)} on this machine (column "training time").')
        doc.para(_one_run_caveat(results, study.epochs))
    files = ", ".join(ref(f"mitigation/{row}.json") for row in results)
    doc.para(f"From {files} (stages `mitigation`, which trains each row, and `evaluate_mitigation`).")
