"""Each task's result in one paragraph, for the front page: what a reader would quote, with its spread and
the data it came from, and nothing claimed that the numbers do not support.

As in :mod:`.findings`, each result is first a frozen dataclass of figures and verdicts
(:func:`tuning_key`, :func:`.tracing_findings.trace_result`, :func:`quantization_key`), then worded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.timing import TOO_FEW, can_differ
from .amp_memory import AmpMemory, amp_memory
from .collapse_study import claim_verdict, studied_claims
from .collapses import CollapsedCell
from .findings import PrunerRanking, collapses, pruner_ranking
from .int8_findings import Int8Setup, compiling_words, int8_setups, top1_words, uncompiled_words, wide_words
from .numbers import (
    AT_CHANCE,
    accuracy_cell,
    alike,
    compression_text,
    counted,
    head_start_words,
    listed,
    ratio_text,
)
from .sparse_speed import LeftOut, sparse_counts
from .sparse_tables import NOISY_MARK
from .speed_findings import AmpTimes, amp_time_summary, amp_times
from .speed_top1 import near_key_words
from .trace_kernels import conv_fix_words
from .tracing_findings import SINK_FIXES, TraceResult, trace_result


@dataclass(frozen=True)
class SetupKey:
    """One set-up on real data at the front page's compression: its pruners ranked (with the dense pre-training
    epochs of each pruner that had any, Mag's, as the lab notes prescribe), the unpruned network's top-1 per seed
    (None when not run) and its training epochs, and the pruners whose networks had a layer emptied there."""

    ranking: PrunerRanking
    reference: tuple[float, ...] | None
    emptied: tuple[CollapsedCell, ...]
    reference_epochs: int | None = None


@dataclass(frozen=True)
class TuningKey:
    """Task 1 on the front page: a :class:`SetupKey` per real set-up with runs at ``compression``, and the
    set-ups on synthetic stand-in data (pipeline checks, nothing to quote)."""

    compression: float
    setups: tuple[SetupKey, ...]
    stand_in: tuple[str, ...]


def tuning_key(table: pd.DataFrame, compression: float = 1.0, dense: pd.DataFrame | None = None) -> TuningKey:
    """The :class:`TuningKey` of the pruned runs in ``table`` and the unpruned ones in ``dense``."""
    references = ({setup: tuple(float(v) for v in rows["top1"]) for setup, rows in dense.groupby("setup")}
                  if dense is not None else {})
    reference_epochs = ({setup: int(rows["post_epochs"].max()) for setup, rows in dense.groupby("setup")}
                        if dense is not None and "post_epochs" in dense else {})
    setups = []
    for setup, rows in table.groupby("setup", sort=False):
        rows = rows[np.isclose(rows["compression"], compression)]
        if rows.empty or rows["stand_in"].any():
            continue
        ranking = pruner_ranking(rows)  # with each pruner's pre-training epochs, as the findings rank it
        setups.append(SetupKey(ranking, references.get(setup), collapses(rows).emptied,
                               reference_epochs.get(setup)))
    return TuningKey(compression, tuple(setups), tuple(sorted(set(table.loc[table["stand_in"], "setup"]))))


def tuning_key_result(table: pd.DataFrame, compression: float = 1.0, dense: pd.DataFrame | None = None,
                      sparse: pd.DataFrame | None = None) -> str:
    """Task 1's result for the front page as a Markdown list (:func:`tuning_key`): per set-up on real data, the
    unpruned reference, the best pruner at ``compression`` and every pruner that cannot be told apart from it
    (Welch's t-test, Holm-adjusted), or the runner-up it is ahead of, any collapse, the collapse study's
    verdict on the SynFlow paper's claim, and, given the sparse table (:func:`.tables.sparse_table`), whether
    pruning bought any speed (:func:`speed_key_words`)."""
    key = tuning_key(table, compression, dense)
    if not key.setups:
        if key.stand_in:
            return "Every run here used synthetic stand-in data: a pipeline check, with no result to quote."
        return f"No run on real data at compression {compression_text(compression)}: no result to quote."
    parts = [_setup_words(s, compression) for s in key.setups]
    parts += [f"Collapse study on {claim.setup}, the SynFlow paper's claim (iterative SynFlow stays above chance up "
              f"to the highest compression, while SNIP and GraSP fall to chance earlier): {claim_verdict(claim)}"
              for claim in studied_claims(table)]
    if sparse is not None:
        parts += speed_key_words(sparse, dense)
    if key.stand_in:
        parts.append(f"{', '.join(key.stand_in)}: synthetic stand-in data, a pipeline check only.")
    return "\n".join(f"- {part}" for part in parts)  # a point each: one paragraph of them was not followable


def speed_key_words(sparse: pd.DataFrame, dense: pd.DataFrame | None = None) -> list[str]:
    """Per set-up on real data, whether pruning bought speed: on dense kernels a pruned network does the
    same work, so only the sparse kernels can gain. The runs are counted as the findings count them
    (:func:`.sparse_speed.sparse_counts`): of the runs compared, those that gain (:func:`.sparse_tables.sparse_gains`),
    and how many were left out because their ratio is noise (:func:`.sparse_tables.left_out`: said, so that a reader
    does not take them for a missed gain); given the unpruned runs (``dense``), the gains of the runs whose own top-1
    stayed near theirs apart from those far below it (:func:`.speed_top1.near_key_words`); where the passes are too
    few for the rank test, that is said instead."""
    words = []
    for c in sparse_counts(sparse, dense):
        if c.stand_in:
            continue
        if not can_differ(c.repeats, c.repeats):
            speed = f"and whether sparse kernels gain cannot be said: {c.repeats} passes each, {TOO_FEW}"
        elif c.by_top1 is not None:
            speed = f"and on sparse kernels, {near_key_words(c.by_top1, c.tested)}"
        elif c.working_speedup is not None:
            speed = (f"and on sparse kernels {c.gains} of its {counted(c.tested, 'run')} compared ran "
                     f"{c.working_speedup.words(ratio_text)} as fast, beyond the passes' noise, "
                     "while still above chance")
        else:
            speed = "and no run still above chance ran faster on sparse kernels beyond the passes' noise"
        words.append(f"Speed on {c.setup}: a pruned network's dense kernels do the same work at every compression, "
                     f"{speed}{_left_out_words(c.left_out)}; Tables C and C2 give the times.")
    return words


def _left_out_words(out: LeftOut) -> str:
    """" (2 runs left out, their ratios noise: 1 run whose sparse model is the dense one and 1 other whose dense time
    Table C marks as noise)", or nothing where none is left out. "Other": Table C marks some same-model runs too."""
    if not out.runs:
        return ""
    why = ([f"{counted(out.same_runs, 'run')} whose sparse model is the dense one"] if out.same_runs else []) + (
        [f"{out.noisy_runs} {'other' if out.same_runs else 'run'}{'s' if out.noisy_runs != 1 else ''} whose dense "
         f"time Table C marks {NOISY_MARK} as noise"]
        if out.noisy_runs else [])
    return (f" ({counted(out.runs, 'run')} left out, {'its ratio' if out.runs == 1 else 'their ratios'} noise: "
            f"{listed(why)})")


