"""The figures the notebooks show, each drawn from a table of records."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..errors import UserError
from .amp_memory import amp_memory
from .error_bars import mean_sd_bars, pass_bars
from .figure_axes import COMPRESSION_LABEL, bulk_y_axis, compression_axis, fit_tick_labels, kept_fraction_axis
from .grids import stand_in_note
from .numbers import seeds_n, steps_text
from .style import (
    FIGURE_HEIGHT_IN,
    FIGURE_WIDTH_IN,
    FLOPS,
    INK,
    PRECISION_FILLS,
    column_order,
    palette,
    pruner_name,
    suptitle,
    use_style,
)
from .tables import AMP_METRICS, amp_table, multishot_runs

#: Figure 1's height of a set-up's row of panels and of the legend below the rows, in inches
_ROW_IN, _BELOW_IN = 2.9, 1.0


def plot_against_compression(table: pd.DataFrame, sparse: pd.DataFrame, setup: str | None = None):
    """Top-1, inference time and FLOPs against compression, a row of three panels per set-up (``setup``
    alone where given, every set-up of ``table`` where None), a line per pruner: top-1 and FLOPs as the mean over
    seeds with a bar of one standard deviation either side, cut at 0 and 100% (:func:`mean_sd_line`), top-1 over
    the chance level (:func:`chance_line`); times as
    Tables C and C2 give them (``sparse``, :func:`.sparse_tables.sparse_table`: each run's model on the sparse kernels
    chosen per layer, the median of its passes with a bar from the fastest to the slowest, and in black over them the
    dense kernels' time, the median over pruners; a time over twice the slowest dense one is marked at the top edge,
    :func:`.figure_axes.bulk_y_axis`), since a
    run's own time after training was not timed in turn with anything. Each row is titled with its set-up, data
    and seed count."""
    use_style()
    setups = list(dict.fromkeys(table["setup"])) if setup is None else [setup]
    missing = [name for name in setups if not (table["setup"] == name).any()]
    if missing or not setups:
        raise UserError(f"no runs of set-up {', '.join(missing) or '(any)'} to plot; the table has: "
                        f"{', '.join(dict.fromkeys(table['setup'])) or 'no runs'}")
    row_in = min(_ROW_IN, (FIGURE_HEIGHT_IN - _BELOW_IN) / len(setups))  # three set-ups or more share the height
    fig = plt.figure(figsize=(FIGURE_WIDTH_IN, row_in * len(setups) + _BELOW_IN), layout="constrained")
    *rows, below = fig.subfigures(len(setups) + 1, 1, height_ratios=[row_in] * len(setups) + [_BELOW_IN])
    for row, name in zip(rows, setups):
        _compression_row(row, table[table["setup"] == name], sparse[sparse["setup"] == name], name)
    order = column_order(table.loc[table["setup"].isin(setups), "label"])
    dense = Line2D([], [], marker="o", color=INK, label="dense kernels (time; median over pruners)")
    handles = [*pruner_handles(order), dense, *chance_handle(table[table["setup"].isin(setups)])]
    below.legend(handles=handles, loc="center", ncol=3)  # below the rows, never over data
    suptitle(fig, "Accuracy, inference time and FLOPs against compression (accuracy and FLOPs: mean ± sd over "
                   "seeds; time: Table C2's, on sparse kernels)")
    fit_tick_labels(fig, fig.axes)
    return fig


def _compression_row(row, rows: pd.DataFrame, sparse: pd.DataFrame, setup: str) -> None:
    """One set-up's three panels in the (sub)figure ``row``, titled with the set-up, its data and n: top-1,
    inference time in ms (Tables C and C2), and FLOPs on a log axis (they span decades)."""
    order = column_order(rows["label"])
    axes = row.subplots(1, 3)
    for ax, metric in zip(axes[::2], ("top1", "flops")):
        for pruner in order:
            mean_sd_line(ax, rows[rows["label"] == pruner], metric, pruner)
    chance_line(axes[0], rows)
    for pruner in order:
        _sparse_time_line(axes[1], sparse[sparse["label"] == pruner], pruner)
    dense = sparse.groupby("compression")["dense_inference_s"].median().sort_index() * 1e3
    # as Figure 1b draws dense kernels, over the pruners' lines: under them it was hidden where they lie close
    axes[1].plot(dense.index, dense.to_numpy(), "o-", color=INK, zorder=3)
    median = sparse["sparse_inference_s"] * 1e3
    below, above = pass_bars(sparse, "sparse_inference", 1e3)
    drawn = [pd.DataFrame({"x": sparse["compression"], "y": median, "low": median - below, "high": median + above,
                           "colour": sparse["label"].map(pruner_colour)}),
             pd.DataFrame({"x": dense.index, "y": dense.to_numpy(), "low": dense.to_numpy(), "high": dense.to_numpy(),
                           "colour": INK})]
    for ax, label in zip(axes, ("test top-1 accuracy (%)", "inference time over\nthe test set (ms)",
                                f"{FLOPS}\nof the pruned model")):
        compression_axis(ax, rows["compression"])
        ax.set(xlabel="", ylabel=label)
    bulk_y_axis(axes[1], pd.concat(drawn, ignore_index=True), reference=float(dense.max()))
    row.supxlabel(COMPRESSION_LABEL, fontsize=plt.rcParams["axes.labelsize"])  # once: a third of the width is short
    axes[2].set_yscale("log")
    n = seeds_n(rows.groupby(["label", "compression"]).size())
    data = "; ".join(sorted(set(rows["data"]))) if "data" in rows else ""
    row.suptitle(f"{setup} ({data}), {n}" if data else f"{setup}, {n}")


def _sparse_time_line(ax, runs: pd.DataFrame, label: str) -> None:
    """One pruner's sparse-kernel time per compression (Table C2's median, in ms) with a bar from its fastest pass
    to its slowest (:func:`.error_bars.pass_bars`), in the pruner's colour."""
    runs = runs.sort_values("compression")
    ax.errorbar(runs["compression"], runs["sparse_inference_s"] * 1e3, yerr=pass_bars(runs, "sparse_inference", 1e3),
                marker="o", capsize=3, color=pruner_colour(label), label=label)


