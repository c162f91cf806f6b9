"""Bad inputs, one parametrized test per fault class: each is refused with one line that
names the file and the line or key, before any output is touched, and nothing hangs.

(Destructive writes, divergence and bad checkpoints: tests/test_nothing_lost.py.)
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.config import ConfigError, load_params, load_variant
from pipeline.data.common import imageio
from pipeline.data.common.errors import DataError
from pipeline.data.readers.image_folder import read_image_dir, read_test_labels
from pipeline.datasets import Splits
from pipeline.engine import fit
from tests.test_engine import synthetic_digits

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- params.yaml


def params_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the real params.yaml with one text replacement (which must apply)."""
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


PRAC5_OPTIMIZER = "      optimizer: {name: sgd, lr: 0.05}     # SGD is the seed's; lr is not given"
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
            "        patch_box:          # [top, left, height, width] of the MNIST digit\n        - 36\n",
            "        patch_box:\n        - -1\n",
            "cse849",
            r"variants\.cse849\.data\.augment\.patch_box: expected \[top, left, height, width\]",
        ),
    ],
    ids=[
        "duplicate-key",
        "negative-weight-decay",
        "momentum-1.5",
        "nesterov-without-momentum",
        "adam-momentum",
        "negative-box",
    ],
)
def test_bad_params_are_refused_with_the_key_named(tmp_path, old, new, variant, message):
    with pytest.raises(ConfigError, match=message):
        load_variant(variant, load_params(params_with(tmp_path, old, new)))


def test_exponent_notation_is_a_number_as_dvc_reads_it(tmp_path):
    """`lr: 1e-3` is a float for DVC (YAML 1.2); PyYAML alone reads text, which the stage refused."""
    path = params_with(tmp_path, PRAC5_OPTIMIZER, "      optimizer: {name: sgd, lr: 5e-2}")
    assert load_variant("prac5", load_params(path)).train.optimizer.lr == 0.05
    assert load_variant("prac5", load_params(path)) == load_variant("prac5")


def test_a_box_beyond_the_images_stops_training_before_it_starts():
    variant = load_variant("cse849")
    data = dataclasses.replace(
        variant.data, occlusion={}, augment=dataclasses.replace(variant.data.augment, patch_box=[10, 10, 28, 28])
    )
    splits = Splits(train=synthetic_digits(64, 0), val=None, test=synthetic_digits(16, 1))  # 28x28 images
    with pytest.raises(
        ConfigError,
        match=r"variants\.cse849\.data\.augment\.patch_box: \[10, 10, 28, 28\] "
        r"reaches beyond the 28x28 images \(rows 10-37, columns 10-37\)",
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
