"""Download stage: IDX validation, mirror copy, HTTP download, checksums, failure modes."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import shutil
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torchvision

from pipeline.core.errors import DataError
from pipeline.core.io import md5_file
from pipeline.data import cifar, sources
from pipeline.data.common.idx import idx_bytes, idx_shape, read_idx, write_idx
from pipeline.stages import download as download_stage
from tests.conftest import write_cifar_pickle_tar, write_mnist_gz

# --------------------------------------------------------------------------- IDX


def test_idx_round_trip_and_shape(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / "img", images)
    write_idx(tmp_path / "lab", labels)
    assert idx_shape(tmp_path / "img", "images") == (7, 28, 28)
    assert np.array_equal(read_idx(tmp_path / "img", "images"), images)
    assert np.array_equal(read_idx(tmp_path / "lab", "labels"), labels)
    assert (tmp_path / "img").read_bytes()[:4] == b"\x00\x00\x08\x03"


def test_idx_wrong_magic_is_named(tmp_path):
    write_idx(tmp_path / "labels-as-images", np.arange(5, dtype=np.uint8))
    with pytest.raises(DataError, match=r"labels-as-images: wrong IDX magic number 0x00000801.*0x00000803"):
        read_idx(tmp_path / "labels-as-images", "images")


def test_idx_count_that_does_not_match_length(tmp_path):
    data = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    (tmp_path / "short").write_bytes(data[:-100])
    with pytest.raises(DataError, match=r"short: IDX header says 4 x 28 x 28 .* but the file has 3052 bytes"):
        idx_shape(tmp_path / "short", "images")
    # a header claiming more items than the file holds
    (tmp_path / "lies").write_bytes(struct.pack(">II", 0x801, 10) + bytes(3))
    with pytest.raises(DataError, match="lies: IDX header says 10"):
        read_idx(tmp_path / "lies", "labels")


# --------------------------------------------------------------------------- mirror


def test_download_from_mirror_builds_torchvision_layout(tiny_mirror, tiny_mnist, tmp_path):
    raw = tmp_path / "raw"
    record = sources.download(raw, tiny_mirror)
    train = torchvision.datasets.MNIST(str(raw / "mnist"), train=True, download=False)
    test = torchvision.datasets.MNIST(str(raw / "mnist"), train=False, download=False)
    assert np.array_equal(train.data.numpy(), tiny_mnist["train"][0])
    assert np.array_equal(test.targets.numpy(), tiny_mnist["test"][1])
    archive = raw / "cifar10" / "cifar10-jpeg.tar.gz"
    assert archive.read_bytes() == (tiny_mirror / "cifar10" / "cifar10-jpeg.tar.gz").read_bytes()
    assert sorted(p.name for p in raw.rglob("*") if p.is_file()) == sorted([*sources.MNIST_MD5, "cifar10-jpeg.tar.gz"])
    assert record["source"] == "mirror"
    assert record["mnist"]["counts"] == {"train": 300, "test": 100}
    assert record["mnist"]["files"]["train-images-idx3-ubyte"]["md5"] == sources.MNIST_MD5["train-images-idx3-ubyte"]
    assert record["cifar10"]["format"] == "jpeg-folder"
    assert record["cifar10"]["counts"] == {"train": 200, "test": 50}
    assert "class-interleaved" in record["cifar10"]["index_order"]
    assert str(tmp_path) not in json.dumps(record) and str(tiny_mirror) not in json.dumps(record)


def test_download_stage_is_byte_identical_on_rerun(tiny_mirror, tmp_path, monkeypatch):
    shutil.copytree(tiny_mirror, tmp_path / "mirror")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNN_DATA_MIRROR", "mirror")  # relative: resolves against the CWD
    download_stage.main([])
    first = Path("reports/data/provenance.json").read_bytes()
    download_stage.main([])
    assert Path("reports/data/provenance.json").read_bytes() == first
    assert json.loads(first)["source"] == "mirror"
    assert Path("data/raw/mnist/MNIST/raw/t10k-labels-idx1-ubyte").is_file()
    assert not [p for p in Path("data").iterdir() if p.name.startswith(".")]  # no temp leftovers


def _broken_mirror(tiny_mirror: Path, tmp_path: Path) -> Path:
    mirror = tmp_path / "mirror"
    shutil.copytree(tiny_mirror, mirror)
    return mirror


def _assert_failed_cleanly(raw: Path) -> None:
    assert not raw.exists()
    assert not [p for p in raw.parent.iterdir() if p.name.startswith(".raw")]


def test_truncated_gz_fails_without_partial_output(tiny_mirror, tmp_path):
    mirror = _broken_mirror(tiny_mirror, tmp_path)
    gz = mirror / "mnist" / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: corrupt or truncated gzip file"):
        sources.download(tmp_path / "raw", mirror)
    _assert_failed_cleanly(tmp_path / "raw")


def test_corrupt_gz_is_named(tiny_mirror, tmp_path):
    mirror = _broken_mirror(tiny_mirror, tmp_path)
    (mirror / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: corrupt or truncated gzip file"):
        sources.download(tmp_path / "raw", mirror)
    _assert_failed_cleanly(tmp_path / "raw")


def test_mnist_checksum_mismatch(tiny_mirror, tmp_path, monkeypatch):
    monkeypatch.setitem(sources.MNIST_MD5, "train-labels-idx1-ubyte", "0" * 32)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: checksum mismatch: .* expected 0{32}"):
        sources.download(tmp_path / "raw", tiny_mirror)
    _assert_failed_cleanly(tmp_path / "raw")


def test_mnist_wrong_magic_inside_gz(tiny_mirror, tmp_path):
    mirror = _broken_mirror(tiny_mirror, tmp_path)
    raw = idx_bytes(np.zeros(100, dtype=np.uint8))
    (mirror / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: wrong IDX magic number 0x00000801"):
        sources.download(tmp_path / "raw", mirror)


def test_cifar_checksum_mismatch(tiny_mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CIFAR_JPEG_MD5", "f" * 32)
    with pytest.raises(DataError, match=r"cifar10-jpeg\.tar\.gz: checksum mismatch"):
        sources.download(tmp_path / "raw", tiny_mirror)
    _assert_failed_cleanly(tmp_path / "raw")


def test_mirror_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sources.mirror_from_env({}) is None
    assert sources.mirror_from_env({"CNN_DATA_MIRROR": ""}) is None
    (tmp_path / "m").mkdir()
    assert sources.mirror_from_env({"CNN_DATA_MIRROR": "m"}) == Path("m")
    with pytest.raises(DataError, match="CNN_DATA_MIRROR=nowhere: folder not found"):
        sources.mirror_from_env({"CNN_DATA_MIRROR": "nowhere"})


# --------------------------------------------------------------------------- internet (loopback)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    """A loopback HTTP server (127.0.0.1 only) serving ``tmp_path / "www"``."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_download_with_fallback_mirror(http_root, tiny_mnist, tmp_path, monkeypatch):
    root, base = http_root
    md5 = write_mnist_gz(root / "mnist", tiny_mnist)
    expected = write_cifar_pickle_tar(root / "cifar-10-python.tar.gz")
    archive_md5 = md5_file(root / "cifar-10-python.tar.gz")
    dead = f"http://127.0.0.1:{_closed_port()}/mnist/"
    monkeypatch.setattr(sources, "MNIST_URLS", [dead, f"{base}/mnist/"])  # first mirror down: falls back
    monkeypatch.setattr(sources, "MNIST_MD5", md5)
    monkeypatch.setattr(sources, "CIFAR_PYTHON_URL", f"{base}/cifar-10-python.tar.gz")
    monkeypatch.setattr(sources, "CIFAR_PYTHON_MD5", archive_md5)

    raw = tmp_path / "raw"
    record = sources.download(raw, mirror=None)

    assert record["source"] == "internet"
    assert record["mnist"]["files"]["train-images-idx3-ubyte"]["origin"] == f"{base}/mnist/train-images-idx3-ubyte.gz"
    assert np.array_equal(read_idx(raw / "mnist/MNIST/raw/train-images-idx3-ubyte", "images"), tiny_mnist["train"][0])
    assert record["cifar10"] == {
        "path": "cifar10/cifar-10-python.tar.gz",
        "format": "python-pickle",
        "md5": archive_md5,
        "checksum": "md5 of the archive",
        "origin": f"{base}/cifar-10-python.tar.gz",
        "counts": {"train": 30, "test": 8},
        "classes": list(cifar.CLASSES),
        "index_order": cifar.INDEX_ORDER["python-pickle"],
    }
    # the official pickle keeps the official order: data_batch_1..5, then test_batch
    data = cifar.load_cifar10(raw / "cifar10" / "cifar-10-python.tar.gz")
    for key in expected:
        assert np.array_equal(getattr(data, key), expected[key]), key


def test_http_404_is_reported(http_root, tmp_path, monkeypatch):
    _, base = http_root
    monkeypatch.setattr(sources, "MNIST_URLS", [f"{base}/missing/"])
    with pytest.raises(
        DataError, match=r"cannot download http://127\.0\.0\.1:\d+/missing/train-images-idx3-ubyte\.gz: HTTP 404"
    ):
        sources.download(tmp_path / "raw", mirror=None)


def test_no_network_no_mirror_one_clear_message(tmp_path, monkeypatch, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/mnist/"
    monkeypatch.setattr(sources, "MNIST_URLS", [url])
    monkeypatch.delenv("CNN_DATA_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        download_stage.main([])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"error: cannot download {url}train-images-idx3-ubyte.gz: ")
    assert "set CNN_DATA_MIRROR" in err
    assert not Path("data").exists() or not any(Path("data").iterdir())
    assert not Path("reports/data/provenance.json").exists()
