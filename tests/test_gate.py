"""``.ci/gate`` on a tiny DVC repository: it passes when the committed results are current
and fails, saying why, when a stage's code, params or data changed without regenerating.

The repository is the tiny pipeline of ``tests/tiny_repo.py`` (a ``make_data``
data stage, whose output is DVC-cached and not in git, and the real ``train`` stage),
with ``.ci/gate`` committed in it. Each case works in a fresh ``git clone``, as CI does:
no data, no DVC cache, only what git holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tiny_repo import BIN, REPO, build_tiny_repo, git, tool_env

pytestmark = pytest.mark.slow

GATE = REPO / ".ci" / "gate"


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    repo = build_tiny_repo(tmp_path_factory.mktemp("gate") / "origin")
    (repo / ".ci").mkdir()
    shutil.copy2(GATE, repo / ".ci" / "gate")
    git("add", ".ci/gate", cwd=repo)
    git("commit", "-q", "-m", "the gate", cwd=repo)
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
    assert (clone / "data" / "tiny" / "train.npz").is_file()  # re-created
    assert git("status", "--porcelain", "--untracked-files=no", cwd=clone) == ""


@pytest.mark.parametrize("change", ["code", "params", "data"])
def test_gate_fails_when_a_dependency_changed_without_regenerating(clone, change):
    if change == "code":  # a code dependency of train@tiny
        edit(
            clone / "pipeline" / "engine.py",
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
        clone / "pipeline" / "engine.py",
        "import contextlib\n",
        "import contextlib\n\nfrom pipeline import helpers  # noqa: F401\n",
    )
    done = gate(clone)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[missing] train@tiny: pipeline/helpers.py is imported but not declared as a dep" in done.stdout
    assert "pipeline/engine.py" in done.stdout  # the import chain
    assert "error: gate: dvc.yaml does not declare what the stages import" in done.stderr
