"""Findings on the traced inference step (Task 2): where one step's time goes, and whether folding the masks
into the weights is measurably faster than the original design. Numbers and verdicts first, as frozen
dataclasses; then words. A time difference counts only where a rank test of the steps taken in turn tells
the two designs apart (:func:`prunelab.core.timing.timings_differ`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ..core.timing import TIMING_RULE, Timing, timings_differ
from .numbers import alike, listed, ratio_text, significant, time_cell
from .trace_kernels import CONV_FIX, conv_fix_words

if TYPE_CHECKING:
    from ..core.trace import TraceAnalysis

#: a convolution layer whose time per multiply-add is this many times the median layer's stands out
COST_OUTLIER = 2.0
#: what would cut each kind of work (:data:`prunelab.core.trace.KINDS`) that can be a traced step's main time sink:
#: proposals, none of them measured by the trace (the words say "would")
SINK_FIXES = {
    "convolution": CONV_FIX,
    "batchnorm": "folding each batch norm into the convolution before it, for inference",
    "activation and add": "fewer, fused ops (torch.compile fuses the elementwise ones into their neighbours)",
    "mask multiply": "folding the masks into the weights once, after pruning, as prunelab does",
    "linear": "less work in the linear layers (pruning whole units keeps them dense and narrower)",
    "memory copies": "keeping tensors in one layout and on one device, so that no op copies them",
    "other": "fewer, fused ops (torch.compile, or CUDA graphs on a GPU)",
}


@dataclass(frozen=True)
class TraceSummary:
    """Where one traced inference step's time went (a record's ``trace`` summary): its span and busy time,
    the convolutions' time and share of the busy time, and the kind of work that took most."""

    device: str
    span_ms: float
    busy_ms: float
    conv_layers: int
    conv_ms: float
    conv_share: float
    main_sink: str | None

    @property
    def unit(self) -> str:
        """What the trace counts: kernels on CUDA, top-level operators on the CPU."""
        return "kernels" if self.device == "cuda" else "top-level ops"


def trace_capture_words(trace: Mapping) -> str:
    """How a record's trace was taken, from its ``trace`` summary: "batch of 256 test images, 5 warm-up steps, then
    3 profiled steps, the one of median length analysed"; a record that does not say how many steps it profiled
    gets nothing said of them."""
    said = f"batch of {trace['batch']} test images, {trace['warmup']} warm-up steps"
    profiled = trace.get("profiled_steps")
    if profiled is None:
        return said
    if profiled == 1:
        return f"{said}, then 1 profiled step, the one analysed"
    return f"{said}, then {profiled} profiled steps, the one of median length analysed"


def trace_summary(trace: dict) -> TraceSummary:
    """The :class:`TraceSummary` of a record's ``summary["trace"]``."""
    return TraceSummary(trace["device"], float(trace["step_span_ms"]), float(trace["step_busy_ms"]),
                        int(trace["conv_layers"]), float(trace["conv_ms"]), float(trace["conv_share"]),
                        trace["main_sink"] if isinstance(trace["main_sink"], str) else None)  # NaN: none recorded


#: the two designs a trace record times in ``summary["design_steps"]``, in Table G's order (its rows')
DESIGNS = ("original", "ours")


def design_steps(summary: Mapping) -> dict[str, Timing] | None:
    """The repeated step times of a record's two designs (:data:`DESIGNS`), from its ``design_steps``; None for
    a record without them."""
    steps = summary.get("design_steps")
    return None if not steps else {key: Timing.from_summary(steps, f"{key}_step") for key in DESIGNS}


@dataclass(frozen=True)
class DesignSpeed:
    """Step times (seconds) of the original design (mask multiplied in every forward) and of masks folded into
    the weights, each over the same steps taken in turn."""

    original: Timing
    folded: Timing

    @property
    def differ(self) -> bool:
        """A rank test of the steps tells the designs apart: one is measurably faster."""
        return timings_differ(self.original, self.folded)

    @property
    def folded_faster(self) -> bool:
        return self.folded.median < self.original.median

    @property
    def against_folded(self) -> float:
        """The original design's median step time over folded's: the ratio Table G gives in the original design's
        row (:func:`.measurement_tables.design_comparison_table`), above 1 where folding is faster."""
        return self.original.median / self.folded.median


