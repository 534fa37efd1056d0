"""Timings for hand-made tables: the passes a record stores, made from the median and range a test states.

The workbook judges two times by a rank test of their passes (:func:`prunelab.core.timing.timings_differ`),
so a test table needs passes, not only a median and a range; these spread five evenly over the range.
"""

from __future__ import annotations

import pandas as pd

from prunelab.core.timing import Timing

#: five passes evenly over a range, as fractions of it either side of the median
PASSES = (-0.5, -0.25, 0.0, 0.25, 0.5)


def passes(median: float, spread: float) -> list[float]:
    """Five passes whose median is ``median`` and whose range is ``spread``."""
    return [median + spread * f for f in PASSES]


def timing_of(median: float, spread: float) -> Timing:
    return Timing.of(passes(median, spread))


def timed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the passes of each timing it states (``{prefix}_s`` and ``_spread_s``) in ``_samples_s``."""
    prefixes = [c[:-2] for c in frame.columns if c.endswith("_s") and f"{c[:-2]}_spread_s" in frame.columns]
    return frame.assign(**{f"{p}_samples_s": [passes(m, s) for m, s in zip(frame[f"{p}_s"], frame[f"{p}_spread_s"])]
                           for p in prefixes})
