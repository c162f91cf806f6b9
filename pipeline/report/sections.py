"""The report's sections: summary, one per assignment (answers, extras), deviations, cross-assignment analysis."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.report.answers import SEED_STUDY, answers, dotted, has, seed_study_comparisons, seed_study_verdict
from pipeline.report.document import Markdown, Paragraph, link, md_escape, ref, slug
from pipeline.report.formats import by_name, listed, num, pct, points
from pipeline.report.inputs import HANDOUT_RESULTS, OUT, REPORTS, Inputs
from pipeline.report.mitigation import mitigation_study_section
from pipeline.report.tables import (
    describe_model,
    eval_section,
    generic_results_table,
    grading_table,
    results_table,
    run_table,
    scalar_table,
    seed_table,
    variant_figures,
)


def _typical(doc: Markdown) -> dict[str, str]:
    """Each studied variant's mean test accuracy +- std over the seed study's random seeds, as a cell."""
    study = doc.inputs.json(SEED_STUDY)
    variants = study.get("variants") if isinstance(study, Mapping) else None
    cells = {}
    for name, v in (variants or {}).items():
        acc = v.get("test_accuracy") if isinstance(v, Mapping) else None
        if has(acc, "mean", "std", "n") and acc["std"] is not None:
            cells[name] = f"{pct(acc['mean'])} +- {100 * acc['std']:.2f} ({acc['n']} seeds)"
    return cells


def summary(doc: Markdown) -> None:
    """One row per variant: the typical test accuracy over random seeds where studied, this run's, and the
    handout's where it reported one."""
    doc.heading(2, "Summary")
    handouts = doc.inputs.seeds  # references/handout_results.yaml: the handouts' reported numbers
    typical = _typical(doc)
    rows = []
    for a in handouts.values():
        reported = {r["variant"]: r["value"] for r in a.get("results") or [] if r["metric"] == "test_accuracy"}
        for variant in a.get("variants") or []:
            m = doc.inputs.metrics(variant)
            ours = (
                pct(m["test_accuracy"]) if m and "test_accuracy" in m else doc.inputs.missing(f"{variant}/metrics.json")
            )
            if variant in reported:
                theirs, diff = (
                    pct(reported[variant]),
                    (points(m["test_accuracy"] - reported[variant]) if m and "test_accuracy" in m else "-"),
                )
            else:
                theirs, diff = "not reported", "-"
            link_cell = f"[{a['title'].split(' - ')[0]}](#{slug(a['title'])})"
            rows.append([link_cell, f"`{variant}`", typical.get(variant, "-"), ours, theirs, diff])
    for variant in other_variants(doc.inputs):
        m = doc.inputs.metrics(variant)
        ours = pct(m["test_accuracy"]) if m and "test_accuracy" in m else doc.inputs.missing(f"{variant}/metrics.json")
        rows.append(
            [
                f"[{OTHER_TITLE}](#{slug(OTHER_TITLE)})",
                f"`{variant}`",
                typical.get(variant, "-"),
                ours,
                "no handout",
                "-",
            ]
        )
    header = ["assignment", "variant", "typical: mean +- std over random seeds", "this run", "handout reported"]
    doc.table([*header, "difference"], rows)
    handouts_link = posixpath.relpath(HANDOUT_RESULTS.as_posix(), OUT)
    doc.para(
        "Accuracies are on each assignment's test split. The typical figure is the seed study's (stage "
        '`seed_study_summary`; a dash where a variant is not studied); "this run" is the variant\'s own random seed, '
        "the run every other section shows; differences are this run minus the handout, in percentage points (pp). "
        f"Handout numbers: [`{HANDOUT_RESULTS.as_posix()}`]({handouts_link}), each with the line it quotes."
    )


OTHER_TITLE = "Other variants"


def other_variants(inputs: Inputs) -> list[str]:
    """The params.yaml variants that no assignment of handout_results.yaml lists, in params order."""
    listed = {v for a in inputs.seeds.values() for v in a.get("variants") or []}
    return [v for v in inputs.variant_names() if v not in listed]


