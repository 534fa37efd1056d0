"""Findings on where sparse kernels pay (Task 1's inference times): per set-up, which layers went on sparse kernels,
which runs ran faster beyond the passes' noise, and which ratios are noise (the same model both ways, or a dense
time far off its neighbours'). Numbers and verdicts as frozen dataclasses first, then words. No table prints these
speed-ups (Tables C and C2 give the times), so they read as the report's other ratios do (:func:`.numbers.ratio_text`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..core.timing import ALPHA, TOO_FEW, Timing, can_differ, timings_differ
from .numbers import AT_CHANCE, Span, at_chance, counted, listed, passing_by_chance, ratio_text, significant
from .sparse_tables import (
    NOISY_DENSE,
    NOISY_MARK,
    compression_medians,
    kernels_differ,
    left_out,
    noisy_dense,
    passes_differ,
    same_model,
    sparse_gains,
)
from .speed_top1 import GainsByTop1, gains_by_top1, near_words, unpruned_top1


@dataclass(frozen=True)
class LeftOut:
    """The runs of a set-up whose ratio counts neither way (:func:`.sparse_tables.left_out`): ``same_runs`` whose
    sparse model is the dense one and ``noisy_runs`` others whose dense time is noise, each with their speed-ups
    (None where there are none). ``same_told_apart``: how many same-model runs the rank test still tells apart
    (:func:`.sparse_tables.passes_differ`), a check of the test, as their two times differ by the passes' jitter
    alone."""

    same_runs: int = 0
    same: Span | None = None
    same_told_apart: int = 0
    noisy_runs: int = 0
    noisy: Span | None = None

    @property
    def runs(self) -> int:
        return self.same_runs + self.noisy_runs


@dataclass(frozen=True)
class SparseCount:
    """One set-up's runs as the findings, Figure 1b and the key result count them: ``runs`` in all, of which
    ``left_out`` count neither way and the other ``tested`` had their two times compared (``speedup``: their
    speed-ups on sparse kernels against dense ones, None where none was compared); ``beyond`` of those differ
    (:func:`.sparse_tables.kernels_differ`; their speed-ups and kept fractions ``real_speedup``, ``real_kept``), of
    which ``slower`` ran slower on sparse kernels and ``at_chance`` are at chance (:func:`.numbers.at_chance`);
    ``gains`` count as faster (:func:`.sparse_tables.sparse_gains`; their speed-ups ``working_speedup``); the fewest
    timed passes, and whether the runs used the synthetic stand-in (their accuracy means nothing); ``by_top1``: the
    gains split by top-1 against the unpruned network's (:class:`.speed_top1.GainsByTop1`; None where that is not
    known, where none gains, or on the stand-in)."""

    setup: str
    runs: int
    repeats: int
    left_out: LeftOut
    speedup: Span | None
    beyond: int
    real_speedup: Span | None
    real_kept: Span | None
    slower: int
    at_chance: int
    gains: int
    working_speedup: Span | None
    stand_in: bool = False
    by_top1: GainsByTop1 | None = None

    @property
    def tested(self) -> int:
        """The runs whose two times were compared: all but those left out."""
        return self.runs - self.left_out.runs


@dataclass(frozen=True)
class DenseTimes:
    """A set-up's dense-kernel times over the runs compared (those not left out, as in Tables C and C2: a dense time
    marked as noise is no measure of the machine either), the same work in each run: their range (ms) and whether the
    fastest and slowest differ beyond their passes' noise (``moved``). No run compared: an empty range (NaN) and not
    moved. ``line``: Figure 1b's dense line (:func:`.sparse_tables.compression_medians`), (kept fraction, median dense
    time in ms) from the most kept down."""

    ms: Span
    moved: bool
    line: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class SparseSetup:
    """One set-up's sparse-kernel records: its runs as counted (:class:`SparseCount`); the layers' kernel choices
    (``switched``: kernel and layer count for the layers that left the dense kernel) with the densities of the
    switched layers, of those that stayed dense and of all; dead units removed; its dense-kernel times."""

    count: SparseCount
    switched: tuple[tuple[str, int], ...]
    switched_density: Span
    dense_density: Span
    density: Span
    dead_units: int
    dense: DenseTimes

    @property
    def setup(self) -> str:
        return self.count.setup

    @property
    def switched_layers(self) -> int:
        return sum(n for _, n in self.switched)

    @property
    def density_decided(self) -> bool:
        """Whether every switched layer kept fewer weights than every layer that stayed dense (False where none
        stayed dense: nothing to compare)."""
        return bool(self.switched) and self.switched_density.high < self.dense_density.low


def _span_or_none(values: pd.Series) -> Span | None:
    return Span.of(values) if len(values) else None


def sparse_count(setup: str, rows: pd.DataFrame, unpruned: float | None = None) -> SparseCount:
    """The :class:`SparseCount` of one set-up's rows of the sparse table: the one count of the runs that the
    findings (:func:`sparse_result`) and the key result (:func:`.key_results.speed_key_words`) both give; given the
    unpruned network's mean top-1, its gains split by top-1 (:func:`.speed_top1.gains_by_top1`)."""
    real = rows[kernels_differ(rows)]
    working = rows[sparse_gains(rows)]
    same = same_model(rows)
    noisy = rows[noisy_dense(rows) & ~same]
    compared = rows[~left_out(rows)]
    stand_in = bool(rows["stand_in"].any()) if "stand_in" in rows else False
    return SparseCount(
        setup=setup, runs=len(rows), repeats=int(rows["timing_repeats"].min()),
        left_out=LeftOut(same_runs=int(same.sum()), same=_span_or_none(rows.loc[same, "speedup"]),
                         same_told_apart=int((passes_differ(rows) & same).sum()),
                         noisy_runs=len(noisy), noisy=_span_or_none(noisy["speedup"])),
        speedup=_span_or_none(compared["speedup"]), beyond=len(real), real_speedup=_span_or_none(real["speedup"]),
        real_kept=_span_or_none(real["kept"]), slower=int((real["speedup"] < 1).sum()),
        at_chance=int(at_chance(real).sum()), gains=len(working), working_speedup=_span_or_none(working["speedup"]),
        stand_in=stand_in,
        by_top1=None if unpruned is None or stand_in or working.empty else gains_by_top1(rows, unpruned))


