"""The result store: atomic records, the one reuse rule (usable_record), and the table the notebooks read."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from prunelab.runs.cli import main
from prunelab.runs.config import RunConfig
from prunelab.runs.store import (
    RecordConflict,
    csv_writer,
    incomplete_folders,
    json_writer,
    load_record,
    load_table,
    record_path,
    usable_record,
    valid_record,
    write_record,
)


def _write(config: RunConfig, **summary) -> None:
    """A record as a run writes it (config, summary, environment), without training."""
    final = record_path(config.result_dir, config.experiment, config.record_name)
    write_record(final, {"config.json": json_writer(config.to_dict()),
                         "summary.json": json_writer({"config_hash": config.config_hash(), "top1": 50.0, **summary}),
                         "env.json": json_writer({"device": "cpu"})})


@pytest.fixture
def config(tmp_path):
    return RunConfig(pruner="snip", compression=0.5, data_source="synthetic", result_dir=str(tmp_path))


def test_a_missing_record_is_not_usable(config):
    assert usable_record(config) is None
    assert valid_record(record_path(config.result_dir, "singleshot", config.record_name)) is None


def test_a_complete_record_of_the_same_configuration_is_reused(config):
    _write(config)
    record = usable_record(config)
    assert record is not None and record.summary["config_hash"] == config.config_hash()
    assert record.path.name == config.config_hash()
    assert usable_record(config.replace(force=True)) is None  # --force asks for a fresh one


def test_a_layer_table_reads_back_its_module_paths_as_text(config):
    """An ``nn.Sequential``'s module paths ("1", "3") are text, as the parameters' paths ("1.weight") that name them
    elsewhere in the record are; a parameter of the network itself has the empty path."""
    final = record_path(config.result_dir, config.experiment, config.record_name)
    layers = pd.DataFrame({"module": ["", "1", "1", "3"], "param": ["scale", "weight", "bias", "weight"],
                           "shape": ["(1,)", "(100, 784)", "(100,)", "(10, 100)"]})
    write_record(final, {"config.json": json_writer(config.to_dict()),
                         "summary.json": json_writer({"config_hash": config.config_hash(), "top1": 50.0}),
                         "env.json": json_writer({"device": "cpu"}), "layers.csv": csv_writer(layers)})
    assert list(load_record(final).layers["module"]) == ["", "1", "1", "3"]


def test_a_different_run_under_the_same_name_is_a_conflict(config):
    _write(config.replace(expid="mine"))
    with pytest.raises(RecordConflict, match="already holds a different run"):
        usable_record(config.replace(expid="mine", compression=1.0))


def test_a_record_lacking_a_required_measurement_is_not_usable(config):
    _write(config)
    assert usable_record(config, require=("top1",)) is not None
    assert usable_record(config, require=("peak_memory_mb",)) is None


def test_an_amp_record_of_another_devices_dtype_is_a_conflict(config):
    amp = config.replace(quantization=True, no_cuda=True)  # on the CPU: bf16, its default
    _write(amp, amp_dtype="bf16")
    assert usable_record(amp) is not None
    _write(amp, amp_dtype="fp16")  # as a CUDA machine records it
    with pytest.raises(RecordConflict, match="--amp-dtype fp16 to reuse it"):
        usable_record(amp)


def test_write_record_replaces_only_once_the_new_one_is_complete(tmp_path):
    final = tmp_path / "singleshot" / "run"
    write_record(final, {"config.json": json_writer({"v": 1}), "summary.json": json_writer({}),
                         "env.json": json_writer({})})

    def broken(path):
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_record(final, {"config.json": json_writer({"v": 2}), "summary.json": broken})
    assert json.loads((final / "config.json").read_text()) == {"v": 1}
    assert not [p for p in final.parent.iterdir() if p.name.startswith(".tmp-")]
    assert load_record(final).config == {"v": 1}


def test_load_table_lists_records_and_names_incomplete_folders(config, tmp_path):
    _write(config)
    _write(config.replace(pruner="rand"))
    (tmp_path / "singleshot" / "half-written").mkdir()
    with pytest.warns(UserWarning, match="hold no complete record: half-written"):
        table = load_table(tmp_path)
    assert sorted(table["pruner"]) == ["rand", "snip"]
    assert table.attrs["incomplete"] == [str(tmp_path / "singleshot" / "half-written")]
    assert incomplete_folders(tmp_path) == [tmp_path / "singleshot" / "half-written"]


def _strict_json(text: str):
    """``text`` parsed as jq and JavaScript parse JSON: NaN and Infinity are refused."""
    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_a_number_not_measured_is_written_null_and_read_back_as_nan(config):
    _write(config, epoch_train_spread_s=math.nan, trace={"times": [1.5, math.inf]}, note="",
           peak=np.float32(2.5), gap=np.float32("nan"))  # numpy's numbers as numbers, not text
    path = record_path(config.result_dir, config.experiment, config.record_name)
    on_disk = _strict_json((path / "summary.json").read_text())
    assert on_disk["epoch_train_spread_s"] is None and on_disk["trace"]["times"] == [1.5, None]
    assert on_disk["peak"] == 2.5 and on_disk["gap"] is None
    summary = load_record(path).summary
    assert math.isnan(summary["epoch_train_spread_s"]) and math.isnan(summary["trace"]["times"][1])
    assert summary["trace"]["times"][0] == 1.5 and summary["top1"] == 50.0 and summary["note"] == ""


def test_a_record_written_with_bare_nan_still_reads(config):
    final = record_path(config.result_dir, config.experiment, config.record_name)
    old = f'{{"config_hash": "{config.config_hash()}", "top1": NaN}}\n'
    write_record(final, {"config.json": json_writer(config.to_dict()),
                         "summary.json": lambda path: path.write_text(old), "env.json": json_writer({})})
    assert math.isnan(load_record(final).summary["top1"])


def test_a_run_writes_only_strict_json(tmp_path):
    # one post-pruning epoch: its training time per epoch has no spread, so the record holds a null
    assert main(["--data-source", "synthetic", "--train-subset", "64", "--test-subset", "32", "--post-epochs", "1",
                 "--expid", "run", "--result-dir", str(tmp_path)]) == 0
    path = tmp_path / "singleshot" / "run"
    files = {p.name: _strict_json(p.read_text()) for p in path.glob("*.json")}
    assert {"config.json", "summary.json", "env.json"} <= set(files)
    assert files["summary.json"]["epoch_train_spread_s"] is None
    assert math.isnan(load_record(path).summary["epoch_train_spread_s"])
