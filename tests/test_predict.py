"""``python -m pipeline predict``: same predictions as the evaluation, clear errors, no partial output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.__main__ import main as cli
from pipeline.inference.evaluation import evaluate_checkpoint
from pipeline.inference.predict import format_predictions, run_predict
from pipeline.models import create_model
from pipeline.stages.export_weights import main as export_weights
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.normalizer import Normalizer
from tests.tiny_folder import MEAN, SIZE, STD, make_checkpoint, make_folder_dataset, tiny_variant, write_png


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder") / "data"
    arrays = make_folder_dataset(root)
    model = make_checkpoint(root.parent / "model.pt", tiny_variant(root))
    return root, arrays, model


def manual_predictions(model_path: Path, images_hwc: np.ndarray) -> torch.Tensor:
    """Straight from the checkpoint: its normalizer by hand, one forward pass."""
    loaded = load_checkpoint(model_path)
    x = torch.from_numpy(images_hwc).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return loaded.model(x).argmax(1)


def test_predict_equals_evaluation_argmax(dataset, tmp_path):
    root, arrays, model = dataset
    out = tmp_path / "q1_test.txt"
    cli(["predict", "--model", str(model), "--images", str(root / "test"), "--out", str(out)])
    lines = out.read_text().splitlines()
    assert len(lines) == len(arrays["files"])
    predicted = [int(v) for v in lines]

    result = evaluate_checkpoint(model, tmp_path / "eval")
    table = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert list(table["file"]) == arrays["files"]  # same (sorted) order
    assert predicted == table["predicted"].tolist() == result.predicted.tolist()
    assert predicted == manual_predictions(model, arrays["images"]).tolist()


def test_predict_uses_the_checkpoint_normalizer(dataset, tmp_path):
    """Another normalizer in the checkpoint changes the logits: preprocessing really comes from it."""
    root, arrays, _ = dataset
    variant = tiny_variant(root)
    a = make_checkpoint(tmp_path / "a.pt", variant, seed=1)
    b = make_checkpoint(tmp_path / "b.pt", variant, seed=1, normalizer=Normalizer([0.0] * 3, [1.0] * 3))
    from pipeline.inference.predict import predict_folder

    _, pa = predict_folder(a, root / "test")
    assert pa.tolist() == manual_predictions(a, arrays["images"]).tolist()
    loaded = load_checkpoint(b)
    x = torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        expected_b = loaded.model(x).argmax(1)
    assert predict_folder(b, root / "test")[1].tolist() == expected_b.tolist()


def test_predict_by_variant_name_uses_models_dir(dataset, tmp_path):
    root, arrays, model = dataset
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.pt").write_bytes(model.read_bytes())
    out = tmp_path / "out.txt"
    cli(
        ["predict", "--variant", "tiny", "--models-dir", str(models), "--images", str(root / "test"), "--out", str(out)]
    )
    assert out.read_text() == format_predictions(manual_predictions(model, arrays["images"]))


def run_failing(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli(args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ")
    return err[-1]


def test_wrong_size_image_is_refused_by_name(dataset, tmp_path, capsys):
    root, _, model = dataset
    images = tmp_path / "images"
    for f in sorted((root / "test").iterdir())[:3]:
        (images / f.name).parent.mkdir(exist_ok=True)
        (images / f.name).write_bytes(f.read_bytes())
    write_png(images / "00001_big.png", np.zeros((SIZE + 4, SIZE, 3), dtype=np.uint8))
    out = tmp_path / "preds.txt"
    message = run_failing(["predict", "--model", str(model), "--images", str(images), "--out", str(out)], capsys)
    assert "00001_big.png" in message and "size" in message
    assert not out.exists()
    assert not list(tmp_path.glob(".preds.txt*"))  # no temporary left behind either


def test_grayscale_image_for_an_rgb_model_is_refused(dataset, tmp_path, capsys):
    root, _, model = dataset
    images = tmp_path / "images"
    images.mkdir()
    write_png(images / "a.png", np.zeros((SIZE, SIZE, 3), dtype=np.uint8))
    write_png(images / "b_gray.png", np.zeros((SIZE, SIZE), dtype=np.uint8))
    out = tmp_path / "preds.txt"
    out.write_text("old\n")  # an earlier result stays untouched
    message = run_failing(["predict", "--model", str(model), "--images", str(images), "--out", str(out)], capsys)
    assert "b_gray.png" in message and "channel" in message
    assert out.read_text() == "old\n"


def test_missing_model_and_variant_mismatch(dataset, tmp_path, capsys):
    root, _, model = dataset
    out = tmp_path / "p.txt"
    message = run_failing(
        ["predict", "--model", str(tmp_path / "none.pt"), "--images", str(root / "test"), "--out", str(out)], capsys
    )
    assert "none.pt" in message
    message = run_failing(
        ["predict", "--variant", "other", "--model", str(model), "--images", str(root / "test"), "--out", str(out)],
        capsys,
    )
    assert "'tiny'" in message
    assert not out.exists()


def test_grayscale_flat_input_model(tmp_path):
    """Practical 5's model (flat 784-vectors reshaped inside) on a folder of 28x28 grayscale images."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    folder = tmp_path / "mnist"
    for i, image in enumerate(images):
        write_png(folder / f"{i}.png", image)
    variant = tiny_variant(tmp_path, model="prac5_cnn", normalize={"mode": "none"})
    model = make_checkpoint(
        tmp_path / "prac5.pt", variant, input_shape=(1, 28, 28), normalizer=Normalizer([0.0], [1.0])
    )
    predicted = run_predict(model, folder, tmp_path / "out.txt")
    loaded = load_checkpoint(model)
    with torch.no_grad():
        expected = loaded.model(torch.from_numpy(images).float().view(7, 784) / 255.0).argmax(1)
    assert predicted == expected.tolist()


def test_exported_weights_load_the_seeds_way_and_predict_the_same(dataset, tmp_path, capsys):
    """CSE 849's q1_model.pt: ``model.load_state_dict(torch.load(path))`` into a network built by
    hand gives the checkpoint's predictions; a checkpoint of another variant is refused."""
    root, arrays, model = dataset
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.pt").write_bytes(model.read_bytes())
    out = tmp_path / "submission" / "q1_model.pt"
    export_weights(["--variant", "tiny", "--models-dir", str(models), "--out", str(out)])

    torch.manual_seed(123)  # other initial weights: only the loaded state can make them agree
    by_hand = create_model("cse849_cnn").eval()
    by_hand.load_state_dict(torch.load(out))  # the handout's way (weights_only=True is torch's default)
    x = torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert by_hand(x).argmax(1).tolist() == manual_predictions(model, arrays["images"]).tolist()
    assert set(torch.load(out)) == set(load_checkpoint(model).model.state_dict())

    again = tmp_path / "again.pt"
    export_weights(["--variant", "tiny", "--models-dir", str(models), "--out", str(again)])
    assert again.read_bytes() == out.read_bytes()  # the same weights give the same bytes

    (models / "other.pt").write_bytes(model.read_bytes())
    error = run_failing(
        ["export-weights", "--variant", "other", "--models-dir", str(models), "--out", str(tmp_path / "x.pt")], capsys
    )
    assert "holds variant 'tiny', not 'other'" in error and not (tmp_path / "x.pt").exists()
