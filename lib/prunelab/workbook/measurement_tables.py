"""Tables E–G and J–L2 as a reader sees them (Tables H and I: :mod:`.layer_tables`): times to 3 significant
digits (medians ± half the range of their repeats), compressions as 0.25, accuracies to one decimal, and a time
difference called real only where a rank test of the repeats tells the two apart
(:func:`prunelab.core.timing.timings_differ`).

The numeric tables (:func:`.tables.int8_table`, the trace's design table, the AMP timing records) stay
numeric for the findings; the functions here turn them into the text cells the notebooks display.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

from ..core.timing import TIMING_RULE, TOO_FEW, WITHIN_NOISE, Timing, can_differ, timings_differ
from ..runs.store import RunRecord
from .amp_memory import TIMED_PEAK_KEYS, amp_memory
from .grids import stand_in_note
from .int8_findings import load_spreads
from .numbers import alike, compression_text, ratio_text, significant, steps_text, time_cell
from .sparse_tables import NOISY_DENSE
from .style import FLOPS, pruner_label
from .table_headers import table_style
from .table_notes import UNROUNDED_RATIOS, noted, say_once
from .tables import int8_sides, precision_label
from .tracing_findings import DESIGNS, design_steps, per_flop_text

if TYPE_CHECKING:
    from ..core.trace import TraceAnalysis

def captioned(frame: pd.DataFrame, caption: str, index: bool = True):
    """A Styler of an already formatted table with its caption on top (renders in the HTML export), the index's
    names in the header row (:func:`.table_headers.table_style`); what every cell or row repeats is said once in the
    caption instead (:func:`.table_notes.noted`)."""
    frame, caption = noted(frame, caption)
    style = table_style(frame).set_caption(caption).set_table_styles(
        [{"selector": "caption", "props": "caption-side: top; font-weight: bold; text-align: left;"}])
    return style if index else style.hide(axis="index")


def percent(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def one_decimal(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f}"


def change_text(change: float) -> str:
    """A top-1 change in points, signed, to one decimal as the accuracy cells are (no change reads "+0.0")."""
    return "–" if change is None or not math.isfinite(change) else f"{0.0 + change:+.1f}"


#: said in a table's caption where a top-1 change it shows is not the difference of the cells shown beside it
TOP1_ROUNDING_NOTE = "a top-1 change is of the unrounded accuracies, so it can differ by 0.1 from the rounded cells"


def top1_rounding_note(pairs: Iterable[tuple[float, float]]) -> str:
    """``"; "`` and :data:`TOP1_ROUNDING_NOTE` where, for some (new, old) pair of top-1s, the change a table shows
    (:func:`change_text` of the unrounded difference) differs from the difference of the two cells shown
    (:func:`one_decimal`); else "". Tables K and L, whose changes stand beside Table J's or their own cells."""
    for new, old in pairs:
        if not (math.isfinite(new) and math.isfinite(old)):
            continue
        cells = float(one_decimal(new)) - float(one_decimal(old))
        if change_text(new - old) != change_text(round(cells, 1)):
            return "; " + TOP1_ROUNDING_NOTE
    return ""


def difference_text(a: Timing, b: Timing) -> str:
    """Whether ``a`` is "slower" or "faster" than ``b`` where :func:`~prunelab.core.timing.timings_differ` tells
    them apart, else that no difference is claimed (too little evidence, not evidence of equal times)."""
    if not can_differ(len(a.samples), len(b.samples)):
        return TOO_FEW
    if not timings_differ(a, b):
        return WITHIN_NOISE
    return "slower" if a.median > b.median else "faster"


# ---------------------------------------------------------------------------------------------- Task 2


