"""Analyses: shape formula, shape traces, parameter counts, filter grids, class-wise norms, comparisons, the stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from pipeline.analysis import analyze, classwise_norms, compare, padding
from pipeline.core.config import ConfigError, load_params
from pipeline.core.params import ComparisonConfig, load_all
from pipeline.data.common.formats import csv_columns
from pipeline.models import create_model
from pipeline.models.cse849_cnn import CSE849CNN
from pipeline.plots import bar_grid, filter_grid
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.normalizer import Normalizer
from pipeline.training.setup import InputPipeline
from tests.tiny_folder import make_checkpoint, make_folder_dataset, tiny_variant

# --------------------------------------------------------------------------- TDM Q6: padding


def test_padding_table_measures_what_the_formula_says():
    image = torch.rand(1, 1, 28, 28)
    rows = padding.padding_table(image, 3, (0, 1, 2), (1, 2))
    assert len(rows) == 6 and all(r["agree"] for r in rows)
    by = {(r["padding"], r["stride"]): r["measured_shape"] for r in rows}
    assert by[(0, 1)] == [1, 1, 26, 26]  # the handout's example
    assert by[(1, 1)] == [1, 1, 28, 28] and by[(2, 1)] == [1, 1, 30, 30]
    assert by[(0, 2)] == [1, 1, 13, 13] and by[(1, 2)] == [1, 1, 14, 14] and by[(2, 2)] == [1, 1, 15, 15]


@pytest.mark.parametrize(
    "wrong",
    [
        lambda h, k, s, p: (h - k + p) // s + 1,  # padding counted once
        lambda h, k, s, p: (h - k + 2 * p) / s + 1,  # no floor
        lambda h, k, s, p: (h - k + 2 * p) // s,  # missing + 1
    ],
)
def test_a_wrong_formula_is_caught(wrong):
    rows = padding.padding_table(torch.rand(1, 1, 28, 28), 3, (0, 1, 2), (1, 2), formula=wrong)
    assert not all(r["agree"] for r in rows)


# --------------------------------------------------------------------------- DS 5220 Q3.3: parameters


def test_parameter_counts_of_the_ds5220_models():
    assert analyze.param_counts(create_model("ds5220_mlp"))["total"] == 101770
    assert analyze.param_counts(create_model("ds5220_cnn"))["trainable"] == 47658


def test_layer_summary_matches_the_seeds_torchsummary():
    model = create_model("ds5220_cnn")
    rows = analyze.layer_summary(model, torch.zeros(1, 1, 28, 28))
    got = [(r["layer"], r["output_shape"], r["params"]) for r in rows]
    assert got == [
        ("Conv2d-1", [1, 10, 24, 24], 260),
        ("MaxPool2d-2", [1, 10, 12, 12], 0),
        ("Conv2d-3", [1, 20, 8, 8], 5020),
        ("MaxPool2d-4", [1, 20, 4, 4], 0),
        ("Linear-5", [1, 128], 41088),
        ("Linear-6", [1, 10], 1290),
    ]
    mlp = analyze.layer_summary(create_model("ds5220_mlp"), torch.zeros(1, 1, 28, 28))
    assert [(r["layer"], r["params"]) for r in mlp] == [("Flatten-1", 0), ("Linear-2", 100480), ("Linear-3", 1290)]


# --------------------------------------------------------------------------- Practical 5: shape trace


def test_shape_trace_of_practical5_matches_figure6():
    trace = analyze.shape_trace(create_model("prac5_cnn"), analyze.example_input((1, 28, 28), "mnist_npz"))
    assert trace["chain"] == "[784] -> [1, 1, 28, 28] -> [1, 10, 11, 11] -> [1, 1210] -> [1, 10]"
    assert [s["layer"] for s in trace["steps"]] == [
        "input",
        "(reshape before conv1)",
        "conv1",
        "(reshape before fc1)",
        "fc1",
    ]


def test_shape_trace_of_cse849_and_batched_input():
    model = CSE849CNN(pool_stride=2)
    trace = analyze.shape_trace(model, analyze.example_input((3, 64, 64), "image_folder"))
    assert trace["input"] == [1, 3, 64, 64]
    assert trace["chain"].endswith("-> [1, 80, 4, 4] -> [1, 80, 1, 1] -> [1, 80] -> [1, 10]")
    assert sum(1 for s in trace["steps"] if s["type"] == "Conv2d") == 5


# --------------------------------------------------------------------------- filters


def test_first_conv_is_found_by_walking_modules():
    assert analyze.first_conv(CSE849CNN())[0] == "convs.0"
    model = create_model("simple_cnn", layers="custom")
    name, weight = analyze.first_conv(model)
    assert name == "conv1" and not isinstance(dict(model.named_modules())[name], nn.Conv2d)
    assert weight.shape == (32, 1, 5, 5)
    assert analyze.first_conv(create_model("ds5220_mlp")) is None


@pytest.mark.parametrize("shape", [(16, 3, 7, 7), (10, 1, 8, 8), (5, 4, 3, 3)])
def test_filter_grid_has_one_panel_per_filter(shape):
    fig = filter_grid(torch.randn(shape))
    assert len(fig.axes) == shape[0]
    assert all(len(ax.images) == 1 for ax in fig.axes)
    first = fig.axes[0].images[0].get_array()
    if shape[1] == 3:  # colour, each filter scaled to [0, 1] on its own
        assert first.shape == (7, 7, 3) and float(first.min()) == 0.0 and float(first.max()) == 1.0
    else:
        assert first.shape == shape[2:]


def test_bar_grid_panels():
    fig = bar_grid(np.random.rand(10, 80), [f"f{i}" for i in range(80)], [str(i) for i in range(10)], cols=10)
    assert len(fig.axes) == 80 and all(len(ax.patches) == 10 for ax in fig.axes)


# --------------------------------------------------------------------------- CSE 849 2.2: class-wise norms


def test_classwise_norms_equal_a_direct_torch_norm_computation():
    torch.manual_seed(0)
    model = CSE849CNN(pool_stride=2).eval()
    images = torch.randint(0, 256, (37, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(37) % 10
    normalizer = Normalizer([0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    prepare = InputPipeline(normalizer, torch.device("cpu"), channels_last=False)
    got = classwise_norms.classwise_feature_norms(model, images, labels, 10, [1, 5], prepare, batch_size=8)
    with torch.no_grad():
        _, features = model(normalizer(images), intermediate_outputs=True)
    for layer, channels in ((1, 16), (5, 80)):
        norms = torch.norm(features[layer - 1], dim=(2, 3))  # (b, c)
        expected = torch.stack([norms[labels == c].mean(0) for c in range(10)])
        assert got[layer].shape == (10, channels)
        torch.testing.assert_close(got[layer].float(), expected, rtol=1e-5, atol=1e-5)


def test_classwise_norms_need_intermediate_outputs():
    prepare = InputPipeline(Normalizer([0.0], [1.0]), torch.device("cpu"), channels_last=False)
    with pytest.raises(ValueError, match="intermediate outputs"):
        classwise_norms.classwise_feature_norms(
            create_model("tdm_cnn"),
            torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
            torch.zeros(4, dtype=torch.long),
            10,
            [1],
            prepare,
        )


def test_cv_summary_on_a_hand_made_matrix():
    m = np.array([[1.0, 2.0, 0.0], [1.0, 4.0, 0.0]])  # 2 classes x 3 filters: uniform, varying, dead
    s = classwise_norms.cv_summary(m, threshold=0.2)
    assert s["per_filter"]["filter_00"]["cv"] == 0.0
    assert s["per_filter"]["filter_01"] == {"cv": pytest.approx(1 / 3, abs=1e-6), "argmax_class": 1, "mean_norm": 3.0}
    assert s["summary"]["class_specific_filters"] == 1 and s["summary"]["dead_filters"] == 1
    assert s["summary"]["median_cv"] == 0.0 and s["summary"]["filters"] == 3


def test_compare_differences():
    cmp = ComparisonConfig(title="t", a="x", b="y")
    metrics = {"x": {"test_accuracy": 0.99, "test_loss": 0.03}, "y": {"test_accuracy": 0.98, "test_loss": 0.05}}
    counts = {"x": {"trainable": 100}, "y": {"trainable": 50}}
    r = compare.side_by_side(cmp, metrics, counts)
    assert r["accuracy_diff_points"] == pytest.approx(1.0) and r["test_loss_diff"] == pytest.approx(-0.02)
    assert r["parameter_ratio"] == 2.0 and r["a"]["variant"] == "x"


def test_loss_curve_puts_test_points_at_epoch_times_n_train():
    steps = pd.DataFrame(
        {"step": [1, 2, 3, 4], "examples_seen": [50, 100, 150, 200], "train_loss": [2.0, 1.0, 0.8, 0.5]}
    )
    epochs = pd.DataFrame({"epoch": [1, 2], "test_loss": [0.9, 0.6], "val_loss": [1.0, 0.7]})
    fig = analyze.plot_loss_curve(steps, epochs, n_train=100, title="t", loss_name="nll")
    ax = fig.axes[0]
    test_line = next(line for line in ax.lines if line.get_label() == "Test loss")
    assert list(test_line.get_xdata()) == [100, 200] and list(test_line.get_ydata()) == [0.9, 0.6]
    assert ax.get_xlim()[0] == 0 and ax.get_ylim()[0] == 0 and ax.get_ylabel() == "NLL"
    assert not any("kept checkpoint" in line.get_label() for line in ax.lines)  # per-epoch test points exist

    # A run that tests only the kept checkpoint: one test point at its epoch.
    fig = analyze.plot_loss_curve(steps, epochs.drop(columns="test_loss"), 100, "t", "nll", final_test=(2, 0.55))
    point = next(line for line in fig.axes[0].lines if "kept checkpoint" in line.get_label())
    assert list(point.get_xdata()) == [200] and list(point.get_ydata()) == [0.55]


# --------------------------------------------------------------------------- the stages on tiny checkpoints

ANALYSIS_FILES = [
    "filters.json",
    "filters.png",
    "layer_summary.json",
    "layer_summary.md",
    "loss_curve.png",
    "param_counts.json",
    "shape_trace.json",
    "shape_trace.md",
]
SHAPES = {
    "tdm_max": (1, 28, 28),
    "tdm_avg": (1, 28, 28),
    "prac5": (1, 28, 28),
    "ds5220_mlp": (1, 28, 28),
    "cse849": (3, 64, 64),
}


def fake_run(
    reports: Path, name: str, n_train: int | None = 200, accuracy: float = 0.5, test_loss: float = 0.9
) -> None:
    """What train@<name> writes besides the checkpoint that analyze reads: metrics.json,
    training.json and plots/{steps,epochs}.csv."""
    plots = reports / name / "plots"
    plots.mkdir(parents=True)
    pd.DataFrame({"step": [2, 4], "examples_seen": [64, 128], "train_loss": [1.5, 1.0]}).to_csv(
        plots / "steps.csv", index=False
    )
    pd.DataFrame({"epoch": [1], "train_loss": [1.2], "test_loss": [0.9], "test_accuracy": [0.7]}).to_csv(
        plots / "epochs.csv", index=False
    )
    (reports / name / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy, "test_loss": test_loss}))
    training = {"epochs": 1, "checkpoint_epoch": 1}
    if n_train is not None:
        training["train_examples"] = n_train
    (reports / name / "training.json").write_text(json.dumps(training))


def fake_checkpoint(models: Path, name: str) -> Path:
    """models/<name>.pt for the variant ``name`` of params.yaml, untrained (seeded)."""
    variant = load_all().variant(name)
    torch.manual_seed(0)
    model = create_model(variant.model.name, **variant.model.args)
    c = SHAPES[name][0]
    path = models / f"{name}.pt"
    save_checkpoint(path, variant, model, Normalizer([0.5] * c, [0.5] * c), SHAPES[name], [str(i) for i in range(10)])
    return path


def run_analyze(tmp_path: Path, name: str, **run_kwargs) -> Path:
    from pipeline.stages.analyze import main

    models, reports = tmp_path / "models", tmp_path / "reports"
    fake_checkpoint(models, name)
    fake_run(reports, name, **run_kwargs)
    main([name, "--models-dir", str(models), "--reports-dir", str(reports)])
    return reports / name / "analysis"


def test_analyze_stage_writes_exactly_the_listed_files_for_a_conv_model(tmp_path):
    out = run_analyze(tmp_path, "prac5")
    assert sorted(p.name for p in out.iterdir()) == ANALYSIS_FILES  # and no temporary folder beside it
    assert sorted(p.name for p in out.parent.iterdir()) == ["analysis", "metrics.json", "plots", "training.json"]
    trace = json.loads((out / "shape_trace.json").read_text())
    assert trace["chain"] == "[784] -> [1, 1, 28, 28] -> [1, 10, 11, 11] -> [1, 1210] -> [1, 10]"
    assert "`[784] -> [1, 1, 28, 28]" in (out / "shape_trace.md").read_text()
    counts = json.loads((out / "param_counts.json").read_text())
    assert set(counts) == {"total", "trainable", "non_trainable"} and counts["total"] == counts["trainable"] > 0
    assert (out / "layer_summary.md").read_text().startswith("## prac5 (`prac5_cnn`)")
    summary = json.loads((out / "layer_summary.json").read_text())
    assert summary["input_shape"] == [1, 784]  # the npz rows, reshaped by the model itself
    assert [(r["layer"], r["output_shape"]) for r in summary["layers"]][0] == ("Conv2d-1", [1, 10, 11, 11])
    assert sum(r["params"] for r in summary["layers"]) == counts["total"]


def test_analyze_stage_draws_no_filters_for_an_mlp(tmp_path):
    out = run_analyze(tmp_path, "ds5220_mlp")
    assert sorted(p.name for p in out.iterdir()) == [f for f in ANALYSIS_FILES if not f.startswith("filters.")]
    assert json.loads((out / "param_counts.json").read_text()) == {
        "total": 101770,
        "trainable": 101770,
        "non_trainable": 0,
    }
    assert "Total params: 101,770" in (out / "layer_summary.md").read_text()


def test_analyze_stage_outputs_are_byte_stable(tmp_path):
    first = run_analyze(tmp_path / "1", "cse849")
    second = run_analyze(tmp_path / "2", "cse849")
    for name in ANALYSIS_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_analyze_stage_needs_train_examples_and_leaves_no_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_analyze(tmp_path, "tdm_max", n_train=None)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "training.json" in err and "'train_examples'" in err
    assert sorted(p.name for p in (tmp_path / "reports" / "tdm_max").iterdir()) == [
        "metrics.json",
        "plots",
        "training.json",
    ]


def test_analyze_stage_refuses_a_checkpoint_of_another_variant(tmp_path, capsys):
    from pipeline.stages.analyze import main

    models = tmp_path / "models"
    fake_checkpoint(models, "tdm_avg").rename(models / "tdm_max.pt")
    fake_run(tmp_path / "reports", "tdm_max")
    with pytest.raises(SystemExit):
        main(["tdm_max", "--models-dir", str(models), "--reports-dir", str(tmp_path / "reports")])
    assert "holds variant 'tdm_avg', not 'tdm_max'" in capsys.readouterr().err


def test_analyze_stage_imports_neither_engine_nor_data():
    import subprocess
    import sys

    code = "import sys, pipeline.stages.analyze; print(sorted(m for m in sys.modules if m.startswith('pipeline')))"
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    # nor, through the package, its sibling that needs them
    for module in (
        "pipeline.training.engine",
        "pipeline.training.datasets",
        "pipeline.data.readers",
        "pipeline.inference.evaluation",
        "pipeline.analysis.classwise_norms",
    ):
        assert f"'{module}'" not in loaded, module


def fake_predictions(path: Path, correct: list[bool]) -> None:
    """An eval/predictions.csv whose row i is right when correct[i] is (label i % 10)."""
    labels = [i % 10 for i in range(len(correct))]
    predicted = [y if ok else (y + 1) % 10 for y, ok in zip(labels, correct, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"index": range(len(correct)), "label": labels, "predicted": predicted, "confidence": 0.9}).to_csv(
        path, index=False
    )


def fake_comparison_pair(reports: Path) -> None:
    """tdm_max 91.25% and tdm_avg 88.75% on the same 400 images: 20 only tdm_max gets right, 10 only tdm_avg."""
    fake_run(reports, "tdm_max", accuracy=0.9125, test_loss=0.25)
    fake_run(reports, "tdm_avg", accuracy=0.8875, test_loss=0.375)
    both, neither = [True] * 345, [False] * 25
    fake_predictions(reports / "tdm_max" / "eval" / "predictions.csv", both + [True] * 20 + [False] * 10 + neither)
    fake_predictions(reports / "tdm_avg" / "eval" / "predictions.csv", both + [False] * 20 + [True] * 10 + neither)
    for name, trainable in (("tdm_max", 3000), ("tdm_avg", 2000)):
        (reports / name / "analysis").mkdir()
        (reports / name / "analysis" / "param_counts.json").write_text(
            json.dumps({"total": trainable, "trainable": trainable, "non_trainable": 0})
        )


def test_compare_stage_on_a_fake_pair(tmp_path):
    from pipeline.stages.compare import main

    reports, out = tmp_path / "reports", tmp_path / "comparisons"
    fake_comparison_pair(reports)
    main(["pooling", "--reports-dir", str(reports), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["pooling.json", "pooling.md"]
    r = json.loads((out / "pooling.json").read_text())
    assert r["title"] == load_params()["analysis"]["comparisons"]["pooling"]["title"]
    assert r["a"] == {"variant": "tdm_max", "test_accuracy": 0.9125, "test_loss": 0.25, "parameters": 3000}
    assert r["b"] == {"variant": "tdm_avg", "test_accuracy": 0.8875, "test_loss": 0.375, "parameters": 2000}
    assert r["accuracy_diff_points"] == pytest.approx(2.5) and r["test_loss_diff"] == pytest.approx(-0.125)
    assert r["parameter_ratio"] == 1.5
    md = (out / "pooling.md").read_text()
    assert md.startswith(f"## {r['title']}\n")
    assert "| a | tdm_max | 91.25% | 0.2500 | 3,000 |" in md and "| b | tdm_avg | 88.75% | 0.3750 | 2,000 |" in md
    assert "a - b: +2.50 accuracy points, test loss -0.1250; parameters a/b = 1.50. Higher accuracy: tdm_max." in md
    assert r["mcnemar"] == {"images": 400, "a_only_correct": 20, "b_only_correct": 10, "p_value": 0.0987371}
    assert r["fair"] and r["confounds"] == [] and r["verdict"] in md
    assert "`tdm_max` alone is right on 20 and `tdm_avg` alone on 10 (exact McNemar p = 0.099), not below 0.05" in md


def test_compare_stage_rejects_an_unknown_key(tmp_path, capsys):
    from pipeline.stages.compare import main

    with pytest.raises(
        ConfigError,
        match=r"analysis\.comparisons\.nope: .*allowed: pooling, normalization, normalization_mlp, mlp_vs_cnn",
    ):
        compare.compare("nope", Path("params.yaml"), tmp_path / "reports", tmp_path / "out")
    with pytest.raises(SystemExit) as exc:
        main(["nope", "--reports-dir", str(tmp_path / "reports"), "--out", str(tmp_path / "out")])
    assert exc.value.code == 1 and "analysis.comparisons.nope" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_compare_stage_names_a_missing_input(tmp_path, capsys):
    from pipeline.stages.compare import main

    reports = tmp_path / "reports"
    fake_comparison_pair(reports)
    (reports / "tdm_avg" / "analysis" / "param_counts.json").unlink()
    with pytest.raises(SystemExit):
        main(["pooling", "--reports-dir", str(reports), "--out", str(tmp_path / "out")])
    assert str(reports / "tdm_avg" / "analysis" / "param_counts.json") in capsys.readouterr().err


def test_padding_stage(tmp_path):
    from pipeline.stages.padding import main

    csv = tmp_path / "mnist_csv"
    csv.mkdir()
    row = np.zeros((1, 785), dtype=int)
    row[0, 0] = 5
    pd.DataFrame(row, columns=csv_columns()).to_csv(csv / "mnist_train.csv", index=False)
    out = tmp_path / "analysis"
    main(["--mnist-csv", str(csv), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["padding_shapes.json", "padding_shapes.md"]
    result = json.loads((out / "padding_shapes.json").read_text())
    assert (
        result["all_agree"] and result["rows"][0]["measured_shape"] == [1, 1, 26, 26] and "label 5" in result["source"]
    )
    assert "| 0 | 1 | [1, 1, 26, 26] | [26, 26] | yes |" in (out / "padding_shapes.md").read_text()


def test_classwise_norms_stage_end_to_end(tmp_path):
    from pipeline.stages.classwise_norms import main

    root = tmp_path / "data"
    make_folder_dataset(root, n_test=3)
    model = make_checkpoint(tmp_path / "m.pt", tiny_variant(root))
    params = load_params()
    params["analysis"]["classwise_norms"] = {"variant": "cse849", "layers": [1, 5], "cv_threshold": 0.1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "classwise_norms"
    main(["--params", str(tmp_path / "params.yaml"), "--model", str(model), "--out", str(out)])
    result = json.loads((out / "classwise_norms.json").read_text())
    assert set(result) == {"conv1", "conv5"}
    assert len(result["conv1"]["per_filter"]) == 16 and len(result["conv5"]["per_filter"]) == 80
    assert result["conv5"]["summary"]["cv_threshold"] == 0.1
    assert sorted(p.name for p in out.iterdir()) == [  # no filters.png: analyze@cse849 draws it
        "classwise_norms.csv",
        "classwise_norms.json",
        "classwise_norms_conv1.png",
        "classwise_norms_conv5.png",
        "classwise_norms_heatmap.png",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classwise_norms", "data", "m.pt", "params.yaml"]
    table = pd.read_csv(out / "classwise_norms.csv")
    assert len(table) == 10 * (16 + 80)


def test_first_conv_filter_stats_tell_colour_blobs_and_edges_apart():
    conv = torch.nn.Conv2d(3, 3, 3, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 1] = 1.0  # green only: colour, prefers green
        conv.weight[1] = 0.5  # the same positive weight everywhere, all channels: a brightness blob
        conv.weight[2, :, :, 0] = -1.0  # a vertical edge, the same in every channel
        conv.weight[2, :, :, 2] = 1.0
    stats = analyze.first_conv_filter_stats(torch.nn.Sequential(conv))
    kinds = [(f["kind"], f.get("prefers")) for f in stats["filters"]]
    assert kinds == [("colour", "green"), ("blob", None), ("edge/texture", None)]
    assert stats["counts"] == {"colour": 1, "blob": 1, "edge/texture": 1}
    assert stats["colour_preferences"] == {"red": 0, "green": 1, "blue": 0}
    assert stats["filters"][0]["colour_share"] == pytest.approx(2 / 3, abs=1e-4)  # green minus the grey mean of 1/3
    assert stats["filters"][1]["mean_share"] == pytest.approx(1.0) and stats["filters"][2]["mean_share"] == 0.0
    assert analyze.first_conv_filter_stats(torch.nn.Sequential(torch.nn.Linear(3, 2))) is None
