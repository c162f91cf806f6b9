"""The handouts' written questions answered from the stages' files: the wording follows the data.

Each test builds the files an answer reads, reads the sentence, then changes the file so the
comparison flips (or the curve bends) and reads the sentence again.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.config import load_params
from pipeline.core.errors import PipelineError
from pipeline.core.params import VerdictConfig, load_all
from pipeline.report.answers import BUILDERS, answers
from pipeline.report.answers.sentences import confusions, curve_behaviour, held_out_noise
from pipeline.report.answers.spec import ANSWERS, load_questions

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_all(REPO / "params.yaml")  # the variants and comparisons references/answers/ may name

# The bars a verdict needs, written here rather than read from params.yaml: what these tests
# check does not move when the committed params change.
VERDICTS = VerdictConfig(
    alpha=0.05,
    noise_multiple=2.0,
    trend_epochs=3,
    train_loss_fall=0.05,
    class_balance_ratio=1.5,
    standardized_tolerance=0.1,
    shortcut_rate_max=0.05,
    flip_rate_max=0.03,
)


class Files:
    """A stand-in for the report's Inputs: files under reports/ held in a dict, params ``verdicts``, and the
    repository whose references/answers/ say which builder answers which question."""

    def __init__(self, files: dict[str, object], verdicts: VerdictConfig = VERDICTS, root: Path = REPO) -> None:
        self.files = files
        self.verdicts = verdicts
        self.root = root
        self.params = PARAMS

    def json(self, rel: str):
        value = self.files.get(rel)
        return None if value is None else json.loads(json.dumps(value))

    def text(self, rel: str):
        value = self.files.get(rel)
        return value if value is None or isinstance(value, str) else None


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def comparison_files(
    key: str, a: tuple[str, float, float], b: tuple[str, float, float], discordant=(103, 41), p_value=1.6e-07
) -> Files:
    """``comparisons/<key>.json`` of variants ``(name, test accuracy, test loss)`` a and b, with the McNemar
    block compare@ writes (``discordant``: images only a, only b gets right, and its ``p_value``)."""
    side = lambda v: {"variant": v[0], "test_accuracy": v[1], "test_loss": v[2], "parameters": 9098}  # noqa: E731
    mcnemar = {"images": 10000, "a_only_correct": discordant[0], "b_only_correct": discordant[1], "p_value": p_value}
    data = {"a": side(a), "b": side(b), "mcnemar": mcnemar, "fair": True, "confounds": []}
    return Files({f"comparisons/{key}.json": data})


def pooling_files(acc_max: float, acc_avg: float, discordant=(103, 41), p_value=1.6e-07) -> Files:
    return comparison_files("pooling", ("tdm_max", acc_max, 0.04), ("tdm_avg", acc_avg, 0.06), discordant, p_value)


def answer(key: str, question: str, files: Files):
    return next(a for a in answers(key, files) if a.question == question)


def test_pooling_answer_follows_which_way_the_comparison_goes():
    a = answer("tdm", "5b", pooling_files(0.9861, 0.9797))
    assert a.text.startswith("max pooling (`tdm_max`) reaches 98.61% test accuracy against 97.97% for average")
    assert "0.64 points higher" in a.text and "the test set tells these two runs apart" in a.text
    assert "max pooling (`tdm_max`) alone gets 103 right and average pooling (`tdm_avg`) alone 41" in a.text
    assert "(exact McNemar test, p = 1.6e-07)" in a.text and a.sources == ("comparisons/pooling.json",)
    flipped = answer("tdm", "5b", pooling_files(0.9790, 0.9861))
    assert flipped.text.startswith("average pooling (`tdm_avg`) reaches 98.61% test accuracy against 97.90% for max")
    close = answer("tdm", "5b", pooling_files(0.9861, 0.9855, (40, 34), 0.56))
    assert "not below 0.05, so the test set does not tell these two runs apart" in close.text
    assert "0.06 points higher" in close.text


def test_the_reviews_ds5220_case_reads_as_told_apart_by_the_paired_test():
    # ds5220_cnn vs ds5220_cnn_raw: 0.33 points, inside two unpaired standard errors (0.38), yet 66 vs 33
    # discordant images: McNemar p = 0.0012 (computed by compare@, tests/test_comparisons.py)
    files = comparison_files(
        "normalization", ("ds5220_cnn", 0.9829, 0.053), ("ds5220_cnn_raw", 0.9796, 0.066), (66, 33), 0.00118
    )
    text = answer("ds5220", "4.4", files).text
    assert "0.33 points higher" in text and "p = 0.0012), so the test set tells these two runs apart" in text
    assert "does not tell" not in text
    # the same pair of runs with the significance level set below the p-value says the opposite
    strict = Files(files.files, dataclasses.replace(VERDICTS, alpha=0.001))
    assert "not below 0.001, so the test set does not tell these two runs apart" in answer("ds5220", "4.4", strict).text


def test_an_unfair_comparison_says_so_in_the_answer():
    files = pooling_files(0.9861, 0.9797)
    files.files["comparisons/pooling.json"] |= {"fair": False, "confounds": ["train.epochs: 1 vs 5"]}
    text = answer("tdm", "5b", files).text
    assert "Not a fair comparison: the two variants also differ in train.epochs: 1 vs 5." in text


def epochs(train: list[float], test: list[float], train_acc: float = 0.99, test_acc: float = 0.98) -> list[dict]:
    return [
        {"epoch": str(i + 1), "train_loss": str(tr), "train_accuracy": str(train_acc), "test_loss": str(te),
         "test_accuracy": str(test_acc)}
        for i, (tr, te) in enumerate(zip(train, test))
    ]  # fmt: skip


def test_curve_answer_claims_a_trend_only_beyond_the_runs_own_noise():
    train = [0.9, 0.5, 0.3, 0.2, 0.15, 0.1]
    # second half 0.20, 0.16, 0.13: changes -0.04, -0.03, noise 0.0071; the last 3 epochs fell 0.12
    still = curve_behaviour(epochs(train, [0.40, 0.30, 0.25, 0.20, 0.16, 0.13]), "test", VERDICTS)
    assert "falls every epoch" in still and "The test loss fell 0.1200 over the last 3 epochs" in still
    assert "noise (0.0071, over the second half of the run): still improving, so more epochs would" in still
    # lowest at epoch 3, then up by 0.11 against a noise bar of 2 x 0.0141
    over = curve_behaviour(epochs(train, [0.40, 0.30, 0.25, 0.26, 0.30, 0.36]), "test", VERDICTS)
    assert "lowest at epoch 3 (0.2500) and rises to 0.3600 by the last epoch, more than 2 x" in over
    assert "overfitting after epoch 3" in over and "more epochs" not in over
    bumpy = curve_behaviour(epochs([0.5, 0.6, 0.2], [0.4, 0.3, 0.25]), "test", VERDICTS)
    assert "rising at epoch(s) 2" in bumpy and "3 epochs are too few to measure its epoch-to-epoch noise" in bumpy
    assert "It still fell 67% in the last epoch" in bumpy  # a fact about the training loss, not a verdict
    flat = curve_behaviour(epochs([0.5, 0.2, 0.199], [0.4, 0.3, 0.25]), "test", VERDICTS)
    assert "It still fell" not in flat


def test_the_reviews_hku_curve_is_level_not_overfitting():
    # reports/hku_simplecnn/plots/epochs.csv at 99f86c0: the validation loss is lowest at epoch 9 (0.0222) and
    # ends 0.00056 higher while validation accuracy rose; earlier epochs moved it by 0.004 and more
    val = [0.052883, 0.037897, 0.033997, 0.023734, 0.027823, 0.029117, 0.02263, 0.02388, 0.022203, 0.022762]
    acc = [0.983167, 0.989333, 0.989167, 0.9935, 0.9915, 0.990667, 0.991833, 0.992, 0.9925, 0.993333]
    train = [0.144982, 0.057769, 0.043999, 0.035317, 0.030931, 0.027635, 0.025276, 0.020541, 0.019692, 0.016141]
    rows = [
        {
            "epoch": str(i + 1),
            "train_loss": str(t),
            "train_accuracy": "0.99",
            "val_loss": str(v),
            "val_accuracy": str(a),
        }
        for i, (t, v, a) in enumerate(zip(train, val, acc, strict=True))
    ]
    text = curve_behaviour(rows, "val", VERDICTS)
    assert held_out_noise(val) == pytest.approx(np.std(np.diff(val[5:]), ddof=1))
    assert "The validation loss is lowest at epoch 9 (0.0222) and ends at 0.0228" in text
    assert "level, neither overfitting nor still improving beyond its noise" in text
    assert "overfitting after" not in text and "more epochs would" not in text
    assert "It still fell 18% in the last epoch" in text  # said as a fact; the verdict is the validation curve's


def test_curve_answer_reports_the_train_test_gap_either_way():
    gap = curve_behaviour(epochs([0.5, 0.3], [0.4, 0.3], train_acc=0.995, test_acc=0.98), "test", VERDICTS)
    assert "1.50 points above test accuracy (98.00%)" in gap
    none = curve_behaviour(epochs([0.5, 0.3], [0.4, 0.3], train_acc=0.97, test_acc=0.98), "test", VERDICTS)
    assert "at or above the training accuracy" in none


def test_confusions_name_the_most_frequent_mistakes_and_the_weakest_class():
    rows = [{"label": "4", "predicted": "9"}] * 5 + [{"label": "7", "predicted": "2"}] * 2
    rows += [{"label": d, "predicted": d} for d in "0123456789" for _ in range(10)]
    text = confusions(rows)
    assert "7 of 107 test images are misclassified" in text
    assert "4 read as 9 (5), 7 read as 2 (2)" in text
    assert "recognised least often is 4 (66.67% of its 15 images)" in text
    swapped = confusions([{**r, "label": r["predicted"], "predicted": r["label"]} for r in rows])
    assert "9 read as 4 (5)" in swapped


def test_classwise_answer_flips_when_the_early_layer_is_the_class_specific_one():
    def files(cv1: float, cv5: float) -> Files:
        def layer(cv: float, n: int) -> dict:
            over = n if cv > 0.5 else 0
            summary = {"median_cv": cv, "filters": n, "class_specific_filters": over, "cv_threshold": 0.5}
            return {"summary": summary, "per_filter": {f"filter_{i:02d}": {"cv": 9.0} for i in range(n)}}

        return Files(
            {"cse849/classwise_norms/classwise_norms.json": {"conv1": layer(cv1, 16), "conv5": layer(cv5, 80)}}
        )

    usual = answer("cse849", "Q2 deliverable 4", files(0.03, 0.8)).text
    assert "across the 80 of conv5 it is 0.800" in usual and "depend more on the class" in usual
    assert "0 of 16 in conv1, 80 of 80 in conv5" in usual  # the stage's counts and median, not recomputed
    odd = answer("cse849", "Q2 deliverable 4", files(0.8, 0.03)).text
    assert "depend less on the class" in odd and "does not hold here" in odd


def test_missing_files_give_no_answer_rather_than_a_guess():
    """Without the stages' files only the conceptual answers (which read no file) remain."""
    for key in ("tdm", "hku", "prac5", "ds5220", "cse849"):
        left = answers(key, Files({}))
        assert all(not a.sources for a in left), (key, [a.question for a in left])
    assert [a.question for a in answers("tdm", Files({}))] == ["2e", "3c", "4c", "4d"]
    assert answers("no_such_assignment", Files({})) == []


