"""Predict a flat folder of images with a trained variant (CSE 849's ``q1_test.txt``).

    python -m pipeline predict --variant cse849 --images data/composite/test --out reports/cse849/q1_test.txt
    python -m pipeline predict --variant cse849 --images cse849_data.zip --out q1_test.txt

``--images`` is a flat folder, or an image-folder dataset (a folder with ``test/``, its
parent, or its ``.zip``, see :func:`pipeline.data.readers.image_folder.dataset_root`)
whose ``test/`` folder is predicted.

Every image is read in sorted file-name order, checked against the model's input
size and channel count (a mismatch is an error naming the file), pushed through
exactly the evaluation preprocessing of :mod:`pipeline.evaluation` (the checkpoint's
normalizer, no augmentation) and written as one predicted class index per line.
The output file appears only when every image was predicted (atomic write).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from pipeline.data.readers.image_folder import dataset_root, read_image_dir
from pipeline.errors import PipelineError
from pipeline.io import write_text
from pipeline.predictor import Predictor

log = logging.getLogger(__name__)


def default_model_path(variant: str, models_dir: str | Path = "models") -> Path:
    return Path(models_dir) / f"{variant}.pt"


def images_folder(path: str | Path) -> Path:
    """``path`` when it is a flat folder; the ``test/`` folder when it is a dataset (a zip, or a folder with sub-folders)."""
    path = Path(path)
    if path.is_file() or (path.is_dir() and any(e.is_dir() and not e.name.startswith(".") for e in path.iterdir())):
        return dataset_root(path) / "test"
    return path


def predict_folder(
    model_path: str | Path, images_dir: str | Path, variant_name: str | None = None
) -> tuple[list[str], torch.Tensor]:
    """``(file names, predicted class indices)`` for every image of ``images_dir`` (:func:`images_folder`),
    sorted by name. ``variant_name``: the variant the caller names (another's checkpoint is refused)."""
    images_dir = images_folder(images_dir)
    model_path = Path(model_path)
    predictor = Predictor.load(model_path, variant=variant_name)
    channels, height, width = predictor.loaded.input_shape
    images, files = read_image_dir(images_dir, size=(height, width), channels=channels)
    return files, predictor.logits(images).argmax(1)


def format_predictions(predicted: torch.Tensor) -> str:
    """One class index per line, newline-terminated (the q1_test.txt format)."""
    return "".join(f"{int(p)}\n" for p in predicted)


def run_predict(
    model_path: str | Path, images_dir: str | Path, out: str | Path, variant_name: str | None = None
) -> list[int]:
    """Predict ``images_dir`` with ``model_path`` and write ``out``; returns the predictions.

    ``out`` is checked before any work: it must not be a folder, nor lie in the images'
    folder (the next prediction would read it as an image).
    """
    start = time.perf_counter()
    out, folder = Path(out), images_folder(images_dir).resolve()
    if out.is_dir():
        raise IsADirectoryError(f"{out}: is a directory; --out must be a file path")
    if out.resolve() == folder or folder in out.resolve().parents:
        raise PipelineError(f"{out}: inside the images folder {images_dir}; write the predictions elsewhere")
    files, predicted = predict_folder(model_path, images_dir, variant_name)
    write_text(out, format_predictions(predicted))
    counts = torch.bincount(predicted, minlength=1).tolist()
    log.info(
        "predicted %d images from %s with %s -> %s in %.1f s (per class: %s)",
        len(files),
        images_dir,
        model_path,
        out,
        time.perf_counter() - start,
        counts,
    )
    return predicted.tolist()
