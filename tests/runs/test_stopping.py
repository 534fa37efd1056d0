"""SIGTERM's handler for a run or a sweep: it lasts only its block, and a sweep's stop stops its runs."""

import os
import signal
import time

import pytest

from prunelab.core.train import Preempted, stop_requested
from prunelab.runs.stopping import stopping_on_sigterm


def test_sigterm_asks_for_a_stop_only_inside_the_block_and_leaves_no_stop_behind():
    before = signal.getsignal(signal.SIGTERM)
    with stopping_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs in this thread between two bytecodes
        assert stop_requested.is_set()
    assert signal.getsignal(signal.SIGTERM) is before and not stop_requested.is_set()


def test_at_once_sigterm_raises_where_the_process_waits():
    with pytest.raises(Preempted), stopping_on_sigterm(at_once=True):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert not stop_requested.is_set()


def test_a_local_sweep_stops_at_the_run_a_stop_reached(tmp_path, monkeypatch):
    from prunelab.runs import registry
    from prunelab.runs.sweep import expand, run_sweep

    started = []

    def stopped(config, **kwargs):
        started.append(config.pruner)
        raise Preempted("stop requested")

    monkeypatch.setattr(registry, "run", stopped)
    configs = expand({"dataset": "mnist", "model": "fc", "data-source": "synthetic", "fuse": "off",
                      "result-dir": str(tmp_path)},
                     {"pruner": ["rand", "mag"]})
    with pytest.raises(Preempted):
        run_sweep(configs, log=lambda line: None)
    assert started == ["rand"]  # not failed and passed over: the sweep ends there
