"""Findings on what mixed precision and int8 buy in time and memory (Task 4; the traced step of Task 2 is
:mod:`.tracing_findings`, int8 against fp32 :mod:`.int8_findings`). Numbers and verdicts first, as frozen
dataclasses; then words. A time difference counts only where a rank test of passes taken in turn tells the two
apart (:func:`prunelab.core.timing.timings_differ`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..core.timing import BEYOND_NOISE, TOO_FEW, WITHIN_NOISE, Timing, can_differ, timings_differ
from .amp_memory import AmpMemory, amp_memory
from .int8_findings import Int8Result, int8_lines, int8_result
from .numbers import AT_CHANCE, Span, at_chance, listed, ratio_text, steps_text, time_cell
from .tables import amp_ratios

# ------------------------------------------------------------------------------ Task 4: precision


@dataclass(frozen=True)
class AmpTime:
    """Mixed precision against fp32 training time at one compression, over passes taken in turn."""

    compression: float
    amp: Timing
    fp32: Timing

    @property
    def ratio(self) -> float:
        """AMP's time over fp32's."""
        return self.amp.median / self.fp32.median

    @property
    def differ(self) -> bool:
        """A rank test of the passes tells the two precisions apart."""
        return timings_differ(self.amp, self.fp32)

    @property
    def judged(self) -> bool:
        """The passes are enough for the rank test ever to tell the two apart."""
        return can_differ(len(self.amp.samples), len(self.fp32.samples))


@dataclass(frozen=True)
class AmpTimes:
    """The interleaved AMP / fp32 training times of Task 4 (``amp-timing`` records): ``batches`` training
    steps of ``batch_size`` images per pass, the median of (at least) ``repeats`` passes of each precision."""

    dtype: str
    batches: int
    batch_size: int
    repeats: int
    at: tuple[AmpTime, ...]

    @property
    def ratios(self) -> Span:
        return Span.of(t.ratio for t in self.at)

    @property
    def beyond(self) -> int:
        """Compressions where the two precisions' times are told apart."""
        return sum(t.differ for t in self.at)

    @property
    def timed_pass(self) -> str:
        """What one timed pass trains, as Table J's heading says it: "1 step of 32 images"."""
        return steps_text(self.batches, self.batch_size)

    @property
    def way(self) -> str | None:
        """Which way AMP's time went at the compressions where it is told from fp32's: "slower", "faster" or both,
        "where told apart" added where some compressions are not; None where none is. A time ratio (more is slower)
        is quoted beside int8's speed-ups (more is faster), so the words say which way it goes."""
        told = [t.ratio for t in self.at if t.differ]
        if not told:
            return None
        way = ("slower" if min(told) > 1 else "faster" if max(told) < 1 else
               "slower at some compressions, faster at others")
        return way if len(told) == len(self.at) else f"{way} where told apart"


def amp_times(timing: pd.DataFrame) -> AmpTimes:
    """The :class:`AmpTimes` of :func:`.measurement_tables.amp_timing_frame` (a row per compression)."""
    first = timing.iloc[0]
    return AmpTimes(str(first["amp_dtype"]), int(first["batches"]), int(first["batch_size"]),
                    int(timing["fp32_train_repeats"].min()),
                    tuple(AmpTime(float(c), Timing.from_summary(r, "amp_train"), Timing.from_summary(r, "fp32_train"))
                          for c, r in timing.iterrows()))


def amp_time_words(timing: pd.DataFrame) -> str:
    """Mixed precision against fp32 training time per compression (:func:`amp_times`)."""
    return _amp_words(amp_times(timing))


def _amp_words(times: AmpTimes) -> str:
    parts = []
    for t in times.at:
        verdict = (f"**{ratio_text(t.ratio)}** fp32's time ({'faster' if t.ratio < 1 else 'slower'}, {BEYOND_NOISE})"
                   if t.differ else f"{ratio_text(t.ratio)} fp32's time, {WITHIN_NOISE if t.judged else TOO_FEW}")
        parts.append(f"at compression {t.compression:g} {time_cell(t.amp.median, t.amp.spread)} "
                     f"against {time_cell(t.fp32.median, t.fp32.spread)}, {verdict}")
    steps = steps_text(times.batches, times.batch_size, "training step")
    return (f"Mixed precision ({times.dtype}) against fp32 training, {steps} per pass, "
            f"the median of {times.repeats} passes of each taken in turn ± half their range: {'; '.join(parts)}.")


