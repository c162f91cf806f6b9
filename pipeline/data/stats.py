"""Dataset statistics and figures (stage ``stats``), written to ``reports/data/``.

MNIST is read from the Kaggle-style CSVs, as TDM 40200 reads it:

* ``mnist_head.txt`` -- ``data.shape`` and ``data.head()`` exactly as pandas prints them
  in a notebook (TDM Q1; pandas' non-terminal defaults: 20 columns, 80 characters wide);
* ``mnist_class_distribution.png`` -- examples per digit, train and test (TDM Q2);
* ``mnist_first5.png`` -- the first five training images with labels (TDM Q2);
* ``mnist_random20.png`` -- 20 random training images (DS 5220 Part 0), seeded by ``stats.seed``;
* pixel mean/std over all training pixels in [0, 1], computed as DS 5220 does
  (``data.double().mean() / 255``, ``data.double().std() / 255``): 0.1307 / 0.3081.

The Practical 5 npz files are read with their reader: the arrays' shapes as the handout's Q1
prints them and the first training labels (what its Q3.1 turns into one-hot rows).

The composite dataset (CSE 849) is read with the same reader the training uses:

* per-channel mean/std of the train split in [0, 1] (the normalisation the training uses);
* the label-agreement rate (digit label == image label) per split from ``metadata.csv``;
* ``composite_samples.png`` -- random samples of each split captioned with class and digit.

``stats.json`` holds the numbers as nested dicts (``dvc metrics show`` flattens them to
``mnist.train.mean``, ``composite.train.mean.r``, ...), floats rounded to 6 decimals,
so the same data gives the same bytes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from pipeline.core.io import rounded, write_json, write_text
from pipeline.data.common.composite import read_composite_metadata
from pipeline.data.common.formats import CSV_NAMES, NPZ_NAMES
from pipeline.data.readers import ImageSet, read_split
from pipeline.data.readers.mnist_csv import frame_to_imageset, load_mnist_csv_frame
from pipeline.data.readers.mnist_npz import read_mnist_npz
from pipeline.plots import image_grid, save_figure
from pipeline.training.normalizer import channel_stats

log = logging.getLogger(__name__)

CHANNEL_NAMES = ("r", "g", "b")
SAMPLES_PER_SPLIT = 6  # columns of composite_samples.png

OUTPUT_FILES = (
    "stats.json",
    "mnist_head.txt",
    "mnist_class_distribution.png",
    "mnist_first5.png",
    "mnist_random20.png",
    "composite_samples.png",
)


# --------------------------------------------------------------------------- numbers


def class_counts(labels: torch.Tensor | np.ndarray, names: Sequence[str]) -> dict[str, int]:
    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0], minlength=len(names))
    return {name: int(counts[i]) for i, name in enumerate(names)}


def mnist_split_stats(data: ImageSet) -> dict[str, Any]:
    (mean,), (std,) = channel_stats(data.images)
    return {
        "count": len(data),
        "mean": rounded(mean),
        "std": rounded(std),
        "class_counts": class_counts(data.labels, data.classes),
    }


def head_text(frame: pd.DataFrame) -> str:
    """``print(data.shape); print(data.head())`` as in a notebook (pandas' non-terminal display defaults)."""
    with pd.option_context("display.max_columns", 20, "display.width", 80, "display.max_colwidth", 50):
        return f"{frame.shape}\n{frame.head()}\n"


def label_agreement(metadata: pd.DataFrame, split: str) -> float | None:
    rows = metadata[metadata["split"] == split]
    if rows.empty:
        return None
    return float((rows["label"] == rows["digit_label"]).mean())


# --------------------------------------------------------------------------- figures


def plot_class_distribution(train: ImageSet, test: ImageSet, path: Path) -> None:
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, (name, data) in zip(fig.subplots(1, 2), (("training", train), ("test", test))):
        counts = class_counts(data.labels, data.classes)
        ax.bar(range(len(counts)), list(counts.values()), color="tab:blue", tick_label=list(counts))
        ax.set_title(f"MNIST {name} set: examples per digit (n={len(data)})")
        ax.set_xlabel("digit")
        ax.set_ylabel("number of examples")
    save_figure(fig, path)


# --------------------------------------------------------------------------- stage


def mnist_report(csv_dir: Path, out_dir: Path, seed: int) -> dict[str, Any]:
    """MNIST numbers + head text + figures from the Kaggle CSVs."""
    frame = load_mnist_csv_frame(csv_dir / CSV_NAMES["train"])
    write_text(out_dir / "mnist_head.txt", head_text(frame))
    train = frame_to_imageset(frame)
    del frame
    test = read_split("mnist_csv", csv_dir, "test")
    plot_class_distribution(train, test, out_dir / "mnist_class_distribution.png")
    first = image_grid(
        train.images[:5], [f"Label: {int(y)}" for y in train.labels[:5]], cols=5, panel_size=2.0, fontsize=12
    )
    save_figure(first, out_dir / "mnist_first5.png")
    picks = np.random.default_rng(seed).choice(len(train), size=min(20, len(train)), replace=False)
    titles = [f"Label: {int(train.labels[i])}" for i in picks]  # DS 5220 Part 0's grid: 4 x 5, titles at 14 pt
    save_figure(image_grid(train.images[picks], titles, cols=5, fontsize=14), out_dir / "mnist_random20.png")
    return {"train": mnist_split_stats(train), "test": mnist_split_stats(test)}


NPZ_FIRST_LABELS = 30  # the handout's Q3.1 printout shows a batch of 30 labels


def npz_report(npz_dir: Path) -> dict[str, Any]:
    """Practical 5 Q1: ``train_X``, ``train_Y``, ``test_X``, ``test_Y`` shapes as stored in the npz
    files (``x`` (N, 784), ``y`` (N,), which the reader checks), and the first training labels."""
    result: dict[str, Any] = {}
    for split in ("train", "test"):
        data = read_mnist_npz(npz_dir / NPZ_NAMES[split])
        result[split] = {"x_shape": [len(data), int(data.images[0].numel())], "y_shape": [len(data)]}
        if split == "train":
            result[split]["first_labels"] = data.labels[:NPZ_FIRST_LABELS].tolist()
    return result


def composite_report(composite_dir: Path, out_dir: Path, seed: int) -> dict[str, Any]:
    """Composite numbers (train normalisation, label agreement) + captioned sample grid."""
    from pipeline.data.common.imageio import decode_image

    train = read_split("image_folder", composite_dir, "train")
    metadata = read_composite_metadata(composite_dir)
    means, stds = channel_stats(train.images)
    channels = CHANNEL_NAMES if len(means) == 3 else tuple(str(c) for c in range(len(means)))
    result: dict[str, Any] = {
        "train": {
            "count": len(train),
            "mean": {c: rounded(m) for c, m in zip(channels, means)},
            "std": {c: rounded(s) for c, s in zip(channels, stds)},
            "class_counts": class_counts(train.labels, train.classes),
        }
    }
    rng = np.random.default_rng(seed)
    if metadata is None:
        log.warning("%s: no metadata.csv; label agreement and digit captions are skipped", composite_dir)
        picks = sorted(rng.choice(len(train), size=min(SAMPLES_PER_SPLIT, len(train)), replace=False))
        captions = [f"train: {train.classes[int(train.labels[i])]}" for i in picks]
        grid = image_grid(train.images[picks], captions, cols=SAMPLES_PER_SPLIT, panel_size=2.0)
        save_figure(grid, out_dir / "composite_samples.png")
        return result
    sample_images, captions = [], []
    for split in ("train", "val", "test"):
        rows = metadata[metadata["split"] == split]
        entry = result.setdefault(split, {})
        agreement = label_agreement(metadata, split)
        if agreement is not None:
            entry["label_agreement"] = rounded(agreement)
        entry.setdefault("count", len(rows))
        if split != "train":
            entry["class_counts"] = class_counts(rows["label"].to_numpy(), train.classes)
        for i in sorted(rng.choice(len(rows), size=min(SAMPLES_PER_SPLIT, len(rows)), replace=False)):
            row = rows.iloc[i]
            path = composite_dir / split / row["filename"]
            sample_images.append(torch.from_numpy(decode_image(path, str(path)).transpose(2, 0, 1).copy()))
            captions.append(f"{split}: {train.classes[row['label']]}\ndigit {row['digit_label']}")
    if sample_images:
        grid = image_grid(torch.stack(sample_images), captions, cols=SAMPLES_PER_SPLIT, panel_size=2.0)
        save_figure(grid, out_dir / "composite_samples.png")
    return result


def run_stats(
    csv_dir: str | os.PathLike[str],
    composite_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    seed: int,
    npz_dir: str | os.PathLike[str] = "data/mnist_npz",
) -> dict[str, Any]:
    """Write every report file of the stage; return the numbers written to ``stats.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    mnist = mnist_report(Path(csv_dir), out_dir, seed)
    log.info("MNIST statistics and figures in %.1f s", time.perf_counter() - start)
    start = time.perf_counter()
    composite = composite_report(Path(composite_dir), out_dir, seed)
    log.info("composite statistics and figures in %.1f s", time.perf_counter() - start)
    stats = {"mnist": mnist, "mnist_npz": npz_report(Path(npz_dir)), "composite": composite}
    write_json(out_dir / "stats.json", stats)
    return stats