def test_softmax_answer_explains_and_measures_both_ways():
    def files(plain: float, softmax: float) -> Files:
        return comparison_files("softmax", ("prac5", plain, 0.05), ("prac5_softmax", softmax, 1.5))

    a = answer("prac5", "Q2 (softmax)", files(0.9841, 0.90))
    assert "cannot fall below -log(e / (e + K - 1)) for K classes" in a.text  # no shape trace: no number
    with_trace = files(0.9841, 0.90)
    with_trace.files["prac5/analysis/shape_trace.json"] = {
        "chain": "...",
        "steps": [{"type": "Linear", "shape": [1, 10]}],
    }
    assert (
        "cannot fall below -log(e / (e + 9)) = 1.46 nats for 10 classes"
        in answer("prac5", "Q2 (softmax)", with_trace).text
    )
    with_trace.files["prac5/analysis/shape_trace.json"]["steps"][0]["shape"] = [1, 3]
    floor = math.log((math.e + 2) / math.e)
    assert f"-log(e / (e + 2)) = {floor:.2f} nats for 3 classes" in answer("prac5", "Q2 (softmax)", with_trace).text
    assert "Measured: without a softmax layer (`prac5`) reaches 98.41% test accuracy against 90.00%" in a.text
    b = answer("prac5", "Q2 (softmax)", files(0.90, 0.9841))
    assert "Measured: with one (`prac5_softmax`) reaches 98.41%" in b.text
    # nothing measured, nothing said: only the conceptual answers remain
    assert [x.question for x in answers("prac5", Files({}))] == ["Q2.3", "Q3.2"]


