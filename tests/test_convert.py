"""MNIST -> CSV / npz and CIFAR-10 + MNIST -> composite: formats, determinism, sampling rules."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.core.config import ConfigError
from pipeline.core.errors import DataError
from pipeline.core.params import load_all
from pipeline.data import cifar, convert
from pipeline.data.common.composite import Layout, LayoutError, read_layout
from pipeline.data.common.idx import idx_bytes
from pipeline.data.convert import CompositeSpec, csv_body, plan_composite, save_npz_deterministic, write_mnist_csv
from pipeline.stages import convert_composite as composite_stage
from pipeline.stages import convert_mnist as mnist_stage
from tests.conftest import LAYOUT_PARAMS, TINY_LAYOUT, TINY_SPEC, write_cifar_jpeg_tar

# --------------------------------------------------------------------------- CSV


def test_csv_header_is_kaggle_style():
    columns = convert.csv_columns()
    assert len(columns) == 785
    assert columns[:4] == ["label", "1x1", "1x2", "1x3"]
    assert columns[28:31] == ["1x28", "2x1", "2x2"]
    assert columns[-1] == "28x28"


def test_csv_body_matches_savetxt():
    table = np.random.default_rng(0).integers(0, 256, size=(50, 785), dtype=np.uint8)
    table[0, :6] = [0, 9, 10, 99, 100, 255]  # every digit count
    expected = io.BytesIO()
    np.savetxt(expected, table, fmt="%d", delimiter=",")
    assert csv_body(table) == expected.getvalue()


def test_write_mnist_csv_reads_back_with_pandas(tmp_path, tiny_mnist):
    images, labels = tiny_mnist["train"]
    write_mnist_csv(tmp_path / "m.csv", images, labels)
    frame = pd.read_csv(tmp_path / "m.csv")
    assert frame.shape == (300, 785)
    assert list(frame.columns) == convert.csv_columns()
    assert np.array_equal(frame["label"].to_numpy(), labels)
    assert np.array_equal(frame.iloc[:, 1:].to_numpy().reshape(-1, 28, 28), images)
    assert frame.loc[3, "2x5"] == images[3, 1, 4]  # RxC = row R, column C, 1-based
    assert (tmp_path / "m.csv").read_bytes().count(b"\n") == 301


# --------------------------------------------------------------------------- npz


def test_npz_is_deterministic_and_numpy_readable(tmp_path, monkeypatch):
    arrays = {"x": np.arange(784 * 3, dtype=np.uint8).reshape(3, 784), "y": np.array([1, 2, 3], dtype=np.uint8)}
    save_npz_deterministic(tmp_path / "a.npz", arrays)
    later = time.localtime(time.time() + 86_400 * 400)
    monkeypatch.setattr(time, "localtime", lambda *args: later)  # numpy.savez would stamp this
    save_npz_deterministic(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "b.npz") as loaded:
        assert loaded.files == ["x", "y"]
        assert loaded["x"].dtype == np.uint8 and np.array_equal(loaded["x"], arrays["x"])
        assert np.array_equal(loaded["y"], arrays["y"])


def test_convert_mnist_outputs(tiny_raw, tiny_mnist, tmp_path):
    counts = convert.convert_mnist(tiny_raw, tmp_path / "csv", tmp_path / "npz")
    assert counts == {"train": 300, "test": 100}
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["mnist_test.csv", "mnist_train.csv"]
    assert pd.read_csv(tmp_path / "csv" / "mnist_test.csv").shape == (100, 785)
    with np.load(tmp_path / "npz" / "train.npz") as train:
        assert train["x"].shape == (300, 784) and train["x"].dtype == np.uint8
        assert train["y"].shape == (300,) and train["y"].dtype == np.uint8
        assert np.array_equal(train["x"].reshape(-1, 28, 28), tiny_mnist["train"][0])
        assert np.array_equal(train["y"], tiny_mnist["train"][1])
    first = (tmp_path / "npz" / "test.npz").read_bytes()
    convert.convert_mnist(tiny_raw, tmp_path / "csv", tmp_path / "npz")
    assert (tmp_path / "npz" / "test.npz").read_bytes() == first


def test_convert_mnist_stage_bad_input_exits_without_output(tmp_path, capsys, tiny_raw):
    raw = tmp_path / "raw"
    (raw / "mnist" / "MNIST" / "raw").mkdir(parents=True)
    for f in (tiny_raw / "mnist" / "MNIST" / "raw").iterdir():
        (raw / "mnist" / "MNIST" / "raw" / f.name).write_bytes(f.read_bytes())
    broken = raw / "mnist" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    broken.write_bytes(broken.read_bytes()[:-1])  # count no longer matches the length
    with pytest.raises(SystemExit) as exit_info:
        mnist_stage.main(["--raw", str(raw), "--csv-out", str(tmp_path / "csv"), "--npz-out", str(tmp_path / "npz")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "t10k-labels-idx1-ubyte" in err and "IDX header says 100" in err
    assert not (tmp_path / "csv").exists() and not (tmp_path / "npz").exists()


def test_mnist_label_outside_range(tmp_path, tiny_raw):
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for f in (tiny_raw / "mnist" / "MNIST" / "raw").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    labels = np.zeros(100, dtype=np.uint8)
    labels[42] = 11
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: label 11 at index 42 is outside 0-9"):
        convert.load_mnist_idx(tmp_path, "test")


# --------------------------------------------------------------------------- CIFAR order


def test_jpeg_archive_canonical_interleaved_order(tiny_raw, tiny_mirror_files):
    expected = tiny_mirror_files[3]
    data = cifar.load_cifar10(tiny_raw / "cifar10" / "cifar10-jpeg.tar.gz")
    assert data.format == "jpeg-folder"
    assert data.train_images.shape == (200, 32, 32, 3) and data.test_images.shape == (50, 32, 32, 3)
    assert np.array_equal(data.train_labels, np.arange(200) % 10)
    for i in (0, 1, 13, 199):
        cls = cifar.CLASSES[i % 10]
        original = expected["train"][cls][i // 10]
        assert np.abs(data.train_images[i].astype(int) - original).max() <= 12  # JPEG q95 vs the source pixels
    for i in range(10, 20):  # every run of 10 consecutive indices holds each class once
        assert sorted(data.test_labels[i - 10 : i]) == list(range(10))


def test_unbalanced_jpeg_archive_is_rejected(tmp_path):
    import tarfile

    path = tmp_path / "cifar10-jpeg.tar.gz"
    write_cifar_jpeg_tar(path, per_class_train=2, per_class_test=1)
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]
    with tarfile.open(path, "w:gz") as tar:
        for m, data in members:
            if m.name != "cifar10-jpeg/train/cat/0001.jpg":
                tar.addfile(m, io.BytesIO(data))
    with pytest.raises(DataError, match="not class-balanced"):
        cifar.load_cifar10(path)


# --------------------------------------------------------------------------- composite plan


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=n)


def test_plan_exact_train_agreement_and_uniform_val_test():
    spec = CompositeSpec(
        seed=849,
        train_size=4000,
        val_size=3000,
        test_size=3000,
        train_agreement=0.64,
        cifar_val_start=4000,
        mnist_val_start=6000,
    )
    cifar_train, cifar_test = np.arange(7000) % 10, np.arange(3000) % 10
    mnist_train, mnist_test = _labels(9000, 1), _labels(2000, 2)
    plan = plan_composite(spec, cifar_train, cifar_test, mnist_train, mnist_test)
    assert list(plan.columns) == ["split", "filename", "label", "digit_label", "cifar_index", "mnist_index"]
    train, val, test = (plan[plan["split"] == s] for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (4000, 3000, 3000)
    assert (train["label"] == train["digit_label"]).sum() == round(0.64 * 4000)
    disagree = train[train["label"] != train["digit_label"]]
    offsets = (disagree["digit_label"] - disagree["label"]) % 10
    assert set(offsets) == set(range(1, 10))  # every other class is used ...
    assert np.bincount(offsets, minlength=10)[1:].min() > len(disagree) / 9 * 0.75  # ... about equally often
    for rows in (val, test):
        assert abs((rows["label"] == rows["digit_label"]).mean() - 0.1) < 0.025
        assert np.bincount(rows["digit_label"], minlength=10).min() > 0.075 * len(rows)
    # CIFAR ranges: train 0.., val from cifar_val_start, test from 0; labels follow the CIFAR image
    assert train["cifar_index"].tolist() == list(range(4000))
    assert val["cifar_index"].tolist() == list(range(4000, 7000))
    assert test["cifar_index"].tolist() == list(range(3000))
    assert np.array_equal(plan["label"], np.concatenate([cifar_train[:4000], cifar_train[4000:7000], cifar_test]))
    # digits: the right class, from the right pool
    assert np.array_equal(mnist_train[train["mnist_index"]], train["digit_label"])
    assert np.array_equal(mnist_train[val["mnist_index"]], val["digit_label"])
    assert np.array_equal(mnist_test[test["mnist_index"]], test["digit_label"])
    assert train["mnist_index"].max() < 6000 and val["mnist_index"].min() >= 6000
    # file names: class folder + index within the split; flat for test
    assert train["filename"].iloc[3] == "cat/00003.png" and test["filename"].iloc[3] == "00003.png"


def test_plan_is_seeded_and_splits_are_independent():
    args = (np.arange(100) % 10, np.arange(30) % 10, _labels(300, 1), _labels(50, 2))
    spec = CompositeSpec(seed=1, train_size=60, val_size=20, test_size=30, cifar_val_start=70, mnist_val_start=200)
    a = plan_composite(spec, *args)
    assert a.equals(plan_composite(spec, *args))
    assert not a.equals(plan_composite(dataclasses.replace(spec, seed=2), *args))
    smaller = plan_composite(dataclasses.replace(spec, train_size=10), *args)
    assert (
        smaller[smaller["split"] == "val"].reset_index(drop=True).equals(a[a["split"] == "val"].reset_index(drop=True))
    )


def test_plan_size_errors_name_the_key():
    args = (np.arange(100) % 10, np.arange(30) % 10, _labels(300, 1), _labels(50, 2))
    spec = CompositeSpec(seed=1, train_size=80, val_size=20, test_size=30, cifar_val_start=70, mnist_val_start=200)
    with pytest.raises(ConfigError, match="composite.train_size"):
        plan_composite(spec, *args)
    with pytest.raises(ConfigError, match="composite.test_size"):
        plan_composite(dataclasses.replace(spec, train_size=10, test_size=31), *args)


def test_spec_from_the_checked_composite_block():
    layout = {"canvas": [64, 64], "cifar": [0, 0, 32, 32], "digit": [36, 36, 28, 28]}
    block = {"seed": 849, "train_size": 45000, "val_size": 5000, "test_size": 10000, "train_agreement": 0.64}
    spec = CompositeSpec.from_config(load_all({"composite": {**block, "layout": layout}}).composite)
    assert (spec.seed, spec.train_size, spec.train_agreement, spec.cifar_val_start) == (849, 45000, 0.64, 45000)
    with pytest.raises(ConfigError, match="composite.train_agreement"):
        load_all({"composite": {**block, "layout": layout, "train_agreement": 1.5}})
    with pytest.raises(ConfigError, match="composite.val_size: missing key"):
        load_all({"composite": {**{k: v for k, v in block.items() if k != "val_size"}, "layout": layout}})


# --------------------------------------------------------------------------- composite files


# --------------------------------------------------------------------------- blind test split


def _name_and_position_rules(names: list[str], n_classes: int = 10) -> dict[str, np.ndarray]:
    """Label guesses a student could make from a test file's name or listing position alone."""
    number = np.array([int(Path(name).stem) for name in names])
    position = np.argsort(np.argsort(names))  # rank in the sorted listing (the grader's order)
    n = len(names)
    return {
        "number mod 10": number % n_classes,
        "position mod 10": position % n_classes,
        "(number + 1) mod 10": (number + 1) % n_classes,
        "reversed position mod 10": (n - 1 - position) % n_classes,
        "tenths of the listing": position * n_classes // n,
        "number // 10 mod 10": number // 10 % n_classes,
    }