def amp_time_summary(times: AmpTimes) -> str:
    """One clause for the front page: the range of AMP / fp32 time ratios of a timed pass (:attr:`AmpTimes.timed_pass`,
    said: a whole run's training time, which Table J gives too, has other ratios) and at how many compressions the
    two are told apart (the per-compression figures are in the findings)."""
    way = f" ({times.way})" if times.way else ""
    return (f"training time of {times.timed_pass}: AMP took {times.ratios.words(ratio_text)} fp32's time{way}, "
            f"{_beyond_words(times)}")


def _beyond_words(times: AmpTimes) -> str:
    """At how many compressions a rank test of the passes tells the times apart, in words."""
    if not any(t.judged for t in times.at):
        return "too few repeats to tell apart at any compression (no difference claimed)"
    if times.beyond == 0:
        return "within the noise of passes taken in turn at every compression (no difference claimed)"
    where = "every compression" if times.beyond == len(times.at) else \
        f"{times.beyond} of {len(times.at)} compressions"
    return f"{BEYOND_NOISE} of passes taken in turn at {where}"


@dataclass(frozen=True)
class QuantizationResult:
    """Task 4 in figures. AMP against fp32 per compression (``compressions``): peak memory as Table J compares it
    (``memory``), training time of the separate runs and the top-1 change (points); ``timing``: the interleaved
    times, when measured. ``on_cuda``: the runs' own peaks are compared (CUDA tensors).
    ``graphed``: the fp32 runs replayed a CUDA graph of their step; ``fused``: some runs trained in a fused group
    (their peak memory is the group's). ``gain``: mixed precision is faster by
    over 10% (at every compression beyond the noise, when timed in turn). ``starts_mb``: the memory held as
    training began (fp32's, AMP's; on a CPU the process's); ``cpu_bf16``: the CPU's native bf16 flags (off CUDA)."""

    dtype: str
    devices: str
    model: str
    params: int
    compressions: tuple[float, ...]
    memory: AmpMemory
    time: Span
    top1_change: Span
    graphed: bool
    fused: bool
    timing: AmpTimes | None
    gain: bool
    starts_mb: tuple[float, float]
    cpu_bf16: tuple[str, ...]
    int8: Int8Result | None

    @property
    def on_cuda(self) -> bool:
        return self.memory.source == "runs"


def quantization_result(table: pd.DataFrame, int8: pd.DataFrame, timing: pd.DataFrame | None = None
                        ) -> QuantizationResult:
    """The :class:`QuantizationResult` of the AMP records, the int8 table and the interleaved training times
    (``timing``: :func:`.measurement_tables.amp_timing_frame`)."""
    ratios = amp_ratios(table)
    memory = amp_memory(table, timing)
    times = amp_times(timing) if timing is not None and not timing.empty else None
    separate = Span.of(ratios["time AMP / fp32"])
    gain = (times.beyond == len(times.at) and all(t.ratio < 0.9 for t in times.at) if times is not None
            else separate.high < 0.9)
    return QuantizationResult(
        dtype=", ".join(sorted(set(table.loc[table["amp"], "amp_dtype"]))),
        devices=", ".join(sorted(set(table["device_name"].dropna()))),
        model=table["model"].iloc[0], params=int(table["params_total"].iloc[0]),
        compressions=tuple(float(c) for c in ratios.index), memory=memory,
        time=separate, top1_change=Span.of(ratios["top-1 AMP - fp32 (points)"]),
        graphed="train_step" in table and bool(table.loc[~table["amp"], "train_step"].eq("cuda graph").any()),
        fused="train_step" in table and bool(table["train_step"].astype(str).str.startswith("fused").any()),
        timing=times, gain=bool(gain),
        starts_mb=(float(table.loc[~table["amp"], "peak_memory_start_mb"].mean()),
                   float(table.loc[table["amp"], "peak_memory_start_mb"].mean())),
        cpu_bf16=() if memory.source == "runs" else tuple(sorted({f for value in table["cpu_bf16"].dropna()
                                                                   for f in value})),
        int8=None if int8.empty else int8_result(int8))


