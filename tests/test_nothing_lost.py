"""The bad-input battery: careless use and hostile inputs, one test (mostly parametrized) per fault class.

Each test here failed before its fix. Data loss: a file written over a folder deleted the
folder, ``--out`` inside the images folder was accepted, a killed write left its temporary
behind for good. Silent wrong results: NaN went into metrics.json, a diverging run saved NaN
weights, a foreign or broken checkpoint was used. Bad inputs: a repeated params key kept its
last value, ``1e-3`` was text, torch refused optimizer settings only after loading the data,
a box past the image edge did nothing, a file listed twice in test_labels.csv won silently,
a named pipe hung ``predict``, an oversized image was decoded. Each is now refused before any
output is touched, in one line naming the file and line or the params key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.core.config import ConfigError, VariantConfig, build
from pipeline.core.errors import DataError
from pipeline.core.io import atomic_path, write_json, write_text
from pipeline.core.params import load_all
from pipeline.data.common import imageio
from pipeline.data.readers import ImageSet
from pipeline.data.readers.image_folder import read_image_dir, read_test_labels
from pipeline.inference.predict import run_predict
from pipeline.training.datasets import Splits
from pipeline.training.engine import TrainingDiverged, fit
from tests.conftest import synthetic_digits

REPO = Path(__file__).resolve().parents[1]


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

    with pytest.raises(SystemExit) as exit_info:
        autograde.main(["--out", f"{precious}/"])
    assert exit_info.value.code == 1
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
        match=r"^diverges epoch 1/3: training diverged: the loss is (nan|inf) at batch [2-4] of 4: .* after updates "
        r"at learning rate 1e\+12 \(a smaller train.optimizer.lr is the usual remedy\); nothing was saved$",
    ):
        fit(variant, Splits(train=data, val=None, test=data), torch.device("cpu"))


# --------------------------------------------------------------------------- checkpoints


def tiny_checkpoint(path, name="tiny", weights=None):
    from pipeline.models import create_model
    from pipeline.training.checkpoint import save_checkpoint
    from pipeline.training.normalizer import Normalizer

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
    elif kind == "weights_not_a_dict":
        payload = torch.load(tiny_checkpoint(path), weights_only=True)
        payload["state_dict"] = list(payload["state_dict"].values())
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
        ("weights_not_a_dict", "state_dict is a list, not a dict of tensors"),
        ("malicious", "not a readable checkpoint: it holds objects other than tensors"),
        ("nan_weights", "non-finite weights in"),
        ("nan_normalization", "non-finite normalization"),
    ],
)
def test_a_bad_checkpoint_is_one_clear_line(tmp_path, monkeypatch, kind, message):
    from pipeline.training.checkpoint import load_checkpoint

    monkeypatch.chdir(tmp_path)
    path = _write_bad_checkpoint(tmp_path / "bad.pt", kind)
    with pytest.raises(ValueError, match=message) as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ") and "weights_only=False" not in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "pwned.txt").exists()


def test_evaluating_a_variant_with_another_variants_checkpoint_is_refused(tmp_path):
    from pipeline.inference.evaluation import evaluate_checkpoint

    model = tiny_checkpoint(tmp_path / "prac5.pt", name="tdm_max")
    with pytest.raises(ValueError, match="holds variant 'tdm_max', not 'prac5'"):
        evaluate_checkpoint(model, tmp_path / "eval", expected_variant="prac5")
    assert not (tmp_path / "eval").exists()


# --------------------------------------------------------------------------- bad inputs


# --------------------------------------------------------------------------- params.yaml


def params_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the real params.yaml with one text replacement (which must apply)."""
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


PRAC5_OPTIMIZER = "      optimizer: {name: sgd, lr: 0.05}     # SGD is the handout's; lr is not given"
TDM_OPTIMIZER = "      optimizer: {name: adam, lr: 0.001}"


@pytest.mark.parametrize(
    ("old", "new", "variant", "message"),
    [
        # PyYAML would keep the second value silently; DVC refuses the file
        (
            "      epochs: 10\n",
            "      epochs: 10\n      epochs: 3\n",
            "prac5",
            r"params.yaml: line \d+: duplicate key 'epochs' \(first at line \d+\)",
        ),
        (
            PRAC5_OPTIMIZER,
            "      optimizer: {name: sgd, lr: 0.05, weight_decay: -0.1}",
            "prac5",
            r"variants\.prac5\.train\.optimizer\.weight_decay: must be >= 0",
        ),
        (
            PRAC5_OPTIMIZER,
            "      optimizer: {name: sgd, lr: 0.05, momentum: 1.5}",
            "prac5",
            r"variants\.prac5\.train\.optimizer\.momentum: must be in \[0, 1\)",
        ),
        (
            PRAC5_OPTIMIZER,
            "      optimizer: {name: sgd, lr: 0.05, nesterov: true}",
            "prac5",
            r"variants\.prac5\.train\.optimizer\.nesterov: Nesterov momentum needs momentum > 0",
        ),
        (
            TDM_OPTIMIZER,
            "      optimizer: {name: adam, lr: 0.001, momentum: 0.9}",
            "tdm_max",
            r"variants\.tdm_max\.train\.optimizer: momentum and nesterov are SGD settings; 'adam'",
        ),
        (
            "        patch_shuffle: {p: 1.0, region: digit}",
            "        patch_shuffle: {p: 1.0}",
            "cse849",
            r"variants\.cse849\.data\.augment\.patch_shuffle\.region: missing",
        ),
    ],
    ids=[
        "duplicate-key",
        "negative-weight-decay",
        "momentum-1.5",
        "nesterov-without-momentum",
        "adam-momentum",
        "region-missing",
    ],
)
def test_bad_params_are_refused_with_the_key_named(tmp_path, old, new, variant, message):
    with pytest.raises(ConfigError, match=message):
        load_all(params_with(tmp_path, old, new)).variant(variant)