def design_speed(summary: Mapping) -> DesignSpeed | None:
    """The :class:`DesignSpeed` of a record's summary (:func:`design_steps`); None for one without repeated steps."""
    steps = design_steps(summary)
    return None if steps is None else DesignSpeed(steps["original"], steps["ours"])


def design_speed_words(summary: Mapping) -> str:
    """Which design is faster (:func:`design_speed`), claimed only where a rank test of the steps says so."""
    return _speed_words(design_speed(summary))


def _speed_words(speed: DesignSpeed | None) -> str:
    if speed is None:
        return ("The analysed step of each design cannot tell which is faster (one step's time is noise); this record "
                "has no repeated steps.")
    original, folded = speed.original, speed.folded
    cells = (f"{time_cell(1e3 * original.median, 1e3 * original.spread, 'ms')} in the original design against "
             f"{time_cell(1e3 * folded.median, 1e3 * folded.spread, 'ms')} folded")
    how = (f"over {min(original.repeats, folded.repeats)} steps of each taken in turn (median ± half the range; "
           f"{TIMING_RULE})")
    if not speed.differ:
        return (f"Step time {how}: {cells}; the {1e3 * abs(original.median - folded.median):.3g} ms gap is within "
                "the noise of the repeats, so neither design is measurably faster on this batch and device.")
    faster = "folded masks" if speed.folded_faster else "the original design"
    return (f"Step time {how}: {cells}; **{faster}** is faster (the original design's step took "
            f"{ratio_text(speed.against_folded)} folded's time), beyond the noise of the repeats.")


@dataclass(frozen=True)
class TraceResult:
    """Task 2: the analysed step, the original design's units and mask-multiply share against the traced
    (folded) step's units, whether both designs gave identical outputs, and their repeated step times."""

    summary: TraceSummary
    original_units: int
    folded_units: int
    mask_share: float
    outputs_equal: bool
    speed: DesignSpeed | None
    original_busy_ms: float
    original_span_ms: float = math.nan

    @property
    def mask_ms(self) -> float:
        """The original design's analysed step's time in mask multiplies."""
        return self.mask_share * self.original_busy_ms

    def traced_steps(self) -> tuple[TracedStep, ...]:
        """Each design's analysed step against its untraced steps in Table G (none without repeated steps). On the
        CPU a traced step's span is its wall time, as the untraced steps' is; on a GPU it is its kernels' span,
        which leaves out the host's time before the first kernel, so there only a span above every untraced step
        counts as outside them."""
        if self.speed is None:
            return ()
        cpu = self.summary.device != "cuda"
        pairs = (("original", self.original_span_ms, self.speed.original),
                 ("folded", self.summary.span_ms, self.speed.folded))
        return tuple(TracedStep(name, ms, timing, cpu) for name, ms, timing in pairs
                     if timing.samples and math.isfinite(ms))

    @property
    def load_differs(self) -> bool:
        """Whether a design's traced step fell outside its untraced steps (:meth:`traced_steps`): the trace was
        taken under another load than Table G's steps, so its single steps' times and shares do not stand for
        theirs."""
        return any(step.side for step in self.traced_steps())


@dataclass(frozen=True)
class TracedStep:
    """One design's analysed (traced) step's span (ms) against its untraced steps in Table G (``timed``);
    ``below_counts``: whether a span below every untraced step means anything (on the CPU, not on a GPU)."""

    design: str
    traced_ms: float
    timed: Timing
    below_counts: bool = True

    @property
    def side(self) -> int:
        """-1: faster than the fastest untraced step (the profiler only adds time, so the machine was less loaded
        while it traced); 1: slower than the slowest (busier, or the profiler's recording); 0: among them."""
        if self.traced_ms > 1e3 * max(self.timed.samples):
            return 1
        return -1 if self.below_counts and self.traced_ms < 1e3 * min(self.timed.samples) else 0


