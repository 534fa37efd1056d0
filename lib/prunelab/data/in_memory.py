"""Datasets as whole uint8 tensors; batching, normalization and augmentation done per batch on the device.

There is no DataLoader and no per-image Python in the training loop: a split is moved to the device once and
every batch is an index, a float conversion, an optional vectorized crop/flip and a normalization (a split that
is not augmented is converted and normalized once, and a batch is an index).

Real MNIST/CIFAR come from torchvision's own dataset classes and are cached once, converted, under
``<root>/prunelab-cache``. ``source="bundled"`` reads a real subset that an installed package ships
(:mod:`prunelab.data.bundled`) through the same classes. ``source="synthetic"`` gives a deterministic,
learnable stand-in of the same shape so code paths can run offline; ``"auto"`` takes the first of real,
bundled and synthetic that can be had (warning when it ends at the stand-in).
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..files import write_whole
from .bundled import bundled_available, bundled_folder
from .catalog import DATA_SOURCES, DATASETS, TITLES, DatasetInfo, missing_words
from .device_copies import device_copy

_TORCHVISION_CLASSES = {"mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
_CACHE_DIR = "prunelab-cache"
_SYNTHETIC_CHUNK = 1024  # examples per independently seeded chunk, so a subset is a prefix of the full set


class StandInDataWarning(UserWarning):
    """Results come from synthetic stand-in data, not the real dataset."""


@dataclass
class Split:
    """One split as whole tensors: images uint8 [N, C, H, W], labels int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.dim() != 1 or len(self.labels) != len(self.images):
            raise ValueError(f"labels must be [N] with N = {len(self.images)}, "
                             f"got {tuple(self.labels.shape)}")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when ``n`` is None), copied so a large parent can be freed."""
        if n is None or n >= len(self):
            return self
        return Split(self.images[:n].clone(), self.labels[:n].clone())


@dataclass
class Data:
    info: DatasetInfo
    source: str  # what was actually used: "real", "bundled" or "synthetic"
    train: Split
    test: Split

    @property
    def stand_in(self) -> bool:
        return self.source == "synthetic"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$PRUNELAB_DATA``, else ``./data``."""
    if root is None:
        root = os.environ.get("PRUNELAB_DATA") or "data"
    return Path(root).expanduser()


#: (data set, folder) pairs whose download failed in this process: later ``auto`` loads look for the files but
#: do not try again (without a network, each try can wait on name resolution); ``real`` ones always try
_FAILED_DOWNLOADS: set[tuple[str, Path]] = set()


def load_data(name: str, source: str = "real", root: str | os.PathLike | None = None,
              train_subset: int | None = None, test_subset: int | None = None, seed: int = 0,
              download: bool = True) -> Data:
    """Load a dataset as whole uint8 tensors; subsets are the first N examples of each split."""
    _check_request(name, source, train_subset, test_subset)
    info, folder = DATASETS[name], data_root(root)
    if source == "auto" and name != "digits":
        source = auto_source(name, folder, download)
        if source == "synthetic":
            warnings.warn(f"{TITLES[name]} is not in the data folder, so results come from synthetic "
                          "stand-in data, not the real dataset.", StandInDataWarning, stacklevel=2)
    if source == "synthetic":
        return synthetic_data(info, train_subset, test_subset, seed)
    if name == "digits":  # scikit-learn ships the whole set: real whichever source is asked for
        train, test = _load_digits()
        return Data(info, "real", train.head(train_subset), test.head(test_subset))
    if source == "bundled":
        return _bundled_data(info, folder, train_subset, test_subset)
    train = _load_real_split(info, folder, True, download).head(train_subset)
    return Data(info, "real", train, _load_real_split(info, folder, False, download).head(test_subset))


def auto_source(name: str, root: str | os.PathLike | None = None, download: bool = True) -> str:
    """What ``auto`` takes for the in-memory set ``name`` under ``root``: "real" where its files are there (or
    download, tried once per process and folder), else "bundled" where a package ships it, else "synthetic"."""
    folder = data_root(root)
    failed = (name, folder.resolve()) in _FAILED_DOWNLOADS
    try:
        _load_real_split(DATASETS[name], folder, False, download and not failed)
        return "real"
    except _MissingData:
        if download:
            _FAILED_DOWNLOADS.add((name, folder.resolve()))
        return "bundled" if bundled_available(name, folder) else "synthetic"


