"""The data of one run, whichever way it is read: whole tensors in memory (MNIST, CIFAR, digits, synthetic
stand-ins) or streamed from image folders (Tiny ImageNet, ImageNet). A run only sees this interface."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .config import RunConfig
from .data import DATASETS, DatasetInfo, DeviceLoader, StandInDataWarning, load_data, prune_batches, synthetic_data
from .errors import UserError
from .folder_data import FOLDER_DATASETS, FolderLoader, folder_loaders, folder_prune_batches

#: a synthetic stand-in for a folder data set holds at most this many examples unless a subset is asked
#: for (ImageNet's 1.28 M images at 224x224 would take 190 GB as tensors)
STAND_IN_CAP = (5_000, 1_000)


def dataset_info(name: str) -> DatasetInfo:
    info = DATASETS.get(name) or FOLDER_DATASETS.get(name)
    if info is None:
        raise UserError(f"unknown dataset '{name}'; choose one of: {', '.join([*DATASETS, *FOLDER_DATASETS])}.")
    return info


@dataclass
class RunData:
    """Training and test loaders (a new epoch per ``iter()``, ``epoch`` settable to resume), the pruning
    batches, and the facts a record keeps about the data."""

    info: DatasetInfo
    source: str  # "real" or "synthetic"
    train: DeviceLoader | FolderLoader
    test: DeviceLoader | FolderLoader
    train_examples: int
    test_examples: int
    majority_class_top1: float  # test accuracy (percent) of always predicting the most frequent class
    prune_batches: Callable[[], list[tuple[torch.Tensor, torch.Tensor]]]

    @property
    def stand_in(self) -> bool:
        return self.source == "synthetic"


def _majority(labels: list[int]) -> float:
    return 100.0 * Counter(labels).most_common(1)[0][1] / len(labels) if labels else float("nan")


def run_data(config: RunConfig, device: torch.device, channels_last: bool = False) -> RunData:
    """The data ``config`` asks for; a folder data set missing from disk is a :class:`UserError` naming the
    layout expected (with ``--data-source auto``: a warning and the synthetic stand-in)."""
    info = dataset_info(config.dataset)
    if config.dataset in FOLDER_DATASETS and config.data_source != "synthetic":
        try:
            return _folder_data(config, info, device, channels_last)
        except UserError as missing:
            if config.data_source == "real":
                raise
            warnings.warn(f"{missing} Results come from synthetic stand-in data instead.", StandInDataWarning,
                          stacklevel=2)
    if config.dataset in FOLDER_DATASETS:
        train_n = config.train_subset or min(info.train_size, STAND_IN_CAP[0])
        test_n = config.test_subset or min(info.test_size, STAND_IN_CAP[1])
        data = synthetic_data(info, train_n, test_n, config.seed)
    else:
        data = load_data(config.dataset, config.data_source, train_subset=config.train_subset,
                         test_subset=config.test_subset, seed=config.seed)
    train = DeviceLoader(data.train, info, config.train_batch_size, device, shuffle=True, augment=info.augment,
                         seed=config.seed, channels_last=channels_last)
    test = DeviceLoader(data.test, info, config.test_batch_size, device, channels_last=channels_last)
    return RunData(info, data.source, train, test, len(data.train), len(data.test),
                   _majority(data.test.labels.tolist()),
                   lambda: prune_batches(data, config.prune_dataset_ratio, config.prune_batch_size, device,
                                         config.seed))


def _folder_data(config: RunConfig, info: DatasetInfo, device: torch.device, channels_last: bool) -> RunData:
    train, test = folder_loaders(config.dataset, None, config.train_batch_size, device, workers=config.workers,
                                 train_subset=config.train_subset, test_subset=config.test_subset,
                                 seed=config.seed, test_batch_size=config.test_batch_size,
                                 channels_last=channels_last)
    labels = [label for _, label in test.dataset.samples]
    return RunData(info, "real", train, test, len(train.dataset), len(test.dataset), _majority(labels),
                   lambda: folder_prune_batches(config.dataset, None, config.prune_dataset_ratio,
                                                config.prune_batch_size, device, config.workers, config.seed))
