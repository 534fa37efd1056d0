"""The parts a fused group was cut into to fit a GPU's memory, kept so that a killed group resumes in them.

A group short of device memory trains each stage's runs in parts, cut in order from the stage's runs
(:func:`~prunelab.runs.fused_decision.memory_chunks`). A run whose record was written before a kill is not
opened again, so the runs left, cut anew, would pair otherwise than the unkilled group's: a run would train
with other partners, or alone, and its record would differ from the unkilled one (within the agreement bounds,
not bit for bit). So each cut is kept, before its parts train, in one small file per group
(``<result_dir>/<experiment>/.fused-parts-<hash of the runs' names>.json``), replaced whole: a kill leaves the
cuts kept before it or the cuts with the new one, never a part of a cut. The file goes once every run of the
group has its record.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig

PARTS_PREFIX = ".fused-parts-"


@dataclass
class PartsBook:
    """The cuts a group made, by stage (``"<stage>:<training history>"``): each a list of parts, each part its
    runs' record names, in training order."""

    path: Path
    cuts: dict[str, list[list[str]]] = field(default_factory=dict)

    @classmethod
    def of_group(cls, configs: list[RunConfig]) -> PartsBook:
        """The book of the group of ``configs`` (all its runs, recorded or not), with the cuts kept so far."""
        names = sorted(c.record_name for c in configs)
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
        first = configs[0]
        book = cls(Path(first.result_dir) / first.experiment / f"{PARTS_PREFIX}{digest}.json")
        try:
            book.cuts = json.loads(book.path.read_text())
        except (OSError, ValueError):  # none kept yet (or unreadable: then cut anew, as a fresh group would)
            book.cuts = {}
        return book

    def keep(self, stage: str, parts: list[list[str]]) -> None:
        """Keep the cut of ``stage`` (written whole before its parts train)."""
        self.cuts[stage] = parts
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".part")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(self.cuts, file)
            os.replace(temp, self.path)
        finally:
            Path(temp).unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget every cut (the group's runs are done, or start afresh), and a write a kill cut short."""
        self.cuts = {}
        self.path.unlink(missing_ok=True)
        for leftover in self.path.parent.glob(f"{self.path.name}*.part"):
            leftover.unlink(missing_ok=True)