def other_variants_section(doc: Markdown, variants: list[str]) -> None:
    """Variants that are in params.yaml only: the same tables and figures, without a handout to compare with."""
    doc.heading(2, OTHER_TITLE)
    doc.para(
        "In `params.yaml` `variants` but in no assignment of "
        f"`{HANDOUT_RESULTS.as_posix()}` (no handout numbers to compare with): "
        + ", ".join(f"`{v}`" for v in variants)
        + "."
    )
    doc.heading(3, "What was run")
    run_table(doc, variants)
    doc.heading(3, "Results")
    results_table(doc, variants)
    doc.heading(3, "Evaluation")
    for variant in variants:
        doc.heading(4, f"`{variant}`")
        eval_section(doc, variant)
        ev = doc.inputs.json(f"{variant}/eval/metrics.json")
        if isinstance(ev, Mapping) and (ev.get("shortcut") is not None or ev.get("occlusion") is not None):
            shortcut_occlusion(doc, variant, ev)
    for variant in variants:
        variant_figures(doc, variant)


def assignment_section(doc: Markdown, key: str, a: Mapping[str, Any]) -> None:
    variants = list(a.get("variants") or [])
    doc.heading(2, a["title"])
    doc.para(
        f"Handout: {a['title']} (`../shared/seeds/{a.get('handout', '?')}`). Variants in `params.yaml`: "
        + ", ".join(f"`{v}`" for v in variants)
        + "."
    )
    doc.heading(3, "What was run")
    run_table(doc, variants)
    doc.heading(3, "Results")
    results_table(doc, variants)
    if a.get("results"):
        doc.heading(3, "Compared with the handout")
        seed_table(doc, a)
    if a.get("grading"):
        doc.heading(3, "Grading tier (the handout's rubric)")
        grading_table(doc, a)
    doc.bullets(f"Note: {n}" for n in a.get("notes") or [])
    answers_section(doc, key)
    for name in a.get("extras") or []:
        if name not in EXTRAS:
            raise PipelineError(
                f"{HANDOUT_RESULTS}: {key}.extras: unknown section {name!r}; known: {', '.join(EXTRAS)}"
            )
        EXTRAS[name](doc, a)
    doc.heading(3, "Evaluation")
    for variant in variants:
        doc.heading(4, f"`{variant}`")
        eval_section(doc, variant)
    for variant in variants:
        variant_figures(doc, variant)


def answers_section(doc: Markdown, key: str) -> None:
    """The handout's written questions this pipeline's outputs answer (:mod:`pipeline.report.answers`)."""
    found = answers(key, doc.inputs)
    if not found:
        return
    doc.heading(3, "Answers to the handout's questions, from our measurements")
    index = len(doc.blocks)  # the list of links to every answer goes here, once their ids are known
    links = []
    for a in found:
        anchor = doc.heading(4, f"{a.question}. {md_escape(a.asked)}")
        links.append(f"[{a.question}](#{anchor})")
        doc.para(a.text[:1].upper() + a.text[1:])
        if a.sources:
            doc.para(f"From {', '.join(ref(rel) for rel in a.sources)}.")
    doc.blocks.insert(index, Paragraph("Questions: " + " · ".join(links)))
    doc.answer_links[key] = links


DEVIATIONS_TITLE = "Where this pipeline departs from the handouts"


def deviations_section(doc: Markdown) -> None:
    """``references/deviations.yaml``, grouped by assignment, with the measured figures it names."""
    doc.heading(2, DEVIATIONS_TITLE)
    doc.para(
        "From `references/deviations.yaml` (each entry pins the `params.yaml` values it describes; a test "
        "fails when they change). Measured figures are read from the stages' outputs."
    )
    titles = {key: a["title"] for key, a in doc.inputs.seeds.items()}
    for key in titles:
        entries = [d for d in doc.inputs.deviations if d.assignment == key]
        if not entries:
            continue
        doc.heading(3, titles[key])
        for d in entries:
            figures = []
            for m in d.measured:
                data = doc.inputs.json(m.file)
                try:
                    value = dotted(data, m.key)
                except KeyError:
                    figures.append(f"{m.label}: {doc.inputs.missing(m.file)}")
                    continue
                figures.append(f"{m.label} {by_name(m.key.rsplit('.', 1)[-1], value)} ({ref(m.file)})")
            doc.bullets(
                [
                    f"**{md_escape(d.topic)}.** Handout: {md_escape(d.handout_says)} Ours: {md_escape(d.ours)} "
                    f"Why: {md_escape(d.why)}" + (f" Measured: {'; '.join(figures)}." if figures else "")
                ]
            )


# --------------------------------------------------------------------------- extras
# Sections an assignment asks for beyond the common ones, named in references/handout_results.yaml
# (``extras: [...]``, in the order shown): the report has no code keyed by assignment.


