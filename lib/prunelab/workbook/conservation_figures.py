"""Figures of the SynFlow paper's conservation experiments, one per experiment, drawn from the frames of
:mod:`prunelab.core.conservation` (or :func:`prunelab.runs.conservation.conservation_frame`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from .style import FIGURE_HEIGHT_IN, FIGURE_WIDTH_IN

#: the legends' text size, in points: the hand-in PDF prints a figure of :data:`FIGURE_WIDTH_IN` at its own size
LEGEND_PT = 8


def _panels(count: int, height: float):
    """A figure of ``count`` panels (at least one), two a row across :data:`FIGURE_WIDTH_IN`, each row ``height``
    tall (less where the rows would pass :data:`FIGURE_HEIGHT_IN`): drawn wider, a figure is printed smaller
    and its texts with it. Returns the figure and its panels in reading order; an odd count's spare cell is
    removed."""
    count = max(count, 1)
    cols, rows = min(count, 2), -(-count // 2)
    fig = Figure(figsize=(FIGURE_WIDTH_IN, min(height * rows, FIGURE_HEIGHT_IN)), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).flat
    for ax in axes[count:]:
        ax.remove()
    return fig, list(axes[:count])


def plot_unit_conservation(frame: pd.DataFrame) -> Figure:
    """One panel per pruner: each dot a hidden unit at (score in, score out); dashed: exact conservation."""
    pruners = list(dict.fromkeys(frame["pruner"]))
    fig, axes = _panels(len(pruners), 3.4)
    for ax, name in zip(axes, pruners):
        part = frame[frame["pruner"] == name]
        positive = bool((part[["score_in", "score_out"]] > 0).all().all())
        for layer, group in part.groupby("layer", sort=False):
            ax.scatter(group["score_in"], group["score_out"], s=8, label=layer)
        low = float(part[["score_in", "score_out"]].min().min())
        high = float(part[["score_in", "score_out"]].max().max())
        ax.plot([low, high], [low, high], "k--", lw=1, zorder=0)
        if positive:
            _log_axes(ax)
        ax.set(title=name, xlabel="score in", ylabel="score out")
    if pruners:
        axes[-1].legend(fontsize=LEGEND_PT, markerscale=1.5)
    return fig


def _log_axes(ax) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
    ax.yaxis.set_minor_formatter(NullFormatter())


def _log_scatter(ax, x, y, **kwargs) -> None:
    ax.scatter(x, y, **kwargs)
    _log_axes(ax)


def _diagonal(ax, x: np.ndarray, y: np.ndarray) -> None:
    """The line ``y = c x`` through the geometric mean of the points: where equal layer sums would put them."""
    keep = (x > 0) & (y > 0)
    if not keep.any():
        return
    c = float(np.exp(np.mean(np.log(y[keep]) - np.log(x[keep]))))
    xs = np.array([x[keep].min(), x[keep].max()])
    ax.plot(xs, c * xs, "k--", lw=1, zorder=0)


def plot_layer_conservation(frame: pd.DataFrame) -> Figure:
    """Average layer score against inverse layer size (log-log), one panel per pruner."""
    pruners = list(dict.fromkeys(frame["pruner"]))
    fig, axes = _panels(len(pruners), 3.4)
    for ax, name in zip(axes, pruners):
        part = frame[frame["pruner"] == name]
        _log_scatter(ax, part["inv_size"], part["average_score"].where(part["average_score"] > 0), s=25)
        _diagonal(ax, part["inv_size"].to_numpy(), part["average_score"].to_numpy())
        ax.set(title=name, xlabel="inverse layer size", ylabel="average layer score")
    return fig


def plot_imp_conservation(frame: pd.DataFrame) -> Figure:
    """Left: each layer's change of Σθ² through training, phase after phase (the lines coincide where the
    law holds). Right: average Σθ² change per parameter at the end of each phase against inverse size."""
    fig, (left, right) = _panels(2, 3.6)
    epochs_per_level = int(frame["epoch"].max()) + 1 if len(frame) else 1
    step = frame["level"] * epochs_per_level + frame["epoch"]
    for layer, group in frame.assign(step=step).groupby("layer", sort=False):
        left.plot(group["step"], group["delta_sum"], marker=".", label=layer)
    left.set(xlabel="epoch (all phases)", ylabel="change of Σθ² in the phase")
    left.legend(fontsize=LEGEND_PT)
    ends = frame[frame["epoch"] == frame["epoch"].max()]
    for level, group in ends.groupby("level"):
        values = group["average_delta"].abs()
        _log_scatter(right, group["inv_size"], values.where(values > 0), s=25, label=f"phase {level}")
    right.set(xlabel="inverse layer size", ylabel="|average change of θ²|")
    right.legend(fontsize=LEGEND_PT)
    return fig


def plot_schedule_conservation(frame: pd.DataFrame) -> Figure:
    """One panel per schedule: the largest cut ratio against the number of rounds, a line per compression;
    above the dotted line at 1 a round may remove a whole layer."""
    schedules = list(dict.fromkeys(frame["schedule"]))
    fig, axes = _panels(len(schedules), 3.4)
    for ax, schedule in zip(axes, schedules):
        part = frame[frame["schedule"] == schedule]
        for compression, group in part.groupby("compression"):
            ax.plot(group["rounds"], group["max_cut_ratio"], marker="o", label=f"$10^{{-{compression:g}}}$ kept")
        ax.axhline(1.0, color="k", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set(title=schedule, xlabel="pruning rounds", ylabel="max cut / flow")
        ax.legend(fontsize=LEGEND_PT)
    return fig
