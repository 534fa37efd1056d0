"""Shared dense pre-training: one record per pre-training setting, reused by every run that needs it, and a run
that reuses it ends with the record it would have made alone, bit for bit on the CPU."""

import fcntl
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import torch
from forked_processes import run_forked

from prunelab.runs import pretrain, singleshot
from prunelab.runs.config import RunConfig
from prunelab.runs.pretrain import EXPERIMENT, LOCKS, SharedPretraining, pretrain_key
from prunelab.runs.singleshot import run_training
from prunelab.runs.store import load_record

TIMING = ["inference_s", "train_s"]
COMPRESSIONS = (0.5, 1.0, 2.0)


def _mag(result_dir, compression: float, **changes) -> RunConfig:
    return RunConfig(dataset="mnist", model="conv", data_source="synthetic", train_subset=256, test_subset=128,
                     train_batch_size=64, pruner="mag", compression=compression, pre_epochs=2, post_epochs=1,
                     lr_drops=[1, 2], result_dir=str(result_dir), **changes)


def _run(config: RunConfig, lines: list[str] | None = None):
    return run_training(config, progress=False, log=(lines.append if lines is not None else lambda _: None))


def _assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.epochs.drop(columns=TIMING), b.epochs.drop(columns=TIMING))
    pd.testing.assert_frame_equal(a.layers, b.layers)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    for key, value in a.masks().items():
        assert torch.equal(value, b.masks()[key]), key


def test_mag_runs_reuse_one_pretraining_and_match_separate_pretraining(tmp_path):
    shared_dir = tmp_path / "shared"
    shared = {c: _run(_mag(shared_dir, c)) for c in COMPRESSIONS}
    # each compression alone in its own store pre-trains for itself
    alone = {c: _run(_mag(tmp_path / f"alone-{c}", c)) for c in COMPRESSIONS}
    for c in COMPRESSIONS:
        _assert_same(shared[c], alone[c])
        assert shared[c].summary["top1"] == alone[c].summary["top1"]
    # one record of the pre-training, written by the first run and reused by the other two
    (made,) = (shared_dir / EXPERIMENT).iterdir()
    assert load_record(made).summary["made_by"] == _mag(shared_dir, COMPRESSIONS[0]).config_hash()
    # the other two continued from it: their pre-training rows are its rows, measured times and all
    first = shared[COMPRESSIONS[0]].epochs.query("phase == 'pre'")
    for c in COMPRESSIONS[1:]:
        pd.testing.assert_frame_equal(shared[c].epochs.query("phase == 'pre'"), first)
    assert not alone[COMPRESSIONS[1]].epochs.query("phase == 'pre'")["train_s"].equals(first["train_s"])
    pre = shared[COMPRESSIONS[0]].epochs
    assert (pre["phase"] == "pre").sum() == 3 and (pre["phase"] == "post").sum() == 2
    key = pretrain_key(_mag(shared_dir, 1.0), "synthetic")
    assert {r.summary["pretrain_record"] for r in shared.values()} == {key}


def mag_process(result_dir, compression: float, log_path) -> None:
    """A Mag run in a process of its own (:func:`run_forked`), its log lines written to ``log_path`` as they come."""
    with open(log_path, "a", buffering=1) as lines:
        run_training(_mag(result_dir, compression), progress=False, log=lambda line: lines.write(f"{line}\n"))