def _setup_words(s: SetupKey, compression: float) -> str:
    r = s.ranking
    text = f"**{r.setup}** ({r.data})"
    if s.reference is not None:
        epochs = f" after {counted(s.reference_epochs, 'epoch')}" if s.reference_epochs else ""
        text += f": unpruned {accuracy_cell(s.reference)} top-1{epochs}"
    at, best = f"; at compression {compression_text(compression)}", accuracy_cell(r.best.top1)
    second = r.runner_up
    if r.all_tied:
        text += f"{at} every pruner has the same mean top-1, {best}"
    elif r.joint_best:
        text += f"{at} the best mean top-1, {best}, is shared by {r.leaders}"
    else:
        text += f"{at} the best mean top-1 is {r.best.label}'s, {best}"
        # a budget the others did not have: said where it could explain the lead, as the findings say it
        if head := head_start_words(dict(r.pre_epochs), r.best.label, [c.other.label for c in r.others]):
            text += f" ({head})"
    if second is not None and not r.joint_best:
        # every pruner the test does not separate from the best is named, not the runner-up alone: a reader
        # would take the ones left out as beaten
        close = sorted((c for c in (*r.tied, *r.untestable) if c not in r.above_chance_only),
                       key=lambda c: -c.other.mean)
        cell = f"{second.other.label} ({accuracy_cell(second.other.top1)})"
        if close:
            text += ", not told apart from " + listed(
                [f"{c.other.label} ({accuracy_cell(c.other.top1)})" for c in close]) + " at this n"
        elif second in r.above_chance_only:
            text += f"; {cell} is {AT_CHANCE} in every seed, where {r.best.label} stays above chance"
        else:
            text += f", ahead of {cell}"
    if s.emptied:
        text += "; collapsed (a layer emptied): " + ", ".join(f"{e.label} at {e.top1_text}" for e in s.emptied)
    return text + "."


def trace_key_result(summary: Mapping, designs: pd.DataFrame, data: str, sparse: pd.DataFrame | None = None) -> str:
    """Task 2: where the traced inference step's time goes, what would cut it (for the convolutions, with what Task
    1's sparse kernels measured on the set-up where ``sparse``, :func:`.trace_kernels.setup_sparse_table`, has runs),
    and what folding the masks (the lab notes' proposed fix) measured (:func:`.tracing_findings.trace_result` of the
    record's summary and design table)."""
    result = trace_result(summary, designs)
    s = result.summary
    conv_ms, busy_ms = alike(s.conv_ms, s.busy_ms)
    load = ("; one step, traced under a different load than Table G's timed steps, so the picture of that step"
            if result.load_differs else "")
    if s.main_sink == "convolution":
        fix = f". {conv_fix_words(sparse)} "
    else:
        fix = (f", and cutting it would take {SINK_FIXES[s.main_sink]}. " if s.main_sink in SINK_FIXES else ". ")
    return (f"One traced inference step ({data}): its {s.conv_layers} convolution layers take "
            f"{conv_ms} ms of {busy_ms} ms busy time "
            f"(**{s.conv_share:.1%}**{load}); the main time sink is {s.main_sink}{fix}" + _fold_words(result))