def sparse_counts(sparse: pd.DataFrame, dense: pd.DataFrame | None = None) -> tuple[SparseCount, ...]:
    """A :class:`SparseCount` per set-up of the sparse table (:func:`.sparse_tables.sparse_table`), its gains
    split by top-1 against the unpruned runs in ``dense`` (their records table) where given."""
    unpruned = unpruned_top1(dense)
    return tuple(sparse_count(str(setup), rows, unpruned.get(str(setup)))
                 for setup, rows in sparse.groupby("setup", sort=False))


def sparse_result(sparse: pd.DataFrame, layers: pd.DataFrame,
                  dense: pd.DataFrame | None = None) -> tuple[SparseSetup, ...]:
    """A :class:`SparseSetup` per set-up of the sparse table (:func:`.sparse_tables.sparse_table`), with its layers'
    choices (:func:`.sparse_tables.sparse_layer_frame`) and, given the unpruned runs (``dense``), its gains split by
    top-1 against theirs."""
    setups, unpruned = [], unpruned_top1(dense)
    for setup, rows in sparse.groupby("setup", sort=False):
        part = layers[layers["setup"] == setup]
        switched = part[part["kernel"] != "dense"]
        setups.append(SparseSetup(
            count=sparse_count(str(setup), rows, unpruned.get(str(setup))),
            switched=tuple((str(k), int(n)) for k, n in switched["kernel"].value_counts().items()),
            switched_density=Span.of(switched["density"]),
            dense_density=Span.of(part.loc[part["kernel"] == "dense", "density"]), density=Span.of(part["density"]),
            dead_units=int(rows["dead_units"].sum()), dense=dense_times(rows)))
    return tuple(setups)


