"""`cnn-pipeline`: one program name, fast help, the same exit codes everywhere, and predict's outputs."""

from __future__ import annotations

import csv
import io
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import __version__
from pipeline.__main__ import STAGES
from pipeline.__main__ import main as cli
from pipeline.models import create_model
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.normalizer import Normalizer
from tests.tiny_folder import MEAN, SIZE, STD, make_folder_dataset, tiny_variant, write_png

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_help_and_version_import_no_torch():
    """What makes `--help` answer in ~0.1 s instead of 2.4 s: nothing heavy is imported first."""
    probe = (
        "import sys\nfrom pipeline.__main__ import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'pandas', 'matplotlib') if m in sys.modules)\n"
        "print('heavy:', heavy)"
    )
    for flag in ("--help", "--version"):
        done = subprocess.run([sys.executable, "-c", probe, flag], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.stdout.strip().splitlines()[-1] == "heavy: []", done.stdout + done.stderr
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"cnn-pipeline {__version__}"


def exit_code(args: list[str]) -> int | str | None:
    with pytest.raises(SystemExit) as exit_info:
        cli(args)
    return exit_info.value.code


@pytest.mark.parametrize("command", ["predict", "check-data", *STAGES])
def test_every_usage_names_the_program_and_the_command(command, capsys):
    assert exit_code([command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: cnn-pipeline {command} ")
    assert "``" not in shown and ":func:" not in shown and "python -m" not in shown


def test_top_level_help_describes_tasks_not_modules():
    shown = run("--help").stdout
    assert "pipeline.stages" not in shown and "`" not in shown
    assert "train one variant of params.yaml" in shown and "Exit status: 0 done; 1" in shown


def test_a_missing_file_exits_1_in_every_command(tmp_path, capsys):
    missing = str(tmp_path / "missing")
    cases = {
        "predict": ["predict", "--model", f"{missing}.pt", "--images", str(tmp_path), "--out", str(tmp_path / "o")],
        "check-data": ["check-data", missing],
        "grade-cse849": ["grade-cse849", f"{missing}.txt", "--labels", f"{missing}.csv"],
        "autograde": ["autograde", "--submission", f"{missing}.py", "-q", "q1"],
        "evaluate": ["evaluate", "tiny", "--model", f"{missing}.pt", "--out", str(tmp_path / "e")],
    }
    for name, args in cases.items():
        assert exit_code(args) == 1, name
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("error: ") and "missing" in last, (name, last)
    assert exit_code(["predict", "--images", str(tmp_path)]) == 2  # --out missing: argparse's usage error
    assert "the following arguments are required: --out" in capsys.readouterr().err


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A tiny dataset and an untrained checkpoint whose classes have names, not digits."""
    root = tmp_path_factory.mktemp("named") / "data"
    arrays = make_folder_dataset(root)
    variant = tiny_variant(root)
    torch.manual_seed(0)
    model = create_model(variant.model.name, **variant.model.args).eval()
    path = root.parent / "model.pt"
    save_checkpoint(path, variant, model, Normalizer(MEAN, STD), (3, SIZE, SIZE), NAMES)
    return root / "test", arrays, path


def expected_logits(model_path: Path, images_hwc: np.ndarray) -> torch.Tensor:
    from pipeline.training.checkpoint import load_checkpoint

    x = torch.from_numpy(images_hwc).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return load_checkpoint(model_path).model(x)


def test_predict_csv_has_files_class_names_and_probabilities(named, tmp_path):
    images, arrays, model = named
    out = tmp_path / "preds.csv"
    cli(["predict", "--model", str(model), "--images", str(images), "--out", str(out), "--format", "csv",
         "--probabilities"])  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    logits = expected_logits(model, arrays["images"])
    assert [r["file"] for r in rows] == arrays["files"]
    assert [int(r["index"]) for r in rows] == logits.argmax(1).tolist()
    assert [r["class"] for r in rows] == [NAMES[i] for i in logits.argmax(1).tolist()]
    probs = np.array([[float(r[f"p_{n}"]) for n in NAMES] for r in rows])
    assert np.allclose(probs, logits.double().softmax(1).numpy(), atol=2e-6)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_predict_probabilities_need_the_csv_format(named, tmp_path, capsys):
    images, _, model = named
    with pytest.raises(SystemExit) as exit_info:
        cli(
            ["predict", "--model", str(model), "--images", str(images), "--out", str(tmp_path / "p"), "--probabilities"]
        )
    assert exit_info.value.code == 1 and "--probabilities needs --format csv" in capsys.readouterr().err


def test_per_class_log_counts_every_class_by_name(named, tmp_path, caplog):
    """A bincount without minlength listed 8 counts for a 10-class model."""
    images, arrays, model = named
    with caplog.at_level(logging.INFO, logger="pipeline.inference.predict"):
        cli(["predict", "--model", str(model), "--images", str(images), "--out", str(tmp_path / "p.txt")])
    predicted = expected_logits(model, arrays["images"]).argmax(1)
    counts = torch.bincount(predicted, minlength=10).tolist()
    assert 0 in counts  # the case that lost classes: 23 images of an untrained model miss some
    shown = ", ".join(f"{n} {c}" for n, c in zip(NAMES, counts))
    assert f"(per class: {shown})" in caplog.text


def test_a_stray_file_stops_predict_unless_skipping_is_asked_for(named, tmp_path, caplog, capsys):
    images, arrays, model = named
    folder = tmp_path / "images"
    folder.mkdir()
    for name in arrays["files"][:4]:
        (folder / name).write_bytes((images / name).read_bytes())
    (folder / "00001_notes.txt").write_text("not an image\n")
    out = tmp_path / "p.txt"
    with pytest.raises(SystemExit) as exit_info:
        cli(["predict", "--model", str(model), "--images", str(folder), "--out", str(out)])
    assert exit_info.value.code == 1 and "00001_notes.txt: not an image file" in capsys.readouterr().err
    assert not out.exists()
    with caplog.at_level(logging.WARNING, logger="pipeline.inference.predict"):
        cli(["predict", "--model", str(model), "--images", str(folder), "--out", str(out), "--skip-non-images",
             "--format", "csv"])  # fmt: skip
    assert [r["file"] for r in csv.DictReader(io.StringIO(out.read_text()))] == arrays["files"][:4]
    assert "skipped" in caplog.text and "00001_notes.txt: not an image file" in caplog.text
    write_png(folder / "00002_small.png", np.zeros((SIZE - 1, SIZE, 3), dtype=np.uint8))
    with pytest.raises(SystemExit):  # skipping is for non-images only: a wrong-size image is still an error
        cli(["predict", "--model", str(model), "--images", str(folder), "--out", str(out), "--skip-non-images"])
    assert "00002_small.png: size" in capsys.readouterr().err


def test_an_unknown_variant_is_named_as_such(named, tmp_path, capsys):
    images, _, _ = named
    out = str(tmp_path / "p.txt")
    with pytest.raises(SystemExit) as exit_info:  # run from the repository: params.yaml lists the variants
        cli(["predict", "--variant", "no_such", "--models-dir", str(tmp_path), "--images", str(images), "--out", out])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 1 and err.startswith("error: variants.no_such: unknown variant; allowed: ")
    with pytest.raises(SystemExit):  # a known variant without its checkpoint: train it first
        cli(["predict", "--variant", "prac5", "--models-dir", str(tmp_path), "--images", str(images), "--out", out])
    assert "variant 'prac5' is not trained yet (dvc repro train@prac5)" in capsys.readouterr().err


def test_device_choice(monkeypatch):
    from pipeline.core.errors import PipelineError
    from pipeline.training.setup import DEVICE_ENV, select_device

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert select_device("cpu") == torch.device("cpu")
    assert select_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")  # auto: as before
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert select_device() == torch.device("cpu")
    with pytest.raises(PipelineError, match="'gpu0': not a device name"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(PipelineError, match="'cuda': not available on this machine"):
            select_device("cuda")
    with pytest.raises(PipelineError, match="'cuda:99': not available on this machine"):
        select_device("cuda:99")


def test_predict_on_a_missing_device_writes_nothing(named, tmp_path, capsys):
    images, _, model = named
    out = tmp_path / "p.txt"
    with pytest.raises(SystemExit) as exit_info:
        cli(["predict", "--model", str(model), "--images", str(images), "--out", str(out), "--device", "cuda:99"])
    assert exit_info.value.code == 1 and "'cuda:99': not available" in capsys.readouterr().err
    assert not out.exists()


def test_a_stage_run_by_dvc_names_its_module_in_its_usage():
    """DVC runs `python -m pipeline.stages.<stage>`: its usage says so, not `train.py`."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.train", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m pipeline.stages.train "), done.stdout
