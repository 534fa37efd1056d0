"""Task 1's collapse table: where a run collapsed, and why, as far as its record can tell.

A run has collapsed when a layer kept no weight, or when its top-1 is no better than always answering the
most frequent test class. For a run at that level with every layer keeping weights, the table also says
whether any path of kept weights still joins input to output (:mod:`prunelab.core.connectivity`, run on the
record's trained model): with none, the network computes a constant whatever its training; with one, the
training did not recover it.
"""

from __future__ import annotations

import pandas as pd

from ..core.connectivity import input_reaches_output
from ..data.catalog import dataset_info
from ..runs.prepare import model_from_record
from ..runs.store import load_record
from .numbers import accuracy_cell, at_chance
from .tables import setup_row_label

#: the collapse table's verdicts, short enough for a table column; Task 1's notebook explains them above it
VERDICTS = {"emptied, constant": "layer collapse: predicts one class",
            "emptied": "layer collapse: still above one class",
            "no path": "predicts one class: no path left",
            "path": "predicts one class: a path remains",
            "constant": "predicts one class: no layer emptied"}


def collapse_table(table: pd.DataFrame) -> pd.DataFrame:
    """Set-ups, pruners and compressions where a run collapsed (a layer kept no weights, or accuracy at the
    level of a constant prediction), with how many of their seeds did and the mean ± sd top-1 over them.
    The layers with no weights are those the record's mask audit found after training; a record made before
    the audit existed has none, and its layers are those pruning reported. ``no path``: of the collapsed runs
    of a cell where no layer emptied, how many have no path of kept weights from input to output (None where
    the rows name no record to rebuild)."""
    t = table.assign(emptied=_emptied_layers(table), constant=at_chance(table))
    t = t.assign(collapsed=[bool(e) or c for e, c in zip(t["emptied"], t["constant"])])
    rows = []
    for (setup, label, compression), group in t.groupby(["setup", "label", "compression"], sort=False):
        hit = group[group["collapsed"]]
        if hit.empty:
            continue
        layers = sorted({layer for emptied in hit["emptied"] for layer in emptied})
        constant = bool(hit["constant"].all())
        no_path = None if layers or not constant else _runs_without_path(hit)
        stand_in = bool(group["stand_in"].any())
        rows.append({"Data / Arch": setup_row_label(setup, "synthetic", "") if stand_in else setup,
                     "pruner": label, "compression": compression,
                     "collapsed runs": f"{len(hit)} of {len(group)}",
                     "top-1 (%)": accuracy_cell(list(hit["top1"])),
                     "most frequent class (%)": round(float(hit["majority_class_top1"].mean()), 1),
                     "layers with no weights": ", ".join(layers) or "none",
                     "verdict": _verdict(layers, constant, no_path, len(hit)), "no path": no_path,
                     "stand_in": stand_in})
    return pd.DataFrame(rows)


def _emptied_layers(table: pd.DataFrame) -> list[list[str]]:
    """Per row, the layers left with no weight: the mask audit's where the record has one, else pruning's."""
    if "mask_audit" not in table:
        return [list(v or []) for v in table["collapsed_layers"]]
    return [list(audited or []) if isinstance(verdict, str) else list(pruned or [])
            for verdict, audited, pruned in zip(table["mask_audit"], table["mask_audit_collapsed"],
                                                table["collapsed_layers"])]


def _runs_without_path(runs: pd.DataFrame) -> int | None:
    """How many of ``runs`` (rows naming their record's ``path``) keep no path from input to output."""
    if "path" not in runs:
        return None
    return sum(not reaches_output(path) for path in runs["path"])


def reaches_output(record_path: str) -> bool:
    """Whether the trained model of the record at ``record_path`` keeps a path of weights from input to output."""
    record = load_record(record_path)
    shape = dataset_info(record.config["dataset"]).input_shape
    return input_reaches_output(model_from_record(record), shape)


def _verdict(layers: list[str], constant: bool, no_path: int | None, runs: int) -> str:
    if layers:
        return VERDICTS["emptied, constant" if constant else "emptied"]
    if no_path is None:
        return VERDICTS["constant"]
    if no_path in (0, runs):
        return VERDICTS["path" if no_path == 0 else "no path"]
    return f"{VERDICTS['no path']} in {no_path} of {runs} runs"