def conv_layer_table(costs: pd.DataFrame) -> pd.DataFrame:
    """Table E: each convolution layer of the analysed step (:func:`.tracing_findings.conv_costs`), its time
    (µs) and shares of the step, its dense FLOPs (multiply-adds) per image, and its time per FLOP against the
    median layer's; a layer type shared by every row is said once, in the caption (:func:`.table_notes.say_once`)."""
    return say_once(pd.DataFrame({"module": costs["module"], "type": costs["type"],
                         "time (µs)": costs["time_us"].map(significant),
                         "share of busy": costs["share_of_busy"].map(percent),
                         "share of span": costs["share_of_span"].map(percent),
                         f"dense {FLOPS} per image (M)": (costs["flops"] / 1e6).map(significant),
                         "time per FLOP (× median)": costs["relative"].map(per_flop_text)},
                        index=costs.index), ["type"])


def conv_layer_caption(analysis: TraceAnalysis) -> str:
    """Table E's caption after its letter: how many convolution layers the traced step ran, their time and share,
    and the step's busy time and wall span, the wholes to the part's decimal places (:func:`.numbers.alike`)."""
    conv_ms, busy_ms, span_ms = alike(analysis.conv_total_us / 1e3, analysis.step_busy_us / 1e3,
                                      analysis.step_span_us / 1e3)
    return (f"Convolution layers of the analysed step: {len(analysis.conv_layers())} layers, {conv_ms} ms "
            f"in all, {analysis.conv_share:.1%} of the step's busy time ({busy_ms} ms; wall span {span_ms} ms)")


def step_kind_table(analysis: TraceAnalysis) -> pd.DataFrame:
    """Table F: the analysed step by kind of work."""
    b = analysis.breakdown()
    return pd.DataFrame({"kind": b["kind"], "time (µs)": b["time_us"].map(significant), "units": b["units"],
                         "share of busy": b["share_of_busy"].map(percent)})


def design_comparison_table(designs: pd.DataFrame, summary: Mapping) -> pd.DataFrame:
    """Table G: the two designs (``trace_designs.csv``: original first, folded second), the traced step's units
    and mask share (one step: the picture), and the step time of the record's repeated steps taken in turn
    (``summary``'s :func:`.tracing_findings.design_steps`; median ± half range) against folded. The traced step's
    busy time is shown only where no repeated steps were recorded: one step each is one sample, and beside the
    repeated steps it read as a second, contradicting, comparison. A count of timed steps the same for both designs
    is said once, in the caption (:func:`.table_notes.say_once`)."""
    rows = []
    steps = design_steps(summary)
    for (_, row), key in zip(designs.iterrows(), DESIGNS, strict=True):
        cells = {"design": row["design"], "units (traced step)": int(row["units"]),
                 "mask multiply share (traced step)": percent(row["mask multiply share"])}
        if steps is None:
            cells["busy in traced step (ms)"] = significant(row["busy (ms)"])
        else:
            step, folded = steps[key], steps[DESIGNS[-1]]
            cells["step time (ms)"] = time_cell(1e3 * step.median, 1e3 * step.spread, "")
            cells["timed steps"] = step.repeats
            against = f"{ratio_text(step.median / folded.median)}, {difference_text(step, folded)}"
            cells["against folded"] = "–" if key == DESIGNS[-1] else against
        rows.append(cells)
    return say_once(pd.DataFrame(rows), ["timed steps"])


# ---------------------------------------------------------------------------------------------- Task 4


#: the timing fields of an ``amp-timing`` record (:meth:`prunelab.core.timing.Timing.summary` of each precision)
TRAIN_TIMING_KEYS = tuple(f"{key}_train_{field}" for key in ("fp32", "amp") for field in ("s", "spread_s", "repeats",
                                                                                          "samples_s"))