def test_hidden_test_order_leaves_no_label_in_names_or_positions():
    # CIFAR-10's mirror order is class-interleaved: image i has class i % 10. Named in that
    # order, "number mod 10" scored 100%. After hide_test_order no simple rule beats chance.
    n = 10_000
    spec = CompositeSpec(seed=849, train_size=100, val_size=50, test_size=n, cifar_val_start=100, mnist_val_start=600)
    args = (np.arange(150) % 10, np.arange(n) % 10, _labels(1000, 1), _labels(2000, 2))
    plan = plan_composite(spec, *args)
    replacement = np.arange(n) + 100_000  # stands for the counterfactual digit of each test image
    hidden, moved = convert.hide_test_order(spec, plan, replacement)

    test = hidden[hidden["split"] == "test"].reset_index(drop=True)
    names, labels = test["filename"].tolist(), test["label"].to_numpy()
    assert names == [f"{i:05d}.png" for i in range(n)]
    chance_band = 0.1 + 3 * np.sqrt(0.1 * 0.9 / n)  # 3 binomial standard errors above 10%
    scores = {rule: float((guess == labels).mean()) for rule, guess in _name_and_position_rules(names).items()}
    assert max(scores.values()) < chance_band, scores
    # ... while the same rules on the unhidden plan give the labels away (the test can fail)
    original = plan[plan["split"] == "test"]
    assert (_name_and_position_rules(original["filename"].tolist())["number mod 10"] == original["label"]).all()

    # Only the order changed: every test image keeps its CIFAR image, digit and counterfactual.
    before = original.assign(cf=replacement).drop(columns="filename")
    after = test.assign(cf=moved).drop(columns="filename")
    key = ["cifar_index"]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True), after.sort_values(key).reset_index(drop=True)
    )
    assert hidden[hidden["split"] != "test"].equals(plan[plan["split"] != "test"])  # train, val untouched
    again, _ = convert.hide_test_order(spec, plan, replacement)
    assert again.equals(hidden)  # seeded
    other, _ = convert.hide_test_order(dataclasses.replace(spec, seed=850), plan, replacement)
    assert not other.equals(hidden)


