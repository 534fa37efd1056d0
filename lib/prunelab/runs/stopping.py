"""Stopping runs on SIGTERM (a scheduler's preemption, ``timeout``, ``kill``): training stops at its next step,
the last checkpoint stays, and the same command resumes it. A sweep's worker processes stop with the sweep: it
passes its stop on through an event they watch, and a worker whose sweep died without a word (SIGKILL) stops by
itself and exits once its task has, so no worker trains on unseen or waits forever for work."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

from ..core.train import Preempted, stop_requested

#: held while a sweep's task runs in this process, so a worker whose sweep has gone exits between tasks
TASK = threading.Lock()
#: how often a worker looks for its sweep's stop or death, in seconds
_POLL_S = 0.5


@contextlib.contextmanager
def stopping_on_sigterm(at_once: bool = False) -> Iterator[None]:
    """SIGTERM inside the block stops training at its next step (:data:`prunelab.core.train.stop_requested`),
    or, ``at_once``, raises :class:`Preempted` where it lands: for a process that only waits while its runs train
    elsewhere (worker processes, Slurm jobs). The stop starts cleared, and the handler before is back after the
    block; off the main thread, where no handler can be installed, SIGTERM keeps its own action."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        stop_requested.set()
        if at_once:
            raise Preempted("stop requested")

    stop_requested.clear()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_requested.clear()


def watch_sweep(stop, sweep_pid: int) -> None:
    """A sweep worker's initializer: SIGTERM stops its training, as the sweep's ``stop`` event does; when the
    sweep process ``sweep_pid`` is gone, the worker stops its task and exits (143, as stopped by SIGTERM)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())

    def watch():
        while os.getppid() == sweep_pid:
            if stop.is_set():
                stop_requested.set()
            time.sleep(_POLL_S)
        stop_requested.set()
        with TASK:  # the task ends at its next training step; its last checkpoint stays
            os._exit(143)

    threading.Thread(target=watch, name="sweep watch", daemon=True).start()
