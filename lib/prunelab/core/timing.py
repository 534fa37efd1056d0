"""Times that hold: the median of repeats after a warm-up, with the spread of those repeats beside it.

:func:`repeat_timed` times one thing ``repeats`` times after ``warmup`` untimed calls. :func:`interleaved`
times several things in one process taking turns (A B A B ..., the order rotated by one each repeat so
each goes first as often), so a drift of a shared machine's speed hits all alike. Both report a
:class:`Timing`: the median, the spread (slowest minus fastest repeat), the count and every sample.
Records, pages and ``bench/`` all time through these two, so every reported time is the same statistic,
and all judge two times by :func:`timings_differ`: a rank test of the samples, which one slow repeat
sways by its order among the other's repeats, not by how slow it was.
The caller synchronizes an asynchronous device inside the timed function (see ``core.evaluation.synchronize``).
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
        """``{prefix}_s``, ``{prefix}_spread_s``, ``{prefix}_repeats`` and ``{prefix}_samples_s`` for a record's
        summary (:meth:`from_summary` reads them back)."""
        return {f"{prefix}_s": self.median, f"{prefix}_spread_s": self.spread, f"{prefix}_repeats": self.repeats,
                f"{prefix}_samples_s": list(self.samples)}

    @classmethod
    def from_summary(cls, summary: Mapping, prefix: str) -> Timing:
        """The timing :meth:`summary` wrote under ``prefix`` (a record's summary, or a table row holding the same
        keys); without its samples (a record made before they were stored) it cannot be judged against another."""
        samples = summary.get(f"{prefix}_samples_s")
        if isinstance(samples, str):
            raise TypeError(f"{prefix}_samples_s holds text, not the seconds of each repeat: {samples[:40]!r}")
        samples = () if samples is None or isinstance(samples, float) else tuple(float(s) for s in samples)
        return cls(float(summary[f"{prefix}_s"]), float(summary.get(f"{prefix}_spread_s", math.nan)),
                   int(summary.get(f"{prefix}_repeats", len(samples))), samples)


#: the significance level at which :func:`timings_differ` calls two timings different
ALPHA = 0.05
#: how a page says that two timings differ by :func:`timings_differ`, or that they do not
BEYOND_NOISE = "beyond the noise"
WITHIN_NOISE = "within the noise (no difference claimed)"
#: what a page says where the repeats are too few for the test ever to tell two times apart (:func:`can_differ`)
TOO_FEW = "too few repeats to tell apart (no difference claimed)"
#: the rule in a sentence, for a table's caption or a method section
TIMING_RULE = (f"two times are told apart only where a rank test of their repeats (two-sided Mann-Whitney, exact) "
              f"gives p < {ALPHA:g}")


def can_differ(n: int, m: int) -> bool:
    """Whether ``n`` and ``m`` repeats are enough for :func:`timings_differ` ever to tell two times apart: the
    most extreme order of the repeats has p = 2 / C(n + m, n), so 3 and 3 (0.10) never can, 4 and 4 (0.029) can."""
    return min(n, m) >= 1 and 2 / math.comb(n + m, n) < ALPHA


def timings_differ(a: Timing, b: Timing) -> bool:
    """Whether ``a`` and ``b`` differ: an exact two-sided Mann-Whitney rank test of their samples at :data:`ALPHA`.

    A rank test, not the ranges: one slow repeat widens a range until it hides a clear difference, while here
    it counts only by how many of the other's repeats it is slower than, not by how far. With 5 repeats each, a
    difference is claimed when at most 2 of the 25 pairs are out of order (p = 0.032; 3 give 0.056). Timings
    with too few samples for the test to reach :data:`ALPHA` (:func:`can_differ`) are never told apart.
    """
    if not can_differ(len(a.samples), len(b.samples)):
        return False
    from scipy.stats import mannwhitneyu  # scipy loads in a second: only where two times are judged

    return bool(mannwhitneyu(a.samples, b.samples, alternative="two-sided", method="exact").pvalue < ALPHA)


def noise_words(a: Timing, b: Timing) -> str:
    """Whether ``a`` and ``b`` differ (:func:`timings_differ`), in words for a ratio."""
    if not can_differ(len(a.samples), len(b.samples)):
        return TOO_FEW
    return BEYOND_NOISE if timings_differ(a, b) else WITHIN_NOISE


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
