"""Notebook 05's figure: each pruner as scored beside its ablations (:mod:`.ablations` gives the table)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .ablations import ABLATIONS, AS_SCORED, single_ablations
from .error_bars import mean_sd_bars
from .figure_axes import fit_tick_labels
from .figures import chance_handle, chance_line
from .style import column_order, panel_grid, panel_title, suptitle, use_style

#: a fill and hatch per column of notebook 05, the pruner as scored then each ablation: greys, as the other
#: figures' blue, green and red are Mag's, SNIP's and GraSP's, and none near Rand's mid grey (#7f7f7f)
ABLATION_FILLS = (("#222222", ""), ("#555555", "//"), ("#cccccc", ".."), ("#ffffff", "xx"))


def plot_ablations(table: pd.DataFrame):
    """Notebook 05: a panel per set-up and compression, two to a row; per pruner, a bar of mean top-1 as scored
    and one per ablation (one standard deviation either side over seeds, cut at 0 and 100%:
    :func:`.error_bars.mean_sd_bars`), and the chance level where records carry it."""
    use_style()
    table = single_ablations(table)
    panels = list(dict.fromkeys(zip(table["setup"], table["compression"])))
    columns = [AS_SCORED, *ABLATIONS.values()]
    fig, axes = panel_grid(len(panels), 3.6, 0.9, layout="constrained")
    for ax, (setup, compression) in zip(axes, panels):
        rows = table[(table["setup"] == setup) & (table["compression"] == compression)]
        pruners = column_order(rows["label"])
        width = 0.8 / len(columns)
        for i, (name, (fill, hatch)) in enumerate(zip(columns, ABLATION_FILLS)):
            stats = rows[rows["ablation"] == name].groupby("label")["top1"].agg(["mean", "std"]).reindex(pruners)
            x = np.arange(len(pruners)) + (i - (len(columns) - 1) / 2) * width
            ax.bar(x, stats["mean"], width, yerr=mean_sd_bars(stats, "top1"), color=fill, hatch=hatch,
                   edgecolor="black", linewidth=0.6, label=name, capsize=2)
        chance_line(ax, rows)
        ax.set_xticks(np.arange(len(pruners)), [label.replace(" (", "\n(") for label in pruners])
        ax.set_ylabel("test top-1 (%)")
        data = rows["data"].iloc[0] if "data" in rows else ""
        ax.set_title(panel_title(f"{setup}, compression {compression:g}", data), fontsize=9)
    handles = axes[0].get_legend_handles_labels()[0] + chance_handle(table)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3))
    suptitle(fig, "Each pruner as scored and under each ablation: mean top-1 ± sd over seeds")
    fit_tick_labels(fig, axes)  # pruners' names that crowd go to a second row
    return fig