def _check_request(name: str, source: str, train_subset: int | None, test_subset: int | None) -> None:
    """A known data set and source, and subsets of at least one example, or one line saying which is not."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if source not in DATA_SOURCES:
        raise UserError(f"unknown data source {source!r}; choose one of {', '.join(DATA_SOURCES)}")
    for label, subset in (("train", train_subset), ("test", test_subset)):
        if subset is not None and subset < 1:
            raise UserError(f"the {label} subset must be at least 1 example, got {subset}")


def _bundled_data(info: DatasetInfo, folder: Path, train_subset: int | None, test_subset: int | None) -> Data:
    """The bundled real subset, read by torchvision's own dataset class from the files written for it."""
    torchvision_root = bundled_folder(folder, info.name)
    train = _load_real_split(info, torchvision_root, True, download=False).head(train_subset)
    test = _load_real_split(info, torchvision_root, False, download=False).head(test_subset)
    return Data(info, "bundled", train, test)


class _MissingData(UserError):
    """The real files are absent and could not be downloaded (``auto`` falls back on this one only)."""


def _cache_path(folder: Path, name: str, train: bool) -> Path:
    return folder / _CACHE_DIR / f"{name}-{'train' if train else 'test'}.pt"


def _load_real_split(info: DatasetInfo, folder: Path, train: bool, download: bool) -> Split:
    path = _cache_path(folder, info.name, train)
    cached = _read_cache(path)
    if cached is not None:
        return cached
    split = _from_torchvision(info, folder, train, download)
    _write_cache(path, split)
    return split


def _from_torchvision(info: DatasetInfo, folder: Path, train: bool, download: bool) -> Split:
    import torchvision.datasets  # looked up at call time, so tests can replace the classes

    dataset_class = getattr(torchvision.datasets, _TORCHVISION_CLASSES[info.name])
    try:
        dataset = dataset_class(str(folder), train=train, download=download)
    except (RuntimeError, OSError) as error:  # URLError is an OSError
        found = folder / (getattr(dataset_class, "base_folder", None) or f"{dataset_class.__name__}/raw")
        raise _MissingData(missing_words(info, folder, found, download)) from error
    images = torch.as_tensor(dataset.data, dtype=torch.uint8)  # MNIST: tensor NHW; CIFAR: numpy NHWC
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return Split(images.contiguous(), labels)


#: the tensors of the cached splits this process has read, by file (path, inode, modification, size) and part; an
#: entry lives while a run holds it: a fused group opens all its runs at once, and CIFAR-10's training split is
#: 150 MB a copy
_READ_TENSORS: weakref.WeakValueDictionary[tuple, torch.Tensor] = weakref.WeakValueDictionary()


def _read_cache(path: Path) -> Split | None:
    """The split cached at ``path``, its tensors shared with every run of the process that read the same file
    (the loaders never write to them); None where there is none or it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    images, labels = _READ_TENSORS.get((*key, "images")), _READ_TENSORS.get((*key, "labels"))
    if images is not None and labels is not None:
        return Split(images, labels)
    try:
        saved = torch.load(path, weights_only=True)
        split = Split(saved["images"], saved["labels"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, AttributeError,
            pickle.UnpicklingError):
        return None  # unreadable or foreign: rebuild it from the torchvision files
    _READ_TENSORS[(*key, "images")], _READ_TENSORS[(*key, "labels")] = split.images, split.labels
    return split


def _write_cache(path: Path, split: Split) -> None:
    """Write the cache whole or not at all; a read-only data folder just means no cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, lambda file: torch.save({"images": split.images, "labels": split.labels}, file))
    except OSError:
        pass


