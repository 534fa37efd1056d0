"""The four conservation experiments as runs: a configuration in, one record in the result store out.

Each record holds the experiment's table (``<experiment>.csv``, the frame :mod:`prunelab.core.conservation`
returns) and, in ``summary.json``, how closely the law it illustrates holds (``law_gap``, relative) next
to what it was measured on. :func:`conservation_frame` gathers an experiment's records into one frame
for the ``plot_*`` functions of :mod:`prunelab.workbook.conservation_figures`.

What the original's flags mean here (see :mod:`prunelab.runs.config`):

* ``unit-conservation`` / ``layer-conservation``: the model at initialization is pruned to
  ``--compression`` with ``--pruner`` first when the compression is above 0, then scored by
  ``--pruner`` (a list with ``--pruner-list``: one record each). Law: per hidden unit, score in equals
  score out; per layer, the weights of layer l+1 carry what flows into layer l (weights and biases).
* ``imp-conservation``: trains with plain SGD at ``--lr`` for ``--post-epochs`` epochs on the pruning
  set, over ``--level-list`` rounds of magnitude pruning (none by default, as the original). Law: layer
  l+1's weights change Σθ² by what layer l's weights and biases do.
* ``schedule-conservation``: SynFlow (whatever ``--pruner`` says, as the original) at each
  ``--compression-list`` value with each ``--prune-epoch-list`` round count, linear and exponential
  schedules. Law: a round that cuts less than the whole flow never empties a layer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch.nn as nn

from ..core import conservation as C
from ..core.choices import SCHEDULES
from ..core.pruners import Batches, prune
from ..errors import UserError
from .config import RunConfig
from .prepare import environment, load_run_data, prepare, reused_record
from .store import (
    RunRecord,
    csv_writer,
    iter_records,
    json_writer,
    load_record,
    run_record_path,
    write_record,
)


def run_conservation(config: RunConfig, progress: bool = True, log: Callable[[str], None] = print) -> RunRecord:
    """Run one conservation experiment and return its record (reused when complete, unless forced)."""
    config.validate()
    existing = reused_record(config, log)
    if existing is not None:
        return existing
    device, _, model, settings = prepare(config)
    log(f"Loading {config.dataset} dataset ({config.data_source}).")
    data = load_run_data(config, device)
    batches = data.prune_batches()
    log(f"{config.experiment}: {config.model} ({config.model_class}) on {device}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collapse is what schedule-conservation measures
        if config.experiment in PRUNED_FIRST and config.compression > 0:
            prune(model, settings, batches, progress=progress)
        frame, law = LAWS[config.experiment](config, model, batches)
    summary = {"status": "complete", "config_hash": config.config_hash(), "data_source": data.source,
               "stand_in": data.stand_in, "prune_examples": sum(len(y) for _, y in batches), **law}
    final = run_record_path(config)
    write_record(final, {"config.json": json_writer(config.to_dict()), "summary.json": json_writer(summary),
                         "env.json": json_writer(environment(device, data.source)),
                         f"{config.experiment}.csv": csv_writer(frame)})
    record = load_record(final)
    if data.stand_in:
        log("WARNING: these results come from SYNTHETIC stand-in data, not the real data set.")
    log(f"{law['law']}: law_gap {law['law_gap']:.3g} (0 where it holds exactly; "
        f"{'rounds that broke it' if config.experiment == 'schedule-conservation' else 'the largest relative gap'}).")
    log(f"Record: {record.path}")
    return record


def _unit(config: RunConfig, model: nn.Module, batches: Batches) -> tuple[pd.DataFrame, dict]:
    frame = C.unit_conservation(model, config.pruner, batches, train_mode=config.prune_train_mode)
    scale = frame["score_in"].abs().max() if len(frame) else math.nan
    gap = float((frame["score_in"] - frame["score_out"]).abs().max() / scale) if len(frame) else math.nan
    return frame, {"law": "score into each hidden unit = score out of it", "law_gap": gap, "units": len(frame)}


def _layer(config: RunConfig, model: nn.Module, batches: Batches) -> tuple[pd.DataFrame, dict]:
    frame = C.layer_conservation(model, config.pruner, batches, train_mode=config.prune_train_mode)
    return frame, {"law": "weights of layer l+1 carry the flux into layer l", "law_gap": C.chain_gap(frame),
                   "layers": len(frame)}


def _imp(config: RunConfig, model: nn.Module, batches: Batches) -> tuple[pd.DataFrame, dict]:
    frame = C.imp_conservation(model, batches, levels=config.levels or 0, compression=config.compression,
                               epochs=config.post_epochs, lr=config.lr)
    ends = frame[frame["epoch"] == frame["epoch"].max()]
    gaps = [C.chain_gap(part, "delta_sum", "delta_weight_sum") for _, part in ends.groupby("level", sort=True)]
    return frame, {"law": "change of Σθ² of layer l+1's weights = that of layer l",
                   "law_gap": max(gaps) if gaps else math.nan,
                   "phases": len(gaps)}


def _schedule(config: RunConfig, model: nn.Module, batches: Batches) -> tuple[pd.DataFrame, dict]:
    frame = C.schedule_conservation(model, batches, [config.compression], [config.resolved_prune_epochs],
                                    SCHEDULES, scope=config.mask_scope)
    violations = int(((frame["max_cut_ratio"] < 1) & (frame["collapsed"] > 0)).sum())
    return frame, {"law": "a round cutting less than the whole flow empties no layer", "law_gap": float(violations),
                   "max_cut_ratio": float(frame["max_cut_ratio"].max()), "collapsed": int(frame["collapsed"].max())}


#: each experiment's table and law from the model as prepared, its data's pruning batches and the configuration
LAWS = {"unit-conservation": _unit, "layer-conservation": _layer, "imp-conservation": _imp,
        "schedule-conservation": _schedule}
#: the experiments whose model is first pruned to --compression with --pruner (when above 0)
PRUNED_FIRST = ("unit-conservation", "layer-conservation")


def conservation_frame(result_dir: str | Path, experiment: str) -> pd.DataFrame:
    """Every complete record of ``experiment`` in ``result_dir``: their tables stacked, with the run's model,
    dataset, pruner, compression, rounds, levels and record name as columns (ready for the ``plot_*``)."""
    if experiment not in LAWS:
        raise UserError(f"unknown conservation experiment '{experiment}'; choose one of: {', '.join(LAWS)}")
    frames = []
    for record in iter_records(result_dir, invalid={}):  # records failing verification: load_table names them
        if record.config.get("experiment") != experiment:
            continue
        frame = pd.read_csv(record.path / f"{experiment}.csv")
        for key in ("model", "dataset", "compression", "prune_epochs", "levels"):
            if key not in frame:
                frame[key] = record.config.get(key)
        if "pruner" not in frame:
            frame["pruner"] = record.config.get("pruner")
        frame["record"] = record.path.name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
