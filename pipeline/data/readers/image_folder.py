"""``image_folder`` (CSE 849): ``<path>/{train,val}/<class>/<file>`` with ImageFolder semantics
(class folders sorted by name -> label index, files sorted, recursively), and the flat
``<path>/test/`` with labels from ``<path>/test_labels.csv`` (``filename,label``; label =
class index or class name). The test split's classes are those of the train (else val)
folder. A dataset from elsewhere (class folders ``0``..``9``, no ``metadata.csv``, no
``test_labels.csv``) is read the same way; unlabelled test images get label -1.

The course's own data is taken as given (:func:`dataset_root`): ``<path>`` may be the
dataset folder, a folder whose single sub-folder is the dataset (a zip unpacked with its
top folder), or the ``.zip`` itself, which is unpacked into a temporary folder once per
process (removed at exit; members that would land outside it are refused). ``val/``
must have the same class folders as ``train/``: labels are folder positions, so one
missing class would shift every label after it.

Hidden files (names starting with ``.``) and macOS ``__MACOSX`` folders are skipped; any
other file that is not a decodable L or RGB image of the same size as the rest is an
error naming it.

Decoded once: where the composite converter stored a folder's images decoded
(:mod:`pipeline.data.common.decoded`), they are loaded instead of decoding the PNGs, as long as
the folder still holds exactly those files at those sizes (~0.7 s against ~10 s for the
45,000 training images; five stages read these folders).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd
import torch

from pipeline.core.errors import DataError
from pipeline.data.common.composite import DATASET_JSON, read_composite_metadata, read_layout
from pipeline.data.common.decoded import load_decoded
from pipeline.data.common.formats import METADATA, TEST_LABELS
from pipeline.data.common.imageio import WORKERS, decode_images
from pipeline.data.readers import FOLDER_SPLITS, MNIST_CLASSES, UNLABELLED, ImageSet

log = logging.getLogger(__name__)

ARCHIVE_JUNK = {"__MACOSX"}  # folders archivers add beside the data
MAX_UNPACKED_BYTES = 8 << 30  # a zip claiming more than this is refused (a decompression bomb)
_UNPACKED: dict[Path, Path] = {}  # zip -> its temporary folder, for this process


def read(path: Path, split: str) -> ImageSet:
    """The split, with each image's digit label and the layout when the folder is one of our
    composites (``metadata.csv``, ``dataset.json``)."""
    root = dataset_root(path)
    images = read_image_folder(root, split)
    images.digit_labels = composite_digit_labels(root, split, images.files)
    images.layout = read_layout(root)
    images.root = root
    if images.layout is not None and tuple(images.images.shape[-2:]) != images.layout.canvas:
        raise DataError(
            f"{root / DATASET_JSON}: layout canvas {list(images.layout.canvas)} but the {split} images are "
            f"{images.images.shape[-2]}x{images.images.shape[-1]}"
        )
    return images


def dataset_root(path: str | os.PathLike[str]) -> Path:
    """The folder holding ``train/``, ``val/`` and ``test/`` for ``path`` (a folder, its parent, or a .zip)."""
    path = Path(path)
    if path.is_file():
        path = unpack_zip(path)
    elif not path.is_dir():
        raise DataError(f"{path}: dataset not found (expected a folder with train/, val/, test/, or its .zip)")
    if _has_splits(path):
        return path
    inner = [Path(e.path) for e in os.scandir(path) if e.is_dir() and _visible(e.name) and e.name not in ARCHIVE_JUNK]
    if len(inner) == 1 and _has_splits(inner[0]):
        return inner[0]
    found = sorted(p.name for p in inner)
    shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
    raise DataError(
        f"{path}: no train/, val/ or test/ folder (found {shown or 'no folders'}); "
        f"expected the dataset folder, its parent, or its .zip"
    )


def _has_splits(folder: Path) -> bool:
    return any((folder / split).is_dir() for split in FOLDER_SPLITS)


def unpack_zip(archive: Path) -> Path:
    """Unpack ``archive`` into a temporary folder (once per process, removed at exit); its path."""
    key = archive.resolve()
    if key in _UNPACKED:
        return _UNPACKED[key]
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                name = PurePosixPath(member.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise DataError(
                        f"{archive}: member {member.filename!r} would be unpacked outside the dataset folder"
                    )
            claimed = sum(m.file_size for m in members)
            if claimed > MAX_UNPACKED_BYTES:
                raise DataError(
                    f"{archive}: unpacks to {claimed / 2**30:.1f} GiB, more than the "
                    f"{MAX_UNPACKED_BYTES / 2**30:.0f} GiB allowed"
                )
            target = Path(tempfile.mkdtemp(prefix=f"{archive.stem}-", suffix=".unzipped"))
            atexit.register(shutil.rmtree, target, True)
            zf.extractall(target)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a readable zip file ({exc}); expected a dataset folder or its .zip") from None
    log.info("%s: %d members unpacked into %s", archive, len(members), target)
    _UNPACKED[key] = target
    return target


def composite_digit_labels(root: Path, split: str, files: list[str] | None) -> torch.Tensor | None:
    """The digit label of each image of ``split`` (in ``files`` order) from ``metadata.csv``; None without one."""
    metadata = read_composite_metadata(root)
    if metadata is None or files is None:
        return None
    rows = metadata[metadata["split"] == split]
    if rows.empty:
        return None
    by_file = dict(zip(rows["filename"].astype(str), rows["digit_label"].astype(int)))
    missing = [f for f in files if f not in by_file]
    if missing:
        raise DataError(f"{root / METADATA}: no {split} row for {missing[0]!r} ({len(missing)} in all)")
    return torch.tensor([by_file[f] for f in files], dtype=torch.int64)


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_folders(split_dir: Path) -> list[str]:
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: folder not found")
    classes = sorted(
        e.name for e in os.scandir(split_dir) if e.is_dir() and _visible(e.name) and e.name not in ARCHIVE_JUNK
    )
    if not classes:
        raise DataError(f"{split_dir}: no class folders (expected {split_dir}/<class>/<image>)")
    return classes


def _files_under(folder: Path) -> list[str]:
    """Visible files under ``folder``, recursively, in ImageFolder's sorted walk order, relative to it."""
    found = []
    for current, dirs, names in sorted(os.walk(folder, followlinks=True)):
        dirs[:] = [d for d in dirs if _visible(d)]
        rel = Path(current).relative_to(folder)
        found.extend((rel / n).as_posix() for n in sorted(names) if _visible(n))
    return found


