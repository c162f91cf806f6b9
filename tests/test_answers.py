"""The seeds' written questions answered from the stages' files: the wording follows the data.

Each test builds the files an answer reads, reads the sentence, then changes the file so the
comparison flips (or the curve bends) and reads the sentence again.
"""

from __future__ import annotations

import csv
import io
import json

from pipeline.answers import accuracy_comparison, answers, confusions, curve_behaviour


class Files:
    """A stand-in for the report's Inputs: files under reports/ held in a dict."""

    def __init__(self, files: dict[str, object]) -> None:
        self.files = files

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


def comparison_files(key: str, a: tuple[str, float, float], b: tuple[str, float, float]) -> Files:
    """``comparisons/<key>.json`` of variants ``(name, test accuracy, test loss)`` a and b, and b's test size."""
    side = lambda v: {"variant": v[0], "test_accuracy": v[1], "test_loss": v[2], "parameters": 9098}  # noqa: E731
    return Files(
        {f"comparisons/{key}.json": {"a": side(a), "b": side(b)}, f"{b[0]}/eval/metrics.json": {"test_examples": 10000}}
    )


def pooling_files(acc_max: float, acc_avg: float) -> Files:
    return comparison_files("pooling", ("tdm_max", acc_max, 0.04), ("tdm_avg", acc_avg, 0.06))


def answer(key: str, question: str, files: Files):
    return next(a for a in answers(key, files) if a.question == question)


def test_pooling_answer_follows_which_way_the_comparison_goes():
    a = answer("tdm", "5b", pooling_files(0.9861, 0.9797))
    assert a.text.startswith("max pooling (`tdm_max`) reaches 98.61% test accuracy against 97.97% for average")
    assert "0.64 points higher" in a.text and "exceeds two standard errors" in a.text
    assert a.sources == ("comparisons/pooling.json", "tdm_avg/eval/metrics.json")
    flipped = answer("tdm", "5b", pooling_files(0.9790, 0.9861))
    assert flipped.text.startswith("average pooling (`tdm_avg`) reaches 98.61% test accuracy against 97.90% for max")
    close = answer("tdm", "5b", pooling_files(0.9861, 0.9855))
    assert "does not tell them apart" in close.text and "0.06 points higher" in close.text


def test_the_noise_yardstick_is_two_binomial_standard_errors():
    # p = 0.5 on 100 images each: SE of the difference = sqrt(2 * 0.25 / 100) = 0.0707 -> 2 SE = 14.14 points
    assert "(14.14 points)" in accuracy_comparison("a", 0.5, "b", 0.5, 100)
    assert "same test accuracy" in accuracy_comparison("a", 0.5, "b", 0.5, 100)


def epochs(train: list[float], test: list[float], train_acc: float = 0.99, test_acc: float = 0.98) -> list[dict]:
    return [
        {"epoch": str(i + 1), "train_loss": str(tr), "train_accuracy": str(train_acc), "test_loss": str(te),
         "test_accuracy": str(test_acc)}
        for i, (tr, te) in enumerate(zip(train, test))
    ]  # fmt: skip


def test_curve_answer_says_where_the_held_out_loss_stops_falling():
    still = curve_behaviour(epochs([0.5, 0.3, 0.2], [0.4, 0.3, 0.25]), "test")
    assert "falls every epoch" in still and "lowest at the last epoch (0.2500): still falling" in still
    over = curve_behaviour(epochs([0.5, 0.3, 0.2], [0.4, 0.3, 0.35]), "test")
    assert "lowest at epoch 2 (0.3000) and rises to 0.3500 by the last epoch: the mark of overfitting" in over
    level = curve_behaviour(epochs([0.5, 0.3, 0.2], [0.4, 0.3, 0.305]), "test")
    assert "ends within 2% of that (0.3050): level, no clear sign of overfitting" in level
    bumpy = curve_behaviour(epochs([0.5, 0.6, 0.2], [0.4, 0.3, 0.25]), "test")
    assert "rising at epoch(s) 2" in bumpy
    assert "not converged" in still  # 0.3 -> 0.2 is a 33% fall in the last epoch
    flat = curve_behaviour(epochs([0.5, 0.2, 0.199], [0.4, 0.3, 0.25]), "test")
    assert "not converged" not in flat


