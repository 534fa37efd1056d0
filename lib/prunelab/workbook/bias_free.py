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

import pandas as pd
import torch

from ..core.choices import SYNFLOW_ROUNDS
from ..core.pruners import PruningWarning, prune
from ..runs.config import RunConfig
from ..runs.prepare import prepare
from ..runs.store import load_record
from .collapses import emptied_layers
from .numbers import compression_text, share_of
from .style import pruner_label


@dataclass(frozen=True)
class BiasFreeCheck:
    """Of ``runs`` runs re-pruned (``where``: their set-up and compression, as a reader reads it): how many empty a
    layer ``as_scored`` and ``without_biases``, and the fewest weights any layer keeps without biases
    (``fewest_kept``)."""

    where: str
    runs: int
    as_scored: int
    without_biases: int
    fewest_kept: int


    def words(self) -> str:
        """What the check found, as the collapse findings say it."""
        kept = f" (every layer keeps {self.fewest_kept} weights or more)" if not self.without_biases else ""
        cause = ("so the biases are what empties them: the paper's balance of flow between layers holds in a network "
                 "without biases" if not self.without_biases else "so the biases are not the whole cause")
        return (f"The runs on {self.where}, pruned again from their initial weights with the same settings: "
                f"{share_of(self.as_scored, self.runs, 'run')} {_singular(self.as_scored, 'empties', 'empty')} a "
                f"layer again; with every bias set to zero for the scoring, "
                f"{share_of(self.without_biases, self.runs, 'run')} {_singular(self.without_biases, 'does', 'do')}"
                f"{kept}, {cause}.")


def _singular(count: int, one: str, many: str) -> str:
    return one if count <= 1 else many


def synflow_check(table: pd.DataFrame) -> BiasFreeCheck | None:
    """:func:`bias_free_check` of the runs of ``table`` (a records table) where SynFlow over its paper's rounds
    emptied a layer on real data, at the lowest such compression of the first set-up where it did (a bounded
    cost: at most one cell's seeds are pruned again); None where there are none, or no record paths."""
    if "path" not in table or table.empty:
        return None
    rows = table[(table["label"] == pruner_label("synflow", SYNFLOW_ROUNDS)) & ~table["stand_in"].astype(bool)]
    rows = rows[[bool(layers) for layers in emptied_layers(rows)]] if not rows.empty else rows
    if rows.empty:
        return None
    first = rows[rows["setup"] == rows["setup"].iloc[0]]
    lowest = first["compression"].min()
    where = f"{first['setup'].iloc[0]} at compression {compression_text(lowest)}"
    return bias_free_check(where, list(first.loc[first["compression"] == lowest, "path"]))


def bias_free_check(where: str, record_paths: Sequence[str]) -> BiasFreeCheck:
    """:class:`BiasFreeCheck` of the runs whose records are at ``record_paths`` (on ``where``)."""
    outcomes = [_repruned(str(path)) for path in record_paths]
    return BiasFreeCheck(where, len(outcomes), sum(min(scored) == 0 for scored, _ in outcomes),
                         sum(min(free) == 0 for _, free in outcomes),
                         min((min(free) for _, free in outcomes), default=0))


@functools.lru_cache(maxsize=64)
def _repruned(path: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Weights each prunable layer keeps when the run at ``path`` is re-pruned as scored, and with biases zeroed."""
    config = RunConfig.from_dict(load_record(path).config)
    return _kept_per_layer(config, zero_biases=False), _kept_per_layer(config, zero_biases=True)


def _kept_per_layer(config: RunConfig, zero_biases: bool) -> tuple[int, ...]:
    rng = torch.get_rng_state()  # prepare seeds the global generator; the caller's draws stay as they were
    try:
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
    finally:
        torch.set_rng_state(rng)
