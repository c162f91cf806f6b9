"""Shared fixtures: tiny datasets written by the tests themselves (no real data needed).

* ``tiny_mnist``      -- arrays of a small MNIST look-alike (300 train / 100 test images).
* ``tiny_mirror``     -- a folder laid out like the offline mirror (``mnist/*.gz``,
                         ``cifar10/cifar10-jpeg.tar.gz``), with the checksum constants in
                         ``pipeline.data.sources`` patched to match it.
* ``tiny_raw``        -- the raw folder the download stage builds from ``tiny_mirror``.
* ``tiny_composite``  -- a small composite dataset built from ``tiny_raw`` (``TINY_SPEC``).
* ``synthetic_digits(n, seed)`` -- an in-memory ImageSet a model learns in one epoch.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.data import sources
from pipeline.data.cifar import CLASSES
from pipeline.data.common.composite import Layout
from pipeline.data.common.idx import idx_bytes
from pipeline.data.convert import CompositeSpec
from pipeline.data.readers import ImageSet

N_MNIST_TRAIN, N_MNIST_TEST = 300, 100
CIFAR_PER_CLASS_TRAIN, CIFAR_PER_CLASS_TEST = 20, 5  # 200 / 50 images
TINY_SPEC = CompositeSpec(
    seed=7, train_size=120, val_size=40, test_size=30, train_agreement=0.5, cifar_val_start=150, mnist_val_start=200
)
# The course's geometry, as params.yaml's composite.layout block writes it.
LAYOUT_PARAMS = {"canvas": [64, 64], "cifar": [0, 0, 32, 32], "digit": [36, 36, 28, 28]}
TINY_LAYOUT = Layout.from_mapping(LAYOUT_PARAMS)


DIGIT_CLASSES = [str(i) for i in range(10)]


def synthetic_digits(n: int, seed: int) -> ImageSet:
    """28x28 images whose label is written in as a bright horizontal bar at row 2*label+4."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, y in enumerate(labels.tolist()):
        images[i, 0, 2 * y + 4, 4:24] = 255
    return ImageSet(images=images, labels=labels, classes=DIGIT_CLASSES)


def mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random "digits": labels cycle 0-9 (all classes present); pixels random, the label drawn in a corner."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = labels  # lets tests tie an image to its label
    return images, labels


def cifar_arrays(per_class: int, seed: int) -> dict[str, list[np.ndarray]]:
    """``{class: [32x32x3 uint8 image, ...]}`` with smooth, class-coloured images (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    out = {}
    yy, xx = np.mgrid[0:32, 0:32]
    for name in CLASSES:
        images = []
        for _ in range(per_class):
            base = rng.integers(30, 226, size=3)
            grad = (xx * rng.integers(-3, 4) + yy * rng.integers(-3, 4))[:, :, None]
            images.append(np.clip(base + grad, 0, 255).astype(np.uint8))
        out[name] = images
    return out


def jpeg_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_cifar_jpeg_tar(
    path: Path, per_class_train: int = CIFAR_PER_CLASS_TRAIN, per_class_test: int = CIFAR_PER_CLASS_TEST
) -> dict:
    """A tiny ``cifar10-jpeg.tar.gz`` (files added in shuffled order, as a tar may hold them)."""
    splits = {"train": cifar_arrays(per_class_train, 1), "test": cifar_arrays(per_class_test, 2)}
    members = []
    for split, by_class in splits.items():
        for name, images in by_class.items():
            for j, image in enumerate(images):
                members.append((f"cifar10-jpeg/{split}/{name}/{j:04d}.jpg", jpeg_bytes(image)))
    order = np.random.default_rng(3).permutation(len(members))
    with tarfile.open(path, "w:gz") as tar:
        for i in order:
            _add(tar, *members[i])
    return splits


def write_cifar_pickle_tar(path: Path, n_per_batch: int = 6, n_test: int = 8) -> dict[str, np.ndarray]:
    """A tiny ``cifar-10-python.tar.gz``: five train batches and a test batch (official layout)."""
    rng = np.random.default_rng(5)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for k, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
            data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, size=n)]
            batches[k] = (data, labels)
            _add(tar, f"cifar-10-batches-py/{k}", pickle.dumps({"data": data, "labels": labels, "batch_label": k}))
        _add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({"label_names": list(CLASSES)}))
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    as_hwc = lambda d: d.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # noqa: E731
    return {
        "train_images": np.concatenate([as_hwc(d) for d, _ in train]),
        "train_labels": np.concatenate([labels for _, labels in train]).astype(np.int64),
        "test_images": as_hwc(batches["test_batch"][0]),
        "test_labels": np.asarray(batches["test_batch"][1], dtype=np.int64),
    }


def write_mnist_gz(folder: Path, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, str]:
    """The four ``*-ubyte.gz`` files; returns the MD5 of each decompressed file."""
    folder.mkdir(parents=True, exist_ok=True)
    md5 = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = data[split]
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            raw = idx_bytes(array)
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
            md5[name] = hashlib.md5(raw).hexdigest()
    return md5


@pytest.fixture(scope="session")
def tiny_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": mnist_arrays(N_MNIST_TRAIN, 0), "test": mnist_arrays(N_MNIST_TEST, 1)}


@pytest.fixture(scope="session")
def tiny_mirror_files(tmp_path_factory, tiny_mnist):
    """The mirror folder and its checksums (built once per session; read-only by convention)."""
    root = tmp_path_factory.mktemp("mirror")
    md5 = write_mnist_gz(root / "mnist", tiny_mnist)
    (root / "cifar10").mkdir()
    cifar = write_cifar_jpeg_tar(root / "cifar10" / "cifar10-jpeg.tar.gz")
    cifar_md5 = hashlib.md5((root / "cifar10" / "cifar10-jpeg.tar.gz").read_bytes()).hexdigest()
    return root, md5, cifar_md5, cifar


@pytest.fixture
def tiny_mirror(tiny_mirror_files, monkeypatch) -> Path:
    root, md5, cifar_md5, _ = tiny_mirror_files
    monkeypatch.setattr(sources, "MNIST_MD5", dict(md5))
    monkeypatch.setattr(sources, "CIFAR_JPEG_MD5", cifar_md5)
    return root


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory, tiny_mirror_files) -> Path:
    """``data/raw`` as the download stage builds it from the tiny mirror (session-wide, read-only)."""
    root, md5, cifar_md5, _ = tiny_mirror_files
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "MNIST_MD5", dict(md5))
        mp.setattr(sources, "CIFAR_JPEG_MD5", cifar_md5)
        raw = tmp_path_factory.mktemp("work") / "raw"
        sources.download(raw, root)
    return raw


@pytest.fixture(scope="session")
def tiny_composite(tmp_path_factory, tiny_raw) -> Path:
    from pipeline.data.convert import convert_composite

    out = tmp_path_factory.mktemp("composite") / "composite"
    convert_composite(tiny_raw, out, TINY_SPEC, TINY_LAYOUT)
    return out
