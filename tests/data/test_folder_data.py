"""Tiny ImageNet and ImageNet from image folders: small stand-in trees in each layout, read by the real code."""

import multiprocessing
import os
import signal
import time

import pytest
import torch
from forked_processes import run_forked
from PIL import Image

from prunelab.data.catalog import FOLDER_DATASETS
from prunelab.data.folders import find_samples, folder_loaders, folder_prune_batches
from prunelab.errors import UserError

WNIDS = ["n02", "n01", "n03"]  # deliberately unsorted: class indices are the sorted names
COLOURS = {"n01": (200, 30, 30), "n02": (30, 200, 30), "n03": (30, 30, 200)}  # one solid colour per class
PER_CLASS = 4
# JPEG stores a solid colour exactly up to rounding; allow two grey levels
PIXEL_TOLERANCE = 2 / 255


def _image(path, wnid, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOURS[wnid]).save(path, quality=95)


def _tiny_tree(root, val_layout="archive"):
    """tiny-imagenet-200 as unzipped (val/images + val_annotations.txt) or as the original's setup script left it."""
    base = root / "tiny-imagenet-200"
    for wnid in WNIDS:
        for i in range(PER_CLASS):
            _image(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", wnid, (64, 64))
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("not an image\n")
    lines = []
    for i, wnid in enumerate(WNIDS * 2):
        if val_layout == "archive":
            _image(base / "val" / "images" / f"val_{i}.JPEG", wnid, (64, 64))
            lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
        else:
            _image(base / "val" / wnid / f"val_{i}.JPEG", wnid, (64, 64))
    if lines:
        (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    return base


def _imagenet_tree(root, folder="imagenet"):
    base = root / folder
    for split, count in (("train", PER_CLASS), ("val", 2)):
        for wnid in WNIDS:
            for i in range(count):
                _image(base / split / wnid / f"{wnid}_{i}.JPEG", wnid, (48 + 8 * i, 40))
    return base


def _colour_label(x, info):
    """The class whose colour the centre pixel shows, after undoing the normalization."""
    mean = torch.tensor(info.mean).view(-1, 1, 1)
    std = torch.tensor(info.std).view(-1, 1, 1)
    centre = (x * std + mean)[:, x.shape[1] // 2, x.shape[2] // 2]
    for label, wnid in enumerate(sorted(WNIDS)):
        if torch.allclose(centre, torch.tensor(COLOURS[wnid]) / 255, atol=PIXEL_TOLERANCE):
            return label
    return None


def _all(loader):
    xs, ys = zip(*list(loader))
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("val_layout", ["archive", "setup-script"])
def test_tiny_imagenet_batches_shapes_labels_and_normalization(tmp_path, val_layout):
    _tiny_tree(tmp_path, val_layout)
    info = FOLDER_DATASETS["tiny-imagenet"]
    train, test = folder_loaders("tiny-imagenet", tmp_path, batch_size=5, device="cpu")
    assert len(train) == 3 and len(test) == 2
    x, y = _all(train)
    assert x.shape == (3 * PER_CLASS, 3, 64, 64) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert sorted(y.tolist()) == sorted([0, 1, 2] * PER_CLASS)
    # the centre survives the padded crop and the flip, so every image still shows its class's colour
    assert [_colour_label(image, info) for image in x] == y.tolist()
    x, y = _all(test)
    assert x.shape == (6, 3, 64, 64) and [_colour_label(image, info) for image in x] == y.tolist()
    assert sorted(y.tolist()) == [0, 0, 1, 1, 2, 2]


def test_tiny_imagenet_training_augmentation_pads_and_flips(tmp_path):
    _tiny_tree(tmp_path)
    info = FOLDER_DATASETS["tiny-imagenet"]
    train, _ = folder_loaders("tiny-imagenet", tmp_path, batch_size=12, device="cpu", seed=3)
    x, _ = next(iter(train))
    zero = -torch.tensor(info.mean) / torch.tensor(info.std)  # a black padding pixel after normalization
    border = torch.cat([x[:, :, 0, :], x[:, :, -1, :], x[:, :, :, 0], x[:, :, :, -1]], dim=2)  # [B, C, 4*64]
    padded = torch.isclose(border, zero.view(1, -1, 1), atol=1e-4).all(dim=1).any(dim=1)
    assert padded.sum() >= 6  # 12 crops, each unpadded with probability 1/81


def test_loaders_are_seeded_per_epoch_and_independent_of_workers(tmp_path):
    _tiny_tree(tmp_path)
    first, _ = folder_loaders("tiny-imagenet", tmp_path, batch_size=4, seed=7)
    again, _ = folder_loaders("tiny-imagenet", tmp_path, batch_size=4, seed=7, workers=2)
    epoch0, epoch1, with_workers = _all(first), _all(first), _all(again)
    assert torch.equal(epoch0[0], with_workers[0]) and torch.equal(epoch0[1], with_workers[1])
    assert not torch.equal(epoch0[1], epoch1[1]) or not torch.equal(epoch0[0], epoch1[0])
    resumed, _ = folder_loaders("tiny-imagenet", tmp_path, batch_size=4, seed=7)
    resumed.epoch = 1
    assert torch.equal(_all(resumed)[0], epoch1[0])


def _iterate_while_the_job_is_signalled(root, heard):
    """A run's process (its own process group, as a Slurm job's) that takes the stop signals, iterating a loader
    with 2 workers while the whole group is signalled, as Slurm signals every process of a job."""
    os.setpgrp()
    multiprocessing.set_start_method("fork", force=True)  # as a run's `python` starts its workers on Linux
    for stop in (signal.SIGTERM, signal.SIGUSR2):
        signal.signal(stop, lambda *_: os.write(os.open(heard, os.O_WRONLY | os.O_APPEND | os.O_CREAT),
                                                f"{os.getpid()}\n".encode()))
    train, _ = folder_loaders("tiny-imagenet", root, batch_size=2, seed=7, workers=2)
    for index, _ in enumerate(train):
        if index == 0:
            time.sleep(0.5)  # both workers have started
            for stop in (signal.SIGTERM, signal.SIGUSR2):
                os.killpg(0, stop)
            time.sleep(0.5)
    os.write(os.open(heard, os.O_WRONLY | os.O_APPEND), f"run {os.getpid()}\n".encode())


def test_loader_workers_leave_the_stop_signals_to_the_run(tmp_path):
    _tiny_tree(tmp_path)
    heard = tmp_path / "heard"
    done = run_forked(_iterate_while_the_job_is_signalled, tmp_path, str(heard))
    assert done.returncode == 0, done.stderr[-2000:]
    *handled, last = heard.read_text().split("\n")[:-1]
    assert last.startswith("run ") and handled == [last.split()[1]] * 2  # the run heard both; no worker did


def test_subsets_are_seeded_random_draws(tmp_path):
    _tiny_tree(tmp_path)
    train, test = folder_loaders("tiny-imagenet", tmp_path, batch_size=64, train_subset=6, test_subset=3, seed=1)
    assert len(train.dataset) == 6 and len(test.dataset) == 3
    same, _ = folder_loaders("tiny-imagenet", tmp_path, batch_size=64, train_subset=6, seed=1)
    assert same.dataset.samples == train.dataset.samples
    with pytest.raises(UserError):
        folder_loaders("tiny-imagenet", tmp_path, batch_size=4, train_subset=0)


@pytest.mark.parametrize("folder", ["imagenet", "imagenet_raw"])
def test_imagenet_image_folder_layout(tmp_path, folder):
    _imagenet_tree(tmp_path, folder)
    info = FOLDER_DATASETS["imagenet"]
    train, test = folder_loaders("imagenet", tmp_path, batch_size=4, channels_last=True)
    x, y = next(iter(train))
    assert x.shape == (4, 3, 224, 224) and x.is_contiguous(memory_format=torch.channels_last)
    assert set(y.tolist()) <= {0, 1, 2}
    x, y = _all(test)  # Resize(256) + CenterCrop(224) of a solid colour: the colour, at any input size
    assert x.shape == (6, 3, 224, 224) and y.tolist() == [0, 0, 1, 1, 2, 2]
    assert [_colour_label(image, info) for image in x] == y.tolist()


def test_root_may_be_the_dataset_folder_itself(tmp_path):
    base = _imagenet_tree(tmp_path)
    train, _, classes = find_samples("imagenet", base)
    assert classes == sorted(WNIDS) and len(train) == 3 * PER_CLASS


def test_prune_batches_are_a_materialised_augmented_subset(tmp_path):
    _tiny_tree(tmp_path)
    batches = folder_prune_batches("tiny-imagenet", tmp_path, ratio=1, batch_size=5)
    # ratio * 200 classes is more than the stand-in tree has: all 12 images, in batches of 5
    assert [len(y) for _, y in batches] == [5, 5, 2] and batches[0][0].shape[1:] == (3, 64, 64)
    assert torch.equal(batches[0][0], folder_prune_batches("tiny-imagenet", tmp_path, 1, 5)[0][0])


@pytest.mark.parametrize("name,layout", [("tiny-imagenet", "train/<wnid>/images/*.JPEG"),
                                         ("imagenet", "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG")])
def test_missing_data_is_one_sentence_naming_the_folder_and_layout(tmp_path, name, layout):
    with pytest.raises(UserError) as err:
        folder_loaders(name, tmp_path / "data", batch_size=4)
    message = str(err.value)
    assert str((tmp_path / "data").resolve()) in message and layout in message
    assert ". " not in message and "\n" not in message


def test_an_empty_validation_folder_is_missing_data(tmp_path):
    base = _tiny_tree(tmp_path, "setup-script")
    for path in (base / "val").rglob("*.JPEG"):
        path.unlink()
    with pytest.raises(UserError, match="val/images"):
        folder_loaders("tiny-imagenet", tmp_path, batch_size=4)
