"""Predict a flat folder of images with a trained variant (CSE 849's ``q1_test.txt``).

    cnn-pipeline predict --variant cse849 --images data/composite/test --out reports/cse849/q1_test.txt
    cnn-pipeline predict --variant cse849 --images cse849_data.zip --out preds.csv --format csv --probabilities

``--images`` is a flat folder, or an image-folder dataset (a folder with ``test/``, its
parent, or its ``.zip``, see :func:`pipeline.data.readers.image_folder.dataset_root`)
whose ``test/`` folder is predicted.

Every image is read in sorted file-name order, checked against the model's input
size and channel count (a mismatch is an error naming the file), pushed through
exactly the evaluation preprocessing of :mod:`pipeline.inference.evaluation` (the checkpoint's
normalizer, no augmentation) and written as one predicted class index per line
(``--format index``, what CSE 849 asks for) or as a CSV of file, class index and class
name (``--format csv``), with one probability column per class on request: the
softmax of the model's outputs, the distribution its training loss reads them as.
A file that is not an image stops the run with its name, unless ``--skip-non-images``
is given: then each such file is logged and left out of the output.
The output file appears only when every image was predicted (atomic write).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from pipeline.core.config import DEFAULT_PARAMS
from pipeline.core.errors import DataError, PipelineError
from pipeline.core.io import check_outputs, write_text
from pipeline.core.params import load_all
from pipeline.data.common.imageio import decode_images
from pipeline.data.readers.image_folder import dataset_root, read_image_dir
from pipeline.inference.predictor import Predictor
from pipeline.training.setup import select_device

log = logging.getLogger(__name__)
PROBABILITY_DIGITS = 6  # enough to rank classes and sum to 1 within 1e-5


@dataclass
class Predictions:
    files: list[str]  # sorted by name
    logits: torch.Tensor  # (N, classes): the model's outputs
    classes: list[str]  # class names, index = class index

    @property
    def predicted(self) -> torch.Tensor:
        return self.logits.argmax(1)


def default_model_path(variant: str, models_dir: str | Path = "models") -> Path:
    return Path(models_dir) / f"{variant}.pt"


def check_variant_checkpoint(variant: str, model: Path, params: Path = DEFAULT_PARAMS) -> None:
    """A missing ``<models-dir>/<variant>.pt`` says which is wrong: the variant name or the training."""
    if model.is_file():
        return
    if Path(params).is_file():
        load_all(params).variant(variant)  # an unknown name is an error listing the variants
        raise FileNotFoundError(f"{model}: variant {variant!r} is not trained yet (dvc repro train@{variant})")
    raise FileNotFoundError(f"{model}: no checkpoint for variant {variant!r}")


def images_folder(path: str | Path) -> Path:
    """``path`` when it is a flat folder; the ``test/`` folder when it is a dataset (a zip, or a folder with sub-folders)."""
    path = Path(path)
    if path.is_file() or (path.is_dir() and any(e.is_dir() and not e.name.startswith(".") for e in path.iterdir())):
        return dataset_root(path) / "test"
    return path


def _is_image(path: Path) -> bool:
    """Whether PIL recognises the file's format (its header only; the pixels are decoded later)."""
    try:
        with Image.open(path):
            return True
    except UnidentifiedImageError:
        return False


