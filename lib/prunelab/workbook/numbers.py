"""How the workbook shows a number a reader may quote, and when it may call two numbers different.

Accuracies are means over seeds with their standard deviation and count ("97.1 ± 0.3 (n=3)"). Times are
medians of repeated passes with half their range ("0.612 ± 0.008 s"). Two accuracies differ only when
Welch's t-test says so at :data:`ALPHA`, its p-values Holm-adjusted over the comparisons a finding makes at
once (:func:`holm`); two times differ only where a rank test of their repeats tells them apart
(:func:`prunelab.core.timing.timings_differ`).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from ..core.choices import no_better_than_chance

#: the significance level of every "better than" in the findings
ALPHA = 0.05
#: what a cell shows for a spread that one value cannot have
NO_SPREAD = "–"
#: a difference of top-1 counted large, in points: an ablation's not told apart from this on is unresolved rather
#: than a tie (:attr:`.ablations.AblationVerdict.low_power`), and a pruned run this far or further below the
#: unpruned network's top-1 is not near it (:class:`.sparse_speed.GainsByTop1`): one threshold, so that the report
#: calls the same loss large wherever it counts one
LARGE_POINTS = 5.0


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, without an exponent for everyday sizes (0.000612, 1110)."""
    if value is None or not math.isfinite(value):
        return NO_SPREAD
    if value == 0:
        return "0"
    return _rounded(value, _places(value, digits))


#: the magnitudes :func:`scaled` writes in plain digits, from 0.001 up to below 10,000
PLAIN_DIGITS = (1e-3, 1e4)
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def scaled(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits as :func:`significant` gives it where that is short (within
    :data:`PLAIN_DIGITS`: "0.0471", "2,140"), else times a power of ten ("1.77×10⁻⁶", "3.13×10²²"): a pruner's
    scores span powers of ten that plain digits would write as a row of zeros."""
    if value is None or not math.isfinite(value) or value == 0:
        return significant(value, digits)
    mantissa, power = f"{value:.{digits - 1}e}".split("e")  # rounded first: 9,999.6 is 1.00×10⁴
    if PLAIN_DIGITS[0] <= abs(float(f"{mantissa}e{power}")) < PLAIN_DIGITS[1]:
        return significant(value, digits)
    return f"{mantissa}×10{str(int(power)).translate(_SUPERSCRIPT)}"


def ratio_text(value: float) -> str:
    """A ratio as the tables and the findings both print it, to 3 significant digits ("9.00x", "10.1x", "0.901x"):
    one function, so that a finding quotes a table's cell as the table shows it; "–" for none."""
    return NO_SPREAD if value is None or not math.isfinite(value) else f"{significant(value)}x"


def _places(value: float, digits: int) -> int:
    """The decimal places that leave ``digits`` significant digits of ``value`` (non-zero, finite); negative:
    round to tens, hundreds..."""
    places = digits - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, places)
    if rounded and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(value))):
        places -= 1  # 99.96 rounds up to 100: one place fewer keeps 3 significant digits
    return places


def _rounded(value: float, places: int) -> str:
    return f"{round(value, places):,.{max(0, places)}f}"


def alike(part: float, *wholes: float) -> tuple[str, ...]:
    """``part`` to 3 significant digits and each of ``wholes`` rounded to the same place, so that a part and
    its wholes read as their shares say ("67.7 of 100.1", not "67.7 of 100"); a part of 0 or not finite leaves
    the wholes to 3 significant digits."""
    if part is None or not math.isfinite(part) or part == 0:
        return significant(part), *map(significant, wholes)
    places = _places(part, 3)
    return significant(part), *(_rounded(w, places) if w is not None and math.isfinite(w) else NO_SPREAD
                                for w in wholes)


def seeds_n(counts) -> str:
    """"n=3", or "n=1 to 3" where ``counts`` (runs per pruner and compression, or per pruner) differ: a figure's
    seeds."""
    low, high = int(min(counts)), int(max(counts))
    return f"n={low}" if low == high else f"n={low} to {high}"


