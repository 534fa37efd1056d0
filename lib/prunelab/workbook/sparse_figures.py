"""Figure 1b: test-set inference time against the kept fraction of weights, on dense and sparse kernels, and
where sparse kernels start to pay (the runs :mod:`.sparse_tables` counts as gaining)."""

from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.transforms import ScaledTranslation

from ..core.timing import MARGIN, faster_by
from .figure_axes import bulk_y_axis, fit_tick_labels, kept_fraction_axis
from .numbers import share_of
from .sparse_tables import compression_medians, kernels_differ, left_out, sparse_gains
from .style import INK, panel_grid, panel_title, suptitle, use_style

#: characters of a line of a panel's legend note (9 pt, about the width of a panel)
_NOTE_CHARS = 40
#: space between a panel's x label and its legend below, in inches
_NOTE_GAP_IN = 0.05


def plot_sparse_inference(sparse: pd.DataFrame):
    """Test-set inference time against the kept fraction of weights, a panel per setup: dense kernels,
    the sparse kernels chosen per layer, and the FLOP-proportional ideal (dense time x the kept fraction of
    FLOPs), each the median over pruners at a compression, with a marker per point (a set-up with one compression
    is one point); the crossover (:func:`_crossover`), where most runs count as faster on sparse kernels and the
    median run by more than the noise margin, is a dotted line named in the legend; where there is none the legend
    says which test failed, counting the runs that gain as the findings count them. A run's time over twice the
    slowest median dense one is a triangle at the top edge, labelled with its time and pruner, and the axis fits the
    rest (:func:`.figure_axes.bulk_y_axis`): one slow run flattened every line of its panel."""
    use_style()
    setups = list(dict.fromkeys(sparse["setup"]))
    fig, axes = panel_grid(len(setups), 4.6)
    notes = []
    for ax, setup in zip(axes, setups):
        rows = sparse[sparse["setup"] == setup].assign(ideal=lambda f: f["dense_inference_s"] * f["flop_density"])
        per = compression_medians(rows, ["dense_inference_s", "sparse_inference_s", "ideal", "speedup"])
        # in black, told apart by line and marker: the pruners' colours would say these lines were pruners
        ax.plot(per["kept"], per["dense_inference_s"] * 1e3, "o-", color=INK, label="dense kernels")
        ax.plot(per["kept"], per["sparse_inference_s"] * 1e3, "s--", color=INK, markerfacecolor="white",
                label="sparse kernels (chosen per layer)")
        ax.plot(per["kept"], per["ideal"] * 1e3, "d-.", markersize=5, color=INK, lw=1, label="FLOP-proportional ideal")
        ax.scatter(rows["kept"], rows["sparse_inference_s"] * 1e3, s=12, marker="s", facecolors="none",
                   edgecolors=INK, alpha=0.35, linewidths=0.8)
        notes.append(_crossover(ax, rows, per))
        kept_fraction_axis(ax, per["kept"])
        bulk_y_axis(ax, _drawn_points(rows, per), reference=float(per["dense_inference_s"].max() * 1e3))
        data = "; ".join(sorted(set(rows["data"]))) if "data" in rows else ""
        ax.set(xlabel="fraction of prunable weights kept", ylabel="inference time over\nthe test set (ms)",
               title=panel_title(setup, data))
    suptitle(fig, "Inference time against kept fraction: dense kernels, sparse kernels, and the ideal")
    fit_tick_labels(fig, axes)
    for ax, note in zip(axes, notes):  # below: inside, it covered points
        ax.legend(title=note, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=_below_x_axis(ax),
                  borderaxespad=0)
    return fig


def _below_x_axis(ax):
    """A transform of ``ax``'s axes fractions moved down past its x axis's tick labels (one row or two,
    :func:`.figure_axes.fit_tick_labels`) and label, as laid out last: a legend anchored at its (0.5, 0) stays clear
    of them at any panel height, which a fixed fraction below the axes does not on a short panel."""
    renderer = ax.figure.canvas.get_renderer()
    depth_in = (ax.bbox.y0 - ax.xaxis.get_tightbbox(renderer).y0) / ax.figure.dpi + _NOTE_GAP_IN
    return ax.transAxes + ScaledTranslation(0, -depth_in, ax.figure.dpi_scale_trans)


