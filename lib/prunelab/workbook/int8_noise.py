"""Which of Table L2's int8 and fp32 times are noise, by Table C's rule (:func:`.sparse_tables.noisy_times`): the
rows the int8 findings and key result leave out of their counts and ranges (:mod:`.int8_findings`), and what Table
L2's caption says of its marks.
"""

from __future__ import annotations

import pandas as pd

from .numbers import counted
from .sparse_tables import NOISY_DENSE, NOISY_MARK, noisy_times

#: each timed side of an int8 table row (:func:`.tables.int8_table`) and the column of how it ran, if any
INT8_TIMES = {"fp32 timing": "fp32 method", "fp32 compiled timing": None, "int8 timing": "int8 method"}


def noisy_int8(int8: pd.DataFrame) -> pd.DataFrame:
    """Per row of the int8 table and timed side (:data:`INT8_TIMES`), whether that time is noise by Table C's rule
    (:func:`.sparse_tables.noisy_times`): pruned weights are zeros still multiplied, in int8 too, so each side,
    run one way, does the same arithmetic at every compression of a set-up, and a time off the median of those of
    its set-up by more than the rule allows is the machine's load, not the model's."""
    medians = {side: pd.Series([t.median for t in int8[side]], index=int8.index) for side in INT8_TIMES}
    setups = int8.index.get_level_values("setup")
    return pd.DataFrame({side: noisy_times(medians[side], [setups, *([int8[way]] if way else [])])
                         for side, way in INT8_TIMES.items()}, index=int8.index)


def noisy_note(int8: pd.DataFrame) -> str:
    """Table L2's note on the times it marks :data:`.sparse_tables.NOISY_MARK` (:func:`noisy_int8`), as a sentence
    after a space; "" where none is."""
    marks = noisy_int8(int8)
    if not marks.any(axis=None):
        return ""
    return (f" {NOISY_MARK} marks a time over {NOISY_DENSE:.0%} above or below the median of its set-up's times on "
            f"that side ({counted(int(marks.sum().sum()), 'time')}, in {counted(int(marks.any(axis=1).sum()), 'row')}"
            "): pruned weights are zeros still multiplied, so each side does the same arithmetic at every "
            "compression, and such a time is taken as noise, as in Table C; the findings leave its row out.")
