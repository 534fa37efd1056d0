"""The x axes of the workbook's figures that mark the values run (compressions, kept fractions), each labelled.

:func:`compression_axis` and :func:`kept_fraction_axis` put a tick with its label at every value; once the figure
is laid out, :func:`fit_tick_labels` moves a label that would overprint its left neighbour to a second row below
the first, and takes the label off a tick (which keeps its mark) only where neither row has room. The room is
measured on the laid-out figure, so a panel of any width labels every value that fits, the same way in every
figure. :func:`bulk_y_axis` fits a y axis to the bulk of its points where one lies far above them.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from .numbers import significant
from .style import INK

#: a compression axis's label, the kept fraction in mathtext (a caret would print as one)
COMPRESSION_LABEL = r"compression $c$ (kept fraction $10^{-c}$)"
#: clear space between neighbouring tick labels of one row, in ems of their font
_LABEL_GAP_EM = 0.4
#: space between the first row of labels and the second, in ems of their font
_ROW_GAP_EM = 0.2
#: a point more than this many times a panel's reference is an outlier, drawn at the panel's top edge
OUTLIER_FACTOR = 2.0
#: :func:`bulk_y_axis`'s margins, as fractions of the span of the points it fits: below them, and above them, where
#: its label goes
_PAD, _LABEL_ROOM = 0.05, 0.2
#: the size of :func:`bulk_y_axis`'s triangles, and the clear space around its label, in points
_TRIANGLE_PT, _GAP_PT = 8.0, 2.0


def compression_axis(ax, compressions: Iterable[float]) -> None:
    """An x axis of compressions with a tick at each one run, labelled plainly ("0.5"); :func:`fit_tick_labels`
    staggers the labels that would crowd."""
    values = sorted({float(c) for c in compressions})
    ax.set_xticks(values, [f"{value:g}" for value in values])
    ax.set_xlabel(COMPRESSION_LABEL)


def kept_fraction_axis(ax, kept: Iterable[float]) -> None:
    """A log x axis of kept fractions, the fewest kept on the right, labelled plainly ("0.316") at each fraction
    drawn (matplotlib's own minor labels of a short log axis, "6×10⁻¹4×10⁻¹…", overprint each other; its
    minor marks stay unlabelled); :func:`fit_tick_labels` staggers the labels that would crowd. One fraction gets
    a decade around it, where matplotlib would make a degenerate axis of it. Call it after the data is drawn."""
    values = sorted({float(v) for v in kept if np.isfinite(v) and v > 0}, reverse=True)
    ax.set_xscale("log")
    if not values:
        return
    ax.set_xticks(values, [f"{value:.3g}" for value in values])
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(values) == 1:
        ax.set_xlim(values[0] * 10 ** 0.5, values[0] / 10 ** 0.5)
    elif not ax.xaxis_inverted():
        ax.invert_xaxis()


def bulk_y_axis(ax, points: pd.DataFrame, reference: float) -> None:
    """Where a point (``points``: columns ``x``, ``y``, ``low`` and ``high``, the ends of its bar (``y`` both where it
    has none), ``colour`` and, optionally, ``name``, one row per point drawn) lies more than :data:`OUTLIER_FACTOR`
    times ``reference`` (Figures 1 and 1b: the slowest median dense time), fit the y axis to the other points and
    their bars, and draw each outlier as a triangle in its colour at the top edge: one slow point does not squash
    the rest. The axis ends at that bound at most, so every outlier lies above it: the dots of ``ax``'s lines there
    are left off (the triangle stands for each), and a bar end past the bound (one slow pass) does not set the
    limit; its whisker is cut at the top edge. The axis leaves room at its top for one label, beside the highest
    outlier's triangle and clear of it and of the top edge: its value (and name, where given: Figure 1b draws every
    run in black), or where there are several, their count and the highest value: a label per outlier would
    overprint the next. Call it once the data is drawn and the x axis set (the label goes on the side of the
    triangle with room). Where no point is an outlier but a bar end passes the bound, the axis is fitted the same way,
    that whisker cut at the top edge; nothing changes where neither is."""
    bound = OUTLIER_FACTOR * reference
    outlier = points["y"] > bound
    if not outlier.any() and not (points["high"] > bound).any():
        return
    bulk, far = points[~outlier], points[outlier]
    low, high = bulk["low"].min(), bulk["high"].where(bulk["high"] <= bound, bulk["y"]).max()
    span = high - low
    ax.set_ylim(max(low - _PAD * span, 0.0) if low >= 0 else low - _PAD * span,  # times: no axis below zero
                min(high + _LABEL_ROOM * span, bound))
    top = ax.get_ylim()[1]
    for line in ax.lines:  # the outliers' dots, drawn by the figure: each is a triangle instead
        beyond = np.asarray(line.get_ydata(), dtype=float) > bound
        if beyond.any():
            line.set_markevery(list(~beyond))
    for _, point in far.iterrows():
        ax.plot([point["x"]], [top], marker="^", markersize=_TRIANGLE_PT, color=point["colour"], linestyle="none",
                clip_on=False, zorder=4)
    if len(far):
        _outlier_label(ax, far, top)


def _outlier_label(ax, far: pd.DataFrame, top: float) -> None:
    """The one label of :func:`bulk_y_axis`'s triangles (``far``: the outliers, drawn at ``top``), beside the
    highest's, in the room left under the top edge: a gap of :data:`_GAP_PT` from the triangle and from the edge, on
    a pale ground that keeps it legible over a whisker cut at the edge."""
    highest = far.loc[far["y"].idxmax()]
    if len(far) == 1:
        name = f" ({highest['name']})" if highest.get("name") else ""
        text, colour = f"{significant(highest['y'])}{name}", highest["colour"]
    else:
        text, colour = f"{len(far)} off the axis, up to {significant(highest['y'])}", INK
    ax.get_xlim()  # settles the x limits autoscaling left pending, which the transform below reads
    across = ax.transAxes.inverted().transform(ax.transData.transform((highest["x"], top)))[0]
    left = across < 0.5  # the label runs into the panel, not off its edge
    aside = _TRIANGLE_PT / 2 + _GAP_PT  # from the triangle's centre past its side
    ax.annotate(text, (highest["x"], top), xytext=(aside if left else -aside, -(_TRIANGLE_PT / 2 + _GAP_PT)),
                textcoords="offset points", ha="left" if left else "right", va="top", fontsize=8, color=colour,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def fit_tick_labels(fig, axes: Iterable) -> None:
    """Lay ``fig`` out, then on each of ``axes``' x axis (ticks and labels set, as by :func:`compression_axis`)
    move each label that would overprint its left neighbour to a second row below the first; one that would
    overprint there too keeps its tick's mark without a label. Call it once the figure is drawn in full."""
    fig.draw_without_rendering()  # the panels' final widths and the labels' sizes
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        _stagger(ax, renderer)


