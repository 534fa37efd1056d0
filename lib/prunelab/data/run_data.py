"""The data of one run, whichever way it is read: whole tensors in memory (MNIST, CIFAR, digits, synthetic
stand-ins) or streamed from image folders (Tiny ImageNet, ImageNet). A run only sees this interface."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import UserError
from .catalog import FOLDER_DATASETS, DatasetInfo, check_bundled, dataset_info
from .folders import FolderLoader, find_samples, folder_loaders, folder_prune_batches
from .in_memory import DeviceLoader, StandInDataWarning, auto_source, load_data, prune_batches, synthetic_data

#: a synthetic stand-in for a folder data set holds at most this many examples unless a subset is asked
#: for (ImageNet's 1.28 M images at 224x224 would take 190 GB as tensors)
STAND_IN_CAP = (5_000, 1_000)


@dataclass(frozen=True)
class DataRequest:
    """What a run asks of its data: which set, from where, how much of it, and how it is batched."""

    dataset: str
    source: str  # real | bundled | synthetic | auto
    train_subset: int | None
    test_subset: int | None
    seed: int
    train_batch_size: int
    test_batch_size: int
    prune_dataset_ratio: int  # pruning examples per class on average (ratio x classes, drawn at random)
    prune_batch_size: int
    workers: int  # loader processes for image folders
    root: str | None = None  # the data folder (None: $PRUNELAB_DATA, else ./data)


@dataclass
class RunData:
    """Training and test loaders (a new epoch per ``iter()``, ``epoch`` settable to resume), the pruning
    batches, and the facts a record keeps about the data."""

    info: DatasetInfo
    source: str  # "real", "bundled" or "synthetic": what was used
    train: DeviceLoader | FolderLoader
    test: DeviceLoader | FolderLoader
    train_examples: int
    test_examples: int
    majority_class_top1: float  # test accuracy (percent) of always predicting the most frequent class
    prune_batches: Callable[[], list[tuple[torch.Tensor, torch.Tensor]]]

    @property
    def stand_in(self) -> bool:
        return self.source == "synthetic"


def resolved_source(dataset: str, source: str, root: str | os.PathLike | None = None, download: bool = True) -> str:
    """The source a run asking for ``source`` with data under ``root`` would use now: ``auto`` resolved to
    real, bundled or synthetic by the same fallback as loading (for the image-folder sets: real when the
    folder holds the set); ``download`` false: with only what is on disk, as a question that writes nothing."""
    if source != "auto":
        return "real" if dataset == "digits" else source
    if dataset in FOLDER_DATASETS:
        try:
            find_samples(dataset, root)
            return "real"
        except UserError:
            return "synthetic"
    return auto_source(dataset, root, download)  # not cached: data put in place later must be seen


def _majority(labels: list[int]) -> float:
    return 100.0 * Counter(labels).most_common(1)[0][1] / len(labels) if labels else float("nan")


class SubsetWarning(UserWarning):
    """A subset asked for (or the pruning set, drawn from the training split) is larger than the split: the
    whole split is used."""


def run_data(request: DataRequest, device: torch.device, channels_last: bool = False) -> RunData:
    """The data ``request`` asks for; a folder data set missing from disk is a :class:`UserError` naming the
    layout expected (with ``--data-source auto``: a warning and the synthetic stand-in)."""
    info = dataset_info(request.dataset)
    if request.source == "bundled":
        check_bundled(request.dataset)  # a folder set has none: not its stand-in, quietly
    if request.dataset in FOLDER_DATASETS and request.source != "synthetic":
        try:
            return _folder_data(request, info, device, channels_last)
        except UserError as missing:
            if request.source == "real":
                raise
            warnings.warn(f"{missing}; results come from synthetic stand-in data instead", StandInDataWarning,
                          stacklevel=2)
    if request.dataset in FOLDER_DATASETS:
        train_n = request.train_subset or min(info.train_size, STAND_IN_CAP[0])
        test_n = request.test_subset or min(info.test_size, STAND_IN_CAP[1])
        data = synthetic_data(info, train_n, test_n, request.seed)
    else:
        data = load_data(request.dataset, request.source, request.root, train_subset=request.train_subset,
                         test_subset=request.test_subset, seed=request.seed)
    asked = {"--train-subset": (request.train_subset, len(data.train)),
             "--test-subset": (request.test_subset, len(data.test)),
             f"--prune-dataset-ratio {request.prune_dataset_ratio}, a pruning set of":
                 (request.prune_dataset_ratio * info.num_classes, len(data.train))}
    for flag, (subset, have) in asked.items():
        if subset is not None and subset > have:
            warnings.warn(f"{flag} {subset:,} asks for more than the {have:,} examples there are; all are used",
                          SubsetWarning, stacklevel=2)
    train = DeviceLoader(data.train, info, request.train_batch_size, device, shuffle=True, augment=info.augment,
                         seed=request.seed, channels_last=channels_last)
    test = DeviceLoader(data.test, info, request.test_batch_size, device, channels_last=channels_last)
    return RunData(info, data.source, train, test, len(data.train), len(data.test),
                   _majority(data.test.labels.tolist()),
                   lambda: prune_batches(data, request.prune_dataset_ratio, request.prune_batch_size, device,
                                         request.seed))


def _folder_data(request: DataRequest, info: DatasetInfo, device: torch.device, channels_last: bool) -> RunData:
    train, test = folder_loaders(request.dataset, request.root, request.train_batch_size, device,
                                 workers=request.workers, train_subset=request.train_subset,
                                 test_subset=request.test_subset, seed=request.seed,
                                 test_batch_size=request.test_batch_size, channels_last=channels_last)
    labels = [label for _, label in test.dataset.samples]
    return RunData(info, "real", train, test, len(train.dataset), len(test.dataset), _majority(labels),
                   lambda: folder_prune_batches(request.dataset, request.root, request.prune_dataset_ratio,
                                                request.prune_batch_size, device, request.workers, request.seed))