def test_exponent_notation_is_a_number_as_dvc_reads_it(tmp_path):
    """`lr: 1e-3` is a float for DVC (YAML 1.2); PyYAML alone reads text, which the stage refused."""
    path = params_with(tmp_path, PRAC5_OPTIMIZER, "      optimizer: {name: sgd, lr: 5e-2}")
    prac5 = load_all(path).variant("prac5")
    assert prac5.train.optimizer.lr == 0.05
    assert prac5 == load_all().variant("prac5")


def test_a_region_the_data_lacks_stops_training_before_it_starts():
    variant = load_all().variant("cse849")
    data = dataclasses.replace(variant.data, occlusion=[])
    splits = Splits(train=synthetic_digits(64, 0), val=None, test=synthetic_digits(16, 1))  # no layout: MNIST
    with pytest.raises(
        ConfigError,
        match=r"variants\.cse849\.data\.augment\.patch_shuffle\.region: the data has no composite layout",
    ):
        fit(dataclasses.replace(variant, data=data), splits, torch.device("cpu"))


# --------------------------------------------------------------------------- data files


def png(path: Path, size: int = 8) -> None:
    Image.fromarray(np.zeros((size, size), np.uint8)).save(path)


def fault_named_pipe(folder: Path) -> str:
    os.mkfifo(folder / "b_pipe.png")
    return r"b_pipe.png: not a regular file"


def fault_decompression_bomb(folder: Path, monkeypatch) -> str:
    monkeypatch.setattr(imageio, "MAX_PIXELS", 63)  # the 8x8 images are 64 pixels
    return r"a.png: 8x8 pixels, more than 63 \(a decompression bomb\?\)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
@pytest.mark.parametrize("fault", ["named_pipe", "decompression_bomb"])
def test_a_bad_image_file_is_one_line_and_never_a_hang(tmp_path, monkeypatch, fault):
    folder = tmp_path / "images"
    folder.mkdir()
    png(folder / "a.png")
    message = fault_named_pipe(folder) if fault == "named_pipe" else fault_decompression_bomb(folder, monkeypatch)
    with pytest.raises(DataError, match=message):
        read_image_dir(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_predict_on_a_folder_with_a_named_pipe_ends_with_one_line(tmp_path):
    """It used to hang for ever in open(); now the command ends, non-zero, in seconds."""
    folder = tmp_path / "images"
    folder.mkdir()
    png(folder / "a.png", 28)
    os.mkfifo(folder / "b.png")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "predict",
            "--variant",
            "prac5",
            "--images",
            str(folder),
            "--out",
            str(tmp_path / "out.txt"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "b.png: not a regular file" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a.png,1\nb.png,2\na.png,3\n", r"line 4: 'a.png' is listed twice"),
        ("a.png,1\nb.png,cat\n", r"line 3: label 'cat' is neither a class index nor a class name"),
        ("a.png,10\n", r"line 2: label 10 outside 0-9"),
    ],
    ids=["duplicate-row", "unknown-name", "out-of-range"],
)
def test_bad_test_label_rows_name_their_line(tmp_path, rows, message):
    table = tmp_path / "test_labels.csv"
    table.write_text("filename,label\n" + rows)
    with pytest.raises(DataError, match=message):
        read_test_labels(table)


# --------------------------------------------------------------------------- unwritable outputs


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    """A stage whose output location cannot be written exits 1 with one line naming it, no traceback."""
    from pipeline.core.cli import run_stage

    target = tmp_path / "metrics.json"

    def denied(*args, **kwargs):  # as a non-root user meets it (root may write anywhere)
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(SystemExit) as exc:
        run_stage(lambda: write_json(target, {"a": 1}))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 1 and len(err) == 1 and err[0].startswith("error: ") and str(target) in err[0], err
    assert not target.exists()


@pytest.mark.parametrize("depth", ["parent", "grandparent"])
def test_an_output_under_a_file_names_that_file(tmp_path, capsys, depth):
    """A file where the output's folder (or a folder above it) should be: one line naming it, the file kept."""
    from pipeline.core.cli import run_stage

    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    target = blocker / "metrics.json" if depth == "parent" else blocker / "v" / "metrics.json"
    with pytest.raises(SystemExit) as exc:
        run_stage(lambda: write_json(target, {"a": 1}))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 1 and len(err) == 1, err
    assert err[0] == f"error: {target}: cannot create its folder: {blocker} is a file, not a folder"
    assert blocker.read_text() == "not a folder"