def quantization_findings(table: pd.DataFrame, int8: pd.DataFrame, timing: pd.DataFrame | None = None) -> str:
    """Markdown discussion of Task 4 (:func:`quantization_result`). A time difference is called one only where
    a rank test of the repeats tells the two apart."""
    r = quantization_result(table, int8, timing)
    memory_words = (f"At compression{'s' if len(r.compressions) > 1 else ''} "
                    f"{', '.join(f'{c:g}' for c in r.compressions)}, against fp32: "
                    + (f"{r.memory.subject} was {r.memory.ratios.words(ratio_text)} fp32's" if r.memory.compared else
                       "peak memory is not compared (on a CPU it is the resident set of the process that trained "
                       "the run, all it already held included: see Table J)")
                    + (" (the fp32 runs replayed a CUDA graph of their training step, which keeps the step's "
                       "activations in memory of its own, and mixed precision took ordinary steps: this ratio "
                       "compares step designs as well as precisions)" if r.graphed else "")
                    + (" (runs trained in a fused group, as the labels say, report their group's peak memory: "
                       "this ratio compares group sizes as well as precisions)" if r.fused and r.on_cuda else "")
                    + "; top-1 moved by "
                    f"{r.top1_change.words('{:+.1f}'.format)} points " + (
                        "(on SYNTHETIC stand-in data, a pipeline check: top-1 means nothing here)."
                        if set(table.get("data_source", ())) == {"synthetic"} else
                        f"(every run, in either precision, is {AT_CHANCE}, so top-1 cannot tell the precisions apart "
                        "here)." if at_chance(table).all() else
                        f"({r.dtype} rounding sends the two trainings down different paths: with one seed per "
                        "cell, a difference in top-1 says little until more seeds repeat it)."))
    if r.timing is not None:
        lines = ["- " + _amp_words(r.timing) + " " + memory_words]
    else:
        lines = [f"- With mixed precision ({r.dtype} on {r.devices}) training took "
                 f"{r.time.words(ratio_text)} the fp32 time. " + memory_words + " Those times are "
                 "totals of separate runs, not timed in turn, so they are not a measured difference."]
        if r.graphed:
            lines[-1] += " The time ratio, too, compares step designs as well as precisions."
    lines.append("- " + (_cuda_words(r) if r.on_cuda else _cpu_words(r)))
    if r.timing is not None and len(r.timing.at) > 1:
        lines.append(f"- Across compressions AMP's time over fp32's runs {r.timing.ratios.words(ratio_text)}. A pruned "
                     "weight is a zero that is still multiplied, so each precision does the same work at every "
                     "compression: pruning changes neither side of the ratio, and what moves it between compressions "
                     "is the timing, not the work.")
    if r.int8 is not None:
        lines += int8_lines(r.int8)
    return "\n".join(lines)


def _cuda_words(r: QuantizationResult) -> str:
    return (("Mixed precision paid off in time, though far less than tensor cores' peak rate suggests: " if r.gain
             else "The time gain is small: ")
            + f"{r.model} has {r.params / 1e6:.2f} M parameters, so each of its layers is a short kernel. Tensor "
            "cores speed up only the convolutions' arithmetic; batchnorm, ReLU, the residual "
            "additions, the casts autocast inserts and the optimizer's updates are memory-bound, and at this "
            "size launch overhead and those layers take much of every step. Peak memory falls "
            "less than half because weights, gradients and Adam's two moments stay fp32, and the data set "
            f"prunelab keeps on the device ({r.starts_mb[0]:,.0f} MB held before training "
            "began, with the model) does not shrink at all; only activations saved for the backward pass do.")


#: why autocast on a CPU takes back what bf16 arithmetic saves, said where mixed precision gained
CASTS = ("Autocast casts every weight and activation to bf16 before each convolution and back where fp32 is needed, "
         "which takes back part of what bf16 arithmetic saves")


#: why mixed precision did not gain on a CPU with bf16 units: said only where it never was faster beyond the noise,
#: or of the compressions where it was slower beyond it
TOO_LITTLE = "with these units the convolutions of so small a network gain too little to pay for that"


