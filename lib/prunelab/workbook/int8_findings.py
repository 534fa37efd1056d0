"""Findings on int8 CPU inference against fp32 (Task 4's Tables L and L2): int8's speed-up over fp32 run eagerly and
over fp32 compiled as PT2E compiles its int8 graph, the sizes on disk and the pruned weights. Numbers and verdicts
first, as frozen dataclasses; then words. A time difference counts only where a rank test of passes taken in turn
tells the two apart (:func:`prunelab.core.timing.timings_differ`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..core.timing import BEYOND_NOISE, TOO_FEW, WITHIN_NOISE, Timing, can_differ, timings_differ
from .numbers import Span, compression_text, listed, ratio_text, share_of, significant
from .sparse_tables import NOISY_DENSE
from .tables import FP32_METHODS, INT8_METHODS, int8_sides


@dataclass(frozen=True)
class Int8Speed:
    """int8's speed-up over one fp32 side in ``runs`` runs of a set-up (its span over them), in how many a rank
    test of passes taken in turn tells the two apart (None: too few passes recorded), and of those, in how many int8
    was the slower (``slower``); ``apart``: the span over the runs told apart alone, ``rest``: over the others
    (None where there are none), so that a range quoted beside "N of M runs beyond the noise" is those N runs';
    ``wide``: the runs within the noise whose ratio lies as far past 1 as one told apart (:func:`_as_far`), each
    (compression, ratio, int8's timing, fp32's timing): the words say which passes kept the rank test from telling
    them apart (:func:`wide_words`), else a larger ratio than the ones claimed would read as an error; ``fp32``: the
    fp32 side's name in those words."""

    speedup: Span
    beyond: int | None
    runs: int
    slower: int = 0
    apart: Span | None = None
    rest: Span | None = None
    wide: tuple[tuple[float, float, Timing, Timing], ...] = ()
    fp32: str = "fp32"

    @property
    def every(self) -> bool:
        """Every run's int8 and fp32 times are told apart."""
        return self.runs > 0 and self.beyond == self.runs

    def verdict(self) -> str:
        """The rank test's word on these runs: too few passes, within the noise, or in how many beyond it."""
        if self.beyond is None:
            return TOO_FEW
        if self.beyond == 0:
            return WITHIN_NOISE if self.runs == 1 else "within the noise in every run (no difference claimed)"
        slower = f", int8 the slower in {self.slower} of them" if 0 < self.slower < self.beyond else ""
        return BEYOND_NOISE if self.runs == 1 else f"{share_of(self.beyond, self.runs, 'run')} {BEYOND_NOISE}{slower}"

    def words(self) -> str:
        """"**2.10x** as fast, all 3 runs beyond the noise": the speed-up, in bold where every run differs beyond
        the noise, and the verdict; where every run is told apart as slower, that is said in as many words. Where
        only some runs are told apart, the range is theirs, and the rest's ratios follow as no difference claimed."""
        ratio = self.speedup.words(ratio_text)
        shown = f"**{ratio}**" if self.every else ratio
        if self.every and self.slower == self.runs:
            return f"{shown} as fast: slower in {'every run' if self.runs > 1 else 'the run'}, {BEYOND_NOISE}"
        if self.beyond and not self.every and self.apart is not None:
            rest = (f" (the rest within it, {self.rest.words(ratio_text)}: no difference claimed)"
                    if self.rest is not None else " (in the rest no difference is claimed)")
            return f"{self.apart.words(ratio_text)} as fast, {self.verdict()}{rest}"
        return f"{shown} as fast, {self.verdict()}"


def _timed(part: pd.DataFrame, column: str) -> pd.DataFrame:
    """The int8 table rows whose ``column`` timing was measured (a finite median; NaN where that side was not)."""
    return part[[math.isfinite(t.median) for t in part[column]]]