def test_hidden_test_order_refuses_a_counterfactual_of_another_length():
    spec = CompositeSpec(seed=1, train_size=20, val_size=10, test_size=30, cifar_val_start=20, mnist_val_start=200)
    plan = plan_composite(spec, np.arange(30) % 10, np.arange(30) % 10, _labels(300, 1), _labels(50, 2))
    with pytest.raises(DataError, match="29 counterfactual digits for 30 test images"):
        convert.hide_test_order(spec, plan, np.arange(29))


def test_a_name_derived_prediction_file_grades_at_chance(tmp_path):
    # The attack of the review: q1_test.txt = i % 10 for the i-th file. On the hidden split the
    # project's grader must score it at chance, not 10000/10000.
    from pipeline.grading.cse849 import grade_prediction_file

    n = 10_000
    spec = CompositeSpec(seed=849, train_size=10, val_size=10, test_size=n, cifar_val_start=10, mnist_val_start=600)
    plan = plan_composite(spec, np.arange(20) % 10, np.arange(n) % 10, _labels(1000, 1), _labels(2000, 2))
    hidden, _ = convert.hide_test_order(spec, plan, np.zeros(n, dtype=np.int64))
    test = hidden[hidden["split"] == "test"]
    test[["filename", "label"]].to_csv(tmp_path / "test_labels.csv", index=False)
    (tmp_path / "q1_test.txt").write_text("".join(f"{i % 10}\n" for i in range(n)))
    result = grade_prediction_file(tmp_path / "q1_test.txt", tmp_path / "test_labels.csv")
    assert abs(result["accuracy"] - 0.1) < 3 * np.sqrt(0.1 * 0.9 / n), result
    assert result["points"] == 0


