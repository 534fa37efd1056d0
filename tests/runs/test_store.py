"""The result store: atomic records, the one reuse rule (usable_record), and the table the notebooks read."""

import json

import pytest

from prunelab.runs.config import RunConfig
from prunelab.runs.store import (
    RecordConflict,
    find_record,
    incomplete_folders,
    json_writer,
    load_record,
    load_table,
    record_path,
    usable_record,
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
    assert usable_record(config) is None and find_record(config.result_dir, "singleshot", config.record_name) is None


def test_a_complete_record_of_the_same_configuration_is_reused(config):
    _write(config)
    record = usable_record(config)
    assert record is not None and record.summary["config_hash"] == config.config_hash()
    assert record.path.name == config.config_hash()
    assert usable_record(config.replace(force=True)) is None  # --force asks for a fresh one


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