def int8_speed(part: pd.DataFrame, fp32: str, speedup: str, name: str = "fp32") -> Int8Speed:
    """The :class:`Int8Speed` of int8 over the fp32 side whose timings are column ``fp32`` and ratios column
    ``speedup`` of these int8 table rows (that side called ``name`` in words), counting only the rows where that
    side was timed (finite median)."""
    timed = _timed(part, fp32)
    pairs = list(zip(timed["int8 timing"], timed[fp32]))
    if not all(can_differ(len(i.samples), len(f.samples)) for i, f in pairs):
        return Int8Speed(Span.of(timed[speedup]), None, len(timed), fp32=name)
    apart = [timings_differ(i, f) for i, f in pairs]
    beyond = sum(apart)
    slower = sum(told and i.median > f.median for told, (i, f) in zip(apart, pairs))
    ratios = list(timed[speedup])
    told = [r for r, a in zip(ratios, apart) if a]
    rest = [r for r, a in zip(ratios, apart) if not a]
    compressions = timed.index.get_level_values("compression")
    wide = tuple((float(c), r, i, f) for c, r, a, (i, f) in zip(compressions, ratios, apart, pairs)
                 if not a and _as_far(r, told))
    return Int8Speed(Span.of(ratios), beyond, len(timed), slower, Span.of(told) if told else None,
                     Span.of(rest) if rest else None, wide, name)


def _as_far(ratio: float, told: list[float]) -> bool:
    """Whether ``ratio`` lies at least as far past 1 as some ratio in ``told`` on the same side of 1 (1.16x against
    1.13x told apart, or 0.8x against 0.9x): a run the rank test did not tell apart though its ratio says more."""
    return any(t > 1 and ratio >= t or t < 1 and ratio <= t for t in told)


def wide_words(s: Int8Setup) -> str:
    """A short sentence per run of set-up ``s`` within the noise whose ratio lies as far past 1 as one told apart
    (:attr:`Int8Speed.wide`), from its passes: how many of the faster side's passes (by median) took longer than the
    other side's fastest, and how long the slowest took; "" where there is none. Not the times' medians and half
    ranges: "2.66 ± 15 ms" says no more than that one pass ran far off the others."""
    def ms(seconds: float) -> str:
        return significant(1e3 * seconds)

    sentences = []
    for speed in (s.eager, s.compiled):
        for compression, ratio, int8, fp32 in speed.wide:
            (fast, f), (slow, o) = sorted((("int8", int8), (speed.fp32, fp32)), key=lambda side: side[1].median)
            over = [p for p in f.samples if p > min(o.samples)]
            if not over:
                continue
            fastest = f"the fastest {slow} pass ({ms(min(o.samples))} ms)"
            if len(over) > 1:
                took = (f"{len(over)} of the {len(f.samples)} {fast} passes took longer than {fastest}, the slowest "
                        f"{ms(max(over))} ms")
            else:
                than = (f"every {slow} pass ({ms(min(o.samples))} to {ms(max(o.samples))} ms)"
                        if max(over) > max(o.samples) else fastest)
                took = f"one {fast} pass took {ms(max(over))} ms, longer than {than}"
            sentences.append(f"On {s.setup} at compression {compression_text(compression)} {took}, so the rank test "
                             f"does not tell that run's {ratio_text(ratio)} apart.")
    return " ".join(sentences)


#: Table L2's timed sides: each one's timing column, its name in words, the column of how it ran and that in words
INT8_TIMED = (("fp32 timing", "eager fp32", "fp32 method", FP32_METHODS),
              ("fp32 compiled timing", "compiled fp32", None, {}),
              ("int8 timing", "int8", "int8 method", INT8_METHODS))


def load_spreads(int8: pd.DataFrame) -> list[tuple[str, str, float, float]]:
    """(side, set-up, fastest and slowest median in ms) of each timed side (:data:`INT8_TIMED`, with how it ran
    where a set-up's rows ran it more than one way) whose medians over one set-up's rows differ by more than
    :data:`.sparse_tables.NOISY_DENSE` of the fastest: pruned weights are zeros still multiplied, so a side run one
    way does the same arithmetic at every compression, and such a spread is the machine's load."""
    spreads = []
    for setup, part in int8.groupby(level="setup"):
        for column, name, how, way_words in INT8_TIMED:
            ways = part.groupby(part[how] if how else pd.Series("", index=part.index))
            for way, rows in ways:
                ms = [1e3 * t.median for t in rows[column] if math.isfinite(t.median)]
                if len(ms) > 1 and max(ms) > (1 + NOISY_DENSE) * min(ms):
                    side = f"{name} ({way_words.get(way, way)})" if ways.ngroups > 1 else name
                    spreads.append((side, setup, min(ms), max(ms)))
    return spreads



