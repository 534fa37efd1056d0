"""What a training run carries from its start to its record: its prepared state (:class:`RunState`), its progress
through the phases (:class:`TrainingProgress`, checkpointed after pruning and as its epochs end), and what it finally
records besides the model (:class:`RunOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from ..core.evaluation import Precision
from ..core.pruners import PruneSettings
from ..data.catalog import DatasetInfo
from ..data.run_data import RunData
from .checkpoint import RunCheckpoint
from .config import RunConfig
from .prepare import RunLog

#: what a checkpoint must hold to be resumed from (one without them is ignored and the run starts over)
CHECKPOINT_KEYS = ("progress", "learner", "rng_cpu", "loader_epoch", "prune", "initial")


@dataclass
class TrainingProgress:
    """Where a run's training stands, what a resumed run continues from: the ``phase`` ("pre" or "post"), the
    pre-train-and-prune cycles finished (``cycle``), the ``epochs_done`` in the phase (None until its
    evaluation before training, row 0, is made), the epoch rows so far (the record's epochs.csv; the
    training loop appends to them) and, in a fused group cut to fit a GPU, the most runs its fused networks
    hold in this phase (``group_runs``, :func:`~prunelab.runs.fused_decision.memory_chunks`), kept so that a
    resumed group cuts as it did.

    A checkpoint keeps it beside what it does not describe: the learner's state, the random state and data
    order, the last pruning's result and multishot's initial weights.
    """

    phase: str = "pre"
    cycle: int = 0
    epochs_done: int | None = None
    rows: list[dict] = field(default_factory=list)
    group_runs: int | None = None

    def next_cycle(self, cycles: int) -> None:
        """A pre-training cycle ended in pruning: the next cycle begins, or post-training after the last."""
        self.cycle += 1
        self.phase = "pre" if self.cycle < cycles else "post"
        self.epochs_done = None
        self.group_runs = None

    def to_checkpoint(self) -> dict:
        return {"phase": self.phase, "cycle": self.cycle, "epochs_done": self.epochs_done, "rows": list(self.rows),
                "group_runs": self.group_runs}

    @classmethod
    def from_checkpoint(cls, saved: dict) -> TrainingProgress:
        return cls(saved["phase"], saved["cycle"], saved["epochs_done"], list(saved["rows"]), saved.get("group_runs"))


@dataclass
class RunOutcome:
    """What a finished (or diverged) run puts in its record besides the model: its summary, its epoch and
    layer tables, the masks and their audit (one row per scored parameter)."""

    summary: dict
    epochs: pd.DataFrame
    layers: pd.DataFrame
    masks: dict[str, torch.Tensor]
    audit: pd.DataFrame


@dataclass
class RunState:
    """What a training run holds from its start to its record: the configuration, the model about to be
    pruned, its data, where it runs and in which precision, its checkpoint, and how it reports."""

    config: RunConfig
    checkpoint: RunCheckpoint
    model: torch.nn.Module
    settings: PruneSettings
    device: torch.device
    precision: Precision  # fp32 unless --quantization (AMP)
    info: DatasetInfo
    data: RunData
    channels_last: bool
    show_progress: bool
    log: RunLog  # its lines become the record's log.txt
