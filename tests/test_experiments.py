"""Integration (slow, ~2 min): the README's experiment recipes on a tiny pipeline that uses the real engine.

A temporary git + DVC repository holds a copy of the ``pipeline`` package, a data stage
that writes a small synthetic Practical-5-style npz dataset (a DVC-cached stage output,
so queued experiments, which copy only what git and DVC track, get it too), the real
``train`` stage (``python -m pipeline.stages.train <variant>``) for two tiny variants and
an aggregating ``summary`` stage that reads the whole ``reports/`` folder (as the
project's ``report`` does). On it, in order, as the README's Experiments section says:

* ``dvc exp run -S`` on one variant reruns that variant's stage and the aggregating
  stage only, changes ``params.yaml`` only in the overridden value, and leaves its
  results in the workspace; ``dvc exp show`` with ``--only-changed`` (the changed param
  in view at 120 columns) and ``--keep`` shows the variant's params and metrics beside
  the baseline;
* ``git restore .`` returns to the committed results; ``dvc exp apply`` and
  ``dvc exp branch`` bring an experiment back;
* a grid queued from the clean workspace (``dvc exp run --queue``, ``OMP_NUM_THREADS=1
  dvc queue start -j 2``, ``status``, ``logs``, ``stop``) carries only its own override,
  and each job ran on one torch thread;
* ``dvc plots diff`` of named experiments carries each one's per-epoch rows, leaves
  ``git status`` clean (``dvc_plots/`` is ignored), and its HTML (the offline template of
  ``.dvc/plots``) draws labelled charts in a browser that may fetch nothing;
* ``dvc dag --mermaid`` prints the graph.

The repository is built by ``tests/tiny_repo.py`` (shared with ``tests/test_gate.py``).
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.browser import POLICY, probe
from tests.tiny_repo import BIN, PARAMS, build_tiny_repo, dvc, git, tool_env

# The README's `dvc exp show` recipes. DVC matches --drop/--keep at the start of a column
# name; dependency columns are paths with no ':' (metrics are `file:key`, params dotted).
# What changed: dependency hashes and every metric but the test accuracy dropped, so the changed
# param stays in view at 120 columns (tests/test_readme.py holds the README to these strings).
CHANGED_DROP = "Created|[^:]*/[^:]*$|reports$|[^:]*:(?!test_accuracy$)"
VARIANT_KEEP = r"Experiment|variants\.{v}\.train\.|reports/{v}/[^:]*:"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    return build_tiny_repo(tmp_path_factory.mktemp("experiments") / "repo")


def exp_rows(repo: Path) -> list[dict]:
    """``dvc exp show --json`` flattened: one dict per row (baseline and experiments)."""
    data = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    rows = []
    for commit in data:
        for row in [commit, *[e for exp in commit.get("experiments") or [] for e in exp.get("revs") or []]]:
            fields = row.get("data") or {}
            params = fields.get("params", {}).get("params.yaml", {}).get("data", {})
            metrics = fields.get("metrics", {})
            if row.get("rev") == "workspace":
                continue
            out = {"name": row.get("name") or row.get("rev"), "rev": row.get("rev")}
            for variant in PARAMS["variants"]:
                out[f"{variant}.lr"] = params.get("variants", {}).get(variant, {}).get("train", {})["optimizer"]["lr"]
                data = metrics.get(f"reports/{variant}/metrics.json", {}).get("data", {})
                out[f"{variant}.test_accuracy"] = data.get("test_accuracy")
            rows.append(out)
    return rows


def markdown_table(markdown: str) -> list[dict[str, str]]:
    """A Markdown table as one {column: cell} per row."""
    lines = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]
    return [dict(zip(lines[0], row)) for row in lines[2:]]


def stages_run(output: str) -> set[str]:
    """The stages a ``dvc repro`` / ``dvc exp run`` ran, from its ``Running stage '...'`` lines."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def changed_files(repo: Path) -> set[str]:
    return {line[3:] for line in git("status", "--porcelain", "--untracked-files=all", cwd=repo).splitlines()}