@dataclass(frozen=True)
class CompilingEffect:
    """Compiled fp32 against eager fp32 in the ``runs`` runs of a set-up where both were timed: (compression,
    compiled fp32's time over eager fp32's) of each run a rank test of the passes tells apart, where compiled was the
    slower (``slower``) and the faster (``faster``). It says how to read int8's two speed-ups: where compiling slows
    fp32, the one over compiled fp32 is the larger; where it speeds fp32 up, part of the one over eager fp32 is
    compiling's."""

    runs: int
    slower: tuple[tuple[float, float], ...] = ()
    faster: tuple[tuple[float, float], ...] = ()


def compiling_effect(part: pd.DataFrame) -> CompilingEffect:
    """The :class:`CompilingEffect` of these int8 table rows (:func:`.tables.int8_table`)."""
    timed = _timed(part, "fp32 compiled timing")
    slower, faster = [], []
    for compression, compiled, eager in zip(timed.index.get_level_values("compression"),
                                            timed["fp32 compiled timing"], timed["fp32 timing"]):
        if can_differ(len(compiled.samples), len(eager.samples)) and timings_differ(compiled, eager):
            (slower if compiled.median > eager.median else faster).append(
                (float(compression), compiled.median / eager.median))
    return CompilingEffect(len(timed), tuple(slower), tuple(faster))


@dataclass(frozen=True)
class Int8Setup:
    """int8 against fp32 test-set inference on the CPU for one set-up's runs: the speed-up over fp32 run eagerly
    (``eager``) and over the same fp32 model compiled as PT2E's graph is (``compiled``: its ``runs`` are those where
    compiled fp32 was timed, on the PT2E path and compiled without error), int8's top-1 change, whether it ran on
    stand-in data, which way each side of the eager ratio ran (int8 compiled by PT2E, fp32 eagerly, say), which that
    ratio holds as well as the formats, and
    what compiling alone did to fp32 (``compiling``); ``uncompiled``: each reason no compiled fp32 was timed
    (:func:`uncompiled_reason`) with the compressions of the runs it covers; ``top1_images``: the top-1 change as a
    count of test images, of ``test_images`` (:func:`top1_words`)."""

    setup: str
    eager: Int8Speed
    compiled: Int8Speed
    top1_change: Span
    stand_in: bool
    sides: str  # what the eager speed-up compares, from the records (:func:`.tables.int8_sides`)
    compiling: CompilingEffect
    uncompiled: tuple[tuple[str, tuple[float, ...]], ...] = ()  # why no compiled fp32, and at which compressions
    top1_images: Span | None = None  # the top-1 change in test images, where every record gives their number
    test_images: Span | None = None  # that number of test images

    @property
    def runs(self) -> int:
        return self.eager.runs


@dataclass(frozen=True)
class Int8Result:
    """The int8 table in figures: per set-up, whether every pruned weight stayed zero, how much smaller int8
    is on disk than dense fp32 (Table L gives the sizes, the words their ratio as :func:`.numbers.ratio_text` prints
    it), and the runs (set-up, compression) whose sparse fp32 file is smaller than int8."""

    setups: tuple[Int8Setup, ...]
    zeros_kept: bool
    smaller_than_dense: Span
    sparse_smaller: tuple[tuple[str, float], ...]


def compiling_words(s: Int8Setup) -> str:
    """A short sentence for each way compiling alone moved fp32's time on set-up ``s`` beyond the noise (slower,
    faster), with what that means for int8's two speed-ups; "" where it moved it in no run. Compiling "made fp32
    slower" only where it did in every run; else in how many and at which compressions. Table L2 gives the two
    times, not their ratio, so the ratio reads as the report's others do (:func:`.numbers.ratio_text`)."""
    e, sentences = s.compiling, []
    for moved, meaning in (("slower", "the speed-up over compiled fp32 is the larger of int8's two, in part fp32's "
                                      "loss to compiling"),
                           ("faster", "part of int8's speed-up over eager fp32 is compiling's, not int8's")):
        if not (at := getattr(e, moved)):
            continue
        ratios = Span.of(r for _, r in at).words(ratio_text)
        if len(at) == e.runs:
            where = "" if e.runs == 1 else " in every run"
            sentences.append(f"On {s.setup} compiling made fp32 {moved}{where}: compiled fp32 took {ratios} eager "
                             f"fp32's time, {BEYOND_NOISE}, so {meaning}.")
        else:
            sentences.append(f"On {s.setup} compiled fp32 was {moved} than eager fp32 in {len(at)} of {e.runs} runs, "
                             f"{BEYOND_NOISE} ({_compressions([c for c, _ in at])}, "
                             f"{listed([ratio_text(r) for _, r in at])} its time); there {meaning}.")
    return " ".join(sentences)


