"""Dense pre-training as a record of its own, shared by every run that starts from it.

A single-shot run with ``--pre-epochs`` trains the dense network before it prunes (Mag: 200 epochs in the lab
notes). That training depends on the network, the data, the seed, the optimizer, its schedule and the
precision, never on the pruner or the compression, so it is done once: the first run to need it trains it
and writes ``<result_dir>/pretrain/<key>/`` (the learner's state, the random state and data order after it,
the epoch rows), and every run with the same key continues from that record instead of training again. The
key hashes :data:`PRETRAIN_FIELDS` and the data source really used (``auto`` resolved). A run continuing from
it computes what it would have computed alone, bit for bit on the CPU (tests/runs/test_pretrain.py).

The run that trains it checkpoints in its own checkpoint, on the cadence any run does, and writes the record when
the pre-training ends. It holds the key's lock (:meth:`SharedPretraining.held`) meanwhile, so a run of the same
key in another process (a sweep's worker, a Slurm task) waits for the record instead of training it again. In
a fused group (:mod:`prunelab.runs.fused`) one run per key trains it, in the group's network beside the
post-training of the runs that need none, and the record names how (``train_step``).
Multishot's cycles pre-train networks rewound between cycles and keep training their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import torch

from ..core.train import Learner
from .checkpoint import lock_when_free, random_state, set_random_state
from .config import RunConfig, fields_hash, int_spellings
from .store import (
    RunRecord,
    csv_writer,
    is_complete,
    json_writer,
    record_path,
    torch_writer,
    valid_record,
    write_record,
)

EXPERIMENT = "pretrain"
#: where the pre-trainings' locks are, under the result folder (hidden: not an experiment's records)
LOCKS = ".locks"
#: how often a run waiting for another process's pre-training says so again, and where that one stands (s)
WAIT_REPORT_S = 60.0
#: the settings dense pre-training depends on (every other field is about pruning, what follows it, or runtime)
PRETRAIN_FIELDS = ("dataset", "model", "model_class", "dense_classifier", "optimizer", "train_batch_size",
                   "test_batch_size", "pre_epochs", "lr", "lr_drops", "lr_drop_rate", "weight_decay", "seed",
                   "data_source", "train_subset", "test_subset", "quantization", "amp_dtype")


def shares_pretraining(config: RunConfig) -> bool:
    """Whether ``config`` pre-trains a dense network that other runs can share: single-shot with pre-epochs."""
    return config.experiment == "singleshot" and config.pre_epochs > 0


def pretrain_settings(config: RunConfig, data_source: str) -> dict:
    """The pre-training settings of ``config`` with the data source it really uses: the record's config.json."""
    return {"experiment": EXPERIMENT, **{name: getattr(config, name) for name in PRETRAIN_FIELDS},
            "data_used": data_source}


def pretrain_key(config: RunConfig, data_source: str) -> str:
    """The 12-hex-digit name of the pre-training ``config`` needs on ``data_source``."""
    return fields_hash(pretrain_settings(config, data_source))


