"""Task 1's collapse table: where a run collapsed, and why, as far as its record can tell.

A run has collapsed when a layer kept no weight, or when its top-1 is at chance
(:data:`~prunelab.core.choices.CHANCE_RULE`; records hold no per-class predictions, so no verdict says a run
answers one class). For runs on real data at
chance with every layer keeping weights, the cell also says whether any path of kept weights still joins input
to output (:mod:`prunelab.core.connectivity`, run on the record's trained model): with none, the network computes
a constant whatever its training; with one, the training did not recover it. :func:`collapsed_cells` gives the
numbers, :func:`collapse_table` the table a reader sees.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.choices import DATA_FREE_PRUNERS
from ..core.connectivity import input_reaches_output
from ..data.catalog import dataset_info
from ..runs.integrity import MARKER
from ..runs.prepare import model_from_record
from ..runs.store import InvalidRecord, load_record, read_layers
from .layer_findings import layer_name, layer_names
from .numbers import AT_CHANCE, accuracy_cell, at_chance
from .table_notes import SETUP_LEVEL
from .tables import setup_row_label

#: the collapse table's verdicts, short enough for a table column; Task 1's notebook explains them above it. They
#: name the rule applied (:data:`.numbers.AT_CHANCE`), a score's margin, not what the predictions were
VERDICTS = {"emptied, constant": f"layer collapse: {AT_CHANCE}",
            "emptied": "layer collapse: above chance",
            "no path": f"{AT_CHANCE}: no path left",
            "path": f"{AT_CHANCE}: a path remains",
            "constant": f"{AT_CHANCE}: no layer emptied"}


@dataclass(frozen=True)
class CollapsedCell:
    """A set-up, pruner and compression where ``runs`` of its ``seeds`` runs collapsed, with those runs' top-1
    (%) and ``majority_top1``, what always answering the most frequent class scores. ``layers``: the layers
    any of them emptied, by name (:func:`.layer_findings.layer_names`) in network order; ``constant``: whether
    every one is at chance (:func:`.numbers.at_chance`); ``no_path``: where none emptied a layer and every one is
    at that level, how many keep no path from input to output (None: not checked, on stand-in data or for rows
    that name no record); ``vanished``: the layers, named alike, whose scores all came out zero in some round of
    some run of the cell, and in ``vanished_runs`` of the ``vanished_known`` runs whose records say (records made
    before the check say nothing); ``data_free``: whether the pruner's masks never read the data
    (:data:`~prunelab.core.choices.DATA_FREE_PRUNERS`)."""

    setup: str
    label: str
    compression: float
    runs: int
    seeds: int
    top1: tuple[float, ...]
    majority_top1: float
    layers: tuple[str, ...]
    constant: bool
    no_path: int | None
    stand_in: bool
    vanished: tuple[str, ...] = ()
    vanished_runs: int = 0
    vanished_known: int = 0
    data_free: bool = False

    @property
    def runs_text(self) -> str:
        return f"{self.runs} of {self.seeds}"

    @property
    def top1_text(self) -> str:
        return accuracy_cell(list(self.top1))

    @property
    def verdict(self) -> str:
        if self.layers:
            return VERDICTS["emptied, constant" if self.constant else "emptied"]
        if self.no_path is None:
            return VERDICTS["constant"]
        if self.no_path in (0, self.runs):
            return VERDICTS["path" if self.no_path == 0 else "no path"]
        return f"{VERDICTS['no path']} in {self.no_path} of {self.runs} runs"


def collapsed_runs(emptied: Iterable, constant: Iterable) -> list[bool]:
    """Per run, whether it collapsed: a layer left with no weight (``emptied``, :func:`emptied_layers`) or a top-1 at
    chance (``constant``, :func:`.numbers.at_chance`)."""
    return [bool(layers) or bool(chance) for layers, chance in zip(emptied, constant)]


def collapsed_cells(table: pd.DataFrame) -> list[CollapsedCell]:
    """The :class:`CollapsedCell` of every set-up, pruner and compression of ``table`` where a run collapsed.
    The layers with no weights are those the record's mask audit found after training; a record made before
    the audit existed has none, and its layers are those pruning reported. Layers are named as the report names
    them (:func:`.layer_findings.layer_names`), from the layer table of the runs' records."""
    t = table.assign(emptied=emptied_layers(table), constant=at_chance(table))
    t = t.assign(collapsed=collapsed_runs(t["emptied"], t["constant"]))
    cells = []
    for (setup, label, compression), group in t.groupby(["setup", "label", "compression"], sort=False):
        hit = group[group["collapsed"]]
        if hit.empty:
            continue
        names = next(filter(None, map(record_layer_names, hit.get("path", []))), {})  # one network per set-up
        layers = _named_layers([layer for emptied in hit["emptied"] for layer in emptied], names)
        stand_in = bool(group["stand_in"].any())
        no_path = runs_without_path(hit) if not layers and not stand_in else None  # every hit run at chance
        said = list(hit.get("vanished_layers", pd.Series([None] * len(hit))))
        vanished = [_layer_names(v) for v in said]
        cells.append(CollapsedCell(setup, label, float(compression), len(hit), len(group),
                                   tuple(float(v) for v in hit["top1"]), float(hit["majority_class_top1"].mean()),
                                   layers, bool(hit["constant"].all()), no_path, stand_in,
                                   _named_layers([layer for paths in vanished for layer in paths], names),
                                   sum(bool(paths) for paths in vanished),
                                   sum(isinstance(v, list | tuple | np.ndarray) for v in said),
                                   "pruner" in group and bool(group["pruner"].isin(DATA_FREE_PRUNERS).all())))
    return cells