def read_images_skipping(folder: Path, size: tuple[int, int], channels: int) -> tuple[torch.Tensor, list[str]]:
    """The images of a flat folder in sorted name order, leaving out (and logging) every file
    that is not an image. A broken image or one of the wrong size is still an error."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name)
    files = []
    for entry in entries:
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
        except OSError as exc:  # a symbolic link loop (ELOOP) names no image either
            log.warning("skipped %s: %s", entry.path, exc.strerror)
            continue
        if is_dir:
            raise DataError(f"{Path(entry.path)}: unexpected sub-folder in a flat image folder")
        if not is_file:  # a named pipe or socket: opening it could block
            log.warning("skipped %s: not a regular file", entry.path)
        elif not _is_image(Path(entry.path)):
            log.warning("skipped %s: not an image file", entry.path)
        else:
            files.append(entry.name)
    if not files:
        raise DataError(f"{folder}: no image files")
    paths = [folder / f for f in files]
    return torch.from_numpy(decode_images(paths, [str(p) for p in paths], size, channels, channels_first=True)), files


def predict_images(
    model_path: str | Path,
    images_dir: str | Path,
    variant_name: str | None = None,
    skip_non_images: bool = False,
    device: str | None = None,
) -> Predictions:
    """Every image of ``images_dir`` (:func:`images_folder`) through ``model_path``'s model, sorted by
    file name. ``variant_name``: the variant the caller names (another's checkpoint is refused)."""
    images_dir = images_folder(images_dir)
    predictor = Predictor.load(Path(model_path), variant=variant_name, device=select_device(device))
    channels, height, width = predictor.loaded.input_shape
    if skip_non_images:
        images, files = read_images_skipping(images_dir, (height, width), channels)
    else:
        images, files = read_image_dir(images_dir, size=(height, width), channels=channels)
    return Predictions(files, predictor.logits(images).cpu(), list(predictor.loaded.classes))


def predict_folder(
    model_path: str | Path, images_dir: str | Path, variant_name: str | None = None
) -> tuple[list[str], torch.Tensor]:
    """``(file names, predicted class indices)``: :func:`predict_images`, its argmax."""
    result = predict_images(model_path, images_dir, variant_name)
    return result.files, result.predicted


def format_predictions(predicted: torch.Tensor) -> str:
    """One class index per line, newline-terminated (the q1_test.txt format)."""
    return "".join(f"{int(p)}\n" for p in predicted)


def format_csv(result: Predictions, probabilities: bool = False) -> str:
    """``file,index,class`` per image (and ``p_<class>`` columns, the softmax of the outputs)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "index", "class"] + ([f"p_{name}" for name in result.classes] if probabilities else []))
    probs = result.logits.double().softmax(1) if probabilities else None
    for i, (name, index) in enumerate(zip(result.files, result.predicted.tolist())):
        row = [name, index, result.classes[index]]
        if probs is not None:
            row += [f"{p:.{PROBABILITY_DIGITS}f}" for p in probs[i].tolist()]
        writer.writerow(row)
    return buffer.getvalue()


def run_predict(
    model_path: str | Path,
    images_dir: str | Path,
    out: str | Path,
    variant_name: str | None = None,
    output: str = "index",
    probabilities: bool = False,
    skip_non_images: bool = False,
    device: str | None = None,
) -> list[int]:
    """Predict ``images_dir`` with ``model_path`` and write ``out`` (``output``: ``index`` or ``csv``);
    returns the predicted class indices.

    ``out`` is checked before any work: it must not be a folder, nor lie in the images'
    folder (the next prediction would read it as an image).
    """
    start = time.perf_counter()
    out, folder = Path(out), images_folder(images_dir).resolve()
    if out.is_dir():
        raise IsADirectoryError(f"{out}: is a directory; --out must be a file path")
    if out.resolve() == folder or folder in out.resolve().parents:
        raise PipelineError(f"{out}: inside the images folder {images_dir}; write the predictions elsewhere")
    check_outputs([out], {"--model": model_path, "--images": images_dir})  # nor an input, nor /dev/null
    result = predict_images(model_path, images_dir, variant_name, skip_non_images, device)
    text = format_csv(result, probabilities) if output == "csv" else format_predictions(result.predicted)
    write_text(out, text)
    counts = torch.bincount(result.predicted, minlength=len(result.classes)).tolist()
    log.info(
        "predicted %d images from %s with %s -> %s in %.1f s (per class: %s)",
        len(result.files),
        images_dir,
        model_path,
        out,
        time.perf_counter() - start,
        ", ".join(f"{name} {n}" for name, n in zip(result.classes, counts)),
    )
    return result.predicted.tolist()