def amp_timing_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """The interleaved fp32 / AMP training times of ``amp-timing`` records, a row per compression (every field
    of each precision's :class:`~prunelab.core.timing.Timing`, read back by ``Timing.from_summary``), with each
    precision's peak tensor memory of a timed pass (:data:`.amp_memory.TIMED_PEAK_KEYS`)."""
    rows = [{"compression": r.summary["compression"], **{k: r.summary[k] for k in (
        "amp_dtype", "batches", "batch_size", *TRAIN_TIMING_KEYS, *TIMED_PEAK_KEYS)}} for r in records]
    columns = ["compression", "amp_dtype", "batches", "batch_size", *TRAIN_TIMING_KEYS, *TIMED_PEAK_KEYS]
    return pd.DataFrame(rows, columns=columns).set_index("compression").sort_index()


def _runs_by_compression(table: pd.DataFrame) -> dict[float, dict[str, pd.Series]]:
    out: dict[float, dict[str, pd.Series]] = {}
    for _, row in table.iterrows():
        out.setdefault(row["compression"], {})["fp32" if not row["amp"] else "amp"] = row
    return out


#: Table J's heading of each run's own training time, beside :func:`timed_step_heading`'s
RUN_TIME = "Whole run's training time (s)"


def timed_step_heading(timing: pd.DataFrame) -> str:
    """Table J's heading of the training time measured fp32 and AMP in turn (``timing``: :func:`amp_timing_frame`),
    saying what one pass times ("Time of 1 step of 32 images (s)"), so that it is not read as the run's time
    (:data:`RUN_TIME`) beside it."""
    if timing.empty:
        return "Time of a timed pass (s)"
    return f"Time of {_timed_steps(timing, 'step')} (s)"


def _timed_steps(timing: pd.DataFrame, noun: str) -> str:
    """What one timed pass of ``timing`` (:func:`amp_timing_frame`) trains: "1 step of 32 images"."""
    return steps_text(int(timing["batches"].iloc[0]), int(timing["batch_size"].iloc[0]), noun)


def amp_training_table(table: pd.DataFrame, timing: pd.DataFrame) -> pd.DataFrame:
    """Table J: per compression, peak memory and top-1 of the two runs, the time of a pass of training
    steps measured fp32 and AMP in turn (``timing``: :func:`amp_timing_frame`), and each run's own training time as
    recorded (the course's column; taken at different moments, so the timed steps are the comparison). Peak
    memory is what :func:`.amp_memory.amp_memory` compares by, under its heading: on a GPU each run's own, on a CPU a
    timed pass's tensors."""
    runs = _runs_by_compression(table)
    memory = amp_memory(table, timing)
    amp_name = next((precision_label(r) for c in runs.values() for k, r in c.items() if k == "amp"), "AMP")
    # "fp32", or how the fp32 runs were trained where that was fused (their peak memory is their group's)
    fp32_name = next((precision_label(r) for c in runs.values() for k, r in c.items() if k == "fp32"
                      and precision_label(r) != "fp32, CUDA graph"), "fp32")
    names = (("amp", amp_name), ("fp32", fp32_name))
    step_heading = timed_step_heading(timing)
    rows = []
    for compression, pair in sorted(runs.items()):
        t = timing.loc[compression] if compression in timing.index else None
        cells = {"compression": compression_text(compression)}
        for key, name in names:
            mb = memory.mb.get(compression, {}).get(key, math.nan)
            cells[(memory.heading, name)] = significant(mb) if math.isfinite(mb) else "–"
        for key, name in names:
            cells[(step_heading, name)] = "–" if t is None else time_cell(t[f"{key}_train_s"],
                                                                                  t[f"{key}_train_spread_s"], "")
        for key, name in names:
            run = pair.get(key)
            cells[(RUN_TIME, name)] = significant(run["train_s"]) if run is not None else "–"
        for key, name in names:
            run = pair.get(key)
            cells[("Top-1 (%)", name)] = one_decimal(run["top1"]) if run is not None else "–"
        rows.append(cells)
    frame = pd.DataFrame(rows).set_index("compression")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def amp_training_caption(table: pd.DataFrame, timing: pd.DataFrame, pruner: str) -> str:
    """Table J's caption after its letter (the notebook gives that), in a reader's words: the pruner, what the
    peak memory measures, how much training each timed pass holds, and the stand-in flag where its runs used
    synthetic data."""
    compared = amp_memory(table, timing)
    memory = compared.kind + {
        "runs": "", "process": (", during the run, of the process that trained it: that counts all the process "
                                "already held (its data, earlier runs, the libraries), so it is not compared between "
                                "the precisions"),
        "timed pass": (", above what its model and optimizer already held, measured for each precision in turn in one "
                       "process; a run's own peak, its process's resident set, is not shown, as it counts all the "
                       "process held")}[compared.source]
    size = int(timing["batch_size"].iloc[0])
    steps = _timed_steps(timing, "training step")
    trained = sorted({int(b) for b in table.get("train_batch_size", ())} - {size})
    if trained:  # a smaller timed step keeps an emulated bf16 pass short on a CPU without bf16 units
        steps += (f" (the runs trained on batches of {', '.join(map(str, trained))}: the time and memory ratios at "
                  "that size may differ)")
    repeats = timing[["fp32_train_repeats", "amp_train_repeats"]].to_numpy().astype(int)
    passes = f"{repeats.min()}" if repeats.min() == repeats.max() else f"{repeats.min()} to {repeats.max()}"
    return (f"{pruner_label(pruner, None)} on CIFAR-10 / ResNet20 with and without mixed precision "
            f"(peak memory: {memory}; time of the timed steps: {steps} per pass, median of {passes} passes ± half "
            "their range; whole run's training time: as the run recorded it, one measurement at its own moment "
            "(runs trained together as one network record their group's time); "
            "top-1: the one run's final test accuracy, n=1)"
            + stand_in_note(table))


