"""The results report: ``report/README.md`` and a self-contained ``report/index.html``.

Nothing here measures anything. Every number is read from a file another stage wrote
under ``reports/`` (see ``dvc.yaml``) or, for what the assignments' own handouts reported,
from ``references/handout_results.yaml``, which quotes the line each number comes from.
A missing input is never filled in: its place says ``not produced yet (run `dvc repro
<stage>`)``, naming the stage that writes it (``inputs.WRITERS``, checked against
``dvc.yaml`` by the tests).

The report lives in its own top-level folder ``report/``, outside the ``reports/``
folder it reads (the report stage depends on the whole of ``reports/``; an output
inside its own dependency would always be stale). It is built once, as Markdown with
links relative to ``report/`` (``../reports/<variant>/eval/confusion_matrix.png``; it
renders on any git host). ``index.html`` is that same Markdown turned into HTML
(:mod:`pipeline.report.html`, markdown-it-py), with every image embedded as a base64
``data:`` URI, inline CSS, no scripts and a Content-Security-Policy that forbids any
fetch, so it opens anywhere, offline. Same inputs -> same bytes: no clock, no
randomness, files read in a fixed order.

Which variants and comparisons appear comes from ``params.yaml`` alone (``variants``,
``analysis.comparisons``), never from code: a variant added to params shows up, with
"not produced yet" where its files are still missing.

Layout: summary table, data, one section per assignment (in the order of
``references/handout_results.yaml``), the params variants no assignment lists,
cross-assignment analysis, time.

One concern per module: :mod:`~pipeline.report.inputs` (what is read, and which stage writes
a missing file), :mod:`~pipeline.report.document` (the Markdown blocks, heading anchors,
links), :mod:`~pipeline.report.formats` (how numbers are written),
:mod:`~pipeline.report.tables` (per-variant tables and figures),
:mod:`~pipeline.report.sections` (the sections), :mod:`~pipeline.report.data` (the Data
section), :mod:`~pipeline.report.timings` (the Time section), :mod:`~pipeline.report.html`
(the self-contained page); this module puts them in order and writes the two files.

Files read under ``reports/`` (paths relative to it; ``<v>`` = every params variant):
``<v>/{metrics,training,timings}.json``, ``<v>/eval/``, ``<v>/analysis/`` (filters.png, loss_curve.png,
shape_trace.md, layer_summary.md, param_counts.json), ``comparisons/<key>.{md,json}``,
``analysis/padding_shapes.md``, ``<classwise variant>/classwise_norms/``, ``data/``,
``autograder.json``, ``cse849/q1_test.txt``, ``benchmarks/``, ``timing.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.core.io import write_text
from pipeline.report.data import data_section
from pipeline.report.document import Bullets, Markdown, slug
from pipeline.report.html import render_html
from pipeline.report.inputs import OUT, Inputs
from pipeline.report.sections import (
    DEVIATIONS_TITLE,
    OTHER_TITLE,
    analysis_section,
    assignment_section,
    deviations_section,
    other_variants,
    other_variants_section,
    summary,
)
from pipeline.report.timings import time_section


def build_markdown(inputs: Inputs) -> Markdown:
    doc = Markdown(inputs)
    doc.heading(1, "Results: five CNN assignments, regenerated")
    doc.para(
        "Written by the `report` stage (`python -m pipeline.stages.report`, see `dvc.yaml`) from the files under "
        "`reports/`; every number links to the file it comes from, and every file to the stage that writes it. "
        "A self-contained copy with the images embedded: [`index.html`](index.html)."
    )
    others = other_variants(inputs)
    sections = [
        "Summary",
        "Data",
        *(a["title"] for a in inputs.seeds.values()),
        *([OTHER_TITLE] if others else []),
        *([DEVIATIONS_TITLE] if inputs.deviations else []),
        "Analysis across assignments",
        "Time",
    ]
    contents = len(doc.blocks)  # filled in last: it links every answer, whose ids exist once written
    summary(doc)
    data_section(doc)
    listed: list[str] = []
    for key, a in inputs.seeds.items():
        assignment_section(doc, key, a)
        listed += [v for v in a.get("variants") or [] if v not in listed]
    if others:
        other_variants_section(doc, others)
    if inputs.deviations:
        deviations_section(doc)
    analysis_section(doc)
    time_section(doc, [*listed, *others])
    answers_by_title = {a["title"]: doc.answer_links.get(key) for key, a in inputs.seeds.items()}
    items = []
    for title in sections:
        item = f"[{title}](#{slug(title)})"
        if links := answers_by_title.get(title):
            item += "\n  - Answers: " + " · ".join(links)
        items.append(item)
    doc.blocks.insert(contents, Bullets(tuple(items)))
    return doc


@dataclass
class Report:
    markdown: str
    html: str
    images: list[str]  # link targets relative to report/ (``../reports/...``), in order of appearance


def build_report(root: str | Path = ".") -> Report:
    inputs = Inputs(root)
    doc = build_markdown(inputs)
    text = doc.text()
    return Report(markdown=text, html=render_html(text, OUT, inputs.root), images=list(dict.fromkeys(doc.images)))


def write_report(root: str | Path = ".") -> Report:
    """Write ``<root>/report/README.md`` and ``<root>/report/index.html`` (each atomically)."""
    report = build_report(root)
    out = Path(root) / OUT
    write_text(out / "README.md", report.markdown)
    write_text(out / "index.html", report.html)
    return report