def padding_shapes_section(doc: Markdown, a: Mapping[str, Any]) -> None:
    doc.heading(3, "Output shapes with and without padding")
    doc.include_markdown("analysis/padding_shapes.md", level=4)


def autograder_section(doc: Markdown, a: Mapping[str, Any]) -> None:
    doc.heading(3, "Autograder (Questions 1-4: custom layers against torch; the project's re-implementation)")
    grades = doc.json("autograder.json", "autograder scores")
    if grades is None:
        return
    rows = [
        [q, f"{g['score']} / {g['max']}", f"{g['passed']} / {g['total']}"]
        for q, g in grades.items()
        if isinstance(g, Mapping)  # the questions; the totals are numbers (grading.schemas.AutograderScores)
    ]
    rows.append(["**total**", f"**{grades['total']} / {grades['max_total']}**", ""])
    doc.table(["question", "score", "checks passed"], rows)
    uses = grades["forbidden_uses"]
    allowed = " Uses of operations the handout does not allow: " + (
        f"**{uses}** (each costs its question all 20 points, already deducted above)." if uses else "none."
    )
    doc.para(
        f"From {ref('autograder.json')} (stage `autograde`: this project's `layers.py` graded as a student's "
        "submission is, in a separate process; `python -m pipeline autograde --submissions DIR` grades a class). "
        "The grader is this project's re-implementation, not the course's `autograder.py` (which is not public): "
        "it calls each class only the way the handout's text does, compares with torch in the grading process, "
        "and deducts a question's 20 points for any operation the handout does not allow, found in the source "
        "or at run time (what it allows and deducts: the departures section, and "
        f"`tests/submissions/adversarial/` for submissions written to cheat).{allowed}"
    )


def shortcut_section(doc: Markdown, a: Mapping[str, Any]) -> None:
    doc.heading(3, "Shortcut, occlusion and counterfactual tests")
    doc.para(
        "On the composite test set: accuracy where the pasted digit agrees with the label vs where it "
        "disagrees (the gap is what a model using the digit shortcut loses), the share of disagreeing "
        "images predicted as the digit's class, the accuracy with one region blanked out "
        "(`params.yaml` `variants.<variant>.data.occlusion`, boxes from `composite.layout`), and the "
        "counterfactual test: every test image drawn again by the converter's code with a digit of "
        "another class (same photo), and the share of predictions that change (flip rate)."
    )
    for variant in a.get("variants") or []:
        rel = f"{variant}/eval/metrics.json"
        ev = doc.json(rel, f"shortcut / occlusion metrics of `{variant}`")
        if ev is None:
            continue
        if ev.get("shortcut") is None and ev.get("occlusion") is None:
            doc.para(f"`{REPORTS}/{rel}` has no `shortcut` / `occlusion` block (not composite data).")
            continue
        shortcut_occlusion(doc, variant, ev)


def cse849_deliverables_section(doc: Markdown, a: Mapping[str, Any]) -> None:
    """The files the course collects (``deliverables`` of the assignment's entry in references/handout_results.yaml)."""
    inputs = doc.inputs
    files = a.get("deliverables") or {}
    if not {"weights", "predictions"} <= set(files):
        raise PipelineError(f"{HANDOUT_RESULTS}: {a.get('title')}: deliverables needs `weights` and `predictions`")
    weights, predictions = files["weights"], files["predictions"]
    doc.heading(3, f"Deliverables: `{posixpath.basename(weights)}` and `{posixpath.basename(predictions)}`")
    if inputs.exists(weights):
        name = (a.get("variants") or [None])[0]
        variant = inputs.variant(name) if name else None
        built = describe_model(variant) if variant else "the network"
        doc.para(
            f"{ref(weights)} ({inputs.path(weights).stat().st_size / 1024:,.0f} KB, stage "
            f"`{inputs.stage_for(weights)}`): the kept model's weights alone, loadable the handout's way into {built}: "
            f'`model.load_state_dict(torch.load("{REPORTS}/{weights}"))`. The input normalization is not in it: '
            f"whoever loads these weights must normalize the images as training did (params "
            f"`variants.{name}.data.normalize`); `models/{name}.pt` carries it."
        )
    else:
        doc.missing(weights)
    preds = inputs.text(predictions)
    if preds is None:
        doc.missing(predictions)
    else:
        lines = preds.splitlines()
        doc.para(f"{ref(predictions)}: {len(lines):,} lines, first ones:")
        doc.code("\n".join(lines[:5]))


