"""Tiny ImageNet and ImageNet, streamed from image folders in the layouts their users already have.

Too large for memory, they are read image by image by a ``DataLoader`` with ``workers`` processes, which
decode and augment to uint8; the loaders still yield what :class:`prunelab.data.in_memory.DeviceLoader`
yields (normalized float32 inputs and int64 labels on the device, order and augmentation fixed by ``seed``
and the epoch), the float conversion done on the device (a quarter of the bytes to copy).

Layouts under the data folder (``root``, else ``$PRUNELAB_DATA``, else ``./data``); nothing is downloaded
or moved:

* ``tiny-imagenet-200/`` as unzipped from the Stanford archive (``val/images`` labelled by
  ``val_annotations.txt``), or with the validation images in ``val/<wnid>/`` as the original tool's script
  left them;
* ``imagenet/`` (or the original's ``imagenet_raw/``) in ``ImageFolder`` layout.

Class indices are the sorted training folder names, as ``ImageFolder`` (and so the original) numbers them.
Augmentation is the original's: Tiny ImageNet a padded random 64x64 crop and a flip; ImageNet
``RandomResizedCrop(224, scale=(0.2, 1))``, grayscale, colour jitter and a flip, tested on ``Resize(256)``
+ ``CenterCrop(224)``. Subsets are seeded random draws, not the first files (all of the first classes).
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from .catalog import FOLDER_DATASETS, TITLES, DatasetInfo
from .in_memory import ChannelStats, data_root

#: folder names looked for under the data root, first one preferred (and named in errors)
FOLDER_NAMES: dict[str, tuple[str, ...]] = {"tiny-imagenet": ("tiny-imagenet-200",),
                                            "imagenet": ("imagenet", "imagenet_raw")}
_SUBSET_STREAM = 2_000  # seed stream of the subset draws, apart from the epoch streams
_PRUNE_STREAM = 1_000  # the pruning subset's stream (the same number data.prune_batches uses)

Sample = tuple[str, int]


def _mix(*numbers: int) -> int:
    """One 63-bit seed from several integers (seed 1 epoch 0 differs from seed 0 epoch 1)."""
    state = np.random.SeedSequence([n % 2**32 for n in numbers]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


# ------------------------------------------------------------------------------------------ finding files


def _missing(name: str, folder: Path) -> UserError:
    info = FOLDER_DATASETS[name]
    return UserError(f"the {TITLES[name]} data set is not in {folder.resolve()}: put {info.expected_files} there")


def dataset_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder holding ``train/`` and ``val/``: ``<root>/<usual name>``, or ``root`` itself if it has them."""
    if name not in FOLDER_DATASETS:
        raise UserError(f"unknown folder dataset {name!r}; choose one of {', '.join(FOLDER_DATASETS)}")
    base = data_root(root)
    for candidate in (*(base / n for n in FOLDER_NAMES[name]), base):
        if (candidate / "train").is_dir() and (candidate / "val").is_dir():
            return candidate
    raise _missing(name, base)


def _classes(train_dir: Path) -> dict[str, int]:
    names = sorted(entry.name for entry in os.scandir(train_dir) if entry.is_dir())
    return {wnid: index for index, wnid in enumerate(names)}


def _folder_samples(directory: Path, class_to_idx: dict[str, int]) -> list[Sample]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    present = {c: i for c, i in class_to_idx.items() if (directory / c).is_dir()}
    if not present:
        return []
    return make_dataset(str(directory), present, extensions=IMG_EXTENSIONS, allow_empty=True)


def _tiny_val_samples(val_dir: Path, class_to_idx: dict[str, int]) -> list[Sample]:
    """The archive's layout: ``val/images/<file>`` labelled by ``val_annotations.txt`` (file, wnid, box)."""
    annotations = val_dir / "val_annotations.txt"
    if not (annotations.is_file() and (val_dir / "images").is_dir()):
        return _folder_samples(val_dir, class_to_idx)
    samples = []
    for line in annotations.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] in class_to_idx:
            samples.append((str(val_dir / "images" / fields[0]), class_to_idx[fields[1]]))
    return sorted(samples)


def find_samples(name: str, root: str | os.PathLike | None = None) -> tuple[list[Sample], list[Sample], list[str]]:
    """(train samples, validation samples, class names) as (path, label) lists; UserError if anything is missing."""
    folder = dataset_folder(name, root)
    class_to_idx = _classes(folder / "train")
    train = _folder_samples(folder / "train", class_to_idx)
    if name == "tiny-imagenet":
        test = _tiny_val_samples(folder / "val", class_to_idx)
    else:
        test = _folder_samples(folder / "val", class_to_idx)
    if not train or not test:
        raise _missing(name, folder.parent if folder.name in FOLDER_NAMES[name] else folder)
    return train, test, list(class_to_idx)


# ------------------------------------------------------------------------------------------ transforms


def image_transform(name: str, train: bool) -> Callable:
    """PIL image to uint8 [C, H, W] tensor with the original's augmentation (normalization comes later)."""
    from torchvision import transforms as T

    steps: list = []
    if name == "tiny-imagenet" and train:
        steps = [T.RandomCrop(64, padding=4), T.RandomHorizontalFlip()]
    elif name == "imagenet" and train:
        steps = [T.RandomResizedCrop(224, scale=(0.2, 1.0)), T.RandomGrayscale(p=0.2),
                 T.ColorJitter(0.4, 0.4, 0.4, 0.4), T.RandomHorizontalFlip()]
    elif name == "imagenet":
        steps = [T.Resize(256), T.CenterCrop(224)]
    return T.Compose([*steps, T.PILToTensor()])


