"""The per-variant tables and figures: what was run, results, the handout's numbers and rubric, evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.core.config import AugmentConfig, VariantConfig
from pipeline.report.document import Markdown, ref
from pipeline.report.formats import by_name, latex_text, metric_diff, metric_value, num, pct, seconds

# Figures shown for every variant, in order: (path under reports/, caption, optional). An
# optional figure is one its stage writes only for some models (filters: not for an MLP);
# when absent it is left out rather than reported missing.
VARIANT_FIGURES = [
    ("{v}/analysis/loss_curve.png", "training loss vs examples seen", False),
    ("{v}/analysis/filters.png", "first-layer filters", True),
    ("{v}/eval/confusion_matrix.png", "confusion matrix (test set)", False),
    ("{v}/eval/first20.png", "predictions on the first 20 test images", False),
    ("{v}/eval/misclassified.png", "misclassified test images", False),
]


def describe_model(v: VariantConfig) -> str:
    args = ", ".join(f"{k}={v.model.args[k]}" for k in v.model.args)
    return f"`{v.model.name}`" + (f" ({args})" if args else "")


def describe_data(v: VariantConfig) -> str:
    text = f"{v.data.format} from `{v.data.path}`"
    if v.data.format == "image_folder":
        return text + "; its own val split"
    if v.data.val_fraction:
        return text + f"; {v.data.val_fraction:.0%} of train held out for validation"
    return text


def describe_normalization(v: VariantConfig) -> str:
    n = v.data.normalize
    if n.mode == "none":
        return "none (pixels / 255)"
    if n.mode == "train":
        return "mean/std measured on the training split"
    return f"mean {n.mean}, std {n.std}"


def describe_augment(a: AugmentConfig) -> str:
    """A training-time augmentation block in words: a variant's (settings table) or a study row's.

    Names follow torchvision's v2 transforms (``RandomErasing``, ``GaussianNoise``) with their
    arguments, so a reader can look each one up; the region changes are this project's.
    """
    parts = []
    if a.hflip:
        parts.append(f"horizontal flip p={a.hflip}")
    if a.random_erasing.p:
        e = a.random_erasing
        parts.append(f"RandomErasing p={e.p}, scale {e.scale}, ratio {e.ratio}, value {e.value}")
    if a.gaussian_noise.sigma or a.gaussian_noise.mean:
        g = a.gaussian_noise
        parts.append(f"GaussianNoise mean={g.mean}, sigma={g.sigma}" + (", clipped" if g.clip else ""))
    if a.patch_shuffle.p:
        parts.append(f"{a.patch_shuffle.region} shuffled between images p={a.patch_shuffle.p}")
    if a.blank.p:
        parts.append(f"{a.blank.region} blanked p={a.blank.p}")
    return "; ".join(parts) or "none"


def describe_optimizer(v: VariantConfig) -> str:
    o = v.train.optimizer
    text = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(o.name, o.name)
    if o.momentum:
        text += f", momentum {o.momentum}" + (" (Nesterov)" if o.nesterov else "")
    if o.weight_decay:
        text += f", weight decay {o.weight_decay}"
    return text


def describe_scheduler(v: VariantConfig) -> str:
    s = v.train.scheduler
    return "none (constant lr)" if s.name == "none" else f"{s.name}, down to {s.eta_min} (stepped per epoch)"


RUN_ROWS = [
    ("model", describe_model),
    ("data", describe_data),
    ("normalization", describe_normalization),
    ("augmentation (train only)", lambda v: describe_augment(v.data.augment)),
    ("optimizer", describe_optimizer),
    ("learning rate", lambda v: num(v.train.optimizer.lr)),
    ("lr schedule", describe_scheduler),
    ("loss", lambda v: v.train.loss),
    ("epochs", lambda v: num(v.train.epochs)),
    ("batch size", lambda v: num(v.train.batch_size)),
    (
        "checkpoint kept",
        lambda v: "best validation accuracy" if v.train.checkpoint == "best_val_accuracy" else "last epoch",
    ),
    (
        "predictions",
        lambda v: "mean of image and its mirror (test-time flip)" if v.train.eval_hflip else "the image alone",
    ),
    ("precision", lambda v: v.train.precision + (", channels-last" if v.train.channels_last else "")),
    ("seed", lambda v: str(v.seed)),
]


def run_table(doc: Markdown, variants: list[str]) -> None:
    configs = {name: doc.inputs.variant(name) for name in variants}
    absent = [name for name, cfg in configs.items() if cfg is None]
    present = [name for name in variants if configs[name] is not None]
    if present:
        rows = [[label] + [describe(configs[name]) for name in present] for label, describe in RUN_ROWS]
        doc.table(["", *(f"`{name}`" for name in present)], rows)
    if absent:
        doc.para("Not in `params.yaml` (nothing to run): " + ", ".join(f"`{name}`" for name in absent) + ".")


RESULT_ROWS = [
    ("test accuracy", "test_accuracy", pct),
    ("test loss", "test_loss", num),
    ("validation accuracy", "val_accuracy", pct),
    ("checkpoint epoch / epochs", None, None),
    ("parameters", "parameters", num),
    ("training time", "train_seconds", seconds),
    ("training images / s", "train_images_per_second", num),
]


def results_table(doc: Markdown, variants: list[str]) -> None:
    """This pipeline's numbers, straight from each ``reports/<variant>/metrics.json``."""
    metrics = {name: doc.inputs.metrics(name) for name in variants}
    found = {name: m for name, m in metrics.items() if m is not None}
    produced = list(found)
    rows = []
    for label, key, fmt in RESULT_ROWS:
        row: list[Any] = [label]
        for m in found.values():
            if key is None or fmt is None:
                row.append(
                    f"{m['checkpoint_epoch']} / {m['epochs']}" if "checkpoint_epoch" in m and "epochs" in m else "-"
                )
            else:
                row.append(fmt(m[key]) if key in m else "-")
        if any(cell != "-" for cell in row[1:]):
            rows.append(row)
    if produced:
        doc.table(["", *(f"`{name}`" for name in produced)], rows)
        doc.para(
            "From "
            + ", ".join(ref(f"{name}/metrics.json") for name in produced)
            + " and each variant's `training.json` and `timings.json` beside it (stage `train`)."
        )
    for name in variants:
        if metrics[name] is None:
            doc.missing(f"{name}/metrics.json", f"results of `{name}`")