#: Table K's peak memory heading, with what its ratios mean
MEMORY_RATIO = "memory AMP / fp32 (below 1: AMP uses less)"
#: Table K's time heading, with which way its ratios go: a time ratio, more is slower, unlike int8's speed-ups
TIME_RATIO = "time AMP / fp32 (above 1: AMP slower)"


def amp_relative_table(table: pd.DataFrame, timing: pd.DataFrame) -> pd.DataFrame:
    """Table K: AMP relative to fp32 per compression; the time ratio is of the interleaved medians, and
    "time difference" says whether a rank test of the timed passes tells them apart. Peak memory is Table J's
    (:func:`.amp_memory.amp_memory`); where that is the training process's resident set it is not compared and the
    column is left out. A time difference the same in every row is said once, in the caption
    (:func:`.table_notes.say_once`)."""
    runs = _runs_by_compression(table)
    memory = amp_memory(table, timing)
    rows = []
    for compression, pair in sorted(runs.items()):
        amp, fp32 = pair.get("amp"), pair.get("fp32")
        row = {"compression": compression_text(compression), MEMORY_RATIO: "–", TIME_RATIO: "–",
               "time difference": "not measured", "top-1 AMP - fp32 (points)": "–"}
        if amp is not None and fp32 is not None:
            row["top-1 AMP - fp32 (points)"] = change_text(amp["top1"] - fp32["top1"])
        if math.isfinite(ratio := memory.ratio(compression)):
            row[MEMORY_RATIO] = ratio_text(ratio)
        if compression in timing.index:
            t = timing.loc[compression]
            row[TIME_RATIO] = ratio_text(t["amp_train_s"] / t["fp32_train_s"])
            row["time difference"] = difference_text(Timing.from_summary(t, "amp_train"),
                                                     Timing.from_summary(t, "fp32_train"))
        rows.append(row)
    frame = say_once(pd.DataFrame(rows).set_index("compression"), ["time difference"])
    return frame if memory.compared else frame.drop(columns=MEMORY_RATIO)


