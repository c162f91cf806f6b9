"""Integration (slow, ~2 min): the README's experiment recipes on a tiny pipeline that uses the real engine.

A temporary git + DVC repository holds a copy of the ``pipeline`` package, a data stage
that writes a small synthetic Practical-5-style npz dataset (a DVC-cached stage output,
so queued experiments, which copy only what git and DVC track, get it too), the real
``train`` stage (``python -m pipeline.stages.train <variant>``) for two tiny variants and
an aggregating ``summary`` stage that reads the whole ``reports/`` folder (as the
project's ``report`` does). On it, in order, as the README's Experiments section says:

* ``dvc exp run -S`` on one variant reruns that variant's stage and the aggregating
  stage only, changes ``params.yaml`` only in the overridden value, and leaves its
  results in the workspace; ``dvc exp show`` with ``--only-changed`` and ``--keep``
  shows the variant's params and metrics beside the baseline;
* ``git restore .`` returns to the committed results; ``dvc exp apply`` and
  ``dvc exp branch`` bring an experiment back;
* a grid queued from the clean workspace (``dvc exp run --queue``, ``dvc queue start``,
  ``status``, ``logs``, ``stop``) carries only its own override;
* ``dvc plots diff`` of named experiments carries each one's per-epoch rows, and its
  HTML (the offline template of ``.dvc/plots``) draws labelled charts in a browser that
  may fetch nothing;
* ``dvc dag --mermaid`` prints the graph.

``build_tiny_repo`` is shared with ``tests/test_gate.py``.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.devtools.depgraph import entry_files, import_closure
from tests.browser import POLICY, probe

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: python and dvc

MAKE_DATA = '''"""Stage make_data: a tiny synthetic MNIST-like set in the Practical 5 npz format."""
import io
import zipfile
from pathlib import Path

import numpy as np
import yaml

cfg = yaml.safe_load(Path("params.yaml").read_text())["data"]
rng = np.random.default_rng(cfg["seed"])
out = Path("data/tiny")
out.mkdir(parents=True, exist_ok=True)
for split, n in (("train", cfg["n_train"]), ("test", cfg["n_test"])):
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 2 * label + 4, 4:24] = 255  # the label, drawn as a bright bar
    # npz with a fixed entry date: equal data -> equal bytes (numpy.savez stamps the time)
    with zipfile.ZipFile(out / f"{split}.npz", "w") as archive:
        for key, array in (("x", x.reshape(n, 784)), ("y", y.astype(np.int64))):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())
'''

TINY_VARIANT = {
    "seed": 5,
    "data": {"format": "mnist_npz", "path": "data/tiny", "normalize": {"mode": "none"}},
    "model": {"name": "prac5_cnn"},
    "train": {
        "epochs": 2,
        "batch_size": 32,
        "optimizer": {"name": "sgd", "lr": 0.05},
        "loss": "one_hot_cross_entropy",
        "log_every_steps": 5,
        "eval_batch_size": 160,
    },
}
PARAMS = {
    "data": {"seed": 0, "n_train": 320, "n_test": 160},
    # deep copies: shared dicts would be dumped as YAML aliases, which `-S` edits all at once
    "variants": {"tiny": copy.deepcopy(TINY_VARIANT), "tiny_b": {**copy.deepcopy(TINY_VARIANT), "seed": 6}},
}

SUMMARIZE = '''"""Stage summary: one line per variant from reports/<variant>/metrics.json (like the report)."""
import json
from pathlib import Path

lines = [f"{p.parent.name}: {json.loads(p.read_text())}" for p in sorted(Path("reports").glob("*/metrics.json"))]
Path("summary.md").write_text("\\n".join(lines) + "\\n")
'''

# The code the tiny train stage runs (for its prac5_cnn model and mnist_npz data), declared
# exactly: the tiny repository holds only this code (and the dependency checker), so the
# gate's dependency check (.ci/gate step 0) holds there too.
TINY_CODE = [
    "pipeline/__init__.py",
    "pipeline/allocator.py",
    "pipeline/checkpoint.py",
    "pipeline/cli.py",
    "pipeline/errors.py",
    "pipeline/config.py",
    "pipeline/datasets.py",
    "pipeline/engine.py",
    "pipeline/io.py",
    "pipeline/normalizer.py",
    "pipeline/reporting.py",
    "pipeline/stages/__init__.py",
    "pipeline/stages/train.py",
    "pipeline/data/__init__.py",
    "pipeline/data/common",
    "pipeline/data/readers/__init__.py",
    "pipeline/data/readers/${item.data.format}.py",
    "pipeline/models/__init__.py",
    "pipeline/models/${item.model.name}",
]
TINY_TOOLS = ["pipeline/devtools/__init__.py", "pipeline/devtools/depgraph.py"]  # run by the gate, not by a stage


def tiny_code_files() -> list[str]:
    """The files the tiny train stage imports (its model family and reader included), and the checker."""
    variant = TINY_VARIANT
    entries = [
        *entry_files("python -m pipeline.stages.train tiny", REPO),
        f"pipeline/models/{variant['model']['name']}/__init__.py",
        f"pipeline/data/readers/{variant['data']['format']}.py",
    ]
    return sorted(import_closure(entries, REPO)) + TINY_TOOLS


DVC_YAML = (
    """\
