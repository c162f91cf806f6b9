"""CSE 849's questions on the first-layer filters and the class-wise feature-map norms of a variant
(stages ``analyze@`` and ``classwise_norms``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.report.answers.base import Built, Reader, builder, has, table

SUMMARY_KEYS = ("summary.median_cv", "summary.filters", "summary.class_specific_filters", "summary.cv_threshold")


def _colour_kernel_classes(inputs: Reader, variant: str, data: Mapping[str, Any]) -> Built:
    """For each colour kernel of the filters file: the classes whose images it responds to most and least
    (``classwise_norms.csv``, its first-layer rows); ("", ()) when that file is missing."""
    rel = f"{variant}/classwise_norms/classwise_norms.csv"
    rows = table(inputs.text(rel), "layer", "filter", "class_name", "mean_norm")
    kernels = [f for f in data.get("filters") or [] if has(f, "filter", "kind") and f["kind"] == "colour"]
    if not rows or not kernels:
        return "", ()
    first_layer = rows[0]["layer"]
    said = []
    for kernel in kernels:
        norms = {
            r["class_name"]: float(r["mean_norm"])
            for r in rows
            if r["layer"] == first_layer and int(r["filter"]) == kernel["filter"]
        }
        if len(norms) < 3:
            continue
        ranked = sorted(norms, key=norms.__getitem__, reverse=True)
        said.append(
            f"kernel {kernel['filter']}{' (' + kernel['prefers'] + ')' if kernel.get('prefers') else ''} responds most "
            f"to {ranked[0]} ({norms[ranked[0]]:.2f}) and {ranked[1]} ({norms[ranked[1]]:.2f}) images and least to "
            f"{ranked[-1]} ({norms[ranked[-1]]:.2f}), {norms[ranked[0]] / norms[ranked[-1]]:.2f}x"
        )
    if not said:
        return "", ()
    return f" By class ({first_layer}'s mean feature-map norms): {'; '.join(said)}.", (rel,)


def _class_dependence(summary: Mapping[str, Any]) -> str:
    """How much the first layer's responses depend on the class, from the classwise_norms stage's summary."""
    generic = summary["class_specific_filters"] == 0
    return (
        f" How much their responses depend on the class: the median coefficient of variation of the first "
        f"layer's class-wise norms is {summary['median_cv']:.3f} and the largest {summary['max_cv']:.3f}; "
        f"{summary['class_specific_filters']} of {summary['filters']} filters pass the class-specific threshold "
        f"({summary['cv_threshold']:g}). "
        + (
            "So by that threshold these are patterns every class shares (edges, texture, colour contrast) "
            "rather than parts of one CIFAR-10 class."
            if generic
            else "So some first-layer filters already favour particular classes."
        )
    )


@builder
def first_layer_filters(inputs: Reader, variant: str) -> Built | None:
    """Q2 deliverable 2: what the first layer's kernels respond to, and how much that depends on the class."""
    rel = f"{variant}/analysis/filters.json"
    data = inputs.json(rel)
    if not has(data, "counts.colour", "counts.blob", "counts.edge/texture", "shape", "filters"):
        return None
    counts, n = data["counts"], data["shape"][0]
    by_colour = {c: k for c, k in (data.get("colour_preferences") or {}).items() if k}  # RGB input only
    colour = (
        f"{counts['colour']} to colour ("
        + ", ".join(f"{k} preferring {c}" for c, k in sorted(by_colour.items(), key=lambda kv: -kv[1]))
        + ")"
        if counts["colour"]
        else "none to colour"
    )
    text = (
        f"Measured on the weights of the {n} kernels of `{data.get('layer', 'conv1')}`: {counts['edge/texture']} "
        f"respond to grey-level structure with weights of both signs (edge and texture detectors), "
        f"{counts['blob']} to overall brightness and {colour}; a kernel counts as colour when over "
        f"{data.get('colour_share_threshold', 0.5):.0%} of its weight energy lies in differences between the RGB "
        f"channels."
    )
    sources: tuple[str, ...] = (rel,)
    norms_rel = f"{variant}/classwise_norms/classwise_norms.json"
    norms = inputs.json(norms_rel)
    first = next(iter(norms.values()), None) if isinstance(norms, Mapping) else None
    if has(first, *SUMMARY_KEYS, "summary.max_cv"):
        text += _class_dependence(first["summary"])
        sources += (norms_rel,)
    by_class, class_sources = _colour_kernel_classes(inputs, variant, data)
    return text + by_class, sources + class_sources


@builder
def early_vs_late(inputs: Reader, variant: str) -> Built | None:
    """Q2 deliverable 4: whether the late layer's responses depend more on the class than the early one's."""
    rel = f"{variant}/classwise_norms/classwise_norms.json"
    data = inputs.json(rel)
    if not isinstance(data, Mapping) or len(data) < 2 or not all(has(v, *SUMMARY_KEYS) for v in data.values()):
        return None
    # the stage's own summary, not recomputed here: one median for the table and this sentence
    summary = {layer: v["summary"] for layer, v in data.items()}
    first, last = list(summary)[0], list(summary)[-1]
    a, b = summary[first], summary[last]
    more = "more" if b["median_cv"] > a["median_cv"] else "less"
    reading = (
        "early filters respond to generic patterns, late ones to classes"
        if more == "more"
        else "the usual picture (generic early, class-specific late) does not hold here"
    )
    return (
        f"Across the {a['filters']} filters of {first} the median coefficient of variation of the class-wise "
        f"mean norms (std across the ten classes / mean) is {a['median_cv']:.3f}; across the {b['filters']} of "
        f"{last} it is {b['median_cv']:.3f}. Over the threshold of {a['cv_threshold']} (population std of the "
        f"class means above {a['cv_threshold']} of their mean; since that std is at most half their range, the "
        f"strongest class's mean norm is then over {1 + 2 * a['cv_threshold']:g} times the weakest's): "
        f"{a['class_specific_filters']} of {a['filters']} in {first}, {b['class_specific_filters']} "
        f"of {b['filters']} in {last}. The late layer's responses depend {more} on the class than the early "
        f"layer's: {reading}."
    ), (rel,)
