"""Writers never delete what they did not create, and a diverging run writes nothing (issue: data loss).

Each test here failed before its fix: a file written over a folder deleted the folder,
``--out`` inside the images folder was accepted, a killed write left its temporary
behind for good, NaN went into metrics.json, and a diverging run saved NaN weights.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from pipeline.config import VariantConfig, build
from pipeline.data.readers import ImageSet
from pipeline.datasets import Splits
from pipeline.engine import TrainingDiverged, fit
from pipeline.io import atomic_path, write_json, write_text
from pipeline.predict import run_predict


@pytest.fixture
def precious(tmp_path):
    """A folder with a file in it that no writer may delete."""
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    return folder


def assert_intact(folder):
    assert (folder / "keep.txt").read_text() == "mine"
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")], "a temporary was left behind"


def test_a_file_is_never_written_over_a_folder(precious):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_text(precious, "x")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_json(f"{precious}/", {"a": 1})  # as `--out folder/` arrives
    with pytest.raises(IsADirectoryError, match="refusing to replace it"), atomic_path(precious) as tmp:
        tmp.write_text("a file where a folder stands")
    assert_intact(precious)


def test_a_folder_may_replace_the_folder_it_updates(tmp_path):
    target = tmp_path / "dataset"
    for version in ("old", "new"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "version.txt").write_text(version)
    assert (target / "version.txt").read_text() == "new"


def test_temporaries_of_a_killed_write_are_cleaned_at_the_next_write(tmp_path):
    target = tmp_path / "composite"
    (tmp_path / ".composite.k1ll3d_x.tmp").mkdir()  # what kill -9 during convert_composite leaves
    (tmp_path / ".composite.k1ll3d_x.tmp" / "00001.png").write_bytes(b"x" * 100)
    (tmp_path / ".composite.0ther_ab.tmp").write_text("half a file")
    others = [".compositeX.abcdefgh.tmp", ".composite.json.abcdefgh.tmp"]  # other targets' temporaries
    for name in others:
        (tmp_path / name).write_text("another target's")
    with atomic_path(target) as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "composite"])


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_in_json(tmp_path, value):
    target = tmp_path / "metrics.json"
    write_json(target, {"test_accuracy": 0.5})
    with pytest.raises(ValueError, match="metrics.json: refusing to write a non-finite number"):
        write_json(target, {"test_accuracy": value})
    assert json.loads(target.read_text()) == {"test_accuracy": 0.5}  # the last good file stays


def test_predict_refuses_an_output_that_would_destroy_or_pollute_the_images(precious, tmp_path):
    model = tmp_path / "never-loaded.pt"  # the checks come before the model is read
    with pytest.raises(IsADirectoryError, match="is a directory"):
        run_predict(model, precious, precious)
    with pytest.raises(ValueError, match="inside the images folder"):
        run_predict(model, precious, precious / "q1_test.txt")
    assert_intact(precious)


def test_autograde_stage_refuses_a_folder_as_output(precious, capsys):
    from pipeline.stages import autograde

    assert autograde.main(["--out", f"{precious}/"]) == 1
    assert "is a directory" in capsys.readouterr().err
    assert_intact(precious)


def test_a_diverging_run_stops_at_the_first_non_finite_loss():
    raw = {
        "seed": 0,
        "data": {"format": "mnist_npz", "path": "unused", "normalize": {"mode": "none"}},
        "model": {"name": "tdm_cnn"},
        "train": {
            "epochs": 3,
            "batch_size": 16,
            "optimizer": {"name": "sgd", "lr": 1e12, "momentum": 0.9},
            "loss": "cross_entropy",
        },
    }
    variant = build(VariantConfig, raw, "test", name="diverges")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (64,), generator=g)
    data = ImageSet(images, labels, [str(i) for i in range(10)])
    with pytest.raises(
        TrainingDiverged,
        match=r"diverges \d/3: the training loss is (nan|inf) at step \d+ of the epoch "
        r"\(learning rate 1e\+12\)",
    ):
        fit(variant, Splits(train=data, val=None, test=data), torch.device("cpu"))


# --------------------------------------------------------------------------- checkpoints


def tiny_checkpoint(path, name="tiny", weights=None):
    from pipeline.checkpoint import save_checkpoint
    from pipeline.models import create_model
    from pipeline.normalizer import Normalizer

    raw = {
        "seed": 0,
        "data": {"format": "mnist_npz", "path": "unused"},
        "model": {"name": "prac5_cnn"},
        "train": {"epochs": 1, "batch_size": 8, "optimizer": {"name": "sgd", "lr": 0.1}, "loss": "cross_entropy"},
    }
    variant = build(VariantConfig, raw, "test", name=name)
    torch.manual_seed(0)
    model = create_model("prac5_cnn")
    if weights is not None:
        with torch.no_grad():
            next(model.parameters()).fill_(weights)
    save_checkpoint(path, variant, model, Normalizer([0.13], [0.31]), (1, 28, 28), [str(i) for i in range(10)])
    return path


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > pwned.txt",))


def _write_bad_checkpoint(path, kind):
    import pickle

    if kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "truncated":
        tiny_checkpoint(path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "missing_key":
        payload = torch.load(tiny_checkpoint(path), weights_only=True)
        del payload["state_dict"]
        torch.save(payload, path)
    elif kind == "wrong_weights":
        payload = torch.load(tiny_checkpoint(path), weights_only=True)
        payload["state_dict"] = {k: v[..., :1] for k, v in payload["state_dict"].items()}
        torch.save(payload, path)
    elif kind == "malicious":
        path.write_bytes(pickle.dumps(_Exploit(), protocol=2))
    elif kind == "nan_weights":
        tiny_checkpoint(path, weights=math.nan)
    elif kind == "nan_normalization":
        payload = torch.load(tiny_checkpoint(path), weights_only=True)
        payload["input"]["std"] = [math.nan]
        torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "not a file written by torch.save"),
        ("truncated", "truncated or corrupted"),
        ("list", "holds a list, not a checkpoint"),
        ("missing_key", "missing key\\(s\\) state_dict"),
        ("wrong_weights", "the weights do not fit model 'prac5_cnn'"),
        ("malicious", "not a readable checkpoint: it holds objects other than tensors"),
        ("nan_weights", "non-finite weights in"),
        ("nan_normalization", "non-finite normalization"),
    ],
)
def test_a_bad_checkpoint_is_one_clear_line(tmp_path, monkeypatch, kind, message):
    from pipeline.checkpoint import load_checkpoint

    monkeypatch.chdir(tmp_path)
    path = _write_bad_checkpoint(tmp_path / "bad.pt", kind)
    with pytest.raises(ValueError, match=message) as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ") and "weights_only=False" not in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "pwned.txt").exists()


def test_evaluating_a_variant_with_another_variants_checkpoint_is_refused(tmp_path):
    from pipeline.evaluation import evaluate_checkpoint

    model = tiny_checkpoint(tmp_path / "prac5.pt", name="tdm_max")
    with pytest.raises(ValueError, match="holds variant 'tdm_max', not 'prac5'"):
        evaluate_checkpoint(model, tmp_path / "eval", expected_variant="prac5")
    assert not (tmp_path / "eval").exists()