stages:
  make_data:
    cmd: python make_data.py
    deps:
      - make_data.py
    params:
      - data
    outs:
      - data/tiny
  train:
    foreach: ${variants}
    do:
      cmd: python -m pipeline.stages.train ${key}
      deps:
"""
    + "".join(f"        - {path}\n" for path in TINY_CODE)
    + """\
        - ${item.data.path}
      params:
        - variants.${key}
      outs:
        - models/${key}.pt:
            cache: false
            persist: true
        - reports/${key}/training.json:
            cache: false
            persist: true
        - reports/${key}/timings.json:
            cache: false
            persist: true
        - reports/${key}/plots/steps.csv:
            cache: false
            persist: true
      plots:
        - reports/${key}/plots/epochs.csv:
            cache: false
            persist: true
            x: epoch
            y: test_accuracy
            x_label: epoch
            y_label: test accuracy
            title: "${key}: test accuracy per epoch"
      metrics:
        - reports/${key}/metrics.json:
            cache: false
            persist: true
  summary:
    cmd: python summarize.py
    deps:
      - summarize.py
      - reports
    params:
      - variants
    outs:
      - summary.md:
          cache: false
          persist: true
"""
)


# The README's `dvc exp show` recipes. DVC matches --drop/--keep at the start of a column
# name; dependency columns are paths with no ':' (metrics are `file:key`, params dotted).
CHANGED_DROP = "Created|[^:]*/[^:]*$|reports$"
VARIANT_KEEP = r"Experiment|variants\.{v}\.train\.|reports/{v}/[^:]*:"


def tool_env() -> dict[str, str]:
    """The venv's python and dvc first on PATH (DVC runs ``python``; queue workers run ``dvc``)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"  # a shared 2-core machine
    env.pop("PYTHONPATH", None)  # the stages import the repository's own copy of `pipeline`
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(key, None)
    return env


def sh(args: list[str], cwd: Path, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
    return done


def dvc(*args: str, cwd: Path, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    return sh([str(BIN / "dvc"), *args], cwd, check=check, timeout=timeout)


def git(*args: str, cwd: Path) -> str:
    return sh(["git", *args], cwd).stdout


def build_tiny_repo(root: Path) -> Path:
    """A committed git + DVC repository with the tiny pipeline above, already reproduced."""
    root.mkdir(parents=True)
    for path in tiny_code_files():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, root / path)
    (root / "make_data.py").write_text(MAKE_DATA, encoding="utf-8")
    (root / "summarize.py").write_text(SUMMARIZE, encoding="utf-8")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False), encoding="utf-8")
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    (root / ".gitignore").write_text("__pycache__/\n", encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=root)
    git("config", "user.email", "tests@example.invalid", cwd=root)
    git("config", "user.name", "cnn-pipeline tests", cwd=root)
    git("config", "commit.gpgsign", "false", cwd=root)
    dvc("init", "-q", cwd=root)
    dvc("config", "core.analytics", "false", cwd=root)
    (root / ".dvc" / "plots").mkdir()
    shutil.copy2(REPO / ".dvc" / "plots" / "offline.html", root / ".dvc" / "plots" / "offline.html")
    dvc("config", "plots.html_template", "plots/offline.html", cwd=root)
    dvc("repro", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "tiny pipeline", cwd=root)
    return root


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


def run_queue(repo: Path) -> str:
    """``dvc queue start``, wait until nothing is queued or running, ``dvc queue stop``; the final status."""
    try:
        # The worker it spawns lives on (until idle): give it a file, not our pipes, or
        # waiting for the pipes to close would wait for the worker.
        with open(repo.parent / "queue-start.log", "w") as log:
            subprocess.run(
                [str(BIN / "dvc"), "queue", "start"],
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
    assert set(changed[0]) == {
        "Experiment",
        "variants.tiny_b.train.optimizer.lr",
        "reports/tiny_b/metrics.json:test_loss",
        *(
            ["reports/tiny_b/metrics.json:test_accuracy"]
            if "reports/tiny_b/metrics.json:test_accuracy" in changed[0]
            else []
        ),
    }, changed
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
    failed = dvc("exp", "run", "-S", "variants.tiny.train.epochs=0", cwd=repo, check=False)
    assert failed.returncode != 0 and "variants.tiny.train.epochs: must be positive" in failed.stdout + failed.stderr
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