def _decode(folder: Path, files: list[str], size=None, channels=None) -> torch.Tensor:
    cached = load_decoded(folder, files)
    if (
        cached is not None
        and (size is None or tuple(cached.shape[2:]) == tuple(size))
        and (channels is None or cached.shape[1] == channels)
    ):
        return torch.from_numpy(cached)
    paths = [folder / f for f in files]
    array = decode_images(paths, [str(p) for p in paths], size, channels, WORKERS, channels_first=True)
    return torch.from_numpy(array)


def _train_classes(root: Path) -> list[str] | None:
    for split in ("train", "val"):
        if (root / split).is_dir():
            return _class_folders(root / split)
    return None


def read_test_labels(table: str | os.PathLike[str], classes: list[str] | None = None) -> dict[str, int]:
    """``{file name: class index}`` from a ``filename,label`` CSV (``test_labels.csv``).

    A label is a class index (0-9 without ``classes``) or, with ``classes``, a class name.
    A missing file or column, an unknown label and a file listed twice are errors naming
    the line: with a repeated row, one of two labels would win silently.
    """
    table = Path(table)
    try:
        frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{table}: labels file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{table}: cannot read: {exc}") from None
    if list(frame.columns[:2]) != ["filename", "label"]:
        raise DataError(f"{table}: expected columns filename,label; got {','.join(map(str, frame.columns))}")
    index = {name: i for i, name in enumerate(classes or [])}
    n_classes = len(classes) if classes else len(MNIST_CLASSES)
    by_file: dict[str, int] = {}
    for line, (name, value) in enumerate(zip(frame["filename"], frame["label"]), 2):
        value = value.strip()
        if name in by_file:
            raise DataError(f"{table}: line {line}: {name!r} is listed twice")
        if value in index:
            label = index[value]
        elif value.lstrip("-").isdigit():
            label = int(value)
        else:
            raise DataError(f"{table}: line {line}: label {value!r} is neither a class index nor a class name")
        if not 0 <= label < n_classes:
            raise DataError(f"{table}: line {line}: label {label} outside 0-{n_classes - 1}")
        by_file[name] = label
    return by_file


