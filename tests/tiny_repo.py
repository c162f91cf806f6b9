"""A tiny git + DVC repository that runs the real ``train`` stage: for the slow integration tests.

``build_tiny_repo`` writes a committed repository holding a copy of the ``pipeline``
package (the files the train stage imports), a data stage that writes a small synthetic
Practical-5-style npz dataset (a DVC-cached output, so queued experiments and fresh
clones re-create it), two tiny variants and an aggregating ``summary`` stage that reads
the whole ``reports/`` folder as the project's report does, and reproduces it once.
Used by ``tests/test_experiments.py`` (the README's experiment recipes) and
``tests/test_gate.py`` (``.ci/gate``). ``tool_env``/``dvc``/``git`` run the venv's tools
with analytics off on one thread.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.devtools.depgraph import entry_files, import_closure

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: python and dvc

MAKE_DATA = '''"""Stage make_data: a tiny synthetic MNIST-like set in the Practical 5 npz format."""
import io
import zipfile
from pathlib import Path

import numpy as np

# sizes in the code, not in params.yaml: that file holds only the pipeline's sections
# (config.load_all refuses a top-level key it does not know)
SEED, N_TRAIN, N_TEST = 0, 320, 160
rng = np.random.default_rng(SEED)
out = Path("data/tiny")
out.mkdir(parents=True, exist_ok=True)
for split, n in (("train", N_TRAIN), ("test", N_TEST)):
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
    # deep copies: shared dicts would be dumped as YAML aliases, which `-S` edits all at once
    "variants": {"tiny": copy.deepcopy(TINY_VARIANT), "tiny_b": {**copy.deepcopy(TINY_VARIANT), "seed": 6}},
}

SUMMARIZE = '''"""Stage summary: one line per variant from reports/<variant>/metrics.json (like the report)."""
import json
from pathlib import Path

lines = [f"{p.parent.name}: {json.loads(p.read_text())}" for p in sorted(Path("reports").glob("*/metrics.json"))]
Path("summary.md").write_text("\\n".join(lines) + "\\n")
'''

# The code the tiny train stage runs (for its prac5_cnn model and mnist_npz data), declared as
# the project's own train@ stage declares it (packages, the model family and reader by name):
# the tiny repository holds only the files it imports (and the dependency checker), so the
# gate's dependency check (.ci/gate step 0) holds there too.
TINY_CODE = [
    dep
    for dep in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["do"]["deps"]
    if dep.startswith("pipeline/")
]
# run by the gate, not by a stage: the checker package, every module of it
TINY_TOOLS = ["pipeline/devtools/__init__.py"] + sorted(
    p.relative_to(REPO).as_posix() for p in (REPO / "pipeline/devtools/depgraph").glob("*.py")
)


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
    shutil.copy2(REPO / ".gitignore", root / ".gitignore")  # the project's: its recipes must leave git status clean
    # ... and its .dvcignore, before the first `dvc repro`: without it the bytecode Python writes
    # while the stages run (on any machine without PYTHONDONTWRITEBYTECODE) would be hashed into
    # the folder deps in dvc.lock, and every fresh clone or queued experiment would be stale
    shutil.copy2(REPO / ".dvcignore", root / ".dvcignore")
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
