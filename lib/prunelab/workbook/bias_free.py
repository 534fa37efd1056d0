"""SynFlow re-pruned with its biases out of the flow: the check behind the collapse findings' account of why the
multi-round SynFlow still empties layers.

SynFlow scores every parameter by the flow of an all-ones input through the network's absolute values, biases
included (as the reference code does). A bias adds flow to the layers after it only, so the layers nearer the
input fall behind as the rounds thin the network. The check takes each run's initial network (rebuilt from its
configuration and seed, as the run built it), prunes it again twice with the run's own settings, once as scored
and once with every bias set to zero for the scoring, and counts the runs that empty a layer each way. Only the
masks matter here: nothing is trained, and the data are never read (SynFlow needs the input's shape only).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ..core.choices import SYNFLOW_ROUNDS
from ..core.pruners import PruningWarning, prune
from ..runs.config import RunConfig
from ..runs.integrity import MARKER
from ..runs.prepare import prepare
from ..runs.store import InvalidRecord, load_record
from .collapses import emptied_layers
from .numbers import compression_text, share_of
from .style import pruner_label


@dataclass(frozen=True)
class BiasFreeCheck:
    """Of ``runs`` runs that emptied a layer, re-pruned (``where``: their set-up and compression, as a reader reads
    it): how many empty a layer again ``as_scored`` (the control: all of them, or the re-pruning is not the runs'
    own) and ``without_biases``, and the fewest weights any layer keeps without biases (``fewest_kept``)."""

    where: str
    runs: int
    as_scored: int
    without_biases: int
    fewest_kept: int

    @property
    def biases_cause(self) -> bool:
        """Whether the check shows the biases empty the layers: the control holds and no run empties one without."""
        return self.as_scored == self.runs and not self.without_biases

    def words(self) -> str:
        """What the check found, as the collapse findings say it."""
        again = (f"Pruned again from its initial weights with its own settings, each run that emptied a layer on "
                 f"{self.where}: {share_of(self.as_scored, self.runs, 'run')} "
                 f"{'empties' if self.as_scored <= 1 else 'empty'} one again")
        if self.as_scored < self.runs:
            return f"{again}, so the re-pruning does not reproduce the runs and says nothing of the biases."
        free = share_of(self.without_biases, self.runs, "run")
        if self.without_biases:
            return (f"{again}; with every bias set to zero for the scoring, {free} "
                    f"{'does' if self.without_biases == 1 else 'do'} too, so the biases are not the whole cause.")
        return (f"{again}; with every bias set to zero for the scoring, {free} does (every layer keeps "
                f"{self.fewest_kept} weights or more), so in these runs the biases are what empties the layers "
                f"(one network, one compression, {self.runs} seeds: consistent with the paper's balance of flow "
                "between layers where a network has no biases, not a test of it).")


def synflow_check(table: pd.DataFrame) -> BiasFreeCheck | None:
    """:func:`bias_free_check` of the runs of ``table`` (a records table) where SynFlow over its paper's rounds,
    pruning at initialization (no pre-training), emptied a layer on real data, at the lowest such compression of the
    first set-up where it did (a bounded cost: one cell's seeds are pruned again, twice each); None where there are
    none, or no record is named or readable."""
    if "path" not in table or table.empty:
        return None
    rows = table[(table["label"] == pruner_label("synflow", SYNFLOW_ROUNDS)) & ~table["stand_in"].astype(bool)
                 & (table.get("pre_epochs", pd.Series(0, index=table.index)).fillna(0) == 0)
                 & table["path"].map(lambda path: isinstance(path, str))]
    rows = rows[[bool(layers) for layers in emptied_layers(rows)]] if not rows.empty else rows
    if rows.empty:
        return None
    first = rows[rows["setup"] == rows["setup"].iloc[0]]
    lowest = first["compression"].min()
    where = f"{first['setup'].iloc[0]} at compression {compression_text(lowest)}"
    return bias_free_check(where, list(first.loc[first["compression"] == lowest, "path"]))


def bias_free_check(where: str, record_paths: Sequence[str]) -> BiasFreeCheck | None:
    """:class:`BiasFreeCheck` of the runs whose records are at ``record_paths`` (on ``where``), those that can be
    read; None where none can."""
    outcomes = [kept for kept in map(_repruned, record_paths) if kept is not None]
    if not outcomes:
        return None
    return BiasFreeCheck(where, len(outcomes), sum(min(scored) == 0 for scored, _ in outcomes),
                         sum(min(free) == 0 for _, free in outcomes), min(min(free) for _, free in outcomes))


def _repruned(record: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Weights each prunable layer keeps when the run of the record folder ``record`` is pruned again as scored,
    and with biases zeroed (None: no readable record there); remembered per record as it was completed."""
    try:
        return _repruned_at(record, (Path(record) / MARKER).stat().st_mtime_ns)
    except (OSError, InvalidRecord):  # gone, or changed since it was written
        return None


@functools.lru_cache(maxsize=64)
def _repruned_at(record: str, completed_ns: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    config = RunConfig.from_dict(load_record(record).config)
    return _kept_per_layer(config, zero_biases=False), _kept_per_layer(config, zero_biases=True)


def _kept_per_layer(config: RunConfig, zero_biases: bool) -> tuple[int, ...]:
    with torch.random.fork_rng():  # prepare seeds the generators; the caller's draws stay as they were
        device, info, model, settings = prepare(config)
        if zero_biases:
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    if name.rsplit(".", 1)[-1] == "bias":
                        parameter.zero_()
        shape_only = [(torch.zeros(1, *info.input_shape, device=device), torch.zeros(1, device=device).long())]
        with warnings.catch_warnings():  # the emptied layers are the finding here, not a warning to the reader
            warnings.simplefilter("ignore", PruningWarning)
            prune(model, settings, shape_only)
        return tuple(int(t.mask.sum()) for t in settings.targets(model))
