"""``prunelab verify RESULT_DIR [--repair]``: every folder of a result store with its state.

States: ``ok`` (a record that proves itself, :func:`prunelab.runs.integrity.problem`), ``corrupt`` (a
complete record that does not, with the reason), ``incomplete`` (a record folder without its marker),
``leftover`` (the stage of a killed record write), ``stale`` (a checkpoint beside its complete record),
and, left alone as they are work in progress, ``writing``, ``running`` and ``resumable`` (a checkpoint to
resume from).

``--repair`` settles leftover stages (a record they hold goes in place), removes stale checkpoints, and
moves corrupt and incomplete folders into ``RESULT_DIR/.quarantine/<experiment>/`` rather than deleting
them; a rerun then recomputes those runs.

A good training record's mask audit (:mod:`prunelab.core.audit`) is reported when it is not ok: ``drift``
(pruned weights not zero, or kept counts off their target) is an error that makes the exit code 1 and that
``--repair`` leaves alone, as evidence (``--force`` recomputes the run); ``collapsed`` is information, and so
is a record made before the audit existed ("no audit (older record)").
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .atomic import TMP_PREFIX, recover
from .checkpoint import CHECKPOINT_PREFIX, RunCheckpoint
from .config import TRAINING_EXPERIMENTS
from .integrity import MARKER, problem

QUARANTINE = ".quarantine"
#: states that --repair fixes; any of them left makes ``prunelab verify`` exit 1
BAD = ("corrupt", "incomplete", "leftover", "stale")
#: the ``audit`` of a good training record made before the mask audit existed
NO_AUDIT = "none"


@dataclass(frozen=True)
class Finding:
    """A folder's state, the reason for it (for a good record: what its mask audit found, when not ok), and
    the audit's verdict (empty where there is none to report)."""

    path: Path
    state: str
    reason: str = ""
    audit: str = ""

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
            if reason is None:
                found.append(_audit_finding(folder))
            else:
                found.append(Finding(folder, "corrupt" if (folder / MARKER).is_file() else "incomplete", reason))
    return found


def _audit_finding(folder: Path) -> Finding:
    """A good record, with its mask audit when that is not ok (only training records have one)."""
    if json.loads((folder / "config.json").read_text()).get("experiment") not in TRAINING_EXPERIMENTS:
        return Finding(folder, "ok")
    summary = json.loads((folder / "summary.json").read_text())
    verdict = summary.get("mask_audit")
    if verdict is None:
        return Finding(folder, "ok", "no audit (older record)", NO_AUDIT)
    if verdict == "collapsed":
        return Finding(folder, "ok", f"mask audit collapsed: {', '.join(summary['mask_audit_collapsed'])}",
                       verdict)
    if verdict != "drift":
        return Finding(folder, "ok")
    parts = []
    if summary["mask_audit_drift"]:
        parts.append(f"{summary['mask_audit_drift']:,} pruned weight(s) not zero")
    if summary["mask_audit_off_target"]:
        parts.append(f"kept counts changed in {', '.join(summary['mask_audit_off_target'])}")
    if not parts:
        parts.append(f"kept fraction {summary['mask_audit_kept_fraction']:.6g} where the target is "
                     f"{summary['mask_audit_target_fraction']:.6g}")
    return Finding(folder, "ok", f"mask audit drift: {'; '.join(parts)} (see its log.txt)", verdict)


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
    """Print every finding (after repairing, with ``fix``); 0 when nothing bad is left and no mask audit says
    drift, else 1."""
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
    audits: dict[str, int] = {}
    for finding in found:
        counts[finding.state] = counts.get(finding.state, 0) + 1
        if finding.audit:
            audits[finding.audit] = audits.get(finding.audit, 0) + 1
    log(f"verify: {len(found)} folder(s) in {root}" + (": " if counts else "") +
        ", ".join(f"{n} {state}" for state, n in counts.items()) +
        ("; mask audit: " if audits else "") +
        ", ".join(f"{n} no audit (older record)" if audit == NO_AUDIT else f"{n} {audit}"
                  for audit, n in audits.items()))
    return 1 if any(f.state in BAD or f.audit == "drift" for f in found) else 0