def amp_relative_caption(table: pd.DataFrame) -> str:
    """Table K's caption after its letter: what its ratios are of (:data:`.table_notes.UNROUNDED_RATIOS`), the timing
    rule, the rounding note where a top-1
    change differs from Table J's cells (:func:`top1_rounding_note`) and the stand-in flag."""
    pairs = [(pair["amp"]["top1"], pair["fp32"]["top1"]) for pair in _runs_by_compression(table).values()
             if {"amp", "fp32"} <= pair.keys()]
    return ("Mixed precision relative to fp32; " + UNROUNDED_RATIOS + "; " + TIMING_RULE
            + top1_rounding_note(pairs) + stand_in_note(table))


def int8_comparison_caption(int8: pd.DataFrame) -> str:
    """Table L's caption after its letter, up to the machine: what it compares, and the rounding note where a top-1
    change differs from the row's cells (:func:`top1_rounding_note`)."""
    pairs = zip(int8["int8 top-1 (%)"], int8["fp32 top-1 (%)"])
    return ("int8 against fp32 on the CPU: test-set top-1 and size on disk (fp32 dense, fp32 keeping only the kept "
            "weights and their positions, int8 with pruned weights stored as 0); Table L2 gives the times"
            + top1_rounding_note(pairs) + ".")


#: Table L's name of each int8 path, by a record's ``int8_method``
INT8_PATH_NAMES = {"pt2e": "PT2E", "eager": "torch.ao eager", "fx": "torch.ao FX", "torch.ao": "torch.ao"}


def int8_path_cell(method: str, fallback: str | None) -> str:
    """Table L's "int8 path" cell: the path's name, with "(PT2E failed)" where the run fell back to it. Why PT2E
    failed is said once, in the findings (:func:`.int8_findings.uncompiled_reason`), not in every row."""
    name = INT8_PATH_NAMES.get(method, method)
    return f"{name} (PT2E failed)" if isinstance(fallback, str) and fallback else name  # NaN: none recorded


def int8_comparison_table(int8: pd.DataFrame) -> pd.DataFrame:
    """Table L, accuracy and size: :func:`.tables.int8_table`'s kept weights, int8 path, top-1s and their change,
    the three sizes and whether pruned weights stayed zero, sizes to 3 significant digits, accuracies to one
    decimal and compressions as 0.25 (the times are Table L2's, :func:`int8_timing_table`); a path or a zero check the
    same in every row is said once, in the caption (:func:`.table_notes.say_once`)."""
    rows = []
    for (setup, compression), r in int8.iterrows():
        rows.append({
            "setup": setup, "compression": compression_text(compression),
            "kept weights (fraction)": significant(r["kept weights"]),
            "int8 path": int8_path_cell(r["int8 method"], r["int8 fallback"]),
            "fp32 top-1 (%)": one_decimal(r["fp32 top-1 (%)"]), "int8 top-1 (%)": one_decimal(r["int8 top-1 (%)"]),
            "top-1 int8 - fp32 (points)": change_text(-r["drop (points)"]),  # signed as Table K
            "fp32 dense (KB)": significant(r["fp32 dense (KB)"]),
            "fp32 sparse (KB)": significant(r["fp32 sparse (KB)"]),
            "int8 (KB)": significant(r["int8 (KB)"]),
            "pruned weights zero in int8": {True: "yes", False: "NO"}.get(r["pruned weights zero in int8"], "–"),
        })
    frame = pd.DataFrame(rows).set_index(["setup", "compression"])
    return say_once(frame, ["int8 path", "pruned weights zero in int8"])


#: Table L2's upper headings: the three times, and int8 against each fp32 side
INT8_TIMES, OVER_EAGER, OVER_COMPILED = "inference time (ms)", "int8 over fp32 eager", "int8 over fp32 compiled"