def test_first_predictions_and_parameter_answers_follow_the_files():
    rows = [{"index": str(i), "label": str(i % 10), "predicted": str(i % 10)} for i in range(25)]
    assert answer("ds5220", "4.2", Files({"ds5220_cnn/eval/predictions.csv": csv_text(rows)})).text.endswith(
        "20 are classified correctly: all correct."
    )
    rows[3]["predicted"] = "8"
    assert (
        "19 are classified correctly: 1 wrong (image 3: 3 read as 8)"
        in answer("ds5220", "4.2", Files({"ds5220_cnn/eval/predictions.csv": csv_text(rows)})).text
    )

    def summary(*layers: tuple[str, str, int]) -> dict:
        rows = [
            {"layer": f"{t}-{i}", "module": m, "output_shape": [1, 10], "params": p}
            for i, (t, m, p) in enumerate(layers, 1)
        ]
        return {"input_shape": [1, 1, 28, 28], "layers": rows}

    def files(mlp_fc: int, cnn_fc: int) -> Files:
        return Files(
            {
                "ds5220_mlp/analysis/layer_summary.json": summary(("Linear", "fc1", mlp_fc), ("Linear", "fc2", 10)),
                "ds5220_cnn/analysis/layer_summary.json": summary(("Conv2d", "conv1", 260), ("Linear", "fc1", cnn_fc)),
            }
        )

    small = answer("ds5220", "Q3.3", files(1000, 500)).text
    assert small.startswith("The MLP has 1,010 parameters, the CNN 760: fewer for the CNN (1.33x).")
    assert "in the CNN the largest layer, `fc1` (Linear), holds 500 of them (66%)" in small
    big = answer("ds5220", "Q3.3", files(100, 5000)).text
    assert "the CNN 5,260: more for the CNN" in big


