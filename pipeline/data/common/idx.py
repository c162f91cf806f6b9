"""The IDX file format of the original MNIST distribution (LeCun et al.).

An IDX file is a big-endian header followed by the raw array::

    bytes 0-1   0x0000
    byte  2     element type (0x08 = unsigned byte, the only one MNIST uses)
    byte  3     number of dimensions
    then        one 4-byte big-endian size per dimension
    then        the elements, row-major

so MNIST image files start with the magic number ``0x00000803`` (uint8, 3-d:
count x rows x cols) and label files with ``0x00000801`` (uint8, 1-d: count).
Every reader here checks the magic number and that the sizes in the header
account for exactly the length of the file, and names the file when they do not.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
MAGIC_BY_KIND = {"images": IMAGES_MAGIC, "labels": LABELS_MAGIC}


def idx_shape(path: str | os.PathLike[str], kind: str, name: str | None = None) -> tuple[int, ...]:
    """Validate the header of an IDX file of ``kind`` ("images"/"labels"); return the array shape.

    ``name`` replaces the path in error messages (e.g. the URL a temporary file came from).
    """
    path = Path(path)
    label = name or str(path)
    expected_magic = MAGIC_BY_KIND[kind]
    ndim = expected_magic & 0xFF
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header = handle.read(4 + 4 * ndim)
    except FileNotFoundError:
        raise DataError(f"{label}: file not found") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if len(header) < 4:
        raise DataError(f"{label}: not an IDX file: only {size} bytes")
    (magic,) = struct.unpack(">I", header[:4])
    if magic != expected_magic:
        raise DataError(
            f"{label}: wrong IDX magic number 0x{magic:08x}; MNIST {kind} files start with 0x{expected_magic:08x}"
        )
    if len(header) < 4 + 4 * ndim:
        raise DataError(f"{label}: truncated IDX header ({size} bytes)")
    shape = struct.unpack(f">{ndim}I", header[4:])
    expected = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64))
    if size != expected:
        dims = " x ".join(str(d) for d in shape)
        raise DataError(
            f"{label}: IDX header says {dims} bytes of data ({expected} bytes in all) but the file has {size} bytes"
        )
    return tuple(int(d) for d in shape)


def read_idx(path: str | os.PathLike[str], kind: str, name: str | None = None) -> np.ndarray:
    """Read a validated IDX file of ``kind`` as a uint8 array (images: N x rows x cols; labels: N)."""
    shape = idx_shape(path, kind, name)
    offset = 4 + 4 * len(shape)
    data = np.fromfile(path, dtype=np.uint8, offset=offset)
    return data.reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array (1-d labels or 3-d images) as IDX bytes."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError("IDX encoding here is for uint8 arrays with 1 or 3 dimensions")
    magic = IMAGES_MAGIC if array.ndim == 3 else LABELS_MAGIC
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an (uncompressed) IDX file; used for fixtures and round trips."""
    Path(path).write_bytes(idx_bytes(array))
