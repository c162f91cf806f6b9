"""Evaluation of a trained checkpoint on its variant's test split (stage ``evaluate@<variant>``).

Everything needed to feed the model comes from the checkpoint (``models/<variant>.pt``):
the model, the normalizer measured at training time (never recomputed here), the data
format and path, the loss and the evaluation batch size. The same
:class:`~pipeline.inference.predictor.Predictor` serves this module, ``python -m pipeline predict`` and
the class-wise norms, so all see identical inputs.

Outputs in ``reports/<variant>/eval/`` (see :func:`evaluate_checkpoint`):

``metrics.json``          test accuracy and loss (the training criterion), per-class
                          precision / recall / F1 / support (scikit-learn), macro and
                          weighted averages; with ``train.eval_hflip`` also
                          ``single_view_accuracy`` (the image alone, no mirror); for
                          composite data also ``shortcut``, ``occlusion`` and
                          ``counterfactual`` (below). Nested dicts only, floats to 6 decimals.
``summary.json``          the few figures experiments compare (the stage's DVC metric):
                          ``<split>_macro_f1``; composite data also ``shortcut_rate``,
                          ``shortcut_gap_points``, ``digit_blanked_accuracy`` and
                          ``counterfactual_flip_rate``.
``predictions.csv``       ``index,label,predicted,confidence[,file]`` for DVC's confusion plot.
``confusion_matrix.png``  seaborn heatmap of the confusion matrix.
``first20.png``           the first 20 test images with the predicted class (DS 5220 Part 4.2).
``misclassified.png``     the first 20 misclassified test images, predicted and true (Part 4.3).

Shortcut analysis (CSE 849): decided by the data alone. When the dataset folder has a
``metadata.csv`` with the test images' digit labels (:func:`read_composite_metadata`),
accuracy is split by whether the digit agrees with the label, and the *shortcut rate*
is the fraction of disagreeing samples predicted as the digit's class. The occlusion
check re-evaluates with a region blanked (uint8 0 = black, before normalization), for
each region the variant's ``data.occlusion`` names (its box: the dataset's layout,
``dataset.json``). The counterfactual test (:mod:`pipeline.inference.counterfactual`) re-draws
each test image with a digit of another class and counts changed predictions
(``counterfactual``: ``flip_rate``, ``accuracy``, ``predicted_digit_rate``).

The course's own CSE 849 data has neither test labels nor digit labels. Then the
validation split is evaluated instead (keys ``val_accuracy``, ``val_loss``,
``val_examples``), the shortcut tests are skipped, and ``metrics.json`` says both in
``notes``: nothing fails and nothing is reported under a name it is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from pipeline.core.errors import DataError
from pipeline.core.io import check_outputs, output_set, rounded, write_csv, write_json
from pipeline.core.schemas import check
from pipeline.data.common.composite import check_box
from pipeline.data.readers import UNLABELLED, ImageSet, read_split
from pipeline.inference.counterfactual import flip_metrics, load_counterfactuals
from pipeline.inference.figures import plot_confusion, plot_first_predictions, plot_misclassified
from pipeline.inference.metrics import classification_metrics, confidences, shortcut_metrics
from pipeline.inference.predictor import Predictor
from pipeline.inference.schemas import Evaluation
from pipeline.plots import save_figure
from pipeline.training.setup import make_loss

if TYPE_CHECKING:
    from pipeline.core.config import DataConfig

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- numbers


def occlude(images_u8: torch.Tensor, box: Sequence[int], value: int = 0) -> torch.Tensor:
    """A copy of uint8 images ``(N, C, H, W)`` with rows ``top..top+height-1`` and columns
    ``left..left+width-1`` set to ``value`` (0 = black) in every channel."""
    top, left, height, width = check_box(box, images_u8.shape[-2], images_u8.shape[-1], "occlusion box")
    out = images_u8.clone()
    out[..., top : top + height, left : left + width] = value
    return out


# --------------------------------------------------------------------------- the stage


@dataclass
class EvalOutputs:
    metrics: dict
    predicted: torch.Tensor
    logits: torch.Tensor
    seconds: float


def comparable_summary(metrics: Mapping, split: str = "test") -> dict:
    """The figures of ``metrics`` that experiments compare (``dvc exp show``, ``dvc metrics
    diff``), flat: the macro F1 and, on composite data, the shortcut's three headline figures.
    Test accuracy and loss are not repeated: ``train@`` records them in ``metrics.json``."""
    summary = {f"{split}_macro_f1": metrics["macro"]["f1"]}
    if "shortcut" in metrics:
        summary["shortcut_rate"] = metrics["shortcut"]["shortcut_rate"]
        summary["shortcut_gap_points"] = metrics["shortcut"]["gap_points"]
    if "digit_blanked" in metrics.get("occlusion", {}):
        summary["digit_blanked_accuracy"] = metrics["occlusion"]["digit_blanked"]["accuracy"]
    if "counterfactual" in metrics:
        summary["counterfactual_flip_rate"] = metrics["counterfactual"]["flip_rate"]
    return summary


# what evaluate_checkpoint writes into its folder, as one set (pipeline.core.io.output_set)
OUTPUT_FILES = (
    "metrics.json",
    "summary.json",
    "predictions.csv",
    "confusion_matrix.png",
    "first20.png",
    "misclassified.png",
)


def _read_labelled_split(data: DataConfig, path: Path, variant_name: str) -> tuple[str, ImageSet, list[str]]:
    """The labelled split to evaluate: the test split, or the validation split (with a note)
    when the test images ship without labels (the course's CSE 849 zip)."""
    split, notes = "test", []
    test = read_split(data.format, path, split)
    if bool((test.labels == UNLABELLED).any()):
        if data.format != "image_folder":  # only image folders have a validation split of their own
            raise DataError(
                f"{path}: the test split has unlabelled images; evaluation needs labels "
                f"(use `python -m pipeline predict`)"
            )
        # The course's CSE 849 zip ships its test images without labels (the course grades
        # q1_test.txt): evaluate on the validation split and say so in every output.
        split = "val"
        test = read_split(data.format, path, split)
        notes.append(f"the test split of {path} is unlabelled: evaluated on the validation split")
        log.warning("%s: %s", variant_name, notes[-1])
    return split, test, notes


def _split_metrics(predictor: Predictor, test: ImageSet, split: str) -> tuple[dict, torch.Tensor, torch.Tensor, float]:
    """Accuracy, loss (the training criterion) and the per-class report on ``test``; with
    ``train.eval_hflip`` also the single-view accuracy. Returns metrics, logits, predictions, loss."""
    variant, classes = predictor.spec, predictor.loaded.classes
    logits = predictor.logits(test.images)
    predicted = logits.argmax(1)
    n = len(test.labels)
    loss = float(make_loss(variant.train.loss, variant.model.name, reduction="sum")(logits, test.labels)) / n
    report = classification_metrics(test.labels, predicted, len(classes))
    metrics: dict = {
        f"{split}_accuracy": report.pop("accuracy"),
        f"{split}_loss": rounded(loss),
        f"{split}_examples": n,
        "misclassified": int((predicted != test.labels).sum()),
        **report,
    }

    if variant.train.eval_hflip:  # what the mirror averaging adds, measured on the same images
        single = predictor.logits(test.images, hflip_average=False).argmax(1)
        metrics["single_view_accuracy"] = rounded((single == test.labels).double().mean())
    return metrics, logits, predicted, loss


def _occlusion_metrics(
    predictor: Predictor, test: ImageSet, regions: Sequence[str], reference_accuracy: float, variant_name: str
) -> dict:
    """Accuracy with each named region of the layout blanked, its change from ``reference_accuracy``
    in points, and how often the prediction is the digit's class."""
    occlusion = {}
    for name in regions:
        box = test.layout.box(name, f"variants.{variant_name}.data.occlusion")
        occluded = predictor.logits(occlude(test.images, box)).argmax(1)
        accuracy = rounded((occluded == test.labels).double().mean())
        occlusion[f"{name}_blanked"] = {
            "accuracy": accuracy,
            "change_points": rounded(100.0 * (accuracy - reference_accuracy)),
            "predicted_digit_rate": rounded((occluded == test.digit_labels).double().mean()),
        }
    return occlusion


def _composite_tests(
    predictor: Predictor,
    test: ImageSet,
    split: str,
    metrics: dict,
    predicted: torch.Tensor,
    regions: Sequence[str],
    notes: list[str],
) -> None:
    """Add the shortcut, occlusion and counterfactual tests to ``metrics`` when the data has
    digit labels and a layout (composite data); otherwise note that they were skipped."""
    variant_name = predictor.loaded.variant
    digits = test.digit_labels  # composite data: each image's MNIST digit (from metadata.csv)
    if (digits is None or test.layout is None) and regions:
        notes.append(
            f"no digit labels or layout for the {split} images (not a composite with metadata.csv and "
            f"dataset.json): shortcut, occlusion and counterfactual tests skipped"
        )
        log.warning("%s: %s", variant_name, notes[-1])
    if digits is None or test.layout is None:
        return
    metrics["shortcut"] = shortcut_metrics(test.labels, predicted, digits)
    metrics["occlusion"] = _occlusion_metrics(predictor, test, regions, metrics[f"{split}_accuracy"], variant_name)
    counterfactuals = None
    if split == "test" and test.root is not None:
        counterfactuals = load_counterfactuals(test.root, test.files, test.images, test.layout)
    if counterfactuals is not None:
        flipped = predictor.logits(counterfactuals.images).argmax(1)
        metrics["counterfactual"] = flip_metrics(predicted, flipped, test.labels, counterfactuals)
    log.info(
        "shortcut: agree acc %s, disagree acc %s, shortcut rate %s; occlusion %s; counterfactual %s",
        metrics["shortcut"]["agree_accuracy"],
        metrics["shortcut"]["disagree_accuracy"],
        metrics["shortcut"]["shortcut_rate"],
        {k: v["accuracy"] for k, v in metrics["occlusion"].items()},
        metrics.get("counterfactual"),
    )


def _prediction_rows(test: ImageSet, predicted: torch.Tensor, logits: torch.Tensor) -> list[dict]:
    """The rows of ``predictions.csv``: index, label, predicted class, confidence[, file]."""
    conf = confidences(logits)
    rows = []
    for i in range(len(test.labels)):
        row = {"index": i, "label": int(test.labels[i]), "predicted": int(predicted[i]), "confidence": rounded(conf[i])}
        if test.files is not None:
            row["file"] = test.files[i]
        rows.append(row)
    return rows


def _write_outputs(
    outputs: list[Path],
    variant_name: str,
    split: str,
    metrics: dict,
    rows: list[dict],
    test: ImageSet,
    predicted: torch.Tensor,
    classes: Sequence[str],
) -> None:
    """Write the evaluation's files as one set (``OUTPUT_FILES``, in that order)."""
    title = f"{variant_name}: {split} accuracy {metrics[f'{split}_accuracy']:.4f} (n={len(test.labels)})"
    with output_set(*outputs) as (metrics_json, summary_json, predictions_csv, confusion, first20, misclassified):
        write_json(metrics_json, check(metrics, Evaluation, f"{variant_name}/eval/metrics.json"))
        write_json(summary_json, comparable_summary(metrics, split))
        write_csv(predictions_csv, rows)
        save_figure(plot_confusion(test.labels, predicted, classes, title), confusion)
        save_figure(plot_first_predictions(test.images, predicted, test.labels, classes), first20)
        save_figure(plot_misclassified(test.images, predicted, test.labels, classes), misclassified)


def evaluate_checkpoint(
    model_path: str | Path,
    out_dir: str | Path,
    data_path: str | Path | None = None,
    occlusion: Sequence[str] | None = None,
    expected_variant: str | None = None,
) -> EvalOutputs:
    """Evaluate ``model_path`` on its variant's test split and write ``out_dir`` (module docstring).

    ``expected_variant``: the variant the caller names; a checkpoint of another variant is
    refused before anything is written.

    ``data_path`` overrides the dataset folder stored in the checkpoint; ``occlusion``
    (region names of the data's layout, used only for composite data) overrides the
    variant's ``data.occlusion`` stored in the checkpoint.
    """
    start = time.perf_counter()
    model_path, out_dir = Path(model_path), Path(out_dir)
    outputs = [out_dir / name for name in OUTPUT_FILES]
    check_outputs(outputs, {"--model": model_path})  # before any work: a read-only folder, a clash
    predictor = Predictor.load(model_path, variant=expected_variant)
    loaded, data = predictor.loaded, predictor.spec.data
    path = Path(data_path) if data_path is not None else Path(data.path)
    split, test, notes = _read_labelled_split(data, path, loaded.variant)

    metrics, logits, predicted, loss = _split_metrics(predictor, test, split)
    regions = list(data.occlusion if occlusion is None else occlusion)
    _composite_tests(predictor, test, split, metrics, predicted, regions, notes)
    rows = _prediction_rows(test, predicted, logits)

    if notes:
        metrics["notes"] = notes
    _write_outputs(outputs, loaded.variant, split, metrics, rows, test, predicted, loaded.classes)
    seconds = time.perf_counter() - start
    log.info(
        "%s: %s accuracy %.4f, loss %.4f, %d misclassified; wrote %s in %.1f s",
        loaded.variant,
        split,
        metrics[f"{split}_accuracy"],
        loss,
        metrics["misclassified"],
        out_dir,
        seconds,
    )
    return EvalOutputs(metrics=metrics, predicted=predicted, logits=logits, seconds=seconds)