def pruner_colour(label: str) -> str:
    """A pruner label's colour (:func:`.style.palette`: the registered pruner's, or a spare)."""
    return palette([label])[label]


def chance_line(ax, rows: pd.DataFrame) -> None:
    """The chance level of ``rows``' runs (always answering the test set's most frequent class, the mean over the
    runs) as a dotted line across ``ax``, where the records give it."""
    chance = rows["majority_class_top1"].mean() if "majority_class_top1" in rows else np.nan
    if np.isfinite(chance):
        ax.axhline(chance, color="k", ls=":", lw=1.2, zorder=2.5)  # over bars and lines


def chance_handle(table: pd.DataFrame) -> list[Line2D]:
    """The legend entry of :func:`chance_line`, where any run of ``table`` gives its chance level: with its value
    where every set-up's line stands at one (to the tenth of a point), as a dotted line alone does not say it."""
    if "majority_class_top1" not in table or not table["majority_class_top1"].notna().any():
        return []
    per_setup = table.groupby("setup")["majority_class_top1"].mean() if "setup" in table else \
        table["majority_class_top1"].agg(["mean"])
    levels = {f"{v:.1f}" for v in per_setup.dropna()}
    value = f" ({levels.pop()}%)" if len(levels) == 1 else ""
    return [Line2D([], [], color="k", ls=":", lw=1.2, label=f"chance: most frequent class{value}")]


def pruner_handles(labels: list[str]) -> list[Line2D]:
    """Legend entries of the pruner lines (marker and colour), for a legend beside the panels."""
    return [Line2D([], [], marker="o", color=pruner_colour(label), label=label) for label in labels]


def mean_sd_line(ax, runs: pd.DataFrame, metric: str, pruner: str, by: str = "compression", **style) -> pd.DataFrame:
    """One pruner's (its label's) ``metric`` per value of ``by`` as its mean over seeds with a bar of one sample
    standard deviation either side (none for one seed), cut at the metric's bounds (:func:`.error_bars.mean_sd_bars`:
    top-1 within 0 and 100%), in the pruner's colour and named by its label unless ``style`` says otherwise; returns
    the means and sds drawn."""
    stats = runs.groupby(by)[metric].agg(["mean", "std"]).sort_index()
    ax.errorbar(stats.index, stats["mean"], yerr=mean_sd_bars(stats, metric), marker="o", capsize=3,
                **{"color": pruner_colour(pruner), "label": pruner, **style})
    return stats