def test_comparison_answers_lead_with_the_seed_studys_typical_figure_when_studied():
    from pipeline.analysis import paired_tests, seed_study_summary

    def runs(accs):
        return [{"seed": k, "test_accuracy": a, "test_loss": 0.1} for k, a in enumerate(accs)]

    files = pooling_files(0.9861, 0.9797)
    assert "seed study" not in answer("tdm", "5b", files).text  # not studied: the single run's wording only
    for avg, expected in (
        ([0.980, 0.982, 0.981], "`tdm_max` is more accurate than `tdm_avg` by the t-interval"),
        ([0.990, 0.975, 0.992], "neither test tells `tdm_max` and `tdm_avg` apart"),
    ):
        c = paired_tests.paired_difference(runs([0.99, 0.991, 0.992]), runs(avg), 0.95)
        c |= {"key": "pooling", "a": "tdm_max", "b": "tdm_avg", "fair": True, "confounds": []}
        c["verdict"] = seed_study_summary.verdict(c, 0.05)
        files.files["seed_study/summary.json"] = {"comparisons": [c]}
        a = answer("tdm", "5b", files)
        assert a.text.startswith("Typically (seed study): Over 3 seeds,") and expected in a.text
        # the typical figure leads; this run's gap follows
        assert a.text.index("Over 3 seeds") < a.text.index("This report's run of each (random seed 0): max pooling")
        assert a.sources[-1] == "seed_study/summary.json"