def _fill(line: str) -> str:
    """A line of a legend's note that names kept fractions, wrapped to a panel's width (five are wider)."""
    return textwrap.fill(line, width=_NOTE_CHARS)


def _drawn_points(rows: pd.DataFrame, per: pd.DataFrame) -> pd.DataFrame:
    """The points a Figure 1b panel draws, in ms, as :func:`.figure_axes.bulk_y_axis` takes them (no bars): the three
    lines' medians (``per``), and each run's sparse-kernel time (``rows``) named by its pruner."""
    lines = [pd.DataFrame({"x": per["kept"], "y": per[column] * 1e3, "name": ""})
             for column in ("dense_inference_s", "sparse_inference_s", "ideal")]
    runs = pd.DataFrame({"x": rows["kept"], "y": rows["sparse_inference_s"] * 1e3, "name": rows["label"]})
    return pd.concat([*lines, runs], ignore_index=True).assign(low=lambda f: f["y"], high=lambda f: f["y"], colour=INK)


def _crossover(ax, rows: pd.DataFrame, per: pd.DataFrame) -> str:
    """Draw Figure 1b's crossover on ``ax`` where there is one (``rows``: one set-up's runs; ``per``: their medians
    per compression), and return the legend's note: where sparse pays, or which test failed, counting the runs that
    gain. A kept fraction pays where most of its runs count as faster on sparse kernels, as the findings count them
    (:func:`.sparse_tables.sparse_gains`: beyond the timing noise, not the dense model itself, and on real data not
    at chance), not where a median of noisy times happens to be lower; on synthetic
    stand-in data no run is left out for its accuracy, which means nothing there, and the note says so. Share, median
    run and count are of the runs compared (:func:`.sparse_tables.left_out`), half of a kept fraction's at least.
    Where some kept fraction pays, the note counts the runs that gain among those compared at the kept fractions it
    names (the "most" it claims, as :func:`.numbers.share_of` says it: never "1 of the 1 runs") and then, where
    those are not all the runs compared, among all of them (the findings' count)."""
    compared = ~left_out(rows)
    faster, runs = sparse_gains(rows)[compared], rows[compared]
    stand_in = "stand_in" in rows and bool(rows["stand_in"].any())
    told = kernels_differ(rows) & (rows["sparse_inference_s"] < rows["dense_inference_s"])
    enough = compared.groupby(rows["compression"]).mean().reindex(per.index) >= 0.5
    most = (faster.groupby(runs["compression"]).mean().reindex(per.index) > 0.5) & enough
    median = runs.groupby("compression")["speedup"].median().reindex(per.index)
    paying = per[faster_by(1.0, median, MARGIN) & most]  # and the median run's speed-up past the margin
    unfiltered = "synthetic data: no accuracy filter"
    if len(paying):
        ax.axvline(paying["kept"].max(), color=INK, lw=0.8, ls=":")
        kept = ", ".join(f"{k:.3g}" for k in paying["kept"].sort_values(ascending=False))
        there = runs["compression"].isin(paying.index)  # "most" is of these runs, not of every kept fraction's
        gaining = share_of(int(faster[there].sum()), int(there.sum()), "run compared there", "runs compared there")
        if there.sum() < len(runs):  # else the runs there are all the runs compared: one count
            gaining += f", {int(faster.sum())} of {len(runs)} in all"
        count = _fill(f"dotted at {paying['kept'].max():.3g}; gaining: {gaining}")
        if stand_in:
            return f"{_fill(f'sparse pays for most runs at {kept} kept')}\n({count};\n{unfiltered})"
        return f"sparse pays for most runs still\n{_fill(f'above chance at {kept} kept')}\n({count})"
    if most.any():
        return f"most runs gain beyond the timing noise,\nbut the median by less than {MARGIN:.0%}"
    if told.any() and not faster.any():
        return "the runs faster beyond the timing noise\nare at chance: no crossover"
    if faster.any():
        return (f"no kept fraction where most runs gain\nbeyond the timing noise ({int(faster.sum())} of {len(runs)} "
                "runs do" + (f";\n{unfiltered})" if stand_in else ")"))
    return "no crossover: at no kept fraction is sparse\nfaster beyond the timing noise here"
