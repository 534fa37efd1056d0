"""What a finished training run writes into its record: the summary (accuracy, densities, FLOPs, timings,
precision and memory), the trace files where asked, and the files of the record itself; and the lines that report
it. :mod:`.singleshot` decides when; this module decides what."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd

from ..core.choices import ABLATION_RULES, CHANCE_RULE, MASK_RULES, no_better_than_chance
from ..core.evaluation import Precision, epoch_timing, time_inference
from ..core.measure import summary_totals
from ..core.pruners import PruneResult
from ..core.timing import MIN_REPEATS
from ..data.catalog import source_words
from ..precision.amp import amp_name, make_scaler
from ..precision.memory import PeakMemory
from .config import RunConfig
from .prepare import environment
from .run_state import RunOutcome, RunState
from .store import (
    RunRecord,
    Writer,
    csv_writer,
    json_writer,
    torch_writer,
)

#: warm-up steps before the profiled inference step (the original tool's choice)
TRACE_WARMUP = 5
#: timed passes over the test set for a record's inference time (after one warm-up pass)
INFERENCE_REPEATS = MIN_REPEATS
#: timed steps of each design, taken in turn, for the traced before / after numbers
TRACE_REPEATS = 10



def trace_files(config: RunConfig, model, test_loader, scratch: Path, summary: dict, log) -> dict:
    """Trace inference steps on a test batch, ours and the original design
    (:func:`~prunelab.core.trace.compare_designs`); add the analysis to ``summary`` and return the record's extra
    files."""
    from ..core.trace import PROFILED_STEPS, compare_designs

    log(f"Tracing {PROFILED_STEPS} inference steps on a test batch after {TRACE_WARMUP} warm-up steps (the median "
        f"one analysed); timing "
        f"{TRACE_REPEATS} steps of each design in turn.")
    inputs, _ = next(iter(test_loader))
    comparison = compare_designs(model, inputs, scratch, warmup=TRACE_WARMUP, repeats=TRACE_REPEATS)
    summary["trace"] = {**comparison.ours.summary(), "batch": int(inputs.shape[0]), "warmup": TRACE_WARMUP,
                        "profiled_steps": PROFILED_STEPS,
                        "outputs_equal_to_original_design": comparison.outputs_equal,
                        "original_design": comparison.original.summary()}
    summary["design_steps"] = comparison.timing_summary()
    return {"trace.json": _copy_writer(scratch / "trace.json"),
            "trace_original_design.json": _copy_writer(scratch / "trace_original_design.json"),
            "trace_conv_layers.csv": csv_writer(comparison.ours.conv_layers()),
            "trace_breakdown.csv": csv_writer(comparison.ours.breakdown()),
            "trace_designs.csv": csv_writer(comparison.table())}


def _copy_writer(source: Path):
    return lambda path: shutil.copyfile(source, path)


def record_files(run: RunState, outcome: RunOutcome) -> dict[str, Writer]:
    """The record's files of every run: its configuration, outcome, environment and trained model."""
    return {
        "config.json": json_writer(run.config.to_dict()),
        "summary.json": json_writer(outcome.summary),
        "env.json": json_writer(environment(run.device, run.data.source)),
        "epochs.csv": csv_writer(outcome.epochs),
        "layers.csv": csv_writer(outcome.layers),
        "masks.pt": torch_writer(outcome.masks),
        "mask_audit.csv": csv_writer(outcome.audit),
        "model.pt": torch_writer({k: v.detach().cpu() for k, v in run.model.state_dict().items()}),
    }


def run_summary(run: RunState, epochs: pd.DataFrame, layers: pd.DataFrame, result: PruneResult | None) -> dict:
    """The record's summary of ``run``'s data, the last epoch's evaluation, the training time, the last
    pruning's ``result`` (None: not pruned) and the kept parameters and FLOPs of ``layers``."""
    config, data = run.config, run.data
    totals = summary_totals(layers)
    final = epochs.iloc[-1] if len(epochs) else None
    def value(column):
        return float(final[column]) if final is not None else math.nan
    return {
        "config_hash": config.config_hash(),
        "data_source": data.source, "stand_in": data.stand_in, "data": source_words(config.dataset, data.source),
        "train_examples": data.train_examples, "test_examples": data.test_examples,
        "top1": value("top1"), "top5": value("top5"), "test_loss": value("test_loss"),
        "inference_s": value("inference_s"), "train_s": float(epochs["train_s"].sum()) if len(epochs) else 0.0,
        "train_s_per_epoch": float(epochs.loc[epochs["epoch"] > 0, "train_s"].mean()) if len(epochs) else math.nan,
        "epochs_done": int((epochs["epoch"] > 0).sum()) if len(epochs) else 0,
        "majority_class_top1": data.majority_class_top1,
        "rounds": result.rounds if result else 0, "ablation_rules": ABLATION_RULES, "mask_rules": MASK_RULES,
        "kept": result.kept if result else None, "prunable": result.total if result else None,
        "prunable_density": result.density if result else 1.0,
        "collapsed_layers": result.collapsed if result else [],
        "vanished_layers": result.vanished if result else [],
        "param_density": totals["param_density"], "params_kept": totals["params_kept"],
        "params_total": totals["params_total"], "flop_density": totals["flop_density"],
        "flops": totals["flops_kept"], "flops_total": totals["flops_total"],
    }