def test_the_built_test_folder_is_not_in_cifar_order(tiny_composite):
    meta = pd.read_csv(tiny_composite / "metadata.csv")
    test = meta[meta["split"] == "test"]
    assert test["filename"].tolist() == sorted(test["filename"])  # named in their new order
    assert sorted(test["cifar_index"]) == list(range(30))  # every CIFAR test image once ...
    assert test["cifar_index"].tolist() != list(range(30))  # ... but not in CIFAR's order
    labels = pd.read_csv(tiny_composite / "test_labels.csv")
    assert labels["label"].tolist() == test["label"].tolist()


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (64, 64)
        return np.asarray(img)


def test_composite_layout_and_pixels(tiny_composite, tiny_raw):
    root = tiny_composite
    assert sorted(p.name for p in root.iterdir()) == [
        ".decoded",  # each split's images decoded (pipeline/data/common/decoded.py)
        "counterfactual_test.npz",  # sources of the counterfactual test (pipeline/inference/counterfactual.py)
        "dataset.json",
        "metadata.csv",
        "test",
        "test_labels.csv",
        "train",
        "val",
    ]
    assert sorted(p.name for p in (root / "train").iterdir()) == list(cifar.CLASSES)  # sorted == label order
    meta = pd.read_csv(root / "metadata.csv")
    assert len(meta) == 120 + 40 + 30
    assert len(list((root / "train").rglob("*.png"))) == 120 and len(list((root / "test").glob("*.png"))) == 30
    train = meta[meta["split"] == "train"]
    assert (train["label"] == train["digit_label"]).sum() == 60  # round(0.5 * 120)

    labels = pd.read_csv(root / "test_labels.csv")
    assert list(labels.columns) == ["filename", "label"]
    assert labels["filename"].tolist() == [f"{i:05d}.png" for i in range(30)]

    data = cifar.load_cifar10(tiny_raw / "cifar10" / "cifar10-jpeg.tar.gz")
    mnist_train, _ = convert.load_mnist_idx(tiny_raw / "mnist", "train")
    mnist_test, _ = convert.load_mnist_idx(tiny_raw / "mnist", "test")
    for _, row in meta.iloc[::7].iterrows():
        image = _png(root / row["split"] / row["filename"])
        test = row["split"] == "test"
        source = (data.test_images if test else data.train_images)[row["cifar_index"]]
        digit = (mnist_test if test else mnist_train)[row["mnist_index"]]
        assert np.array_equal(image[:32, :32], source)
        for channel in range(3):
            assert np.array_equal(image[36:, 36:, channel], digit)
        assert digit[0, 0] == row["digit_label"]  # the fixture writes each digit's label into pixel (0, 0)
        assert row["label"] == (data.test_labels if test else data.train_labels)[row["cifar_index"]]
        background = image.copy()
        background[:32, :32] = 0
        background[36:, 36:] = 0
        assert not background.any()
        if not test:
            assert row["filename"].split("/")[0] == cifar.CLASSES[row["label"]]


