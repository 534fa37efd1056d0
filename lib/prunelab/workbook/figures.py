"""The figures the notebooks show, each drawn from a table of records."""

from __future__ import annotations

import base64
import html
import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..core.trace import CONV_TYPES, KINDS, TraceAnalysis
from .style import KIND_COLORS, column_order, palette, use_style
from .tables import AMP_METRICS, MEMORY_KINDS, amp_table, multishot_table

#: panels an alternative text names one by one; the rest are counted
_ALT_PANELS = 6


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _panel_words(ax) -> str:
    """One panel: its title, what it plots against what, and its series."""
    y, x = _one_line(ax.get_ylabel()), _one_line(ax.get_xlabel())
    what = f"{y} against {x}" if y and x else y or x
    legend = ax.get_legend()
    series = ", ".join(t.get_text() for t in legend.get_texts()) if legend else ""
    title = _one_line(ax.get_title())
    words = "; ".join(w for w in (what, f"series: {series}" if series else "") if w)
    return f"{title}: {words}" if title and words else title or words


def _figure_text(fig, which: str) -> str:
    """The figure's ``suptitle``, ``supxlabel`` or ``supylabel`` ("" where unset, or where this matplotlib has no
    getter for it: the pins allow versions older than the getters)."""
    getter = getattr(fig, f"get_{which}", None)
    return _one_line(getter()) if getter else ""


def figure_alt(fig) -> str:
    """A figure in words for its alternative text, read off the figure itself: the title, then each panel's
    title, axes and series (a panel per layer is summarised after the first few)."""
    panels = [ax for ax in fig.axes if ax.get_visible() and (ax.has_data() or ax.get_title())]
    title, y, x = (_figure_text(fig, which) for which in ("suptitle", "supylabel", "supxlabel"))
    if not title and len(panels) == 1:
        title, panels = _panel_words(panels[0]), []
    words = [title or "A figure"]
    if panels:
        words.append(f"{len(panels)} panels" + (f", each {y} against {x}" if y and x else ""))
        words += [f"panel {i}, {_panel_words(ax)}" for i, ax in enumerate(panels[:_ALT_PANELS], 1)]
    if len(panels) > _ALT_PANELS:
        rest = [_one_line(ax.get_title()) for ax in panels[_ALT_PANELS:]]
        words.append(f"and {len(rest)} more panels like them" + (f": {', '.join(rest)}" if all(rest) else ""))
    shared = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    if shared:
        words.append(f"series in every panel: {', '.join(shared)}")
    return ". ".join(words) + "."


class FigureHTML:
    """A rendered figure as an ``<img>`` with its alternative text (``_repr_html_`` for notebooks)."""

    def __init__(self, png: bytes, alt: str) -> None:
        self.png, self.alt = png, alt

    def __repr__(self) -> str:  # what a viewer without HTML shows
        return f"[figure: {self.alt}]"

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return f'<img alt="{html.escape(self.alt)}" src="data:image/png;base64,{data}">'