def _compressions(compressions) -> str:
    """"compression 0.5", "compressions 0.5 and 1"."""
    return f"compression{'s' if len(compressions) > 1 else ''} {listed([compression_text(c) for c in compressions])}"


def int8_setups(int8: pd.DataFrame) -> tuple[Int8Setup, ...]:
    """An :class:`Int8Setup` per set-up of the int8 table (:func:`.tables.int8_table`)."""
    return tuple(Int8Setup(setup, int8_speed(part, "fp32 timing", "speedup", "eager fp32"),
                           int8_speed(part, "fp32 compiled timing", "speedup over compiled", "compiled fp32"),
                           Span.of(-part["drop (points)"]), bool(part["stand-in"].all()), int8_sides(part),
                           compiling_effect(part), _uncompiled_runs(part), *_images_changed(part))
                 for setup, part in int8.groupby(level="setup"))


def _images_changed(part: pd.DataFrame) -> tuple[Span | None, Span | None]:
    """The top-1 change of these int8 table rows in test images (int8's right answers less fp32's) and their
    number of test images, each over the rows; None and None where a record does not give that number."""
    if "test images" not in part or part["test images"].isna().any():
        return None, None
    images = part["test images"].astype(float)
    return Span.of((-part["drop (points)"] * images / 100).round()), Span.of(images)


def top1_words(s: Int8Setup) -> str:
    """"top-1 changed by -0.6 to +0.3 points (-2 to +1 of the 360 test images)": int8's top-1 change on set-up
    ``s``, and how many test images that is where the records say how many they had (a fraction of a point of a
    few hundred images is one or two of them)."""
    points = f"top-1 changed by {s.top1_change.words('{:+.1f}'.format)} points"
    if s.top1_images is None or s.test_images is None:
        return points
    return (f"{points} ({s.top1_images.words(lambda n: f'{n:+.0f}' if n else '0')} of the "
            f"{s.test_images.words('{:,.0f}'.format)} test images)")


#: the deprecated torch.ao paths, by the int8 record's ``int8_method``: neither compiles, so no fp32 is compiled
OLD_PATHS = {"eager": "torch.ao's deprecated eager-mode path", "fx": "torch.ao's deprecated FX graph-mode path"}


def uncompiled_reason(row: pd.Series) -> str | None:
    """Why no compiled fp32 was timed beside one row of the int8 table (:func:`.tables.int8_table`), from what its
    record stores: a record older than the compiled side, int8 off the PT2E path (and why PT2E did not run, where
    recorded), or the fp32 model failing to compile; None where it was timed."""
    if math.isfinite(row["fp32 compiled timing"].median):
        return None
    if not row.get("fp32 compiled recorded", True):
        return "its record was made before compiled fp32 was timed"
    if row.get("int8 method") != "pt2e":
        fallback = _text(row.get("int8 fallback"))
        return (f"int8 took {OLD_PATHS.get(row.get('int8 method'), 'the deprecated torch.ao path')}, which compiles "
                "nothing to match" + (f", since PT2E could not run here: {fallback}" if fallback else ""))
    error = _text(row.get("fp32 compiled error"))
    if error:
        return f"the fp32 model failed to compile here: {error}"
    return "the fp32 model was not compiled beside PT2E's int8, and its record " + (
        "is older than the field that says why" if error is None else "does not say why")


def _text(value) -> str | None:
    """A text field of the int8 table, None where a record did not store it (None, or NaN after a concat)."""
    return value if isinstance(value, str) else None