def dense_times(rows: pd.DataFrame) -> DenseTimes:
    """The :class:`DenseTimes` of one set-up's rows of the sparse table, over the runs not left out."""
    compared = rows[~left_out(rows)]
    per = compression_medians(rows, ["dense_inference_s"]).iloc[::-1]
    line = tuple((float(kept), float(seconds) * 1e3) for kept, seconds in zip(per["kept"], per["dense_inference_s"]))
    moved = not compared.empty and _dense_moved(compared)
    return DenseTimes(Span.of(compared["dense_inference_s"] * 1e3), moved, line)


def _dense_moved(rows: pd.DataFrame) -> bool:
    """Whether the fastest and the slowest of ``rows``' dense-kernel times differ beyond their passes' noise."""
    fastest, slowest = rows.loc[rows["dense_inference_s"].idxmin()], rows.loc[rows["dense_inference_s"].idxmax()]
    return timings_differ(Timing.from_summary(fastest, "dense_inference"),
                          Timing.from_summary(slowest, "dense_inference"))


def _dense_line(dense: DenseTimes) -> str:
    """A sentence quoting Figure 1b's dense line (:attr:`DenseTimes.line`: every run, those left out of the range
    included) where it has two points or more, else nothing; "outside the range" only where a point is, "they
    differ" only where the quoted values do, with the reason named in the sentence (a set-up's lines may stand between
    it and :data:`DENSE_MOVED`, which gives it at length). No trend is read into them: every compression's dense
    kernels do the same work, so a slope is the timing's."""
    if len(dense.line) < 2:
        return ""
    kept, ms = zip(*dense.line)
    quoted = [significant(m) for m in ms]
    outside = math.isfinite(dense.ms.low) and any(not dense.ms.low <= m <= dense.ms.high for m in ms)
    return (f" Figure 1b's dense line is the median over every run at each kept fraction, the runs left out here "
            f"(the same model both ways, or a dense time marked {NOISY_MARK} as noise) included: {listed(quoted)} ms "
            f"at {listed([f'{k:.3g}' for k in kept])} kept"
            + ("; that is why a point can fall outside the range above" if outside else "")
            + ("; they differ not with compression, since the dense kernels do the same arithmetic at each, but with "
               "something not measured here, such as the machine's load or the order the runs were timed in (see the "
               "paragraph after the set-ups)." if len(set(quoted)) > 1 else
               "; the same at each, as the same work should be."))


#: the sparse kernels (:mod:`prunelab.core.sparse_kernels`) as the findings name them
KERNEL_WORDS = {"compact": "compact, a dense product over the live units only", "csr": "CSR", "csr_t": "CSR transposed",
                "bsr": "block-sparse BSR", "semi24": "2:4 semi-structured", "im2col_csr": "im2col and CSR"}


#: a point of a set-up's findings under its first line, a list of its own (one paragraph each was too long to follow)
SUB = "  - "


