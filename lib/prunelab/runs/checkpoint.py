"""Checkpoints of a run in progress, so a killed or preempted run resumes where it stopped.

A run's checkpoint lives beside its future record, in the hidden folder
``<result_dir>/<experiment>/.ckpt-<name>/``: ``state.pt`` (replaced atomically after each pruning and after an
epoch once ``--checkpoint-every`` seconds have passed since the last save, :class:`Cadence`) and
``lock`` (held with ``flock`` while a process works on the run, released by the kernel even on SIGKILL).
The folder is removed once the record is complete; one left by a run killed after writing its record is
stale and removed when found (:meth:`RunCheckpoint.discard_unless_held`).

A fused group (:mod:`prunelab.runs.fused`) saves its runs' states in two steps, all staged before any is
committed, and a commit keeps the state it replaces as ``previous.pt``: a kill between two runs' commits
leaves each run either at the new epoch (its previous state the old one) or at the old one, so the group
resumes together from the old one. :class:`GroupWriter` writes those commits in a thread, in order.

A checkpoint is keyed by what the run computes: its configuration's hash and the data source it really
uses (``auto`` resolves to real data or a stand-in), so a run never resumes onto other data.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core.train import Preempted, stop_requested
from ..errors import UserError

CHECKPOINT_PREFIX = ".ckpt-"
#: fault injection for the tests: SIGKILL this process right after its N-th checkpoint
KILL_AFTER_ENV = "PRUNELAB_TEST_KILL_AFTER_CHECKPOINT"


class RunInProgress(UserError):
    """Another live process holds the run's lock."""


#: how often a process waiting for another's lock looks again, in seconds
LOCK_POLL_S = 0.5


def lock_when_free(handle, mode: int, waiting: Callable[[float], None] = lambda waited: None) -> None:
    """Take ``flock`` ``mode`` on ``handle``, looking every :data:`LOCK_POLL_S` while another process holds it:
    ``waiting`` gets the seconds waited so far at each look, and a stop asked for meanwhile (SIGTERM:
    :data:`~prunelab.core.train.stop_requested`) raises :class:`~prunelab.core.train.Preempted`. A blocking
    ``flock`` would sit through both, for as long as the other process trains."""
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if stop_requested.is_set():
                raise Preempted("stop requested") from None
            waiting(time.monotonic() - start)
            time.sleep(LOCK_POLL_S)


#: how many times, :data:`PROBE_WAIT_S` apart, :meth:`RunCheckpoint.acquire` tries a lock that is held
PROBE_TRIES = 5
PROBE_WAIT_S = 0.01


def _lock_soon(handle) -> bool:
    """Take ``flock`` LOCK_EX on ``handle`` without blocking, trying again a few times over about 50 ms: another
    sweep's :meth:`RunCheckpoint.held_elsewhere` holds a shared lock for a moment only, and a run must not be
    refused as in progress for that; a training process holds it far longer. Whether it was taken."""
    for attempt in range(PROBE_TRIES):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < PROBE_TRIES - 1:
                time.sleep(PROBE_WAIT_S)
    return False


@dataclass
class Cadence:
    """Whether an epoch's end is due a checkpoint: once ``every_s`` seconds have passed since the last save
    (:meth:`saved`), every epoch with 0. A save costs milliseconds per megabyte of state, and an epoch of a
    small network (or of a fused group on a GPU) takes less, so saving every epoch would cost more than the
    training it protects; a kill loses at most ``every_s`` seconds of training and the epoch under way."""

    every_s: float
    last: float = field(default_factory=time.monotonic)

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def saved(self) -> None:
        self.last = time.monotonic()


