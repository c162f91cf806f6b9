"""Fetching and verifying the raw datasets: MNIST (IDX) and CIFAR-10 (archive).

Where the data comes from
    With the environment variable ``CNN_DATA_MIRROR`` set to a folder laid out like the
    offline mirror (``mnist/<name>.gz`` and ``cifar10/cifar10-jpeg.tar.gz``; a relative
    path resolves against the current directory), everything is copied from there.
    Without it, MNIST comes from torchvision's mirror list (``MNIST_URLS``) and CIFAR-10
    from the official ``cifar-10-python.tar.gz`` (``CIFAR_PYTHON_URL``). A machine with
    neither network nor mirror gets one error naming the URL and ``CNN_DATA_MIRROR``.

What ends up in the raw folder (``data/raw``)
    ``mnist/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` -- decompressed IDX files
    in torchvision's layout, so ``torchvision.datasets.MNIST("data/raw/mnist", download=False)``
    loads them; and ``cifar10/<archive>`` -- the verified archive as downloaded, one file.

Verification
    MNIST by the MD5 of the *decompressed* IDX bytes (the mirror's training-images .gz is
    recompressed, so .gz checksums would differ) plus the IDX header (magic number and
    sizes against the file length); CIFAR-10 by the archive's MD5 and its structure.

The whole raw folder is built in a temporary sibling and renamed into place only when
everything has been verified, so a failed run leaves no partial output.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.core.errors import DataError
from pipeline.core.io import atomic_path
from pipeline.data import cifar
from pipeline.data.common.formats import MNIST_PREFIX, MNIST_RAW_SUBDIR, RAW_CIFAR, RAW_MNIST, mnist_idx_name
from pipeline.data.common.idx import idx_shape

log = logging.getLogger(__name__)

MIRROR_ENV = "CNN_DATA_MIRROR"

# torchvision.datasets.MNIST.mirrors (torchvision 0.29); each followed by "<file>.gz".
MNIST_URLS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
# The well-known MD5s of the decompressed original IDX files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_IMAGE_SIZE = (28, 28)

CIFAR_PYTHON_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_PYTHON_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_JPEG_MD5 = "67664af876dd64ad10750410502e5f72"

MIRROR_MNIST_DIR = "mnist"
MIRROR_CIFAR_FILE = "cifar10/cifar10-jpeg.tar.gz"

DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a download is abandoned
_CHUNK = 1 << 20

NO_SOURCE_HINT = (
    f"no network? set {MIRROR_ENV} to a local folder laid out like the offline dataset mirror "
    "(mnist/*-ubyte.gz, cifar10/cifar10-jpeg.tar.gz)"
)


def mnist_file_names() -> list[tuple[str, str, str]]:
    """``(file name, kind, split)`` of the four MNIST IDX files."""
    return [(mnist_idx_name(split, kind), kind, split) for split in MNIST_PREFIX for kind in ("images", "labels")]


# --------------------------------------------------------------------------- source selection


def mirror_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    """The mirror folder named by ``CNN_DATA_MIRROR`` (None when unset or empty)."""
    environ = os.environ if environ is None else environ
    value = environ.get(MIRROR_ENV, "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise DataError(f"{MIRROR_ENV}={value}: folder not found (relative paths resolve against {Path.cwd()})")
    return path


# --------------------------------------------------------------------------- byte transfer


def _copy_stream(src, dest: Path) -> str:
    digest = hashlib.md5()
    with open(dest, "wb") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def fetch_url(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT) -> str:
    """Download ``url`` to ``dest``; return the MD5 of the bytes. Network failures -> DataError naming the URL."""
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return _copy_stream(response, dest)
    except urllib.error.HTTPError as exc:
        raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        raise DataError(f"cannot download {url}: {reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs
        raise DataError(f"cannot download {url}: {exc}") from None


def copy_file(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest``; return the MD5 of the bytes."""
    try:
        with open(src, "rb") as handle:
            return _copy_stream(handle, dest)
    except FileNotFoundError:
        raise DataError(f"{src}: not found in the {MIRROR_ENV} mirror") from None
    except OSError as exc:
        raise DataError(f"{src}: cannot read: {exc.strerror or exc}") from None


def gunzip(src: Path, dest: Path, name: str) -> str:
    """Decompress ``src`` to ``dest``; return the MD5 of the decompressed bytes. ``name`` labels errors."""
    try:
        with gzip.open(src, "rb") as handle:
            return _copy_stream(handle, dest)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{name}: corrupt or truncated gzip file: {exc}") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot decompress: {exc}") from None


# --------------------------------------------------------------------------- MNIST


def verify_mnist_file(path: Path, kind: str, origin: str) -> tuple[int, ...]:
    """Check the IDX header of one decompressed MNIST file (magic, sizes, 28x28); return its shape."""
    shape = idx_shape(path, kind, name=origin)
    if kind == "images" and shape[1:] != MNIST_IMAGE_SIZE:
        raise DataError(f"{origin}: images are {shape[1]}x{shape[2]}; MNIST images are 28x28")
    return shape