def sparse_findings(sparse: pd.DataFrame, layers: pd.DataFrame, dense: pd.DataFrame | None = None) -> str:
    """Markdown findings on sparse kernels (:func:`sparse_result`): how much faster, which layers switched
    and why, and whether a rank test of the passes tells a difference from their noise; given the unpruned runs
    (``dense``), how fast the runs near their top-1 ran, apart from those far below it; a set-up's points after
    the first as a list under it."""
    lines, setups = [], sparse_result(sparse, layers, dense)
    for s in setups:
        lines.append(_speed_line(s.count))
        lines += _left_out_lines(s.count)
        if s.switched:
            kinds = "; ".join(f"{n} to {KERNEL_WORDS.get(k, k)}" for k, n in s.switched)
            why = (" (no layer stayed dense)." if not math.isfinite(s.dense_density.low) else
                   f", against {s.dense_density.words('{:.3g}'.format)} in the layers that stayed dense"
                   + (": a sparse kernel skips the zeros but reads an index per weight and runs far below the dense "
                      "kernels' rate, so it wins only where few weights are left." if s.density_decided else
                      ". The two ranges overlap, so density alone did not decide: a layer's choice also follows "
                      "its shape, and between kernels within the noise margin of each other it is a toss-up."))
            lines.append(f"{SUB}{s.switched_layers} layer choices switched ({kinds}); those layers kept "
                         f"{s.switched_density.words('{:.3g}'.format)} of their weights" + why)
        else:
            lines.append(
                f"{SUB}No layer switched: at these densities ({s.density.words('{:.3g}'.format)} of each layer's "
                "weights kept) every dense kernel was at least as fast as its sparse candidates, which pay only at "
                "much lower density (see `bench/sparse.py`).")
        if s.dead_units:
            lines.append(f"{SUB}{s.dead_units:,} dead units (neurons or channels with no kept weight in or out) were "
                         "removed, which narrows the dense layers themselves; where a run is faster without a "
                         "switched layer, that is where its time went.")
        if s.dense.moved:
            lines.append(f"{SUB}Over {_compared(s.count)} the dense-kernel times range from "
                         f"{s.dense.ms.words(significant)} ms, beyond the passes' noise.{_dense_line(s.dense)}")
    if any(s.dense.moved for s in setups):
        lines += ["", DENSE_MOVED]
    return "\n".join(lines)


#: said once under the set-ups whose dense-kernel times moved beyond the passes' noise
DENSE_MOVED = ("The dense kernels do the same arithmetic in every run of a set-up, so where their times differ beyond "
               "the passes' noise, the differences come from something other than the arithmetic, which is not "
               "measured here (the machine's load, the order the runs were timed in, ...): Table C's cells across a "
               "row, or down a column, compare the moments they were timed at, not pruners or compressions. Compare a "
               "cell of Table C with the same cell of Table C2, timed in turn with it.")


def _by_chance(runs: int) -> str:
    """At most how many of ``runs`` tests at :data:`~prunelab.core.timing.ALPHA` would pass were no run different,
    where that is about one or more (the exact test passes a little less often than ALPHA): each run is its own
    test, and no correction over them is possible with a few passes each."""
    expected = passing_by_chance(runs)
    if expected is None:
        return ""
    return f" (each run tested at p < {ALPHA:g}: were none different, up to about {expected} would pass by chance)"


def _left_out_lines(s: SparseCount) -> list[str]:
    """The runs left out of the count, how many and why, said once: their ratio is noise and counts neither way, as
    the sparse model is the dense one, or (among the others) the dense time is off the others' at its compression
    (:func:`.sparse_tables.noisy_dense`)."""
    out = s.left_out
    if not out.runs:
        return []
    one = out.runs == 1
    line = (f"{SUB}{out.runs} of the {s.runs} runs {'is' if one else 'are'} left out of that count: "
            f"{'its ratio is noise and counts' if one else 'their ratios are noise and count'} neither way.")
    if out.same is not None:
        line += (f" In {counted(out.same_runs, 'run')} no layer went on sparse kernels and no unit was removed, so the "
                 f"sparse model is the dense one and runs the same computation ({out.same.words(ratio_text)}).")
        line += _test_check(out)
    if out.noisy is not None:
        # "other": Table C marks some same-model runs too, counted with those above
        noisy = counted(out.noisy_runs, "run").replace(" run", " other run") if out.same_runs else counted(
            out.noisy_runs, "run")
        line += (f" In {noisy} the dense time lies more than {NOISY_DENSE:.0%} off the "
                 f"set-up's median dense time at that compression, above or below, marked {NOISY_MARK} in Table C "
                 f"({out.noisy.words(ratio_text)}).")
    return [line]


