"""compare@<key>: the exact McNemar test on per-image predictions, the fairness check against
params, and the wording that follows both (the review's DS 5220 case among them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy import stats

from pipeline.analysis.compare import compare
from pipeline.analysis.paired_tests import confounds, mcnemar
from pipeline.core.config import ConfigError, load_params
from pipeline.core.params import load_all
from tests.test_analysis import fake_comparison_pair, fake_predictions


def test_mcnemar_counts_the_discordant_images_and_matches_scipy():
    a = np.array([True] * 66 + [False] * 33 + [True] * 9800 + [False] * 101)
    b = np.array([False] * 66 + [True] * 33 + [True] * 9800 + [False] * 101)
    m = mcnemar(a, b)
    assert (m["images"], m["a_only_correct"], m["b_only_correct"]) == (10_000, 66, 33)
    assert m["p_value"] == pytest.approx(stats.binomtest(66, 99, 0.5).pvalue, abs=1e-6)
    assert m["p_value"] < 0.002  # the review measured p about 0.001
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0  # no discordant image: no evidence
    with pytest.raises(ValueError, match="same images"):
        mcnemar([True, False], [True])


def write_params(tmp_path, change=None):
    params = load_params()
    if change:
        change(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_the_reviews_normalization_case_reads_distinguishable(tmp_path):
    # ds5220_cnn vs ds5220_cnn_raw on 10,000 images: 66 only the normalized model gets right, 33 only the raw
    reports = tmp_path / "reports"
    fake_comparison_pair(reports)
    shared, wrong = [True] * 9780, [False] * 121
    fake_predictions(reports / "tdm_max/eval/predictions.csv", shared + [True] * 66 + [False] * 33 + wrong)
    fake_predictions(reports / "tdm_avg/eval/predictions.csv", shared + [False] * 66 + [True] * 33 + wrong)
    r = compare("pooling", write_params(tmp_path), reports, tmp_path / "out")
    assert (r["mcnemar"]["a_only_correct"], r["mcnemar"]["b_only_correct"]) == (66, 33)
    assert "(exact McNemar p = 0.0012), below 0.05: the test set tells these two runs apart" in r["verdict"]
    assert "does not tell" not in r["verdict"]


def test_a_comparison_of_variants_that_differ_in_more_than_its_factor_says_so(tmp_path):
    reports = tmp_path / "reports"
    fake_comparison_pair(reports)

    def one_epoch(params):  # the README's new-user experiment: one side retrained for 1 epoch
        params["variants"]["tdm_max"]["train"]["epochs"] = 1
        params["variants"]["tdm_max"]["seed"] += 1  # a random seed alone is not a confound

    epochs = load_all().variant("tdm_avg").train.epochs
    r = compare("pooling", write_params(tmp_path, one_epoch), reports, tmp_path / "out")
    assert not r["fair"] and r["confounds"] == [f"train.epochs: 1 vs {epochs}"]
    assert r["verdict"].startswith(
        f"Not a fair comparison: `tdm_max` and `tdm_avg` also differ in train.epochs: 1 vs {epochs}."
    )
    md = (tmp_path / "out" / "pooling.md").read_text()
    assert f"**Not a fair comparison**: the variants also differ in train.epochs: 1 vs {epochs}." in md
    assert json.loads((tmp_path / "out" / "pooling.json").read_text())["fair"] is False


def test_the_committed_comparisons_are_fair():
    params = load_all()
    for key, cmp in params.analysis.comparisons.items():
        assert confounds(params.variant(cmp.a), params.variant(cmp.b), cmp.factor) == [], key


def test_predictions_on_other_images_are_refused_and_nothing_is_written(tmp_path):
    reports = tmp_path / "reports"
    fake_comparison_pair(reports)
    fake_predictions(reports / "tdm_avg/eval/predictions.csv", [True] * 399)  # one image short
    with pytest.raises(
        ConfigError, match=r"tdm_max/eval/predictions.csv and .*tdm_avg/eval/predictions.csv: not the same test images"
    ):
        compare("pooling", write_params(tmp_path), reports, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_missing_predictions_file_names_its_stage(tmp_path):
    reports = tmp_path / "reports"
    fake_comparison_pair(reports)
    (reports / "tdm_avg/eval/predictions.csv").unlink()
    with pytest.raises(ConfigError, match=r"tdm_avg/eval/predictions.csv: cannot read .*dvc repro evaluate@tdm_avg"):
        compare("pooling", write_params(tmp_path), reports, tmp_path / "out")
