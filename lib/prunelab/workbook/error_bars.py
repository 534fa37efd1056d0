"""The error bars of the workbook's figures, each within what its values can be: a time's bar runs from its fastest
pass to its slowest (a median ± half the range crossed zero where one slow pass made the range wider than twice the
median), and a mean ± sd stops at the bounds of its metric (no accuracy below 0% or above 100%).

Each function returns the bars' lengths below and above their points, a 2 x n array for matplotlib's ``yerr``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: the values a metric can take: a share of the test set lies between 0 and 100%, an operation count is not negative
METRIC_BOUNDS = {"top1": (0.0, 100.0), "flops": (0.0, math.inf)}


def mean_sd_bars(stats: pd.DataFrame, metric: str) -> np.ndarray:
    """Bars of one standard deviation either side of each mean (``stats``: columns ``mean`` and ``std``, a NaN sd,
    one seed's, drawing none), cut at ``metric``'s bounds (:data:`METRIC_BOUNDS`; a metric not named there is
    not cut)."""
    low, high = METRIC_BOUNDS.get(metric, (-math.inf, math.inf))
    mean = stats["mean"].to_numpy(dtype=float)
    sd = stats["std"].fillna(0.0).to_numpy(dtype=float)
    return np.vstack([np.clip(np.minimum(sd, mean - low), 0.0, None), np.clip(np.minimum(sd, high - mean), 0.0, None)])


def pass_bars(timings: pd.DataFrame, prefix: str, scale: float = 1.0) -> np.ndarray:
    """Bars from each timing's fastest pass to its slowest, ``scale`` times the seconds (1e3: ms) (``timings``: a
    row per timing, ``{prefix}_s`` its median and ``{prefix}_samples_s`` its passes, as
    :meth:`prunelab.core.timing.Timing.summary` stores them). A timing without its passes has half its spread
    (``{prefix}_spread_s``) either side, the lower bar cut at zero: no time is negative."""
    below, above = [], []
    for _, row in timings.iterrows():
        median = float(row[f"{prefix}_s"])
        samples = row.get(f"{prefix}_samples_s")
        if isinstance(samples, list | tuple | np.ndarray) and len(samples):
            below.append(median - min(samples))
            above.append(max(samples) - median)
        else:
            half = float(row.get(f"{prefix}_spread_s", math.nan)) / 2
            half = 0.0 if not math.isfinite(half) else half
            below.append(min(half, median))
            above.append(half)
    return scale * np.clip(np.array([below, above], dtype=float).reshape(2, -1), 0.0, None)
