"""Converting the raw datasets into the formats the assignments start from.

MNIST -> Kaggle-style CSV (TDM 40200)
    ``mnist_train.csv`` (60,000 rows) and ``mnist_test.csv`` (10,000 rows), as in
    kaggle.com/datasets/oddrationale/mnist-in-csv: header
    ``label,1x1,1x2,...,1x28,2x1,...,28x28`` (pixel ``RxC`` = row R, column C, 1-based),
    then one line per image: the label, then the 784 pixels row-major, integers 0-255.

MNIST -> npz (Practical 5)
    ``train.npz`` / ``test.npz``, each with two arrays:
    ``x`` uint8 (N, 784): the 28x28 pixels row-major, 0-255;  ``y`` uint8 (N,): the digit 0-9.
    The zip is written here with a fixed entry date (``numpy.savez`` stamps the current
    time), so the file bytes depend on the data only.

CIFAR-10 + MNIST -> composite dataset (CSE 849 Project 2)
    RGB canvas, black background, with the CIFAR-10 image (32x32) and an MNIST digit
    (28x28, white on black, copied to the three channels) pasted where ``composite.layout``
    says (:mod:`pipeline.data.common.composite`; today 64x64, the image at rows/cols 0-31,
    the digit at rows/cols 36-63). The label is the CIFAR-10 class.

    split  CIFAR-10 images                    digits drawn from
    train  train 0 .. train_size-1 (<45,000)  MNIST train 0-49,999
    val    train 45,000 .. +val_size-1        MNIST train 50,000-59,999
    test   test 0 .. test_size-1              MNIST test

    Shortcut: in train the digit's label equals the image label for exactly
    ``round(train_agreement * train_size)`` samples chosen at random; every other train
    sample gets a digit of a uniformly chosen *other* class. In val and test the digit
    label is uniform over the 10 classes, independent of the image. The digit image of
    the required class is drawn at random (with replacement) from the split's MNIST
    pool. All randomness comes from ``composite.seed`` (one independent stream per
    split, so changing one split's size leaves the other splits unchanged).
    CIFAR indices follow the archive's index order (see ``pipeline.data.cifar``: the
    official order for the python archive, the canonical class-interleaved order for
    the JPEG mirror).

    Layout (as the course's zip)::

        train/<class>/<NNNNN>.png   val/<class>/<NNNNN>.png   test/<NNNNN>.png
        test_labels.csv   filename,label                 (filename relative to test/)
        metadata.csv      split,filename,label,digit_label,cifar_index,mnist_index
        dataset.json      sizes, seed, layout, agreement counts, CIFAR format and index order

    ``NNNNN`` is the sample's index within its split; class folders are the CIFAR-10
    class names, which sort alphabetically in label order (ImageFolder index = label).
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.config import ConfigError
from pipeline.core.errors import DataError
from pipeline.core.io import atomic_path, write_json
from pipeline.core.params import CompositeConfig
from pipeline.data import cifar as cifar_mod
from pipeline.data.common.composite import Layout
from pipeline.data.common.decoded import write_decoded
from pipeline.data.common.formats import (
    COMPOSITE_SPLITS,
    COUNTERFACTUAL,
    CSV_NAMES,
    METADATA,
    METADATA_COLUMNS,
    MNIST_PREFIX,
    NPZ_NAMES,
    RAW_CIFAR,
    RAW_MNIST,
    TEST_LABELS,
    csv_columns,
    mnist_idx_path,
)
from pipeline.data.common.idx import read_idx
from pipeline.data.common.imageio import WORKERS, encode_png, map_chunks

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- MNIST from IDX


def load_mnist_idx(raw_dir: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels uint8 (N,))`` of one split from the raw IDX files."""
    images = read_idx(mnist_idx_path(raw_dir, split, "images"), "images")
    labels_path = mnist_idx_path(raw_dir, split, "labels")
    labels = read_idx(labels_path, "labels")
    if len(images) != len(labels):
        raise DataError(f"{labels_path.parent}: {split} split has {len(images)} images but {len(labels)} labels")
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is outside 0-9")
    return images, labels