def _load_digits() -> tuple[Split, Split]:
    """scikit-learn's 1797 8x8 handwritten digits, 0..16 scaled to 0..255, in one fixed shuffled order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(np.round(digits.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.from_numpy(np.random.RandomState(0).permutation(len(labels)))
    n_train = DATASETS["digits"].train_size
    return (Split(images[order[:n_train]], labels[order[:n_train]]),
            Split(images[order[n_train:]], labels[order[n_train:]]))


def _generator(*seeds: int) -> torch.Generator:
    """A CPU generator seeded from several integers mixed together (so seed 1 epoch 0 != seed 0 epoch 1)."""
    state = np.random.SeedSequence([s % 2**32 for s in seeds]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def synthetic_data(info: DatasetInfo, train_subset: int | None, test_subset: int | None, seed: int) -> Data:
    """A learnable stand-in: each class is a fixed random smooth template, each image template plus noise.

    Pixels are drawn around the dataset's per-channel mean and std so that normalization behaves as on the
    real data. Examples are generated in seeded chunks, so a subset equals the start of the full split.
    """
    channels, height, width = info.input_shape
    low = max(3, height // 4)
    coarse = torch.randn(info.num_classes, channels, low, low, generator=_generator(seed, 0))
    templates = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    templates = templates - templates.mean(dim=(2, 3), keepdim=True)
    templates = templates / templates.std(dim=(2, 3), keepdim=True)
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    # Strong enough that the tool's own models learn it within a few epochs of a few thousand examples,
    # so a smoke or quick workbook shows real differences between pruners; noise keeps it from being
    # solved in one step.
    signal = 0.6

    def split(which: int, size: int, subset: int | None) -> Split:
        n = size if subset is None else min(subset, size)
        images, labels = [], []
        for chunk, start in enumerate(range(0, n, _SYNTHETIC_CHUNK)):
            count = min(_SYNTHETIC_CHUNK, n - start)
            g = _generator(seed, which, chunk)  # always drawn for a whole chunk, then cut
            y = torch.randint(0, info.num_classes, (_SYNTHETIC_CHUNK,), generator=g)[:count]
            noise = torch.randn(_SYNTHETIC_CHUNK, channels, height, width, generator=g)[:count]
            z = signal * templates[y] + math.sqrt(1 - signal**2) * noise  # unit variance per pixel
            images.append((255 * (mean + std * z)).round_().clamp_(0, 255).to(torch.uint8))
            labels.append(y)
        return Split(torch.cat(images), torch.cat(labels))

    train = split(1, info.train_size, train_subset)
    return Data(info, "synthetic", train, split(2, info.test_size, test_subset))


@dataclass(frozen=True)
class ChannelStats:
    """A data set's per-channel mean and std, [1, C, 1, 1] float32 on one device: every loader normalizes so."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, info: DatasetInfo, device: torch.device | str) -> ChannelStats:
        mean, std = (torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1).to(device)
                     for values in (info.mean, info.std))
        return cls(mean, std)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std per channel, for x float32 in [0, 1] with shape [B, C, H, W]."""
        return (x - self.mean) / self.std


def draw_crop_flip(batch: int, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """A batch's crop offsets and flips from the CPU ``generator``, in the order the batch always draws them:
    int64 [B, 3] whose columns are the row offset and column offset in [0, 2 * padding] and flip (0 or 1)."""
    dy = torch.randint(0, 2 * padding + 1, (batch, 1), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (batch, 1), generator=generator)
    flip = torch.rand(batch, 1, generator=generator) < 0.5
    return torch.cat([dy, dx, flip.long()], dim=1)


def crop_flip(x: torch.Tensor, draws: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Crop (after zero padding) and flip each image of float ``x`` [B, C, H, W] as ``draws`` (from
    :func:`draw_crop_flip`) say. ``draws`` must be on ``x.device``: a CPU-to-GPU copy here would wait for the GPU."""
    batch, channels, height, width = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy, dx, flip = draws[:, 0:1], draws[:, 1:2], draws[:, 2:3].bool()
    across = torch.arange(width, device=x.device)
    rows = dy + torch.arange(height, device=x.device)  # [B, H]
    cols = dx + torch.where(flip, width - 1 - across, across)  # [B, W], reversed for flipped images
    b = torch.arange(batch, device=x.device).view(-1, 1, 1, 1)
    c = torch.arange(channels, device=x.device).view(1, -1, 1, 1)
    return padded[b, c, rows.view(batch, 1, height, 1), cols.view(batch, 1, 1, width)]


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """torchvision's RandomCrop(size, padding) then RandomHorizontalFlip(), each image its own draw.

    ``x`` is float [B, C, H, W] in [0, 1] (padding is 0, i.e. black, as on a PIL image before ToTensor).
    The draws come from the CPU ``generator`` and only the index grids move to ``x.device``.
    """
    draws = draw_crop_flip(x.shape[0], generator, padding).to(x.device)
    return crop_flip(x, draws, padding)


