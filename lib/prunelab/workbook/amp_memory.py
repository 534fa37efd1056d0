"""The memory Task 4 compares the two precisions by (Tables J and K, Figure 6, the findings and the key result).

On a GPU each run's own peak of CUDA tensors, the course's column. On a CPU a run's own peak is the resident set of
the process that trained it, which counts all the process held, so the two precisions are compared by the peak
tensor memory of one timed pass of training steps, measured for each in one process (the ``amp-timing`` records,
:func:`prunelab.precision.memory.tensor_peak_mb`). Where neither is there, the runs' figures are shown under a heading
that says they are not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .numbers import Span, steps_text
from .tables import MEMORY_KINDS, own_peak_memory, peak_memory_heading

#: the timed passes' fields of an ``amp-timing`` record (:func:`.measurement_tables.amp_timing_frame`)
TIMED_PEAK_KEYS = ("fp32_train_peak_mb", "amp_train_peak_mb")


@dataclass(frozen=True)
class AmpMemory:
    """``mb``: per compression, MB for ``"amp"`` and ``"fp32"`` (NaN where not there); ``heading``: Table J's heading
    of them; ``source``: ``"runs"`` (each run's own CUDA peak), ``"timed pass"`` (a timed pass's tensor peak) or
    ``"process"`` (the training process's resident set: not compared); ``kind``: what was measured, in words;
    ``timed_pass``: what the timed pass trains ("1 step of 32 images"), "" where the runs' peaks are compared."""

    mb: dict[float, dict[str, float]]
    heading: str
    source: str
    kind: str
    timed_pass: str = ""

    @property
    def compared(self) -> bool:
        return self.source != "process"

    @property
    def subject(self) -> str:
        """What the compared figures are of, as a sentence names them: "peak memory", or "peak tensor memory of a
        timed pass (1 step of 32 images)"."""
        return f"peak tensor memory of a timed pass ({self.timed_pass})" if self.timed_pass else "peak memory"

    def ratio(self, compression: float) -> float:
        """AMP's memory over fp32's at ``compression`` (NaN where either is missing)."""
        pair = self.mb.get(compression, {})
        return pair.get("amp", math.nan) / pair.get("fp32", math.nan)

    @property
    def ratios(self) -> Span:
        """AMP over fp32 across the compressions where both were measured."""
        return Span.of(r for c in self.mb if math.isfinite(r := self.ratio(c)))


def amp_memory(table: pd.DataFrame, timing: pd.DataFrame | None) -> AmpMemory:
    """The :class:`AmpMemory` of Task 4's runs (``table``, a records table) and their timed passes (``timing``:
    :func:`.measurement_tables.amp_timing_frame`, None or empty where not measured)."""
    kinds = set(table["peak_memory_kind"])
    if not own_peak_memory(kinds) and _timed_peaks(timing):
        size = steps_text(int(timing["batches"].iloc[0]), int(timing["batch_size"].iloc[0]))
        mb = {float(c): {"amp": float(r["amp_train_peak_mb"]), "fp32": float(r["fp32_train_peak_mb"])}
              for c, r in timing.iterrows()}
        return AmpMemory(mb, f"Peak tensor memory of {size} (MB)", "timed pass",
                         f"the tensors one timed pass of {size} allocates at its peak", size)
    mb: dict[float, dict[str, float]] = {}
    for _, run in table.iterrows():
        mb.setdefault(float(run["compression"]), {})["amp" if run["amp"] else "fp32"] = float(run["peak_memory_mb"])
    kind = ", ".join(MEMORY_KINDS.get(k, k) for k in sorted(kinds))
    return AmpMemory(mb, peak_memory_heading(kinds), "runs" if own_peak_memory(kinds) else "process", kind)


def _timed_peaks(timing: pd.DataFrame | None) -> bool:
    """Whether every timed pass has its tensor peak (NaN on a device whose memory was not measured)."""
    return (timing is not None and not timing.empty and all(k in timing for k in TIMED_PEAK_KEYS)
            and bool(timing[list(TIMED_PEAK_KEYS)].notna().all().all()))
