"""Readers: each format into tensors, external image folders, and clear errors on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.core.errors import DataError
from pipeline.data import convert
from pipeline.data.common.composite import read_composite_metadata
from pipeline.data.common.idx import write_idx
from pipeline.data.readers import ImageSet, read_split
from pipeline.data.readers.image_folder import read_image_dir

# --------------------------------------------------------------------------- MNIST formats


def _check_mnist(data: ImageSet, images: np.ndarray, labels: np.ndarray) -> None:
    assert data.images.dtype == torch.uint8 and data.images.shape == (len(images), 1, 28, 28)
    assert data.labels.dtype == torch.int64
    assert np.array_equal(data.images[:, 0].numpy(), images)
    assert np.array_equal(data.labels.numpy(), labels)
    assert data.classes == [str(d) for d in range(10)]
    assert data.files is None


def test_all_mnist_formats_agree(tiny_raw, tiny_mnist, tmp_path):
    convert.convert_mnist(tiny_raw, tmp_path / "csv", tmp_path / "npz")
    for split in ("train", "test"):
        images, labels = tiny_mnist[split]
        _check_mnist(read_split("mnist_csv", tmp_path / "csv", split), images, labels)
        _check_mnist(read_split("mnist_npz", tmp_path / "npz", split), images, labels)
        _check_mnist(read_split("mnist_torchvision", tiny_raw / "mnist", split), images, labels)


def test_unknown_format_or_split():
    with pytest.raises(DataError, match="unknown data format 'parquet'"):
        read_split("parquet", "x", "train")
    with pytest.raises(DataError, match="format mnist_csv has no split 'val'"):
        read_split("mnist_csv", "x", "val")


def test_torchvision_reader_errors(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: file not found"):
        read_split("mnist_torchvision", tmp_path, "train")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), dtype=np.uint8))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DataError, match="3 test images but 4 labels"):
        read_split("mnist_torchvision", tmp_path, "test")


# --------------------------------------------------------------------------- bad CSVs


@pytest.fixture
def csv_lines(tmp_path):
    """A valid 4-row MNIST CSV as a list of lines, plus a writer for modified copies."""
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    images[:, 10, 10] = 200
    convert.write_mnist_csv(tmp_path / "good.csv", images, np.array([3, 1, 4, 1], dtype=np.uint8))
    lines = (tmp_path / "good.csv").read_text().splitlines()

    def write(new_lines: list[str]) -> Path:
        path = tmp_path / "mnist_train.csv"
        path.write_text("\n".join(new_lines) + "\n")
        return path

    return lines, write


def _set_cell(line: str, column: int, value: str) -> str:
    cells = line.split(",")
    cells[column] = value
    return ",".join(cells)


def test_valid_small_csv(csv_lines):
    lines, write = csv_lines
    data = read_split("mnist_csv", write(lines).parent, "train")
    assert data.labels.tolist() == [3, 1, 4, 1] and int(data.images[2, 0, 10, 10]) == 200


def test_csv_missing_header(csv_lines):
    lines, write = csv_lines
    with pytest.raises(DataError, match=r"mnist_train.csv: missing header: the first line is data"):
        read_split("mnist_csv", write(lines[1:]).parent, "train")


def test_csv_wrong_header_name(csv_lines):
    lines, write = csv_lines
    with pytest.raises(DataError, match=r"header column 3 is '1_2', expected '1x2'"):
        read_split("mnist_csv", write([lines[0].replace("1x2,", "1_2,", 1)] + lines[1:]).parent, "train")


def test_csv_wrong_column_count(csv_lines):
    lines, write = csv_lines
    with pytest.raises(DataError, match=r"mnist_train.csv: wrong number of columns: .*line 4.*786"):
        read_split("mnist_csv", write(lines[:3] + [lines[3] + ",0"] + lines[4:]).parent, "train")
    with pytest.raises(DataError, match=r"header has 784 columns, expected 785"):
        read_split("mnist_csv", write([",".join(line.split(",")[:-1]) for line in lines]).parent, "train")
    # every data line one field longer than the header: pandas would silently shift the columns
    with pytest.raises(DataError, match=r"data lines have more fields than the header's 785"):
        read_split("mnist_csv", write(lines[:1] + [line + ",0" for line in lines[1:]]).parent, "train")


def test_csv_short_row(csv_lines):
    lines, write = csv_lines
    short = ",".join(lines[2].split(",")[:-2])
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column '28x27': missing value"):
        read_split("mnist_csv", write(lines[:2] + [short] + lines[3:]).parent, "train")


@pytest.mark.parametrize("value", ["abc", "1.5", "7.0"])
def test_csv_non_integer_pixel(csv_lines, value):
    lines, write = csv_lines
    bad = _set_cell(lines[3], 1 + 28 * 2 + 4, value)  # row 3, column 5 -> "3x5"
    with pytest.raises(
        DataError, match=rf"mnist_train.csv: row 3 \(line 4\), column '3x5': '{value}' is not an integer"
    ):
        read_split("mnist_csv", write(lines[:3] + [bad] + lines[4:]).parent, "train")


@pytest.mark.parametrize("value", ["256", "-1"])
def test_csv_pixel_out_of_range(csv_lines, value):
    lines, write = csv_lines
    bad = _set_cell(lines[2], 785 - 1, value)  # last pixel of data row 2
    with pytest.raises(DataError, match=rf"row 2 \(line 3\), column '28x28': pixel value {value} outside 0-255"):
        read_split("mnist_csv", write(lines[:2] + [bad] + lines[3:]).parent, "train")


def test_csv_label_out_of_range(csv_lines):
    lines, write = csv_lines
    bad = _set_cell(lines[4], 0, "10")
    with pytest.raises(DataError, match=r"row 4 \(line 5\), column 'label': label 10 outside 0-9"):
        read_split("mnist_csv", write(lines[:4] + [bad]).parent, "train")


def test_csv_missing_or_empty_file(tmp_path):
    with pytest.raises(DataError, match="mnist_test.csv: file not found"):
        read_split("mnist_csv", tmp_path, "test")
    (tmp_path / "mnist_test.csv").write_text("")
    with pytest.raises(DataError, match="mnist_test.csv: empty file"):
        read_split("mnist_csv", tmp_path, "test")


# --------------------------------------------------------------------------- bad npz


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "train.npz", x=np.zeros((2, 784), dtype=np.uint8))
    with pytest.raises(DataError, match=r"train.npz: missing array\(s\) y"):
        read_split("mnist_npz", tmp_path, "train")
    np.savez(tmp_path / "train.npz", x=np.zeros((2, 784), dtype=np.float32), y=np.zeros(2, dtype=np.uint8))
    with pytest.raises(DataError, match=r"x must be uint8 with shape \(N, 784\), got float32"):
        read_split("mnist_npz", tmp_path, "train")
    np.savez(tmp_path / "train.npz", x=np.zeros((2, 784), dtype=np.uint8), y=np.array([1, 12], dtype=np.uint8))
    with pytest.raises(DataError, match=r"y\[1\] = 12 outside 0-9"):
        read_split("mnist_npz", tmp_path, "train")
    (tmp_path / "test.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError, match="test.npz: not a readable .npz file"):
        read_split("mnist_npz", tmp_path, "test")


# --------------------------------------------------------------------------- image folders


def test_composite_folder_reader(tiny_composite):
    meta = pd.read_csv(tiny_composite / "metadata.csv")
    for split in ("train", "val", "test"):
        data = read_split("image_folder", tiny_composite, split)
        rows = meta[meta["split"] == split]
        assert data.images.shape == (len(rows), 3, 64, 64) and data.images.dtype == torch.uint8
        assert data.classes[:3] == ["airplane", "automobile", "bird"] and len(data.classes) == 10
        if split == "test":
            assert data.files == rows["filename"].tolist()
        else:
            assert data.files == sorted(rows["filename"], key=lambda f: (f.split("/")[0], f))
        by_file = dict(zip(rows["filename"], rows["label"]))
        assert data.labels.tolist() == [by_file[f] for f in data.files]
        with Image.open(tiny_composite / split / data.files[5]) as img:
            assert np.array_equal(data.images[5].permute(1, 2, 0).numpy(), np.asarray(img))


def test_composite_metadata(tiny_composite, tmp_path):
    meta = read_composite_metadata(tiny_composite)
    assert list(meta.columns) == ["split", "filename", "label", "digit_label", "cifar_index", "mnist_index"]
    assert len(meta) == 190
    assert read_composite_metadata(tmp_path) is None
    (tmp_path / "metadata.csv").write_text("split,filename,label\ntrain,a.png,1\n")
    with pytest.raises(DataError, match="metadata.csv: missing column"):
        read_composite_metadata(tmp_path)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def external_dataset(tmp_path) -> Path:
    """A course-style zip: class folders 0..9, no metadata.csv, no test_labels.csv."""
    root = tmp_path / "course"
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 2), ("val", 1)):
        for c in range(10):
            for j in range(per_class):
                _save(root / split / str(c) / f"img_{j}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    for j in range(5):
        _save(root / "test" / f"{j}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return root


def test_external_folder_with_numeric_classes_and_no_labels(external_dataset):
    train = read_split("image_folder", external_dataset, "train")
    assert train.classes == [str(c) for c in range(10)]
    assert train.labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert train.files[:3] == ["0/img_0.png", "0/img_1.png", "1/img_0.png"]
    test = read_split("image_folder", external_dataset, "test")
    assert test.labels.tolist() == [-1] * 5  # unlabelled
    assert test.files == [f"{j}.png" for j in range(5)]
    assert read_composite_metadata(external_dataset) is None
    # labels supplied by class name or by index
    (external_dataset / "test_labels.csv").write_text("filename,label\n0.png,3\n1.png,9\n2.png,0\n3.png,1\n4.png,2\n")
    assert read_split("image_folder", external_dataset, "test").labels.tolist() == [3, 9, 0, 1, 2]


def test_test_labels_must_cover_every_image(external_dataset):
    (external_dataset / "test_labels.csv").write_text("filename,label\n0.png,3\n1.png,9\n")
    with pytest.raises(DataError, match=r"test_labels.csv: no label for test image '2.png'"):
        read_split("image_folder", external_dataset, "test")
    (external_dataset / "test_labels.csv").write_text("filename,label\n" + "".join(f"{j}.png,12\n" for j in range(5)))
    with pytest.raises(DataError, match=r"test_labels.csv: line 2: label 12 outside 0-9"):
        read_split("image_folder", external_dataset, "test")
    # a file listed twice: one of its two labels would win silently
    (external_dataset / "test_labels.csv").write_text(
        "filename,label\n" + "".join(f"{j}.png,1\n" for j in range(5)) + "3.png,7\n"
    )
    with pytest.raises(DataError, match=r"test_labels.csv: line 7: '3.png' is listed twice"):
        read_split("image_folder", external_dataset, "test")


def test_non_image_file_in_class_folder_is_named(external_dataset):
    (external_dataset / "train" / "3" / "notes.txt").write_text("hello")
    (external_dataset / "train" / "3" / ".DS_Store").write_bytes(b"\0\0")  # hidden: skipped
    with pytest.raises(DataError, match=r"train/3/notes.txt: not an image file"):
        read_split("image_folder", external_dataset, "train")


def test_truncated_image_is_named(external_dataset):
    path = external_dataset / "val" / "7" / "img_0.png"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"val/7/img_0.png: cannot decode image"):
        read_split("image_folder", external_dataset, "val")


def test_mismatched_image_size_is_named(external_dataset):
    _save(external_dataset / "train" / "5" / "img_9.png", np.zeros((32, 32, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"train/5/img_9.png: size 32x32 \(HxW\); expected 64x64"):
        read_split("image_folder", external_dataset, "train")


# --------------------------------------------------------------------------- read_image_dir


def test_read_image_dir_sorted_and_checked(tmp_path):
    folder = tmp_path / "predict"
    for name, value in (("b.png", 2), ("a.png", 1), ("c.png", 3)):
        _save(folder / name, np.full((8, 6, 3), value, dtype=np.uint8))
    images, names = read_image_dir(folder, size=(8, 6), channels=3)
    assert names == ["a.png", "b.png", "c.png"]
    assert images.shape == (3, 3, 8, 6) and images[:, 0, 0, 0].tolist() == [1, 2, 3]

    with pytest.raises(DataError, match=r"a.png: size 8x6 \(HxW\); expected 6x8"):
        read_image_dir(folder, size=(6, 8), channels=3)
    with pytest.raises(DataError, match=r"a.png: has 3 channel\(s\) \(mode RGB\); expected 1"):
        read_image_dir(folder, size=None, channels=1)
    _save(folder / "d.png", np.zeros((8, 6), dtype=np.uint8))  # grayscale among RGB
    with pytest.raises(DataError, match=r"d.png: has 1 channel\(s\) \(mode L\); expected 3"):
        read_image_dir(folder, size=None, channels=None)
    (folder / "d.png").unlink()
    (folder / "e.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=r"e.jpg: (cannot decode image|not an image file)"):
        read_image_dir(folder)
    (folder / "e.jpg").unlink()
    (folder / "sub").mkdir()
    with pytest.raises(DataError, match=r"sub: unexpected sub-folder"):
        read_image_dir(folder)
    shutil.rmtree(folder / "sub")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no image files"):
        read_image_dir(tmp_path / "empty")


def test_composite_splits_load_decoded_as_decoding_would_give(tiny_composite, tmp_path):
    """The converter stores each split decoded; the reader's images, labels, files and digit labels are
    the same with and without that copy, and an edited folder is decoded again, not served stale."""
    from pipeline.data.common.decoded import DECODED, load_decoded

    copy = tmp_path / "composite"
    shutil.copytree(tiny_composite, copy)
    for split in ("train", "val", "test"):
        files = read_split("image_folder", copy, split).files
        assert load_decoded(copy / split, files) is not None, split  # the copy is there and used
    stored = {split: read_split("image_folder", copy, split) for split in ("train", "val", "test")}
    plain = tmp_path / "plain"
    shutil.copytree(tiny_composite, plain, ignore=shutil.ignore_patterns(DECODED))
    for split, a in stored.items():
        b = read_split("image_folder", plain, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels), split
        assert a.files == b.files and torch.equal(a.digit_labels, b.digit_labels), split
    test_images, _ = read_image_dir(copy / "test", size=(64, 64), channels=3)  # predict's path
    assert torch.equal(test_images, stored["test"].images)

    # one test image replaced by another picture of a different size in bytes
    victim = copy / "test" / stored["test"].files[0]
    Image.fromarray(np.full((64, 64, 3), 200, dtype=np.uint8)).save(victim)
    assert load_decoded(copy / "test", stored["test"].files) is None
    fresh = read_split("image_folder", copy, "test")
    assert bool((fresh.images[0] == 200).all()) and torch.equal(fresh.images[1:], stored["test"].images[1:])
    # one training image removed: other files than stored, decoded again
    (copy / "train" / stored["train"].files[-1]).unlink()
    assert len(read_split("image_folder", copy, "train")) == len(stored["train"]) - 1