def plot_weight_histograms(weights_by_label: dict[str, dict[str, np.ndarray]], title: str, bins: int = 40):
    """A panel per layer (``weights_by_label``: per pruner, :func:`.layer_findings.record_weights`, keyed by the
    layers' names); each pruner's kept weights as a step histogram in that panel. A layer where no pruner kept a
    weight has nothing to draw: the title names it instead of showing an empty panel."""
    use_style()
    every = list(next(iter(weights_by_label.values())))
    layers = [layer for layer in every if any(w.get(layer, np.zeros(0)).size for w in weights_by_label.values())]
    emptied = [layer for layer in every if layer not in layers]
    cols = 4  # printed across a page: 6 columns took the tick labels to under 3 pt
    rows = max(math.ceil(len(layers) / cols), 1)
    # drawn at the size it prints (22 layers: the page's width and the figure box's height): 8 pt ticks print at 8
    fig, axes = plt.subplots(rows, cols, figsize=(FIGURE_WIDTH_IN, min(1.15 * rows + 0.9, FIGURE_HEIGHT_IN)),
                             squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        for label, weights in weights_by_label.items():
            values = weights.get(layer, np.zeros(0))
            if values.size:
                ax.hist(values, bins=bins, histtype="step", label=label, color=pruner_colour(label))
        ax.set_title(layer, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(3, steps=[1, 2, 3, 5, 10]))  # five labels of 8 pt crowd a panel
        ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
        ax.grid(False)
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    if len(weights_by_label) > 1:
        handles = [Line2D([], [], color=pruner_colour(label), label=label) for label in weights_by_label]
        room = len(layers) < axes.size  # a free slot of the grid holds the legend, else it goes beside
        fig.legend(handles=handles, loc="lower right" if room else "outside right lower")  # clear of the title
    fig.supxlabel("weight value")
    fig.supylabel("count of kept weights")
    suptitle(fig, f"{title} (no weights kept in {', '.join(emptied)})" if emptied else title)
    return fig


def plot_density_and_flops(layers: pd.DataFrame, compression: float):
    """Per-layer density and kept FLOPs, a line per pruner, layers in network order (``layers``:
    :func:`~prunelab.workbook.layer_findings.layer_frame`); the title flags set-ups on stand-in data. Its legend
    beside the panels, the layers' names at 8 pt, 5 in tall so that each panel reads (Table I follows on its own)."""
    use_style()
    order = list(dict.fromkeys(layers["layer"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH_IN, 5.0), sharex=True)
    for label in column_order(layers["label"]):
        part = layers[layers["label"] == label].set_index("layer").reindex(order)
        top.plot(range(len(order)), part["density"], marker="o", label=label, color=pruner_colour(label))
        bottom.plot(range(len(order)), part["kept_flops"], marker="o", label=label, color=pruner_colour(label))
    dense = layers.drop_duplicates("layer").set_index("layer").reindex(order)["flops"]
    bottom.bar(range(len(order)), dense, color="#ddd", label="dense", zorder=0)
    top.axhline(10 ** -compression, color="k", lw=0.8, ls="--", label=f"overall target {10 ** -compression:.3f}")
    top.set_ylabel("density\n(kept fraction)")
    top.set_yticks([0, 0.5, 1])  # a short panel's own ticks are 0 and 1 only
    bottom.set_ylabel(FLOPS.replace(" (", "\n(") + "\nper image")
    bottom.set_yscale("log")
    bottom.set_xticks(range(len(order)), order, rotation=90, fontsize=8)  # upright: 22 names across overprint
    fig.legend(*top.get_legend_handles_labels(), loc="outside right center")  # beside the panels, over no line
    suptitle(fig, f"Per-layer density and FLOPs at compression {compression}" + stand_in_note(layers))
    return fig


def plot_amp(table: pd.DataFrame, timing: pd.DataFrame):
    """Peak memory, training time and top-1 per compression, fp32 and mixed precision side by side; peak memory
    as Table J compares it (:func:`.amp_memory.amp_memory`: each run's own on a GPU, a timed pass's tensors on a
    CPU), and none where only the training process's peak was measured: bars side by side would invite a comparison
    that it does not bear.

    Top-1 is that of the two runs (``table``); training time is the interleaved measurement
    (``timing``: :func:`~prunelab.workbook.measurement_tables.amp_timing_frame`), its bar the median pass and its
    whisker from the fastest pass to the slowest (Table J prints the median ± half the range). The two runs' own
    epoch times are not drawn: they were taken minutes apart on a machine whose speed drifts.
    """
    use_style()
    frame = amp_table(table)
    memory = amp_memory(table, timing)
    metrics = {m: name for m, name in AMP_METRICS.items() if memory.compared or m != "peak_memory_mb"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(FIGURE_WIDTH_IN, 3.6))
    x = np.arange(len(frame.index))
    amp_name = next((p for _, p in frame.columns if p.startswith("AMP")), "AMP")
    times = timing.reindex(frame.index)
    for ax, (metric, name) in zip(axes, metrics.items()):
        precisions = [p for m, p in frame.columns if m == name]
        width = 0.8 / max(len(precisions), 1)
        for i, precision in enumerate(precisions):
            offset = x + (i - (len(precisions) - 1) / 2) * width
            mixed = precision.startswith("AMP")  # fp32's label may name its step ("fp32, fused (2 runs)")
            fill, hatch = PRECISION_FILLS[mixed]  # no pruner's colour: these are no pruners
            look = dict(label=precision, color=fill, hatch=hatch, edgecolor=INK, linewidth=0.6)
            key = "amp" if mixed else "fp32"
            if metric == "train_s":
                ax.bar(offset, times[f"{key}_train_s"], width, yerr=pass_bars(times, f"{key}_train"), capsize=3,
                       ecolor=INK, **look)
            elif metric == "peak_memory_mb":
                ax.bar(offset, [memory.mb.get(c, {}).get(key, np.nan) for c in frame.index], width, **look)
            else:
                ax.bar(offset, frame[(name, precision)], width, **look)
        if metric == "top1":
            chance_line(ax, table)
        ax.set_xticks(x, [f"{c:g}" for c in frame.index])
        ax.set_xlabel(COMPRESSION_LABEL.replace(" (", "\n(", 1))  # two lines: three panels share the width
        ax.set_ylabel(name)
    if memory.source == "timed pass":  # Table J's heading, in two lines: a third of the width
        axes[list(metrics).index("peak_memory_mb")].set_ylabel("peak tensor memory of\nthe timed pass (MB)")
    if len(timing):
        first = timing.iloc[0]
        ax = axes[list(metrics).index("train_s")]
        ax.set_ylabel(f"training time of\n{steps_text(int(first['batches']), int(first['batch_size']))} (s)")
        # the precisions alone: how the runs trained ("AMP bf16, fused (2 runs)") is the legend's, and a third of
        # the width holds no longer title without running into the next panel
        ax.set_title(f"fp32 and {amp_name.split(',')[0]} in turn: median,\nwhiskers fastest to slowest pass",
                     fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    handles += chance_handle(table)
    fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center",
               ncol=max(len(handles), 1))  # below: clear of a wrapped title
    measured = {"runs": memory.kind, "timed pass": "a timed pass's tensors", "process": "not compared on the CPU"}
    suptitle(fig, f"Mixed precision against fp32 (peak memory: {measured[memory.source]})" + stand_in_note(table))
    return fig


def plot_multishot(table: pd.DataFrame):
    """Top-1 against weights remaining (log scale, fewest on the right), a line per pruner and cycle count:
    the mean over seeds with a bar of one sd either side (:func:`~.tables.multishot_table` gives the cells), in
    the pruner's colour, solid for one cycle and dashed for more."""
    use_style()
    runs = multishot_runs(table)
    if runs.empty:
        raise UserError("no multishot runs to plot (prunelab --experiment multishot --level-list ...)")
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for column, part in runs.groupby("column"):
        cycles = int(part["levels"].iloc[0])
        mean_sd_line(ax, part, "top1", pruner_name(part["pruner"].iloc[0]), by="remaining", label=column,
                      linestyle="-" if cycles == 1 else "--")
    kept_fraction_axis(ax, sorted(set(runs["remaining"])))
    ax.set(xlabel="fraction of prunable weights remaining", ylabel="test top-1 (%)",
           title="Multishot: accuracy against weights remaining\n(mean ± sd over seeds)")
    ax.legend()
    fit_tick_labels(fig, [ax])
    return fig
