"""Runs that survive being killed: checkpoints and their cadence, resume, SIGTERM, many writers."""

import json
import math
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch
from forked_processes import cli, run_forked

from prunelab.core.train import epochs_frame
from prunelab.runs.checkpoint import KILL_AFTER_ENV, Cadence, GroupWriter, RunCheckpoint
from prunelab.runs.singleshot import CHECKPOINT_KEYS, TrainingProgress
from prunelab.runs.store import load_record, load_table

# rand pruning after two pre-training epochs: the scores come from the global RNG, so resuming must
# restore it exactly; the conv model trains in channels-last format
ARGS = ["--model", "conv", "--model-class", "default", "--dataset", "mnist", "--data-source", "synthetic",
        "--train-subset", "512", "--test-subset", "128", "--pruner", "rand", "--pre-epochs", "2",
        "--post-epochs", "3", "--train-batch-size", "64", "--checkpoint-every", "0", "--expid", "run"]
TIMING = ["inference_s", "train_s"]
#: summary fields measured rather than computed: they differ between two runs of the same configuration
MEASURED = (*TIMING, "train_s_per_epoch", "peak_memory_mb", "peak_memory_start_mb", "peak_memory_block_only",
            "peak_memory_since_resume", "inference_spread_s", "inference_samples_s", "epoch_train_s",
            "epoch_train_spread_s", "epoch_train_samples_s")


def _cli(result_dir, *extra, env=None):
    """The command in a process of its own (forked, :mod:`forked_processes`); the tests that signal a process
    from outside start ``python -m prunelab`` itself."""
    return run_forked(cli, [*ARGS, "--result-dir", str(result_dir), *extra], env=env)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    result_dir = tmp_path_factory.mktemp("reference")
    assert _cli(result_dir).returncode == 0
    return load_record(result_dir / "singleshot" / "run")


def assert_same_record(a, b):
    pd.testing.assert_frame_equal(a.epochs.drop(columns=TIMING), b.epochs.drop(columns=TIMING))
    pd.testing.assert_frame_equal(a.layers, b.layers)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert all(torch.equal(v, b.masks()[k]) for k, v in a.masks().items())
    strip = lambda s: {k: v for k, v in s.items() if k not in MEASURED}  # noqa: E731
    assert strip(a.summary) == strip(b.summary)


def _checkpoint(result_dir) -> Path:
    return Path(result_dir) / "singleshot" / ".ckpt-run" / "state.pt"


def test_killed_at_several_points_resumes_to_the_uninterrupted_record(reference, tmp_path):
    # die right after the 2nd checkpoint (pre-training epoch 1), then after pruning and the first
    # post-training evaluation, then in the middle of post-training; the fourth start finishes
    for kill_after in ("2", "3", "2"):
        result = _cli(tmp_path, env={KILL_AFTER_ENV: kill_after})
        assert result.returncode == -signal.SIGKILL, result.stderr
        assert _checkpoint(tmp_path).exists()
        assert not (tmp_path / "singleshot" / "run").exists()  # no partial record
    final = _cli(tmp_path)
    assert final.returncode == 0, final.stderr
    assert not _checkpoint(tmp_path).parent.exists()  # the checkpoint goes once the record is complete
    resumed = load_record(tmp_path / "singleshot" / "run")
    assert resumed.summary["peak_memory_since_resume"] and not reference.summary["peak_memory_since_resume"]
    assert_same_record(resumed, reference)


def test_a_run_saves_as_its_cadence_says(reference, tmp_path):
    # an hour between saves: the run saves once, after pruning, so the kill after its 2nd save never comes
    done = _cli(tmp_path, "--checkpoint-every", "3600", env={KILL_AFTER_ENV: "2"})
    assert done.returncode == 0, done.stderr
    assert_same_record(load_record(tmp_path / "singleshot" / "run"), reference)


def test_a_cadence_is_due_once_its_seconds_have_passed():
    assert Cadence(0).due()
    cadence = Cadence(3600)
    assert not cadence.due()
    cadence.last -= 3600
    assert cadence.due()
    cadence.saved()
    assert not cadence.due()


