"""A folder's images stored decoded, so that the stages reading it do not decode it again.

For an image folder ``<parent>/<name>/``, ``<parent>/.decoded/<name>.npy`` holds its images as
uint8 ``(N, C, H, W)`` and ``<name>.json`` the file names (relative to the folder) and byte
sizes they were decoded from, in the array's order, and the array's CRC-32 (bytes of the
``.npy`` changed in place are caught, and the PNGs decoded instead). The hidden folder is skipped by the
readers' listings. The composite converter writes them (:func:`write_decoded`) next to the
PNGs it encodes from the same arrays; the image-folder reader asks :func:`load_decoded` first.

A stored copy is used only while the folder lists exactly its files at the same sizes; any
other folder (a user's own data, one edited by hand) is decoded as before. Sizes rather than
times: DVC's checkout rewrites modification times, and a PNG edited in place at the same byte
size is outside what this guards (the folder is one DVC output, written by one stage).
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DECODED = ".decoded"


def decoded_paths(folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(<parent>/.decoded/<name>.npy, <parent>/.decoded/<name>.json)`` for ``folder``."""
    folder = Path(folder)
    store = folder.parent / DECODED
    return store / f"{folder.name}.npy", store / f"{folder.name}.json"


def write_decoded(folder: str | os.PathLike[str], files: list[str], images: np.ndarray) -> None:
    """Store ``images`` (uint8 ``(N, C, H, W)``; image i is ``folder / files[i]``) for ``folder``.

    Plain writes: the converter calls this inside the temporary folder it renames into place.
    """
    folder = Path(folder)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(files):
        raise ValueError(
            f"{folder}: expected uint8 (N, C, H, W) for {len(files)} files, got {images.dtype} {images.shape}"
        )
    array_path, manifest_path = decoded_paths(folder)
    array_path.parent.mkdir(exist_ok=True)
    np.save(array_path, np.ascontiguousarray(images), allow_pickle=False)
    images = np.ascontiguousarray(images)
    manifest = {
        "files": files,
        "sizes": [os.stat(folder / f).st_size for f in files],
        "shape": list(images.shape),
        "crc32": zlib.crc32(images.data),
    }
    manifest_path.write_text(json.dumps(manifest, separators=(",", ":")) + "\n", encoding="utf-8")


def load_decoded(folder: str | os.PathLike[str], files: list[str]) -> np.ndarray | None:
    """``folder``'s stored images in ``files`` order, or None when there is no usable copy: none
    stored, another set of files, a file whose size changed, or an unreadable array."""
    folder = Path(folder)
    array_path, manifest_path = decoded_paths(folder)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    stored = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(stored, list) or sorted(stored) != sorted(files):
        log.info("%s: the decoded copy is of other files; decoding the images", folder)
        return None
    position = {name: i for i, name in enumerate(stored)}
    order = [position[name] for name in files]
    sizes = manifest.get("sizes")
    if not isinstance(sizes, list) or len(sizes) != len(stored):
        return None
    if any(os.stat(folder / name).st_size != sizes[i] for name, i in zip(files, order)):
        log.info("%s: files changed since they were decoded; decoding the images", folder)
        return None
    try:
        array = np.load(array_path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if array.dtype != np.uint8 or array.ndim != 4 or list(array.shape) != manifest.get("shape"):
        return None
    # Bytes changed in place (same size, same names) would pass every check above: the checksum
    # catches them (a copy written before it was recorded has none, and is trusted as before).
    if "crc32" in manifest and zlib.crc32(np.ascontiguousarray(array).data) != manifest["crc32"]:
        log.warning("%s: the decoded copy does not match its checksum; decoding the images", folder)
        return None
    return array if order == list(range(len(order))) else array[order]