def _test_check(out: LeftOut) -> str:
    """The same-model runs as a check of the rank test, which should tell none of them apart: how many it did."""
    if out.same_runs == 1:
        told = "told its two times apart" if out.same_told_apart else "did not tell its two times apart"
    else:
        told = f"told {out.same_told_apart or 'none'} of them apart{_by_chance(out.same_runs)}"
    return f" As a check of the rank test, which should find nothing there, it {told}."


def _compared(s: SparseCount) -> str:
    """"the 5 runs compared", or "its 5 runs" where none is left out."""
    runs = counted(s.tested, "run")
    return f"the {runs} compared" if s.left_out.runs else f"its {runs}"


def _speed_line(s: SparseCount) -> str:
    """The set-up's speed on sparse kernels over the runs compared (those not left out): quoted (in bold) only for
    the runs whose times differ (:func:`.sparse_tables.kernels_differ`), and said when some of those runs are at
    chance (:func:`.numbers.at_chance`); the count of runs that gain is Figure 1b's
    (:func:`.sparse_tables.sparse_gains`)."""
    timed = f"medians of {s.repeats} passes taken in turn"
    if s.speedup is None:
        return f"- {s.setup}: every run is left out of the comparison ({timed}): no difference is claimed."
    speedup = s.speedup.words(ratio_text)
    if not can_differ(s.repeats, s.repeats):
        return f"- {s.setup}: over {_compared(s)}, {speedup} as fast on sparse kernels ({timed}), {TOO_FEW}."
    if s.real_speedup is None:
        return (f"- {s.setup}: in none of {_compared(s)} do the sparse-kernel and dense-kernel test-set times differ "
                f"beyond the passes' noise ({speedup} as fast, {timed}): no difference is claimed.")
    line = (f"- {s.setup}: in {s.beyond} of {_compared(s)} the sparse-kernel and dense-kernel times differ beyond "
            f"the passes' noise, by a rank test of the passes{_by_chance(s.tested)}: on sparse kernels the test set "
            "ran "
            f"**{s.real_speedup.words(ratio_text)}** as fast (kept fraction "
            f"{s.real_kept.words('{:.3g}'.format)}; {timed})"
            + (f", {s.slower} of them slower than on dense kernels and {s.beyond - s.slower} faster" if s.slower
               else ", none of them slower")
            + ("; in the rest no difference is claimed." if s.beyond < s.tested else "."))
    if s.at_chance and s.stand_in:
        line += (f" {_of_those(s)} {AT_CHANCE}, on the synthetic stand-in: a pipeline "
                 f"check, where accuracy means nothing, so none is left out for it: {s.gains} of the {s.tested} runs "
                 f"{'counts' if s.gains == 1 else 'count'} as faster, as in Figure 1b.")
    elif s.at_chance and s.by_top1 is not None:
        line += (f" {_of_those(s)} {AT_CHANCE}, so part of that speed comes with networks that no longer work; "
                 f"{s.gains} of the {s.tested} runs ran faster while still above chance. {near_words(s.by_top1)}")
    elif s.at_chance and s.working_speedup is not None:
        line += (f" {_of_those(s)} {AT_CHANCE}, so part of that speed comes with networks that no longer work; "
                 f"{s.gains} of the {s.tested} runs ran faster while still above chance: "
                 f"**{s.working_speedup.words(ratio_text)}** as fast.")
    elif s.at_chance:
        line += f" {_of_those(s)} {AT_CHANCE}: there the speed comes with a network that no longer works."
    elif s.by_top1 is not None:
        line += f" {near_words(s.by_top1)}"
    return line


def _of_those(s: SparseCount) -> str:
    """"2 of those 4 runs are", "That run is", "All 3 of those runs are": the subject of a sentence on the runs
    apart from the dense ones in time that are at chance."""
    if s.at_chance == s.beyond:
        return "That run is" if s.beyond == 1 else f"All {s.beyond} of those runs are"
    return f"{s.at_chance} of those {s.beyond} runs {'is' if s.at_chance == 1 else 'are'}"