def test_sigkill_from_outside_at_any_moment_then_resume(reference, tmp_path):
    cmd = [sys.executable, "-m", "prunelab", *ARGS, "--result-dir", str(tmp_path), "--post-epochs", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not _checkpoint(tmp_path).exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    assert _cli(tmp_path).returncode == 0
    assert_same_record(load_record(tmp_path / "singleshot" / "run"), reference)


def test_sigterm_leaves_a_checkpoint_and_exits_cleanly(reference, tmp_path):
    cmd = [sys.executable, "-m", "prunelab", *ARGS, "--result-dir", str(tmp_path), "--post-epochs", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not _checkpoint(tmp_path).exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err  # 128 + SIGTERM: stopped, not crashed
    assert "SIGTERM" in err.strip().splitlines()[-1] and "Traceback" not in err
    progress = TrainingProgress.from_checkpoint(torch.load(_checkpoint(tmp_path), weights_only=True)["progress"])
    assert progress.phase in ("pre", "post") and progress.rows
    assert not (tmp_path / "singleshot" / "run").exists()
    assert _cli(tmp_path).returncode == 0
    resumed = load_record(tmp_path / "singleshot" / "run")
    assert resumed.summary["peak_memory_since_resume"]  # from the checkpoint SIGTERM left
    assert_same_record(resumed, reference)


def test_training_progress_round_trips_through_a_checkpoint_file(tmp_path):
    checkpoint = RunCheckpoint(tmp_path, "multishot", "run", "key")
    checkpoint.acquire()
    row = dict(phase="pre2", epoch=0, train_loss=math.nan, test_loss=2.3, top1=10.0, top5=50.0, inference_s=0.01,
               train_s=0.0, lr=0.1)
    rows = [{"phase": "pre1", "epoch": 1, **{k: v for k, v in row.items() if k not in ("phase", "epoch")}}, row]
    progress = TrainingProgress("pre", 1, 0, rows)
    checkpoint.save({"progress": progress.to_checkpoint()})
    back = TrainingProgress.from_checkpoint(checkpoint.load(["progress"])["progress"])
    assert (back.phase, back.cycle, back.epochs_done) == ("pre", 1, 0)
    pd.testing.assert_frame_equal(epochs_frame(back.rows), epochs_frame(rows))  # NaN included
    back.next_cycle(3)  # the second of three cycles pruned: the third's phase has not begun
    checkpoint.save({"progress": back.to_checkpoint()})
    again = TrainingProgress.from_checkpoint(checkpoint.load(["progress"])["progress"])
    assert (again.phase, again.cycle, again.epochs_done, len(again.rows)) == ("pre", 2, None, 2)
    again.next_cycle(3)
    assert (again.phase, again.cycle, again.epochs_done) == ("post", 3, None)
    # a checkpoint of the former layout (progress in loose entries) is not resumed from: the run starts over
    checkpoint.save({"model": {}, "optimizer": {}, "scheduler": {}, "scaler": {}, "rng_cpu": torch.get_rng_state(),
                     "loader_epoch": 1, "rows": rows, "phase": "post", "done": 1, "prune": None})
    assert checkpoint.load(CHECKPOINT_KEYS) is None
    checkpoint.remove()


def test_a_run_in_progress_elsewhere_is_not_started_twice(tmp_path):
    from prunelab.errors import UserError
    from prunelab.runs.checkpoint import RunCheckpoint

    first = RunCheckpoint(tmp_path, "singleshot", "x", "h")
    first.acquire()
    second = RunCheckpoint(tmp_path, "singleshot", "x", "h")
    with pytest.raises(UserError, match="already in progress"):
        second.acquire()
    first.release()
    second.acquire()
    second.remove()


def test_four_concurrent_runs_into_one_directory_all_land(tmp_path):
    def one(i: int):  # a process of its own each, forked (no torch import each), the four at once
        return run_forked(cli, [*ARGS[:-2], "--expid", f"w{i}", "--seed", str(i), "--pre-epochs", "0",
                                "--post-epochs", "1", "--result-dir", str(tmp_path)])

    with ThreadPoolExecutor(4) as pool:
        for done in pool.map(one, range(4)):
            assert done.returncode == 0, done.stderr
    table = load_table(tmp_path)
    assert sorted(table["record"]) == ["w0", "w1", "w2", "w3"]
    assert table.attrs["incomplete"] == []
    assert not [p for p in (tmp_path / "singleshot").iterdir() if p.name.startswith(".")]


def test_the_table_loader_lists_incomplete_folders_instead_of_failing(reference, tmp_path):
    import shutil

    shutil.copytree(reference.path, tmp_path / "singleshot" / "good")
    (tmp_path / "singleshot" / "crashed").mkdir()
    (tmp_path / "singleshot" / "crashed" / "config.json").write_text("{}")
    broken = tmp_path / "singleshot" / "broken"
    shutil.copytree(reference.path, broken)
    (broken / "summary.json").write_text("{not json")
    with pytest.warns(UserWarning, match="hold no complete record"):
        table = load_table(tmp_path)
    assert list(table["record"]) == ["good"]
    assert sorted(Path(p).name for p in table.attrs["incomplete"]) == ["broken", "crashed"]
    assert json.loads((tmp_path / "singleshot" / "good" / "summary.json").read_text())["status"] == "complete"


def test_a_group_writer_commits_in_order_and_raises_a_failed_write(tmp_path):
    checkpoints = [RunCheckpoint(tmp_path, "singleshot", name, "key") for name in ("a", "b")]
    for checkpoint in checkpoints:
        checkpoint.folder.mkdir(parents=True)
    with GroupWriter() as writer:
        for epoch in (1, 2, 3):
            writer.commit([(c, {"epoch": torch.tensor(epoch)}) for c in checkpoints])
    for checkpoint in checkpoints:
        assert checkpoint.load()["epoch"] == 3 and checkpoint.load(previous=True)["epoch"] == 2
    with pytest.raises(TypeError, match="pickle"), GroupWriter() as writer:
        writer.commit([(checkpoints[0], {"epoch": threading.Lock()})])
    assert checkpoints[0].load()["epoch"] == 3  # the failed state never became the current one