# --------------------------------------------------------------------------- Kaggle CSV


def _cell_table(terminator: bytes) -> tuple[np.ndarray, np.ndarray]:
    table = np.zeros((256, 4), dtype=np.uint8)
    lengths = np.zeros(256, dtype=np.int64)
    for value in range(256):
        cell = str(value).encode() + terminator
        table[value, : len(cell)] = np.frombuffer(cell, dtype=np.uint8)
        lengths[value] = len(cell)
    return table, lengths


_COMMA_CELLS, _CELL_LENGTHS = _cell_table(b",")
_NEWLINE_CELLS, _ = _cell_table(b"\n")


def csv_body(table: np.ndarray) -> bytes:
    """CSV lines of a uint8 ``(n, k)`` table, vectorised (about 50x faster than ``DataFrame.to_csv``).

    Every value becomes its decimal digits plus ``,`` (``\\n`` after the last column),
    gathered from a 256-entry lookup table into fixed 4-byte cells; a mask keeps the
    used bytes of each cell, in row-major order.
    """
    table = np.ascontiguousarray(table, dtype=np.uint8)
    cells = _COMMA_CELLS[table]
    cells[:, -1] = _NEWLINE_CELLS[table[:, -1]]
    mask = np.arange(4) < _CELL_LENGTHS[table][..., None]
    return cells[mask].tobytes()


def write_mnist_csv(path: Path, images: np.ndarray, labels: np.ndarray, chunk_rows: int = 10_000) -> None:
    """Write one Kaggle-style MNIST CSV (header + one line per image)."""
    n, rows, cols = images.shape
    flat = images.reshape(n, rows * cols)
    with open(path, "wb") as out:
        out.write((",".join(csv_columns(rows, cols)) + "\n").encode())
        for start in range(0, n, chunk_rows):
            block = np.column_stack([labels[start : start + chunk_rows], flat[start : start + chunk_rows]])
            out.write(csv_body(block))


# --------------------------------------------------------------------------- npz

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


def save_npz_deterministic(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Like ``numpy.savez_compressed`` but with a fixed entry date, so equal data gives equal bytes.

    Readable with ``numpy.load``; entries are ``<key>.npy`` in the given key order.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)


def convert_mnist(
    raw_dir: str | os.PathLike[str], csv_dir: str | os.PathLike[str], npz_dir: str | os.PathLike[str]
) -> dict[str, int]:
    """Write the Kaggle CSVs and the Practical 5 npz files from the raw IDX files; return counts."""
    data = {split: load_mnist_idx(Path(raw_dir) / RAW_MNIST, split) for split in MNIST_PREFIX}
    with atomic_path(csv_dir) as tmp:
        tmp.mkdir()
        for split, (images, labels) in data.items():
            log.info("writing %s (%d rows)", CSV_NAMES[split], len(labels))
            write_mnist_csv(tmp / CSV_NAMES[split], images, labels)
    with atomic_path(npz_dir) as tmp:
        tmp.mkdir()
        for split, (images, labels) in data.items():
            log.info("writing %s", NPZ_NAMES[split])
            save_npz_deterministic(tmp / NPZ_NAMES[split], {"x": images.reshape(len(images), -1), "y": labels})
    return {split: len(labels) for split, (_, labels) in data.items()}


# --------------------------------------------------------------------------- composite

SPLITS = COMPOSITE_SPLITS


@dataclass(frozen=True)
class CompositeSpec:
    """Which samples ``convert_composite`` builds (where they are drawn is the :class:`Layout`);
    the first five fields are ``composite.*`` in params.yaml."""

    seed: int
    train_size: int = 45_000
    val_size: int = 5_000
    test_size: int = 10_000
    train_agreement: float = 0.64
    cifar_val_start: int = 45_000  # CIFAR-10 train index where val begins (train uses 0..start-1)
    mnist_val_start: int = 50_000  # MNIST train index where the val digit pool begins

    @classmethod
    def from_config(cls, cfg: CompositeConfig) -> CompositeSpec:
        """The ``composite`` block of params.yaml (checked by :func:`pipeline.core.params.load_all`)."""
        return cls(
            seed=cfg.seed,
            train_size=cfg.train_size,
            val_size=cfg.val_size,
            test_size=cfg.test_size,
            train_agreement=cfg.train_agreement,
        )