def run_queue(repo: Path, jobs: int = 2) -> str:
    """The README's ``OMP_NUM_THREADS=1 dvc queue start -j 2`` (``tool_env`` caps the threads), wait
    until nothing is queued or running, ``dvc queue stop``; the final status."""
    try:
        # The worker it spawns lives on (until idle): give it a file, not our pipes, or
        # waiting for the pipes to close would wait for the worker.
        with open(repo.parent / "queue-start.log", "w") as log:
            subprocess.run(
                [str(BIN / "dvc"), "queue", "start", "-j", str(jobs)],
                cwd=repo,
                env=tool_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=120,
                check=True,
            )
        deadline = time.monotonic() + 240
        while True:
            status = dvc("queue", "status", cwd=repo).stdout
            if "Queued" not in status and "Running" not in status:
                return status
            assert time.monotonic() < deadline, f"queue not done after 240 s:\n{status}"
            time.sleep(3)
    finally:
        dvc("queue", "stop", cwd=repo, check=False, timeout=60)


def test_slow_experiment_recipes_of_the_readme(tiny_repo, tmp_path):
    repo = tiny_repo
    assert json.loads((repo / "reports/tiny/training.json").read_text())["epochs"] == 2
    metrics = json.loads((repo / "reports/tiny/metrics.json").read_text())
    assert set(metrics) == {"test_accuracy", "test_loss"} and 0 <= metrics["test_accuracy"] <= 1

    # --- one variant's experiment: its stage and the aggregating stage rerun, nothing else
    params_before = (repo / "params.yaml").read_text()
    done = dvc("exp", "run", "-n", "lr-0.1", "-S", "variants.tiny_b.train.optimizer.lr=0.1", cwd=repo)
    assert stages_run(done.stdout + done.stderr) == {"train@tiny_b", "summary"}, done.stdout
    # ... -S changes params.yaml in the overridden value only
    diff = [
        line
        for line in difflib.unified_diff(
            params_before.splitlines(), (repo / "params.yaml").read_text().splitlines(), n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == ["-        lr: 0.05", "+        lr: 0.1"], diff
    # ... and the results land in the workspace
    assert changed_files(repo) == {
        "params.yaml",
        "dvc.lock",
        "summary.md",
        "models/tiny_b.pt",
        "reports/tiny_b/metrics.json",
        "reports/tiny_b/plots/epochs.csv",
        "reports/tiny_b/plots/steps.csv",
        "reports/tiny_b/timings.json",
    }, changed_files(repo)

    # --- the README's two views: what changed (dependency hashes dropped), and one variant
    changed = markdown_table(dvc("exp", "show", "--md", "--only-changed", "--drop", CHANGED_DROP, cwd=repo).stdout)
    assert set(changed[0]) - {"reports/tiny_b/metrics.json:test_accuracy"} == {
        "Experiment",
        "variants.tiny_b.train.optimizer.lr",
    }, changed
    shown = subprocess.run(  # as a 120-column terminal shows it: nothing cut to "…"
        [str(BIN / "dvc"), "exp", "show", "--only-changed", "--drop", CHANGED_DROP, "--no-pager"],
        cwd=repo,
        env={**tool_env(), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    assert "lr-0.1" in shown and "variants.tiny_b.train.optimizer.lr" in shown and "…" not in shown, shown
    table = markdown_table(
        dvc("exp", "show", "--md", "--drop", ".*", "--keep", VARIANT_KEEP.format(v="tiny_b"), cwd=repo).stdout
    )
    assert set(table[0]) == {
        "Experiment",
        *(
            f"variants.tiny_b.train.{key}"
            for key in (
                "epochs",
                "batch_size",
                "optimizer.name",
                "optimizer.lr",
                "loss",
                "log_every_steps",
                "eval_batch_size",
            )
        ),
        "reports/tiny_b/metrics.json:test_accuracy",
        "reports/tiny_b/metrics.json:test_loss",
    }, table
    by_lr = {row["variants.tiny_b.train.optimizer.lr"]: row for row in table}
    assert {"0.05", "0.1"} <= set(by_lr) and "lr-0.1" in by_lr["0.1"]["Experiment"], table
    assert all(re.fullmatch(r"0?\.\d+|1(\.0+)?", row["reports/tiny_b/metrics.json:test_accuracy"]) for row in table), (
        table
    )

    # --- an experiment that fails leaves the last good results in place (persist: true)
    git("restore", ".", cwd=repo)
    model = (repo / "models/tiny.pt").read_bytes()
    # -1, not 0: an edit that keeps params.yaml's size, written within the second of DVC's
    # own checkout, is invisible to `git restore` (git compares size and whole-second mtime;
    # the README says how to restore then). This test is about DVC, not that race.
    failed = dvc("exp", "run", "-S", "variants.tiny.train.epochs=-1", cwd=repo, check=False)
    assert (
        failed.returncode != 0
        and "variants.tiny.train.epochs: must be positive, got -1" in failed.stdout + failed.stderr
    )
    assert (repo / "models/tiny.pt").read_bytes() == model and (repo / "reports/tiny/metrics.json").is_file()

    # --- back to the committed results, and an experiment back again
    git("restore", ".", cwd=repo)
    assert changed_files(repo) == set() and dvc("status", "-q", cwd=repo, check=False).returncode == 0
    dvc("exp", "apply", "lr-0.1", cwd=repo)
    assert "lr: 0.1" in (repo / "params.yaml").read_text()
    git("restore", ".", cwd=repo)
    dvc("exp", "branch", "lr-0.1", "try-lr-0.1", cwd=repo)
    assert "lr: 0.1" in git("show", "try-lr-0.1:params.yaml", cwd=repo)
    assert "lr: 0.1" not in (repo / "params.yaml").read_text()

    # --- a grid queued from the clean workspace carries its own override only
    dvc("exp", "run", "--queue", "-S", "variants.tiny.train.optimizer.lr=0.02,0.3", cwd=repo)
    queued = dvc("queue", "status", cwd=repo).stdout
    assert queued.count("Queued") == 2, queued
    status = run_queue(repo)
    assert status.count("Success") == 2 and "Failed" not in status, status
    rows = exp_rows(repo)
    grid = [r for r in rows if r["tiny.lr"] in (0.02, 0.3)]
    assert len(grid) == 2 and all(r["tiny_b.lr"] == 0.05 for r in grid), rows  # not the earlier 0.1
    assert all(isinstance(r["tiny.test_accuracy"], float) for r in grid), rows
    logs = dvc("queue", "logs", grid[0]["name"], cwd=repo).stdout
    assert "Running stage 'train@tiny'" in logs and "train@tiny_b" not in logs.replace("'train@tiny_b' didn't", ""), (
        logs
    )
    # ... each job on the one thread the README's recipe gives it (two jobs, two cores: no oversubscription)
    for row in grid:
        dvc("exp", "apply", row["name"], cwd=repo)
        assert json.loads((repo / "reports/tiny/timings.json").read_text())["threads"] == 1, row
        git("restore", ".", cwd=repo)
    assert changed_files(repo) == set()

    # --- per-epoch curves of named experiments, as data and as an offline page
    baseline = next(r for r in rows if r["tiny.lr"] == 0.05 and r["tiny_b.lr"] == 0.05)
    named = [baseline["name"], *(r["name"] for r in grid)]
    plots = json.loads(dvc("plots", "diff", *named, "--json", cwd=repo).stdout)["data"]
    assert set(plots) == {"reports/tiny/plots/epochs.csv", "reports/tiny_b/plots/epochs.csv"}  # a chart per variant
    points = [p for p in _walk(plots["reports/tiny/plots/epochs.csv"]) if isinstance(p, dict) and "rev" in p]
    for row in [baseline, *grid]:
        mine = {str(p["epoch"]): float(p["test_accuracy"]) for p in points if p["rev"] == row["name"]}
        assert set(mine) == {"1", "2"}, (row, json.dumps(plots)[:2000])
        assert mine["2"] == row["tiny.test_accuracy"], (row, mine)  # the last epoch is the checkpoint kept
    # ... and the README's recipe as written (its default output folder, dvc_plots/) leaves git status clean
    dvc("plots", "diff", *named, cwd=repo)
    assert (repo / "dvc_plots" / "index.html").is_file() and changed_files(repo) == set()
    page = tmp_path / "plots"
    dvc("plots", "diff", *named, "--targets", "reports/tiny/plots/epochs.csv", "-o", str(page), cwd=repo)
    html = (page / "index.html").read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in html and "<script src=" not in html  # the libraries are inline
    assert "tiny: test accuracy per epoch" in html and '"title": "test accuracy"' in html.replace("'", '"'), html[
        -3000:
    ]
    # Vega compiles expressions with `new Function`: allow that, and still no fetch of any kind.
    found, dom = probe(page / "index.html", tmp_path, POLICY + " 'unsafe-eval'")
    assert found["violations"] == "0" and found["fetched"] == "0", found.get("fetched-names")
    canvases = re.findall(r"<canvas [^>]*>", dom)
    assert len(canvases) == 1 and 'class="marks"' in canvases[0] and re.search(r'width="[1-9]', canvases[0]), dom[
        -2000:
    ]

    # --- the graph
    mermaid = dvc("dag", "--mermaid", cwd=repo).stdout
    assert mermaid.startswith("flowchart") and "train@tiny_b" in mermaid and "summary" in mermaid, mermaid


def _walk(node):
    """Every dict and list inside a JSON document."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
