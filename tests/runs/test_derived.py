"""Records made from a finished run (int8, sparse kernels, AMP timing): one function writes them all, so each
says where its numbers come from in the same fields, is reused while its source stands, and keeps its place."""

import dataclasses
import json

import pytest
import torch

from prunelab.runs.amp_timing import AmpTimingSettings, amp_timing_record
from prunelab.runs.config import RunConfig
from prunelab.runs.int8 import Int8Settings, quantize_record
from prunelab.runs.prepare import settings_key
from prunelab.runs.registry import run
from prunelab.runs.sparse import SparseSettings, sparse_record

QUIET = dict(log=lambda _: None)
#: the cheapest measurement of each kind: one calibration batch, one timed pass, one training batch of 4
CHEAP = {
    "int8": (quantize_record, Int8Settings(calibration_batches=1, calibration_batch_size=16, repeats=1)),
    "sparse": (sparse_record, SparseSettings(kernels=("compact",), layer_repeats=1, repeats=1)),
    "amp-timing": (amp_timing_record, AmpTimingSettings(batches=1, batch_size=4, repeats=1, warmup=0)),
}
PROVENANCE = {"source_record", "source_hash", "source_completed", "stand_in", "data_source", "test_examples",
              "device", "threads"}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A conv net (so channels-last) on a synthetic digits stand-in, trained one epoch."""
    config = RunConfig(dataset="digits", model="conv", data_source="synthetic", train_subset=64, test_subset=32,
                       post_epochs=1, train_batch_size=32, test_batch_size=16, compression=0.5,
                       result_dir=str(tmp_path_factory.mktemp("derived")))
    return run(config, progress=False, **QUIET)


@pytest.fixture(scope="module")
def derived(source):
    return {kind: make(source, settings, **QUIET) for kind, (make, settings) in CHEAP.items()}


def test_every_derived_record_names_its_source_in_the_same_fields(source, derived):
    for kind, record in derived.items():
        s = record.summary
        assert PROVENANCE <= set(s), (kind, PROVENANCE - set(s))
        assert s["source_record"] == source.path.name  # the folder's name: no machine's absolute path
        assert s["source_hash"] == source.summary["config_hash"]
        assert s["source_completed"] == (source.path / "COMPLETE").stat().st_mtime_ns
        assert (s["stand_in"], s["data_source"]) == (True, "synthetic")
        assert s["test_examples"] == source.summary["test_examples"] == 32
        assert s["threads"] == torch.get_num_threads() and record.env["data_source"] == "synthetic"
        assert s["device"] == ("cpu" if kind == "int8" else record.env["device"])  # int8 runs on the CPU only
    # each kind's own measurement beside it
    assert derived["int8"].summary["int8_path"] and derived["sparse"].summary["layers"] > 0
    assert derived["amp-timing"].summary["batch_size"] == 4 and (derived["sparse"].path / "layers.csv").is_file()


def test_a_derived_record_keeps_its_source_configuration_its_settings_and_its_place(source, derived):
    for kind, record in derived.items():
        _, settings = CHEAP[kind]
        assert record.path.parent.name == kind and record.path.parents[1] == source.path.parents[1]
        assert record.path.name == f"{source.path.name}-{settings_key(settings)}"
        key = kind.replace("-", "_")
        assert record.config[key] == json.loads(json.dumps(dataclasses.asdict(settings)))
        assert {k: v for k, v in record.config.items() if k != key} == {**source.config, "experiment": kind}


def test_the_default_settings_keep_the_record_names_of_existing_stores():
    assert [settings_key(s()) for s in (Int8Settings, SparseSettings, AmpTimingSettings)] == [
        "d70951", "d7252c", "046eb9"]


def test_a_derived_record_is_reused_until_forced(source, derived):
    for kind, (make, settings) in CHEAP.items():
        marker = derived[kind].path / "COMPLETE"
        before = marker.stat().st_mtime_ns
        assert make(source, settings, **QUIET).path == derived[kind].path and marker.stat().st_mtime_ns == before
    make, settings = CHEAP["sparse"]
    before = (derived["sparse"].path / "COMPLETE").stat().st_mtime_ns
    again = make(source, settings, force=True, **QUIET)
    assert again.path == derived["sparse"].path and (again.path / "COMPLETE").stat().st_mtime_ns != before
