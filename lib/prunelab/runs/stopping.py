"""Stopping runs on SIGTERM (a scheduler's preemption, ``timeout``, ``kill``): training stops at its next step,
the last checkpoint stays, and the same command resumes it. A sweep's worker processes stop with the sweep: it
passes its stop on through an event they watch, and a worker whose sweep died without a word (SIGKILL) stops by
itself and exits once its task has, so no worker trains on unseen or waits forever for work."""

from __future__ import annotations

import os
import signal
import threading
import time

from ..core.train import stop_requested

#: held while a sweep's task runs in this process, so a worker whose sweep has gone exits between tasks
TASK = threading.Lock()
#: how often a worker looks for its sweep's stop or death, in seconds
_POLL_S = 0.5


def stop_on_sigterm() -> None:
    """SIGTERM in this process stops training at the next step (:data:`prunelab.core.train.stop_requested`)."""

    def handler(signum, frame):
        stop_requested.set()

    signal.signal(signal.SIGTERM, handler)


def watch_sweep(stop, sweep_pid: int) -> None:
    """A sweep worker's initializer: SIGTERM stops its training, as the sweep's ``stop`` event does; when the
    sweep process ``sweep_pid`` is gone, the worker stops its task and exits (143, as stopped by SIGTERM)."""
    stop_on_sigterm()

    def watch():
        while os.getppid() == sweep_pid:
            if stop.is_set():
                stop_requested.set()
            time.sleep(_POLL_S)
        stop_requested.set()
        with TASK:  # the task ends at its next training step; its last checkpoint stays
            os._exit(143)

    threading.Thread(target=watch, name="sweep watch", daemon=True).start()