class SharedPretraining:
    """The shared pre-training record of one key: where it is, reading it, writing it."""

    def __init__(self, config: RunConfig, data_source: str) -> None:
        self.config, self.key = config, pretrain_key(config, data_source)
        self.settings = pretrain_settings(config, data_source)
        self.path = record_path(config.result_dir, EXPERIMENT, self.key)

    def record(self) -> RunRecord | None:
        """The complete, verified record of this pre-training, or None. (Its summary names its key as
    ``pretrain_key``, not ``config_hash``: its config.json holds pre-training settings, not a run's.)"""
        for key in (self.key, *map(fields_hash, int_spellings(self.settings))):  # then as made before 1 was 1.0
            path = record_path(self.config.result_dir, EXPERIMENT, key)
            record = valid_record(path) if key == self.key or is_complete(path) else None
            if record is not None and record.summary.get("pretrain_key") == key and record.config == self.settings:
                return record
        return None

    @contextlib.contextmanager
    def held(self, log: Callable[[str], None]) -> Iterator[Callable[[int], None]]:
        """Hold this pre-training's lock (``flock``: the kernel drops it when its holder dies, even by SIGKILL),
        waiting while another process holds it, which it does while it trains the pre-training; on entry, check
        :meth:`record` again. Yields ``epoch_done(epoch)``, which the holder calls as it trains: the lock file
        names the holder and its last epoch, and a run waiting says so each :data:`WAIT_REPORT_S`."""
        folder = Path(self.config.result_dir) / LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{EXPERIMENT}-{self.key}", "a+") as handle:
            _wait_for_lock(handle, self.path, log)
            holder = f"run {self.config.record_name} (process {os.getpid()}"

            def epoch_done(epoch: int) -> None:
                _rewrite(handle, f"{holder}, at epoch {epoch} of {self.config.pre_epochs})")

            _rewrite(handle, f"{holder})")
            try:
                yield epoch_done
            finally:
                _rewrite(handle, "")

    @staticmethod
    def resume(record: RunRecord, learner: Learner, rows: list[dict], train_loader) -> None:
        """Continue a run from ``record``: its learner, random state and data order as the pre-training left
        them, and the pre-training's epoch rows as its first ``rows``."""
        state = torch.load(Path(record.path) / "state.pt", map_location="cpu", weights_only=True)
        learner.load_state_dict(state["learner"])
        set_random_state(state, train_loader)
        rows[:] = record_rows(record.epochs)

    def share(self, learner: Learner, rows: list[dict], train_loader, env: dict, train_step: str) -> None:
        """Write the pre-training a run just finished (its ``learner``, the ``rows`` of its pre phase, the random
        state and data order after it, how its steps were taken) as the record other runs continue from."""
        pre = [row for row in rows if row["phase"] == "pre"]
        summary = {"pretrain_key": self.key, "status": "complete", "epochs_done": self.config.pre_epochs,
                   "data_source": self.settings["data_used"], "top1": pre[-1]["top1"] if pre else math.nan,
                   "train_s": sum(row["train_s"] for row in pre), "made_by": self.config.config_hash(),
                   "train_step": train_step}
        write_record(self.path, {
            "config.json": json_writer(self.settings),
            "summary.json": json_writer(summary),
            "env.json": json_writer(env),
            "epochs.csv": csv_writer(pd.DataFrame(pre, columns=list(pre[0])) if pre else pd.DataFrame()),
            "state.pt": torch_writer({"learner": learner.state_dict(), **random_state(train_loader)}),
            "log.txt": lambda path: path.write_text(f"Pre-trained {self.config.pre_epochs} epochs for "
                                                    f"{self.config.record_name}; shared by every run with these "
                                                    "pre-training settings.\n"),
        })


def _wait_for_lock(handle, path: Path, log: Callable[[str], None]) -> None:
    """Take the lock on ``handle``, and while another process holds it, say who it is and where it stands, at
    once and every :data:`WAIT_REPORT_S` (:func:`.checkpoint.lock_when_free`: a stop asked for meanwhile raises
    :class:`~prunelab.core.train.Preempted`)."""
    said: list[float] = []

    def waiting(waited: float) -> None:
        if said and waited - said[-1] < WAIT_REPORT_S:
            return
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        log(f"Waiting for the shared pre-training {path}: {holder} trains it"
            + (f" ({waited / 60:.0f} min so far)." if said else "."))
        said.append(waited)

    lock_when_free(handle, fcntl.LOCK_EX, waiting)


def _rewrite(handle, text: str) -> None:
    """Replace what the lock file ``handle`` says (read by a run waiting for it; no fsync: it is not a record)."""
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def record_rows(frame: pd.DataFrame) -> list[dict]:
    """Epoch rows as a training loop makes them (Python numbers), from an epochs.csv read back."""
    return [{name: (value.item() if hasattr(value, "item") else value) for name, value in row.items()}
            for row in frame.to_dict("records")]