class ImageSamples(Dataset):
    """(path, label) pairs read as RGB images through ``transform``.

    Each image's random draws come from its own seed, mixed from ``seed``, ``epoch`` and its index, so an
    epoch's augmentation is the same whatever the number of workers; the global RNG is left untouched.
    """

    def __init__(self, samples: list[Sample], transform: Callable, seed: int = 0, epoch: int = 0) -> None:
        self.samples, self.transform, self.seed, self.epoch = samples, transform, seed, epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from torchvision.datasets.folder import default_loader

        path, label = self.samples[index]
        image = default_loader(path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, self.epoch, index))
            return self.transform(image), label

    def at_epoch(self, epoch: int) -> ImageSamples:
        return ImageSamples(self.samples, self.transform, self.seed, epoch)


# ------------------------------------------------------------------------------------------ loaders


class FolderLoader:
    """Iterates (inputs float32 normalized [B,C,H,W], labels int64 [B]) on ``device``, like DeviceLoader.

    ``epoch`` counts the epochs started; set it to continue a run (the order and augmentation of epoch ``e``
    depend only on ``seed`` and ``e``).
    """

    def __init__(  # noqa: PLR0913 - torch's DataLoader keywords, each a plain independent option
            self, dataset: ImageSamples, info: DatasetInfo, batch_size: int, device: torch.device | str = "cpu",
            shuffle: bool = False, seed: int = 0, workers: int = 0, drop_last: bool = False,
            channels_last: bool = False) -> None:
        if batch_size < 1:
            raise UserError(f"the batch size must be at least 1, got {batch_size}")
        if workers < 0:
            raise UserError(f"the number of data loading workers must be at least 0, got {workers}")
        self.dataset, self.info = dataset, info
        self.device = torch.device(device)
        self.batch_size, self.shuffle, self.seed, self.workers, self.drop_last = (
            batch_size, shuffle, seed, workers, drop_last)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.stats = ChannelStats.of(info, self.device)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        self.epoch += 1
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
        loader = DataLoader(self.dataset.at_epoch(epoch), batch_size=self.batch_size, shuffle=self.shuffle,
                            generator=generator, num_workers=self.workers, drop_last=self.drop_last,
                            pin_memory=self.device.type == "cuda", worker_init_fn=_leave_stops_to_the_run)
        return self._batches(loader)

    def _batches(self, loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in loader:
            x = images.to(self.device, non_blocking=True).float().div_(255)
            x = self.stats.normalize(x).contiguous(memory_format=self.memory_format)
            yield x, labels.to(self.device, non_blocking=True)


def _leave_stops_to_the_run(worker: int) -> None:
    """In a loader's worker process: ignore the signals that ask the run to stop. Slurm signals every process
    of a job (SIGUSR2 before its time limit, SIGTERM on preemption); a worker that took one would crash the
    loader before the run checkpoints, or run submitit's requeue handler once per worker."""
    for stop in (signal.SIGTERM, signal.SIGUSR2):
        signal.signal(stop, signal.SIG_IGN)


def _subset(samples: list[Sample], n: int | None, seed: int, stream: int) -> list[Sample]:
    """``n`` samples drawn at random (seeded), kept in file order; all of them when ``n`` is None."""
    if n is None or n >= len(samples):
        return samples
    chosen = torch.randperm(len(samples), generator=torch.Generator().manual_seed(_mix(seed, stream)))[:n]
    return [samples[i] for i in sorted(chosen.tolist())]


@dataclass
class _Found:
    info: DatasetInfo
    train: list[Sample]
    test: list[Sample]


def _find(name: str, root, train_subset: int | None, test_subset: int | None, seed: int) -> _Found:
    for label, subset in (("train", train_subset), ("test", test_subset)):
        if subset is not None and subset < 1:
            raise UserError(f"the {label} subset must be at least 1 example, got {subset}")
    train, test, _ = find_samples(name, root)
    return _Found(FOLDER_DATASETS[name], _subset(train, train_subset, seed, _SUBSET_STREAM),
                  _subset(test, test_subset, seed, _SUBSET_STREAM + 1))


def folder_loaders(  # noqa: PLR0913 - the loader keywords of both splits, as load_data and DeviceLoader spell them
        name: str, root: str | os.PathLike | None, batch_size: int, device: torch.device | str = "cpu",
        workers: int = 0, train_subset: int | None = None, test_subset: int | None = None, seed: int = 0,
        *, test_batch_size: int | None = None, channels_last: bool = False) -> tuple[FolderLoader, FolderLoader]:
    """(train loader: shuffled, augmented; test loader: in order, the test transform) for ``name``."""
    found = _find(name, root, train_subset, test_subset, seed)
    train = FolderLoader(ImageSamples(found.train, image_transform(name, True), seed), found.info, batch_size,
                         device, shuffle=True, seed=seed, workers=workers, channels_last=channels_last)
    test = FolderLoader(ImageSamples(found.test, image_transform(name, False), seed), found.info,
                        test_batch_size or batch_size, device, workers=workers, channels_last=channels_last)
    return train, test


def folder_prune_batches(name: str, root: str | os.PathLike | None, ratio: int, batch_size: int,
                         device: torch.device | str = "cpu", workers: int = 0, seed: int = 0
                         ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The pruning set: ``ratio * num_classes`` random training images with the training augmentation,
    materialized once as a list of batches (pruners read it more than once), as ``data.prune_batches`` does."""
    if ratio < 1:
        raise UserError(f"the pruning data ratio must be at least 1 example per class, got {ratio}")
    train, _, _ = find_samples(name, root)  # refuses an unknown name
    info = FOLDER_DATASETS[name]
    chosen = _subset(train, ratio * info.num_classes, seed, _PRUNE_STREAM)
    loader = FolderLoader(ImageSamples(chosen, image_transform(name, True), seed), info, batch_size, device,
                          shuffle=True, seed=seed, workers=workers)
    return list(loader)