def _fold_words(result: TraceResult) -> str:
    """The fix the lab notes proposed, folding the masks into the weights, as Table G measured it."""
    single = " (one traced step too)" if result.load_differs else ""
    share = (f"Folding the masks into the weights, the fix the lab notes proposed, removes the mask multiplies: "
             f"{result.mask_share:.1%} of the original design's traced busy time{single}")
    speed = result.speed
    if speed is None:
        return share + "."
    steps = f"{min(speed.original.repeats, speed.folded.repeats)} steps of each taken in turn (Table G)"
    if not speed.differ:
        return f"{share}; over {steps} neither design is measurably faster."
    faster = "folded masks" if speed.folded_faster else "the original design"
    return (f"{share}; over {steps} {faster} ran faster, the original design's step taking "
            f"**{ratio_text(speed.against_folded)}** folded's time.")


@dataclass(frozen=True)
class QuantizationKey:
    """Task 4 on the front page: the mixed precision dtype, the data, peak memory as Table J compares it, the
    interleaved training times (None when not measured), and int8 against fp32 per set-up, those on real data first
    (none where no int8 table was given)."""

    dtype: str
    data: str
    memory: AmpMemory
    times: AmpTimes | None
    int8: tuple[Int8Setup, ...] = ()


def quantization_key(table: pd.DataFrame, timing: pd.DataFrame, int8: pd.DataFrame | None = None) -> QuantizationKey:
    """The :class:`QuantizationKey` of the AMP records, their interleaved times
    (:func:`.measurement_tables.amp_timing_frame`) and the int8 table (:func:`.tables.int8_table`)."""
    setups = () if int8 is None or int8.empty else tuple(sorted(int8_setups(int8), key=lambda s: s.stand_in))
    return QuantizationKey(", ".join(sorted(set(table.loc[table["amp"], "amp_dtype"]))),
                           "; ".join(sorted(set(table["data"]))), amp_memory(table, timing),
                           amp_times(timing) if len(timing) else None, setups)


def quantization_key_result(table: pd.DataFrame, timing: pd.DataFrame, int8: pd.DataFrame | None = None) -> str:
    """Task 4 (:func:`quantization_key`): what mixed precision does to peak memory and training time, the time
    judged by a rank test of passes taken in turn, and, given the int8 table, what int8 buys
    (:func:`int8_key_words`)."""
    key = quantization_key(table, timing, int8)
    time = f"; {amp_time_summary(key.times)}" if key.times is not None else ""
    memory = (f"{key.memory.subject} {key.memory.ratios.words(ratio_text)} fp32's" if key.memory.compared else
              "peak memory not compared (on the CPU it is the resident set of the process that trained the run)")
    parts = [f"Mixed precision ({key.dtype}; {key.data}): {memory}{time}.", *int8_key_words(key.int8)]
    return "\n".join(f"- {part}" for part in parts)  # a point each, as Task 1's


def int8_key_words(setups: tuple[Int8Setup, ...]) -> list[str]:
    """A point per set-up on int8 CPU inference: its speed-up over fp32 compiled as PT2E's graph is (compiling on
    both sides) and over fp32 run eagerly, each with the rank test's verdict, the faster fp32 first (eager where
    compiling made fp32 slower in every run), and its top-1 change (on stand-in data the times alone: a kernel does the
    same work whatever the pixels, but top-1 means nothing); then, where compiling alone moved fp32's time beyond the
    noise, which way (:func:`.int8_findings.compiling_words`), and why a run within the noise whose ratio is as large as
    one told apart is not (:func:`.int8_findings.wide_words`)."""
    points = []
    for s in setups:
        compiled = (f"over fp32 compiled as PT2E compiles int8 (compiling on both sides), {s.compiled.words()}"
                    + (f"; {uncompiled_words(s)}" if s.uncompiled else "") if s.compiled.runs else uncompiled_words(s))
        eager = f"over fp32 run eagerly, {s.eager.words()}"
        accuracy = ("its images are generated, so only the times hold (a kernel does the same work whatever the "
                    "pixels)" if s.stand_in else top1_words(s))
        eager_faster = s.compiling.runs > 0 and len(s.compiling.slower) == s.compiling.runs
        speeds = f"{eager}; {compiled}" if eager_faster else f"{compiled}; {eager}"
        point = f"int8 CPU inference on {s.setup}: {speeds}; {accuracy}."
        points.append(" ".join(words for words in (point, compiling_words(s), wide_words(s)) if words))
    return points
