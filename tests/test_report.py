"""The report stage on a fake ``reports/`` tree: numbers, differences, gaps, images, bytes.

The report reads ``reports/`` and writes ``report/README.md`` and ``report/index.html``
(links relative to ``report/``: ``../reports/...``).
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import report
from pipeline.core.errors import PipelineError
from pipeline.report import build_report, write_report
from pipeline.report.formats import listed, pct, points
from pipeline.report.html import markdown_to_html
from pipeline.report.inputs import Inputs
from tests.fake_reports import FAKE_METRICS, REPO, build_fake_repo, write_json


@pytest.fixture
def fake_repo(tmp_path) -> Path:
    return build_fake_repo(tmp_path / "repo")


def cells(markdown: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in markdown.splitlines():
        if line.startswith("| ") and [c.strip() for c in line.strip("|").split(" | ")][0] == first:
            return [c.strip() for c in line.strip().strip("|").split(" | ")]
    raise AssertionError(f"no table row starting with {first!r}")


def test_formats():
    assert pct(0.9942) == "99.42%"
    assert points(0.9871 - 0.9942) == "-0.71 pp"
    assert points(0.0) == "+0.00 pp" and points(-1e-9) == "+0.00 pp"
    assert (listed([]), listed(["a"]), listed(["a", "b"]), listed(["a", "b", "c"])) == (
        "",
        "a",
        "a and b",
        "a, b and c",
    )


def test_numbers_from_metrics_files_appear(fake_repo):
    rep = write_report(fake_repo)
    md = rep.markdown
    assert (fake_repo / "report" / "README.md").read_text(encoding="utf-8") == md
    assert (fake_repo / "report" / "index.html").read_text(encoding="utf-8") == rep.html
    assert not (fake_repo / "reports" / "README.md").exists() and not (fake_repo / "reports" / "index.html").exists()
    assert "98.71%" in md and "99.13%" in md  # hku test / validation accuracy
    assert "421,642" in md and "664.8" in md  # parameters, images per second
    assert "812.3 s (13.5 min)" in md  # training time
    assert "| q2 | 17 / 20 | 41 / 48 |" in md  # autograder
    # cse849 shortcut and occlusion blocks
    assert (
        "| gap_points | +11.12 pp |" in md and "| agree_accuracy | 81.23% |" in md and "| shortcut_rate | 5.67% |" in md
    )
    assert "| `digit_blanked` | 71.88% | -0.46 pp | 9.31% |" in md
    assert "| `cifar_blanked` | 11.23% | -61.11 pp | 87.65% |" in md
    assert "| macro f1 | 98.69% |" in md and "| misclassified | 129 |" in md
    assert "| `engine_float32` | 12.5 s | 4.90x | 4.50x | 95.18% |" in md  # loader benchmark
    assert "The machine was calm during this benchmark" in md
    assert "5,432.1 s (90.5 min)" in md and "2026-11-20T10:00:00+00:00" in md  # timing.json
    assert "0.1307" in md  # data stats
    assert "7 lines" in md  # q1_test.txt
    # per-class table of the evaluate stage
    assert cells(md, "9")[1:] == ["98.12%", "97.77%", "97.94%", "1,009"]
    # the variant configs come from params.yaml
    assert "`simple_cnn` (layers=custom" in md and "digit shuffled between images p=1.0" in md
    # per-variant analysis files: parameter counts, an included shape trace and layer summary
    assert "| [`hku_simplecnn`](../reports/hku_simplecnn/analysis/param_counts.json) | 582,218 | 582,218 | 0 |" in md
    assert "`[1, 1, 28, 28] -> [1, 784] -> [1, 128] -> [1, 10]`" in md
    assert "#### ds5220_mlp (`ds5220_mlp`)" in md and "##### Layers" in md  # the file's headings, shifted under ###
    # class-wise norms from reports/<variant>/classwise_norms/
    assert "| `conv1` | 2 | 0.2345 | 0.2345 | 0.3 | 0.5 | 0 | 0 |" in md  # the class-wise norm summary, in file order
    assert (
        "[`reports/cse849/classwise_norms/classwise_norms.json`](../reports/cse849/classwise_norms/classwise_norms.json)"
        in md
    )


def test_layer_benchmark_table(fake_repo):
    md = build_report(fake_repo).markdown
    assert cells(md, "conv 32->64 5x5, 12x12")[1:] == ["27.67 ms", "12.32 ms", "2.25x", "2.41x", "<= 2x", "**missed**"]
    assert cells(md, "SimpleCNN epoch")[1:] == ["46.8 s", "28.3 s", "1.66x", "-", "<= 1.5x", "**missed**"]
    assert cells(md, "max-pool 2x2")[1:] == ["1.17 ms", "0.90 ms", "1.30x", "-", "<= 3x", "met"]
    # peak memory: only rows that measured it, with its own verdict
    memory = md.split("Peak memory of one forward + backward")[1]
    assert cells(memory, "conv 32->64 5x5, 12x12")[1:] == [
        "17.6 MB", "4.3 MB", "15.3 MB", "2.0 MB", "12.5 MB", "1.22 (<= 1)", "**missed**"
    ]  # fmt: skip
    assert "| max-pool 2x2 |" not in memory.split("From ")[0]
    # the benchmark's own verdict on the machine is shown, with its reason
    assert (
        "**Unreliable measurement**: the machine was busy during this benchmark (load average 1.80 before the run)"
        in md
    )


def test_differences_against_the_seed(fake_repo):
    md = build_report(fake_repo).markdown
    # variant | quantity | this pipeline | seed reported | difference | source
    assert cells(md, "`hku_simplecnn`")[1:5] == ["test_accuracy", "98.71%", "99.42%", "-0.71 pp"]
    assert "| `hku_simplecnn` | val_accuracy | 99.13% | 99.22% | -0.09 pp |" in md
    assert "| `ds5220_mlp` | test_accuracy | 96.55% | 96.40% | +0.15 pp |" in md
    assert "| `ds5220_cnn` | test_accuracy | 98.89% | 98.46% | +0.43 pp |" in md
    assert "| `ds5220_mlp` | parameters | 101,770 | 101,770 | +0 |" in md
    assert "| `ds5220_cnn` | parameters | 47,658 | 47,658 | +0 |" in md
    # every seed number carries its quoted source line
    assert '"Test Accuracy: 99.42%"' in md and '"Test accuracy: 0.9846"' in md and "003_2605ca1e8b991a32.txt" in md
    # CSE 849: 72.34% is in the >= 70% tier: 15 of 20 points, 2.66 pp short of 75%
    assert "**72.34%** -> **15 / 20 points**" in md and "(2.66 pp short of the next tier)" in md
    # the summary
    assert "| `prac5` |" in md and "| 93.90% |" in md


def test_handout_numbers_match_the_handout_files():
    """Each quoted line is in its handout (../shared/seeds/), and the number parsed from it is the one recorded."""
    seeds_dir = REPO.parent / "shared" / "seeds"  # CI: ../shared beside the checkout
    if not seeds_dir.is_dir():
        pytest.skip(f"the handouts ({seeds_dir}) are not beside this checkout")
    seeds = yaml.safe_load((REPO / "references" / "handout_results.yaml").read_text(encoding="utf-8"))
    for key, a in seeds.items():
        text = (seeds_dir / a["handout"]).read_text(encoding="utf-8")
        for r in a.get("results") or []:
            assert r["quote"] in text, (key, r["quote"])
            numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", r["quote"])]
            expected = r["value"] * 100 if "accuracy" in r["metric"] and r["value"] <= 1 else r["value"]
            assert any(abs(n - expected) < 1e-9 or abs(n - r["value"]) < 1e-9 for n in numbers), (key, r)
        for tier in (a.get("grading") or {}).get("tiers", []):
            assert tier["quote"].replace("\\\\", "\\") in text, (key, tier["quote"])


def test_missing_inputs_say_not_produced_yet(fake_repo):
    (fake_repo / "reports" / "benchmarks" / "layers.json").unlink()
    md = build_report(fake_repo).markdown
    # every hint names the stage that writes the file (inputs.WRITERS)
    assert "results of `prac5`: not produced yet (run `dvc repro train@prac5`)" in md
    # the folder a declared stage owns: per-variant analysis figures and markdown
    assert "tdm_max: training loss vs examples seen: not produced yet (run `dvc repro analyze@tdm_max`)" in md
    assert "`reports/tdm_max/analysis/shape_trace.md`: not produced yet (run `dvc repro analyze@tdm_max`)" in md
    assert "`reports/prac5/analysis/layer_summary.md`: not produced yet (run `dvc repro analyze@prac5`)" in md
    assert cells(md, "`tdm_avg`")[1] == "not produced yet (run `dvc repro analyze@tdm_avg`)"  # parameter counts
    # comparisons: one per params key, each from its own stage
    assert "`reports/comparisons/pooling.md`: not produced yet (run `dvc repro compare@pooling`)" in md
    assert "`reports/comparisons/mlp_vs_cnn.md`: not produced yet (run `dvc repro compare@mlp_vs_cnn`)" in md
    assert "`reports/analysis/padding_shapes.md`: not produced yet (run `dvc repro padding`)" in md
    assert "layer benchmark: not produced yet (run `dvc repro bench_layers`)" in md
    assert "evaluation of `tdm_max`: not produced yet (run `dvc repro evaluate@tdm_max`)" in md
    assert (
        "cse849: class-wise mean feature-map norm per filter, conv block 5: "
        "`reports/cse849/classwise_norms/classwise_norms_conv5.png` is not written by `classwise_norms`"
    ) in md  # one figure per block of params analysis.classwise_norms.layers; the stage wrote conv1 only
    # a stage that ran but did not write this file: said so, no "not produced yet"
    assert "`reports/ds5220_mlp/eval/misclassified.png` is not written by `evaluate@ds5220_mlp`" in md
    # ... except a figure its stage writes only for some models (no filters for an MLP): left out
    assert "ds5220_mlp/analysis/filters.png" not in md and "ds5220_mlp: first-layer filters" not in md
    # nothing is invented for a variant without metrics
    summary = md.split("## Summary")[1].split("## Data")[0]
    row = next(line for line in summary.splitlines() if "| `tdm_max` |" in line)
    assert row.endswith("| `tdm_max` | - | not produced yet (run `dvc repro train@tdm_max`) | not reported | - |")
    time = md.split("\n## Time\n")[1]
    assert cells(time, "`tdm_max`")[1] == "not produced yet (run `dvc repro train@tdm_max`)"  # the time table

    (fake_repo / "reports" / "timing.json").unlink()
    md = build_report(fake_repo).markdown
    assert "wall time of `dvc repro`: not produced yet (run `make repro-timed`)" in md


def test_empty_reports_tree_renders(tmp_path):
    root = tmp_path / "bare"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    (root / "references").mkdir()
    shutil.copy(REPO / "references" / "handout_results.yaml", root / "references" / "handout_results.yaml")
    rep = build_report(root)
    assert rep.images == []
    assert rep.markdown.count("not produced yet") > 20
    summary = rep.markdown.split("## Summary")[1].split("## Data")[0]
    for line in summary.splitlines()[4:12]:  # every variant's row: nothing measured, nothing shown
        assert "not produced yet" in line.split(" | ")[3], line


def resolve(root: Path, target: str) -> Path:
    """A link target of report/README.md as a path under ``root``."""
    return root / posixpath.normpath(posixpath.join("report", target))


def test_every_image_in_readme_exists(fake_repo):
    rep = write_report(fake_repo)
    md = (fake_repo / "report" / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(linked) >= 12
    for target in linked:
        assert not re.match(r"[a-z]+:|/", target), target  # relative links only
        assert target.startswith("../reports/"), target  # from report/ into reports/
        assert resolve(fake_repo, target).is_file(), target
    assert set(linked) == set(rep.images)
    assert "![tdm_max: confusion matrix (test set)]" not in md  # not produced: no link
    assert "![cse849: confusion matrix (test set)](../reports/cse849/eval/confusion_matrix.png)" in md
    assert "![cse849: all first-layer filters](../reports/cse849/analysis/filters.png)" in md
    # an image inside an included markdown file is rebased from reports/comparisons/ onto report/
    assert "![curve](../reports/ds5220_mlp/analysis/loss_curve.png)" in md
    # every other relative link of the README points at a file that exists
    for target in re.findall(r"(?<!!)\[[^\]]*\]\(([^)#][^)]*)\)", md):
        assert resolve(fake_repo, target).exists() or target == "index.html", target


def test_every_link_within_the_report_reaches_a_heading(fake_repo):
    """The contents list every answer; each ``#anchor`` is an id the HTML gives a heading, and the
    ids are unique (answers headed alike in two sections get ``-1`` as on GitHub)."""
    rep = write_report(fake_repo)
    ids = re.findall(r'<h[1-6] id="([^"]+)"', rep.html)
    assert len(ids) == len(set(ids))
    links = re.findall(r"\]\(#([^)\s]+)\)", rep.markdown)
    answers = re.findall(r"^  - Answers: (.*)$", rep.markdown, flags=re.M)
    assert answers and all("](#" in line for line in answers)  # answers listed under their assignments
    assert links and not sorted(set(links) - set(ids))
    assert 'href="#' in rep.html


def test_html_is_self_contained(fake_repo):
    rep = write_report(fake_repo)
    page = (fake_repo / "report" / "index.html").read_text(encoding="utf-8")
    srcs = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(srcs) == len(re.findall(r"!\[[^\]]*\]\(", rep.markdown)) > len(rep.images) - 1
    assert all(src.startswith("data:image/png;base64,") for src in srcs)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "url(" not in page
    assert "<script" not in page and "<link" not in page
    assert "default-src 'none'" in page
    # the same content as the README: its numbers and its tables
    assert "98.71%" in page and "-0.71 pp" in page and page.count("<table>") == rep.markdown.count("\n|---")


def test_output_is_deterministic(fake_repo, tmp_path):
    first = build_report(fake_repo)
    copy = build_fake_repo(tmp_path / "again")
    second = build_report(copy)
    assert first.markdown == second.markdown and first.html == second.html
    # writing twice: the same bytes, and no temporary file left beside them
    write_report(fake_repo)
    before = {p.name: p.read_bytes() for p in (fake_repo / "report").iterdir()}
    write_report(fake_repo)
    assert {p.name: p.read_bytes() for p in (fake_repo / "report").iterdir()} == before
    assert sorted(before) == ["README.md", "index.html"]


def test_variant_only_in_params_appears(fake_repo):
    """A variant added to params.yaml alone (no code, no seed entry, no files) shows up everywhere."""
    params = yaml.safe_load((fake_repo / "params.yaml").read_text(encoding="utf-8"))
    params["variants"]["extra_cnn"] = dict(params["variants"]["ds5220_cnn"])
    (fake_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    md = build_report(fake_repo).markdown
    assert "- [Other variants](#other-variants)" in md and "\n## Other variants\n" in md
    summary = md.split("## Summary")[1].split("## Data")[0]
    assert (
        "| [Other variants](#other-variants) | `extra_cnn` | - | not produced yet (run `dvc repro train@extra_cnn`) |"
        in summary
    )
    other = md.split("\n## Other variants\n")[1].split("\n## ")[0]
    assert "|  | `extra_cnn` |" in other  # the "what was run" table, from params
    assert "| model | `ds5220_cnn` |" in other
    assert "results of `extra_cnn`: not produced yet (run `dvc repro train@extra_cnn`)" in other
    assert "evaluation of `extra_cnn`: not produced yet (run `dvc repro evaluate@extra_cnn`)" in other
    assert "extra_cnn: training loss vs examples seen: not produced yet (run `dvc repro analyze@extra_cnn`)" in other
    assert "extra_cnn: first-layer filters: not produced yet (run `dvc repro analyze@extra_cnn`)" in other
    assert "extra_cnn: confusion matrix (test set): not produced yet (run `dvc repro evaluate@extra_cnn`)" in other
    analysis = md.split("## Analysis across assignments")[1].split("\n## ")[0]
    assert (
        "`reports/extra_cnn/analysis/shape_trace.md`: not produced yet (run `dvc repro analyze@extra_cnn`)" in analysis
    )
    assert (
        "`reports/extra_cnn/analysis/layer_summary.md`: not produced yet (run `dvc repro analyze@extra_cnn`)"
        in analysis
    )
    assert cells(analysis, "`extra_cnn`")[1] == "not produced yet (run `dvc repro analyze@extra_cnn`)"
    time = md.split("\n## Time\n")[1]
    assert cells(time, "`extra_cnn`")[1] == "not produced yet (run `dvc repro train@extra_cnn`)"
    assert f"the {len(FAKE_METRICS)} of {len(params['variants'])} variants trained so far" in time
    # with its files produced, its numbers appear
    write_json(
        fake_repo / "reports" / "extra_cnn" / "metrics.json", {**FAKE_METRICS["ds5220_cnn"], "test_accuracy": 0.9777}
    )
    md = build_report(fake_repo).markdown
    assert "| [Other variants](#other-variants) | `extra_cnn` | - | 97.77% | no handout | - |" in md


def test_included_markdown_headings(fake_repo):
    """A per-variant file keeps its own top heading when it names the variant; otherwise it goes under one that does."""
    (fake_repo / "reports" / "hku_simplecnn" / "analysis" / "shape_trace.md").write_text(
        "# Tensor shapes (Practical 5, Figure 6)\n\n```\n# not a heading\n```\n\n## Detail\n\ntext\n", encoding="utf-8"
    )
    md = build_report(fake_repo).markdown
    traces = md.split("### Shape traces through each network")[1].split("### Layer summaries")[0]
    assert (
        "#### `hku_simplecnn`\n\n##### Tensor shapes (Practical 5, Figure 6)\n\n```\n# not a heading\n```\n\n###### Detail"
        in traces
    )
    summaries = md.split("### Layer summaries")[1].split("### Parameter counts")[0]
    assert "#### ds5220_mlp (`ds5220_mlp`)\n\nTotal params" in summaries and "#### `ds5220_mlp`" not in summaries


def test_comparisons_follow_params(fake_repo):
    """One subsection per params ``analysis.comparisons`` key, in params order; stale files are not shown."""
    (fake_repo / "reports" / "comparisons" / "removed.md").write_text(
        "# A comparison no longer in params\n", encoding="utf-8"
    )
    params = yaml.safe_load((fake_repo / "params.yaml").read_text(encoding="utf-8"))
    params["analysis"]["comparisons"]["depth"] = {"title": "Shallow vs deep", "a": "prac5", "b": "cse849"}
    (fake_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    md = build_report(fake_repo).markdown
    section = md.split("### Comparisons")[1].split("### Shape traces")[0]
    order = [
        section.index(t)
        for t in (
            "#### Max vs average pooling",
            "#### Normalized vs raw input (DS 5220 Part 4.4)",
            "#### MLP vs CNN",
            "#### Shallow vs deep",
        )
    ]
    assert order == sorted(order)
    assert "`reports/comparisons/depth.md`: not produced yet (run `dvc repro compare@depth`)" in section
    assert "| cnn vs raw | 0.34 pp |" in section
    assert (
        "From [`reports/comparisons/normalization.json`](../reports/comparisons/normalization.json) (stage `compare@normalization`)."
        in section
    )
    assert "no longer in params" not in md


def test_missing_files_name_the_stage_that_writes_them(fake_repo):
    """The hints table (every output of the real dvc.yaml: tests/test_depgraph.py)."""
    inputs = Inputs(fake_repo)
    expected = {
        "prac5/metrics.json": "train@prac5",
        "prac5/plots/steps.csv": "train@prac5",
        "prac5/eval/first20.png": "evaluate@prac5",
        "cse849/eval/confusion_matrix.png": "evaluate@cse849",
        "prac5/analysis/filters.png": "analyze@prac5",
        "prac5/analysis/param_counts.json": "analyze@prac5",
        "comparisons/pooling.json": "compare@pooling",
        "comparisons/mlp_vs_cnn.md": "compare@mlp_vs_cnn",
        "analysis/padding_shapes.md": "padding",
        "analysis/padding_shapes.json": "padding",
        "cse849/classwise_norms/classwise_norms_conv5.png": "classwise_norms",
        "cse849/q1_test.txt": "predict_cse849",
        "data/provenance.json": "download",
        "data/stats.json": "stats",
        "autograder.json": "autograde",
        "benchmarks/loader.json": "bench_loader",
        "benchmarks/layers.json": "bench_layers",
        "mitigation/patch_shuffle.json": "evaluate_mitigation@patch_shuffle",
        "mitigation/runs/patch_shuffle.json": "mitigation@patch_shuffle",
        "seed_study/runs/tdm_max.json": "seed_study@tdm_max",
        "seed_study/summary.json": "seed_study_summary",
        "timing.json": "!make repro-timed",
    }
    assert {rel: inputs.stage_for(rel) for rel in expected} == expected
    assert inputs.stage_for("nowhere/else.txt") is None
    assert inputs.missing("prac5/eval/first20.png") == "not produced yet (run `dvc repro evaluate@prac5`)"
    assert inputs.missing("timing.json") == "not produced yet (run `make repro-timed`)"


def test_stage_imports_only_what_it_needs():
    """``python -m pipeline.stages.report`` loads no project module beyond its dvc.yaml deps, and no torch."""
    code = (
        "import sys, pipeline.stages.report; "
        "print(' '.join(sorted(m for m in sys.modules if m == 'pipeline' or m.startswith('pipeline.'))))"
        "; print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    modules, heavy = done.stdout.splitlines()
    assert modules.split() == [
        "pipeline",
        "pipeline.analysis",  # the schemas of the files the report reads, each beside its producer
        "pipeline.analysis.schemas",
        "pipeline.core",
        "pipeline.core.cli",
        "pipeline.core.config",
        "pipeline.core.errors",
        "pipeline.core.io",
        "pipeline.core.params",
        "pipeline.core.schemas",
        "pipeline.grading",
        "pipeline.grading.schemas",
        "pipeline.inference",
        "pipeline.inference.schemas",
        "pipeline.report",
        "pipeline.report.answers",
        "pipeline.report.answers.base",
        "pipeline.report.answers.common",
        "pipeline.report.answers.cse849",
        "pipeline.report.answers.ds5220",
        "pipeline.report.answers.prac5",
        "pipeline.report.answers.sentences",
        "pipeline.report.answers.spec",
        "pipeline.report.answers.tdm",
        "pipeline.report.data",
        "pipeline.report.deviations",
        "pipeline.report.document",
        "pipeline.report.formats",
        "pipeline.report.html",
        "pipeline.report.inputs",
        "pipeline.report.mitigation",
        "pipeline.report.schemas",
        "pipeline.report.sections",
        "pipeline.report.tables",
        "pipeline.report.timings",
        "pipeline.stages",
        "pipeline.stages.report",
    ]
    assert heavy == "False False"


def test_markdown_to_html_subset():
    page = markdown_to_html(
        "# T `x`\n\n## T `x`\n\n| a | b \\| c |\n|---|---|\n| 1 | **2** |\n\n- one\n- [two](x.md)\n\n> q\n\n"
        "```\n<raw>\n```\n\n![cap](gone.png) ![img](here.png)\n",
        lambda src: "data:image/png;base64,AA==" if src == "here.png" else None,
    )
    assert '<h1 id="t-x">T <code>x</code></h1>' in page
    assert '<h2 id="t-x-1">T <code>x</code></h2>' in page  # ids unique, numbered as GitHub does
    assert "<th>b | c</th>" in page and "<td><strong>2</strong></td>" in page
    assert '<li><a href="x.md">two</a></li>' in page
    assert "<blockquote>\n<p>q</p>\n</blockquote>" in page and "&lt;raw&gt;" in page
    assert "[missing image: cap]" in page and '<img src="data:image/png;base64,AA==" alt="img" />' in page


def test_real_repository_renders():
    """The repository's own params.yaml, dvc.yaml and seed results, with whatever reports exist."""
    rep = build_report(REPO)
    assert "## Time" in rep.markdown and rep.html.startswith("<!DOCTYPE html>")
    for target in rep.images:
        assert (REPO / posixpath.normpath(posixpath.join(report.OUT, target))).is_file()
    for name in yaml.safe_load((REPO / "params.yaml").read_text())["variants"]:
        assert f"| `{name}` |" in rep.markdown, name  # every variant has its row (summary, time)
    ids = set(re.findall(r'<h[1-6] id="([^"]+)"', rep.html))
    assert not sorted(set(re.findall(r"\]\(#([^)\s]+)\)", rep.markdown)) - ids)  # every in-page link lands


