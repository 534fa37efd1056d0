"""Figure 1c: where each pruner collapses. A panel per set-up of top-1 against compression, and under each panel a
strip sharing its x axis with a lane per pruner, which marks where a layer first empties and where a network is first
left with no path: the marks give compressions only, so none of them stands at an accuracy."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from ..errors import UserError
from .collapse_study import collapse_study
from .collapses import emptied_layers
from .figure_axes import COMPRESSION_LABEL, compression_axis, fit_tick_labels
from .figures import chance_handle, chance_line, mean_sd_line, pruner_colour, pruner_handles
from .numbers import seeds_n
from .style import DENSE_LABEL, FIGURE_HEIGHT_IN, FIGURE_WIDTH_IN, column_order, panel_title, suptitle, use_style

#: the open marks of a lane, their sizes in points: a layer first empties (X), a network is first left with no path
#: (square); the X fits inside the square, so where both fall at one compression both show whole
_MARK_SIZES = {"X": 6.0, "s": 10.0}
#: the marks' edge width, and a lane's height, in points: a square and its edge with a clear gap to the next lane's
_MARK_EDGE_PT, _LANE_PT = 1.2, 13.0
#: a lane's label: its size, and its clear space from the lane's marks, in points
_LABEL_PT, _LABEL_GAP_PT = 8, 3.0
#: the height of a row of accuracy panels with their titles and axis labels, and of the figure's title and legend,
#: in inches
_PANEL_IN, _EXTRA_IN = 2.9, 1.3


def plot_collapse(table: pd.DataFrame):
    """Where pruning collapses a network, a panel per set-up: top-1 against compression, a line per pruner
    (mean ± sd over seeds) and the chance level (always answering the test set's most frequent class, its mean
    over the set-up's runs). Under a panel, sharing its x axis, a strip with a lane per pruner marked there
    (:func:`_lanes`): an open cross at the lowest compression where any seed's trained network has a layer with no
    weight (the collapse table's layers) and, on real data, an open square where one is first left with no path from
    input to output (:func:`~.collapse_study.collapse_study`); a panel with no mark has no strip. One legend below the
    panels. The unpruned reference, where present, is left out: it has no compression to collapse at."""
    use_style()
    pruned = table[table["label"] != DENSE_LABEL]
    setups = list(dict.fromkeys(pruned["setup"]))
    if not setups:
        raise UserError("no pruned runs to plot layer collapse for")
    pruned = pruned.assign(emptied=emptied_layers(pruned))
    cuts = _first_cuts(pruned)
    marks = [_panel_marks(pruned[pruned["setup"] == setup], cuts, setup) for setup in setups]
    fig, panels, strips, cells = _panels([len(placed) for placed in marks])
    for ax, strip, setup, placed in zip(panels, strips, setups, marks):
        rows = pruned[pruned["setup"] == setup]
        for label in column_order(rows["label"]):
            mean_sd_line(ax, rows[rows["label"] == label], "top1", label)
        chance_line(ax, rows)
        compression_axis(ax, rows["compression"])
        data = "; ".join(sorted(set(rows["data"]))) if "data" in rows else ""
        ax.set(ylabel="test top-1 accuracy (%)", title=panel_title(setup, data))
        if strip is not None:
            _lanes(ax, strip, placed)
    _legend(fig, pruned, bool(cuts))
    n = seeds_n(pruned.groupby(["setup", "label", "compression"]).size())
    where = "where a layer first empties" + (" and where a network is first left with no path" if cuts else "")
    suptitle(fig, f"Layer collapse: accuracy against compression (mean ± sd over seeds, {n}), the chance level, "
                   f"and {where}")
    fit_tick_labels(fig, [ax if strip is None else strip for ax, strip in zip(panels, strips)])
    for strip in strips:
        if strip is not None:
            _place_labels(strip)
    _fit_lanes(panels, cells, [len(placed) for placed in marks], min(len(panels), 2))
    return fig


def _first_cuts(table: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per real-data set-up and pruner label, the lowest compression where a seed's trained network keeps no
    path of weights from input to output; none where no network is cut or the records were not checked."""
    if "stand_in" not in table:
        return {}
    return {(s.setup, s.label): s.first_cut for s in collapse_study(table) if s.first_cut is not None}


def _panel_marks(rows: pd.DataFrame, cuts: dict[tuple[str, str], float], setup: str) -> dict[str, list]:
    """One set-up's marks per pruner label, in :func:`.style.column_order`, each a list of (marker, compression): a
    cross where one of its runs first emptied a layer, a square where one is first left with no path (``cuts``);
    the pruners with no mark left out."""
    marks = {}
    for label in column_order(rows["label"]):
        runs = rows[rows["label"] == label]
        emptied = runs.loc[runs["emptied"].map(bool), "compression"]
        first = float(emptied.min()) if len(emptied) else None
        placed = [(marker, at) for marker, at in (("s", cuts.get((setup, label))), ("X", first)) if at is not None]
        if placed:
            marks[label] = placed
    return marks


def _panels(lanes: list[int]):
    """A figure of a panel per set-up, at most two a row across :data:`.style.FIGURE_WIDTH_IN`, and under each panel
    with ``lanes`` (per panel) above zero a strip sharing its x axis. Each panel's cell is a grid of four rows: room
    above the panel, the panel, its strip, and the room its row's deepest strip takes beyond it, so that a row's
    panels line up, one height (:func:`_fit_lanes` sets them once the figure is laid out). Returns the figure, the
    panels in reading order, their strips (None: none) and cells; ``fig.axes`` lists the panels first."""
    cols = min(len(lanes), 2)
    rows = -(-len(lanes) // cols)
    lane_in = _LANE_PT / 72
    deepest = [max(lanes[row * cols:(row + 1) * cols]) for row in range(rows)]
    heights = [_PANEL_IN + depth * lane_in for depth in deepest]
    fig = plt.figure(figsize=(FIGURE_WIDTH_IN, min(sum(heights) + _EXTRA_IN, FIGURE_HEIGHT_IN)), layout="constrained")
    grid = fig.add_gridspec(rows, cols, height_ratios=heights)
    cells = [grid[i // cols, i % cols].subgridspec(
        4, 1, height_ratios=_cell_rows(0, _PANEL_IN, n * lane_in, (deepest[i // cols] - n) * lane_in))
        for i, n in enumerate(lanes)]
    panels = [fig.add_subplot(cell[1]) for cell in cells]
    strips = [fig.add_subplot(cell[2], sharex=ax) if n else None for cell, ax, n in zip(cells, panels, lanes)]
    return fig, panels, strips, cells


def _lanes(ax, strip, marks: dict[str, list]) -> None:
    """``strip`` under the panel ``ax``: a lane per pruner of ``marks`` (:func:`_panel_marks`), the first at the top,
    its open marks at their compressions in the pruner's colour (a cross and a square at one compression one inside
    the other) and its label beside them (:func:`_place_labels` picks the side); the compression axis's labels are
    the strip's, ``ax`` keeps its ticks."""
    for lane, (label, placed) in enumerate(marks.items()):
        colour = pruner_colour(label)
        for marker, at in placed:
            strip.plot([at], [lane], marker=marker, markersize=_MARK_SIZES[marker], markerfacecolor="none",
                       markeredgecolor=colour, markeredgewidth=_MARK_EDGE_PT, linestyle="none")
        reach = (max(_MARK_SIZES[marker] for marker, _ in placed) + _MARK_EDGE_PT) / 2 + _LABEL_GAP_PT
        text = strip.annotate(label, (max(at for _, at in placed), lane), xytext=(reach, 0),
                              textcoords="offset points", ha="left", va="center", fontsize=_LABEL_PT, color=colour)
        text.set_in_layout(False)  # it stays in the strip (:func:`_place_labels`): the layout need not hold it
    strip.set_ylim(len(marks) - 0.5, -0.5)
    strip.set_yticks([])
    strip.set_xlabel(COMPRESSION_LABEL)
    strip.set_ylabel("where each pruner first collapses")
    strip.yaxis.label.set_visible(False)  # for the alternative text: the lanes' labels and the legend say it
    ax.tick_params(axis="x", which="both", labelbottom=False)
    ax.xaxis.label.set_visible(False)  # kept, unseen, for the figure's alternative text


def _place_labels(strip) -> None:
    """Once the figure is laid out, move a lane's label that runs past the strip's right end to the left of the
    lane's first mark, where there is more room there."""
    renderer = strip.figure.canvas.get_renderer()
    for text in strip.texts:
        lane = text.xy[1]
        at = [float(line.get_xdata()[0]) for line in strip.lines if line.get_ydata()[0] == lane]
        reach = text.get_position()[0] * strip.figure.dpi / 72  # from a mark's centre, in pixels
        box = text.get_window_extent(renderer)
        left = strip.transData.transform((min(at), lane))[0] - reach - strip.bbox.x0
        if box.x1 > strip.bbox.x1 and left > strip.bbox.x1 - box.x0:
            text.xy = (min(at), lane)
            text.set_position((-text.get_position()[0], 0))
            text.set_horizontalalignment("right")


def _fit_lanes(panels: list, cells: list, lanes: list[int], cols: int) -> None:
    """Once the figure is laid out, align a row's panels, one height, and make each lane :data:`_LANE_PT` high: per
    cell, the height its rows share (read off its panel's) goes to the room above its panel that brings the panel's
    top down to the row's lowest (under the longest title), the panel, its lanes and the rest below them. Where a
    row is too short for that, its lanes narrow to leave its panels half of it."""
    lane = _LANE_PT / 72 * panels[0].figure.dpi
    for first in range(0, len(panels), cols):
        row = range(first, min(first + cols, len(panels)))
        top = min(panels[i].bbox.y1 for i in row)
        scale = {i: panels[i].bbox.height / cells[i].get_height_ratios()[1] for i in row}  # pixels per ratio unit
        above = {i: scale[i] * cells[i].get_height_ratios()[0] + panels[i].bbox.y1 - top for i in row}
        below = {i: scale[i] * sum(cells[i].get_height_ratios()) - above[i] for i in row}
        pitch = min([lane] + [below[i] / 2 / lanes[i] for i in row if lanes[i]])
        height = min(below[i] - lanes[i] * pitch for i in row)
        for i in row:
            cells[i].set_height_ratios(_cell_rows(above[i], height, lanes[i] * pitch,
                                                  below[i] - height - lanes[i] * pitch))


def _cell_rows(above: float, panel: float, strip: float, rest: float) -> list[float]:
    """A cell's row heights (:func:`_panels`), none of them zero: constrained layout gives up on a row of none."""
    least = panel / 1000
    return [max(above, least), panel, max(strip, least), max(rest, least)]


def _legend(fig, pruned: pd.DataFrame, cut: bool) -> None:
    """One legend below the panels: the pruners' lines, the marks drawn (in black: a lane's colour is its pruner's)
    and the chance level."""
    handles = pruner_handles(column_order(pruned["label"]))
    marks = [(any(map(bool, pruned["emptied"])), "X", "a layer first empties"),
             (cut, "s", "a network first has no path")]
    handles += [Line2D([], [], marker=marker, markersize=_MARK_SIZES[marker], markerfacecolor="none",
                       markeredgecolor="k", markeredgewidth=_MARK_EDGE_PT, linestyle="none", label=text)
                for drawn, marker, text in marks if drawn]
    handles += chance_handle(pruned)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3))  # four are wider than the page
