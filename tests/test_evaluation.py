"""Evaluation numbers on hand-made examples, and the evaluate stage end to end on a tiny dataset."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support

from pipeline.core.errors import DataError
from pipeline.data.common.composite import LayoutError
from pipeline.data.readers import read_split
from pipeline.inference.counterfactual import Counterfactuals, flip_metrics, load_counterfactuals
from pipeline.inference.evaluation import evaluate_checkpoint, occlude
from pipeline.inference.figures import first_misclassified
from pipeline.inference.metrics import classification_metrics, shortcut_metrics
from tests.tiny_folder import make_checkpoint, make_folder_dataset, tiny_variant, write_png

# --------------------------------------------------------------------------- misclassified gallery


def test_first_misclassified_returns_the_first_20_wrong_indices_in_order():
    labels = torch.arange(60) % 10
    wrong = [1, 2, 5, 7, 8, 13, 14, 20, 21, 22, 30, 31, 33, 34, 40, 41, 44, 45, 50, 52, 53, 59]  # 22 wrong
    predicted = labels.clone()
    predicted[wrong] = (labels[wrong] + 3) % 10
    logits = torch.nn.functional.one_hot(predicted, 10).float() * 5 - 1
    expected = wrong[:20]
    assert first_misclassified(logits, labels).tolist() == expected
    assert first_misclassified(predicted, labels).tolist() == expected
    assert first_misclassified(predicted, labels, k=3).tolist() == [1, 2, 5]
    assert first_misclassified(labels, labels).tolist() == []
    # Each selected sample really is misclassified, none before the last pick is skipped.
    index = first_misclassified(logits, labels)
    assert bool((logits[index].argmax(1) != labels[index]).all())
    skipped = [i for i in range(int(index[-1])) if i not in index.tolist()]
    assert bool((logits[skipped].argmax(1) == labels[skipped]).all())


# --------------------------------------------------------------------------- per-class metrics


def test_per_class_metrics_match_hand_computation_and_sklearn():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    m = classification_metrics(labels, predicted, n_classes=4)  # class 3: no samples, never predicted
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    pc = m["per_class"]
    assert pc["0"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert pc["1"]["precision"] == pytest.approx(2 / 3, abs=1e-6) and pc["1"]["recall"] == 1.0
    assert pc["1"]["f1"] == pytest.approx(0.8, abs=1e-6)
    assert pc["2"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3, abs=1e-6), "support": 2}
    assert pc["3"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro"]["precision"] == pytest.approx((0.5 + 2 / 3 + 1 + 0) / 4, abs=1e-6)
    assert m["macro"]["recall"] == pytest.approx((0.5 + 1 + 0.5 + 0) / 4, abs=1e-6)
    p, r, f, _ = precision_recall_fscore_support(
        labels, predicted, labels=[0, 1, 2, 3], average="macro", zero_division=0
    )
    assert (m["macro"]["precision"], m["macro"]["recall"], m["macro"]["f1"]) == pytest.approx((p, r, f), abs=1e-6)
    assert all(isinstance(k, str) for k in pc)  # JSON/DVC-friendly keys, no lists


# --------------------------------------------------------------------------- shortcut and occlusion


def test_shortcut_metrics_on_a_hand_made_example():
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    digits = torch.tensor([0, 1, 2, 9, 9, 9])  # agree: 0-2, disagree: 3-5
    predicted = torch.tensor([0, 1, 0, 9, 4, 9])  # agree: 2/3 right; disagree: 1/3 right, 2/3 follow the digit
    s = shortcut_metrics(labels, predicted, digits)
    assert (s["agree_count"], s["disagree_count"]) == (3, 3)
    assert s["agree_accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert s["disagree_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert s["gap_points"] == pytest.approx(100 / 3, abs=1e-3)
    assert s["shortcut_rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert s["predicted_digit_rate"] == pytest.approx(4 / 6, abs=1e-6)


def test_shortcut_metrics_with_an_empty_group():
    s = shortcut_metrics(torch.tensor([1, 2]), torch.tensor([1, 0]), torch.tensor([1, 2]))
    assert s["disagree_count"] == 0 and s["disagree_accuracy"] is None and s["gap_points"] is None
    assert s["agree_accuracy"] == 0.5


def test_occlusion_blanks_exactly_the_box():
    images = torch.full((2, 3, 64, 64), 200, dtype=torch.uint8)
    digit = occlude(images, [36, 36, 28, 28])
    inside = torch.zeros(64, 64, dtype=torch.bool)
    inside[36:64, 36:64] = True
    assert bool((digit[:, :, inside] == 0).all()) and bool((digit[:, :, ~inside] == 200).all())
    assert int((digit == 0).sum()) == 2 * 3 * 28 * 28
    assert bool((images == 200).all())  # the input is not modified
    cifar = occlude(images, [0, 0, 32, 32])
    assert bool((cifar[:, :, :32, :32] == 0).all()) and int((cifar == 0).sum()) == 2 * 3 * 32 * 32
    assert int(cifar[0, 0, 31, 32]) == 200 and int(cifar[0, 0, 32, 31]) == 200
    with pytest.raises(LayoutError, match=r"occlusion box: \[40, 40, 28, 28\] reaches beyond the 64x64 canvas"):
        occlude(images, [40, 40, 28, 28])
    with pytest.raises(LayoutError, match=r"occlusion box: height and width must be positive"):
        occlude(images, [0, 0, 0, 28])


# --------------------------------------------------------------------------- the stage, end to end


REGIONS = ["digit", "cifar"]


@pytest.fixture(scope="module")
def composite(tiny_composite, tmp_path_factory):
    """The converter's tiny composite dataset (64x64, its layout and counterfactual sources) and an
    untrained CSE 849 network: its predictions are arbitrary but fixed, and depend on the digit."""
    root = tiny_composite
    meta = pd.read_csv(root / "metadata.csv")
    test = meta[meta["split"] == "test"]
    arrays = {"labels": test["label"].to_numpy(), "digits": test["digit_label"].to_numpy()}
    work = tmp_path_factory.mktemp("evaluate")
    model = make_checkpoint(work / "model.pt", tiny_variant(root), input_shape=(3, 64, 64))
    out = work / "eval"
    result = evaluate_checkpoint(model, out, occlusion=REGIONS)
    return root, arrays, model, out, result


def test_evaluate_writes_metrics_predictions_and_figures(composite):
    root, arrays, model, out, result = composite
    for name in ("metrics.json", "predictions.csv", "confusion_matrix.png", "first20.png", "misclassified.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    # the DVC metric: the few figures an experiment is compared by, taken from the full file
    assert json.loads((out / "summary.json").read_text()) == {
        "test_macro_f1": metrics["macro"]["f1"],
        "shortcut_rate": metrics["shortcut"]["shortcut_rate"],
        "shortcut_gap_points": metrics["shortcut"]["gap_points"],
        "digit_blanked_accuracy": metrics["occlusion"]["digit_blanked"]["accuracy"],
        "counterfactual_flip_rate": metrics["counterfactual"]["flip_rate"],
    }
    table = pd.read_csv(out / "predictions.csv")
    assert list(table.columns) == ["index", "label", "predicted", "confidence", "file"]
    assert table["label"].tolist() == arrays["labels"].tolist()
    assert table["predicted"].tolist() == result.predicted.tolist()
    assert metrics["test_accuracy"] == pytest.approx((table["label"] == table["predicted"]).mean(), abs=1e-6)
    assert metrics["misclassified"] == int((table["label"] != table["predicted"]).sum())
    assert set(metrics["per_class"]) == {str(i) for i in range(10)}
    assert ((table["confidence"] > 0) & (table["confidence"] <= 1)).all()

    # Composite data (metadata.csv with digit labels): shortcut and occlusion sections.
    expected = shortcut_metrics(torch.tensor(arrays["labels"]), result.predicted, torch.tensor(arrays["digits"]))
    assert metrics["shortcut"] == expected
    assert set(metrics["occlusion"]) == {"digit_blanked", "cifar_blanked"}
    assert set(metrics["occlusion"]["digit_blanked"]) == {"accuracy", "change_points", "predicted_digit_rate"}

    def no_lists(node):
        assert not isinstance(node, list)
        if isinstance(node, dict):
            for v in node.values():
                no_lists(v)

    no_lists(metrics)


def test_evaluate_is_byte_for_byte_reproducible(composite, tmp_path):
    root, arrays, model, out, result = composite
    again = evaluate_checkpoint(model, tmp_path / "again", occlusion=REGIONS)
    for name in (
        "metrics.json",
        "summary.json",
        "predictions.csv",
        "first20.png",
        "misclassified.png",
        "confusion_matrix.png",
    ):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    assert again.predicted.tolist() == result.predicted.tolist()


def test_occlusion_accuracy_is_measured_on_blanked_images(composite):
    """The stage's occlusion accuracy equals the accuracy of a direct run on blanked images."""
    from pipeline.training.checkpoint import load_checkpoint

    root, arrays, model, out, result = composite
    loaded = load_checkpoint(model)
    test = read_split("image_folder", root, "test")
    for name in REGIONS:
        box = test.layout.regions[name]
        with torch.no_grad():
            predicted = loaded.model(loaded.normalizer(occlude(test.images, box))).argmax(1)
        accuracy = float((predicted == test.labels).double().mean())
        assert result.metrics["occlusion"][f"{name}_blanked"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_no_shortcut_section_without_metadata(tmp_path):
    root = tmp_path / "plain"
    make_folder_dataset(root, n_test=12, metadata=False)
    model = make_checkpoint(tmp_path / "m.pt", tiny_variant(root))
    test = read_split("image_folder", root, "test")
    assert test.digit_labels is None
    metrics = evaluate_checkpoint(model, tmp_path / "eval", occlusion=["digit"]).metrics
    assert "shortcut" not in metrics and "occlusion" not in metrics and "counterfactual" not in metrics
    assert any("shortcut, occlusion and counterfactual tests skipped" in note for note in metrics["notes"])


def test_unlabelled_test_split_is_evaluated_on_val_and_says_so(tmp_path):
    """The course's CSE 849 data has no test labels: val is evaluated, under val_* keys, with a note."""
    root = tmp_path / "plain"
    make_folder_dataset(root, n_test=5, metadata=False)
    (root / "test_labels.csv").unlink()
    model = make_checkpoint(tmp_path / "m.pt", tiny_variant(root))
    outputs = evaluate_checkpoint(model, tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert "test_accuracy" not in metrics and metrics["val_examples"] == 20 == len(outputs.predicted)
    assert metrics["notes"] == [f"the test split of {root} is unlabelled: evaluated on the validation split"]
    assert json.loads((tmp_path / "eval" / "summary.json").read_text()) == {"val_macro_f1": metrics["macro"]["f1"]}


def test_data_override_and_mnist_shaped_model(tmp_path):
    """A 1-channel model on grayscale image folders, data path given on the command line."""

    rng = np.random.default_rng(0)
    root = tmp_path / "gray"
    for split in ("train", "val"):
        for c in range(10):
            write_png(root / split / str(c) / "0.png", rng.integers(0, 256, (28, 28), dtype=np.uint8))
    for i in range(6):
        write_png(root / "test" / f"{i}.png", rng.integers(0, 256, (28, 28), dtype=np.uint8))
    pd.DataFrame({"filename": [f"{i}.png" for i in range(6)], "label": [0, 1, 2, 3, 4, 5]}).to_csv(
        root / "test_labels.csv", index=False
    )
    from pipeline.training.normalizer import Normalizer

    variant = tiny_variant(
        tmp_path / "elsewhere", model="tdm_cnn", normalize={"mode": "fixed", "mean": [0.5], "std": [0.5]}
    )
    model = make_checkpoint(tmp_path / "tdm.pt", variant, input_shape=(1, 28, 28), normalizer=Normalizer([0.5], [0.5]))
    metrics = evaluate_checkpoint(model, tmp_path / "eval", data_path=root).metrics
    assert metrics["test_examples"] == 6 and "shortcut" not in metrics


# --------------------------------------------------------------------------- counterfactual


def test_counterfactuals_change_the_digit_and_nothing_else(composite, tiny_raw):
    """Drawn from the raw sources by the converter's code: same photo, a digit of another class."""
    from pipeline.data import convert

    root, arrays, model, out, result = composite
    test = read_split("image_folder", root, "test")
    cf = load_counterfactuals(root, test.files, test.images, test.layout)
    top, left, h, w = test.layout.regions["digit"]
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[top : top + h, left : left + w] = False
    assert torch.equal(cf.images[:, :, outside], test.images[:, :, outside])
    assert bool((cf.digit_labels != torch.tensor(arrays["digits"])).all())  # always another class
    mnist_test, mnist_labels = convert.load_mnist_idx(tiny_raw / "mnist", "test")
    patches = cf.images[:, 0, top : top + h, left : left + w].numpy()
    for patch, digit in zip(patches, cf.digit_labels.tolist()):  # a real MNIST test digit of that class
        matches = [i for i in range(len(mnist_test)) if np.array_equal(mnist_test[i], patch)]
        assert matches and all(mnist_labels[i] == digit for i in matches)
    # the stage's flip rate: how many predictions the counterfactual changes
    from pipeline.inference.predictor import Predictor

    predictor = Predictor.load(model)
    flipped = predictor.logits(cf.images).argmax(1)
    expected = float((flipped != result.predicted).double().mean())
    assert result.metrics["counterfactual"]["flip_rate"] == pytest.approx(expected, abs=1e-6)
    assert result.metrics["counterfactual"]["images"] == len(arrays["labels"])


def test_flip_metrics_on_a_hand_made_example():
    labels = torch.tensor([0, 1, 2, 3])
    predicted = torch.tensor([0, 1, 2, 9])
    cf = Counterfactuals(images=torch.zeros(4, 3, 1, 1, dtype=torch.uint8), digit_labels=torch.tensor([5, 5, 7, 7]))
    m = flip_metrics(predicted, torch.tensor([0, 5, 7, 9]), labels, cf)
    assert m == {"flip_rate": 0.5, "accuracy": 0.25, "predicted_digit_rate": 0.5, "images": 4}


def test_counterfactual_refuses_sources_that_do_not_redraw_the_images(tiny_composite, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_composite, root)
    test = read_split("image_folder", root, "test")
    images = test.images.clone()
    images[3, :, 0, 0] ^= 1  # one pixel of the photo differs from what the sources draw
    with pytest.raises(
        DataError,
        match=r"counterfactual_test.npz: the stored sources do not redraw 1 test image\(s\) \(first: test/00003.png\)",
    ):
        load_counterfactuals(root, test.files, images, test.layout)
    (root / "counterfactual_test.npz").unlink()
    assert load_counterfactuals(root, test.files, test.images, test.layout) is None


def test_flip_averaging_reports_the_single_view_accuracy_beside(composite, tmp_path):
    import dataclasses

    from pipeline.training.checkpoint import load_checkpoint

    root, arrays, model, out, result = composite
    assert "single_view_accuracy" not in result.metrics  # off: nothing to compare
    variant = tiny_variant(root)
    variant = dataclasses.replace(variant, train=dataclasses.replace(variant.train, eval_hflip=True))
    flipped_model = make_checkpoint(tmp_path / "tta.pt", variant, input_shape=(3, 64, 64))
    metrics = evaluate_checkpoint(flipped_model, tmp_path / "eval", occlusion=REGIONS).metrics
    loaded = load_checkpoint(flipped_model)
    test = read_split("image_folder", root, "test")
    with torch.no_grad():
        x = loaded.normalizer(test.images)
        single = loaded.model(x).argmax(1)
        averaged = (loaded.model(x).softmax(1) + loaded.model(x.flip(-1)).softmax(1)).argmax(1)
    labels = torch.tensor(arrays["labels"])
    assert metrics["single_view_accuracy"] == pytest.approx(float((single == labels).double().mean()), abs=1e-6)
    assert metrics["test_accuracy"] == pytest.approx(float((averaged == labels).double().mean()), abs=1e-6)