def trace_result(summary: Mapping, designs: pd.DataFrame) -> TraceResult:
    """The :class:`TraceResult` of a trace record's summary (its ``trace`` and ``design_steps``) and its traced
    design table (``trace_designs.csv``: original first, folded second)."""
    trace = summary["trace"]
    original, ours = designs.iloc[0], designs.iloc[1]
    return TraceResult(trace_summary(trace), int(original["units"]), int(ours["units"]),
                       float(original["mask multiply share"]), bool(trace.get("outputs_equal_to_original_design")),
                       design_speed(summary), float(original["busy (ms)"]), float(original["step span (ms)"]))


def conv_costs(analysis: TraceAnalysis, layers: pd.DataFrame) -> pd.DataFrame:
    """Each convolution layer of the analysed step (:meth:`~prunelab.core.trace.TraceAnalysis.conv_layers`, in
    network order) with ``flops``, its dense multiply-adds per image (the record's layer table, ``flops`` of
    its weight: pruned weights are still multiplied), and ``relative``, its time per multiply-add over the
    median layer's. A layer doing what its arithmetic says sits near 1."""
    conv = analysis.conv_layers()
    weights = layers[layers["param"] == "weight"].drop_duplicates("module").set_index("module")["flops"]
    conv["flops"] = conv["module"].map(weights).astype(float)
    per_flop = conv["time_us"] / conv["flops"]
    conv["relative"] = per_flop / per_flop.median()
    return conv


def per_flop_text(relative: float) -> str:
    """A layer's time per FLOP over the median layer's as Table E prints it and the findings quote it, to two
    decimals ("1.07", "0.40"): one function, so that a finding quotes Table E's cell as the table shows it."""
    return f"{relative:.2f}"


def conv_cost_words(costs: pd.DataFrame) -> str:
    """Whether time per layer follows FLOPs in the analysed step (:func:`conv_costs`): each layer at
    :data:`COST_OUTLIER` times the median time per FLOP or more, or at its inverse or less, named with its shares
    of the FLOPs and of the time."""
    low_text, high_text = per_flop_text(costs["relative"].min()), per_flop_text(costs["relative"].max())
    spread = f"{low_text}x to {high_text}x the median layer's"
    high = costs[costs["relative"] >= COST_OUTLIER].sort_values("relative", ascending=False)
    low = costs[costs["relative"] <= 1 / COST_OUTLIER].sort_values("relative")
    if high.empty and low.empty:
        return (f"Per layer, time follows the dense FLOPs in the analysed step: every convolution layer's time per "
                f"FLOP is {spread}, within {COST_OUTLIER:g}x of it either way.")
    parts = [f"{len(rows)} layer{'s' if len(rows) > 1 else ''} at {bound}: {_cost_list(rows, costs)}"
             for rows, bound in ((high, f"{COST_OUTLIER:g}x the median or more"),
                                 (low, f"{1 / COST_OUTLIER:g}x or less")) if len(rows)]
    small = len(high) and bool((high["flops"] < costs["flops"].median() / 4).all())
    why = " The slow ones do little arithmetic, so an op's fixed cost weighs more in them." if small else ""
    return (f"Per layer, time per FLOP in the analysed step is {spread}; " + "; ".join(parts) + f".{why} Together they "
            f"take {(high['time_us'].sum() + low['time_us'].sum()) / costs['time_us'].sum():.1%} of the "
            "convolutions' time.")


def _cost_list(rows: pd.DataFrame, costs: pd.DataFrame) -> str:
    return listed([f"`{row.module}` ({per_flop_text(row.relative)}x: {row.flops / costs['flops'].sum():.1%} of the "
                   f"convolutions' FLOPs, {row.time_us / costs['time_us'].sum():.1%} of their time)"
                   for row in rows.itertuples()])