def _draw_digits(
    rng: np.random.Generator, digit_labels: np.ndarray, pool: np.ndarray, mnist_labels: np.ndarray, what: str
) -> np.ndarray:
    """For each wanted digit class, a random index (with replacement) from ``pool`` with that label."""
    chosen = np.empty(len(digit_labels), dtype=np.int64)
    pool_labels = mnist_labels[pool]
    for digit in range(10):
        wanted = np.flatnonzero(digit_labels == digit)
        if wanted.size == 0:
            continue
        candidates = pool[pool_labels == digit]
        if candidates.size == 0:
            raise DataError(f"{what}: no digit {digit} in the MNIST pool")
        chosen[wanted] = candidates[rng.integers(0, candidates.size, size=wanted.size)]
    return chosen


def _check_plan_sizes(spec: CompositeSpec, n_cifar_train: int, n_cifar_test: int, n_mnist_train: int) -> None:
    """The requested split sizes must fit the CIFAR-10 images reserved for them, and MNIST
    train must leave digits for both train and val."""
    if spec.train_size > spec.cifar_val_start:
        raise ConfigError(
            f"composite.train_size: {spec.train_size} exceeds the {spec.cifar_val_start} CIFAR-10 train images reserved for train"
        )
    if spec.cifar_val_start + spec.val_size > n_cifar_train:
        raise ConfigError(
            f"composite.val_size: {spec.val_size} exceeds the {n_cifar_train - spec.cifar_val_start} CIFAR-10 train images reserved for val"
        )
    if spec.test_size > n_cifar_test:
        raise ConfigError(f"composite.test_size: {spec.test_size} exceeds the {n_cifar_test} CIFAR-10 test images")
    if not 0 < spec.mnist_val_start < n_mnist_train:
        raise DataError(f"MNIST train has {n_mnist_train} images; the composite needs more than {spec.mnist_val_start}")


def _plan_split(
    spec: CompositeSpec,
    split_no: int,
    split: str,
    cifar_index: np.ndarray,
    cifar_labels: np.ndarray,
    pool: np.ndarray,
    mnist_labels: np.ndarray,
) -> pd.DataFrame:
    """One split's rows of the metadata table, drawn from a stream of its own (``[seed, split_no]``),
    so the size of one split never changes the draws of another."""
    rng = np.random.default_rng([spec.seed, split_no])
    n = len(cifar_index)
    labels = cifar_labels[cifar_index].astype(np.int64)
    if split == "train":
        agree = np.zeros(n, dtype=bool)
        agree[rng.permutation(n)[: round(spec.train_agreement * n)]] = True
        other = (labels + rng.integers(1, 10, size=n)) % 10  # uniform over the 9 other classes
        digit_labels = np.where(agree, labels, other)
    else:
        digit_labels = rng.integers(0, 10, size=n)
    mnist_index = _draw_digits(rng, digit_labels, pool, mnist_labels, f"composite {split}")
    width = max(5, len(str(max(n - 1, 0))))
    names = [f"{i:0{width}d}.png" for i in range(n)]
    if split != "test":
        names = [f"{cifar_mod.CLASSES[y]}/{name}" for y, name in zip(labels, names)]
    return pd.DataFrame(
        {
            "split": split,
            "filename": names,
            "label": labels,
            "digit_label": digit_labels.astype(np.int64),
            "cifar_index": cifar_index.astype(np.int64),
            "mnist_index": mnist_index,
        },
        columns=METADATA_COLUMNS,
    )