def counted(values, noun: str, plural: str | None = None) -> str:
    """"1 epoch", "3 epochs", "1, 30 epochs": one or several counts with the noun in the number they need."""
    values = sorted(set(int(v) for v in ([values] if isinstance(values, int | float) else values)))
    word = noun if values == [1] else plural or f"{noun}s"
    return f"{', '.join(str(v) for v in values)} {word}"


def head_start_words(pre_epochs: dict[str, int], leader: str, others: Sequence[str]) -> str:
    """"after 30 epochs of dense pre-training before pruning, which no other pruner here had": where the pruner
    labelled ``leader`` trained its dense network before pruning (``pre_epochs``: each label's epochs, Mag's) for
    more epochs than any of ``others``: more epochs in all may explain a lead, so a ranking that puts it first says
    so; "" where it had no more."""
    epochs, others = pre_epochs.get(leader, 0), max((pre_epochs.get(label, 0) for label in others), default=0)
    if epochs <= others:
        return ""
    had = "which no other pruner here had" if not others else f"{epochs - others} more than any other pruner here had"
    return f"after {counted(epochs, 'epoch')} of dense pre-training before pruning, {had}"


def share_of(part: int, whole: int, noun: str, plural: str | None = None) -> str:
    """``part`` of ``whole`` things as a reader says it: "2 of 5 runs", "all 5 runs", "both runs", "none of the 5
    runs", and of one or none "the one run" or "no run", never "1 of 1 runs"; a part outside 0 to ``whole`` is a
    caller's mistake (ValueError)."""
    if not 0 <= part <= whole:
        raise ValueError(f"a share of {part} of {whole} is no share")
    many = plural or f"{noun}s"
    if whole <= 1:
        return f"the one {noun}" if part == 1 else f"no {noun}"
    if part == whole:
        return f"both {many}" if whole == 2 else f"all {whole} {many}"
    return f"none of the {whole} {many}" if part == 0 else f"{part} of {whole} {many}"


def steps_text(steps: int, images: int, noun: str = "step") -> str:
    """What one timed pass trains: "1 step of 32 images", "3 training steps of 48 images"."""
    return f"{steps} {noun}{'s' if steps != 1 else ''} of {images} images"


def compression_text(compression: float) -> str:
    """0.25, 0.5, 1 and 2, never 0.250000."""
    return f"{compression:g}"


def listed(names: list[str]) -> str:
    """Names in words: "A", "A and B", "A, B and C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def passing_by_chance(tests: int) -> int | None:
    """About how many of ``tests``, each at p < :data:`ALPHA`, would pass were none of their differences real:
    None where that is under one half (not one to expect). A finding that runs many tests says it, so that a
    few passing are not read as a pattern."""
    return max(1, round(ALPHA * tests)) if ALPHA * tests >= 0.5 else None


#: the name of that rule where a verdict or a finding applies it
AT_CHANCE = "at chance"


def at_chance(rows: pd.DataFrame) -> pd.Series:
    """Per run, whether its top-1 is no better than always answering the most frequent test class (plus
    :data:`~prunelab.core.choices.CONSTANT_PREDICTION_MARGIN` points:
    :func:`~prunelab.core.choices.no_better_than_chance`); False throughout where the rows lack
    that class's share."""
    if "majority_class_top1" not in rows:
        return pd.Series(False, index=rows.index)
    return no_better_than_chance(rows["top1"], rows["majority_class_top1"])


def mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (NaN for one value) and count of the finite ``values``."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    if n == 0:
        return math.nan, math.nan, 0
    return float(np.mean(finite)), float(np.std(finite, ddof=1)) if n > 1 else math.nan, n


def accuracy_cell(values: Sequence[float]) -> str:
    """"97.1 ± 0.3 (n=3)": the mean over seeds to one decimal, its sd and the number of seeds; one seed has no
    spread to show, "9.6 (n=1)"."""
    mean, sd, n = mean_sd(values)
    if n == 0:
        return NO_SPREAD
    return f"{mean:.1f} ± {sd:.1f} (n={n})" if n > 1 else f"{mean:.1f} (n=1)"