def int8_timing_caption(int8: pd.DataFrame) -> str:
    """Table L2's caption after its letter, up to the machine: what each speed-up compares (:func:`.tables.
    int8_sides` for the eager one), that the compiled one has compiling on both sides (and what its "–" means,
    where a row shows one), how times are given, the timing rule, and where a side's times moved with the machine's
    load between rows, that each row's ratios hold (:func:`int8_load_note`)."""
    untimed = any(not math.isfinite(t.median) for t in int8["fp32 compiled timing"])
    dash = "; – where no compiled fp32 was timed (the discussion says why)" if untimed else ""
    return ("int8 against fp32 test-set inference time on the CPU, the three timed in turn in one process (times: "
            f"median of n passes ± half their range). Over fp32 eager: {int8_sides(int8)}. Over fp32 compiled: "
            "against the same fp32 model run through torch.compile with inductor freezing, as PT2E runs its int8 "
            f"graph, so compiling is on both sides and the ratio is what int8 buys beyond it{dash}. A speed-up is "
            f"fp32's median over int8's ({UNROUNDED_RATIOS}); " + TIMING_RULE + "." + int8_load_note(int8))


def int8_load_note(int8: pd.DataFrame) -> str:
    """Where a side's times moved with the machine's load between a set-up's rows (:func:`.int8_findings.
    load_spreads`), a sentence after a space: each row's times were taken in turn, so its ratios hold under its
    moment's load while its times differ from other rows' by that load; "" where none did."""
    by_setup: dict[str, list[str]] = {}
    for side, setup, low, high in load_spreads(int8):
        by_setup.setdefault(setup, []).append(f"{side} {significant(low)} to {significant(high)} ms")
    if not by_setup:
        return ""
    quoted = "; ".join(f"{setup}: {', '.join(sides)}" for setup, sides in by_setup.items())
    return (f" Across a set-up's rows a side's median moved by over {NOISY_DENSE:.0%} of its fastest ({quoted}), "
            "though each side does the same arithmetic at every compression (pruned weights are zeros still "
            "multiplied): each row's three times were taken in turn, so its ratios hold under the machine's load at "
            "that moment, while its times differ from other rows' by that load.")


def _int8_time(median_ms: float, spread_ms: float) -> str:
    return "–" if not math.isfinite(median_ms) else time_cell(median_ms, spread_ms, "")


def int8_timing_table(int8: pd.DataFrame) -> pd.DataFrame:
    """Table L2, inference time: per row of :func:`.tables.int8_table`, fp32 eager, fp32 compiled and int8 times
    (median ± half range, ms), int8's speed-up over each fp32 side with whether a rank test of the passes tells the
    two apart (:func:`difference_text`), and the passes; "–" for the compiled side where it was not timed. A time
    difference or a count of passes the same in every row is said once, in the caption
    (:func:`.table_notes.say_once`)."""
    rows = []
    for (setup, compression), r in int8.iterrows():
        compiled = r["fp32 compiled timing"]
        rows.append({
            "setup": setup, "compression": compression_text(compression),
            (INT8_TIMES, "fp32 eager"): _int8_time(r["fp32 inference (ms)"], r["fp32 inference spread (ms)"]),
            (INT8_TIMES, "fp32 compiled"): _int8_time(r["fp32 compiled inference (ms)"],
                                                      r["fp32 compiled inference spread (ms)"]),
            (INT8_TIMES, "int8"): _int8_time(r["int8 inference (ms)"], r["int8 inference spread (ms)"]),
            (OVER_EAGER, "speed-up"): ratio_text(r["speedup"]),
            (OVER_EAGER, "time difference"): difference_text(r["int8 timing"], r["fp32 timing"]),
            (OVER_COMPILED, "speed-up"): ratio_text(r["speedup over compiled"]),
            (OVER_COMPILED, "time difference"): (difference_text(r["int8 timing"], compiled)
                                                 if math.isfinite(compiled.median) else "–"),
            ("passes", ""): r["timing repeats"],
        })
    frame = pd.DataFrame(rows).set_index(["setup", "compression"])
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return say_once(frame, [(OVER_EAGER, "time difference"), (OVER_COMPILED, "time difference"), ("passes", "")])
