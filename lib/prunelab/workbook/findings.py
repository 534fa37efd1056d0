"""The findings under each notebook: figures and verdicts computed from the tables, never written in advance,
then worded.

Each kind of finding is two steps: a function returning small frozen dataclasses of the numbers and verdicts
(:func:`tuning_result`, :func:`compression_result`, :func:`trace_result`, :func:`quantization_result`,
:func:`sparse_result`, :func:`collapse_study`...), and the function a notebook calls, which renders that
structure to Markdown. Tests check the structures; the words only carry their numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from ..core.choices import SYNFLOW_ROUNDS
from .numbers import (
    ALPHA,
    MeanComparison,
    accuracy_cell,
    compare_means,
    compression_text,
    significant,
    time_cell,
    times_differ,
)
from .style import column_order, pruner_label
from .tables import CONSTANT_PREDICTION_MARGIN, amp_ratios, collapse_table


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


# ------------------------------------------------------------------------------ Task 1: pruners compared


@dataclass(frozen=True)
class Seeds:
    """One pruner's (or the unpruned network's) top-1 (%) in one cell, a value per seed."""

    label: str
    top1: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.top1) / len(self.top1)


@dataclass(frozen=True)
class Comparison:
    """Another pruner against the best of its cell: its seeds, and Welch's t-test of the best's against them."""

    other: Seeds
    test: MeanComparison


@dataclass(frozen=True)
class PrunerRanking:
    """The pruner with the highest mean top-1 in one set-up at one compression, and each other one against it
    (in column order): ``better_than`` where Welch's t-test at :data:`.numbers.ALPHA` finds the best ahead,
    ``tied`` where the test runs and finds no difference, ``untestable`` where a side has fewer than two seeds."""

    setup: str
    data: str
    compression: float
    best: Seeds
    better_than: tuple[Comparison, ...]
    tied: tuple[Comparison, ...]
    untestable: tuple[Comparison, ...]

    @property
    def kept(self) -> float:
        return 10 ** -self.compression

    @property
    def runner_up(self) -> Comparison | None:
        """The other pruner with the highest mean top-1 (equal means: the first label in sorted order)."""
        return min(self.better_than + self.tied + self.untestable, key=lambda c: (-c.other.mean, c.other.label),
                   default=None)


def pruner_ranking(rows: pd.DataFrame) -> PrunerRanking:
    """The :class:`PrunerRanking` of ``rows``, the runs of one set-up at one compression (equal means: the
    first label in sorted order is the best)."""
    seeds = {label: Seeds(label, tuple(float(v) for v in group["top1"])) for label, group in rows.groupby("label")}
    best = max(seeds.values(), key=lambda s: s.mean)
    comparisons = [Comparison(seeds[label], compare_means(best.top1, seeds[label].top1))
                   for label in column_order(seeds) if label != best.label]
    return PrunerRanking(
        rows["setup"].iloc[0], rows["data"].iloc[0], float(rows["compression"].iloc[0]), best,
        better_than=tuple(c for c in comparisons if c.test.significant),
        tied=tuple(c for c in comparisons if c.test.testable and not c.test.significant),
        untestable=tuple(c for c in comparisons if not c.test.testable))


@dataclass(frozen=True)
class EmptiedCell:
    """A pruner and compression on one set-up where a run's pruned network had a layer with no weight left.
    ``runs`` ("2 of 3") and ``top1`` (the collapsed runs' mean ± sd) are the collapse table's cells, so the
    findings quote what the table shows; ``majority_top1``: always answering the most frequent class (%)."""

    setup: str
    label: str
    compression: float
    layers: tuple[str, ...]
    runs: str
    top1: str
    majority_top1: float


@dataclass(frozen=True)
class Collapses:
    """The collapsed cells of :func:`.tables.collapse_table`, sorted for the findings: ``emptied`` on real
    data with a layer emptied; ``constant_only``: further cells on real data at a constant prediction with no
    layer emptied; ``stand_in``: collapsed cells on synthetic stand-in data."""

    emptied: tuple[EmptiedCell, ...]
    constant_only: int
    stand_in: int

    @property
    def none(self) -> bool:
        return not self.emptied and not self.constant_only and not self.stand_in


def collapses(table: pd.DataFrame) -> Collapses:
    """The :class:`Collapses` of the runs in ``table``."""
    collapsed = collapse_table(table)
    if collapsed.empty:
        return Collapses((), 0, 0)
    real = collapsed[~collapsed["stand_in"].astype(bool)]
    structural = real[real["layers with no weights"] != "none"]
    emptied = tuple(EmptiedCell(row["Data / Arch"], row["pruner"], float(row["compression"]),
                                tuple(row["layers with no weights"].split(", ")), row["collapsed runs"],
                                row["top-1 (%)"], float(row["most frequent class (%)"]))
                    for row in structural.to_dict("records"))
    return Collapses(emptied, len(real) - len(structural), len(collapsed) - len(real))


@dataclass(frozen=True)
class DenseReference:
    """The unpruned network on one set-up on real data: what every pruner there is measured against."""

    setup: str
    data: str
    epochs: int
    top1: tuple[float, ...]


@dataclass(frozen=True)
class TuningResult:
    """Task 1: unpruned references, a :class:`PrunerRanking` per real set-up and compression, and the
    collapsed cells. ``setups``: every set-up in table order; ``stand_in``: those on synthetic stand-in data,
    pipeline checks from which nothing is ranked."""

    references: tuple[DenseReference, ...]
    setups: tuple[str, ...]
    stand_in: tuple[str, ...]
    rankings: tuple[PrunerRanking, ...]
    collapses: Collapses


def tuning_result(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> TuningResult:
    """The :class:`TuningResult` of the pruned runs in ``table`` and the unpruned ones in ``dense``."""
    references = tuple(
        DenseReference(setup, rows["data"].iloc[0], int(rows["post_epochs"].iloc[0]),
                       tuple(float(v) for v in rows["top1"]))
        for setup, rows in (dense.groupby("setup", sort=False) if dense is not None and not dense.empty else [])
        if not rows["stand_in"].any())
    setups, stand_in, rankings = [], [], []
    for setup, rows in table.groupby("setup", sort=False):
        setups.append(setup)
        if rows["stand_in"].any():
            stand_in.append(setup)
        else:
            rankings += [pruner_ranking(at) for _, at in rows.groupby("compression")]
    return TuningResult(references, tuple(setups), tuple(stand_in), tuple(rankings), collapses(table))


def tuning_findings(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> str:
    """Markdown findings for Task 1 (:func:`tuning_result`): a pruner is called better than another only
    where Welch's t-test over seeds says so, and stand-in set-ups give no conclusions."""
    result = tuning_result(table, dense)
    lines = [f"- Unpruned, {r.setup} reaches {accuracy_cell(r.top1)} top-1 ({r.data}, {r.epochs} "
             f"epoch{'s' if r.epochs != 1 else ''}): the reference every pruner below is measured against."
             for r in result.references]
    for setup in result.setups:
        if setup in result.stand_in:
            lines.append(f"- {setup} ran on synthetic stand-in data: a pipeline check. Its numbers show the code "
                         "runs end to end; no conclusion is drawn from them.")
        lines += [_ranking_line(r) for r in result.rankings if r.setup == setup]
    return "\n".join(lines + _collapse_lines(result.collapses))


def _ranking_line(r: PrunerRanking) -> str:
    parts = [f"- **{r.setup}** at compression {compression_text(r.compression)} (kept {r.kept:.1%}; {r.data}): "
             f"{r.best.label} has the highest mean top-1, {accuracy_cell(r.best.top1)}."]
    if r.better_than:
        parts.append(f" It is better than {_compared(r.better_than)} by Welch's t-test at the {ALPHA:g} level.")
    if r.tied:
        parts.append(f" It cannot be told apart from {_compared(r.tied)} at this n.")
    if r.untestable:
        parts.append(f" With fewer than two seeds, {', '.join(c.other.label for c in r.untestable)} cannot be told "
                     "apart from it at this n.")
    return "".join(parts)


def _compared(comparisons: tuple[Comparison, ...]) -> str:
    return ", ".join(f"{c.other.label} ({accuracy_cell(c.other.top1)}, p {_p(c.test.p_value)})" for c in comparisons)


def _p(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"= {p_value:.3f}"


def _collapse_lines(c: Collapses) -> list[str]:
    if c.none:
        return ["- No run collapsed: every layer kept weights and every accuracy is above a constant prediction."]
    lines = [f"- **Collapse**: {e.label} on {e.setup} at compression {compression_text(e.compression)} emptied "
             f"`{', '.join(e.layers)}` in {e.runs} runs and scored {e.top1} (always answering the most frequent "
             f"class scores {e.majority_top1:.1f}%)." for e in c.emptied]
    if c.constant_only:
        lines.append(f"- {c.constant_only} further pruner and compression cell(s) predict no better than the most "
                     "frequent class without an emptied layer: too little training for this profile, not a "
                     "pruning failure.")
    if any(e.label == pruner_label("synflow", 1) for e in c.emptied):
        lines.append(f"- SynFlow's paper prunes over {SYNFLOW_ROUNDS} rounds; with one round the largest layer "
                     "(the first) gets the smallest scores per weight and is emptied. Compare the "
                     f"{SYNFLOW_ROUNDS}-round column.")
    if c.stand_in:
        lines.append(f"- {c.stand_in} collapsed cell(s) are on synthetic stand-in data and are listed in the table "
                     "above only as pipeline checks.")
    return lines


# ------------------------------------------------------------------------------ Task 3: density per layer


@dataclass(frozen=True)
class PrunerDensity:
    """One pruner's kept fraction of all prunable weights, its densest and sparsest layer, and its FLOPs."""

    label: str
    overall: float
    densest_layer: str
    densest: float
    sparsest_layer: str
    sparsest: float
    kept_flops: float
    flops: float


@dataclass(frozen=True)
class SizeBias:
    """Under one pruner, the mean density of the layers with at most the median number of weights
    (``small``) and of the larger ones (``large``)."""

    label: str
    small: float
    large: float


@dataclass(frozen=True)
class CompressionResult:
    """Task 3 at one compression: each pruner's densities (column order) and the focus pruner's size bias
    (None when it did not run)."""

    compression: float
    pruners: tuple[PrunerDensity, ...]
    size_bias: SizeBias | None

    @property
    def target(self) -> float:
        return 10 ** -self.compression


def compression_result(layers: pd.DataFrame, compression: float, focus: str = "SNIP") -> CompressionResult:
    """The :class:`CompressionResult` of the per-layer table (:func:`.tables.layer_frame`)."""
    pruners = []
    for label in column_order(layers["label"]):
        part = layers[layers["label"] == label]
        hi = part.loc[part["density"].idxmax()]
        lo = part.loc[part["density"].idxmin()]
        pruners.append(PrunerDensity(label, float((part["density"] * part["size"]).sum() / part["size"].sum()),
                                     hi["layer"], float(hi["density"]), lo["layer"], float(lo["density"]),
                                     float(part["kept_flops"].sum()), float(part["flops"].sum())))
    part = layers[layers["label"] == focus]
    bias = None
    if not part.empty:
        median = part["size"].median()
        bias = SizeBias(focus, float(part.loc[part["size"] <= median, "density"].mean()),
                        float(part.loc[part["size"] > median, "density"].mean()))
    return CompressionResult(compression, tuple(pruners), bias)


def compression_findings(layers: pd.DataFrame, compression: float, focus: str = "SNIP") -> str:
    """Markdown findings for Task 3 (:func:`compression_result`)."""
    result = compression_result(layers, compression, focus)
    lines = [f"- The overall target keeps {result.target:.4f} of the prunable weights (compression "
             f"{result.compression:g})."]
    lines += [f"- **{p.label}**: overall {p.overall:.4f}; densest `{p.densest_layer}` ({p.densest:.3f}), "
              f"sparsest `{p.sparsest_layer}` ({p.sparsest:.3f}); kept FLOPs {p.kept_flops:,.0f} of {p.flops:,.0f}."
              for p in result.pruners]
    if result.size_bias is not None:
        b = result.size_bias
        lines.append(f"- Under {b.label}, layers with fewer weights keep on average {b.small:.3f} and larger ones "
                     f"{b.large:.3f}: a global threshold does not prune every layer equally.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ Task 2: the traced step


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


def trace_summary(trace: dict) -> TraceSummary:
    """The :class:`TraceSummary` of a record's ``summary["trace"]``."""
    return TraceSummary(trace["device"], float(trace["step_span_ms"]), float(trace["step_busy_ms"]),
                        int(trace["conv_layers"]), float(trace["conv_ms"]), float(trace["conv_share"]),
                        trace["main_sink"])


@dataclass(frozen=True)
class DesignSpeed:
    """Step times of the original design (mask multiplied in every forward) and of masks folded into the
    weights: medians and spreads (ranges) of ``steps`` steps of each, taken in turn."""

    original_ms: float
    original_spread_ms: float
    folded_ms: float
    folded_spread_ms: float
    steps: int

    @property
    def differ(self) -> bool:
        """The gap exceeds the larger spread: one design is measurably faster."""
        return bool(times_differ(self.original_ms, self.original_spread_ms, self.folded_ms, self.folded_spread_ms))

    @property
    def folded_faster(self) -> bool:
        return self.folded_ms < self.original_ms

    @property
    def ratio(self) -> float:
        """The slower step time over the faster."""
        return max(self.original_ms, self.folded_ms) / min(self.original_ms, self.folded_ms)


def design_speed(designs: pd.DataFrame) -> DesignSpeed | None:
    """The :class:`DesignSpeed` of a record's design comparison (original first, folded second); None for a
    record without repeated steps."""
    if "step median (ms)" not in designs:
        return None
    original, ours = designs.iloc[0], designs.iloc[1]
    return DesignSpeed(float(original["step median (ms)"]), float(original["step spread (ms)"]),
                       float(ours["step median (ms)"]), float(ours["step spread (ms)"]),
                       int(min(original["timed steps"], ours["timed steps"])))


def design_speed_words(designs: pd.DataFrame) -> str:
    """Which design is faster (:func:`design_speed`), claimed only beyond the spread of the repeats."""
    return _speed_words(design_speed(designs))


def _speed_words(speed: DesignSpeed | None) -> str:
    if speed is None:
        return ("One traced step cannot tell which design is faster (one step's time is noise); this record "
                "has no repeated steps.")
    cells = (f"{time_cell(speed.original_ms, speed.original_spread_ms, 'ms')} in the original design against "
             f"{time_cell(speed.folded_ms, speed.folded_spread_ms, 'ms')} folded")
    how = f"over {speed.steps} steps of each taken in turn (median ± half the range)"
    if not speed.differ:
        return (f"Step time {how}: {cells}; the {abs(speed.original_ms - speed.folded_ms):.3g} ms gap is within "
                "the spread of the repeats (noise), so neither design is measurably faster on this batch and device.")
    faster = "folded masks" if speed.folded_faster else "the original design"
    return (f"Step time {how}: {cells}; **{faster}** is faster ({speed.ratio:.2f}x), a gap larger than the spread "
            "of the repeats.")


@dataclass(frozen=True)
class TraceResult:
    """Task 2: the traced step, the original design's units and mask-multiply share against the traced
    (folded) step's units, whether both designs gave identical outputs, and their repeated step times."""

    summary: TraceSummary
    original_units: int
    folded_units: int
    mask_share: float
    outputs_equal: bool
    speed: DesignSpeed | None


def trace_result(trace: dict, designs: pd.DataFrame) -> TraceResult:
    """The :class:`TraceResult` of a record's trace summary and its design comparison."""
    original, ours = designs.iloc[0], designs.iloc[1]
    return TraceResult(trace_summary(trace), int(original["units"]), int(ours["units"]),
                       float(original["mask multiply share"]), bool(trace.get("outputs_equal_to_original_design")),
                       design_speed(designs))


def trace_findings(trace: dict, designs: pd.DataFrame) -> str:
    """Markdown findings for Task 2 (:func:`trace_result`)."""
    result = trace_result(trace, designs)
    s = result.summary
    lines = [
        f"- The traced step took {significant(s.span_ms)} ms from first to last {s.unit[:-1]} "
        f"({significant(s.busy_ms)} ms busy). Its {s.conv_layers} convolution layers account "
        f"for {significant(s.conv_ms)} ms, **{s.conv_share:.1%}** of the busy time (one step: the "
        "shares are what the picture shows, not a timing to compare).",
        f"- The main time sink is **{s.main_sink}**."
        + (" Convolutions dominate; with pruned weights still stored densely, a sparse or structured kernel "
           "(or channel pruning) is what would cut this time, not more unstructured sparsity."
           if s.main_sink == "convolution" else
           " It is not the convolutions: per-op overhead dominates this small network, which kernel fusion "
           "(conv + batchnorm folding, torch.compile) or CUDA graphs attack."),
        f"- The original design multiplies every mask in every forward: {result.original_units} {s.unit} against "
        f"{result.folded_units} in the traced step, {result.mask_share:.1%} of its busy time in mask "
        "multiplies. The outputs are " + ("identical." if result.outputs_equal else "NOT identical: investigate."),
        "- " + _speed_words(result.speed),
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ Task 4: precision


@dataclass(frozen=True)
class AmpTime:
    """Mixed precision against fp32 training time at one compression: medians and spreads (ranges) of
    passes taken in turn."""

    compression: float
    amp_s: float
    amp_spread_s: float
    fp32_s: float
    fp32_spread_s: float

    @property
    def ratio(self) -> float:
        """AMP's time over fp32's."""
        return self.amp_s / self.fp32_s

    @property
    def differ(self) -> bool:
        """The gap exceeds the larger spread."""
        return bool(times_differ(self.amp_s, self.amp_spread_s, self.fp32_s, self.fp32_spread_s))


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
        """Compressions where the time difference exceeds the spread."""
        return sum(t.differ for t in self.at)


def amp_times(timing: pd.DataFrame) -> AmpTimes:
    """The :class:`AmpTimes` of :func:`.measurement_tables.amp_timing_frame` (a row per compression)."""
    first = timing.iloc[0]
    return AmpTimes(str(first["amp_dtype"]), int(first["batches"]), int(first["batch_size"]),
                    int(timing["fp32_train_repeats"].min()),
                    tuple(AmpTime(float(c), float(r["amp_train_s"]), float(r["amp_train_spread_s"]),
                                  float(r["fp32_train_s"]), float(r["fp32_train_spread_s"]))
                          for c, r in timing.iterrows()))


def amp_time_words(timing: pd.DataFrame) -> str:
    """Mixed precision against fp32 training time per compression (:func:`amp_times`)."""
    return _amp_words(amp_times(timing))


def _amp_words(times: AmpTimes) -> str:
    parts = []
    for t in times.at:
        verdict = (f"**{t.ratio:.2f}x** fp32's time ({'faster' if t.ratio < 1 else 'slower'}, beyond the spread)"
                   if t.differ else f"{t.ratio:.2f}x fp32's time, within the spread (noise: no measurable difference)")
        parts.append(f"at compression {t.compression:g} {time_cell(t.amp_s, t.amp_spread_s)} "
                     f"against {time_cell(t.fp32_s, t.fp32_spread_s)}, {verdict}")
    steps = f"{times.batches} training step{'s' if times.batches != 1 else ''}"
    return (f"Mixed precision ({times.dtype}) against fp32 training, {steps} of {times.batch_size} images per pass, "
            f"the median of {times.repeats} passes of each taken in turn ± half their range: {'; '.join(parts)}.")


def amp_time_summary(times: AmpTimes) -> str:
    """One clause for the front page: the range of AMP / fp32 time ratios and at how many compressions the
    difference exceeds the spread (the per-compression figures are in the findings)."""
    return (f"training time {times.ratios.words('{:.2f}'.format)}x fp32's, beyond the spread of passes taken in "
            f"turn at {times.beyond} of {len(times.at)} compressions")


@dataclass(frozen=True)
class Int8Setup:
    """int8 against fp32 test-set inference on the CPU for one set-up's runs: the speed-up, how many runs
    differ beyond the spread of passes taken in turn (None: no spread recorded), and int8's top-1 change."""

    setup: str
    speedup: Span
    beyond: int | None
    runs: int
    top1_change: Span


@dataclass(frozen=True)
class Int8Result:
    """The int8 table in figures: per set-up, whether every pruned weight stayed zero, how much smaller int8
    is on disk than dense fp32, and the runs (set-up, compression) whose sparse fp32 file is smaller than int8."""

    setups: tuple[Int8Setup, ...]
    zeros_kept: bool
    smaller_than_dense: Span
    sparse_smaller: tuple[tuple[str, float], ...]


def _int8_result(int8: pd.DataFrame) -> Int8Result:
    setups = tuple(Int8Setup(setup, Span.of(part["speedup"]), _int8_beyond(part), len(part),
                             Span.of(-part["drop (points)"])) for setup, part in int8.groupby(level="setup"))
    dense, sparse, q = int8["fp32 dense (KB)"], int8["fp32 sparse (KB)"], int8["int8 (KB)"]
    smaller = tuple((setup, float(c)) for setup, c in int8.index if sparse[(setup, c)] < q[(setup, c)])
    return Int8Result(setups, bool(int8["pruned weights zero in int8"].all()), Span.of(dense / q), smaller)


def _int8_beyond(part: pd.DataFrame) -> int | None:
    """Rows of the int8 table whose int8 and fp32 times differ beyond the spread; None for old records."""
    if "fp32 inference spread (ms)" not in part or part["fp32 inference spread (ms)"].isna().any():
        return None
    return int(sum(times_differ(r["int8 inference (ms)"], r["int8 inference spread (ms)"], r["fp32 inference (ms)"],
                                r["fp32 inference spread (ms)"]) for _, r in part.iterrows()))


@dataclass(frozen=True)
class QuantizationResult:
    """Task 4 in figures. AMP against fp32 per compression (``compressions``): peak memory and training time
    of the separate runs and the top-1 change (points); ``timing``: the interleaved times, when measured.
    ``graphed``: the fp32 runs replayed a CUDA graph of their step. ``gain``: mixed precision is faster by
    over 10% (at every compression beyond the spread, when timed in turn). ``start_mb``: CUDA memory held
    before training (on CUDA); ``cpu_bf16``: the CPU's native bf16 flags (off CUDA)."""

    dtype: str
    devices: str
    on_cuda: bool
    model: str
    params: int
    compressions: tuple[float, ...]
    memory: Span
    time: Span
    top1_change: Span
    graphed: bool
    timing: AmpTimes | None
    gain: bool
    start_mb: float | None
    cpu_bf16: tuple[str, ...]
    int8: Int8Result | None


def quantization_result(table: pd.DataFrame, int8: pd.DataFrame, timing: pd.DataFrame | None = None
                        ) -> QuantizationResult:
    """The :class:`QuantizationResult` of the AMP records, the int8 table and the interleaved training times
    (``timing``: :func:`.measurement_tables.amp_timing_frame`)."""
    ratios = amp_ratios(table)
    on_cuda = bool(table["peak_memory_kind"].eq("cuda_max_allocated").all())
    times = amp_times(timing) if timing is not None and not timing.empty else None
    separate = Span.of(ratios["time AMP / fp32"])
    gain = (times.beyond == len(times.at) and all(t.ratio < 0.9 for t in times.at) if times is not None
            else separate.high < 0.9)
    return QuantizationResult(
        dtype=", ".join(sorted(set(table.loc[table["amp"], "amp_dtype"]))),
        devices=", ".join(sorted(set(table["device_name"].dropna()))), on_cuda=on_cuda,
        model=table["model"].iloc[0], params=int(table["params_total"].iloc[0]),
        compressions=tuple(float(c) for c in ratios.index), memory=Span.of(ratios["memory AMP / fp32"]),
        time=separate, top1_change=Span.of(ratios["top-1 AMP - fp32 (points)"]),
        graphed="train_step" in table and bool(table.loc[~table["amp"], "train_step"].eq("cuda graph").any()),
        timing=times, gain=bool(gain),
        start_mb=float(table["peak_memory_start_mb"].mean()) if on_cuda else None,
        cpu_bf16=() if on_cuda else tuple(sorted({f for value in table["cpu_bf16"].dropna() for f in value})),
        int8=None if int8.empty else _int8_result(int8))


def quantization_findings(table: pd.DataFrame, int8: pd.DataFrame, timing: pd.DataFrame | None = None) -> str:
    """Markdown discussion of Task 4 (:func:`quantization_result`). A time difference is called one only when
    it exceeds the larger spread of the repeats."""
    r = quantization_result(table, int8, timing)
    memory_words = (f"peak memory was {r.memory.words('{:.2f}x'.format)} fp32's"
                    + (" (the fp32 runs replayed a CUDA graph of their training step, which keeps the step's "
                       "activations in memory of its own, and mixed precision took ordinary steps: this ratio "
                       "compares step designs as well as precisions)" if r.graphed else "")
                    + ", across compressions "
                    f"{', '.join(f'{c:g}' for c in r.compressions)}; top-1 moved by "
                    f"{r.top1_change.words('{:+.1f}'.format)} points ({r.dtype} rounding sends the two trainings "
                    "down different paths: with one seed per cell, a difference in top-1 says little until more "
                    "seeds repeat it).")
    if r.timing is not None:
        lines = ["- " + _amp_words(r.timing) + " Against fp32, " + memory_words]
    else:
        lines = [f"- With mixed precision ({r.dtype} on {r.devices}) training took "
                 f"**{r.time.words('{:.2f}x'.format)}** the fp32 time and " + memory_words + " Those times are "
                 "totals of separate runs, not timed in turn, so they are not a measured difference."]
        if r.graphed:
            lines[-1] += " The time ratio, too, compares step designs as well as precisions."
    lines.append("- " + (_cuda_words(r) if r.on_cuda else _cpu_words(r)))
    if r.int8 is not None:
        lines += _int8_lines(r.int8)
    return "\n".join(lines)


def _cuda_words(r: QuantizationResult) -> str:
    return (("Mixed precision paid off in time, though far less than tensor cores' peak rate suggests: " if r.gain
             else "The time gain is small: ")
            + f"{r.model} has {r.params / 1e6:.2f} M parameters, so each of its layers is a short kernel. Tensor "
            "cores speed up only the convolutions' arithmetic; batchnorm, ReLU, the residual "
            "additions, the casts autocast inserts and the optimizer's updates are memory-bound, and at this "
            "size launch overhead and those layers take much of every step. Peak memory falls "
            "less than half because weights, gradients and Adam's two moments stay fp32, and the data set "
            f"prunelab keeps on the device ({r.start_mb:.0f} MB held before training "
            "began, with the model) does not shrink at all; only activations saved for the backward pass do.")


def _cpu_words(r: QuantizationResult) -> str:
    units = f"native bf16 units ({', '.join(r.cpu_bf16)})" if r.cpu_bf16 else "no native bf16 units"
    return (f"This CPU has {units}. " + (
        "oneDNN runs bf16 convolutions on them at a multiple of fp32's rate, which outweighs the casts "
        "autocast inserts before each convolution: mixed precision pays off in time even on a CPU. "
        if r.gain else
        "Autocast casts every weight and activation to bf16 before each convolution and back where fp32 "
        "is needed, and " + ("with these units the convolutions of so small a network gain too little "
                             "to pay for that. " if r.cpu_bf16 else "without them bf16 arithmetic is emulated, "
                             "so there is nothing to gain. "))
        + "The memory column is the peak resident set of the whole process (the Python runtime, the PyTorch "
        "libraries, the data set held in memory), not of tensors alone, so halving activations barely moves "
        "it. Run this notebook on a GPU for the memory of CUDA tensors and fp16 with tensor cores.")


def _int8_lines(r: Int8Result) -> list[str]:
    per_setup = "; ".join(
        f"{s.setup}: **{s.speedup.words('{:.2f}x'.format)}** as fast, "
        + ("no spread recorded, so no difference is claimed" if s.beyond is None else
           f"{s.beyond} of {s.runs} runs differing by more than the spread (the rest: noise)")
        + f", top-1 changed by {s.top1_change.words('{:+.1f}'.format)} points" for s in r.setups)
    smaller = [f"{setup} at {c:g}" for setup, c in r.sparse_smaller]
    return [
        f"- int8 post-training quantization against fp32 test-set inference on the CPU (medians of passes "
        f"taken in turn): {per_setup}. "
        + ("Every pruned weight stayed exactly zero." if r.zeros_kept
           else "Some pruned weights did NOT stay zero: investigate."),
        f"- On disk int8 is {r.smaller_than_dense.words('{:.1f}x'.format)} smaller than dense fp32 (one byte per "
        "weight, pruned ones included, whatever the compression); storing only the kept fp32 weights and their "
        "positions shrinks with compression instead, and is smaller than int8 "
        + (f"for {', '.join(smaller)}." if smaller else "in none of these runs.")
        + " Both together (sparse int8) would compound the savings; PyTorch has no kernel that runs it."]


# ------------------------------------------------------------------------------ sparse kernels


@dataclass(frozen=True)
class SparseSetup:
    """One set-up's sparse-kernel records: test-set speed-up on sparse kernels against dense ones, the
    kept fractions, the fewest timed passes, how many of ``runs`` differ beyond the passes' spread; the layers'
    kernel choices (``switched``: kernel and layer count for the layers that left the dense kernel) with the
    densities of the switched layers, of those that stayed dense and of all; dead units removed."""

    setup: str
    speedup: Span
    kept: Span
    repeats: int
    beyond: int
    runs: int
    switched: tuple[tuple[str, int], ...]
    switched_density: Span
    dense_density: Span
    density: Span
    dead_units: int

    @property
    def switched_layers(self) -> int:
        return sum(n for _, n in self.switched)


def sparse_result(sparse: pd.DataFrame, layers: pd.DataFrame) -> tuple[SparseSetup, ...]:
    """A :class:`SparseSetup` per set-up of the sparse table (:func:`.tables.sparse_table`), with its layers'
    choices (:func:`.tables.sparse_layer_frame`)."""
    setups = []
    columns = ["dense_inference_s", "dense_inference_spread_s", "sparse_inference_s", "sparse_inference_spread_s"]
    for setup, rows in sparse.groupby("setup", sort=False):
        part = layers[layers["setup"] == setup]
        switched = part[part["kernel"] != "dense"]
        setups.append(SparseSetup(
            setup, Span.of(rows["speedup"]), Span.of(rows["kept"]), int(rows["timing_repeats"].min()),
            int(sum(times_differ(*values) for values in rows[columns].itertuples(index=False))), len(rows),
            tuple((str(k), int(n)) for k, n in switched["kernel"].value_counts().items()),
            Span.of(switched["density"]), Span.of(part.loc[part["kernel"] == "dense", "density"]),
            Span.of(part["density"]), int(rows["dead_units"].sum())))
    return tuple(setups)


def sparse_findings(sparse: pd.DataFrame, layers: pd.DataFrame) -> str:
    """Markdown findings on sparse kernels (:func:`sparse_result`): how much faster, which layers switched
    and why, and whether a difference is larger than the passes' own spread."""
    lines = []
    for s in sparse_result(sparse, layers):
        lines.append(
            f"- {s.setup}: on sparse kernels the test set ran **{s.speedup.words('{:.2f}x'.format)}** as fast as on "
            f"dense kernels (kept fraction {s.kept.words('{:.3g}'.format)}; medians of {s.repeats} passes taken in "
            f"turn); {s.beyond} of {s.runs} runs differ by more than the passes' spread, the rest are the same "
            "speed within noise.")
        if s.switched:
            kinds = ", ".join(f"{k} ({n})" for k, n in s.switched)
            lines.append(
                f"  {s.switched_layers} layer choices switched ({kinds}); those layers kept "
                f"{s.switched_density.words('{:.3g}'.format)} of their weights, against "
                f"{s.dense_density.words('{:.3g}'.format)} in the layers that stayed dense: "
                "a sparse kernel skips the zeros but reads an index per weight and runs far below the dense kernels' "
                "rate, so it wins only where few weights are left.")
        else:
            lines.append(
                f"  No layer switched: at these densities ({s.density.words('{:.3g}'.format)} of each layer's "
                "weights kept) every dense kernel was at least as fast as its sparse candidates, which pay only at "
                "much lower density (see `bench/sparse.py`).")
        if s.dead_units:
            lines.append(f"  {s.dead_units} dead units (neurons or channels with no kept weight in or out) were "
                         "removed, which narrows the dense layers themselves; where a run is faster without a "
                         "switched layer, that is where its time went.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ where pruners collapse


@dataclass(frozen=True)
class Survival:
    """How far one pruner goes on one set-up before its networks stop learning.

    ``survives_to``: the highest studied compression up to which (inclusive) every seed's top-1 stays above
    chance at every studied compression (None: already at chance at the lowest). ``first_at_chance``: the
    lowest compression where a seed falls to chance. ``first_emptied``: the lowest compression where a seed's
    pruned network has a layer with no weight left (layer collapse). Chance is always answering the most
    frequent test class, plus :data:`CONSTANT_PREDICTION_MARGIN` points.
    """

    setup: str
    label: str
    survives_to: float | None
    first_at_chance: float | None
    first_emptied: float | None


def collapse_study(table: pd.DataFrame) -> list[Survival]:
    """A :class:`Survival` per set-up on real data and pruner label, set-ups and pruners in table order."""
    real = table[~table["stand_in"].astype(bool)]
    survivals = []
    for (setup, label), rows in real.groupby(["setup", "label"], sort=False):
        above, emptied = {}, {}
        for compression, at in rows.groupby("compression"):
            chance = at["majority_class_top1"] + CONSTANT_PREDICTION_MARGIN
            above[compression] = bool((at["top1"] > chance).all())
            emptied[compression] = any(bool(layers) for layers in at["collapsed_layers"] if layers is not None)
        ordered = sorted(above)
        failing = [c for c in ordered if not above[c]]
        first_at_chance = failing[0] if failing else None
        survives = [c for c in ordered if first_at_chance is None or c < first_at_chance]
        survivals.append(Survival(setup, label, survives[-1] if survives else None, first_at_chance,
                                  next((c for c in ordered if emptied[c]), None)))
    return survivals


@dataclass(frozen=True)
class SynflowClaim:
    """The SynFlow paper's claim on one set-up: iterative SynFlow avoids layer collapse up to the highest
    compression, while SNIP and GraSP collapse earlier. ``synflow_survives``: SynFlow with its paper's rounds
    stays above chance at every studied compression, up to ``highest``; ``earlier``: the gradient pruners that
    fall to chance at a lower compression than SynFlow does; ``not_earlier``: those that do not."""

    setup: str
    highest: float
    synflow_survives: bool
    earlier: tuple[str, ...]
    not_earlier: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.synflow_survives and not self.not_earlier


def synflow_claim(table: pd.DataFrame, survivals: list[Survival]) -> list[SynflowClaim]:
    """Check the claim on each real set-up that ran SynFlow with its paper's rounds and SNIP or GraSP."""
    synflow, gradient = pruner_label("synflow", None), [pruner_label(p, None) for p in ("snip", "grasp")]
    claims = []
    for setup in dict.fromkeys(s.setup for s in survivals):
        by_label = {s.label: s for s in survivals if s.setup == setup}
        if synflow not in by_label or not any(g in by_label for g in gradient):
            continue
        highest = float(table.loc[table["setup"] == setup, "compression"].max())
        reach = by_label[synflow].first_at_chance  # None: SynFlow never reaches chance
        earlier = tuple(g for g in gradient if g in by_label and by_label[g].first_at_chance is not None
                        and (reach is None or by_label[g].first_at_chance < reach))
        not_earlier = tuple(g for g in gradient if g in by_label and g not in earlier)
        claims.append(SynflowClaim(setup, highest, reach is None, earlier, not_earlier))
    return claims


def collapse_study_findings(table: pd.DataFrame) -> str:
    """Markdown: per real set-up studied at several compressions, how far each pruner stays above chance and
    where a layer first empties, then whether the data agree with the SynFlow paper's claim."""
    table = table[table.groupby("setup")["compression"].transform("nunique") > 1]
    survivals = collapse_study(table)
    if not survivals:
        return "- No set-up on real data was run at more than one compression: nothing to say about collapse."
    claims = synflow_claim(table, survivals)
    return "\n".join([_survival_line(s) for s in survivals] + [_claim_line(c) for c in claims])


def _survival_line(s: Survival) -> str:
    if s.survives_to is None:
        reach = f"is at chance already at compression {compression_text(s.first_at_chance)}"
    elif s.first_at_chance is None:
        reach = (f"stays above chance on every seed at every compression studied, up to "
                 f"{compression_text(s.survives_to)} ({10 ** -s.survives_to:.2%} of the weights kept)")
    else:
        reach = (f"stays above chance on every seed up to compression {compression_text(s.survives_to)} and "
                 f"falls to chance at {compression_text(s.first_at_chance)}")
    emptied = ("; no layer empties" if s.first_emptied is None else
               f"; a layer first empties at {compression_text(s.first_emptied)}")
    return f"- **{s.label}** on {s.setup} {reach}{emptied}."


def _claim_line(c: SynflowClaim) -> str:
    synflow = pruner_label("synflow", None)
    head = f"- **The SynFlow paper's claim on {c.setup}**: "
    if c.agrees:
        return head + (f"the data agree. {synflow} stays above chance up to compression {compression_text(c.highest)}, "
                       f"while {' and '.join(c.earlier)} fall to chance earlier.")
    reach = (f"stays above chance up to compression {compression_text(c.highest)}" if c.synflow_survives
             else "itself falls to chance within the studied range")
    parts = [f"{synflow} {reach}"]
    if c.earlier:
        parts.append(f"{' and '.join(c.earlier)} fall to chance before it does")
    if c.not_earlier:
        parts.append(f"{' and '.join(c.not_earlier)} do not fall to chance before it does")
    return head + "the data do not fully agree: " + "; ".join(parts) + "."