def classwise_norms_section(doc: Markdown, a: Mapping[str, Any]) -> None:
    inputs = doc.inputs
    cfg = inputs.params.analysis.classwise_norms
    layers = cfg.layers if cfg is not None else []
    doc.heading(
        3, f"Filters and class-wise feature-map norms (conv blocks {listed([str(k) for k in layers]) or 'none'})"
    )
    variant = cfg.variant if cfg is not None else None
    if not variant:
        doc.para("`params.yaml` has no `analysis.classwise_norms.variant`.")
        return
    folder = f"{variant}/classwise_norms"
    doc.figure(f"{variant}/analysis/filters.png", f"{variant}: all first-layer filters")
    for layer in layers:
        doc.figure(
            f"{folder}/classwise_norms_conv{layer}.png",
            f"{variant}: class-wise mean feature-map norm per filter, conv block {layer}",
        )
    doc.figure(f"{folder}/classwise_norms_heatmap.png", f"{variant}: class-wise norms, all filters")
    norms = doc.json(f"{folder}/classwise_norms.json", "class-wise norm summary")
    if norms is not None:
        generic_results_table(doc, {layer: v["summary"] for layer, v in norms.items()})  # schemas.LayerNorms
        doc.para(
            f"From {ref(f'{folder}/classwise_norms.json')}"
            + (
                f"; every value: {ref(f'{folder}/classwise_norms.csv')}"
                if inputs.exists(f"{folder}/classwise_norms.csv")
                else ""
            )
            + " (stage `classwise_norms`)."
        )


def shortcut_occlusion(doc: Markdown, variant: str, ev: Mapping[str, Any]) -> None:
    """The ``shortcut`` / ``occlusion`` blocks of an evaluate metrics file (composite data)."""
    rel = f"{variant}/eval/metrics.json"
    shortcut, occlusion = ev.get("shortcut"), ev.get("occlusion")
    if isinstance(shortcut, Mapping) and not scalar_table(doc, shortcut, (f"`{variant}` shortcut", "value")):
        doc.para(f"(see `{REPORTS}/{rel}`, key `shortcut`)")
    if isinstance(occlusion, Mapping) and occlusion:
        if all(isinstance(v, Mapping) for v in occlusion.values()):
            generic_results_table(doc, occlusion, f"`{variant}` occluded region")
        elif not scalar_table(doc, occlusion, (f"`{variant}` occlusion", "value")):
            doc.para(f"(see `{REPORTS}/{rel}`, key `occlusion`)")
    counterfactual = ev.get("counterfactual")
    if isinstance(counterfactual, Mapping) and not scalar_table(
        doc, counterfactual, (f"`{variant}` counterfactual (another digit)", "value")
    ):
        doc.para(f"(see `{REPORTS}/{rel}`, key `counterfactual`)")
    doc.para(f"From {ref(rel)} (stage `evaluate`).")


EXTRAS = {
    "padding_shapes": padding_shapes_section,
    "autograder": autograder_section,
    "shortcut_tests": shortcut_section,
    "mitigation_study": mitigation_study_section,
    "cse849_deliverables": cse849_deliverables_section,
    "classwise_norms": classwise_norms_section,
}


def analysis_section(doc: Markdown) -> None:
    """Comparisons (params ``analysis.comparisons``, in order), then each params variant's analysis files."""
    inputs = doc.inputs
    variants = inputs.variant_names()
    doc.heading(2, "Analysis across assignments")
    doc.heading(3, "Comparisons")
    comparisons = inputs.comparisons()
    if not comparisons:
        doc.para("`params.yaml` `analysis.comparisons` lists none.")
    for key, spec in comparisons.items():
        doc.include_markdown(f"comparisons/{key}.md", level=4, title=spec.title or key)
        if inputs.exists(f"comparisons/{key}.json"):
            doc.para(f"From {ref(f'comparisons/{key}.json')} (stage `{inputs.stage_for(f'comparisons/{key}.json')}`).")
        verdict = seed_study_verdict(inputs, key)
        if verdict:
            doc.para(f"Seed study: {verdict} From {ref(SEED_STUDY)} (stage `seed_study_summary`).")
    seed_study_section(doc)
    for file, title in [
        ("shape_trace.md", "Shape traces through each network"),
        ("layer_summary.md", "Layer summaries"),
    ]:
        doc.heading(3, title)
        for variant in variants:
            doc.include_markdown(f"{variant}/analysis/{file}", level=4, title=f"`{variant}`")
    doc.heading(3, "Parameter counts")
    rows = []
    for variant in variants:
        rel = f"{variant}/analysis/param_counts.json"
        counts = inputs.json(rel)
        if not isinstance(counts, Mapping):
            rows.append([f"`{variant}`", inputs.missing(rel), "", ""])
            continue
        rows.append(
            [
                f"[`{variant}`]({link(rel)})",
                *(num(counts[k]) if k in counts else "-" for k in ("total", "trainable", "non_trainable")),
            ]
        )
    if rows:
        doc.table(["variant", "parameters", "trainable", "non-trainable"], rows)
        doc.para(
            "From each `reports/<variant>/analysis/param_counts.json` (stage `analyze@<variant>`); "
            "the variant names link to the files."
        )


