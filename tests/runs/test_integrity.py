"""Records that prove themselves: the manifest, verification on every read and reuse, ``prunelab verify``
and its quarantine, and a corrupt-file matrix that each of them catches."""

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from prunelab.runs.cli import main
from prunelab.runs.config import RunConfig
from prunelab.runs.integrity import MANIFEST, problem
from prunelab.runs.store import InvalidRecord, load_record, load_table, usable_record
from prunelab.runs.sweep import load_grid
from prunelab.runs.verify import QUARANTINE

TINY = ["--data-source", "synthetic", "--train-subset", "64", "--test-subset", "32", "--post-epochs", "1",
        "--expid", "run"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One finished record, copied by each test."""
    results = tmp_path_factory.mktemp("reference")
    assert main([*TINY, "--result-dir", str(results)]) == 0
    return results / "singleshot" / "run"


@pytest.fixture
def results(reference, tmp_path) -> Path:
    shutil.copytree(reference, tmp_path / "singleshot" / "run")
    return tmp_path


def _config(results: Path) -> RunConfig:
    return RunConfig(data_source="synthetic", train_subset=64, test_subset=32, post_epochs=1, expid="run",
                     result_dir=str(results))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3: len(data) // 3 + 16] = bytes(range(16))
    path.write_bytes(bytes(data))


def _flip_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - 40] ^= 0x01  # in the tensor data near the end: torch.load still reads it
    path.write_bytes(bytes(data))


def _edit_compression(path: Path) -> None:
    config = json.loads(path.read_text())
    config["compression"] = 2.0
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


CORRUPTIONS = {
    "model.pt truncated": ("model.pt", _truncate, "model.pt has"),
    "model.pt garbled": ("model.pt", _garble, "model.pt does not match its checksum"),
    "model.pt bit flip": ("model.pt", _flip_bit, "model.pt does not match its checksum"),
    "masks.pt truncated": ("masks.pt", _truncate, "masks.pt has"),
    "masks.pt bit flip": ("masks.pt", _flip_bit, "masks.pt does not match its checksum"),
    "epochs.csv truncated": ("epochs.csv", _truncate, "epochs.csv has"),
    "layers.csv empty": ("layers.csv", lambda p: p.write_text(""), "layers.csv has 0 bytes"),
    "config.json other compression": ("config.json", _edit_compression, "config.json"),
    "config.json garbled": ("config.json", lambda p: p.write_text("{garbled"), "config.json has"),
    "summary.json truncated": ("summary.json", _truncate, "summary.json has"),
    "env.json missing": ("env.json", Path.unlink, "env.json is missing"),
    "manifest missing": (MANIFEST, Path.unlink, "no manifest.json"),
    "manifest garbled": (MANIFEST, lambda p: p.write_text("[1, 2"), "manifest.json is unreadable"),
    "file added": ("notes.txt", lambda p: p.write_text("hello"), "notes.txt is not in the manifest"),
}


def test_a_record_lists_every_file_with_size_and_checksum(results):
    record = results / "singleshot" / "run"
    manifest = json.loads((record / MANIFEST).read_text())["files"]
    assert set(manifest) == {p.name for p in record.iterdir()} - {MANIFEST, "COMPLETE"}
    assert manifest["model.pt"]["size"] == (record / "model.pt").stat().st_size
    assert len(manifest["model.pt"]["sha256"]) == 64
    assert problem(record) is None and load_record(record).summary["status"] == "complete"


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_every_corruption_is_found_never_reused_and_recomputed(results, case, capsys):
    name, corrupt, reason = CORRUPTIONS[case]
    record = results / "singleshot" / "run"
    made = (record / "COMPLETE").stat().st_mtime_ns
    corrupt(record / name)
    assert reason in problem(record)
    with pytest.raises(InvalidRecord, match="run: "):
        load_record(record)
    # prunelab verify names it with the reason and exits 1
    assert main(["verify", str(results)]) == 1
    assert f"corrupt    singleshot/run: {reason}" in capsys.readouterr().out
    # the table reports it with the reason instead of listing it
    with pytest.warns(UserWarning, match=f"run \\({reason}"):
        table = load_table(results)
    assert table.empty and table.attrs["invalid"] == {str(record): problem(record)}
    # never reused: a rerun recomputes it and says why
    assert usable_record(_config(results)) is None
    assert main([*TINY, "--result-dir", str(results)]) == 0
    assert (record / "COMPLETE").stat().st_mtime_ns > made  # the record written anew, not the copy reused
    assert problem(record) is None and not (record / "notes.txt").exists()
    assert main(["verify", str(results)]) == 0


def test_a_config_rehashed_into_its_manifest_still_fails_against_the_summary(results):
    from prunelab.runs.integrity import write_manifest

    record = results / "singleshot" / "run"
    _edit_compression(record / "config.json")
    write_manifest(record)  # as if someone edited the file and refreshed the manifest
    found = problem(record)
    summary_hash = json.loads((record / "summary.json").read_text())["config_hash"]
    edited = RunConfig.from_dict(json.loads((record / "config.json").read_text())).config_hash()
    assert summary_hash != edited  # the edited config's hash, and the one the summary holds, both named
    assert found is not None and "config.json" in found and summary_hash in found and edited in found


def test_a_record_named_by_its_hash_must_hold_that_configuration(tmp_path):
    config = _config(tmp_path).replace(expid="")
    assert main([*TINY[:-2], "--result-dir", str(tmp_path)]) == 0
    record = tmp_path / "singleshot" / config.config_hash()
    assert problem(record) is None
    moved = record.parent / "0123456789ab"
    record.rename(moved)
    found = problem(moved)  # the configuration's own hash, which the folder's name is not
    assert found is not None and "config.json" in found and config.config_hash() in found


@pytest.mark.parametrize("case", ["config.json garbled", "summary.json truncated", "env.json missing"])
def test_rerun_force_and_dry_run_never_crash_on_a_broken_record(results, case, capsys):
    name, corrupt, _ = CORRUPTIONS[case]
    corrupt(results / "singleshot" / "run" / name)
    grid = results / "grid.yaml"
    base = {k.removeprefix("--"): yaml.safe_load(v) for k, v in zip(TINY[::2], TINY[1::2])}
    grid.write_text(yaml.safe_dump({"base": {**base, "result-dir": str(results)}}))
    assert main(["sweep", str(grid), "--dry-run"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.endswith("(run)")]
    assert line.startswith("to run  ")
    assert main([*TINY, "--result-dir", str(results), "--force"]) == 0
    corrupt(results / "singleshot" / "run" / name)
    assert main([*TINY, "--result-dir", str(results)]) == 0
    assert problem(results / "singleshot" / "run") is None


@pytest.mark.parametrize("state", [{"phase": "post"}, "garbage"])
def test_a_checkpoint_without_its_keys_is_ignored_not_a_traceback(tmp_path, capsys, state):
    config = _config(tmp_path)
    folder = tmp_path / "singleshot" / ".ckpt-run"
    folder.mkdir(parents=True)
    if isinstance(state, dict):  # the right key, nothing else
        torch.save({**state, "key": f"{config.config_hash()}:synthetic"}, folder / "state.pt")
    else:
        (folder / "state.pt").write_text(state)
    assert main([*TINY, "--result-dir", str(tmp_path)]) == 0
    assert "Resuming" not in capsys.readouterr().out
    assert problem(tmp_path / "singleshot" / "run") is None and not folder.exists()


def test_verify_lists_every_folder_and_repair_quarantines_bad_records(results, reference, capsys):
    shutil.copytree(reference, results / "singleshot" / "broken")
    _truncate(results / "singleshot" / "broken" / "model.pt")
    (results / "singleshot" / "half").mkdir()  # a folder without its marker
    (results / "singleshot" / ".tmp-0123456789ab").mkdir()  # a killed write's stage
    shutil.copytree(reference, results / "singleshot" / ".ckpt-run")  # a checkpoint beside its complete record
    assert main(["verify", str(results)]) == 1
    out = capsys.readouterr().out
    for line in ("ok         singleshot/run", "corrupt    singleshot/broken: model.pt has",
                 "incomplete singleshot/half: no completion marker", "leftover   singleshot/.tmp-0123456789ab",
                 "stale      singleshot/.ckpt-run: its record is complete"):
        assert line in out, out
    assert main(["verify", str(results), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "verify: 1 folder(s)" in out and "1 ok" in out
    assert sorted(p.name for p in (results / "singleshot").iterdir()) == ["run"]
    quarantined = results / QUARANTINE / "singleshot"
    assert sorted(p.name for p in quarantined.iterdir()) == ["broken", "half"]  # moved aside, not deleted
    assert (quarantined / "broken" / "model.pt").stat().st_size > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left to warn about
        assert list(load_table(results)["record"]) == ["run"]


def test_verify_of_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _hash_as_spelled(values: dict) -> str:
    """The hash the code before gave ``values``: their hashed fields as spelled, a whole number as an int."""
    fields = RunConfig.from_dict(values).hashed_fields()
    fields.update({name: values[name] for name in ("compression", "weight_decay") if name in values})
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_a_whole_number_names_one_run_on_the_command_line_and_in_a_grid_file(tmp_path):
    assert main([*TINY[:-2], "--compression", "1", "--result-dir", str(tmp_path)]) == 0
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: {data-source: synthetic, train-subset: 64, test-subset: 32, post-epochs: 1, "
                    f"weight-decay: 0, result-dir: {tmp_path}}}\ngrid: {{compression: [1, 2]}}\n")
    reused, other = load_grid(grid).configs
    assert (reused.compression, reused.weight_decay) == (1.0, 0.0) and type(reused.compression) is float
    assert usable_record(reused) is not None and usable_record(other) is None
    assert RunConfig(compression=1, weight_decay=0).config_hash() == RunConfig().config_hash()


@pytest.mark.parametrize("named", [True, False])
def test_a_record_made_for_an_int_spelling_stays_verified_and_reused(results, named):
    """A record the code before made for ``compression: 1`` spells it 1 and holds that spelling's hash."""
    from prunelab.runs.integrity import write_manifest

    record = results / "singleshot" / "run"
    values = {**json.loads((record / "config.json").read_text()), "compression": 1, "weight_decay": 0}
    (record / "config.json").write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    summary = {**json.loads((record / "summary.json").read_text()), "config_hash": _hash_as_spelled(values)}
    (record / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_manifest(record)
    if not named:
        values["expid"] = ""
        (record / "config.json").write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
        summary["config_hash"] = _hash_as_spelled(values)
        (record / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        write_manifest(record)
        record = record.rename(record.parent / summary["config_hash"])
    assert summary["config_hash"] != RunConfig.from_dict(values).config_hash()
    assert problem(record) is None
    config = _config(results).replace(expid="" if not named else "run")
    assert usable_record(config).path == record  # found under the name it was made under, not trained again
