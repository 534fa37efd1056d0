"""Record folders written and replaced so that a kill at any moment loses nothing and leaves nothing behind.

A write is staged in ``<parent>/.tmp-<12 hex>/`` (a short name, however long the record's): the file
``target`` names the record, ``new/`` receives the files, then the manifest, then the completion marker.
``new/`` is renamed into place; a record already there is first moved to ``old/`` inside the stage (so a
record is always either in place or in a stage), and the stage is removed last.

The writer holds ``flock`` on the stage folder; the kernel drops it when the writer dies, even by SIGKILL.
A stage nobody holds belongs to a killed writer, and :func:`recover` settles it: when the record's place
is empty, the complete new record goes there, or else the old one goes back; then the stage is removed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

from .integrity import MARKER, write_manifest

TMP_PREFIX = ".tmp-"
#: fault injection for the tests: SIGKILL this process when a record write reaches this stage
KILL_AT_ENV = "PRUNELAB_TEST_KILL_RECORD_AT"
#: the stages, in order: files written, manifest written, marker written, old record moved aside, new in place
STAGES = ("files", "manifest", "marker", "old-moved", "new-moved")

Writer = Callable[[Path], None]


def write_record(final: Path, files: dict[str, Writer]) -> Path:
    """Write ``files`` (name -> function writing that file) as one record at ``final``, with its manifest.

    A record already at ``final`` stays until the new one is complete, and comes back if the write fails.
    """
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    recover(parent)
    stage, lock = _new_stage(parent)
    try:
        _write_stage(stage, final.name, files)
        if os.path.lexists(final):
            os.replace(final, stage / "old")
            _reached("old-moved")
        os.replace(stage / "new", final)
        _fsync(parent)
        _reached("new-moved")
    finally:
        _settle(stage, final, promote_new=False)  # after success: only removes the stage and the old record
        os.close(lock)
    return final


def _write_stage(stage: Path, name: str, files: dict[str, Writer]) -> None:
    (stage / "target").write_text(name)
    _fsync(stage / "target")
    new = stage / "new"
    new.mkdir()
    for file_name, writer in files.items():
        writer(new / file_name)
    _reached("files")
    write_manifest(new)
    for item in new.iterdir():
        _fsync(item)
    _reached("manifest")
    (new / MARKER).write_text("complete\n")
    _fsync(new / MARKER)
    _fsync(new)
    _reached("marker")


def recover(parent: Path) -> list[Path]:
    """Settle every stage in ``parent`` whose writer is dead (see the module's text); return the records put
    in place. Stages held by a live writer are left alone."""
    placed = []
    for stage in sorted(parent.glob(f"{TMP_PREFIX}*")) if parent.is_dir() else []:
        try:
            fd = os.open(stage, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile, or not ours to open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            target = _target(stage)
            if target is None:
                _remove(stage)
            elif _settle(stage, parent / target, promote_new=True):
                placed.append(parent / target)
        finally:
            os.close(fd)
    return placed


def _target(stage: Path) -> str | None:
    """The record a stage was written for; None for what is no stage of ours (or one killed before naming it,
    when nothing had been moved yet)."""
    try:
        name = (stage / "target").read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return name if name and "/" not in name and not name.startswith(".") else None


def _settle(stage: Path, final: Path, promote_new: bool) -> bool:
    """Put a record back at ``final`` when it is empty (the new one when ``promote_new`` and complete, else the
    old one), then remove the stage. True when a record was put in place."""
    placed = False
    if not os.path.lexists(final):
        new, old = stage / "new", stage / "old"
        source = new if promote_new and (new / MARKER).is_file() else old
        if source.is_dir():
            os.replace(source, final)
            _fsync(final.parent)
            placed = True
    _remove(stage)
    return placed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _new_stage(parent: Path) -> tuple[Path, int]:
    """A fresh stage folder and the file descriptor holding its lock."""
    while True:
        stage = parent / f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}"
        stage.mkdir()
        fd = os.open(stage, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(stage)):
                return stage, fd
        except FileNotFoundError:
            pass  # a recovery removed it between mkdir and flock: take another name
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reached(stage: str) -> None:
    if os.environ.get(KILL_AT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)