def test_tdm_data_and_model_answers_follow_their_files():
    head = "(60000, 785)\nlabel 1x1\n5 0\n0 0\n4 0\n1 0\n9 0\n"
    stats = {"mnist": {"train": {"count": 60000, "mean": 0.13, "std": 0.31}, "test": {"count": 10000}}}
    a = answer("tdm", "2a", Files({"data/stats.json": stats, "data/mnist_head.txt": head}))
    assert "yields 60,000 training and 10,000 test images" in a.text
    stats["mnist"]["test"]["count"] = 500
    assert (
        "60,000 training and 500 test images"
        in answer("tdm", "2a", Files({"data/stats.json": stats, "data/mnist_head.txt": head})).text
    )
    assert "2a" not in [x.question for x in answers("tdm", Files({"data/stats.json": stats}))]  # no head: not said

    def trace(channels: int) -> dict:
        steps = [
            {"layer": "input", "type": "input", "shape": [1, 1, 28, 28]},
            {"layer": "conv1", "type": "Conv2d", "shape": [1, channels, 28, 28]},
            {"layer": "fc1", "type": "Linear", "shape": [1, 10]},
        ]
        return {"chain": f"[1, 1, 28, 28] -> [1, {channels}, 28, 28] -> [1, 10]", "steps": steps}

    files = {"tdm_max/analysis/shape_trace.json": trace(8), "tdm_max/analysis/param_counts.json": {"total": 9098}}
    a = answer("tdm", "3a-3b", Files(files))
    assert "`conv1` (Conv2d) -> 8x28x28; `fc1` (Linear) -> 10" in a.text and "9,098 parameters" in a.text
    files["tdm_max/analysis/shape_trace.json"] = trace(16)
    assert "`conv1` (Conv2d) -> 16x28x28" in answer("tdm", "3a-3b", Files(files)).text


def test_cse849_filter_answer_follows_the_measured_kinds_and_class_dependence():
    def filters(colours: list[str], edges: int) -> dict:
        rows = [{"filter": i, "kind": "colour", "prefers": c} for i, c in enumerate(colours)]
        rows += [{"filter": len(colours) + i, "kind": "edge/texture"} for i in range(edges)]
        counts = {"colour": len(colours), "blob": 0, "edge/texture": edges}
        preferences = {c: colours.count(c) for c in ("red", "green", "blue")}
        return {
            "layer": "convs.0", "shape": [len(rows), 3, 5, 5], "counts": counts, "filters": rows,
            "colour_preferences": preferences,
        }  # fmt: skip

    def norms(class_specific: int) -> dict:
        summary = {
            "median_cv": 0.03, "max_cv": 0.195, "cv_threshold": 0.5, "class_specific_filters": class_specific,
            "filters": 16,
        }  # fmt: skip
        return {"conv1": {"per_filter": {}, "summary": summary}, "conv5": {"per_filter": {}, "summary": {}}}

    def classwise(norms_of_kernel_0: dict[str, float]) -> str:
        rows = [{"layer": "conv1", "filter": 0, "class": i, "class_name": c, "mean_norm": v}
                for i, (c, v) in enumerate(norms_of_kernel_0.items())]  # fmt: skip
        return csv_text(rows)

    files = {
        "cse849/analysis/filters.json": filters(["blue", "blue", "red"], 13),
        "cse849/classwise_norms/classwise_norms.json": norms(0),
    }
    text = answer("cse849", "Q2 deliverable 2", Files(files)).text
    assert "13 respond to grey-level structure" in text and "3 to colour (2 preferring blue, 1 preferring red)" in text
    assert "the largest 0.195; 0 of 16 filters pass the class-specific threshold (0.5)" in text
    assert "rather than parts of one CIFAR-10 class" in text
    assert "sky" not in text and "By class" not in text  # no class-wise file: no claim about classes
    # the review's case: the blue kernel's class-wise norms (classwise_norms.csv) name the classes
    files["cse849/classwise_norms/classwise_norms.csv"] = classwise({"airplane": 32.38, "frog": 18.52, "ship": 32.0})
    text = answer("cse849", "Q2 deliverable 2", Files(files)).text
    assert (
        "kernel 0 (blue) responds most to airplane (32.38) and ship (32.00) images and least to frog (18.52), 1.75x"
        in text
    )
    files["cse849/classwise_norms/classwise_norms.csv"] = classwise({"airplane": 18.0, "frog": 30.0, "ship": 20.0})
    text = answer("cse849", "Q2 deliverable 2", Files(files)).text
    assert "responds most to frog (30.00) and ship (20.00) images and least to airplane (18.00)" in text
    files = {
        "cse849/analysis/filters.json": filters(["green"], 15),
        "cse849/classwise_norms/classwise_norms.json": norms(4),
    }
    text = answer("cse849", "Q2 deliverable 2", Files(files)).text
    assert "4 of 16 filters pass" in text and "already favour particular classes" in text