def seed_table(doc: Markdown, assignment: Mapping[str, Any]) -> None:
    """This pipeline's numbers next to the handout's own, with the difference."""
    results = assignment.get("results") or []
    handout_file = assignment.get("handout", "?")
    if not results:
        return
    rows, sources = [], []
    for i, r in enumerate(results, start=1):
        variant, metric, value = r["variant"], r["metric"], r["value"]
        m = doc.inputs.metrics(variant)
        if m is None:
            ours, diff = doc.inputs.missing(f"{variant}/metrics.json"), "-"
        elif metric not in m:
            ours, diff = f"not in `{variant}/metrics.json`", "-"
        else:
            ours, diff = metric_value(metric, m[metric]), metric_diff(metric, m[metric], value)
        rows.append([f"`{variant}`", metric, ours, metric_value(metric, value), diff, f"[{i}]"])
        sources.append(f'[{i}] `{handout_file}`, {r.get("section", "")}: "{r["quote"]}"')
    doc.table(["variant", "quantity", "this pipeline", "handout reported", "difference", "handout source"], rows)
    doc.bullets(sources)


def grading_table(doc: Markdown, assignment: Mapping[str, Any]) -> None:
    """CSE 849: which tier of the handout's test-accuracy rubric this pipeline's model reaches."""
    grading = assignment.get("grading")
    if not grading:
        return
    metric = grading.get("metric", "test_accuracy")
    tiers = sorted(grading["tiers"], key=lambda t: -t["min_accuracy"])
    for variant in assignment.get("variants", []):
        m = doc.inputs.metrics(variant)
        if m is None or metric not in m:
            doc.para(f"Grading tier of `{variant}`: {doc.inputs.missing(f'{variant}/metrics.json')}.")
            continue
        acc = m[metric]
        reached = next(t for t in tiers if acc >= t["min_accuracy"])
        higher = [t for t in tiers if t["min_accuracy"] > acc]
        nxt = f"{100 * (higher[-1]['min_accuracy'] - acc):.2f} pp short of the next tier" if higher else "top tier"
        rows = [
            [
                pct(t["min_accuracy"]) if t["min_accuracy"] > 0 else "below the others",
                f"{t['points']} / {grading['max_points']}",
                "**reached**" if t is reached else "",
                f'"{latex_text(t["quote"])}"',
            ]
            for t in tiers
        ]
        doc.para(
            f"`{variant}` {metric.replace('_', ' ')} **{pct(acc)}** -> **{reached['points']} / "
            f"{grading['max_points']} points** of the handout's rubric ({nxt})."
        )
        doc.table(["test accuracy at least", "points", f"`{variant}`", "rubric (the handout's)"], rows)
    grade_file = grading.get("grade")
    grade = doc.inputs.json(grade_file) if grade_file else None
    if grade is not None and grade.get("graded"):
        shortcut = grade.get("shortcut") or {}
        rate = shortcut.get("shortcut_rate")
        doc.para(
            f"This project's re-implementation of the course's grading (not the course's own script) on the "
            f"deliverable ({ref(grade_file)}, stage `{doc.inputs.stage_for(grade_file)}`: "
            f"`python -m pipeline grade-cse849 q1_test.txt`): {grade['correct']} / {grade['images']} correct, "
            f"**{grade['points']} / {grade['max_points']} points**"
            + (
                f"; where the digit disagrees with the label, {pct(rate)} of the predictions are the "
                f"digit's class (a model that ignores the digit: about (1 - accuracy) / 9 = "
                f"{pct((1 - grade['accuracy']) / 9)})."
                if rate is not None
                else "."
            )
        )