def collapse_table(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> pd.DataFrame:
    """The cells of :func:`collapsed_cells` as the notebook shows them, a row each, indexed by set-up,
    compression and pruner (a set-up and a compression named once over their rows, as in Tables B to D). With
    the unpruned runs ``dense``, a set-up whose unpruned network is itself at chance (:func:`chance_references`)
    keeps only its rows that name an emptied layer, a fact about the mask: a run at chance there says nothing
    about its pruning, and :func:`collapse_table_note` counts the runs left out."""
    references = chance_references(dense)
    rows = pd.DataFrame([{SETUP_LEVEL: _setup_text(c), "compression": c.compression, "pruner": c.label,
                          "collapsed runs": c.runs_text, "top-1 (%)": c.top1_text,
                          "most frequent class (%)": round(c.majority_top1, 1),
                          "layers with no weights": ", ".join(c.layers) or "none", "verdict": c.verdict}
                         for c in collapsed_cells(table) if not _says_nothing(c, references)])
    index = [SETUP_LEVEL, "compression", "pruner"]
    if rows.empty:  # no run collapsed: an empty table of the same index, so that its parts are none
        return pd.DataFrame(columns=index).set_index(index)
    setups = {name: i for i, name in enumerate(dict.fromkeys(rows[SETUP_LEVEL]))}  # in the table's order
    rows = rows.sort_values([SETUP_LEVEL, "compression"], kind="stable",
                            key=lambda column: column.map(setups) if column.name == SETUP_LEVEL else column)
    return rows.set_index(index)


def _setup_text(cell: CollapsedCell) -> str:
    return setup_row_label(cell.setup, "synthetic", "") if cell.stand_in else cell.setup


#: a set-up and whether its runs used the synthetic stand-in: the data a reference unpruned network was trained on
DataKey = tuple[str, bool]


def chance_references(dense: pd.DataFrame | None) -> dict[DataKey, tuple[float, float]]:
    """The set-ups, each with whether on the synthetic stand-in (:data:`DataKey`), whose unpruned runs (``dense``, a
    records table) on that data are every one at chance (:func:`.numbers.at_chance`), with their mean top-1 and the
    most frequent class's share (%): there the data or the training, not the pruning, leaves a run at chance. Keyed
    by the data too, so that an unpruned network at chance on the stand-in says nothing of pruned runs on the real
    data under the same set-up name. Empty without unpruned runs or that class's share."""
    if dense is None or dense.empty or "majority_class_top1" not in dense:
        return {}
    flagged = dense.assign(constant=at_chance(dense),
                           stand_in=dense["stand_in"].eq(True) if "stand_in" in dense else False)
    return {(str(setup), bool(stand_in)): (float(rows["top1"].mean()), float(rows["majority_class_top1"].mean()))
            for (setup, stand_in), rows in flagged.groupby(["setup", "stand_in"], sort=False)
            if rows["constant"].all()}


def _says_nothing(cell: CollapsedCell, references: dict[DataKey, tuple[float, float]]) -> bool:
    """Whether ``cell`` is at chance with every layer keeping weights on a set-up whose unpruned network, trained
    on the same data, is at chance too (``references``): its runs are no worse than the trained unpruned network of
    that set-up."""
    return (cell.setup, cell.stand_in) in references and not cell.layers


def table_left_out(cells: list[CollapsedCell], dense: pd.DataFrame | None) -> list[CollapsedCell]:
    """Those of ``cells`` that :func:`collapse_table` leaves out given the unpruned runs ``dense``, at chance with
    every layer kept where the unpruned network is at chance on the same data: :func:`collapse_table_note` counts
    them, no row lists them."""
    references = chance_references(dense)
    return [c for c in cells if _says_nothing(c, references)]


def stand_in_rest_lines(listed: int, left_out: list[CollapsedCell], further: bool) -> list[str]:
    """The findings' lines on the collapsed cells on synthetic stand-in data not said before (``further``: some
    were): ``listed`` of them are rows of Table A2, and ``left_out`` (:func:`table_left_out`) only its note counts,
    by their runs, as it does."""
    lines, more = [], "further " if further else ""
    if listed:
        lines.append(f"- {listed} {more}collapsed cell{'s' if listed != 1 else ''} on synthetic stand-in data, "
                     f"listed in Table A2, {'is a pipeline check' if listed == 1 else 'are pipeline checks'} only.")
    if left_out:
        runs, cells = sum(c.runs for c in left_out), len(left_out)
        lines.append(f"- {runs} {more if not listed else 'other '}run{'s' if runs != 1 else ''} on synthetic "
                     f"stand-in data ({cells} pruner and compression cell{'s' if cells != 1 else ''}) "
                     f"{'is' if runs == 1 else 'are'} {AT_CHANCE} with every layer keeping weights: Table A2 does not "
                     "list them, as the unpruned network is at chance there too; only the note below it counts them.")
    return lines


def collapse_table_note(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> str:
    """Markdown, a line per set-up whose unpruned network is at chance (:func:`chance_references`) and whose
    cells :func:`collapse_table` left out for it: how many runs, and the unpruned network's top-1 against the
    most frequent class's share; empty where none was left out."""
    references = chance_references(dense)
    left: dict[DataKey, list[CollapsedCell]] = {}
    for cell in table_left_out(collapsed_cells(table), dense):
        left.setdefault((cell.setup, cell.stand_in), []).append(cell)
    lines = []
    for key, cells in left.items():
        top1, majority = references[key]
        runs = sum(c.runs for c in cells)
        lines.append(f"- {_setup_text(cells[0])}: {runs} run{'s' if runs != 1 else ''} {AT_CHANCE} with every layer "
                     f"keeping weights {'are' if runs != 1 else 'is'} left out of Table A2, as the unpruned network "
                     f"is {AT_CHANCE} there too ({top1:.1f}% top-1 against {majority:.1f}% for always answering the "
                     "most frequent class), so a pruned run at chance there says nothing about its pruning.")
    return "\n".join(lines)


def emptied_layers(table: pd.DataFrame) -> list[list[str]]:
    """Per row, the layers left with no weight: the mask audit's where the record has one, else pruning's
    (none where the record holds neither, as records made before either was measured)."""
    pruned = table["collapsed_layers"] if "collapsed_layers" in table else [None] * len(table)
    if "mask_audit" not in table:
        return [_layer_names(layers) for layers in pruned]
    return [_layer_names(audited if isinstance(verdict, str) else layers)
            for verdict, audited, layers in zip(table["mask_audit"], table["mask_audit_collapsed"], pruned)]


def _layer_names(layers) -> list[str]:
    """A record's list of layer names as a list (a missing value, None or NaN in a table, as none)."""
    return list(layers) if isinstance(layers, list | tuple | np.ndarray) else []


def _named_layers(paths: list[str], names: dict[str, str]) -> tuple[str, ...]:
    """The parameters at ``paths`` ("1.weight"), each once, by the names ``names`` gives them (:func:`.layer_findings.
    layer_names`; :func:`.layer_findings.layer_name` where it has none), in network order where it has them."""
    order = {path: place for place, path in enumerate(names)}
    return tuple(layer_name(path, names) for path in sorted(set(paths), key=lambda p: (order.get(p, len(order)), p)))


def record_layer_names(record) -> dict[str, str]:
    """:func:`.layer_findings.layer_names` of the network of the record folder ``record`` (its ``layers.csv``);
    empty where a row names no record or its layer table cannot be read. Remembered per record as it was completed
    (a notebook asks once per collapsed cell)."""
    if not isinstance(record, str):
        return {}
    try:
        return _record_layer_names(record, (Path(record) / "layers.csv").stat().st_mtime_ns)
    except (OSError, KeyError, ValueError):  # gone, or not a layer table
        return {}


@functools.lru_cache(maxsize=256)
def _record_layer_names(record: str, changed_ns: int) -> dict[str, str]:
    return layer_names(read_layers(record))


def runs_without_path(runs: pd.DataFrame) -> int | None:
    """How many of ``runs`` (rows of a records table) keep no path of weights from input to output, read from
    their records; None when a row names no record, or its record can no longer be read (moved, or changed
    since): then the count is not known."""
    if "path" not in runs or runs["path"].isna().any():
        return None
    reached = [reaches_output(record) for record in runs["path"]]
    return None if None in reached else reached.count(False)


def reaches_output(record: str) -> bool | None:
    """Whether the trained model of the record folder ``record`` keeps a path of weights from input to output
    (None: no readable record there); remembered per record as it was completed (a notebook asks often)."""
    try:
        completed_ns = (Path(record) / MARKER).stat().st_mtime_ns
        return _reaches_output(record, completed_ns)
    except (OSError, InvalidRecord):  # gone, or changed since it was written
        return None


@functools.lru_cache(maxsize=4096)
def _reaches_output(record: str, completed_ns: int) -> bool:
    loaded = load_record(record)
    return input_reaches_output(model_from_record(loaded), dataset_info(loaded.config["dataset"]).input_shape)