def _cpu_time_words(r: QuantizationResult) -> str:
    """What mixed precision's time on a CPU says, by the rank test's verdict at each compression: a gain, a lean,
    a gain told apart at some compressions (each with its ratio, the others unresolved or slower), or, where it was
    never faster beyond the noise, why with these units so small a network gains too little (or, without them,
    nothing). That explanation is given only for the compressions where it was slower, or where it never was faster."""
    if r.gain:
        return ("Mixed precision paid off in time even on a CPU: with these units bf16 convolutions can outrun fp32 "
                "by more than the casts autocast inserts cost (the steps are timed whole, so this shows the sum, not "
                "the split). ")
    times = r.timing
    if times is not None and times.ratios.high < 1:  # everywhere, by under 10% or noise
        return (f"Mixed precision took less time at every compression ({times.ratios.words(ratio_text)} fp32's "
                f"time), {_beyond_words(times)}: " + ("a small gain. " if times.beyond == len(times.at) else
                                                     "a lean, not a measured gain. " if times.beyond == 0 else
                                                     "a gain measured at some compressions only. ") + f"{CASTS}. ")
    too_little = TOO_LITTLE if r.cpu_bf16 else "without them bf16 arithmetic is emulated, so there is nothing to gain"
    faster = [t for t in times.at if t.differ and t.ratio < 1] if times is not None else []
    if not faster:
        return ("Autocast casts every weight and activation to bf16 before each convolution and back where fp32 "
                f"is needed, and {too_little}. ")
    slower = [t for t in times.at if t.differ and t.ratio > 1]
    unresolved = [t for t in times.at if not t.differ]
    text = f"Mixed precision took less time, {BEYOND_NOISE}, at {_at(faster)}"
    if slower:
        text += f"; it took more, {BEYOND_NOISE}, at {_at(slower)}"
    if unresolved:
        noise = "within the noise" if any(t.judged for t in unresolved) else "too few to tell apart"
        text += f"; at {_at(unresolved)} the passes are {noise}, so whether it gained there is unresolved"
    return text + f". {CASTS}" + (f"; where it took more, {too_little}. " if slower else ". ")


def _at(times: list[AmpTime]) -> str:
    """"compression 0.2 (0.688x fp32's time) and 1 (0.617x)": the compressions and AMP's time ratio at each."""
    whose = " fp32's time"  # after the first ratio only
    each = [f"{t.compression:g} ({ratio_text(t.ratio)}{whose if i == 0 else ''})" for i, t in enumerate(times)]
    return f"compression{'s' if len(times) > 1 else ''} {listed(each)}"


def _cpu_words(r: QuantizationResult) -> str:
    units = f"native bf16 units ({', '.join(r.cpu_bf16)})" if r.cpu_bf16 else "no native bf16 units"
    return (f"This CPU has {units}. " + _cpu_time_words(r)
        + "A run's own peak memory on the CPU is the peak resident set of the whole process (the Python runtime, "
        "the PyTorch libraries, the data set held in memory), not of tensors alone, and the runs share that process: "
        f"it held {r.starts_mb[0]:,.0f} MB as the fp32 runs began and {r.starts_mb[1]:,.0f} MB as the "
        "mixed-precision ones did (what earlier runs freed stays with the allocator), so a run's peak shows what the "
        "process had grown to, not what either precision needs. "
        + (_timed_memory_words(r.memory) if r.memory.compared else "Peak memory is not compared here. ")
        + "Run this notebook on a GPU for the memory of CUDA tensors and fp16 with tensor cores.")


def _timed_memory_words(memory: AmpMemory) -> str:
    """Why a timed pass's tensors on a CPU (:class:`.amp_memory.AmpMemory`) hold what they do in either precision."""
    ratios = memory.ratios
    way = "less" if ratios.high < 1 else "more" if ratios.low > 1 else "not less at every compression"
    return (f"Tables J and K compare instead {memory.kind}, measured for each precision in turn in one process: "
            f"mixed precision held {ratios.words(ratio_text)} fp32's, {way}. Those figures are what a pass allocates: "
            "autocast runs the convolutions and linear layers in bf16, so the activations they hand on take half "
            "fp32's bytes, but it adds a bf16 copy of each weight it casts, and the gradients stay fp32. The weights "
            "and the optimizer's state, fp32 in both precisions and held before the pass began, are not in them. ")