def test_layout_block_places_the_sources_and_travels_in_dataset_json(tiny_raw, tmp_path):
    block = {"canvas": [40, 70], "cifar": [4, 2, 32, 32], "digit": [9, 40, 28, 28]}
    out = tmp_path / "moved"
    spec = dataclasses.replace(TINY_SPEC, train_size=10, val_size=10, test_size=10)
    convert.convert_composite(tiny_raw, out, spec, Layout.from_mapping(block))
    assert json.loads((out / "dataset.json").read_text())["layout"] == block
    assert read_layout(out) == Layout.from_mapping(block)
    meta = pd.read_csv(out / "metadata.csv")
    row = meta.iloc[0]
    data = cifar.load_cifar10(tiny_raw / "cifar10" / "cifar10-jpeg.tar.gz")
    mnist_train, _ = convert.load_mnist_idx(tiny_raw / "mnist", "train")
    with Image.open(out / row["split"] / row["filename"]) as img:
        image = np.array(img)
    assert image.shape == (40, 70, 3)
    assert np.array_equal(image[4:36, 2:34], data.train_images[row["cifar_index"]])
    assert np.array_equal(image[9:37, 40:68, 1], mnist_train[row["mnist_index"]])
    image[4:36, 2:34] = 0
    image[9:37, 40:68] = 0
    assert not image.any()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"digit": [20, 20, 28, 28]}, r"composite.layout: the cifar and digit boxes overlap"),
        ({"digit": [36, 36, 20, 28]}, r"composite.layout.digit: a digit image is 28x28, the box is 20x28"),
        ({"digit": [40, 36, 28, 28]}, r"composite.layout.digit: \[40, 36, 28, 28\] reaches beyond the 64x64 canvas"),
        ({"cifar": [0, 0, 32]}, r"composite.layout.cifar: expected \[top, left, height, width\]"),
        ({"canvas": [64, -1]}, r"composite.layout.canvas: expected \[height, width\]"),
        ({"photo": [0, 0, 32, 32]}, r"composite.layout.photo: unknown key"),
    ],
)
def test_layout_errors_name_the_key(change, message):
    with pytest.raises(LayoutError, match=message):
        Layout.from_mapping({**LAYOUT_PARAMS, **change})
    with pytest.raises(LayoutError, match=r"composite.layout.digit: missing key"):
        Layout.from_mapping({k: v for k, v in LAYOUT_PARAMS.items() if k != "digit"})
    with pytest.raises(
        LayoutError, match=r"variants.x.region: unknown region 'photo'; the composite layout has cifar, digit"
    ):
        TINY_LAYOUT.box("photo", "variants.x.region")