def _busy_gap_words(result: TraceResult) -> str:
    """How much of the gap between the two analysed steps' busy times the mask multiplies explain: one step
    each, so a gap well beyond them, short of them (the original's other ops ran faster) or the wrong way (the
    original, with more work, no busier) is that step's variation, which only repeated steps settle. Where the
    trace was taken under another load than the repeated steps (:attr:`TraceResult.load_differs`), the gap is no
    measure of the design's extra work, and Table G's medians, taken in turn, give the designs' ratio instead."""
    gap = result.original_busy_ms - result.summary.busy_ms
    original, folded = alike(result.original_busy_ms, result.summary.busy_ms)
    settle = "the repeated steps below settle" if result.speed is not None else "only repeated steps would settle"
    if gap <= 0:
        shorter = f"{significant(-gap)} ms shorter" if gap < 0 else "no longer"
        said = (f" The original design's analysed step was busy {shorter} ({original} against {folded} ms), although "
                f"its mask multiplies took {significant(result.mask_ms)} ms")
        if result.load_differs:
            return said + "." + _load_gap(result)
        return said + f": one step varies by more than the multiplies cost, which {settle}."
    said = (f" The original design's analysed step was busy {significant(gap)} ms longer ({original} against {folded} "
            f"ms); its mask multiplies took {significant(result.mask_ms)} ms.")
    if result.load_differs:
        return said + _load_gap(result)
    if gap < result.mask_ms:
        return said + (f" The gap is smaller than the multiplies alone: the original's other ops ran "
                       f"{significant(result.mask_ms - gap)} ms faster in its analysed step, which is how one "
                       f"step varies, and which {settle}.")
    if gap <= 2 * result.mask_ms:
        return said
    whole = ("the repeated steps below measure the whole difference" if result.speed is not None
             else "only repeated steps would measure the whole difference")
    return said + (f" The other {significant(gap - result.mask_ms)} ms are not in the multiplies: one step of each "
                   "cannot tell whether the original design's other extra work cost them (launching its extra ops, "
                   f"allocating the masked weights) or the step merely varied; {whole}.")


def _load_gap(result: TraceResult) -> str:
    """The traced steps' busy times against Table G's medians, where the trace was taken under another load."""
    speed = result.speed
    verdict = ("within the noise" if not speed.differ else
               f"{'folded masks' if speed.folded_faster else 'the original design'} the faster, beyond the noise")
    return (f" The trace was taken under another load than Table G's steps (first point), so this gap is no measure "
            f"of the original design's extra work: its traced step was busy "
            f"{ratio_text(result.original_busy_ms / result.summary.busy_ms)} folded's time, where Table G's medians of "
            f"steps taken in turn put it at {ratio_text(speed.against_folded)} ({verdict}).")


def _unresolved_masks(result: TraceResult) -> str:
    """Where the repeated steps do not tell the designs apart but the trace measured the original design's mask
    multiplies: their time and share, what folding removes, and that the step test did not resolve a difference of
    that size (the steps' spread given), so that "neither is faster" is not read as "folding gains nothing"."""
    speed = result.speed
    if speed is None or speed.differ or not result.mask_ms > 0:
        return ""
    spread = significant(1e3 * max(speed.original.spread, speed.folded.spread) / 2, 2)
    one = " in one step, traced under another load than these steps," if result.load_differs else ""
    return (f" The trace measured the original design's mask multiplies{one} at {significant(result.mask_ms)} ms, "
            f"{result.mask_share:.1%} of its busy time: that is what folding removes, and the step test does not "
            f"resolve a difference of that size here (its steps spread up to ± {spread} ms).")