def _test_labels(root: Path, files: list[str], classes: list[str] | None) -> torch.Tensor:
    table = root / TEST_LABELS
    if not table.is_file():
        log.warning("%s not found: test images are unlabelled (label %d)", table, UNLABELLED)
        return torch.full((len(files),), UNLABELLED, dtype=torch.int64)
    by_file = read_test_labels(table, classes)
    missing = [f for f in files if f not in by_file]
    if missing:
        raise DataError(f"{table}: no label for test image {missing[0]!r} ({len(missing)} unlabelled in all)")
    extra = sorted(set(by_file) - set(files))
    if extra:
        raise DataError(f"{table}: lists {extra[0]!r}, which is not in {root / 'test'} ({len(extra)} such rows)")
    return torch.tensor([by_file[f] for f in files], dtype=torch.int64)


def read_image_folder(root: str | os.PathLike[str], split: str) -> ImageSet:
    """One split of an image-folder dataset (``train``/``val``: class folders; ``test``: flat)."""
    root = Path(root)
    split_dir = root / split
    if split == "test":
        images, files = read_image_dir(split_dir)
        classes = _train_classes(root)
        labels = _test_labels(root, files, classes)
        return ImageSet(images, labels, classes or list(MNIST_CLASSES), files)
    classes = _class_folders(split_dir)
    if split == "val" and (root / "train").is_dir():
        train_classes = _class_folders(root / "train")
        if classes != train_classes:
            differ = sorted(set(classes) ^ set(train_classes))
            raise DataError(
                f"{split_dir}: class folders differ from {root / 'train'} ({', '.join(differ)} in one only); "
                f"labels are folder positions, so they would not line up"
            )
    files, labels = _class_files(split_dir, classes)
    if not files:
        raise DataError(f"{split_dir}: no image files")
    images = _decode(split_dir, files)
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), classes, files)


def _class_files(split_dir: Path, classes: list[str]) -> tuple[list[str], list[int]]:
    """Files under the class folders, ``<class>/<file>``, in ImageFolder's order, and their labels."""
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        inner = [f"{name}/{f}" for f in _files_under(split_dir / name)]
        if not inner:
            log.warning("%s: class folder is empty", split_dir / name)
        files.extend(inner)
        labels.extend([label] * len(inner))
    return files, labels


def _flat_files(path: Path) -> list[str]:
    """The visible files of a flat folder in sorted name order; a sub-folder is an error."""
    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    entries = sorted((e for e in os.scandir(path) if _visible(e.name)), key=lambda e: e.name)
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError as exc:  # a symbolic link loop (ELOOP), a link into a folder this user cannot enter
            raise DataError(f"{Path(entry.path)}: cannot be read: {exc.strerror}") from None
        if is_dir:
            raise DataError(f"{Path(entry.path)}: unexpected sub-folder in a flat image folder")
    return [e.name for e in entries]


def read_image_dir(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None, channels: int | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Every image in a flat folder, in sorted file-name order -> ``(uint8 (N, C, H, W), names)``.

    ``size`` is ``(height, width)``; with ``size``/``channels`` None they are taken from
    the first image. A sub-folder, an unreadable or non-image file, or an image of
    another size or channel count is an error naming the file. Hidden files are skipped.
    """
    path = Path(path)
    files = _flat_files(path)
    if not files:
        raise DataError(f"{path}: no image files")
    return _decode(path, files, size, channels), files