def _fetch_mnist_file(file_name: str, kind: str, dest: Path, mirror: Path | None) -> tuple[str, tuple[int, ...], str]:
    """Fetch, decompress and verify one MNIST file into ``dest``; return (md5, shape, origin)."""
    expected = MNIST_MD5[file_name]
    gz_tmp = dest.with_name(dest.name + ".gz.part")
    if mirror is not None:
        candidates = [
            (mirror / MIRROR_MNIST_DIR / f"{file_name}.gz", f"${MIRROR_ENV}/{MIRROR_MNIST_DIR}/{file_name}.gz")
        ]
    else:
        candidates = [(None, f"{base}{file_name}.gz") for base in MNIST_URLS]
    errors = []
    for attempt, (local, origin) in enumerate(candidates, start=1):
        label = str(local) if local is not None else origin
        try:
            if local is None:
                fetch_url(origin, gz_tmp)
                md5 = gunzip(gz_tmp, dest, label)
            else:
                if not local.is_file():
                    raise DataError(f"{local}: not found in the {MIRROR_ENV} mirror")
                md5 = gunzip(local, dest, label)
            shape = verify_mnist_file(dest, kind, label)
            if md5 != expected:
                raise DataError(f"{label}: checksum mismatch: decompressed content has MD5 {md5}, expected {expected}")
            return md5, shape, origin
        except DataError as exc:
            errors.append(exc)
            if attempt < len(candidates):
                log.warning("%s; trying the next mirror", exc)
        finally:
            gz_tmp.unlink(missing_ok=True)
    if len(errors) == 1 or mirror is not None:
        message = str(errors[0])
    else:
        message = str(errors[0]) + "".join(f"; also tried: {e}" for e in errors[1:])
    if mirror is None and all(str(e).startswith("cannot download") for e in errors):
        message += f" -- {NO_SOURCE_HINT}"
    raise DataError(message)


def fetch_mnist(dest_dir: Path, mirror: Path | None) -> dict[str, Any]:
    """Fetch all four MNIST files into ``dest_dir``; return their provenance record."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    for file_name, kind, split in mnist_file_names():
        md5, shape, origin = _fetch_mnist_file(file_name, kind, dest_dir / file_name, mirror)
        log.info("verified %s: %s, md5 %s", file_name, " x ".join(map(str, shape)), md5)
        files[file_name] = {"md5": md5, "shape": list(shape), "origin": origin}
        counts.setdefault(split, {})[kind] = shape[0]
    for split, by_kind in counts.items():
        if by_kind["images"] != by_kind["labels"]:
            raise DataError(
                f"MNIST {split}: {by_kind['images']} images but {by_kind['labels']} labels "
                f"({mnist_idx_name(split, 'images')} vs {mnist_idx_name(split, 'labels')})"
            )
    return {
        "path": f"{RAW_MNIST}/{MNIST_RAW_SUBDIR.as_posix()}",
        "checksum": "md5 of the decompressed IDX file",
        "counts": {split: by_kind["images"] for split, by_kind in counts.items()},
        "files": files,
    }


# --------------------------------------------------------------------------- CIFAR-10


def fetch_cifar(dest_dir: Path, mirror: Path | None) -> dict[str, Any]:
    """Fetch and verify the CIFAR-10 archive into ``dest_dir``; return its provenance record."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    if mirror is not None:
        fmt, expected = cifar.FORMAT_JPEG, CIFAR_JPEG_MD5
        src = mirror / MIRROR_CIFAR_FILE
        origin, label = f"${MIRROR_ENV}/{MIRROR_CIFAR_FILE}", str(src)
    else:
        fmt, expected = cifar.FORMAT_PICKLE, CIFAR_PYTHON_MD5
        origin = label = CIFAR_PYTHON_URL
    dest = dest_dir / cifar.ARCHIVE_NAMES[fmt]
    if mirror is not None:
        md5 = copy_file(src, dest)
    else:
        try:
            md5 = fetch_url(CIFAR_PYTHON_URL, dest)
        except DataError as exc:
            raise DataError(f"{exc} -- {NO_SOURCE_HINT}") from None
    if md5 != expected:
        raise DataError(f"{label}: checksum mismatch: MD5 {md5}, expected {expected}")
    counts = cifar.count_archive(dest, fmt)
    log.info("verified %s: %s images, md5 %s", dest.name, counts, md5)
    return {
        "path": f"{RAW_CIFAR}/{dest.name}",
        "format": fmt,
        "md5": md5,
        "checksum": "md5 of the archive",
        "origin": origin,
        "counts": counts,
        "classes": list(cifar.CLASSES),
        "index_order": cifar.INDEX_ORDER[fmt],
    }


# --------------------------------------------------------------------------- stage


def download(raw_dir: str | os.PathLike[str], mirror: Path | None) -> dict[str, Any]:
    """Build the verified raw folder (replacing any old one); return the provenance record.

    The record holds no absolute paths and no times, so re-running from the same
    source gives byte-identical JSON.
    """
    raw_dir = Path(raw_dir)
    log.info("source: %s", f"mirror {mirror}" if mirror is not None else "internet")
    with atomic_path(raw_dir) as tmp:
        tmp.mkdir()
        mnist = fetch_mnist(tmp / RAW_MNIST / MNIST_RAW_SUBDIR, mirror)
        cifar10 = fetch_cifar(tmp / RAW_CIFAR, mirror)
    return {"source": "mirror" if mirror is not None else "internet", "mnist": mnist, "cifar10": cifar10}