def test_runs_of_one_pretraining_in_two_processes_train_it_once(tmp_path):
    # another process holds the key's lock (as the first of two sweep workers does while it pre-trains): both Mag
    # runs wait for it; once it is free, one trains the pre-training and the other continues from its record
    key = pretrain_key(_mag(tmp_path, 1.0), "synthetic")
    (tmp_path / LOCKS).mkdir()
    logs = {c: tmp_path / f"log-{c}.txt" for c in (0.5, 1.0)}
    with ThreadPoolExecutor(len(logs)) as pool, open(tmp_path / LOCKS / f"{EXPERIMENT}-{key}", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        runs = [pool.submit(run_forked, mag_process, tmp_path, c, logs[c]) for c in logs]
        deadline = time.monotonic() + 120
        while not all(_says(logs[c], "Waiting for the shared pre-training") for c in logs):
            assert not all(r.done() for r in runs) and time.monotonic() < deadline, [r.result() for r in runs]
            time.sleep(0.1)
        fcntl.flock(held, fcntl.LOCK_UN)
        ended = [r.result() for r in runs]
    assert all(finished.returncode == 0 for finished in ended), ended
    made_by = load_record(tmp_path / EXPERIMENT / key).summary["made_by"]
    (reused,) = [c for c in logs if _mag(tmp_path, c).config_hash() != made_by]
    record = load_record(tmp_path / "singleshot" / _mag(tmp_path, reused).record_name)
    pre = record.epochs[record.epochs["phase"] == "pre"]  # the record's rows, timings and all: not trained again
    pd.testing.assert_frame_equal(pre.reset_index(drop=True), load_record(tmp_path / EXPERIMENT / key).epochs)
    _assert_same(record, _run(_mag(tmp_path / "alone", reused)))


def _says(path, words: str) -> bool:
    return path.exists() and words in path.read_text()


def _enter(shared: SharedPretraining, lines: list[str]) -> bool:
    with shared.held(lines.append):
        return True


def test_a_run_waiting_for_a_pretraining_says_again_and_again_who_trains_it_and_its_epoch(tmp_path, monkeypatch):
    # a lock is the open file's, so a second open in this process waits for it as another process would
    monkeypatch.setattr(pretrain, "WAIT_REPORT_S", 0.05)
    trainer, waiter = (SharedPretraining(_mag(tmp_path, c), "synthetic") for c in (0.5, 1.0))
    lines: list[str] = []
    with ThreadPoolExecutor(1) as pool, trainer.held(lambda _: None) as epoch_done:
        epoch_done(1)
        waiting = pool.submit(_enter, waiter, lines)
        deadline = time.monotonic() + 30
        while len(lines) < 3:
            assert not waiting.done() and time.monotonic() < deadline, lines
            time.sleep(0.01)
        epoch_done(2)
        seen = len(lines)
        while not any("2 of 2" in line for line in lines[seen:]):
            assert not waiting.done() and time.monotonic() < deadline, lines
            time.sleep(0.01)
    assert waiting.result(timeout=30)
    assert all(trainer.config.record_name in line and str(os.getpid()) in line for line in lines), lines
    assert "1 of 2" in lines[0]
    assert (tmp_path / LOCKS / f"{EXPERIMENT}-{trainer.key}").read_text() == ""  # no holder once it is free


def test_a_run_waiting_for_a_pretraining_stops_when_a_stop_is_asked_for(tmp_path):
    from prunelab.core.train import Preempted, stop_requested

    trainer, waiter = (SharedPretraining(_mag(tmp_path, c), "synthetic") for c in (0.5, 1.0))
    with ThreadPoolExecutor(1) as pool, trainer.held(lambda _: None):
        stop_requested.set()  # SIGTERM's handler does this
        try:
            with pytest.raises(Preempted):  # a TimeoutError where it waits on for the trainer
                pool.submit(_enter, waiter, []).result(timeout=10)
        finally:
            stop_requested.clear()


class _Killed(Exception):
    """A kill after a run's first pre-training epoch."""


def test_a_run_stopped_in_its_pretraining_continues_from_the_record_another_run_wrote(tmp_path, monkeypatch):
    # Mag at 0.5 is killed after its first pre-training epoch; Mag at 1.0 then trains the pre-training and writes
    # its record; resumed, the first continues from that record instead of training the second epoch again, and
    # ends with the record it would have made alone
    real_after = singleshot.after_epoch

    def killed_after_the_first_epoch(run, training, epoch):
        real_after(run, training, epoch)
        raise _Killed

    stopped = _mag(tmp_path, 0.5, checkpoint_every=0)
    with monkeypatch.context() as patch:
        patch.setattr(singleshot, "after_epoch", killed_after_the_first_epoch)
        with pytest.raises(_Killed):
            _run(stopped)
    _run(_mag(tmp_path, 1.0))
    record = _run(stopped)
    shared = load_record(tmp_path / EXPERIMENT / pretrain_key(stopped, "synthetic"))
    assert shared.summary["made_by"] == _mag(tmp_path, 1.0).config_hash()
    pre = record.epochs[record.epochs["phase"] == "pre"]  # the record's rows, timings and all: not trained again
    pd.testing.assert_frame_equal(pre.reset_index(drop=True), shared.epochs)
    _assert_same(record, _run(_mag(tmp_path / "alone", 0.5)))


def test_the_key_holds_what_pretraining_depends_on_and_nothing_else(tmp_path):
    base = _mag(tmp_path, 1.0)
    key = pretrain_key(base, "synthetic")
    for same in (dict(pruner="snip"), dict(compression=3.0), dict(post_epochs=9), dict(prune_epochs=5),
                 dict(shuffle=True), dict(expid="x"), dict(no_cuda_graphs=True)):
        assert pretrain_key(base.replace(**same), "synthetic") == key, same
    for other in (dict(seed=2), dict(lr=0.01), dict(pre_epochs=3), dict(model="fc"), dict(train_subset=128),
                  dict(optimizer="sgd"), dict(quantization=True)):
        assert pretrain_key(base.replace(**other), "synthetic") != key, other
    assert pretrain_key(base, "real") != key  # the data really used is part of it


@pytest.mark.parametrize("changes", [dict(seed=2), dict(lr=0.002)])
def test_runs_of_other_pretraining_settings_train_their_own(tmp_path, changes):
    _run(_mag(tmp_path, 1.0))
    other = _run(_mag(tmp_path, 1.0, **changes))
    assert len(list((tmp_path / EXPERIMENT).iterdir())) == 2
    made_by = {load_record(path).summary["made_by"] for path in (tmp_path / EXPERIMENT).iterdir()}
    assert made_by == {_mag(tmp_path, 1.0).config_hash(), _mag(tmp_path, 1.0, **changes).config_hash()}
    assert other.summary["pretrain_record"] == pretrain_key(_mag(tmp_path, 1.0, **changes), "synthetic")


def test_a_pretraining_made_for_an_int_spelling_is_still_shared(tmp_path):
    """A pre-training made before a whole number in a float field was read as the float (``weight-decay: 0``):
    its settings spell 0 and its folder is that spelling's key. A run of those settings continues from it."""
    import json

    from prunelab.runs.config import fields_hash
    from prunelab.runs.integrity import write_manifest

    first = _run(_mag(tmp_path, 1.0))
    (made,) = (tmp_path / EXPERIMENT).iterdir()
    settings = {**json.loads((made / "config.json").read_text()), "weight_decay": 0}
    (made / "config.json").write_text(json.dumps(settings))
    summary = {**json.loads((made / "summary.json").read_text()), "pretrain_key": fields_hash(settings)}
    (made / "summary.json").write_text(json.dumps(summary))
    write_manifest(made)
    made.rename(made.parent / summary["pretrain_key"])
    second = _run(_mag(tmp_path, 2.0, weight_decay=0))
    assert [p.name for p in (tmp_path / EXPERIMENT).iterdir()] == [summary["pretrain_key"]]  # not pre-trained again
    pd.testing.assert_frame_equal(second.epochs.query("phase == 'pre'"), first.epochs.query("phase == 'pre'"))