def _study_method(n: int, level: int, alpha: float) -> str:
    """How the seed study's differences are read, and what N seeds can show with a sign test at all."""
    floor = min(1.0, 2 * 0.5**n)
    return (
        f"Each variant of a studied comparison trained with {n} random seeds (its own, whose run is the one "
        f"reported above, and the next {n - 1}), each with the variant's own set-up; the two variants of a "
        f"comparison share their random seeds, so the differences are paired by seed. Two tests read them: the "
        f"two-sided {level}% t-interval of the mean paired difference ({n - 1} degrees of freedom), which uses the "
        f"sizes of the differences and which one outlying seed can widen past 0; and the exact sign test on how many "
        f"seeds each side is ahead (ties left out), which uses only their directions. With {n} seeds the sign test's "
        f"smallest possible two-sided p is {floor:.4g}"
        + (
            f", so it can reach p < {alpha:g} (params `verdicts.alpha`)."
            if floor < alpha
            else f": {n} seeds cannot reach p < {alpha:g} with it, whatever the data."
        )
    )


def _paired_row(c: Mapping[str, Any]) -> list[str]:
    """One studied comparison in the seed study's table (``summary.json`` is schema-checked on reading)."""
    return [
        str(c.get("title") or c["key"]),
        f"`{c['a']}` - `{c['b']}`",
        f"{c['mean_points']:+.2f}",
        f"{c['ci_low_points']:+.2f} to {c['ci_high_points']:+.2f}",
        f"{c['a_ahead']} / {c['b_ahead']}" + (f" ({c['ties']} tied)" if c.get("ties") else ""),
        "n/a" if c["sign_test_p"] is None else f"{c['sign_test_p']:.4g}",
        "yes" if c["distinguishable"] else "no",
        "yes" if c["fair"] else "**no**: " + "; ".join(c["confounds"]),
    ]


def seed_study_section(doc: Markdown) -> None:
    """Each studied variant's accuracy over N seeds, each studied comparison's paired
    difference with its interval and sign test, and the figure with the error bars."""
    inputs = doc.inputs
    doc.heading(3, "Seed study: every comparison over several seeds")
    summary = inputs.json(SEED_STUDY)
    if not isinstance(summary, Mapping) or not has(summary, "seeds", "confidence", "variants", "comparisons"):
        doc.missing(SEED_STUDY, "seed study")
        return
    n, level = summary["seeds"], round(100 * summary["confidence"])
    doc.para(_study_method(n, level, summary.get("alpha", inputs.verdicts.alpha)))
    rows = []
    for name, v in summary["variants"].items():
        acc = v.get("test_accuracy") or {}
        if not has(acc, "mean", "std", "min", "max", "n"):
            continue
        rows.append(
            [
                f"[`{name}`]({link(f'seed_study/runs/{name}.json')})",
                acc["n"],
                pct(acc["mean"]),
                f"{100 * acc['std']:.2f} points",
                pct(acc["min"]),
                pct(acc["max"]),
            ]
        )
    doc.table(["variant", "seeds", "mean test accuracy", "std", "min", "max"], rows)
    header = ["comparison", "a - b", "mean (points)", f"{level}% t-interval (points)", "seeds a ahead / b ahead"]
    header += ["sign test p", "t-interval excludes 0", "fair"]
    doc.table(header, [_paired_row(c) for c in seed_study_comparisons(inputs)])
    doc.figure(
        "seed_study/differences.png", f"Test accuracy per seed and paired differences with their {level}% intervals"
    )
    doc.para(
        f"From {ref(SEED_STUDY)} (stage `seed_study_summary`) and `reports/seed_study/runs/` (stages `seed_study@<variant>`)."
    )
