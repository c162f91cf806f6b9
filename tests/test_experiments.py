"""Integration (slow, ~1 min): DVC experiments on a tiny pipeline that uses the real engine.

A temporary git + DVC repository holds a copy of the ``pipeline`` package, a data stage
that writes a small synthetic Practical-5-style npz dataset (a DVC-cached stage output,
so queued experiments, which copy only what git and DVC track, get it too) and the real
``train`` stage (``python -m pipeline.stages.train tiny``) for one tiny variant. On it:

* ``dvc repro`` then ``dvc exp run -S variants.tiny.train.optimizer.lr=0.1``: the
  experiment shows in ``dvc exp show --md`` beside the baseline, with its metrics;
* a two-value grid queued with ``dvc exp run --queue -S ...=0.02,0.3`` and run by
  ``dvc queue start``: both show in ``dvc exp show --md``;
* ``dvc plots diff`` of the baseline and the experiments carries each one's per-epoch rows.

``build_tiny_repo`` is shared with ``tests/test_gate.py``.
"""

from __future__ import annotations

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

PARAMS = {
    "data": {"seed": 0, "n_train": 320, "n_test": 160},
    "variants": {
        "tiny": {
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
    },
}

# The code the tiny train stage runs (for its prac5_cnn model and mnist_npz data), declared
# exactly: the tiny repository holds only this code (and the dependency checker), so the
# gate's dependency check (.ci/gate step 0) holds there too.
TINY_CODE = [
    "pipeline/__init__.py",
    "pipeline/checkpoint.py",
    "pipeline/cli.py",
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
    variant = PARAMS["variants"]["tiny"]
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
        - reports/${key}/plots/epochs.csv:
            cache: false
        - reports/${key}/plots/steps.csv:
            cache: false
      metrics:
        - reports/${key}/metrics.json:
            cache: false
plots:
  - Accuracy per epoch:
      x: epoch
      y:
        reports/tiny/plots/epochs.csv: [train_accuracy, test_accuracy]
"""
)


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
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False), encoding="utf-8")
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    (root / ".gitignore").write_text("__pycache__/\n", encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=root)
    git("config", "user.email", "tests@example.invalid", cwd=root)
    git("config", "user.name", "cnn-pipeline tests", cwd=root)
    git("config", "commit.gpgsign", "false", cwd=root)
    dvc("init", "-q", cwd=root)
    dvc("config", "core.analytics", "false", cwd=root)
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
            metrics = fields.get("metrics", {}).get("reports/tiny/metrics.json", {}).get("data", {})
            if row.get("rev") == "workspace":
                continue
            rows.append(
                {
                    "name": row.get("name") or row.get("rev"),
                    "rev": row.get("rev"),
                    "lr": params.get("variants", {}).get("tiny", {}).get("train", {}).get("optimizer", {}).get("lr"),
                    "test_accuracy": metrics.get("test_accuracy"),
                }
            )
    return rows


def rows_by_lr(markdown: str) -> dict[str, dict[str, str]]:
    """``dvc exp show --md`` as {learning rate: {column: cell}}; params/metrics columns by their last name part."""
    lines = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]
    header = lines[0]
    assert any(h.endswith("test_accuracy") for h in header) and any(h.endswith("optimizer.lr") for h in header), header
    names = ["lr" if h.endswith("optimizer.lr") else h for h in header]
    rows = [dict(zip(names, row)) for row in lines[2:]]
    return {row["lr"]: row for row in rows}


def test_slow_experiments_run_queue_show_and_plot(tiny_repo):
    repo = tiny_repo
    metrics = json.loads((repo / "reports/tiny/metrics.json").read_text())
    assert metrics["epochs"] == 2 and 0 <= metrics["test_accuracy"] <= 1

    # --- one experiment in the workspace
    dvc("exp", "run", "-n", "lr-0.1", "-S", "variants.tiny.train.optimizer.lr=0.1", cwd=repo)
    table = dvc("exp", "show", "--md", cwd=repo).stdout
    by_lr = rows_by_lr(table)
    assert {"0.05", "0.1"} <= set(by_lr), table  # the baseline and the experiment
    assert "lr-0.1" in by_lr["0.1"]["Experiment"], table
    for lr in ("0.05", "0.1"):
        assert re.fullmatch(r"0?\.\d+|1(\.0+)?", by_lr[lr]["test_accuracy"]), table
        assert re.fullmatch(r"\d+(\.\d+)?", by_lr[lr]["test_loss"]), table

    # --- a two-value grid through the queue
    dvc("exp", "run", "--queue", "-S", "variants.tiny.train.optimizer.lr=0.02,0.3", cwd=repo)
    queued = dvc("queue", "status", cwd=repo).stdout
    assert queued.count("Queued") == 2, queued
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
                break
            assert time.monotonic() < deadline, f"queue not done after 240 s:\n{status}"
            time.sleep(3)
    finally:
        dvc("queue", "stop", cwd=repo, check=False, timeout=60)
    assert status.count("Success") == 2 and "Failed" not in status, status

    rows = exp_rows(repo)
    lrs = {r["lr"]: r for r in rows}
    assert {0.05, 0.1, 0.02, 0.3} <= set(lrs), rows
    assert all(isinstance(lrs[lr]["test_accuracy"], float) for lr in (0.05, 0.1, 0.02, 0.3)), rows
    table = dvc("exp", "show", "--md", cwd=repo).stdout
    by_lr = rows_by_lr(table)
    assert {"0.05", "0.1", "0.02", "0.3"} <= set(by_lr), table
    assert all(by_lr[lr]["State"] == "Success" for lr in ("0.02", "0.3")), table

    # --- per-epoch curves of the baseline and the experiments side by side
    revs = {r["name"]: r for r in rows if r["lr"] in (0.05, 0.1, 0.02, 0.3)}
    assert len(revs) == 4, rows
    plots = json.loads(dvc("plots", "diff", *revs, "--json", cwd=repo).stdout)
    points = [p for p in _walk(plots) if isinstance(p, dict) and {"rev", "epoch", "test_accuracy"} <= set(p)]
    for name, row in revs.items():
        mine = {str(p["epoch"]): float(p["test_accuracy"]) for p in points if p["rev"] == name}
        assert set(mine) == {"1", "2"}, (name, json.dumps(plots)[:2000])
        assert mine["2"] == row["test_accuracy"], (name, mine, row)  # the last epoch is the checkpoint kept


def _walk(node):
    """Every dict and list inside a JSON document."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