def timing_summary(run: RunState, epochs: pd.DataFrame) -> dict:
    """Test-set inference timed apart from the accuracy pass (median of repeated passes after a warm-up)
    and training seconds per epoch, each with its spread (slowest minus fastest) and count."""
    run.log(f"Timing inference over the test set: {INFERENCE_REPEATS} passes after a warm-up pass.")
    inference = time_inference(run.model, run.data.test, run.device, run.precision, INFERENCE_REPEATS)
    return {**inference.summary("inference"), **epoch_timing(epochs).summary("epoch_train")}


def tracking_peak_memory(device, peaks: list[PeakMemory]) -> PeakMemory:
    """A ``PeakMemory`` for one training phase, kept in ``peaks`` (pruning in between is not counted)."""
    peaks.append(PeakMemory(device))
    return peaks[-1]


def precision_summary(amp: Precision, scaler, peaks: list[PeakMemory], resumed: bool) -> dict:
    """How the run was computed and what training cost: precision, peak memory, time per epoch."""
    measured = [p.peak_mb for p in peaks if math.isfinite(p.peak_mb)]
    return {
        "amp": amp.mixed, "amp_dtype": amp_name(amp),
        "grad_scaler": scaler.is_enabled(),
        "peak_memory_mb": max(measured) if measured else math.nan,
        # what was already held when training began (on a GPU: the model and the data split on the device)
        "peak_memory_start_mb": peaks[0].start_mb if peaks else math.nan,
        "peak_memory_kind": peaks[0].kind if peaks else "",
        "peak_memory_block_only": all(p.block_only for p in peaks) if peaks else False,
        "peak_memory_since_resume": resumed,
    }


def announce_amp(amp: Precision, device, log) -> None:
    if amp.mixed:
        scaler = "with" if make_scaler(amp, device).is_enabled() else "without"
        log(f"Mixed precision: {amp_name(amp)} autocast on {device.type}, {scaler} a gradient scaler.")


#: the layer table's columns ``--verbose`` prints at the end of a run (the original's "Prune results")
LAYER_TABLE_COLUMNS = ["module", "param", "shape", "size", "density", "flops", "score mean", "score abs sum",
                       "prunable"]


def report_run(record: RunRecord, verbose: bool, log) -> None:
    """A training record's results in a few lines (after the run, or when the command reuses the record); with
    ``verbose`` first its layer table."""
    summary = record.summary
    if verbose:
        log("Layers:\n" + record.layers[LAYER_TABLE_COLUMNS].to_string(index=False, float_format="{:.4g}".format))
    if summary.get("stand_in"):
        log("WARNING: these results come from SYNTHETIC stand-in data, not the real data set.")
    log(f"Parameter density: {summary['params_kept']:,}/{summary['params_total']:,} "
        f"({summary['param_density']:.4f})   FLOPs: {summary['flops']:,}/{summary['flops_total']:,} "
        f"({summary['flop_density']:.4f})")
    log(f"Test top-1 {summary['top1']:.2f}%  top-5 {summary['top5']:.2f}%  loss {summary['test_loss']:.4f}  "
        f"inference over the test set {summary['inference_s']:.3f} s  [{_status_words(summary)}]")
    chance = summary.get("majority_class_top1")
    if isinstance(chance, float) and no_better_than_chance(summary["top1"], chance):
        log(f"WARNING: top-1 is at chance, {CHANCE_RULE} ({chance:.2f}%).")
    log(f"Record: {record.path}")


def _status_words(summary: dict) -> str:
    """A run's status; a diverged run's with why and where, since its figures are its last evaluation's."""
    if summary["status"] != "diverged":
        return summary["status"]
    return f"diverged: {summary['message']}; these figures are from the evaluation before"