def _uncompiled_runs(part: pd.DataFrame) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """Each :func:`uncompiled_reason` among these int8 table rows, with the compressions of the rows it covers."""
    by_reason: dict[str, list[float]] = {}
    for (_, compression), row in part.iterrows():
        if (reason := uncompiled_reason(row)) is not None:
            by_reason.setdefault(reason, []).append(float(compression))
    return tuple((reason, tuple(compressions)) for reason, compressions in by_reason.items())


def uncompiled_words(s: Int8Setup) -> str:
    """Why no compiled fp32 was timed in ``s``'s runs that lack one: "no compiled fp32 was timed, as …", each reason
    with its compressions where not every run shares it; "" where every run has one."""
    if not s.uncompiled:
        return ""
    if s.compiled.runs == 0 and len(s.uncompiled) == 1:
        return f"no compiled fp32 was timed, as {s.uncompiled[0][0]}"
    return "no compiled fp32 was timed " + "; ".join(
        f"at compression {listed([compression_text(c) for c in compressions])}, as {reason}"
        for reason, compressions in s.uncompiled)


def int8_result(int8: pd.DataFrame) -> Int8Result:
    dense, sparse, q = int8["fp32 dense (KB)"], int8["fp32 sparse (KB)"], int8["int8 (KB)"]
    smaller = tuple((setup, float(c)) for setup, c in int8.index if sparse[(setup, c)] < q[(setup, c)])
    return Int8Result(int8_setups(int8), bool(int8["pruned weights zero in int8"].all()), Span.of(dense / q), smaller)


def _compiled_words(s: Int8Setup, explained: bool) -> str:
    """int8 against compiled fp32 for one set-up with the rank test's verdict, or why it was not timed; what the
    comparison is, only where no set-up before it in the paragraph (``explained``) said so."""
    if s.compiled.runs == 0:
        return f"; what int8 buys with both sides compiled is not measured here: {uncompiled_words(s)}"
    where = "" if s.compiled.runs == s.runs else f" (the {s.compiled.runs} of {s.runs} runs where it was timed)"
    model = "fp32 model compiled" if explained else "fp32 model compiled as PT2E compiles its int8 graph"
    why = "" if explained else ", so that both sides are compiled (the graphs still differ in their quantize steps " \
        "and fusions)"
    return (f"; over the same {model}{where}{why}, {s.compiled.words()}"
            + (f"; {uncompiled_words(s)}" if s.uncompiled else ""))


def _sides_once(setups: tuple[Int8Setup, ...]) -> list[str]:
    """Per set-up, " (what its eager ratio compares)" where no set-up before it said the same, else "": a
    paragraph says each comparison once."""
    said, shown = set(), []
    for s in setups:
        shown.append("" if s.sides in said else f" ({s.sides})")
        said.add(s.sides)
    return shown


def int8_lines(r: Int8Result) -> list[str]:
    compiled = [s.compiled.runs > 0 for s in r.setups]
    per_setup = "; ".join(
        f"{s.setup}: over fp32 run eagerly{sides}, {s.eager.words()}" + _compiled_words(s, any(compiled[:i]))
        + f"; {top1_words(s)}"
        for i, (s, sides) in enumerate(zip(r.setups, _sides_once(r.setups))))
    smaller = [f"{setup} at {c:g}" for setup, c in r.sparse_smaller]
    return [
        f"- int8 post-training quantization against fp32 test-set inference on the CPU (medians of passes "
        f"taken in turn): {per_setup}. "
        + "".join(f"{words} " for s in r.setups if (words := compiling_words(s)))
        + "".join(f"{words} " for s in r.setups if (words := wide_words(s)))
        + ("Every pruned weight stayed exactly zero." if r.zeros_kept
           else "Some pruned weights did NOT stay zero: investigate."),
        f"- On disk int8 is {r.smaller_than_dense.words(ratio_text)} smaller than dense fp32 (one byte per "
        "weight, pruned ones included, whatever the compression); storing only the kept fp32 weights and their "
        "positions shrinks with compression instead, and is smaller than int8 "
        + (f"for {', '.join(smaller)}." if smaller else "in none of these runs.")
        + " Both together (sparse int8) would compound the savings; PyTorch has no CPU kernel that runs unstructured "
        "sparse int8 (its 2:4 semi-structured int8 runs on CUDA only)."]