def test_timing_writes_seconds_only_on_success(tmp_path):
    """``pipeline.timing`` (make repro-timed): the JSON the time section reads."""
    out = tmp_path / "timing.json"
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline.timing", "--out", str(out), "--", sys.executable, "-c", "pass"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    timing = json.loads(out.read_text())
    assert (
        set(timing) == {"dvc_repro_seconds", "stages", "date", "command", "cpus"} and timing["dvc_repro_seconds"] >= 0
    )
    assert timing["stages"] == {}  # the command printed no DVC stage lines
    out.unlink()
    bad = subprocess.run(
        [sys.executable, "-m", "pipeline.timing", "--out", str(out), "--", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 3 and not out.exists() and "not written" in bad.stderr


def test_timing_records_each_stage_from_dvc_output(tmp_path):
    """Per-stage wall time: from each of DVC's `Running stage` lines to the next one, in run order."""
    script = (
        "import time\n"
        "print(\"Running stage 'a':\", flush=True); time.sleep(0.3)\n"
        "print('> python -m something', flush=True)\n"
        "print(\"Running stage 'train@b':\", flush=True); time.sleep(0.6)\n"
    )
    out = tmp_path / "timing.json"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.timing", "--out", str(out), "--", sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "> python -m something" in done.stdout  # the output is passed through
    stages = json.loads(out.read_text())["stages"]
    assert list(stages) == ["a", "train@b"]
    assert 0.25 <= stages["a"] <= 0.55 and 0.55 <= stages["train@b"] <= 0.95


def test_report_tables_the_time_per_stage(fake_repo):
    stages = {"stats": 10.0, "train@tdm_max": 60.0, "report": 30.0}
    timing = {"command": "dvc repro", "date": "2026-11-20", "cpus": 2, "dvc_repro_seconds": 100.0, "stages": stages}
    write_json(fake_repo / "reports" / "timing.json", timing)
    md = report.build_report(fake_repo).markdown
    section = md[md.index("Where the time of that run went") :]
    order = [section.index(f"`{stage}`") for stage in ("train@tdm_max", "report", "stats")]
    assert order == sorted(order)  # slowest first
    assert "60.0%" in section


def test_rubric_latex_is_rendered_as_text():
    from pipeline.report.formats import latex_text

    assert latex_text(r"$\geq 70\%$ , but  $< 75\%$ : 15 pts") == "≥ 70%, but < 75% : 15 pts"
    assert latex_text(r"$< 60\%$ : 0 pts") == "< 60% : 0 pts"


def test_composite_channel_statistics_read_in_image_order(fake_repo):
    channels = {"b": 0.42, "g": 0.43, "r": 0.44}  # the file's keys are sorted: b, g, r
    write_json(
        fake_repo / "reports" / "data" / "stats.json",
        {"composite": {"train": {"count": 10, "label_agreement": 0.64, "mean": channels, "std": channels}}},
    )
    md = write_report(fake_repo).markdown
    rows = [line for line in md.splitlines() if line.startswith("| train |") and " R " in line]
    assert rows and all(row.index(" R ") < row.index(" G ") < row.index(" B ") for row in rows), rows


def test_seed_study_tables_and_verdicts_follow_the_summary(fake_repo):
    from pipeline.analysis import seed_study_summary
    from pipeline.core.params import load_all
    from pipeline.studies import seed_study

    def runs(accs):
        return [{"seed": 7 + k, "test_accuracy": a, "test_loss": 0.1} for k, a in enumerate(accs)]

    study = {
        "tdm_max": runs([0.990, 0.991, 0.992]),
        "tdm_avg": runs([0.980, 0.982, 0.981]),
        "ds5220_cnn": runs([0.990, 0.975, 0.992]),
        "ds5220_cnn_raw": runs([0.980, 0.982, 0.981]),
    }
    params = load_all(fake_repo / "params.yaml")
    comparisons = [
        seed_study_summary.comparison_summary(key, params, study, 0.95, 0.05) for key in ("pooling", "normalization")
    ]
    variants = {
        name: {"seeds": [7, 8, 9], "test_accuracy": seed_study.spread([r["test_accuracy"] for r in rs])}
        for name, rs in study.items()
    }
    write_json(
        fake_repo / "reports" / "seed_study" / "summary.json",
        {"seeds": 3, "confidence": 0.95, "alpha": 0.05, "variants": variants, "comparisons": comparisons},
    )
    md = build_report(fake_repo).markdown
    assert "Seed study: Over 3 seeds, `tdm_max` is more accurate than `tdm_avg` by the t-interval" in md
    assert "Seed study: Over 3 seeds, neither test tells `ds5220_cnn` and `ds5220_cnn_raw` apart" in md
    assert "With 3 seeds the sign test's smallest possible two-sided p is 0.25: 3 seeds cannot reach p < 0.05" in md
    assert cells(md, "[`tdm_max`](../reports/seed_study/runs/tdm_max.json)")[1:] == [
        "3", "99.10%", "0.10 points", "99.00%", "99.20%"
    ]  # fmt: skip
    title = params.comparison("pooling").title
    assert cells(md, title)[1:] == ["`tdm_max` - `tdm_avg`", "+1.00", "+0.75 to +1.25", "3 / 0", "0.25", "yes", "yes"]
    assert cells(md, params.comparison("normalization").title)[-3:] == ["1", "no", "yes"]
    # the Summary leads with the typical figure of a studied variant
    assert (
        cells(md, "[TDM 40200](#tdm-40200---project-2-convolutional-neural-network)")[2] == "99.10% +- 0.10 (3 seeds)"
    )


def test_seed_study_missing_says_which_stage_writes_it(fake_repo):
    md = build_report(fake_repo).markdown
    assert "Seed study: every comparison over several seeds" in md
    assert "seed_study_summary" in md.split("Seed study: every comparison over several seeds")[1].split("\n#")[0]


def test_assignment_extras_are_data_and_an_unknown_one_is_named(fake_repo):
    """Sections only one assignment has are listed in handout_results.yaml (``extras``), not keyed by assignment in code."""
    seeds_file = fake_repo / "references" / "handout_results.yaml"
    seeds = yaml.safe_load(seeds_file.read_text(encoding="utf-8"))
    seeds["tdm"]["extras"] = ["autograder"]  # another assignment's section, moved by data alone
    seeds["hku"].pop("extras")
    seeds_file.write_text(yaml.safe_dump(seeds, sort_keys=False), encoding="utf-8")
    md = build_report(fake_repo).markdown
    tdm, hku = md.index("## TDM 40200"), md.index("## HKU A3")
    assert tdm < md.index("### Autograder (Questions 1-4") < hku
    assert "### Output shapes with and without padding" not in md
    seeds["tdm"]["extras"] = ["no_such_section"]
    seeds_file.write_text(yaml.safe_dump(seeds, sort_keys=False), encoding="utf-8")
    with pytest.raises(
        PipelineError, match=r"handout_results\.yaml: tdm\.extras: unknown section 'no_such_section'; known: "
    ):
        build_report(fake_repo)


def test_deliverables_and_grade_files_come_from_the_handout_results(fake_repo):
    seeds_file = fake_repo / "references" / "handout_results.yaml"
    seeds = yaml.safe_load(seeds_file.read_text(encoding="utf-8"))
    seeds["cse849"]["deliverables"] = {"weights": "cse849/final.pt", "predictions": "cse849/answers.txt"}
    seeds["cse849"]["grading"]["grade"] = "cse849/ta.json"
    seeds_file.write_text(yaml.safe_dump(seeds, sort_keys=False), encoding="utf-8")
    (fake_repo / "reports" / "cse849" / "answers.txt").write_text("00000.png 3\n00001.png 7\n", encoding="utf-8")
    grade = {"graded": True, "correct": 7, "images": 10, "accuracy": 0.7, "points": 15, "max_points": 20}
    write_json(fake_repo / "reports" / "cse849" / "ta.json", grade)
    md = build_report(fake_repo).markdown
    assert "### Deliverables: `final.pt` and `answers.txt`" in md
    assert "`reports/cse849/final.pt`: not produced yet" in md
    assert "[`reports/cse849/answers.txt`](../reports/cse849/answers.txt): 2 lines, first ones:" in md
    assert "7 / 10 correct, **15 / 20 points**" in md and "ta.json" in md
    del seeds["cse849"]["deliverables"]
    seeds_file.write_text(yaml.safe_dump(seeds, sort_keys=False), encoding="utf-8")
    with pytest.raises(PipelineError, match="deliverables needs `weights` and `predictions`"):
        build_report(fake_repo)


def _study_row(row: str, augment: dict, test: float, shortcut: float, flip: float, seconds: float = 300.0) -> dict:
    full = {
        "hflip": 0.5,
        "random_erasing": {"p": 0.0, "scale": [0.02, 0.33], "ratio": [0.3, 3.3], "value": 0.0},
        "gaussian_noise": {"mean": 0.0, "sigma": 0.0, "clip": False},
        "patch_shuffle": {"p": 0.0, "region": ""},
        "blank": {"p": 0.0, "region": ""},
    }
    full.update(augment)
    return {
        "row": row,
        "variant": f"cse849@{row}",
        "augment": full,
        "epochs": 4,
        "checkpoint_epoch": 4,
        "test_accuracy": test,
        "test_loss": 0.9,
        "val_accuracy": test + 0.01,
        "val_loss": 0.8,
        "shortcut": {
            "agree_accuracy": 0.9,
            "agree_count": 1000,
            "disagree_accuracy": test - 0.02,
            "disagree_count": 9000,
            "gap_points": 100 * (0.92 - test),
            "shortcut_rate": shortcut,
        },
        "occlusion": {
            "digit_blanked": {"accuracy": test - 0.01, "change_points": -1.0},
            "cifar_blanked": {"accuracy": 0.1, "change_points": 100 * (0.1 - test)},
        },
        "counterfactual": {"flip_rate": flip, "accuracy": test, "predicted_digit_rate": 0.1, "images": 10000},
        "train_seconds": seconds,
    }


def test_mitigation_study_table_and_reading_follow_the_rows(fake_repo):
    erasing = {"random_erasing": {"p": 0.5, "scale": [0.02, 0.33], "ratio": [0.3, 3.3], "value": 0.0}}
    noise = {"gaussian_noise": {"mean": 0.0, "sigma": 0.1, "clip": False}}
    rows = {
        "flip_only": ({}, 0.60, 0.24, 0.40),
        "random_erasing": (erasing, 0.62, 0.20, 0.35),
        "gaussian_noise": (noise, 0.59, 0.23, 0.38),
        "erasing_and_noise": ({**erasing, **noise}, 0.61, 0.18, 0.30),
        "patch_shuffle": ({"patch_shuffle": {"p": 1.0, "region": "digit"}}, 0.66, 0.03, 0.02),
        "digit_blanked": ({"blank": {"p": 1.0, "region": "digit"}}, 0.65, 0.04, 0.10),
    }
    folder = fake_repo / "reports" / "mitigation"
    for name, (augment, test, shortcut, flip) in rows.items():
        write_json(folder / f"{name}.json", _study_row(name, augment, test, shortcut, flip))
    md = build_report(fake_repo).markdown
    assert cells(md, "`patch_shuffle`") == [
        "`patch_shuffle`", "horizontal flip p=0.5; digit shuffled between images p=1.0", "67.00%", "66.00% +- 0.47",
        "90.00%", "64.00%", "3.00%", "65.00%", "10.00%", "2.00% +- 0.14", "300.0 s (5.0 min)",
    ]  # fmt: skip
    assert (
        "Of the remedies that are not told where the digit is (`random_erasing`, `gaussian_noise` and "
        "`erasing_and_noise`), none meets the bar for removing the shortcut (a shortcut rate under 5% and a flip "
        "rate under 3%, params `verdicts`); the lowest flip rate is `erasing_and_noise`'s, 30.00% against the "
        "reference's 40.00%." in md
    )
    assert (
        "Of the remedies that know where the digit is (`patch_shuffle` and `digit_blanked`), `patch_shuffle` meets "
        "the bar for removing the shortcut" in md
    )
    # digit_blanked: under the shortcut-rate bar, not under the flip-rate bar: said, with its flip rate
    assert "`digit_blanked` meets the shortcut-rate bar (4.00%) but not the flip-rate bar: changing only the " in md
    # 2 standard errors of a difference of two accuracies near 60% on 10,000 images: about 1.4 points
    assert (
        "Test accuracy against the reference, beyond 2 standard errors of the difference: `random_erasing` +2.00 pp "
        "(noise bar 1.38 points)" in md
    )
    assert "within that noise, so not told apart by this test set: `gaussian_noise` -1.00 pp (noise bar 1.39" in md
    assert "Two more random seeds of the decisive rows, `flip_only` and `patch_shuffle`, would take about " in md
    assert "1,200.0 s (20.0 min) of training at the times above; they were not run." in md
    assert cells(md, "`erasing_and_noise`")[1] == (
        "horizontal flip p=0.5; RandomErasing p=0.5, scale [0.02, 0.33], ratio [0.3, 3.3], value 0.0; "
        "GaussianNoise mean=0.0, sigma=0.1"
    )  # the settings table's describer: one wording for a variant and a study row
    assert "All 6 rows trained in 1,800.0 s (30.0 min)" in md

    # other numbers, another reading
    write_json(
        folder / "erasing_and_noise.json", _study_row("erasing_and_noise", {**erasing, **noise}, 0.61, 0.02, 0.01)
    )
    md = build_report(fake_repo).markdown
    assert "`erasing_and_noise`), `erasing_and_noise` meets the bar for removing the shortcut" in md

    (folder / "gaussian_noise.json").unlink()  # a missing row: said so, and no reading of a partial table
    md = build_report(fake_repo).markdown
    assert "mitigation study row `gaussian_noise`" in md and "run `dvc repro evaluate_mitigation@gaussian_noise`" in md
    assert "Test accuracy against the reference" not in md
