"""Decoding and encoding many small images quickly on a small CPU.

PIL releases the GIL while it decodes and encodes, so a pool of two threads keeps
both cores of the target machine busy without the start-up and copying cost of
processes. Work is split into a few contiguous chunks (not one task per image),
each chunk writing into its own slice of a preallocated array.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.core.errors import DataError

WORKERS = 2  # threads for image decoding/encoding (the target machine has 2 cores)

T = TypeVar("T")

MODE_CHANNELS = {"L": 1, "RGB": 3}
# Larger images are refused before decoding. The datasets here are 28x28 and 64x64; this
# is PIL's own warning threshold (Image.MAX_IMAGE_PIXELS), made an error.
MAX_PIXELS = 89_478_485


def map_chunks(fn: Callable[[int, int], T], n: int, workers: int = WORKERS, chunks_per_worker: int = 4) -> list[T]:
    """Run ``fn(start, stop)`` over contiguous chunks covering ``range(n)``; results in chunk order.

    The first exception raised by a chunk (in chunk order) is re-raised here.
    """
    if n == 0:
        return []
    n_chunks = max(1, min(n, workers * chunks_per_worker))
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    pairs = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if workers <= 1 or len(pairs) == 1:
        return [fn(a, b) for a, b in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fn, a, b) for a, b in pairs]
        return [f.result() for f in futures]


def _open_regular_file(path: str | os.PathLike[str], name: str) -> io.BufferedReader:
    """Open ``path`` for reading, refusing anything but a regular file.

    Opened without blocking and checked on the open descriptor: a named pipe in an image
    folder would otherwise block the read forever, waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DataError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataError(f"{name}: not a regular file (a named pipe, socket or device?)")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def decode_image(
    source: str | os.PathLike[str] | bytes,
    name: str,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> np.ndarray:
    """Decode one image file (path or bytes) to a uint8 ``(H, W, C)`` array.

    ``size`` is ``(height, width)``; ``channels`` is 1 (mode L) or 3 (mode RGB).
    Only L and RGB images are accepted: anything else (RGBA, palette, 16-bit) is
    rejected rather than silently converted. ``name`` is used in error messages.
    """
    handle = io.BytesIO(source) if isinstance(source, bytes) else _open_regular_file(source, name)
    try:
        with handle, Image.open(handle) as img:
            # Everything the header tells is checked before the pixels are decoded: a
            # wrong size costs nothing, and a decompression bomb is never expanded.
            mode = img.mode
            if mode not in MODE_CHANNELS:
                raise DataError(f"{name}: unsupported image mode {mode!r}; expected L (grayscale) or RGB")
            if channels is not None and MODE_CHANNELS[mode] != channels:
                raise DataError(f"{name}: has {MODE_CHANNELS[mode]} channel(s) (mode {mode}); expected {channels}")
            if size is not None and (img.height, img.width) != tuple(size):
                raise DataError(f"{name}: size {img.height}x{img.width} (HxW); expected {size[0]}x{size[1]}")
            if img.height * img.width > MAX_PIXELS:
                raise DataError(
                    f"{name}: {img.height}x{img.width} pixels, more than {MAX_PIXELS:,} (a decompression bomb?)"
                )
            img.load()
            array = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image file (cannot identify the image format)") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{name}: cannot decode image: {exc}") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def decode_images(
    sources: list[str] | list[Path] | list[bytes],
    names: list[str],
    size: tuple[int, int] | None,
    channels: int | None,
    workers: int = WORKERS,
    channels_first: bool = False,
) -> np.ndarray:
    """Decode many images into one uint8 ``(N, H, W, C)`` array (``(N, C, H, W)`` if
    ``channels_first``) with a thread pool.

    When ``size``/``channels`` are None they are taken from the first image and
    every other image must match it.
    """
    n = len(sources)
    if n == 0:
        h, w = size if size is not None else (0, 0)
        c = channels or 1
        return np.zeros((0, c, h, w) if channels_first else (0, h, w, c), dtype=np.uint8)
    first = decode_image(sources[0], names[0], size, channels)
    size = first.shape[:2] if size is None else size
    channels = first.shape[2] if channels is None else channels
    h, w, c = first.shape
    out = np.empty((n, c, h, w) if channels_first else (n, h, w, c), dtype=np.uint8)

    def work(start: int, stop: int) -> None:
        for i in range(start, stop):
            image = first if i == 0 else decode_image(sources[i], names[i], size, channels)
            out[i] = image.transpose(2, 0, 1) if channels_first else image

    map_chunks(work, n, workers)
    return out


def encode_png(array: np.ndarray, path: str | os.PathLike[str], compress_level: int = 1) -> None:
    """Write a uint8 ``(H, W, 3)`` or ``(H, W)`` array as a lossless PNG (no timestamp: deterministic bytes)."""
    Image.fromarray(array).save(path, format="PNG", compress_level=compress_level)