def test_composite_is_deterministic(tiny_composite, tiny_raw, tmp_path):
    again = tmp_path / "again"
    convert.convert_composite(tiny_raw, again, TINY_SPEC, TINY_LAYOUT)

    def digest(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file()
        }

    assert digest(again) == digest(tiny_composite)


def test_composite_stage_runs_and_reports_config_errors(tiny_raw, tmp_path, monkeypatch, capsys):
    params = tmp_path / "params.yaml"
    layout = "layout: {canvas: [64, 64], cifar: [0, 0, 32, 32], digit: [36, 36, 28, 28]}"
    params.write_text(
        f"composite: {{seed: 7, train_size: 120, val_size: 40, test_size: 30, train_agreement: 0.5, {layout}}}\n"
    )
    original = CompositeSpec.from_config
    small = lambda cfg: dataclasses.replace(original(cfg), cifar_val_start=150, mnist_val_start=200)  # noqa: E731
    monkeypatch.setattr(composite_stage.CompositeSpec, "from_config", staticmethod(small))
    composite_stage.main(["--raw", str(tiny_raw), "--out", str(tmp_path / "c"), "--params", str(params)])
    assert len(pd.read_csv(tmp_path / "c" / "metadata.csv")) == 190

    params.write_text(
        f"composite: {{seed: 7, train_size: 120, val_size: 40, test_size: 51, train_agreement: 0.5, {layout}}}\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        composite_stage.main(["--raw", str(tiny_raw), "--out", str(tmp_path / "d"), "--params", str(params)])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("error: composite.test_size: 51 exceeds the 50 CIFAR-10 test images")
    assert not (tmp_path / "d").exists()
