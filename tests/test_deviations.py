"""references/deviations.yaml: every entry complete, and every value it pins still in params.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import load_params
from pipeline.core.errors import PipelineError
from pipeline.report.deviations import load_deviations, stale_entries

REPO = Path(__file__).resolve().parents[1]


def test_every_deviation_still_describes_params_yaml():
    deviations = load_deviations(REPO / "references" / "deviations.yaml")
    assert len(deviations) >= 8
    assert stale_entries(deviations, load_params(REPO / "params.yaml")) == []
    seeds = set(load_params(REPO / "references" / "handout_results.yaml"))
    assert {d.assignment for d in deviations} <= seeds


def test_a_changed_param_makes_its_entry_stale():
    deviations = load_deviations(REPO / "references" / "deviations.yaml")
    params = load_params(REPO / "params.yaml")
    params["variants"]["cse849"]["model"]["args"]["pool_stride"] = 1
    del params["variants"]["prac5"]["train"]["batch_size"]
    assert stale_entries(deviations, params) == [
        "Pooling stride: variants.cse849.model.args.pool_stride is 1 in params.yaml, the text describes 2",
        "Learning rate and batch size: variants.prac5.train.batch_size is not in params.yaml",
    ]


def test_an_incomplete_entry_is_refused(tmp_path):
    path = tmp_path / "deviations.yaml"
    path.write_text("- {assignment: prac5, topic: lr, handout_says: none, ours: 0.05}\n")
    with pytest.raises(PipelineError, match=r"entry 1: missing why"):
        load_deviations(path)