def time_cell(median: float, spread: float | None, unit: str = "s") -> str:
    """"0.612 ± 0.008 s": a median of repeats and half the range of those repeats, 3 significant digits; ``unit``
    "" in a table whose heading gives the unit (a unit in every cell only widens the column until it wraps)."""
    half = NO_SPREAD if spread is None or not math.isfinite(spread) else significant(spread / 2, 2)
    return f"{significant(median)} ± {half}{' ' + unit if unit else ''}"


def shape_sizes(shape) -> list[int]:
    """A layer's sizes from a tuple of them or from the text a layer table stores, "(16, 16, 3, 3)"."""
    return [int(s) for s in (re.findall(r"\d+", shape) if isinstance(shape, str) else shape)]


def shape_text(shape) -> str:
    """A layer's shape as a reader reads it, "16×16×3×3" (:func:`shape_sizes`); a Python tuple's commas and spaces
    let a narrow column wrap it and double its row."""
    sizes = [str(s) for s in shape_sizes(shape)]
    return "×".join(sizes) if sizes else NO_SPREAD


@dataclass(frozen=True)
class MeanComparison:
    """Two groups of per-seed values compared by Welch's t-test. ``family``: how many comparisons its p-value
    was Holm-adjusted over (:func:`holm`; 1 as the test gives it)."""

    difference: float  # mean of a minus mean of b
    p_value: float  # NaN when a group has fewer than two values
    n_a: int
    n_b: int
    family: int = 1

    @property
    def testable(self) -> bool:
        return self.n_a >= 2 and self.n_b >= 2 and math.isfinite(self.p_value)

    @property
    def significant(self) -> bool:
        return self.testable and self.p_value < ALPHA


def compare_means(a: Sequence[float], b: Sequence[float]) -> MeanComparison:
    """Welch's t-test (unequal variances) of ``a`` against ``b``. Equal values in both groups give p = 1
    when the means are equal and p = 0 when they are not (the test's statistic is undefined there)."""
    mean_a, sd_a, n_a = mean_sd(a)
    mean_b, sd_b, n_b = mean_sd(b)
    difference = mean_a - mean_b
    if n_a < 2 or n_b < 2:
        return MeanComparison(difference, math.nan, n_a, n_b)
    if sd_a == 0 and sd_b == 0:
        return MeanComparison(difference, 1.0 if difference == 0 else 0.0, n_a, n_b)
    with warnings.catch_warnings():  # near-equal values (a collapsed run's 10.0s) warn of precision loss
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(list(a), list(b), equal_var=False).pvalue)
    return MeanComparison(difference, p, n_a, n_b)


def holm(comparisons: Sequence[MeanComparison]) -> list[MeanComparison]:
    """``comparisons``, one finding's family, with Holm's step-down adjusted p-values (Holm, 1979): the k-th
    smallest of m testable p-values times m - k + 1, never below an earlier one, at most 1. Then the chance
    that any of the family's differences is claimed where there is none stays at :data:`ALPHA`, however many
    pruners or ablations a finding compares at once. Untestable comparisons are left as they are."""
    order = sorted((i for i, c in enumerate(comparisons) if c.testable), key=lambda i: comparisons[i].p_value)
    adjusted, floor = list(comparisons), 0.0
    for rank, i in enumerate(order):
        floor = max(floor, min(1.0, (len(order) - rank) * comparisons[i].p_value))
        adjusted[i] = replace(comparisons[i], p_value=floor, family=len(order))
    return adjusted


def p_cell(p_value: float) -> str:
    """A p-value as a table shows it: three decimals, ``< 0.001`` below that."""
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


def p_words(p_value: float) -> str:
    """A p-value in a sentence: ``p = 0.034`` or ``p < 0.001``."""
    cell = p_cell(p_value)
    return f"p {cell}" if cell.startswith("<") else f"p = {cell}"


@dataclass(frozen=True)
class Span:
    """The smallest and largest of some values (NaN for none), quoted as "a to b"."""

    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Span:
        series = pd.Series(list(values), dtype=float)
        return cls(float(series.min()), float(series.max()))

    def words(self, form: Callable[[float], str]) -> str:
        """"a to b" in ``form``, or one value when both print the same."""
        low, high = form(self.low + 0.0), form(self.high + 0.0)  # + 0.0: no "-0.00"
        return low if low == high else f"{low} to {high}"
