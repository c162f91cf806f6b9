"""A variant is one entry in params.yaml: from it alone it gets every per-variant stage, the
report shows it, and adding it makes nothing else stale.

Works on a copy of the repository (every file git tracks or would track, with dvc.lock, the
committed models and reports; no data/), so the real workspace is never touched. Staleness is
DVC's own (``dvc status``) before and after the edit; data outputs absent from the copy show
as changed in both and cancel out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

NEW = "tiny_npz"
NEW_VARIANT = {
    "seed": 1,
    "data": {"format": "mnist_npz", "path": "data/mnist_npz", "normalize": {"mode": "none"}},
    "model": {"name": "prac5_cnn"},
    "train": {"epochs": 1, "batch_size": 64, "optimizer": {"name": "sgd", "lr": 0.05}, "loss": "one_hot_cross_entropy"},
}
PER_VARIANT_STAGES = {f"train@{NEW}", f"evaluate@{NEW}", f"analyze@{NEW}"}
AGGREGATING_STAGES = {"report"}  # reads every variant's params and files

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the repository's files")


def dvc(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def copy_repository(dest: Path) -> Path:
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        source = ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    config = dest / ".dvc" / "config"
    config.write_text(
        config.read_text() + "\n[core]\n    no_scm = true\n"
        if "[core]" not in config.read_text()
        else config.read_text().replace("[core]", "[core]\n    no_scm = true", 1)
    )
    return dest


def stale(root: Path) -> dict[str, list]:
    """``dvc status --json``: stage name -> what DVC says changed (absent when current)."""
    return json.loads(dvc("status", "--json", cwd=root) or "{}")


def test_a_new_variant_gets_its_stages_and_makes_nothing_else_stale(tmp_path: Path):
    root = copy_repository(tmp_path / "repo")
    before = stale(root)
    stages_before = set(dvc("stage", "list", "--name-only", cwd=root).split())

    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["variants"][NEW] = NEW_VARIANT
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))

    stages_after = set(dvc("stage", "list", "--name-only", cwd=root).split())
    assert stages_after - stages_before == PER_VARIANT_STAGES
    after = stale(root)
    for stage in PER_VARIANT_STAGES:
        assert stage in after, f"{stage} should be stale (never run)"
    changed = {name for name in stages_before if after.get(name) != before.get(name)}
    assert changed <= AGGREGATING_STAGES, (
        f"adding a variant made other stages stale: {sorted(changed - AGGREGATING_STAGES)}"
    )
    assert "report" in after  # it shows every variant, so it must rerun


def test_the_report_shows_a_variant_that_is_only_in_params(tmp_path: Path):
    """The report lists the new variant (with 'not produced yet' notes) without any code change."""
    root = copy_repository(tmp_path / "repo")
    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["variants"][NEW] = NEW_VARIANT
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run(
        [sys.executable, "-m", "pipeline.stages.report"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    text = (root / "report" / "README.md").read_text()
    assert f"`{NEW}`" in text
    assert f"train@{NEW}" in text  # the missing files name the stage that writes them