def flat_scalars(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar leaves of nested dicts as (dotted key, value), in the file's key order."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out += flat_scalars(v, f"{prefix}.{k}" if prefix else str(k))
    elif obj is None or isinstance(obj, (int, float, str, bool)):
        out.append((prefix, obj))
    return out


def scalar_table(doc: Markdown, obj: Any, header: tuple[str, str] = ("quantity", "value"), limit: int = 40) -> bool:
    items = flat_scalars(obj)
    if not items or len(items) > limit:
        return False
    doc.table(list(header), [[k, by_name(k.rsplit(".", 1)[-1] if "." in k else k, v)] for k, v in items])
    return True


PER_CLASS_COLUMNS = ("precision", "recall", "f1", "support")  # metrics.classification_metrics's per_class rows


def eval_section(doc: Markdown, variant: str) -> None:
    rel = f"{variant}/eval/metrics.json"
    ev = doc.json(rel, f"evaluation of `{variant}`")
    if ev is None:
        return
    # Everything but the per-class table and the CSE 849 blocks (shown in their own section).
    rest = {k: v for k, v in ev.items() if k not in ("shortcut", "occlusion", "per_class")}
    top = flat_scalars(rest)
    if top:
        doc.table(["quantity", "value"], [[k.replace(".", " "), by_name(k.rsplit(".", 1)[-1], v)] for k, v in top])
    rows = ev.get("per_class")
    if isinstance(rows, Mapping) and rows:
        doc.table(
            ["class", *PER_CLASS_COLUMNS],
            [[str(c), *(by_name(col, r.get(col)) for col in PER_CLASS_COLUMNS)] for c, r in rows.items()],
        )
    doc.para(f"From {ref(rel)}.")


def variant_figures(doc: Markdown, variant: str) -> None:
    doc.heading(4, f"Figures: `{variant}`")
    for pattern, caption, optional in VARIANT_FIGURES:
        rel = pattern.format(v=variant)
        if optional and not doc.inputs.exists(rel) and doc.inputs.path(rel).parent.is_dir():
            continue  # its stage ran and, by design, wrote no such figure for this model
        doc.figure(rel, f"{variant}: {caption}")


def generic_results_table(doc: Markdown, results: Mapping[str, Any], corner: str = "") -> None:
    """``{name: {key: scalar}}`` -> one row per name, one column per key (first-seen order)."""
    cols: list[str] = []
    for entry in results.values():
        if isinstance(entry, Mapping):
            cols += [k for k, v in entry.items() if k not in cols and not isinstance(v, (Mapping, list))]
    rows = [
        [f"`{name}`", *(by_name(c, entry[c]) if c in entry else "-" for c in cols)]
        for name, entry in results.items()
        if isinstance(entry, Mapping)
    ]
    doc.table([corner, *cols], rows)
