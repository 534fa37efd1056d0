"""Per-epoch checkpoints of a run in progress, so a killed or preempted run resumes where it stopped.

A run's checkpoint lives beside its future record, in the hidden folder
``<result_dir>/<experiment>/.ckpt-<name>/``: ``state.pt`` (replaced atomically after every epoch) and
``lock`` (held with ``flock`` while a process works on the run, released by the kernel even on SIGKILL).
The folder is removed once the record is complete.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
from pathlib import Path

import torch

from ..errors import UserError

CHECKPOINT_PREFIX = ".ckpt-"
#: fault injection for the tests: SIGKILL this process right after its N-th checkpoint
KILL_AFTER_ENV = "PRUNELAB_TEST_KILL_AFTER_CHECKPOINT"


class RunCheckpoint:
    def __init__(self, result_dir: str | os.PathLike, experiment: str, name: str, config_hash: str) -> None:
        self.folder = Path(result_dir) / experiment / f"{CHECKPOINT_PREFIX}{name}"
        self.config_hash = config_hash
        self._lock = None
        self._saves = 0

    @property
    def path(self) -> Path:
        return self.folder / "state.pt"

    def acquire(self) -> None:
        """Take the run's lock; :class:`UserError` when another live process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / "lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserError(f"this run is already in progress in another process (lock {self.folder / 'lock'}); "
                            "wait for it or stop it first.") from None
        self._lock = handle

    def release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def load(self) -> dict | None:
        """The saved state, or None when there is none or it belongs to another configuration."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - an unreadable checkpoint is no checkpoint: start over
            return None
        return state if state.get("config_hash") == self.config_hash else None

    def save(self, state: dict) -> None:
        tmp = self.folder / f".state-{os.getpid()}.pt"
        torch.save({**state, "config_hash": self.config_hash}, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._saves += 1
        if os.environ.get(KILL_AFTER_ENV) == str(self._saves):
            os.kill(os.getpid(), signal.SIGKILL)

    def discard_if_empty(self) -> None:
        """Remove the folder (and an experiment folder left empty) when no state was ever saved."""
        if self.folder.exists() and not self.path.exists():
            self.remove()
            try:
                self.folder.parent.rmdir()
            except OSError:
                pass  # other runs' records or checkpoints are there

    def remove(self) -> None:
        self.release()
        shutil.rmtree(self.folder, ignore_errors=True)