class RunCheckpoint:
    def __init__(self, result_dir: str | os.PathLike, experiment: str, name: str, key: str,
                 every_s: float = 0.0) -> None:
        self.folder = Path(result_dir) / experiment / f"{CHECKPOINT_PREFIX}{name}"
        self.key = key
        self.cadence = Cadence(every_s)
        self._lock = None
        self._saves = 0
        self._made: list[Path] = []  # the result folder and parents acquire() made, the innermost first

    @property
    def path(self) -> Path:
        return self.folder / "state.pt"

    @property
    def previous_path(self) -> Path:
        """The state a group commit replaced (:meth:`commit`)."""
        return self.folder / "previous.pt"

    def acquire(self) -> None:
        """Take the run's lock; :class:`RunInProgress` when another live process holds it. The result folder
        (and parents) this makes are noted, for :meth:`discard_if_empty` to remove again."""
        result_dir = self.folder.parent.parent.absolute()
        self._made = [p for p in (result_dir, *result_dir.parents) if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / "lock", "a+")
        except OSError as err:  # checked before the run began; this is what changed since, or what it missed
            raise UserError(f"cannot write the run's checkpoint in {self.folder}: {err.strerror}") from None
        if not _lock_soon(handle):
            handle.close()
            raise RunInProgress(f"this run is already in progress in another process (lock {self.folder / 'lock'});"
                                " wait for it or stop it first")
        self._lock = handle

    def wait_until_free(self) -> None:
        """Wait while another process holds the run's lock (returns at once when there is none); a stop asked
        for meanwhile raises :class:`~prunelab.core.train.Preempted` (:func:`lock_when_free`)."""
        try:
            handle = open(self.folder / "lock")
        except OSError:
            return
        with handle:
            lock_when_free(handle, fcntl.LOCK_SH)

    def held_elsewhere(self) -> bool:
        """Whether another open lock file (another process's, or another of this process's checkpoints) holds the
        run's lock now; False where there is no lock file. It neither waits nor keeps a lock (a shared one is
        taken and let go at once), so a sweep can leave such a run to its holder instead of starting a task that
        would find it held and return. The answer may change as soon as it is given."""
        try:
            handle = open(self.folder / "lock")
        except OSError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def discard_unless_held(self) -> None:
        """Remove the checkpoint unless a live process is working on the run (a stale one: its record is
        complete, or ``--force`` asks for a fresh start)."""
        if not self.folder.exists():
            return
        try:
            self.acquire()
        except RunInProgress:
            return
        self.remove()

    def release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def load(self, required: Iterable[str] = (), previous: bool = False) -> dict | None:
        """The saved state (with ``previous``: the one a group commit replaced), or None when there is none, it
        is unreadable, it belongs to another key, or it lacks one of the ``required`` entries (the run then
        starts over)."""
        path = self.previous_path if previous else self.path
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - an unreadable checkpoint is no checkpoint: start over
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            return None
        return state if all(name in state for name in required) else None

    def save(self, state: dict) -> None:
        self.commit(self.stage(state), keep_previous=False)

    def stage(self, state: dict) -> Path:
        """Write ``state`` beside the current one, durably, without replacing it yet; :meth:`commit` does."""
        tmp = self.folder / f".state-{os.getpid()}.pt"
        torch.save({**state, "key": self.key}, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        return tmp

    def commit(self, staged: Path, keep_previous: bool = True) -> None:
        """Make the ``staged`` state the current one; with ``keep_previous`` the state it replaces stays as
        ``previous.pt`` (a hard link swapped in atomically, so a current state exists at every moment)."""
        if keep_previous and self.path.is_file():
            link = self.folder / f".previous-{os.getpid()}.pt"
            link.unlink(missing_ok=True)
            os.link(self.path, link)
            os.replace(link, self.previous_path)
        os.replace(staged, self.path)
        self.cadence.saved()
        self._saves += 1
        if os.environ.get(KILL_AFTER_ENV) == str(self._saves):
            os.kill(os.getpid(), signal.SIGKILL)

    def discard_state(self) -> None:
        """Forget the saved state (the lock stays held)."""
        self.path.unlink(missing_ok=True)
        self.previous_path.unlink(missing_ok=True)

    def discard_if_empty(self) -> None:
        """Remove the folder when no state was ever saved, then the experiment folder and the result folders
        :meth:`acquire` made, each where it is left empty: a run refused before its first save (a pruner's bad
        scores) leaves nothing behind. Only these folders, one at a time: what another run put there stays."""
        if self.folder.exists() and not self.path.exists():
            self.remove()
            for folder in (self.folder.parent, *self._made):
                try:
                    folder.rmdir()
                except OSError:
                    pass  # other runs' records or checkpoints are there, or it is gone

    def remove(self) -> None:
        self.release()
        shutil.rmtree(self.folder, ignore_errors=True)


def rng_state() -> dict:
    """The random generators' states: the CPU's, and every GPU's where there is CUDA."""
    state = {"rng_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`'s generators: each GPU's that is here (a checkpoint written where more GPUs
    were visible keeps states this process has no generator for)."""
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["rng_cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


def random_state(train_loader) -> dict:
    """The random generators' states and the data order's epoch: with them, a resumed run draws the same
    batches, augmentations and random scores as the uninterrupted one."""
    return {**rng_state(), "loader_epoch": train_loader.epoch}


def set_random_state(state: dict, train_loader) -> None:
    set_rng_state(state)
    train_loader.epoch = state["loader_epoch"]


class GroupWriter:
    """Writes a group's checkpoints in a thread while the next epoch trains: each :meth:`commit` stages every
    run's state, then makes them current (a group commit); it first waits for the one before, so at most
    one is in flight and commits land in order. Leaving the ``with`` block waits for the last; a failed
    write raises there or at the next commit."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        self._pending: Future | None = None

    def commit(self, saved: list[tuple[RunCheckpoint, dict]]) -> None:
        self._wait()
        self._pending = self._pool.submit(_group_commit, saved)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> GroupWriter:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._wait()
        finally:
            self._pool.shutdown()


def _group_commit(saved: list[tuple[RunCheckpoint, dict]]) -> None:
    staged = [(checkpoint, checkpoint.stage(state)) for checkpoint, state in saved]
    for checkpoint, path in staged:
        checkpoint.commit(path)
