"""``.ci/gate`` on a tiny DVC repository: it passes when the committed results are current
and fails, saying why, when a stage's code, params or data changed without regenerating.

The repository is the tiny pipeline of ``tests/tiny_repo.py`` (a ``make_data``
data stage, whose output is DVC-cached and not in git, and the real ``train`` stage),
with ``.ci/gate``, the reproduction check (``pipeline/devtools/reproduce.py``, retraining
the variant ``tiny``) and the project's ``.dvcignore`` committed in it. Each case works in
a fresh ``git clone``, as CI does: no data, no DVC cache, only what git holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.tiny_repo import BIN, REPO, build_tiny_repo, dvc, git, tool_env

pytestmark = pytest.mark.slow

GATE = REPO / ".ci" / "gate"


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    repo = build_tiny_repo(tmp_path_factory.mktemp("gate") / "origin")
    (repo / ".ci").mkdir()
    shutil.copy2(GATE, repo / ".ci" / "gate")
    shutil.copy2(REPO / "pipeline" / "devtools" / "reproduce.py", repo / "pipeline" / "devtools" / "reproduce.py")
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["reproduce"] = {"variants": ["tiny"], "test_accuracy_tolerance": 0.002}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "the gate and its reproduction check", cwd=repo)
    return repo


@pytest.fixture
def clone(origin, tmp_path) -> Path:
    target = tmp_path / "clone"
    git("clone", "-q", str(origin), str(target), cwd=tmp_path)
    assert not (target / "data" / "tiny").exists()  # data is not in git: the gate must re-create it
    return target


def gate(repo: Path) -> subprocess.CompletedProcess:
    env = {**tool_env(), "DVC": str(BIN / "dvc")}
    # The venv is not on PATH, as in CI: the gate itself puts $DVC's folder first, so that
    # the stages' `python` is the venv's.
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != BIN)
    return subprocess.run(
        [str(repo / ".ci" / "gate"), "make_data"], cwd=repo, env=env, capture_output=True, text=True, timeout=240
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_gate_passes_when_results_are_current(clone):
    done = gate(clone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate: all stages current" in done.stdout
    # the reproduction check retrained tiny from scratch: same machine, same kernels, same bytes
    assert "reproduce: train@tiny: python -m pipeline.stages.train tiny" in done.stdout
    assert re.search(r"^tiny .* same .* ok: byte-identical$", done.stdout, re.M), done.stdout
    assert "gate: all stages current, and the sample variants reproduce" in done.stdout
    assert (clone / "data" / "tiny" / "train.npz").is_file()  # re-created
    assert git("status", "--porcelain", "--untracked-files=no", cwd=clone) == ""


@pytest.mark.parametrize("change", ["code", "params", "data"])
def test_gate_fails_when_a_dependency_changed_without_regenerating(clone, change):
    if change == "code":  # a code dependency of train@tiny
        edit(
            clone / "pipeline" / "training" / "engine.py",
            '"""',
            '"""Edited without running dvc repro.\n',
        )
    elif change == "params":  # one of train@tiny's params
        edit(clone / "params.yaml", "epochs: 2", "epochs: 3")
    else:  # the data stage now writes other data: train@tiny's data dependency changes
        edit(clone / "make_data.py", "rng.integers(0, 40, (n, 28, 28))", "rng.integers(0, 60, (n, 28, 28))")
    done = gate(clone)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: gate: committed results are stale" in done.stderr
    assert "train@tiny" in done.stderr  # dvc status names the stale stage


def test_gate_fails_when_a_data_stage_no_longer_matches_dvc_lock(clone):
    """The data stage's code changed but writes the same bytes: every stage is current, yet
    the dvc.lock committed no longer describes the code that ran."""
    edit(clone / "make_data.py", "import io\n", "import io  # edited without running dvc repro\n")
    done = gate(clone)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: gate: the data stages did not reproduce the committed dvc.lock" in done.stderr
    assert "dvc.lock" in done.stderr


def test_gate_fails_when_a_stage_imports_code_it_does_not_declare(clone):
    """An undeclared import would let that file change without making the stage stale: the
    gate refuses it before anything else, naming the stage, the file and how it is reached."""
    (clone / "pipeline" / "helpers.py").write_text("SCALE = 1.0\n", encoding="utf-8")
    edit(
        clone / "pipeline" / "training" / "engine.py",
        "import copy\n",
        "import copy\n\nfrom pipeline import helpers  # noqa: F401\n",
    )
    done = gate(clone)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[missing] train@tiny: pipeline/helpers.py is imported but not declared as a dep" in done.stdout
    assert "pipeline/training/engine.py" in done.stdout  # the import chain
    assert "error: gate: dvc.yaml does not declare what the stages import" in done.stderr


def test_a_new_module_inside_a_declared_package_needs_no_dvc_yaml_edit(clone):
    """train@ declares pipeline/training as one unit: a new module there, imported by the engine,
    is covered at once; the gate finds the stage stale (its code changed), not undeclared."""
    (clone / "pipeline" / "training" / "helpers.py").write_text("SCALE = 1.0\n", encoding="utf-8")
    edit(
        clone / "pipeline" / "training" / "engine.py",
        "import copy\n",
        "import copy\n\nfrom pipeline.training import helpers  # noqa: F401\n",
    )
    done = gate(clone)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[missing]" not in done.stdout and "does not declare" not in done.stderr
    assert "error: gate: committed results are stale" in done.stderr and "train@tiny" in done.stderr


def test_gate_fails_when_a_committed_metric_was_edited_by_hand(clone):
    """The audit's bad case: a metric edited by hand and recorded with `dvc commit -f` leaves
    every hash consistent (dvc status is clean); only retraining shows it (gate step 4)."""
    dvc("repro", "-q", "make_data", cwd=clone)  # the data, for dvc commit to hash the stage's deps
    metrics = clone / "reports" / "tiny" / "metrics.json"
    values = json.loads(metrics.read_text(encoding="utf-8"))
    values["test_accuracy"] = round(values["test_accuracy"] + 0.0001, 6)  # one image in 10,000
    metrics.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    dvc("commit", "-f", "-q", cwd=clone)  # every stage: the summary reads reports/
    git("commit", "-q", "-am", "a better number", cwd=clone)
    assert dvc("status", "-q", cwd=clone, check=False).returncode == 0  # the hashes cannot see it
    done = gate(clone)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gate: all stages current" in done.stdout  # steps 0-3 passed
    assert re.search(
        r"^tiny .*FAIL: same kernels, but 1 output\(s\) differ: reports/tiny/metrics.json$", done.stdout, re.M
    )
    assert "error: gate: the committed results do not reproduce" in done.stderr
