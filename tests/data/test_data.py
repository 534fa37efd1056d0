import pickle
import warnings
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.datasets
import torchvision.datasets.cifar
import torchvision.datasets.mnist
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from prunelab.data.catalog import DATA_SOURCES, DATASETS
from prunelab.data.in_memory import (
    ChannelStats,
    Data,
    DeviceLoader,
    Split,
    StandInDataWarning,
    _generator,
    data_root,
    load_data,
    prune_batches,
    random_crop_flip,
    synthetic_data,
)
from prunelab.errors import UserError


def _pickle(path: Path, entry: dict) -> None:
    # The real files are Python 2 pickles whose byte-string keys torchvision reads back (encoding="latin1")
    # as str keys such as "data"; str keys give exactly what torchvision indexes.
    with open(path, "wb") as file:
        pickle.dump(entry, file, protocol=2)


def _cifar_batch(rng: np.random.Generator, n: int, classes: int, label_key: str):
    rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)  # 1024 red, 1024 green, 1024 blue, row-major
    labels = rng.integers(0, classes, n).tolist()
    return {"data": rows, label_key: labels}, rows.reshape(n, 3, 32, 32), np.array(labels)


def _write_cifar10(root: Path, rng: np.random.Generator):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_images, train_labels = [], []
    for i in range(1, 6):
        entry, images, labels = _cifar_batch(rng, 2, 10, "labels")
        _pickle(folder / f"data_batch_{i}", entry)
        train_images.append(images)
        train_labels.append(labels)
    entry, test_images, test_labels = _cifar_batch(rng, 3, 10, "labels")
    _pickle(folder / "test_batch", entry)
    _pickle(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    return {"train": (np.concatenate(train_images), np.concatenate(train_labels)),
            "test": (test_images, test_labels)}


def _write_cifar100(root: Path, rng: np.random.Generator):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    written = {}
    for split, n in (("train", 6), ("test", 4)):
        entry, images, labels = _cifar_batch(rng, n, 100, "fine_labels")
        entry["coarse_labels"] = [label // 5 for label in entry["fine_labels"]]
        _pickle(folder / split, entry)
        written[split] = (images, labels)
    _pickle(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                              "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return written


_WRITERS = {"cifar10": _write_cifar10, "cifar100": _write_cifar100}
_CLASSES = {"mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def normalize(x, info):
    """``x`` normalized as a loader of ``info``'s data normalizes it."""
    return ChannelStats.of(info, x.device).normalize(x)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_real_files_load_through_torchvision_and_then_from_the_cache(name, tmp_path, offline, monkeypatch,
                                                                     write_mnist):
    written = {**_WRITERS, "mnist": write_mnist}[name](tmp_path, np.random.default_rng(1))

    data = load_data(name, "real", root=tmp_path)  # download=True: torchvision must find the files and stop
    assert data.source == "real" and not data.stand_in
    for split in ("train", "test"):
        images, labels = written[split]
        got = getattr(data, split)
        assert got.images.dtype == torch.uint8 and got.labels.dtype == torch.int64
        assert got.images.shape == (len(images), *DATASETS[name].input_shape)
        assert torch.equal(got.images, torch.from_numpy(images))
        assert torch.equal(got.labels, torch.from_numpy(labels.astype(np.int64)))
    cache = tmp_path / "prunelab-cache"
    assert sorted(p.name for p in cache.iterdir()) == [f"{name}-test.pt", f"{name}-train.pt"]  # no temp files

    def not_again(*args, **kwargs):
        raise AssertionError("torchvision was used although the cache exists")

    monkeypatch.setattr(torchvision.datasets, _CLASSES[name], not_again)
    again = load_data(name, "real", root=tmp_path, train_subset=3)
    assert torch.equal(again.train.images, data.train.images[:3])
    assert torch.equal(again.test.labels, data.test.labels)


def test_runs_of_one_process_share_the_tensors_of_a_cached_split(tmp_path, offline, write_mnist):
    """A fused group opens all its runs at once: one host copy of the split, not one per run."""
    write_mnist(tmp_path, np.random.default_rng(2))
    first = load_data("mnist", "real", root=tmp_path)  # from torchvision, then cached
    second, third = (load_data("mnist", "real", root=tmp_path) for _ in range(2))  # from the cache
    assert second.train.images is third.train.images and second.test.labels is third.test.labels
    assert torch.equal(second.train.images, first.train.images)
    assert load_data("mnist", "real", root=tmp_path, train_subset=3).train.images.data_ptr() != (
        second.train.images.data_ptr())  # a subset is a copy of its own
    cached = tmp_path / "prunelab-cache" / "mnist-train.pt"
    torch.save({"images": torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "labels": torch.zeros(2)}, cached)
    assert len(load_data("mnist", "real", root=tmp_path).train) == 2  # a file written again is read again


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
@pytest.mark.parametrize("download", [True, False])
def test_missing_real_data_is_a_one_line_user_error(name, download, tmp_path, offline):
    with pytest.raises(UserError) as caught:
        load_data(name, "real", root=tmp_path / "empty", download=download)
    message = str(caught.value)
    assert str((tmp_path / "empty").resolve()) in message
    assert DATASETS[name].expected_files in message and "\n" not in message
    assert ("bundled" in message) == (name == "mnist")  # the real subset this machine has, where there is one


def test_real_files_that_fail_torchvisions_check_are_named_not_called_missing(tmp_path, offline):
    found = tmp_path / "cifar-10-batches-py"
    found.mkdir()
    (found / "data_batch_1").write_bytes(b"not a batch")
    with pytest.raises(UserError) as caught:
        load_data("cifar10", "real", root=tmp_path, download=False)
    assert str(found.resolve()) in str(caught.value)


def test_auto_falls_back_to_synthetic_with_a_warning(tmp_path, offline):
    with pytest.warns(StandInDataWarning, match="synthetic stand-in"):
        data = load_data("cifar10", "auto", root=tmp_path, train_subset=20, test_subset=10)
    assert data.source == "synthetic" and data.stand_in
    assert data.train.images.shape == (20, 3, 32, 32) and len(data.test) == 10


def test_auto_uses_real_data_when_present(tmp_path, offline, write_mnist):
    write_mnist(tmp_path, np.random.default_rng(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StandInDataWarning)
        data = load_data("mnist", "auto", root=tmp_path)
    assert data.source == "real" and len(data.train) == 7


def test_a_record_made_on_a_stand_in_is_not_reused_once_auto_finds_the_real_set(tmp_path, offline, write_mnist):
    from prunelab.runs.config import RunConfig
    from prunelab.runs.fused import run_configs
    from prunelab.runs.integrity import MARKER

    root = tmp_path / "data"
    root.mkdir()
    config = RunConfig(dataset="mnist", model="fc", data_source="auto", data_dir=str(root), train_subset=5,
                       test_subset=5, post_epochs=1, result_dir=str(tmp_path / "results"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInDataWarning)
        (first,) = run_configs([config], progress=False, log=lambda line: None)
    assert first.summary["data_source"] != "real"
    write_mnist(root, np.random.default_rng(2))
    lines: list[str] = []
    (again,) = run_configs([config], progress=False, log=lines.append)
    assert again.summary["data_source"] == "real" and again.path == first.path
    assert any("computing it again" in line for line in lines)  # said, not silently replaced
    written = (again.path / MARKER).stat().st_mtime_ns
    run_configs([config], progress=False, log=lines.append)
    assert (again.path / MARKER).stat().st_mtime_ns == written  # reused now: the same data is there


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("PRUNELAB_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "given") == tmp_path / "given"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("PRUNELAB_DATA")
    assert data_root() == Path("data")


def _candidates(image: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Every crop of the zero-padded image, unflipped and flipped: [(2p+1)^2 * 2, C, H, W]."""
    _, height, width = image.shape
    padded = F.pad(image, (padding,) * 4)
    crops = [padded[:, dy:dy + height, dx:dx + width]
             for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)]
    crops += [crop.flip(-1) for crop in crops]
    return torch.stack(crops)


def test_random_crop_flip_really_crops_and_flips():
    # Every pixel distinct and non-zero, so a crop is identified exactly and zeros can only be padding.
    image = (torch.arange(3 * 32 * 32, dtype=torch.float32).view(3, 32, 32) + 1) / (3 * 32 * 32 + 1)
    out = random_crop_flip(image.expand(300, -1, -1, -1), torch.Generator().manual_seed(0))
    assert out.shape == (300, 3, 32, 32)

    candidates = _candidates(image)
    matches = (out[:, None] == candidates[None]).flatten(2).all(-1)  # [300, 162]
    assert (matches.sum(1) == 1).all()  # each output is exactly one crop, maybe flipped
    which = matches.float().argmax(1)
    flipped, offset = which >= 81, which % 81
    assert 100 < flipped.sum() < 200
    assert len(offset.unique()) > 60  # offsets spread over the 9 x 9 grid
    assert (out == 0).flatten(1).any(1).float().mean() > 0.7  # shifted: padding rows/columns show
    assert ((offset == 40) & flipped).any()  # centred and flipped: exactly the mirror image
    assert torch.equal(out[((offset == 40) & flipped).nonzero()[0, 0]], image.flip(-1))


def test_random_crop_flip_is_deterministic_under_a_seed():
    x = torch.rand(16, 3, 32, 32)
    first = random_crop_flip(x, torch.Generator().manual_seed(5))
    assert torch.equal(first, random_crop_flip(x, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, random_crop_flip(x, torch.Generator().manual_seed(6)))


class _HostToDeviceCopies(TorchDispatchMode):
    """Counts the ops that take a CPU tensor and return one on another device (a CPU-to-GPU copy on CUDA)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if any(t.device.type == "cpu" for t in inputs) and any(t.device.type != "cpu" for t in outputs):
            self.count += 1
        return out


@pytest.mark.parametrize("shuffle", [False, True])
def test_device_loader_copies_to_the_device_per_epoch_not_per_batch(shuffle):
    # A CPU-to-GPU copy waits for the GPU's queue, so one per batch would serialize the CPU and the GPU.
    # The "meta" device stands in for a GPU: the same ops run, nothing is computed.
    copies = []
    for n in (32, 160):  # 2 and 10 batches
        loader = DeviceLoader(_split(n), DATASETS["cifar10"], 16, device="meta", shuffle=shuffle, augment=True)
        counter = _HostToDeviceCopies()
        with counter:
            batches = list(loader)
        assert len(batches) == n // 16 and batches[0][0].device.type == "meta"
        copies.append(counter.count)
    assert copies[0] == copies[1] <= 4, copies


def test_device_loader_augments_each_batch_as_random_crop_flip_would_with_the_epoch_generator():
    split, info = _split(40), DATASETS["cifar10"]
    loader = DeviceLoader(split, info, 16, shuffle=False, augment=True, seed=2)
    generator = _generator(2, 0)  # the first epoch's generator
    for (x, y), start in zip(loader, range(0, 40, 16), strict=True):
        plain = split.images[start:start + 16].float().div(255)
        assert torch.equal(x, normalize(random_crop_flip(plain, generator), info))
        assert torch.equal(y, split.labels[start:start + 16])


def _split(n: int = 103) -> Split:
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return Split(images, torch.arange(n))


def test_device_loader_covers_each_example_once_per_epoch_in_a_new_order():
    info = DATASETS["cifar10"]
    loader = DeviceLoader(_split(), info, batch_size=16, shuffle=True, augment=True, seed=1)
    assert len(loader) == 7
    orders = []
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == 7 and [len(y) for _, y in batches] == [16] * 6 + [7]
        for x, y in batches:
            assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32) and y.dtype == torch.int64
        labels = torch.cat([y for _, y in batches])
        assert torch.equal(labels.sort().values, torch.arange(103))
        orders.append(labels)
    assert not torch.equal(orders[0], orders[1])

    same = DeviceLoader(_split(), info, batch_size=16, shuffle=True, augment=True, seed=1)
    other = DeviceLoader(_split(), info, batch_size=16, shuffle=True, augment=True, seed=2)
    for epoch in range(2):
        a, b = list(same), list(other)
        assert torch.equal(torch.cat([y for _, y in a]), orders[epoch])
        assert not torch.equal(torch.cat([y for _, y in b]), orders[epoch])
    fresh = DeviceLoader(_split(), info, batch_size=16, shuffle=True, augment=True, seed=1)
    loader.epoch = 0  # the same seed and epoch give the same batches, augmentation included
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(loader, fresh))


def test_batches_of_a_split_normalized_once_are_bit_for_bit_those_normalized_per_batch():
    # a split that is not augmented is converted and normalized once, as a whole: a batch must hold the very
    # bits the per-batch conversion gives (stored runs resume and verify on them), and loaders of equal data
    # share the one normalized tensor (a fused group opens all its runs at once)
    info, n = DATASETS["mnist"], 75
    generator = torch.Generator().manual_seed(5)
    split = Split(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator), torch.arange(n))
    loader = DeviceLoader(split, info, 16, shuffle=True, seed=4)
    order = torch.randperm(n, generator=_generator(4, 0))  # the first epoch's shuffle
    for (x, y), start in zip(loader, range(0, n, 16), strict=True):
        index = order[start:start + 16]
        assert torch.equal(x, normalize(split.images[index].float().div(255), info))
        assert torch.equal(y, split.labels[index])
    again = DeviceLoader(Split(split.images.clone(), split.labels.clone()), info, 8)
    assert again.inputs is loader.inputs  # equal data, loaded apart: normalized once
    other = DeviceLoader(_split(n), DATASETS["cifar10"], 8)
    assert other.inputs is not loader.inputs and other.inputs.shape == (n, 3, 32, 32)
    assert DeviceLoader(_split(n), DATASETS["cifar10"], 8, augment=True).inputs is None  # augmented per batch


def test_device_loader_normalizes_and_drops_last():
    info, split = DATASETS["cifar10"], _split()
    batches = list(DeviceLoader(split, info, batch_size=50))
    x = torch.cat([x for x, _ in batches])
    mean, std = torch.tensor(info.mean).view(1, 3, 1, 1), torch.tensor(info.std).view(1, 3, 1, 1)
    expected = (split.images.float() / 255 - mean) / std
    torch.testing.assert_close(x, expected)
    torch.testing.assert_close(normalize(split.images.float() / 255, info), expected)
    assert torch.equal(torch.cat([y for _, y in batches]), split.labels)  # no shuffle: in order

    dropping = DeviceLoader(split, info, batch_size=50, drop_last=True)
    assert len(dropping) == 2 and [len(y) for _, y in dropping] == [50, 50]
    with pytest.raises(UserError):
        DeviceLoader(split, info, batch_size=0)


def test_digits_are_the_real_sklearn_digits():
    data = load_data("digits", "real")
    assert data.source == "real" and not data.stand_in
    assert (len(data.train), len(data.test)) == (1437, 360)
    assert data.train.images.shape[1:] == (1, 8, 8) and data.train.images.dtype == torch.uint8
    assert data.train.images.max() == 255 and len(data.train.labels.unique()) == 10
    assert torch.equal(load_data("digits", "auto", seed=7).train.images, data.train.images)
    small = load_data("digits", train_subset=100, test_subset=10_000)
    assert torch.equal(small.train.images, data.train.images[:100]) and len(small.test) == 360
    stand_in = load_data("digits", "synthetic", train_subset=50)
    assert stand_in.stand_in and stand_in.train.images.shape == (50, 1, 8, 8)


def test_synthetic_data_is_deterministic_and_shaped_like_the_real_set():
    a = load_data("cifar100", "synthetic", train_subset=1500, test_subset=40, seed=3)
    assert a.source == "synthetic" and a.stand_in and a.info.num_classes == 100
    assert a.train.images.shape == (1500, 3, 32, 32) and a.train.images.dtype == torch.uint8
    same = load_data("cifar100", "synthetic", train_subset=1500, seed=3)
    assert torch.equal(a.train.images, same.train.images)
    seed_0 = load_data("cifar100", "synthetic", train_subset=40).train.images
    assert not torch.equal(a.train.images[:40], seed_0)
    assert not torch.equal(a.train.images[:40], a.test.images)
    small = load_data("cifar100", "synthetic", train_subset=30, seed=3)
    assert torch.equal(small.train.images, a.train.images[:30])  # a subset is the start of a larger set
    full = load_data("mnist", "synthetic", test_subset=10**6)
    assert (len(full.train), len(full.test)) == (60_000, 10_000)
    counts = torch.bincount(full.train.labels, minlength=10)
    assert counts.min() > 5500 and counts.max() < 6500


def test_synthetic_data_is_learnable():
    data = load_data("cifar10", "synthetic", train_subset=500, test_subset=500)
    x, y = next(iter(DeviceLoader(data.train, data.info, batch_size=500)))
    x_test, y_test = next(iter(DeviceLoader(data.test, data.info, batch_size=500)))
    model = torch.nn.Linear(3 * 32 * 32, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(30):
        optimizer.zero_grad()
        F.cross_entropy(model(x.flatten(1)), y).backward()
        optimizer.step()
    accuracy = (model(x_test.flatten(1)).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.2


def test_prune_batches_are_a_fixed_random_training_subset():
    data = load_data("mnist", "synthetic", train_subset=300, test_subset=1)
    batches = prune_batches(data, ratio=5, batch_size=16, seed=4)
    assert isinstance(batches, list) and [len(y) for _, y in batches] == [16, 16, 16, 2]
    x = torch.cat([x for x, _ in batches])
    train = normalize(data.train.images.float() / 255, data.info)
    match = (x[:, None] == train[None]).flatten(2).all(-1)  # mnist has no augmentation: exact rows
    assert (match.sum(1) >= 1).all() and len(match.float().argmax(1).unique()) == 50

    again = prune_batches(data, ratio=5, batch_size=16, seed=4)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(batches, again))
    other = torch.cat([x for x, _ in prune_batches(data, ratio=5, batch_size=16, seed=5)])
    assert not torch.equal(x, other)
    assert sum(len(y) for _, y in prune_batches(data, ratio=100, batch_size=64)) == 300
    with pytest.raises(UserError):
        prune_batches(data, ratio=0, batch_size=16)

    cifar = load_data("cifar10", "synthetic", train_subset=40, test_subset=1)
    augmented = prune_batches(cifar, ratio=2, batch_size=8, seed=1)
    assert [tuple(x.shape) for x, _ in augmented] == [(8, 3, 32, 32)] * 2 + [(4, 3, 32, 32)]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(augmented, prune_batches(cifar, 2, 8, seed=1)))


@pytest.mark.parametrize("kwargs, words", [
    ({"name": "imagenet"}, "mnist, cifar10, cifar100, digits"),
    ({"name": "mnist", "source": "fake"}, ", ".join(DATA_SOURCES)),
    ({"name": "digits", "train_subset": 0}, "at least 1"),
    ({"name": "digits", "test_subset": -3}, "at least 1"),
])
def test_bad_choices_are_user_errors(kwargs, words):
    with pytest.raises(UserError, match=words):
        load_data(**kwargs)


def test_data_holds_its_parts():
    data = load_data("digits", "synthetic", train_subset=5, test_subset=5)
    assert isinstance(data, Data) and data.info is DATASETS["digits"]
    with pytest.raises(ValueError):
        Split(torch.zeros(3, 1, 8, 8), torch.zeros(3))


def test_a_broken_cache_is_rebuilt_from_the_files(tmp_path, offline, write_mnist):
    written = write_mnist(tmp_path, np.random.default_rng(3))
    cache = tmp_path / "prunelab-cache"
    cache.mkdir()
    (cache / "mnist-train.pt").write_bytes(b"half a file")
    data = load_data("mnist", "real", root=tmp_path)
    assert torch.equal(data.train.images, torch.from_numpy(written["train"][0]))
    assert len(load_data("mnist", "real", root=tmp_path, download=False).train) == 7


def test_auto_does_not_retry_a_failed_download_but_reads_files_that_appear(tmp_path, offline, monkeypatch,
                                                                         write_mnist):
    tries = []

    def no_network(*args, **kwargs):
        tries.append(args)
        raise URLError("no network in tests")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", no_network)
    assert load_data("mnist", "auto", root=tmp_path, train_subset=4, test_subset=4).source != "real"
    tried_first = len(tries)  # torchvision tries each of its mirrors
    runs = [load_data("mnist", "auto", root=tmp_path, train_subset=4, test_subset=4) for _ in range(3)]
    assert all(data.source != "real" for data in runs)
    assert tried_first > 0 and len(tries) == tried_first
    with pytest.raises(UserError):  # asked for the real data set, it tries again
        load_data("mnist", "real", root=tmp_path)
    assert len(tries) == 2 * tried_first
    write_mnist(tmp_path, np.random.default_rng(0))
    assert load_data("mnist", "auto", root=tmp_path).source == "real" and len(tries) == 2 * tried_first


def test_loaders_of_equal_data_share_one_accelerator_copy():
    # the meta device stands in for a GPU (the copy is made the same way); a fused group of 112 CIFAR-10 runs
    # would otherwise hold 112 copies of the data set before its first step
    info = DATASETS["mnist"]
    first, again, other = (synthetic_data(info, 64, 32, seed) for seed in (0, 0, 1))
    a, b, c = (DeviceLoader(data.train, info, 32, "meta") for data in (first, again, other))
    assert a.images is b.images and a.labels is b.labels  # equal data, loaded apart: one copy
    assert a.images is not c.images  # other data: its own
    assert a.images.device.type == "meta" and a.images.shape == first.train.images.shape
    cpu = DeviceLoader(first.train, info, 32, "cpu")
    assert cpu.images is first.train.images  # on the CPU the split's own tensor, as before


def test_a_subset_larger_than_its_split_is_said_and_the_whole_split_used():
    from prunelab.data.run_data import SubsetWarning
    from prunelab.runs.config import RunConfig
    from prunelab.runs.prepare import load_run_data

    with pytest.warns(SubsetWarning, match="--train-subset") as caught:
        data = load_run_data(RunConfig(dataset="digits", data_source="real", train_subset=10**6), torch.device("cpu"))
    assert len(caught) == 1 and data.train_examples < 10**6 and f"{data.train_examples:,}" in str(caught[0].message)
    # the pruning set is drawn from the training split: 10 per class of 10 classes from 64 examples is all 64
    with pytest.warns(SubsetWarning, match="--prune-dataset-ratio") as caught:
        data = load_run_data(RunConfig(dataset="digits", data_source="real", train_subset=64), torch.device("cpu"))
    assert len(caught) == 1 and len(torch.cat([y for _, y in data.prune_batches()])) == 64