class DeviceLoader:
    """Iterates (inputs float32 normalized [B,C,H,W], labels int64 [B]) on `device`.

    The whole split is moved to the device once; batches are cut, augmented and normalized there (a split
    that is not augmented is normalized once, as a whole).
    Each ``iter()`` starts a new epoch: its shuffle and augmentation draws come from a generator seeded by
    ``seed`` and the epoch number, so epochs differ but the whole sequence is fixed by the seed.
    """

    def __init__(  # noqa: PLR0913 - torch's DataLoader keywords, each a plain independent option
            self, split: Split, info: DatasetInfo, batch_size: int, device: torch.device | str = "cpu",
            shuffle: bool = False, augment: bool = False, seed: int = 0, drop_last: bool = False,
            channels_last: bool = False):
        if batch_size < 1:
            raise UserError(f"the batch size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        self._copies = (device_copy(split.images, self.device), device_copy(split.labels, self.device))
        self.images, self.labels = (copy.tensor for copy in self._copies)
        self.stats = ChannelStats.of(info, self.device)
        # without augmentation a batch is rows of the split normalized once, by the operations a batch would
        # take (so to the same bits), shared by the loaders of equal data: one gather a batch instead of five
        # passes over it
        self.inputs = None if augment else self._copies[0].derived(
            ("inputs", info.mean, info.std), lambda images: self.stats.normalize(images.float().div_(255)))
        self.batch_size = batch_size
        self.shuffle, self.augment, self.seed, self.drop_last = shuffle, augment, seed, drop_last
        # channels-last batches for channels-last convolutions (much faster on CPUs and tensor cores)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = _generator(self.seed, self.epoch)
        self.epoch += 1
        return self._batches(generator)

    def _batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        batches = [slice(i * self.batch_size, min((i + 1) * self.batch_size, n)) for i in range(len(self))]
        # Everything random for the epoch is drawn here, on the CPU generator and in the order the batches
        # use it, then moved to the device once (the order, and the crops and flips). A CPU-to-GPU copy
        # waits for the GPU to finish its queue, so copies per batch would keep the CPU from queueing the
        # next step while the GPU runs this one.
        if self.shuffle:
            order = torch.randperm(n, generator=generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        draws = None
        if self.augment and batches:
            draws = torch.cat([draw_crop_flip(rows.stop - rows.start, generator) for rows in batches]).to(self.device)
        for rows in batches:
            index = order[rows]
            # index_select copies whole rows; indexing with a tensor copies element by element (far slower on CPUs)
            if self.inputs is not None:
                x = self.inputs.index_select(0, index)
            else:
                x = self.images.index_select(0, index).float().div_(255)
                if draws is not None:
                    x = crop_flip(x, draws[rows])
                x = self.stats.normalize(x)
            yield x.contiguous(memory_format=self.memory_format), self.labels.index_select(0, index)


def prune_batches(data: Data, ratio: int, batch_size: int, device: torch.device | str = "cpu",
                  seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The pruning set: ``ratio * num_classes`` random training examples (capped at the train size), with
    the training augmentation, materialized once as a list of batches as pruners iterate it more than once."""
    if ratio < 1:
        raise UserError(f"the pruning data ratio must be at least 1 example per class, got {ratio}")
    n = min(ratio * data.info.num_classes, len(data.train))
    chosen = torch.randperm(len(data.train), generator=_generator(seed, 1_000))[:n]
    subset = Split(data.train.images[chosen], data.train.labels[chosen])
    loader = DeviceLoader(subset, data.info, batch_size, device, augment=data.info.augment, seed=seed)
    return list(loader)
