"""The parts a fused group was cut into to fit a GPU's memory, kept so that a killed group resumes in them.

A group short of device memory trains each stage's runs in parts, cut in order from the stage's runs
(:func:`~prunelab.runs.fused_decision.memory_chunks`). A run whose record was written before a kill is not
opened again (a sweep does not even pass it), so the runs left, cut anew, would pair otherwise than the
unkilled group's: a run would train with other partners, or alone, and its record would differ from the
unkilled one (within the agreement bounds, not bit for bit). So each cut is kept, before its parts train, in a
small file of its own beside the records (``.fused-parts-<hash>.json``: its stage and its parts, by the runs'
record names), written whole and renamed into place, so a kill leaves the cut or nothing. A resumed stage
takes the newest cut of its stage that names every run it has. A cut goes with the last record of the runs it
names, however they ended (in the group, or resumed each alone; a sweep removes one that a kill left just after
that record), or when its runs start afresh (``--force``, or their checkpoints gone) as a group opens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..files import write_whole
from .config import RunConfig
from .store import is_complete, run_record_path

PARTS_PREFIX = ".fused-parts-"

Parts = list[list[str]]


@dataclass(frozen=True)
class PartsBook:
    """The cuts kept in ``folder`` (an experiment's folder of records)."""

    folder: Path

    @classmethod
    def beside(cls, config: RunConfig) -> PartsBook:
        """The book of the folder ``config``'s record goes to."""
        return cls(run_record_path(config).parent)

    def kept(self, stage: str, names: list[str]) -> Parts | None:
        """The parts of the newest cut kept for ``stage`` (``"<stage>:<training history>"``) that names every one
        of ``names``, or None."""
        for _, saved, _ in sorted(self._cuts(), key=lambda cut: cut[2], reverse=True):
            if saved["stage"] == stage and set(names) <= named_runs(saved["parts"]):
                return saved["parts"]
        return None

    def keep(self, stage: str, parts: Parts) -> None:
        """Keep the cut of ``stage`` into ``parts`` (written whole before its parts train)."""
        digest = hashlib.sha256(json.dumps([stage, sorted(named_runs(parts))]).encode()).hexdigest()[:12]
        path = self.folder / f"{PARTS_PREFIX}{digest}.json"
        self.folder.mkdir(parents=True, exist_ok=True)
        write_whole(path, lambda file: file.write(json.dumps({"stage": stage, "parts": parts}).encode()))

    def drop(self, names: list[str]) -> None:
        """Remove every cut that names one of ``names`` (runs that start afresh)."""
        for path, saved, _ in self._cuts():
            if named_runs(saved["parts"]) & set(names):
                path.unlink(missing_ok=True)

    def tidy(self) -> None:
        """Remove every cut whose runs all have their records."""
        for path, saved, _ in self._cuts():
            if all(is_complete(self.folder / name) for name in named_runs(saved["parts"])):
                path.unlink(missing_ok=True)

    def _cuts(self) -> list[tuple[Path, dict, int]]:
        """Each readable cut kept here, with its path and when it was written (one unreadable or malformed, or
        removed meanwhile, is passed over)."""
        cuts = []
        for path in self.folder.glob(f"{PARTS_PREFIX}*.json"):
            try:
                saved, written = json.loads(path.read_text()), path.stat().st_mtime_ns
                valid = isinstance(saved["stage"], str) and saved["parts"] and all(
                    part and all(isinstance(name, str) for name in part) for part in saved["parts"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if valid:
                cuts.append((path, saved, written))
        return cuts


def named_runs(parts: Parts) -> set[str]:
    """Every run's record name in ``parts``."""
    return {name for part in parts for name in part}
