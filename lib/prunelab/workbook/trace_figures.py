"""Task 2's timeline of one traced step (:mod:`prunelab.core.trace`), as a figure."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..core.trace import CONV_TYPES, KINDS, TraceAnalysis
from .style import FIGURE_WIDTH_IN, KIND_COLORS, use_style, wrapped_title


def plot_timeline(analysis: TraceAnalysis, title: str = "One inference step", ax=None, until_ms: float | None = None):
    """chrome://tracing in miniature: host module ranges, host ops, and one row per GPU stream, with a legend of the
    kinds of work drawn; ``until_ms`` sets the time axis's end (two steps drawn to one axis compare by width)."""
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, 2.8 + 0.35 * len({u.row for u in analysis.units})))
    t0 = analysis.step_start if analysis.device == "cpu" else min(u.start for u in analysis.units)
    rows = ["host modules"] + sorted({u.row for u in analysis.units}, key=lambda r: (r != "host ops", r))
    leaf = [r for r in analysis.host_ranges if not any(o is not r and r[2] <= o[2] and o[3] <= r[3]
                                                        for o in analysis.host_ranges)]
    drawn = {u.kind for u in analysis.units}
    for _name, mtype, start, end in leaf:
        kind = "convolution" if mtype in CONV_TYPES else "batchnorm" if "BatchNorm" in mtype else "other"
        drawn.add(kind)
        ax.barh(0, (end - start) / 1e3, left=(start - t0) / 1e3, color=KIND_COLORS[kind], height=0.6,
                edgecolor="white", linewidth=0.3)
    for u in analysis.units:
        ax.barh(rows.index(u.row), (u.end - u.start) / 1e3, left=(u.start - t0) / 1e3, height=0.6,
                color=KIND_COLORS[u.kind], edgecolor="white", linewidth=0.3)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("time since the step started (ms)")
    kinds = [k for k in KINDS if k in drawn]  # a legend of only what the step holds
    handles = [plt.Rectangle((0, 0), 1, 1, color=KIND_COLORS[k]) for k in kinds]
    ax.figure.legend(handles, kinds, ncol=4, loc="outside lower center")  # one row of 7 runs off a page-wide figure
    ax.set_title(wrapped_title(ax.figure, title))
    if until_ms is not None:
        ax.set_xlim(0, until_ms * 1.02)  # matplotlib's own margin, at the same end for both
    return ax.figure