def plan_composite(
    spec: CompositeSpec,
    cifar_train_labels: np.ndarray,
    cifar_test_labels: np.ndarray,
    mnist_train_labels: np.ndarray,
    mnist_test_labels: np.ndarray,
) -> pd.DataFrame:
    """Decide every sample (which CIFAR image, which digit) -> the metadata table, in split order."""
    n_cifar_train, n_mnist_train = len(cifar_train_labels), len(mnist_train_labels)
    _check_plan_sizes(spec, n_cifar_train, len(cifar_test_labels), n_mnist_train)
    sources = {
        "train": (np.arange(spec.train_size), cifar_train_labels, np.arange(spec.mnist_val_start), mnist_train_labels),
        "val": (
            spec.cifar_val_start + np.arange(spec.val_size),
            cifar_train_labels,
            np.arange(spec.mnist_val_start, n_mnist_train),
            mnist_train_labels,
        ),
        "test": (np.arange(spec.test_size), cifar_test_labels, np.arange(len(mnist_test_labels)), mnist_test_labels),
    }
    frames = [_plan_split(spec, split_no, split, *sources[split]) for split_no, split in enumerate(SPLITS)]
    return pd.concat(frames, ignore_index=True)


def plan_counterfactuals(
    spec: CompositeSpec, test_digit_labels: np.ndarray, mnist_test_labels: np.ndarray
) -> np.ndarray:
    """For each test sample (in plan order), the MNIST test index of a digit of another class
    (class uniform over the nine others, image uniform within the class), from a stream of
    ``composite.seed`` of its own, so the composites themselves do not change. Drawn here, once
    per dataset, so every model is tested on the same counterfactual images."""
    rng = np.random.default_rng([spec.seed, len(SPLITS)])
    other = (test_digit_labels + rng.integers(1, 10, size=len(test_digit_labels))) % 10
    pool = np.arange(len(mnist_test_labels))
    return _draw_digits(rng, other, pool, mnist_test_labels, "composite counterfactual")