def _traced_against_timed(result: TraceResult) -> str:
    """Where a design's analysed step fell outside its untraced steps in Table G (:attr:`TraceResult.load_differs`):
    which, against which bound, and what that says (below: the machine was less loaded while it traced, as the
    profiler only adds time; above: busier, or the profiler's recording); and that the trace's shares then come
    from single steps taken under differing load, so that they are not read as the timed steps' split."""
    outside = [step for step in result.traced_steps() if step.side]
    if not outside:
        return ""
    said = listed([f"the {step.design} design's traced step took {significant(step.traced_ms)} ms, "
                   + (f"less than the fastest of its {step.timed.repeats} untraced steps in Table G "
                      f"({significant(1e3 * min(step.timed.samples))} ms)" if step.side < 0 else
                      f"more than the slowest of its {step.timed.repeats} untraced steps in Table G "
                      f"({significant(1e3 * max(step.timed.samples))} ms)") for step in outside])
    why = []
    if any(step.side < 0 for step in outside):
        why.append("the profiler only adds time, so a traced step faster than every untraced one ran while the "
                   "machine was less loaded")
    if any(step.side > 0 for step in outside):
        why.append("a traced step slower than every untraced one ran while the machine was busier or was slowed by "
                   "the profiler's recording (the records cannot tell which)")
    return (f" The trace was taken under a different load than Table G's timed steps: {said}; "
            + "; ".join(why) + f". The trace's shares (the convolutions' {result.summary.conv_share:.1%} here, the "
            f"mask multiplies' {result.mask_share:.1%} of the original design's traced step) therefore come from "
            "single steps taken under differing load: they picture those steps, not the timed ones, and Figures 2 "
            "and 2b show where the time went, not how long a step takes.")


def _on_the_cpu(s: TraceSummary) -> str:
    """Where the trace ran on the CPU, why a GPU's step would split otherwise (not measured here); else nothing."""
    if s.device == "cuda":
        return ""
    return (" On a CPU a few cores do each convolution's arithmetic; on a GPU the same arithmetic runs on thousands "
            "of cores, so there the launches of many small kernels and the elementwise ops take a larger share of a "
            "step (this trace, taken on the CPU, does not measure a GPU's).")


def trace_findings(summary: Mapping, designs: pd.DataFrame, costs: pd.DataFrame | None = None,
                   sparse: pd.DataFrame | None = None) -> str:
    """Markdown findings for Task 2 (:func:`trace_result` of the record's summary and design table), with what
    each layer's time per multiply-add says where ``costs`` (:func:`conv_costs`) is given, and what Task 1's sparse
    kernels measured on the set-up where ``sparse`` (:func:`.trace_kernels.setup_sparse_table`) has runs."""
    result = trace_result(summary, designs)
    s = result.summary
    conv_ms, busy_ms, span_ms = alike(s.conv_ms, s.busy_ms, s.span_ms)
    lines = [
        f"- The analysed step took {span_ms} ms from first to last {s.unit[:-1]} "
        f"({busy_ms} ms busy). Its {s.conv_layers} convolution layers account "
        f"for {conv_ms} ms, **{s.conv_share:.1%}** of the busy time (one step's "
        "shares: the picture of where its time went, not a timing to compare)." + _traced_against_timed(result)
        + _on_the_cpu(s),
        f"- The main time sink is **{s.main_sink}**."
        + (f" {conv_fix_words(sparse)} No channel-pruned model was traced or timed here, so removing channels is a "
           "proposal, not a result; Task 1's compact kernel, a dense product over the units pruning left alive, is "
           "the nearest this tool comes to one. Folding the masks (below) removes the mask multiplies only."
           if s.main_sink == "convolution" else
           f" It is not the convolutions; cutting it would take {SINK_FIXES[s.main_sink]}."
           if s.main_sink in SINK_FIXES else ""),
        f"- The original design multiplies every mask in every forward: {result.original_units} {s.unit} against "
        f"{result.folded_units} in the analysed step, {result.mask_share:.1%} of its busy time in mask "
        "multiplies. The outputs are " + ("identical." if result.outputs_equal else "NOT identical: investigate.")
        + _busy_gap_words(result),
        "- " + _speed_words(result.speed) + _unresolved_masks(result),
    ]
    if costs is not None and len(costs) and (costs["flops"] > 0).all() and costs["relative"].notna().all():
        lines.insert(2, "- " + conv_cost_words(costs))  # every layer found, with FLOPs, in the record's layer table
    return "\n".join(lines)