def test_first_batch_answer_prints_the_recorded_batch_and_follows_its_scale():
    def batch(mean: float, std: float) -> dict:
        return {"first_batch": {"images_shape": [64, 1, 28, 28], "labels_shape": [64], "mean": mean, "std": std}}

    files = {"ds5220_cnn/training.json": batch(0.0123, 1.0071), "ds5220_cnn_raw/training.json": batch(0.1322, 0.3101)}
    a = answer("ds5220", "Part 0", Files(files))
    assert (
        "Images shape:  torch.Size([64, 1, 28, 28])\nLabels shape:  torch.Size([64])\nMean=0.0123, Std=1.0071" in a.text
    )
    assert "`ds5220_cnn`'s batch has mean 0.0123 and std 1.0071, close to 0 and 1" in a.text
    assert "`ds5220_cnn_raw`'s batch has mean 0.1322 and std 0.3101, not standardized" in a.text
    assert a.sources == ("ds5220_cnn/training.json", "ds5220_cnn_raw/training.json")
    # a normalization that did not standardize changes the sentence
    files["ds5220_cnn/training.json"] = batch(-0.4, 0.6)
    assert (
        "`ds5220_cnn`'s batch has mean -0.4000 and std 0.6000, not standardized"
        in answer("ds5220", "Part 0", Files(files)).text
    )
    # a training.json from before the engine recorded the batch gives no answer
    assert all(a.question != "Part 0" for a in answers("ds5220", Files({"ds5220_cnn/training.json": {"epochs": 10}})))


def test_practical5_printouts_come_from_the_npz_the_stats_stage_read():
    npz = {
        "train": {"x_shape": [600, 784], "y_shape": [600], "first_labels": [3, 0, 9]},
        "test": {"x_shape": [100, 784], "y_shape": [100]},
    }
    files = Files({"data/stats.json": {"mnist_npz": npz}})
    q1 = answer("prac5", "Q1", files)
    assert "| Train X: (600, 784)\n| Train Y: (600,)\n| Test X: (100, 784)\n| Test Y: (100,)" in q1.text
    one_hot = answer("prac5", "Q3.1", files)
    assert "tensor([3, 0, 9])\n[0., 0., 0., 1., 0., 0., 0., 0., 0., 0.]\n[1., 0., " in one_hot.text
    assert "The first 3 training labels, and the first 3 of them one-hot" in one_hot.text
    del npz["train"]["first_labels"]  # a stats.json without the labels: the shapes alone
    assert [a.question for a in answers("prac5", Files({"data/stats.json": {"mnist_npz": npz}}))][:2] == ["Q1", "Q2.3"]


def test_final_epoch_answer_reads_the_gap_against_the_test_accuracys_noise():
    rows = [
        {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.90, "test_loss": 0.3, "test_accuracy": 0.93},
        {"epoch": 2, "train_loss": 0.2, "train_accuracy": 0.97, "test_loss": 0.2, "test_accuracy": 0.95},
    ]
    files = {
        "ds5220_mlp/plots/epochs.csv": csv_text(rows),
        "ds5220_mlp/training.json": {"checkpoint_epoch": 2},
        "ds5220_mlp/eval/metrics.json": {"test_examples": 10000},
    }
    a = answer("ds5220", "Part 3", Files(files))
    assert "After epoch 2 (the kept checkpoint), in the handout's format" in a.text
    assert "Train accuracy: 0.97\nTest accuracy: 0.95\nTrain loss: 0.2\nTest loss: 0.2" in a.text
    assert "the handout prints its last logged batch loss" in a.text
    # 2 points against 2 x sqrt(0.95 x 0.05 / 10,000) = 0.44 points
    assert (
        "training accuracy is 2.00 points above the test accuracy, more than 2 standard errors of the test " in a.text
    )
    assert "(0.44 points): the model fits its training images better than unseen ones" in a.text
    files["ds5220_mlp/eval/metrics.json"] = {"test_examples": 100}  # 2 standard errors: 4.36 points
    a = answer("ds5220", "Part 3", Files(files))
    assert "within 2 standard errors of the test accuracy (4.36 points): no sign of overfitting" in a.text
    files["ds5220_mlp/training.json"] = {"checkpoint_epoch": 1}  # an earlier kept epoch: its row, its reading
    a = answer("ds5220", "Part 3", Files(files))
    assert "Train accuracy: 0.9\n" in a.text and "3.00 points below the test accuracy, within" in a.text
    del files["ds5220_mlp/eval/metrics.json"]  # no test size, no noise bar: no reading
    assert all(x.question != "Part 3" for x in answers("ds5220", Files(files)))