def hide_test_order(
    spec: CompositeSpec, plan: pd.DataFrame, counterfactual_index: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """Put the test split (whose labels a grader keeps hidden) in a random order, then name its
    files ``00000.png``... in that order, so that no function of a file's name or position
    predicts its label. CIFAR-10's order is class-interleaved (image ``i`` has class ``i % 10``
    in the JPEG mirror); naming in that order gave every label away.

    Only the order changes: each test image keeps its CIFAR image, digit and counterfactual
    digit (``counterfactual_index`` is in plan order and is permuted with the rows). The
    permutation is a stream of ``composite.seed`` of its own, so the draws of the splits do not
    change. Train and val keep their order: their labels are their class folders by design."""
    is_test = (plan["split"] == "test").to_numpy()
    rows = np.flatnonzero(is_test)
    if len(counterfactual_index) != len(rows):
        raise DataError(f"{len(counterfactual_index)} counterfactual digits for {len(rows)} test images")
    order = np.random.default_rng([spec.seed, len(SPLITS) + 1]).permutation(len(rows))
    test = plan.iloc[rows[order]].reset_index(drop=True)
    test["filename"] = plan["filename"].to_numpy()[rows]  # names in order: 00000.png, 00001.png, ...
    hidden = pd.concat([plan[~is_test], test], ignore_index=True)
    return hidden, counterfactual_index[order]


def write_composite(
    out_dir: str | os.PathLike[str],
    plan: pd.DataFrame,
    cifar: cifar_mod.Cifar10,
    mnist_train: np.ndarray,
    mnist_test: np.ndarray,
    info: Mapping[str, Any],
    layout: Layout,
    counterfactual: Mapping[str, np.ndarray],
    workers: int = WORKERS,
) -> None:
    """Render and write every planned sample plus the CSV/JSON/npz side files, atomically."""
    with atomic_path(out_dir) as tmp:
        for split in SPLITS:
            (tmp / split).mkdir(parents=True)
            if split != "test":
                for name in cifar_mod.CLASSES:  # all ten, even if a small split leaves one empty
                    (tmp / split / name).mkdir()
        split_col = plan["split"].to_numpy()
        file_col = plan["filename"].to_numpy()
        cifar_col = plan["cifar_index"].to_numpy()
        mnist_col = plan["mnist_index"].to_numpy()

        # Every composite is kept in memory too, to store each split decoded (the readers load
        # that instead of decoding the PNGs again; PNG is lossless, so it is the same pixels).
        rendered = np.empty((len(plan), *layout.canvas, 3), dtype=np.uint8)

        def work(start: int, stop: int) -> None:
            for i in range(start, stop):
                test = split_col[i] == "test"
                image = (cifar.test_images if test else cifar.train_images)[cifar_col[i]]
                digit = (mnist_test if test else mnist_train)[mnist_col[i]]
                rendered[i] = layout.render(image, digit)
                encode_png(rendered[i], tmp / split_col[i] / file_col[i])

        map_chunks(work, len(plan), workers, chunks_per_worker=8)
        for split in SPLITS:
            rows = np.flatnonzero(split_col == split)
            files = file_col[rows].tolist()  # relative to the split folder: <class>/<file>, or <file> for test
            # in the readers' listing order (sorted names), so loading needs no reordering
            order = sorted(range(len(files)), key=files.__getitem__)
            write_decoded(tmp / split, [files[i] for i in order], rendered[rows[order]].transpose(0, 3, 1, 2))
        test_rows = plan[plan["split"] == "test"]
        test_rows[["filename", "label"]].to_csv(tmp / TEST_LABELS, index=False, lineterminator="\n")
        plan.to_csv(tmp / METADATA, index=False, lineterminator="\n")
        save_npz_deterministic(tmp / COUNTERFACTUAL, counterfactual)
        write_json(tmp / "dataset.json", dict(info))


def composite_layout(cfg: CompositeConfig) -> Layout:
    """``composite.layout`` of params.yaml, its boxes checked (:class:`Layout`)."""
    return Layout.from_mapping(cfg.layout, "composite.layout")


def convert_composite(
    raw_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], spec: CompositeSpec, layout: Layout
) -> dict[str, Any]:
    """Build the composite dataset from the raw CIFAR-10 archive and MNIST IDX files; return its summary."""
    archive, fmt = cifar_mod.find_archive(Path(raw_dir) / RAW_CIFAR)
    mnist_train, mnist_train_labels = load_mnist_idx(Path(raw_dir) / RAW_MNIST, "train")
    mnist_test, mnist_test_labels = load_mnist_idx(Path(raw_dir) / RAW_MNIST, "test")
    start = time.perf_counter()
    cifar = cifar_mod.load_cifar10(archive, fmt)
    log.info("decoded %s (%s) in %.1f s", archive.name, fmt, time.perf_counter() - start)
    plan = plan_composite(spec, cifar.train_labels, cifar.test_labels, mnist_train_labels, mnist_test_labels)
    summary: dict[str, Any] = {
        "spec": asdict(spec),
        "layout": layout.to_json(),  # read back by pipeline.data.common.composite.read_layout
        "cifar10": {"archive": archive.name, "format": fmt, "index_order": cifar.index_order},
        "classes": list(cifar_mod.CLASSES),
        "splits": {},
    }
    for split in SPLITS:
        rows = plan[plan["split"] == split]
        summary["splits"][split] = {
            "count": len(rows),
            "agreeing_digits": int((rows["label"] == rows["digit_label"]).sum()),
        }
    start = time.perf_counter()
    test_digits = plan.loc[plan["split"] == "test", "digit_label"].to_numpy()
    plan, replacement = hide_test_order(spec, plan, plan_counterfactuals(spec, test_digits, mnist_test_labels))
    counterfactual = {
        "cifar_images": cifar.test_images,
        "mnist_images": mnist_test,
        "mnist_labels": mnist_test_labels,
        "digit_mnist_index": replacement,
    }
    write_composite(out_dir, plan, cifar, mnist_train, mnist_test, summary, layout, counterfactual)
    log.info("wrote %d composite images to %s in %.1f s", len(plan), out_dir, time.perf_counter() - start)
    return summary
