"""CIFAR-10 (Krizhevsky, Nair, Hinton) read straight from its downloaded archive.

Two archive formats are supported; the download stage stores exactly one of them,
unextracted, under ``data/raw/cifar10/``:

``python-pickle`` -- the official ``cifar-10-python.tar.gz``
    (``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``). Index order is the
    official one: train index ``i`` is image ``i % 10000`` of ``data_batch_{i // 10000 + 1}``;
    test index ``i`` is image ``i`` of ``test_batch``.

``jpeg-folder`` -- the offline mirror's ``cifar10-jpeg.tar.gz``
    (``cifar10-jpeg/{train,test}/<class>/NNNN.jpg``, 5,000 / 1,000 per class, JPEG
    re-encoded so pixels differ slightly from the official ones). The official index
    is not recoverable from it, so the *canonical order* is defined by interleaving
    the classes: index ``i`` is class ``i % 10`` and the ``(i // 10)``-th file (in
    sorted file-name order) of that class's folder. Every contiguous range of
    indices is therefore class-balanced (within one image per class), as it is,
    approximately, in the official order.

Images come back as uint8 ``(N, 32, 32, 3)`` (HWC, RGB) and labels as int64 0-9,
the official label order (``CLASSES``).
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.common.imageio import WORKERS, decode_images

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

FORMAT_PICKLE = "python-pickle"
FORMAT_JPEG = "jpeg-folder"
ARCHIVE_NAMES = {FORMAT_PICKLE: "cifar-10-python.tar.gz", FORMAT_JPEG: "cifar10-jpeg.tar.gz"}

INDEX_ORDER = {
    FORMAT_PICKLE: "official: data_batch_1..5 then test_batch, in file order",
    FORMAT_JPEG: (
        "canonical class-interleaved: index i is class i % 10 (official label order), "
        "the (i // 10)-th file in sorted file-name order of that class folder"
    ),
}

PICKLE_TRAIN_MEMBERS = tuple(f"cifar-10-batches-py/data_batch_{k}" for k in range(1, 6))
PICKLE_TEST_MEMBER = "cifar-10-batches-py/test_batch"


@dataclass
class Cifar10:
    train_images: np.ndarray  # uint8 (N, 32, 32, 3)
    train_labels: np.ndarray  # int64 (N,)
    test_images: np.ndarray
    test_labels: np.ndarray
    format: str  # FORMAT_PICKLE or FORMAT_JPEG
    index_order: str  # human-readable definition of the index order


def find_archive(cifar_dir: str | os.PathLike[str]) -> tuple[Path, str]:
    """The CIFAR-10 archive stored in ``cifar_dir`` and its format (official pickle preferred)."""
    cifar_dir = Path(cifar_dir)
    for fmt in (FORMAT_PICKLE, FORMAT_JPEG):
        path = cifar_dir / ARCHIVE_NAMES[fmt]
        if path.is_file():
            return path, fmt
    names = " or ".join(ARCHIVE_NAMES.values())
    raise DataError(f"{cifar_dir}: no CIFAR-10 archive ({names}); run the download stage first")


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r|gz")  # streaming: one sequential pass, no seeks
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable .tar.gz archive: {exc}") from None


def _iter_members(path: Path):
    """Yield ``(name, bytes)`` for each regular file in a .tar.gz, with clear errors."""
    tar = _open_tar(path)
    try:
        with tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                yield member.name, handle.read() if handle is not None else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated archive: {exc}") from None


# --------------------------------------------------------------------------- jpeg-folder


def _jpeg_members(path: Path, read: bool) -> dict[str, dict[str, list[tuple[str, bytes]]]]:
    """``{split: {class: [(file_name, bytes), ...] sorted}}`` from the JPEG archive."""
    found: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    for name, data in _iter_members(path) if read else _iter_names(path):
        parts = name.split("/")
        if len(parts) != 4 or parts[1] not in found or parts[2] not in CLASSES:
            raise DataError(
                f"{path}: unexpected member {name!r}; expected cifar10-jpeg/{{train,test}}/<class>/<file>.jpg"
            )
        found[parts[1]].setdefault(parts[2], []).append((parts[3], data))
    for split, by_class in found.items():
        missing = [c for c in CLASSES if c not in by_class]
        if missing:
            raise DataError(f"{path}: split {split!r} has no images of class(es) {', '.join(missing)}")
        counts = {c: len(v) for c, v in by_class.items()}
        if len(set(counts.values())) != 1:
            raise DataError(
                f"{path}: split {split!r} is not class-balanced ({counts}); the canonical "
                "class-interleaved order needs the same number of images per class"
            )
        for files in by_class.values():
            files.sort(key=lambda item: item[0])
    return found


def _iter_names(path: Path):
    tar = _open_tar(path)
    try:
        with tar:
            for member in tar:
                if member.isfile():
                    yield member.name, b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated archive: {exc}") from None


def _interleave(by_class: dict[str, list[tuple[str, bytes]]]) -> tuple[list[str], list[bytes], np.ndarray]:
    per_class = len(by_class[CLASSES[0]])
    names, blobs, labels = [], [], []
    for j in range(per_class):
        for label, cls in enumerate(CLASSES):
            file_name, data = by_class[cls][j]
            names.append(f"{cls}/{file_name}")
            blobs.append(data)
            labels.append(label)
    return names, blobs, np.asarray(labels, dtype=np.int64)


def _load_jpeg(path: Path, workers: int) -> Cifar10:
    found = _jpeg_members(path, read=True)
    arrays = {}
    for split in ("train", "test"):
        names, blobs, labels = _interleave(found[split])
        names = [f"{path.name}:{split}/{n}" for n in names]
        images = decode_images(blobs, names, size=(32, 32), channels=3, workers=workers)
        arrays[split] = (images, labels)
    return Cifar10(*arrays["train"], *arrays["test"], format=FORMAT_JPEG, index_order=INDEX_ORDER[FORMAT_JPEG])


# --------------------------------------------------------------------------- python-pickle


def _unpickle_batch(path: Path, name: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = pickle.load(io.BytesIO(data), encoding="latin1")  # archive verified by MD5 first
        pixels = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is a corrupt batch
        raise DataError(f"{path}: member {name}: not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if pixels.ndim != 2 or pixels.shape[1] != 3072 or len(labels) != len(pixels):
        raise DataError(
            f"{path}: member {name}: expected N x 3072 pixels and N labels, got {pixels.shape} / {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: member {name}: label outside 0-9")
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _load_pickle(path: Path) -> Cifar10:
    wanted = set(PICKLE_TRAIN_MEMBERS) | {PICKLE_TEST_MEMBER}
    batches = {}
    for name, data in _iter_members(path):
        if name in wanted:
            batches[name] = _unpickle_batch(path, name, data)
    missing = sorted(wanted - set(batches))
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(missing)}")
    train = [batches[m] for m in PICKLE_TRAIN_MEMBERS]
    test_images, test_labels = batches[PICKLE_TEST_MEMBER]
    return Cifar10(
        np.concatenate([b[0] for b in train]),
        np.concatenate([b[1] for b in train]),
        test_images,
        test_labels,
        format=FORMAT_PICKLE,
        index_order=INDEX_ORDER[FORMAT_PICKLE],
    )


# --------------------------------------------------------------------------- public


def load_cifar10(path: str | os.PathLike[str], fmt: str | None = None, workers: int = WORKERS) -> Cifar10:
    """Decode a CIFAR-10 archive into arrays, in the index order of its format (module docstring)."""
    path = Path(path)
    fmt = fmt or {v: k for k, v in ARCHIVE_NAMES.items()}.get(path.name)
    if fmt == FORMAT_PICKLE:
        return _load_pickle(path)
    if fmt == FORMAT_JPEG:
        return _load_jpeg(path, workers)
    raise DataError(f"{path}: unknown CIFAR-10 archive format; expected one of {', '.join(ARCHIVE_NAMES.values())}")


def count_archive(path: str | os.PathLike[str], fmt: str) -> dict[str, int]:
    """``{"train": n, "test": n}`` image counts of an archive, checking its structure on the way."""
    path = Path(path)
    if fmt == FORMAT_JPEG:
        found = _jpeg_members(path, read=False)
        return {split: sum(len(v) for v in by_class.values()) for split, by_class in found.items()}
    data = load_cifar10(path, fmt)
    return {"train": len(data.train_labels), "test": len(data.test_labels)}