def show_figure(fig, alt: str | None = None) -> FigureHTML:
    """``fig`` as a PNG ``<img>`` carrying an alternative text (``alt``, else :func:`figure_alt`), and closed,
    so that the notebook's inline backend does not show it a second time. Notebooks end a cell with it: a
    plain figure output would reach the rendered page with no description for screen readers."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    text = alt if alt is not None else figure_alt(fig)
    plt.close(fig)
    return FigureHTML(buffer.getvalue(), text)


def plot_against_compression(table: pd.DataFrame, setup: str = "CIFAR-10 / ResNet20"):
    """Top-1, inference time and FLOPs against compression, a line per pruner, in one figure: the mean over
    seeds with a bar of one standard deviation either side (seaborn's estimate)."""
    use_style()
    rows = table[table["setup"] == setup]
    panels = [("top1", "test top-1 accuracy (%)"), ("inference_s", "inference over the test set (s)"),
              ("flops", "FLOPs of the pruned model")]
    order = column_order(rows["label"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (metric, label) in zip(axes, panels):
        sns.lineplot(data=rows, x="compression", y=metric, hue="label", hue_order=order, palette=palette(order),
                     errorbar="sd", err_style="bars", marker="o", ax=ax, legend=ax is axes[0])
        ax.set_xlabel("compression (kept fraction 10^-c)")
        ax.set_ylabel(label)
        ax.set_xticks(sorted(set(rows["compression"])))
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(6, 6))
    axes[0].legend(fontsize=8, title=None)
    seeds = rows.groupby(["label", "compression"]).size()
    n = f"n={seeds.min()}" if seeds.min() == seeds.max() else f"n={seeds.min()} to {seeds.max()}"
    data = "; ".join(sorted(set(rows["data"]))) if "data" in rows else ""
    fig.suptitle(f"{setup} ({data}): accuracy, inference time and FLOPs against compression "
                 f"(mean ± sd over seeds, {n})")
    return fig


def plot_weight_histograms(weights_by_label: dict[str, dict[str, np.ndarray]], title: str, bins: int = 40):
    """A panel per layer; each pruner's kept weights as a step histogram in that panel."""
    use_style()
    layers = list(next(iter(weights_by_label.values())))
    cols = 6
    rows = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        for label, weights in weights_by_label.items():
            values = weights.get(layer, np.zeros(0))
            if values.size:
                ax.hist(values, bins=bins, histtype="step", label=label, color=palette([label])[label])
        ax.set_title(f"{layer.removesuffix('.weight')}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(False)
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(weights_by_label) > 1:
        fig.legend(handles, labels, loc="lower right", fontsize=8)
    fig.supxlabel("weight value")
    fig.supylabel("count of kept weights")
    fig.suptitle(title)
    return fig


def plot_density_and_flops(layers: pd.DataFrame, compression: float):
    """Per-layer density and kept FLOPs, a line per pruner, layers in network order."""
    use_style()
    order = list(dict.fromkeys(layers["layer"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 6.5), sharex=True)
    colours = palette(layers["label"])
    for label in column_order(layers["label"]):
        part = layers[layers["label"] == label].set_index("layer").reindex(order)
        top.plot(range(len(order)), part["density"], marker="o", label=label, color=colours[label])
        bottom.plot(range(len(order)), part["kept_flops"], marker="o", label=label, color=colours[label])
    dense = layers.drop_duplicates("layer").set_index("layer").reindex(order)["flops"]
    bottom.bar(range(len(order)), dense, color="#ddd", label="dense", zorder=0)
    top.axhline(10 ** -compression, color="k", lw=0.8, ls="--", label=f"overall target {10 ** -compression:.3f}")
    top.set_ylabel("density (kept fraction)")
    bottom.set_ylabel("FLOPs per layer")
    bottom.set_xlabel("layer")
    bottom.set_yscale("log")
    bottom.set_xticks(range(len(order)), order, rotation=70, fontsize=7)
    top.legend(fontsize=8, ncol=4)
    fig.suptitle(f"Per-layer density and FLOPs at compression {compression}")
    return fig


def plot_amp(table: pd.DataFrame, timing: pd.DataFrame):
    """Peak memory, training time and top-1 per compression, fp32 and mixed precision side by side.

    Memory and top-1 are those of the two runs (``table``); training time is the interleaved measurement
    (``timing``: :func:`~prunelab.workbook.measurement_tables.amp_timing_frame`), its bar the median pass and its
    whisker half the range of the passes, as Table J prints it. The two runs' own epoch times are not drawn:
    they were taken minutes apart on a machine whose speed drifts.
    """
    use_style()
    frame = amp_table(table)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = np.arange(len(frame.index))
    amp_name = next((p for _, p in frame.columns if p != "fp32"), "AMP")
    times = timing.reindex(frame.index)
    for ax, (metric, name) in zip(axes, AMP_METRICS.items()):
        precisions = [p for m, p in frame.columns if m == name]
        width = 0.8 / max(len(precisions), 1)
        for i, precision in enumerate(precisions):
            offset = x + (i - (len(precisions) - 1) / 2) * width
            color = "#1f77b4" if precision == "fp32" else "#ff7f0e"
            if metric == "train_s":
                key = "fp32" if precision == "fp32" else "amp"
                ax.bar(offset, times[f"{key}_train_s"], width, yerr=times[f"{key}_train_spread_s"] / 2, capsize=3,
                       label=precision, color=color)
            else:
                ax.bar(offset, frame[(name, precision)], width, label=precision, color=color)
        ax.set_xticks(x, [f"{c:g}" for c in frame.index])
        ax.set_xlabel("compression (kept fraction 10^-c)")
        ax.set_ylabel(name)
    if len(timing):
        first = timing.iloc[0]
        axes[1].set_ylabel(f"training time of {int(first['batches'])} batch(es) of {int(first['batch_size'])} (s)")
        axes[1].set_title(f"fp32 and {amp_name} in turn: median ± half range", fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper")
    kind = ", ".join(MEMORY_KINDS.get(k, k) for k in sorted(set(table["peak_memory_kind"])))
    fig.suptitle(f"Mixed precision against fp32 (peak memory: {kind})")
    return fig


def plot_multishot(table: pd.DataFrame):
    """Top-1 against weights remaining (log scale, fewest on the right), a line per pruner and cycle count."""
    use_style()
    pivot = multishot_table(table)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for column in pivot.columns:
        series = pivot[column].dropna()
        ax.plot(series.index, series.values, marker="o", label=column,
                linestyle="-" if column.endswith(" 1 cycle") else "--")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set(xlabel="fraction of prunable weights remaining", ylabel="test top-1 (%)",
           title="Multishot: accuracy against weights remaining")
    ax.legend(fontsize=8)
    return fig



def plot_timeline(analysis: TraceAnalysis, title: str = "One inference step", ax=None):
    """chrome://tracing in miniature: host module ranges, host ops, and one row per GPU stream."""
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 2.6 + 0.35 * len({u.row for u in analysis.units})))
    t0 = analysis.step_start if analysis.device == "cpu" else min(u.start for u in analysis.units)
    rows = ["host modules"] + sorted({u.row for u in analysis.units}, key=lambda r: (r != "host ops", r))
    leaf = [r for r in analysis.host_ranges if not any(o is not r and r[2] <= o[2] and o[3] <= r[3]
                                                        for o in analysis.host_ranges)]
    for _name, mtype, start, end in leaf:
        kind = "convolution" if mtype in CONV_TYPES else "batchnorm" if "BatchNorm" in mtype else "other"
        ax.barh(0, (end - start) / 1e3, left=(start - t0) / 1e3, color=KIND_COLORS[kind], height=0.6,
                edgecolor="white", linewidth=0.3)
    for u in analysis.units:
        ax.barh(rows.index(u.row), (u.end - u.start) / 1e3, left=(u.start - t0) / 1e3, height=0.6,
                color=KIND_COLORS[u.kind], edgecolor="white", linewidth=0.3)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("time since the step started (ms)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=KIND_COLORS[k]) for k in KINDS]
    ax.legend(handles, KINDS, ncol=len(KINDS), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    ax.set_title(title)
    return ax.figure


def plot_sparse_inference(sparse: pd.DataFrame):
    """Test-set inference time against the kept fraction of weights, a panel per setup: dense kernels,
    the sparse kernels chosen per layer, and the FLOP-proportional ideal (dense time x kept FLOPs), each the
    median over pruners at a compression; the crossover, where sparse kernels start to pay, is marked."""
    use_style()
    setups = list(dict.fromkeys(sparse["setup"]))
    fig, axes = plt.subplots(1, len(setups), figsize=(6.2 * len(setups), 3.8), squeeze=False)
    for ax, setup in zip(axes.flat, setups):
        rows = sparse[sparse["setup"] == setup].assign(ideal=lambda f: f["dense_inference_s"] * f["flop_density"])
        per = rows.groupby("compression")[["kept", "dense_inference_s", "sparse_inference_s", "ideal",
                                           "speedup"]].median().sort_values("kept")
        ax.plot(per["kept"], per["dense_inference_s"], "o-", color="#1f77b4", label="dense kernels")
        ax.plot(per["kept"], per["sparse_inference_s"], "s-", color="#d62728",
                label="sparse kernels (chosen per layer)")
        ax.plot(per["kept"], per["ideal"], "--", color="#7f7f7f", label="FLOP-proportional ideal")
        ax.scatter(rows["kept"], rows["sparse_inference_s"], s=10, color="#d62728", alpha=0.35)
        paying = per[per["speedup"] >= 1.05]
        if len(paying):
            cross = paying["kept"].max()
            ax.axvline(cross, color="k", lw=0.8, ls=":")
            ax.annotate(f"sparse pays at ≤ {cross:.3g} kept", (cross, ax.get_ylim()[1]), fontsize=8, ha="right",
                        va="top")
        else:
            ax.text(0.02, 0.02, "no crossover: dense is as fast at every kept fraction here", transform=ax.transAxes,
                    fontsize=8)
        ax.set_xscale("log")
        ax.invert_xaxis()
        data = "; ".join(sorted(set(rows["data"]))) if "data" in rows else ""
        ax.set(xlabel="fraction of prunable weights kept", ylabel="inference over the test set (s)",
               title=f"{setup}\n({data})" if data else setup)
        ax.legend(fontsize=7)
    fig.suptitle("Inference time against kept fraction: dense kernels, sparse kernels, and the ideal")
    return fig