def test_curve_answer_reports_the_train_test_gap_either_way():
    gap = curve_behaviour(epochs([0.5, 0.3], [0.4, 0.3], train_acc=0.995, test_acc=0.98), "test")
    assert "1.50 points above test accuracy (98.00%)" in gap
    none = curve_behaviour(epochs([0.5, 0.3], [0.4, 0.3], train_acc=0.97, test_acc=0.98), "test")
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
    assert "cannot fall below -log(e / (e + 9)) = 1.46 nats" in a.text
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


def test_comparison_answers_carry_the_seed_studys_verdict_when_studied():
    from pipeline import seed_study

    def runs(accs):
        return [{"seed": k, "test_accuracy": a, "test_loss": 0.1} for k, a in enumerate(accs)]

    files = pooling_files(0.9861, 0.9797)
    assert "Seed study" not in answer("tdm", "5b", files).text  # not studied: the single run's wording only
    for avg, expected in (
        ([0.980, 0.982, 0.981], "`tdm_max` is more accurate than `tdm_avg`"),
        ([0.990, 0.975, 0.992], "not distinguishable at 3 seeds"),
    ):
        c = seed_study.comparison_summary(
            "pooling", "t", "tdm_max", "tdm_avg", {"tdm_max": runs([0.99, 0.991, 0.992]), "tdm_avg": runs(avg)}, 0.95
        )
        c["verdict"] = seed_study.verdict(c)
        files.files["seed_study/summary.json"] = {"comparisons": [c]}
        a = answer("tdm", "5b", files)
        assert "Seed study: Over 3 seeds," in a.text and expected in a.text
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
        summary = {"median_cv": 0.03, "cv_threshold": 0.5, "class_specific_filters": class_specific, "filters": 16}
        return {"conv1": {"per_filter": {}, "summary": summary}, "conv5": {"per_filter": {}, "summary": {}}}

    files = {
        "cse849/analysis/filters.json": filters(["blue", "blue", "red"], 13),
        "cse849/classwise_norms/classwise_norms.json": norms(0),
    }
    text = answer("cse849", "Q2 deliverable 2", Files(files)).text
    assert "13 respond to grey-level structure" in text and "3 to colour (2 preferring blue, 1 preferring red)" in text
    assert "barely depend on the class" in text and "rather than parts of any one CIFAR-10 class" in text
    assert "sky and water" in text and "grass" not in text
    files = {
        "cse849/analysis/filters.json": filters(["green"], 15),
        "cse849/classwise_norms/classwise_norms.json": norms(4),
    }
    text = answer("cse849", "Q2 deliverable 2", Files(files)).text
    assert "4 of 16 filters pass" in text and "already favour particular classes" in text and "barely" not in text
    assert "grass and foliage" in text and "sky" not in text


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


def test_final_epoch_answer_reads_the_kept_epoch_and_says_which_way_the_gap_goes():
    rows = [
        {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.90, "test_loss": 0.3, "test_accuracy": 0.93},
        {"epoch": 2, "train_loss": 0.2, "train_accuracy": 0.97, "test_loss": 0.2, "test_accuracy": 0.95},
    ]
    files = {"ds5220_mlp/plots/epochs.csv": csv_text(rows), "ds5220_mlp/training.json": {"checkpoint_epoch": 2}}
    a = answer("ds5220", "Part 3", Files(files))
    assert "After epoch 2 (the kept checkpoint)" in a.text
    assert "Train accuracy: 0.97\nTest accuracy: 0.95\nTrain loss: 0.2\nTest loss: 0.2" in a.text
    assert "training accuracy 2.00 points above the test accuracy: the model fits its training set better" in a.text
    files["ds5220_mlp/training.json"] = {"checkpoint_epoch": 1}  # an earlier kept epoch: its row, its reading
    a = answer("ds5220", "Part 3", Files(files))
    assert "Train accuracy: 0.9\n" in a.text and "3.00 points below the test accuracy: no sign of overfitting" in a.text
