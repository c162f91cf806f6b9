"""The seed study: paired differences with t-intervals and sign tests (against scipy), the
wording that follows them (the review's cases among them), params validation, and the
per-variant stage on synthetic data."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml
from scipy import stats

from pipeline.analysis import paired_tests, seed_study_summary
from pipeline.core.config import ConfigError, load_params
from pipeline.core.params import load_all
from pipeline.studies import seed_study
from pipeline.training.datasets import Splits
from pipeline.training.engine import fit
from pipeline.training.setup import select_device
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
            "pooling": {
                "title": "Max vs average pooling",
                "a": "tdm_max",
                "b": "tdm_avg",
                "factor": ["model.args.pool"],
            },
            "normalization": {
                "title": "Normalized vs raw input",
                "a": "cnn",
                "b": "cnn_raw",
                "factor": ["data.normalize"],
            },
            "mlp_vs_cnn": {"title": "MLP vs CNN", "a": "mlp", "b": "cnn", "factor": ["model"]},
        }
    },
    "seed_study": {"seeds": 3, "comparisons": ["pooling"], "confidence": 0.95},
    "verdicts": {
        "alpha": 0.05,
        "noise_multiple": 2.0,
        "trend_epochs": 3,
        "train_loss_fall": 0.05,
        "class_balance_ratio": 1.5,
        "standardized_tolerance": 0.1,
        "shortcut_rate_max": 0.05,
        "flip_rate_max": 0.03,
    },
}


def runs(accuracies, first_seed=10):
    return [{"seed": first_seed + k, "test_accuracy": a, "test_loss": 0.1} for k, a in enumerate(accuracies)]


def test_paired_difference_matches_scipys_paired_t_interval():
    a = [0.9910, 0.9902, 0.9921, 0.9899, 0.9915]
    b = [0.9890, 0.9895, 0.9900, 0.9901, 0.9893]
    c = paired_tests.paired_difference(runs(a), runs(b), 0.95)
    expected = stats.ttest_rel(np.array(a) * 100, np.array(b) * 100).confidence_interval(0.95)
    assert c["ci_low_points"] == pytest.approx(expected.low, abs=1e-6)
    assert c["ci_high_points"] == pytest.approx(expected.high, abs=1e-6)
    assert c["mean_points"] == pytest.approx(100 * (np.mean(a) - np.mean(b)), abs=1e-6)
    assert (c["a_ahead"], c["b_ahead"], c["ties"], c["n"]) == (4, 1, 0, 5)
    assert c["seeds"] == [10, 11, 12, 13, 14]


def summary(diffs_points, *, a="x", b="y", first_seed=10, confounds=()):
    """A studied comparison whose paired differences a - b are ``diffs_points``, as the summary stage builds it."""
    base = [0.5 + 0.001 * k for k in range(len(diffs_points))]
    c = paired_tests.paired_difference(
        runs([x + d / 100 for x, d in zip(base, diffs_points, strict=True)], first_seed), runs(base, first_seed), 0.95
    )
    return {"key": "k", "title": "t", "a": a, "b": b, **c, "fair": not confounds, "confounds": list(confounds)}


def verdict(c):
    return seed_study_summary.verdict(c, 0.05)


def test_sign_test_and_its_floor_match_scipy():
    assert paired_tests.sign_test(9, 1) == pytest.approx(stats.binomtest(9, 10, 0.5).pvalue, abs=1e-6)
    assert paired_tests.sign_test(5, 0) == 0.0625 and paired_tests.sign_test(0, 0) is None
    assert [paired_tests.smallest_sign_test_p(n) for n in (1, 5, 10)] == [1.0, 0.0625, 0.00195312]
    c = summary([1.0, 0.0, 2.0, -0.5, 3.0])  # the tie is dropped: 3 ahead against 1
    assert (c["a_ahead"], c["b_ahead"], c["ties"]) == (3, 1, 1)
    assert c["sign_test_p"] == pytest.approx(stats.binomtest(3, 4, 0.5).pvalue, abs=1e-6)


def test_the_reviews_softmax_case_reads_ahead_in_every_seed_with_the_sign_tests_p():
    # reports/seed_study/summary.json at 99f86c0: prac5 - prac5_softmax per seed; seed 9 is the outlier
    c = summary([2.56, 1.54, 2.30, 2.37, 11.33], a="prac5", b="prac5_softmax", first_seed=5)
    assert c["ci_low_points"] < 0 < c["ci_high_points"] and not c["distinguishable"]
    text = verdict(c)
    assert text.startswith("Over 5 seeds, `prac5` is ahead of `prac5_softmax` in every seed, yet neither test reaches")
    assert "yet neither test reaches the 0.05 level: 5 of 5 seeds; mean a - b +4.02 points" in text
    assert "includes 0 because of one seed: random seed 9 gives +11.33 points" in text
    assert "exact sign test p = 0.0625; 5 seeds cannot reach p < 0.05 with a sign test" in text
    assert "not distinguishable" not in text and "more accurate" not in text


def test_ten_seeds_one_way_are_more_accurate_by_both_tests():
    c = summary([2.56, 1.54, 2.30, 2.37, 11.33, 2.0, 1.8, 2.9, 2.2, 1.7], a="prac5", b="prac5_softmax")
    text = verdict(c)
    assert text.startswith("Over 10 seeds, `prac5` is more accurate than `prac5_softmax` by both tests")
    assert "exact sign test p = 0.001953 (below 0.05)" in text and "cannot reach" not in text


def test_wording_follows_the_interval_and_its_sign():
    clear = summary([1.0, 0.9, 1.1])
    assert clear["distinguishable"]
    assert verdict(clear).startswith("Over 3 seeds, `x` is more accurate than `y` by the t-interval")
    assert "3 seeds cannot reach p < 0.05 with a sign test (smallest possible p 0.25)" in verdict(clear)
    flipped = summary([-1.0, -0.9, -1.1])
    assert verdict(flipped).startswith("Over 3 seeds, `y` is more accurate than `x`")
    assert "mean a - b -1.00 points" in verdict(flipped)
    noisy = summary([1.0, -0.7, 1.1])  # one seed reversed: the interval contains 0
    assert noisy["ci_low_points"] < 0 < noisy["ci_high_points"] and not noisy["distinguishable"]
    text = verdict(noisy)
    assert text.startswith("Over 3 seeds, neither test tells `x` and `y` apart at the 0.05 level")
    assert "`x` ahead in 2 of 3 seeds, `y` in 1" in text and "because of one seed" not in text
    mixed = summary([0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.3, -0.3, 0.1, -0.2])
    assert verdict(mixed).startswith("Over 10 seeds, neither test") and "cannot reach" not in verdict(mixed)


def test_opposite_directions_are_said_not_resolved():
    # a ahead in 9 of 10 seeds by a little, b ahead in one by a lot: the sign test says a, the mean says b
    c = summary([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, -5.0])
    c |= {"distinguishable": True}  # as if the interval excluded 0 on b's side
    assert verdict(c).startswith("Over 10 seeds, the sign test and the t-interval point opposite ways")


def test_pooling_at_five_seeds_says_what_five_seeds_cannot_show():
    # the review's TDM case: every seed favours max pooling, the mean is 0.25, the interval contains 0
    text = verdict(summary([0.62, 0.10, 0.06, 0.38, 0.11], a="tdm_max", b="tdm_avg"))
    assert "`tdm_max` is ahead of `tdm_avg` in every seed, yet neither test" in text
    assert "5 of 5 seeds; mean a - b +0.25 points" in text
    assert "5 seeds cannot reach p < 0.05" in text


def test_an_unfair_comparison_says_so_first():
    c = summary([1.0, 0.9, 1.1], confounds=["train.epochs: 1 vs 10"])
    assert verdict(c).startswith("Not a fair comparison: `x` and `y` also differ in train.epochs: 1 vs 10. Over 3")


def comparison_file(params: dict, key: str) -> dict:
    """``reports/comparisons/<key>.json`` as compare@ writes it, its confounds found from ``params``
    as compare@ finds them (the measured fields are placeholders: the summary reads the confounds)."""
    loaded = load_all(params)
    cmp = loaded.comparison(key)
    found = paired_tests.confounds(loaded.variant(cmp.a), loaded.variant(cmp.b), cmp.factor)
    side = {"test_accuracy": 0.9, "test_loss": 0.3, "parameters": 100}
    return {
        "title": cmp.title,
        "a": {"variant": cmp.a, **side},
        "b": {"variant": cmp.b, **side},
        "accuracy_diff_points": 0.0,
        "test_loss_diff": 0.0,
        "parameter_ratio": 1.0,
        "fair": not found,
        "confounds": found,
        "mcnemar": {"images": 100, "a_only_correct": 0, "b_only_correct": 0, "p_value": 1.0},
        "verdict": "measured by compare@",
    }


def write_comparison_files(root, params: dict) -> None:
    for key in params["seed_study"]["comparisons"]:
        path = root / "reports" / "comparisons" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(comparison_file(params, key)))


def test_the_summary_says_unfair_when_compare_found_confounds():
    # a new user's experiment: one side retrained with 2 epochs and another lr, the other left as it was
    params = copy.deepcopy(STUDY_PARAMS)
    params["variants"]["tdm_max"]["train"]["epochs"] = 2
    params["variants"]["tdm_max"]["train"]["optimizer"]["lr"] = 0.01
    params["variants"]["tdm_max"]["seed"] = 1  # the random seed is not a confound (the runs carry it)
    found = comparison_file(params, "pooling")["confounds"]
    assert found == ["train.epochs: 2 vs 1", "train.optimizer.lr: 0.01 vs 0.001"]
    both = {"tdm_max": runs([0.99, 0.98, 0.97]), "tdm_avg": runs([0.98, 0.97, 0.96])}
    c = seed_study_summary.comparison_summary("pooling", load_all(params), both, 0.95, 0.05, found)
    assert not c["fair"] and c["confounds"] == found
    assert c["verdict"].startswith("Not a fair comparison: `tdm_max` and `tdm_avg` also differ in train.epochs: 2 vs 1")
    fair = seed_study_summary.comparison_summary("pooling", load_all(STUDY_PARAMS), both, 0.95, 0.05)
    assert fair["fair"] and not fair["verdict"].startswith("Not a fair")


def test_a_factor_outside_the_variant_params_is_refused():
    params = copy.deepcopy(STUDY_PARAMS)
    params["analysis"]["comparisons"]["pooling"]["factor"] = ["seed"]
    with pytest.raises(
        ConfigError, match=r"analysis\.comparisons\.pooling\.factor\[0\]: 'seed' is not a variant param"
    ):
        load_all(params)


def test_identical_differences_give_a_zero_width_interval():
    c = paired_tests.paired_difference(runs([0.9, 0.8]), runs([0.9, 0.8]), 0.95)
    assert (c["ci_low_points"], c["ci_high_points"], c["ties"]) == (0.0, 0.0, 2)
    assert not c["distinguishable"]


def test_sides_with_different_seeds_are_refused():
    with pytest.raises(ConfigError, match="different seeds"):
        paired_tests.paired_difference(runs([0.9, 0.8], 1), runs([0.9, 0.8], 2), 0.95)


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
    monkeypatch.setattr(seed_study, "load_splits", lambda data, seed: splits)
    write_comparison_files(tmp_path, params)
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
    payload = seed_study.seed_study("tdm_max", root / "params.yaml", root / "reports", out)
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

    seed_study.seed_study("tdm_avg", root / "params.yaml", root / "reports", out)
    summary = seed_study_summary.summarize(
        root / "params.yaml", out, root / "reports" / "comparisons", root / "reports" / "seed_study"
    )
    (comparison,) = summary["comparisons"]
    assert (comparison["a"], comparison["b"], comparison["n"]) == ("tdm_max", "tdm_avg", 3)
    assert comparison["verdict"] == seed_study_summary.verdict(comparison, 0.05)
    assert comparison["fair"] and comparison["confounds"] == [] and summary["alpha"] == 0.05
    assert (root / "reports" / "seed_study" / "differences.png").read_bytes()[:4] == b"\x89PNG"

    # compare@ found a confound (its file says so): the summary's verdict opens with it
    unfair = json.loads((root / "reports" / "comparisons" / "pooling.json").read_text())
    unfair |= {"fair": False, "confounds": ["train.epochs: 2 vs 1"]}
    (root / "reports" / "comparisons" / "pooling.json").write_text(json.dumps(unfair))
    again = seed_study_summary.summarize(
        root / "params.yaml", out, root / "reports" / "comparisons", root / "reports" / "seed_study"
    )
    assert again["comparisons"][0]["verdict"].startswith("Not a fair comparison: `tdm_max` and `tdm_avg` also differ")

    # ... and without it the summary refuses, naming the file and the stage that writes it
    (root / "reports" / "comparisons" / "pooling.json").unlink()
    with pytest.raises(ConfigError, match=r"comparisons/pooling\.json: missing; .*`dvc repro compare@pooling`"):
        seed_study_summary.summarize(
            root / "params.yaml", out, root / "reports" / "comparisons", root / "reports" / "seed_study"
        )


def test_summary_refuses_runs_from_another_n(tiny_study):
    root, _, _ = tiny_study
    out = root / "reports" / "seed_study" / "runs"
    for name in ("tdm_max", "tdm_avg"):
        seed_study.seed_study(name, root / "params.yaml", root / "reports", out)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seed_study"]["seeds"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"tdm_max.json: 3 runs, but seed_study.seeds is 4"):
        seed_study_summary.summarize(
            root / "params.yaml", out, root / "reports" / "comparisons", root / "reports" / "seed_study"
        )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"alpha": 1.5}, r"verdicts\.alpha: expected a number between 0 and 1, got 1\.5"),
        ({"noise_multiple": 0}, r"verdicts\.noise_multiple: must be positive"),
        ({"class_balance_ratio": 0.9}, r"verdicts\.class_balance_ratio: expected a ratio of at least 1"),
        ({"flip_rate_max": 3}, r"verdicts\.flip_rate_max: must be a probability"),
        ({"trend_epochs": "three"}, r"verdicts\.trend_epochs: expected an integer"),
        ({"extra": 1}, r"verdicts\.extra: unknown key"),
    ],
)
def test_bad_verdict_params_name_the_key(change, message):
    params = copy.deepcopy(STUDY_PARAMS)
    params["verdicts"].update(change)
    with pytest.raises(ConfigError, match=message):
        load_all(params)


def test_a_missing_verdict_key_is_named():
    params = copy.deepcopy(STUDY_PARAMS)
    del params["verdicts"]["alpha"]
    with pytest.raises(ConfigError, match=r"verdicts\.alpha"):
        load_all(params)
