"""Figure A: the evaluation after every epoch of Table A's runs (the assignment's "evaluating after every epoch:
loss, top-1, top-5, and the time to run inference over the whole test set"), read from each run's ``epochs.csv``.

Only the training after pruning is drawn (phase ``post``): its epoch 0 is the evaluation of the pruned network
before that training. Mag's pre-training, before it prunes, is a different network's training and is left out.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..errors import UserError
from ..runs.store import load_record
from .numbers import seeds_n
from .style import (
    DENSE_LABEL,
    FIGURE_HEIGHT_IN,
    FIGURE_WIDTH_IN,
    INK,
    column_order,
    palette,
    panel_title,
    suptitle,
    use_style,
)

#: the rows of panels: an ``epochs.csv`` column, its axis label, and the factor its values are drawn at
METRICS = (("test_loss", "test loss", 1.0), ("top1", "test top-1 (%)", 1.0), ("top5", "test top-5 (%)", 1.0),
           ("inference_s", "test-set\ninference (ms)", 1e3))
#: the phase of ``epochs.csv`` drawn: the training after pruning (Mag's ``pre`` rows train before it prunes)
POST = "post"
#: a panel's height, and the height of a line of the legend below the panels, in inches
_PANEL_IN, _LINE_IN = 1.45, 0.22
#: entries of a row of the legend: four of the longest ("SynFlow (100 rounds)") fit the figure's width
_LEGEND_COLUMNS = 4
#: how light a band of the seeds' range is drawn
_BAND_ALPHA = 0.18
#: a loss or time axis is drawn on a log scale where its largest value is more than this many times its smallest
#: (an untrained network's loss dwarfs a trained one's; one slow evaluation pass dwarfs the others)
_LOG_SPAN = 10.0
#: the rows of :data:`METRICS` whose axis turns logarithmic where its values span more than :data:`_LOG_SPAN`
_LOG_WHERE_WIDE = ("test_loss", "inference_s")
#: characters of a line of the legend's note (9 pt across the figure's width)
_NOTE_CHARS = 100


def plot_epoch_curves(table: pd.DataFrame, dense: pd.DataFrame | None = None, compression: float = 1.0,
                      epochs: pd.DataFrame | None = None) -> Figure:
    """Figure A: test loss, top-1, top-5 and the time of the evaluation pass over the test set (ms) after every
    epoch of training after pruning, a row per measure and a column per set-up, for the runs of ``table`` (the
    notebook's :func:`~.grids.records_table`) at ``compression`` and the unpruned ones of ``dense``, as Table A
    takes them. A line per pruner, in its colour and the pages' order, is the mean over its seeds at each epoch, a
    light band around it the range from the lowest seed to the highest; the unpruned reference is black and dashed.
    ``epochs`` gives the runs' ``epochs.csv`` rows with a ``path`` column naming each row's run; where None they are
    read from each run's record."""
    use_style()
    runs = _table_a_runs(table, dense, compression)
    rows = _post_epochs(runs, epochs)
    setups = list(dict.fromkeys(runs["setup"]))
    labels = column_order(runs["label"])
    note = textwrap.fill(_fused_note(runs), _NOTE_CHARS)
    columns = min(len(labels) + 1, _LEGEND_COLUMNS)
    below_in = _LINE_IN * (-(-(len(labels) + 1) // columns) + len(note.splitlines()) + 1)
    panels_in = min(_PANEL_IN * len(METRICS), FIGURE_HEIGHT_IN - below_in)
    fig = plt.figure(figsize=(FIGURE_WIDTH_IN, panels_in + below_in), layout="constrained")
    panels, below = fig.subfigures(2, 1, height_ratios=[panels_in, below_in])
    for column, setup in zip(np.atleast_1d(panels.subfigures(1, len(setups))), setups):
        _setup_column(column, rows[rows["setup"] == setup], runs[runs["setup"] == setup], len(setups))
    below.legend(handles=_handles(labels), loc="center", ncol=columns, title=note or None)  # over no line
    suptitle(fig, f"The evaluation after every epoch of training after pruning, compression {compression:g} "
                  "(Table A's runs): mean over seeds, band from the lowest seed to the highest")
    return fig


def _table_a_runs(table: pd.DataFrame, dense: pd.DataFrame | None, compression: float) -> pd.DataFrame:
    """Table A's runs: those of ``table`` at ``compression`` and, before them, the unpruned ones of ``dense``."""
    runs = table[np.isclose(table["compression"], compression)]
    if dense is not None and not dense.empty:
        runs = pd.concat([dense.assign(label=DENSE_LABEL), runs], ignore_index=True)
    if runs.empty:
        raise UserError(f"no runs at compression {compression:g} to draw the evaluation after every epoch of")
    return runs.reset_index(drop=True)


def _post_epochs(runs: pd.DataFrame, epochs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ``epochs.csv`` rows of the training after pruning of each of ``runs``, with the run's set-up, label and
    seed; ``epochs`` (with a ``path`` column) where given, else read from each run's record."""
    if epochs is None:
        epochs = pd.concat([load_record(path).epochs.assign(path=path) for path in runs["path"]], ignore_index=True)
    rows = epochs[epochs["phase"] == POST]
    return rows.merge(runs[["path", "setup", "label", "seed"]], on="path", validate="many_to_one")


def _epoch_means(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` per label and epoch of ``rows`` (:func:`_post_epochs`): the mean over seeds, the lowest and the
    highest."""
    return rows.groupby(["label", "epoch"])[metric].agg(["mean", "min", "max"]).reset_index()


def _setup_column(column, rows: pd.DataFrame, runs: pd.DataFrame, columns: int) -> None:
    """One set-up's panels in the subfigure ``column``, one of ``columns`` side by side, a row per measure of
    :data:`METRICS`, the column titled with its set-up, n and data (a set-up on synthetic stand-in data says so
    there)."""
    order = column_order(runs["label"])
    colours = {**palette(order), DENSE_LABEL: INK}
    axes = column.subplots(len(METRICS), 1, sharex=True)
    for ax, (metric, name, factor) in zip(axes, METRICS):
        per = _epoch_means(rows, metric)
        for label in order:
            _mean_and_range(ax, per[per["label"] == label], factor, colours[label], label == DENSE_LABEL)
        ax.set_ylabel(name)
        if metric in _LOG_WHERE_WIDE:
            _log_scale_if_wide(ax, per[["min", "max"]].to_numpy())
    axes[-1].set_xlabel("epoch after pruning")
    axes[-1].xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))
    column.align_ylabels(axes)
    data = "; ".join(sorted(set(runs["data"].dropna()))) if "data" in runs else ""
    n = seeds_n(runs.groupby("label").size())
    column.suptitle(panel_title(f"{runs['setup'].iloc[0]}, {n}", data, columns),
                    fontsize=plt.rcParams["axes.titlesize"])


def _mean_and_range(ax, per: pd.DataFrame, factor: float, colour: str, reference: bool) -> None:
    """One label's mean per epoch as a line, and the seeds' range as a light band in its colour (the unpruned
    reference dashed, and over the pruners' lines)."""
    if per.empty:
        return
    ax.fill_between(per["epoch"], per["min"] * factor, per["max"] * factor, color=colour, alpha=_BAND_ALPHA,
                    linewidth=0)
    ax.plot(per["epoch"], per["mean"] * factor, color=colour, lw=1.4 if reference else 1.2,
            ls="--" if reference else "-", zorder=3 if reference else 2)


def _log_scale_if_wide(ax, values: np.ndarray) -> None:
    """A log y axis where the values drawn span more than :data:`_LOG_SPAN`, so that every line stays readable."""
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size and finite.max() > _LOG_SPAN * finite.min():
        ax.set_yscale("log")


def _handles(labels: list[str]) -> list[Line2D | Patch]:
    """The legend: each label's line (the unpruned reference dashed, in black) and what a band is."""
    lines = [Line2D([], [], color=INK, ls="--", lw=1.4, label=label) if label == DENSE_LABEL else
             Line2D([], [], color=palette(labels)[label], lw=1.2, label=label) for label in labels]
    return [*lines, Patch(facecolor=INK, alpha=_BAND_ALPHA, linewidth=0, label="range over seeds")]


def _fused_note(runs: pd.DataFrame) -> str:
    """Where runs trained fused (several runs as one network): per set-up, which pruners trained in which network,
    and what their times are: each run's share of its network's evaluation pass, not its own model's time (Tables C
    and C2 time each model alone); empty where no run did."""
    if "train_step" not in runs:
        return ""
    fused = runs[runs["train_step"].astype(str).str.startswith("fused")]
    if fused.empty:
        return ""
    setups = []
    for setup, part in fused.groupby("setup", sort=False):
        networks = [f"{', '.join(column_order(group['label']))} {step}"
                    for step, group in part.groupby(part["train_step"].astype(str), sort=False)]
        setups.append(f"{setup}: {'; '.join(networks)}")
    return (f"Trained fused ({' | '.join(setups)}): their times are each run's share of its network's evaluation "
            "pass, not its own model's time (Tables C and C2 time each model alone)")