def test_class_balance_and_standardized_batch_follow_their_params():
    counts = {str(d): 100 for d in range(10)} | {"1": 140}
    files = Files({"data/stats.json": {"mnist": {"train": {"class_counts": counts}}}})
    assert "The classes are roughly balanced" in answer("tdm", "2c", files).text  # 1.40 < 1.5
    strict = Files(files.files, dataclasses.replace(VERDICTS, class_balance_ratio=1.3))
    text = answer("tdm", "2c", strict).text
    assert "The classes are imbalanced" in text and "balanced means under 1.3" in text and "per-class recall" in text
    batch = {"first_batch": {"images_shape": [64, 1, 28, 28], "labels_shape": [64], "mean": 0.05, "std": 1.05}}
    files = Files({"ds5220_cnn/training.json": batch})
    assert "close to 0 and 1" in answer("ds5220", "Part 0", files).text
    tight = Files(files.files, dataclasses.replace(VERDICTS, standardized_tolerance=0.01))
    assert "not standardized" in answer("ds5220", "Part 0", tight).text


def test_shape_answers_read_their_sizes_from_the_traces():
    steps = [
        {"layer": "input", "type": "input", "shape": [784]},
        {"layer": "(reshape before conv1)", "type": "tensor op", "shape": [1, 1, 28, 28]},
        {"layer": "conv1", "type": "Conv2d", "shape": [1, 10, 11, 11]},
        {"layer": "(reshape before fc1)", "type": "tensor op", "shape": [1, 1210]},
        {"layer": "fc1", "type": "Linear", "shape": [1, 10]},
    ]
    trace = {"chain": "[784] -> ... -> [1, 10]", "steps": steps}
    text = answer("prac5", "2.2", Files({"prac5/analysis/shape_trace.json": trace})).text
    assert "gives 10 maps of 11 x 11" in text and "flattened to 1,210 values" in text and "gives 10 logits" in text
    steps[2]["shape"], steps[3]["shape"] = [1, 6, 9, 9], [1, 486]
    text = answer("prac5", "2.2", Files({"prac5/analysis/shape_trace.json": trace})).text
    assert "gives 6 maps of 9 x 9" in text and "flattened to 486 values" in text and "11 x 11" not in text
    layers = [{"layer": "Conv2d-1", "module": "conv1", "output_shape": [1, 8, 32, 32], "params": 80}]
    summary = {"input_shape": [1, 1, 32, 32], "layers": layers}
    text = answer("tdm", "3e", Files({"tdm_max/analysis/layer_summary.json": summary})).text
    assert "the 32x32 image to 8x32x32" in text and "from the 1024 pixels would need 1024 x 8,192 + 8,192" in text


# --------------------------------------------------------------------------- references/answers/*.yaml


def test_every_assignment_has_its_questions_and_every_entry_loads():
    keys = set(load_params(REPO / "references" / "handout_results.yaml"))
    files = {p.stem for p in (REPO / "references" / "answers").glob("*.yaml")}
    assert files == keys  # one file per assignment, none for an assignment that does not exist
    for key in sorted(keys):
        questions = load_questions(REPO / ANSWERS / f"{key}.yaml", PARAMS.variants, PARAMS.analysis.comparisons)
        assert questions and all(q.text or q.builder for q in questions)


def answers_root(tmp_path: Path, key: str, edit) -> Path:
    """A repository whose references/answers/<key>.yaml is the committed one passed through ``edit``."""
    folder = tmp_path / ANSWERS
    shutil.copytree(REPO / ANSWERS, folder)
    path = folder / f"{key}.yaml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return tmp_path