def _stagger(ax, renderer) -> None:
    ticks = [(x, label) for x, label in zip(ax.get_xticks(), ax.get_xticklabels()) if label.get_text()]
    if len(ticks) < 2:
        return
    size = ticks[0][1].get_fontsize()
    per_point = renderer.points_to_pixels(1.0)
    gap = _LABEL_GAP_EM * size * per_point
    height = max(label.get_window_extent(renderer).height for _, label in ticks) / per_point  # a row, in points
    rows: tuple[list, list, list] = ([], [], [])  # the first row, the second, and marks left bare
    ends = [-np.inf, -np.inf]
    for x, label in sorted(ticks, key=lambda tick: tick[1].get_window_extent(renderer).x0):
        box = label.get_window_extent(renderer)
        row = next((r for r in (0, 1) if box.x0 >= ends[r] + gap), 2)
        rows[row].append((x, label.get_text() if row < 2 else ""))
        if row < 2:
            ends[row] = box.x1
    if len(rows[0]) == len(ticks):
        return
    ax.set_xticks([x for x, _ in rows[0]], [text for _, text in rows[0]])
    lower = rows[1] + rows[2]
    ax.set_xticks([x for x, _ in lower], [text for _, text in lower], minor=True)
    pad = plt.rcParams["xtick.major.pad"] + height + _ROW_GAP_EM * size  # below the first row's labels
    ax.tick_params(axis="x", which="minor", labelsize=size, length=plt.rcParams["xtick.major.size"],
                   width=plt.rcParams["xtick.major.width"], pad=pad)
