"""``prunelab verify RESULT_DIR [--repair]``: every folder of a result store with its state.

States: ``ok`` (a record that proves itself, :func:`prunelab.runs.integrity.problem`), ``corrupt`` (a
complete record that does not, with the reason), ``incomplete`` (a record folder without its marker),
``leftover`` (the stage of a killed record write), ``stale`` (a checkpoint beside its complete record),
and, left alone as they are work in progress, ``writing``, ``running`` and ``resumable`` (a checkpoint to
resume from).

``--repair`` settles leftover stages (a record they hold goes in place), removes stale checkpoints, and
moves corrupt and incomplete folders into ``RESULT_DIR/.quarantine/<experiment>/`` rather than deleting
them; a rerun then recomputes those runs.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from .atomic import TMP_PREFIX, recover
from .checkpoint import CHECKPOINT_PREFIX, RunCheckpoint
from .integrity import MARKER, problem

QUARANTINE = ".quarantine"
#: states that --repair fixes; any of them left makes ``prunelab verify`` exit 1
BAD = ("corrupt", "incomplete", "leftover", "stale")


@dataclass(frozen=True)
class Finding:
    path: Path
    state: str
    reason: str = ""

    def line(self, root: Path) -> str:
        where = self.path.relative_to(root)
        return f"{self.state:<10} {where}" + (f": {self.reason}" if self.reason else "")


def findings(result_dir: str | os.PathLike) -> list[Finding]:
    """One finding per folder under ``result_dir/<experiment>/`` (hidden experiment folders excepted)."""
    root = Path(result_dir)
    found = []
    for folder in sorted(root.glob("*/*")):
        if folder.parent.name.startswith(".") or not folder.parent.is_dir():
            continue
        if folder.name.startswith(TMP_PREFIX):
            found.append(Finding(folder, "writing" if _held(folder) else "leftover", "a record write was killed"))
        elif folder.name.startswith(CHECKPOINT_PREFIX):
            found.append(_checkpoint_finding(folder))
        elif not folder.name.startswith(".") and folder.is_dir():
            reason = problem(folder)
            state = "ok" if reason is None else "corrupt" if (folder / MARKER).is_file() else "incomplete"
            found.append(Finding(folder, state, reason or ""))
    return found


def _checkpoint_finding(folder: Path) -> Finding:
    if _held(folder / "lock"):
        return Finding(folder, "running")
    record = folder.parent / folder.name.removeprefix(CHECKPOINT_PREFIX)
    if (record / MARKER).is_file() and problem(record) is None:
        return Finding(folder, "stale", "its record is complete")
    return Finding(folder, "resumable")


def _held(path: Path) -> bool:
    """Whether a live process holds ``flock`` on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock just taken
    return False


def repair(result_dir: str | os.PathLike, found: list[Finding]) -> None:
    root = Path(result_dir)
    for finding in found:
        if finding.state == "leftover":
            recover(finding.path.parent)
        elif finding.state == "stale":
            name = finding.path.name.removeprefix(CHECKPOINT_PREFIX)
            RunCheckpoint(root, finding.path.parent.name, name, "").discard_unless_held()
        elif finding.state in ("corrupt", "incomplete") and finding.path.exists():
            quarantine(root, finding.path)


def quarantine(root: Path, folder: Path) -> Path:
    """Move ``folder`` to ``root/.quarantine/<experiment>/<name>`` (``-2``, ``-3``, ... when taken)."""
    place = root / QUARANTINE / folder.parent.name
    place.mkdir(parents=True, exist_ok=True)
    target, n = place / folder.name, 1
    while os.path.lexists(target):
        n += 1
        target = place / f"{folder.name}-{n}"
    os.replace(folder, target)
    return target


def verify(result_dir: str | os.PathLike, fix: bool = False, log=print) -> int:
    """Print every finding (after repairing, with ``fix``); 0 when nothing bad is left, else 1."""
    root = Path(result_dir)
    found = findings(root)
    if fix:
        repair(root, found)
        for finding in found:
            if finding.state in BAD:
                log(f"repaired   {finding.path.relative_to(root)} ({finding.state})")
        found = findings(root)
    for finding in found:
        log(finding.line(root))
    counts: dict[str, int] = {}
    for finding in found:
        counts[finding.state] = counts.get(finding.state, 0) + 1
    log(f"verify: {len(found)} folder(s) in {root}" + (": " if counts else "") +
        ", ".join(f"{n} {state}" for state, n in counts.items()))
    return 1 if any(f.state in BAD for f in found) else 0
