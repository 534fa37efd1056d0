"""Shared by the data tests: torchvision's real dataset classes with downloads made impossible, and MNIST
written in torchvision's on-disk format."""

import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torchvision.datasets.cifar
import torchvision.datasets.mnist


def _no_network(*args, **kwargs):
    raise URLError("no network in tests")


@pytest.fixture
def offline(monkeypatch):
    """The real torchvision classes, with downloads impossible and CIFAR's md5 checks reduced to "file
    exists" (our stand-in files cannot have the real checksums). MNIST only checks that files exist."""
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", _no_network)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", _no_network)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        lambda path, md5=None: Path(path).is_file())


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format: big-endian magic 0x0000080N (uint8 data, N dims), the dims, then the bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist_files(root: Path, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, prefix, n in (("train", "train", 7), ("test", "t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        written[split] = (images[:, None], labels)
    return written


@pytest.fixture
def write_mnist():
    """Writes small MNIST idx files under a root; returns {split: (images [N,1,28,28], labels)}."""
    return _write_mnist_files
