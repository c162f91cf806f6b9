"""The seed study: paired differences with t-intervals (against scipy), the wording that
follows them, params validation, and the per-variant stage on synthetic data."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml
from scipy import stats

from pipeline import seed_study, seed_study_runs, seed_study_summary
from pipeline.config import ConfigError, load_all, load_params
from pipeline.datasets import Splits
from pipeline.engine import fit, select_device
from tests.conftest import synthetic_digits


def tiny_variant(model: str, args: dict, normalize: dict) -> dict:
    return {
        "seed": 40200,  # one seed for every variant: the study pairs runs by seed
        "data": {"format": "mnist_csv", "path": "unused", "normalize": normalize},
        "model": {"name": model, "args": args},
        "train": {"epochs": 1, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.001}, "loss": "cross_entropy"},
    }


FIXED = {"mode": "fixed", "mean": [0.5], "std": [0.5]}
# The study's params written here, not read from params.yaml: what these tests check does not
# move when the committed study or variants change. Comparisons as analysis.comparisons has them.
STUDY_PARAMS = {
    "variants": {
        "tdm_max": tiny_variant("tdm_cnn", {"pool": "max"}, FIXED),
        "tdm_avg": tiny_variant("tdm_cnn", {"pool": "avg"}, FIXED),
        "cnn": tiny_variant("tdm_cnn", {"pool": "max"}, FIXED),
        "cnn_raw": tiny_variant("tdm_cnn", {"pool": "max"}, {"mode": "none"}),
        "mlp": tiny_variant("ds5220_mlp", {}, FIXED),
    },
    "analysis": {
        "comparisons": {
            "pooling": {"title": "Max vs average pooling", "a": "tdm_max", "b": "tdm_avg"},
            "normalization": {"title": "Normalized vs raw input", "a": "cnn", "b": "cnn_raw"},
            "mlp_vs_cnn": {"title": "MLP vs CNN", "a": "mlp", "b": "cnn"},
        }
    },
    "seed_study": {"seeds": 3, "comparisons": ["pooling"], "confidence": 0.95},
}


def runs(accuracies, first_seed=10):
    return [{"seed": first_seed + k, "test_accuracy": a, "test_loss": 0.1} for k, a in enumerate(accuracies)]


def test_paired_difference_matches_scipys_paired_t_interval():
    a = [0.9910, 0.9902, 0.9921, 0.9899, 0.9915]
    b = [0.9890, 0.9895, 0.9900, 0.9901, 0.9893]
    c = seed_study.paired_difference(runs(a), runs(b), 0.95)
    expected = stats.ttest_rel(np.array(a) * 100, np.array(b) * 100).confidence_interval(0.95)
    assert c["ci_low_points"] == pytest.approx(expected.low, abs=1e-6)
    assert c["ci_high_points"] == pytest.approx(expected.high, abs=1e-6)
    assert c["mean_points"] == pytest.approx(100 * (np.mean(a) - np.mean(b)), abs=1e-6)
    assert (c["a_ahead"], c["b_ahead"], c["ties"], c["n"]) == (4, 1, 0, 5)
    assert c["seeds"] == [10, 11, 12, 13, 14]


def test_wording_follows_the_interval_and_its_sign():
    clear = seed_study.comparison_summary(
        "k", "t", "x", "y", {"x": runs([0.99, 0.991, 0.992]), "y": runs([0.98, 0.982, 0.981])}, 0.95
    )
    assert clear["distinguishable"]
    assert seed_study.verdict(clear).startswith("Over 3 seeds, `x` is more accurate than `y`")
    flipped = seed_study.comparison_summary(
        "k", "t", "y", "x", {"x": runs([0.99, 0.991, 0.992]), "y": runs([0.98, 0.982, 0.981])}, 0.95
    )
    assert seed_study.verdict(flipped).startswith("Over 3 seeds, `x` is more accurate than `y`")
    assert flipped["mean_points"] < 0 and "a - b = -1.00 points" in seed_study.verdict(flipped)
    # planted: same means as above but one seed reversed -> the interval contains 0
    noisy = seed_study.comparison_summary(
        "k", "t", "x", "y", {"x": runs([0.99, 0.975, 0.992]), "y": runs([0.98, 0.982, 0.981])}, 0.95
    )
    assert noisy["ci_low_points"] < 0 < noisy["ci_high_points"] and not noisy["distinguishable"]
    text = seed_study.verdict(noisy)
    assert "not distinguishable at 3 seeds" in text and "more accurate" not in text
    assert "`x` ahead in 2 of 3 seeds, `y` in 1" in text


def test_identical_differences_give_a_zero_width_interval():
    c = seed_study.paired_difference(runs([0.9, 0.8]), runs([0.9, 0.8]), 0.95)
    assert (c["ci_low_points"], c["ci_high_points"], c["ties"]) == (0.0, 0.0, 2)
    assert not c["distinguishable"]


def test_sides_with_different_seeds_are_refused():
    with pytest.raises(ConfigError, match="different seeds"):
        seed_study.paired_difference(runs([0.9, 0.8], 1), runs([0.9, 0.8], 2), 0.95)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seeds": 1}, "seed_study.seeds: at least 2"),
        ({"seeds": "five"}, "seed_study.seeds: expected an integer"),
        ({"confidence": 1.5}, "seed_study.confidence: expected a number between 0 and 1"),
        (
            {"comparisons": ["pooling", "nope"]},
            r"seed_study.comparisons\[1\]: 'nope' is not a key of analysis.comparisons",
        ),
        ({"comparisons": ["pooling", "pooling"]}, r"seed_study.comparisons\[1\]: 'pooling' is listed twice"),
        ({"extra": 1}, "seed_study.extra: unknown key"),
    ],
)
def test_bad_study_params_name_the_key(change, message):
    params = copy.deepcopy(STUDY_PARAMS)
    params["seed_study"].update(change)
    with pytest.raises(ConfigError, match=message):
        load_all(params)


def test_studied_variants_come_from_the_comparisons_once_each():
    params = copy.deepcopy(STUDY_PARAMS)
    params["seed_study"]["comparisons"] = ["normalization", "mlp_vs_cnn"]
    assert load_all(params).study_variants() == ["cnn", "cnn_raw", "mlp"]


@pytest.fixture
def tiny_study(tmp_path, monkeypatch):
    """STUDY_PARAMS as params.yaml (one epoch, N = 3, the pooling comparison), synthetic splits,
    and each variant's committed metrics.json as train@ would write it (seed = its own)."""
    params = copy.deepcopy(STUDY_PARAMS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    splits = Splits(train=synthetic_digits(320, 0), val=None, test=synthetic_digits(100, 2))
    monkeypatch.setattr(seed_study_runs, "load_splits", lambda data, seed: splits)
    committed, loaded = {}, load_all(params)
    for name in ("tdm_max", "tdm_avg"):
        metrics = fit(loaded.variant(name), splits, torch.device("cpu")).metrics
        (tmp_path / "reports" / name).mkdir(parents=True)
        (tmp_path / "reports" / name / "metrics.json").write_text(json.dumps(metrics))
        committed[name] = metrics
    return tmp_path, splits, committed


def test_stage_reuses_the_committed_run_and_trains_the_other_seeds(tiny_study):
    root, splits, committed = tiny_study
    out = root / "reports" / "seed_study" / "runs"
    payload = seed_study_runs.run_seed_study("tdm_max", root / "params.yaml", root / "reports", out)
    assert payload["seeds"] == [40200, 40201, 40202]
    first, *trained = payload["runs"]
    assert first["test_accuracy"] == round(committed["tdm_max"]["test_accuracy"], 6) and first["train_seconds"] is None
    assert all(r["train_seconds"] is not None for r in trained)
    # the other runs are the variant's own set-up with only the seed changed
    params = load_params(root / "params.yaml")
    # on the device the stage trains on (a GPU where there is one: its sums differ from the CPU's)
    again = fit(dataclasses.replace(load_all(params).variant("tdm_max"), seed=40202), splits, select_device())
    assert trained[1]["test_loss"] == round(again.metrics["test_loss"], 6)
    assert len({r["test_loss"] for r in payload["runs"]}) == 3  # different seeds, different runs
    assert json.loads((out / "tdm_max.json").read_text()) == payload
    accs = [r["test_accuracy"] for r in payload["runs"]]
    assert payload["test_accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1), abs=1e-6)

    seed_study_runs.run_seed_study("tdm_avg", root / "params.yaml", root / "reports", out)
    summary = seed_study_summary.summarize(root / "params.yaml", out, root / "reports" / "seed_study")
    (comparison,) = summary["comparisons"]
    assert (comparison["a"], comparison["b"], comparison["n"]) == ("tdm_max", "tdm_avg", 3)
    assert comparison["verdict"] == seed_study.verdict(comparison)
    assert (root / "reports" / "seed_study" / "differences.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_refuses_runs_from_another_n(tiny_study):
    root, _, _ = tiny_study
    out = root / "reports" / "seed_study" / "runs"
    for name in ("tdm_max", "tdm_avg"):
        seed_study_runs.run_seed_study(name, root / "params.yaml", root / "reports", out)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seed_study"]["seeds"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"tdm_max.json: 3 runs, but seed_study.seeds is 4"):
        seed_study_summary.summarize(root / "params.yaml", out, root / "reports" / "seed_study")
