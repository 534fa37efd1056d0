"""Times that hold: the median of repeats after a warm-up, with the spread of those repeats beside it.

:func:`repeat_timed` times one thing ``repeats`` times after ``warmup`` untimed calls. :func:`interleaved`
times several things in one process taking turns (A B A B ..., the order rotated by one each repeat so
each goes first as often), so a drift of a shared machine's speed hits all alike. Both report a
:class:`Timing`: the median, the spread (slowest minus fastest repeat), the count and every sample.
Records, pages and ``bench/`` all time through these two, so every reported time is the same statistic.
The caller synchronises an asynchronous device inside the timed function (see ``core.evaluation.synchronize``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: the fewest repeats a reported time is the median of
MIN_REPEATS = 5


@dataclass(frozen=True)
class Timing:
    """The median seconds of ``repeats`` timed calls, their spread (slowest minus fastest; NaN for one
    call) and the samples in the order they were taken."""

    median: float
    spread: float
    repeats: int
    samples: tuple[float, ...] = ()

    @classmethod
    def of(cls, samples) -> Timing:
        samples = tuple(float(s) for s in samples)
        if not samples:
            return cls(math.nan, math.nan, 0, ())
        spread = max(samples) - min(samples) if len(samples) > 1 else math.nan
        return cls(statistics.median(samples), spread, len(samples), samples)

    def summary(self, prefix: str) -> dict:
        """``{prefix}_s``, ``{prefix}_spread_s`` and ``{prefix}_repeats`` for a record's summary."""
        return {f"{prefix}_s": self.median, f"{prefix}_spread_s": self.spread, f"{prefix}_repeats": self.repeats}


def times_differ(median_a: float, spread_a: float, median_b: float, spread_b: float) -> bool:
    """A timing difference is real only when it exceeds the larger of the two spreads (ranges of repeats)."""
    return abs(median_a - median_b) > max(spread_a, spread_b)


def spread_words(a: Timing, b: Timing) -> str:
    """Whether ``a`` and ``b`` differ beyond their spreads (:func:`times_differ`), in words for a ratio."""
    if min(a.repeats, b.repeats) < 2:
        return "a single repeat: no spread to judge by"
    return "beyond the spread" if times_differ(a.median, a.spread, b.median, b.spread) else "within the spread"


#: how much less time a faster design (a sparse kernel, a fused step) must take to be chosen (:func:`faster_by`):
#: a difference within a shared machine's noise keeps the plain one
MARGIN = 0.05


def faster_by(candidate_s: float, baseline_s: float, margin: float) -> bool:
    """Whether ``candidate_s`` takes at most ``1 - margin`` of ``baseline_s``: the rule by which a faster design
    (a sparse kernel, a fused step) is chosen only where it wins by more than a shared machine's noise."""
    return candidate_s <= (1 - margin) * baseline_s


def _seconds(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def repeat_timed(fn: Callable[[], object], repeats: int = MIN_REPEATS, warmup: int = 1,
                 clock: Callable[[], float] = time.perf_counter) -> Timing:
    """``fn`` called ``warmup`` times untimed, then timed ``repeats`` times by ``clock`` (as :func:`interleaved`)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    return Timing.of(_seconds(fn, clock) for _ in range(repeats))


def interleaved(fns: Mapping[str, Callable[[], object]], repeats: int = MIN_REPEATS, warmup: int = 1,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """Each function of ``fns`` timed ``repeats`` times, taking turns in one process.

    Every function is called ``warmup`` times first (in turn, untimed). Repeat ``r`` then calls them in
    their given order rotated by ``r``: with two, A B, B A, A B, ...; each reports its median and spread.
    ``clock`` reads seconds: wall time by default; ``time.process_time`` leaves out the slices a shared
    CPU gives other processes, a steadier reading where all the work runs in this process's threads.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if not fns:
        raise ValueError("interleaved needs at least one function")
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_seconds(fns[name], clock))
    return {name: Timing.of(samples[name]) for name in names}
