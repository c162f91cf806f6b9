"""A tiny CSE 849-style image-folder dataset and untrained checkpoints for it, written by tests.

``make_folder_dataset`` writes train/val class folders, a flat test folder, ``test_labels.csv``
and (optionally) ``metadata.csv`` with a digit label per image; ``tiny_variant`` is a
variant config reading it; ``make_checkpoint`` saves a seeded, untrained model of that
variant as the train stage would. Used by the predict, evaluation and analysis tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from pipeline.core.config import VariantConfig, build
from pipeline.models import create_model
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.normalizer import Normalizer

SIZE = 16  # CSE849CNN pools four times by 2: 16 -> 1
CLASSES = [str(i) for i in range(10)]
MEAN, STD = [0.45, 0.40, 0.35], [0.25, 0.20, 0.30]


def tiny_variant(
    data_path: Path, model: str = "cse849_cnn", normalize: dict | None = None, name: str = "tiny"
) -> VariantConfig:
    raw = {
        "seed": 0,
        "data": {
            "format": "image_folder",
            "path": str(data_path),
            "normalize": normalize or {"mode": "fixed", "mean": MEAN, "std": STD},
        },
        "model": {"name": model},
        "train": {
            "epochs": 1,
            "batch_size": 8,
            "optimizer": {"name": "sgd", "lr": 0.1},
            "loss": "cross_entropy",
            "eval_batch_size": 5,
        },
    }
    return build(VariantConfig, raw, "test", name=name)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_folder_dataset(root: Path, n_test: int = 23, size: int = SIZE, metadata: bool = True, seed: int = 0) -> dict:
    """A tiny CSE 849-style dataset: train/val class folders, a flat test folder, test_labels.csv
    and (optionally) metadata.csv with a digit label per image. Returns the test arrays."""
    rng = np.random.default_rng(seed)
    meta = []
    for split, per_class in (("train", 1), ("val", 2)):
        for c in CLASSES:
            for j in range(per_class):
                name = f"{c}/{j:03d}.png"
                write_png(root / split / name, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
                meta.append((split, name, int(c), int(rng.integers(0, 10)), 0, 0))
    labels = rng.integers(0, 10, n_test)
    digits = np.where(rng.random(n_test) < 0.5, labels, rng.integers(0, 10, n_test))
    images = rng.integers(0, 256, (n_test, size, size, 3), dtype=np.uint8)
    files = [f"{i:05d}.png" for i in range(n_test)]
    for f, image, y, d in zip(files, images, labels, digits):
        write_png(root / "test" / f, image)
        meta.append(("test", f, int(y), int(d), 0, 0))
    pd.DataFrame({"filename": files, "label": labels}).to_csv(root / "test_labels.csv", index=False)
    if metadata:
        cols = ["split", "filename", "label", "digit_label", "cifar_index", "mnist_index"]
        pd.DataFrame(meta, columns=cols).to_csv(root / "metadata.csv", index=False)
    return {"images": images, "labels": labels, "digits": digits, "files": files}


def make_checkpoint(
    path: Path, variant: VariantConfig, input_shape=(3, SIZE, SIZE), seed: int = 0, normalizer: Normalizer | None = None
) -> Path:
    torch.manual_seed(seed)
    model = create_model(variant.model.name, **variant.model.args).eval()
    normalizer = normalizer or Normalizer(MEAN, STD)
    save_checkpoint(path, variant, model, normalizer, input_shape, CLASSES)
    return path
