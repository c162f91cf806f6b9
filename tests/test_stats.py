"""Stats stage: numbers as the assignments compute them, JSON layout, determinism, figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.data import convert
from pipeline.data.stats import OUTPUT_FILES, class_counts, head_text, run_stats
from pipeline.stages import stats as stats_stage


def test_class_counts_ignores_unlabelled():
    assert class_counts(torch.tensor([0, 2, 2, -1]), ["a", "b", "c"]) == {"a": 1, "b": 0, "c": 2}


def test_head_text_is_what_pandas_prints_in_a_notebook(tmp_path, tiny_mnist):
    images, labels = tiny_mnist["train"]
    convert.write_mnist_csv(tmp_path / "m.csv", images, labels)
    frame = pd.read_csv(tmp_path / "m.csv")
    text = head_text(frame)
    lines = text.splitlines()
    assert lines[0] == "(300, 785)"
    assert lines[1].split() == [
        "label",
        "1x1",
        "1x2",
        "1x3",
        "1x4",
        "1x5",
        "1x6",
        "1x7",
        "1x8",
        "1x9",
        "...",
        "28x19",
        "28x20",
        "\\",
    ]
    assert lines[8].split() == ["28x21", "28x22", "28x23", "28x24", "28x25", "28x26", "28x27", "28x28"]
    assert lines[-1] == "[5 rows x 785 columns]"
    assert lines[2].split()[:2] == ["0", str(labels[0])]


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_raw, tiny_composite):
    tmp_path = tmp_path_factory.mktemp("stats")
    csv_dir = tmp_path / "csv"
    convert.convert_mnist(tiny_raw, csv_dir, tmp_path / "npz")
    out = tmp_path / "reports"
    stats = run_stats(csv_dir, tiny_composite, out, seed=0, npz_dir=tmp_path / "npz")
    return stats, out, csv_dir


def test_stats_json_layout_and_values(report, tiny_mnist):
    stats, out, _ = report
    assert json.loads((out / "stats.json").read_text()) == stats
    assert set(stats) == {"mnist", "mnist_npz", "composite"}
    train = stats["mnist"]["train"]
    assert set(train) == {"count", "mean", "std", "class_counts"}
    images, labels = tiny_mnist["train"]
    assert train["count"] == 300
    assert train["mean"] == round(images.astype(np.float64).mean() / 255, 6)
    assert train["std"] == round(images.astype(np.float64).std(ddof=1) / 255, 6)
    assert train["class_counts"] == {str(d): int((labels == d).sum()) for d in range(10)}
    assert stats["mnist"]["test"]["count"] == 100
    # Practical 5 Q1's printout: the npz arrays as stored, and Q3.1's labels in file order
    assert stats["mnist_npz"] == {
        "train": {"x_shape": [300, 784], "y_shape": [300], "first_labels": labels[:30].tolist()},
        "test": {"x_shape": [100, 784], "y_shape": [100]},
    }

    composite = stats["composite"]
    assert set(composite) == {"train", "val", "test"}
    assert set(composite["train"]) == {"count", "mean", "std", "class_counts", "label_agreement"}
    assert set(composite["train"]["mean"]) == set(composite["train"]["std"]) == {"r", "g", "b"}
    assert composite["train"]["label_agreement"] == 0.5  # exactly round(0.5 * 120) / 120
    assert set(composite["val"]) == set(composite["test"]) == {"count", "class_counts", "label_agreement"}
    assert (composite["val"]["count"], composite["test"]["count"]) == (40, 30)
    assert sum(composite["train"]["class_counts"].values()) == 120
    for value in composite["train"]["mean"].values():
        assert 0 < value < 0.5 and round(value, 6) == value


def test_stats_files_are_deterministic(report, tiny_composite, tmp_path):
    _, out, csv_dir = report
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    assert (out / "mnist_first5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "again"
    run_stats(csv_dir, tiny_composite, again, seed=0, npz_dir=csv_dir.parent / "npz")
    for name in ("stats.json", "mnist_head.txt", "mnist_random20.png", "composite_samples.png"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_stats_stage_bad_input(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("stats: {seed: 0}\n")
    with pytest.raises(SystemExit) as exit_info:
        stats_stage.main(["--mnist-csv", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--params", str(params)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().endswith("mnist_train.csv: file not found")