def test_which_variant_a_question_reads_comes_from_the_yaml(tmp_path):
    files = {
        "tdm_max/metrics.json": {"test_accuracy": 0.9861},
        "tdm_avg/metrics.json": {"test_accuracy": 0.9797},
    }
    assert answer("tdm", "5a", Files(files)).text == "`tdm_max`: 98.61% test accuracy."
    old, new = ("accuracy\n  with:\n    variant: tdm_max", "accuracy\n  with:\n    variant: tdm_avg")
    root = answers_root(tmp_path, "tdm", lambda text: text.replace(old, new))
    moved = answer("tdm", "5a", Files(files, root=root))
    assert moved.text == "`tdm_avg`: 97.97% test accuracy." and moved.sources == ("tdm_avg/metrics.json",)


def test_fixed_text_and_the_order_of_questions_come_from_the_yaml(tmp_path):
    before = [a.question for a in answers("hku", Files({}))]
    assert before == ["Q5.1", "Q5.2", "Q5.3", "Q5.4"]

    def edit(text: str) -> str:
        head, *entries = text.split("\n- question: ")
        entries[1] = entries[1].split("  text: >-")[0] + "  text: >-\n    Reworded in the data file.\n"
        return "\n- question: ".join([head, *entries[::-1]])

    root = answers_root(tmp_path, "hku", edit)
    after = answers("hku", Files({}, root=root))
    assert [a.question for a in after] == ["Q5.4", "Q5.3", "Q5.2", "Q5.1"]
    assert next(a.text for a in after if a.question == "Q5.1") == "Reworded in the data file."


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('- {question: "3c", text: Some text.}', r"tdm\.yaml: 3c: missing asked"),
        ('- {question: "3c", asked: Why?}', r"tdm\.yaml: 3c: missing text or builder"),
        ('- {question: "3c", asked: Why?, text: A, colour: red}', r"tdm\.yaml: 3c: unknown key 'colour'"),
        ("- {question: 2.2, asked: Why?, text: A}", r"tdm\.yaml: 2\.2\.question: expected a non-empty string"),
        ('- {question: "5b", asked: Why?, builder: compare}', r"tdm\.yaml: 5b\.builder: unknown builder 'compare'"),
        ('- {question: "5a", asked: Why?, builder: accuracy}', r"tdm\.yaml: 5a\.with\.variant: missing"),
        (
            '- {question: "5a", asked: Why?, builder: accuracy, with: {variant: tdm_maxx}}',
            r"tdm\.yaml: 5a\.with\.variant: unknown variant 'tdm_maxx'",
        ),
        (
            '- {question: "5a", asked: Why?, builder: accuracy, with: {variant: tdm_max, split: train}}',
            r"tdm\.yaml: 5a\.with\.split: 'train' is not one of 'test', 'val'",
        ),
        (
            '- {question: "5a", asked: Why?, builder: accuracy, with: {variant: tdm_max, epoch: 3}}',
            r"tdm\.yaml: 5a\.with\.epoch: accuracy takes no such argument",
        ),
        (
            '- {question: "5b", asked: Why?, builder: comparison, with: {comparison: pool, names: [a, b]}}',
            r"tdm\.yaml: 5b\.with\.comparison: unknown comparison 'pool'",
        ),
        (
            '- {question: "5b", asked: Why?, builder: comparison, with: {comparison: pooling, names: [a]}}',
            r"tdm\.yaml: 5b\.with\.names: \['a'\] is not a list of 2 strings",
        ),
        (
            '- {question: "3c", asked: Why?, text: A}\n- {question: "3c", asked: Again?, text: B}',
            r"tdm\.yaml: 3c: answered twice",
        ),
        ('- {question: "3c", asked: Why?, text: A, lead: B}', r"tdm\.yaml: 3c\.lead: only meaningful with a builder"),
    ],
)
def test_a_bad_answers_file_is_refused_naming_the_file_and_key(tmp_path, entry, message):
    root = answers_root(tmp_path, "tdm", lambda _: entry + "\n")
    with pytest.raises(PipelineError, match=message):
        answers("tdm", Files({}, root=root))


def test_every_builder_answers_some_question():
    """A builder no answers file chooses is dead code: the YAML is the only way to reach one."""
    chosen = {
        q.builder
        for path in (REPO / ANSWERS).glob("*.yaml")
        for q in load_questions(path, PARAMS.variants, PARAMS.analysis.comparisons)
    }
    assert chosen - {""} == set(BUILDERS)  # "": the fixed answers
