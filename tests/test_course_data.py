"""The course's own CSE 849 data, taken as given: a zip in the handout's layout, no test labels, no digit labels.

The seed: "The zip file can be extracted to a folder with three subfolders - train, val,
and test. train and val will, in turn, contain 10 folders ... test folder will contain
10,000 images". The tiny zip here has that layout under a top folder (as a zipped folder
has), a ``__MACOSX`` folder beside it, 16x16 RGB images, and nothing else.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline import __main__ as cli
from pipeline.core.config import VariantConfig, build
from pipeline.core.errors import DataError
from pipeline.data.readers import UNLABELLED, read_split
from pipeline.inference.evaluation import evaluate_checkpoint
from pipeline.inference.predict import run_predict
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.datasets import load_splits
from pipeline.training.engine import fit
from pipeline.training.normalizer import channel_stats

SIZE = 16  # CSE849CNN pools four times by 2: 16 -> 1
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
N_TEST = 7


def png_bytes(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_course_zip(
    path: Path, top: str = "cse849_data", val_classes: list[str] = CLASSES, extra: dict | None = None
) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for split, classes, per_class in (("train", CLASSES, 2), ("val", val_classes, 1)):
            for name in classes:
                for j in range(per_class):
                    zf.writestr(f"{top}/{split}/{name}/{j:04d}.png", png_bytes(rng))
        for i in range(N_TEST):
            zf.writestr(f"{top}/test/{i:05d}.png", png_bytes(rng))
        zf.writestr(f"__MACOSX/{top}/._train", b"resource fork")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def course_zip(tmp_path_factory) -> Path:
    return make_course_zip(tmp_path_factory.mktemp("course") / "cse849_data.zip")


def course_variant(path: Path) -> VariantConfig:
    raw = {
        "seed": 0,
        "data": {
            "format": "image_folder",
            "path": str(path),
            "normalize": {"mode": "train"},
            "augment": {"hflip": 0.5},
            "occlusion": ["digit"],
        },
        "model": {"name": "cse849_cnn", "args": {"pool_kernel": 2, "pool_stride": 2}},
        "train": {
            "epochs": 1,
            "batch_size": 8,
            "optimizer": {"name": "sgd", "lr": 0.05},
            "loss": "cross_entropy",
            "checkpoint": "best_val_accuracy",
            "eval_batch_size": 5,
        },
    }
    return build(VariantConfig, raw, "test", name="course")


def test_the_zip_is_read_as_the_seed_describes(course_zip):
    train, val, test = (read_split("image_folder", course_zip, split) for split in ("train", "val", "test"))
    assert train.classes == CLASSES and tuple(train.images.shape) == (20, 3, SIZE, SIZE)
    assert train.labels.tolist() == [i for i in range(10) for _ in range(2)]
    assert val.labels.tolist() == list(range(10))
    assert len(test) == N_TEST and bool((test.labels == UNLABELLED).all())
    assert train.digit_labels is None and test.digit_labels is None


def test_the_unpacked_folder_and_its_parent_read_the_same(course_zip, tmp_path):
    with zipfile.ZipFile(course_zip) as zf:
        zf.extractall(tmp_path)
    from_zip = read_split("image_folder", course_zip, "train")
    for path in (tmp_path, tmp_path / "cse849_data"):  # the parent (as unzipped) and the dataset folder
        from_folder = read_split("image_folder", path, "train")
        assert torch.equal(from_folder.images, from_zip.images) and from_folder.files == from_zip.files


def test_check_data_reports_layout_counts_and_statistics(course_zip, capsys):
    cli.main(["check-data", str(course_zip)])
    out = capsys.readouterr().out
    assert "train      20 images 16x16x3, 20 labelled, no digit labels: airplane 2," in out
    assert "test        7 images 16x16x3, 0 labelled, no digit labels: no labels" in out
    mean, std = channel_stats(read_split("image_folder", course_zip, "train").images)
    assert f"train mean {[round(m, 3) for m in mean]}, std {[round(s, 3) for s in std]}" in out


def test_train_evaluate_predict_and_grade_on_the_course_zip(course_zip, tmp_path, capsys):
    variant = course_variant(course_zip)
    splits = load_splits(variant.data, variant.seed)
    result = fit(variant, splits, torch.device("cpu"))
    assert result.metrics["test_labelled"] is False
    assert "test_accuracy" not in result.metrics and 0 <= result.metrics["val_accuracy"] <= 1
    measured_mean = channel_stats(splits.train.images)[0]
    assert torch.as_tensor(result.normalizer.mean).double().tolist() == pytest.approx(measured_mean, abs=1e-6)

    save_checkpoint(
        tmp_path / "course.pt",
        variant,
        result.model,
        result.normalizer,
        tuple(splits.train.images.shape[1:]),
        splits.classes,
    )
    outputs = evaluate_checkpoint(tmp_path / "course.pt", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["val_examples"] == 10 and "test_accuracy" not in metrics and "shortcut" not in metrics
    assert metrics["val_accuracy"] == pytest.approx(result.metrics["val_accuracy"], abs=1e-6)
    assert any("evaluated on the validation split" in n for n in metrics["notes"])
    assert any("shortcut, occlusion and counterfactual tests skipped" in n for n in metrics["notes"])
    assert len(outputs.predicted) == 10 and (tmp_path / "eval" / "confusion_matrix.png").is_file()

    predictions = tmp_path / "q1_test.txt"
    assert len(run_predict(tmp_path / "course.pt", course_zip, predictions)) == N_TEST
    assert len(predictions.read_text().splitlines()) == N_TEST

    with pytest.raises(SystemExit) as exit_:
        cli.main(["grade-cse849", str(predictions), "--data", str(course_zip), "--json", str(tmp_path / "g.json")])
    assert exit_.value.code == 0
    assert "not graded: " in capsys.readouterr().out
    assert json.loads((tmp_path / "g.json").read_text())["graded"] is False


def test_a_missing_val_class_is_refused_not_shifted(tmp_path):
    archive = make_course_zip(tmp_path / "c.zip", val_classes=[c for c in CLASSES if c != "cat"])
    with pytest.raises(DataError, match=r"class folders differ .*\(cat in one only\)"):
        read_split("image_folder", archive, "val")


def test_hostile_and_broken_archives_are_refused(tmp_path):
    archive = make_course_zip(tmp_path / "slip.zip", extra={"../outside.png": b"x"})
    with pytest.raises(DataError, match="would be unpacked outside the dataset folder"):
        read_split("image_folder", archive, "train")
    assert not (tmp_path.parent / "outside.png").exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable zip file"):
        read_split("image_folder", broken, "train")
    (tmp_path / "elsewhere" / "a").mkdir(parents=True)
    (tmp_path / "elsewhere" / "b").mkdir()
    with pytest.raises(DataError, match=r"no train/, val/ or test/ folder \(found a, b\)"):
        read_split("image_folder", tmp_path / "elsewhere", "train")
