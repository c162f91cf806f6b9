"""The README's results table says what the committed run measured.

Its accuracy and training-time columns are typed by hand, so they went stale once when the
results were regenerated on another CPU; this test reads the table with markdown-it-py and holds
each row to the variant's own files (`reports/<v>/metrics.json`, `timings.json`).
"""

from __future__ import annotations

import json
from pathlib import Path

from markdown_it import MarkdownIt

from pipeline.core.params import load_all

ROOT = Path(__file__).resolve().parents[1]


def results_table(markdown: str) -> list[dict[str, str]]:
    """The first table after the ``## Results`` heading, one dict per row keyed by the header."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    heading = next(
        (
            i
            for i, tok in enumerate(tokens)
            if tok.type == "heading_open" and tok.tag == "h2" and tokens[i + 1].content == "Results"
        ),
        len(tokens),
    )
    rows: list[list[str]] = []
    for tok in tokens[heading + 3 :]:  # past the heading's open, text and close
        if tok.type == "table_close" or (tok.type == "heading_open" and tok.tag == "h2"):
            break  # the table ends, or the section ends without one
        if tok.type == "tr_open":
            rows.append([])
        elif tok.type == "inline" and rows:  # a cell's text (paragraphs before the table have no row)
            rows[-1].append(tok.content)
    assert rows, "README.md: no table under '## Results'"
    header, *body = rows
    return [dict(zip(header, cells, strict=True)) for cells in body]


def test_the_table_is_read_cell_by_cell():
    text = "# x\n\n## Results\n\n| variant | test accuracy |\n| --- | --- |\n| `a` | 0.5 |\n\n## Other\n\n| b |\n| --- |\n| 1 |\n"
    assert results_table(text) == [{"variant": "`a`", "test accuracy": "0.5"}]


def test_every_variant_has_a_row_with_its_measured_accuracy_and_training_time():
    rows = results_table((ROOT / "README.md").read_text(encoding="utf-8"))
    names = [row["variant"].strip("`") for row in rows]
    assert names == list(load_all(ROOT / "params.yaml").variants)  # every variant, in params order
    for name, row in zip(names, rows, strict=True):
        metrics = json.loads((ROOT / "reports" / name / "metrics.json").read_text())
        timings = json.loads((ROOT / "reports" / name / "timings.json").read_text())
        assert row["test accuracy"] == f"{metrics['test_accuracy']:.4f}", name
        assert row["training"].split(" (")[0] == f"{round(timings['train_seconds'])} s", name
