"""Same params, same bytes: the train stage run twice, in two separate processes.

The seed study reads each variant's committed run as its first seed instead of training
it again; that is only sound if a training run is a pure function of params and data."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.core.config import load_params

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = [
    "models/ds5220_cnn.pt",
    "reports/ds5220_cnn/metrics.json",
    "reports/ds5220_cnn/training.json",
    "reports/ds5220_cnn/plots/epochs.csv",
    "reports/ds5220_cnn/plots/steps.csv",
]


def test_training_twice_in_two_processes_gives_the_same_bytes(tmp_path, tiny_raw):
    params = copy.deepcopy(load_params())
    params.pop("training_check", None)  # the tiny set's pixels are random: a model at chance is expected here
    variant = params["variants"]["ds5220_cnn"]
    variant["data"]["path"] = str(tiny_raw / "mnist")
    variant["train"].update(epochs=2, log_every_steps=2)
    runs = []
    for name in ("first", "second"):
        work = tmp_path / name
        work.mkdir()
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run(
            [sys.executable, "-m", "pipeline.stages.train", "ds5220_cnn"], cwd=work, env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        runs.append({rel: (work / rel).read_bytes() for rel in OUTPUTS})
    assert runs[0] == runs[1]
    assert b'"test_accuracy"' in runs[0]["reports/ds5220_cnn/metrics.json"]
