"""A training run end to end: data, model, pre-train, prune, post-train, one result record.

Single-shot prunes once. Multishot (``levels`` cycles, the lottery-ticket procedure) pre-trains, prunes
to ``compression * (cycle + 1) / levels``, rewinds the kept weights to their initial values and resets the
optimizer, ``levels`` times, then post-trains; the original tool's rewind filtered the saved weights on
``requires_grad``, which a state dict never has, so it kept the trained weights.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.layout import uses_channels_last
from ..core.measure import count_flops, layer_summary, summary_totals
from ..core.pruners import PruneResult, PruneSettings, prune
from ..core.timing import MIN_REPEATS
from ..core.train import (
    TrainingDiverged,
    epoch_timing,
    epochs_frame,
    graph_obstacle,
    load_optimizer_state,
    make_optimizer,
    time_inference,
    train_eval_loop,
)
from ..data.catalog import DatasetInfo, source_words
from ..data.run_data import RunData
from ..models.layers import apply_masks, keep_pruned_at_zero, masked_parameters, trainable_parameters
from ..precision.amp import AmpSettings, amp_name, amp_settings, autocast_factory, make_scaler
from ..precision.memory import PeakMemory
from .checkpoint import RunCheckpoint
from .config import RunConfig
from .prepare import RunLog, environment, load_run_data, prepare, reused_record, run_checkpoint
from .store import (
    RunRecord,
    check_writable,
    csv_writer,
    json_writer,
    load_record,
    record_path,
    torch_writer,
    usable_record,
    write_record,
)

#: warm-up steps before the profiled inference step (the original tool's choice)
TRACE_WARMUP = 5
#: timed passes over the test set for a record's inference time (after one warm-up pass)
INFERENCE_REPEATS = MIN_REPEATS
#: timed steps of each design, taken in turn, for the traced before / after numbers
TRACE_REPEATS = 10
#: what a checkpoint must hold to be resumed from (one without them is ignored and the run starts over)
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng_cpu", "loader_epoch", "rows", "phase", "done",
                   "prune")


@dataclass
class RunState:
    """What a training run holds from its start to its record: the configuration, the model about to be
    pruned, its data, where it runs and in which precision, its checkpoint, and how it reports."""

    config: RunConfig
    checkpoint: RunCheckpoint
    model: torch.nn.Module
    settings: PruneSettings
    device: torch.device
    amp: AmpSettings
    info: DatasetInfo
    data: RunData
    channels_last: bool
    progress: bool
    log: RunLog  # its lines become the record's log.txt


def run_training(config: RunConfig, progress: bool = True, log: Callable[[str], None] = print) -> RunRecord:
    """Run one single-shot or multishot experiment and return its record; reuse a usable record unless forced.

    Anything a person can get wrong raises :class:`UserError` before a file is written, and the record
    appears only once it is complete. The run checkpoints after every epoch and, started again after
    being killed, resumes from its last finished epoch and ends with the same record.
    """
    config.validate()
    existing = reused_record(config, log)
    if existing is not None:
        return existing
    run_log = RunLog(log)
    with run_log.warnings():
        return _start(config, progress, run_log)


def _start(config: RunConfig, progress: bool, log: RunLog) -> RunRecord:
    device, info, model, settings = prepare(config)
    amp = amp_settings(device, config.quantization, config.amp_dtype)
    check_writable(config.result_dir)
    _announce_amp(amp, device, log)
    log(f"Loading {config.dataset} dataset ({config.data_source}).")
    channels_last = uses_channels_last(model)
    data = load_run_data(config, device, channels_last)
    log(f"Data: {source_words(config.dataset, data.source)}, {data.train_examples:,} training and "
        f"{data.test_examples:,} test examples.")
    checkpoint = run_checkpoint(config, data.source)
    checkpoint.acquire()
    try:
        if config.force:
            checkpoint.discard_state()  # --force computes afresh: nothing is resumed
        else:
            existing = usable_record(config)  # finished by another process since the look above
            if existing is not None:
                checkpoint.remove()  # whatever state is left beside a complete record is stale
                return existing
        return _run(RunState(config, checkpoint, model, settings, device, amp, info, data, channels_last, progress,
                             log))
    finally:
        checkpoint.release()
        checkpoint.discard_if_empty()


def _run(run: RunState) -> RunRecord:
    config, checkpoint, model, settings, device, amp = (run.config, run.checkpoint, run.model, run.settings,
                                                        run.device, run.amp)
    data, progress, log = run.data, run.progress, run.log
    log(f"Created {config.model} model ({config.model_class}) on {device}.")
    if run.channels_last:
        model.to(memory_format=torch.channels_last)
    capturable = _wants_graph(config, device)
    optimizer, scheduler = _fresh_optimizer(config, model, capturable)
    train_loader, test_loader = data.train, data.test
    scaler = make_scaler(amp, device)
    graph_note = graph_obstacle(device, optimizer, amp.enabled) if capturable else None
    loop = dict(device=device, verbose=config.verbose, show_progress=progress, scaler=scaler,
                autocast=autocast_factory(amp, device),
                cuda_graph=capturable and graph_note is None)
    if capturable:
        log("Training steps replay a CUDA graph of the step (--no-cuda-graphs: ordinary steps)." if graph_note is None
            else f"Training steps are ordinary steps: {graph_note}.")
    cycles, multishot = config.cycles, config.experiment == "multishot"
    # multishot rewinds to these after every prune (the lottery-ticket procedure; the original meant to)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()} if multishot else None

    rows: list[dict] = []
    result: PruneResult | None = None
    phase, cycle, done = "pre", 0, -1
    state = checkpoint.load(CHECKPOINT_KEYS)
    if state is not None:
        phase, cycle, done, rows, result, initial = _restore(state, model, optimizer, scheduler, scaler,
                                                             train_loader, settings, initial)
        log(f"Resuming from the checkpoint after {phase}-training epoch {max(done, 0)}.")

    def save(now_phase: str, now_cycle: int, epoch: int) -> None:
        checkpoint.save(_state(model, optimizer, scheduler, scaler, train_loader, rows, now_phase, now_cycle, epoch,
                               result, initial))

    status, message = "complete", ""
    peaks: list[PeakMemory] = []
    try:
        while phase == "pre":
            label = f"pre{cycle + 1}" if multishot else "pre"
            log(f"Pre-train for {config.pre_epochs} epochs" + (f" (cycle {cycle + 1} of {cycles})." if multishot
                                                                else "."))
            with _peak_memory(device, peaks):
                train_eval_loop(model, optimizer, scheduler, train_loader, test_loader, epochs=config.pre_epochs,
                                phase=label, rows=rows, done=done,
                                after_epoch=lambda e, c=cycle: save("pre", c, e), **loop)
            cycle_settings = dataclasses.replace(settings, compression=config.compression * (cycle + 1) / cycles)
            result = _prune(config, cycle_settings, model, data, progress, log)
            if initial is not None and not settings.reinitialize:  # --reinitialize: fresh weights, no ticket
                _rewind(model, initial)
                optimizer, scheduler = _fresh_optimizer(config, model, capturable)
                loop["scaler"] = scaler = make_scaler(amp, device)
            cycle, done = cycle + 1, -1
            phase = "pre" if cycle < cycles else "post"
            save(phase, cycle, -1)
        log(f"Post-train for {config.post_epochs} epochs.")
        with _peak_memory(device, peaks):
            train_eval_loop(model, optimizer, scheduler, train_loader, test_loader, epochs=config.post_epochs,
                            phase="post", rows=rows, done=done, after_epoch=lambda e: save("post", cycle, e), **loop)
    except TrainingDiverged as err:
        status, message = "diverged", f"{err} (phase {phase}, after {len(rows)} rows)"
        log(f"STOPPED: {message}.")

    layers = layer_summary(model, count_flops(model, run.info.input_shape, device), result.scores if result else {})
    epochs = epochs_frame(rows)
    summary = _summary(config, data, epochs, layers, result, status, message)
    summary.update(_precision_summary(amp, scaler, peaks, state is not None))
    summary["train_step"] = "cuda graph" if loop["cuda_graph"] else "ordinary"
    summary.update(_timing_summary(model, test_loader, device, loop["autocast"], epochs, log))
    masks = {f"{t.name}_mask": t.mask.detach().cpu().clone() for t in masked_parameters(model, True, True, True)}
    final = record_path(config.result_dir, config.experiment, config.record_name)
    with tempfile.TemporaryDirectory(prefix="prunelab-trace-") as scratch:  # outside the results: nothing left there
        extra = _trace_files(config, model, test_loader, Path(scratch), summary, log) if config.save_trace else {}
        log(f"Test top-1 {summary['top1']:.2f}% [{status}]; writing the record.")
        _write(final, config, summary, device, data, epochs, layers, masks, model, {**extra, "log.txt": log.write})
    checkpoint.remove()
    record = load_record(final)
    if config.save_trace:
        log(f"Saved the PyTorch trace of one inference step: {record.path / 'trace.json'} "
            "(open it in chrome://tracing or ui.perfetto.dev).")
    _report(summary, record.path, data.stand_in, log)
    return record


def _wants_graph(config: RunConfig, device: torch.device) -> bool:
    """Whether this run asks for CUDA-graph training steps: on CUDA unless --no-cuda-graphs."""
    return device.type == "cuda" and not config.no_cuda_graphs


def _fresh_optimizer(config: RunConfig, model, capturable: bool = False) -> tuple[torch.optim.Optimizer, object]:
    """The run's optimizer and learning-rate schedule, as at the start (pruned weights held at zero);
    ``capturable`` for CUDA-graph training steps."""
    optimizer = make_optimizer(config.optimizer, trainable_parameters(model), config.lr, config.weight_decay,
                               capturable)
    keep_pruned_at_zero(optimizer, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.lr_drops,
                                                     gamma=config.lr_drop_rate)
    return optimizer, scheduler


@torch.no_grad()
def _rewind(model, initial: dict) -> None:
    """Initial weights and batchnorm statistics back, the masks as pruned, pruned weights zero."""
    model.load_state_dict({k: v for k, v in initial.items() if not k.endswith("_mask")}, strict=False)
    apply_masks(model)


def _prune(config, settings, model, data: RunData, progress, log) -> PruneResult:
    log(f"Pruning with {config.pruner} to compression {settings.compression:g} "
        f"({settings.resolved_rounds} round{'s' if settings.resolved_rounds > 1 else ''}).")
    batches = data.prune_batches()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collapse and vanished scores are reported below and recorded
        result = prune(model, settings, batches, progress=progress)
    for name in result.collapsed:
        log(f"WARNING: layer collapse: {name} kept no weights.")
    if result.vanished:
        log(f"WARNING: scores vanished in {', '.join(result.vanished)}.")
    return result


def _state(model, optimizer, scheduler, scaler, train_loader, rows, phase, cycle, done, result, initial) -> dict:
    """Everything needed to continue bit for bit: weights, masks, optimizer, schedule, gradient scale, RNG,
    data order."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict(),
             "rng_cpu": torch.get_rng_state(), "loader_epoch": train_loader.epoch, "rows": rows,
             "phase": phase, "cycle": cycle, "done": done, "prune": None, "initial": initial}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    if result is not None:
        state["prune"] = {"rounds": result.rounds, "kept": result.kept, "total": result.total,
                          "scores": result.scores, "collapsed": result.collapsed, "vanished": result.vanished}
    return state


def _restore(state, model, optimizer, scheduler, scaler, train_loader, settings, initial):
    model.load_state_dict(state["model"])
    apply_masks(model)  # refresh which masks prune something (the optimizer hooks read it)
    load_optimizer_state(optimizer, state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):  # an empty dict: the scaler was disabled
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    train_loader.epoch = state["loader_epoch"]
    result = None
    if state["prune"] is not None:
        p = state["prune"]
        result = PruneResult(settings, p["rounds"], p["kept"], p["total"], p["scores"], p["collapsed"],
                             p["vanished"])
    return (state["phase"], state.get("cycle", 0), state["done"], list(state["rows"]), result,
            state.get("initial", initial))


def _trace_files(config: RunConfig, model, test_loader, scratch: Path, summary: dict, log) -> dict:
    """Trace one inference step on a test batch, ours and the original design; add the analysis to
    ``summary`` and return the record's extra files."""
    from ..core.trace import compare_designs

    log(f"Tracing one inference step on a test batch after {TRACE_WARMUP} warm-up steps; timing "
        f"{TRACE_REPEATS} steps of each design in turn.")
    inputs, _ = next(iter(test_loader))
    comparison = compare_designs(model, inputs, scratch, warmup=TRACE_WARMUP, repeats=TRACE_REPEATS)
    summary["trace"] = {**comparison.ours.summary(), "batch": int(inputs.shape[0]), "warmup": TRACE_WARMUP,
                        "outputs_equal_to_original_design": comparison.outputs_equal,
                        "original_design": comparison.original.summary()}
    summary["design_timing"] = comparison.timing_summary()
    return {"trace.json": _copy_writer(scratch / "trace.json"),
            "trace_original_design.json": _copy_writer(scratch / "trace_original_design.json"),
            "trace_conv_layers.csv": csv_writer(comparison.ours.conv_layers()),
            "trace_breakdown.csv": csv_writer(comparison.ours.breakdown()),
            "trace_designs.csv": csv_writer(comparison.table())}


def _copy_writer(source: Path):
    return lambda path: shutil.copyfile(source, path)


def _write(final, config, summary, device, data, epochs, layers, masks, model, extra) -> None:
    write_record(final, {
        "config.json": json_writer(config.to_dict()),
        "summary.json": json_writer(summary),
        "env.json": json_writer(environment(device, data.source)),
        "epochs.csv": csv_writer(epochs),
        "layers.csv": csv_writer(layers),
        "masks.pt": torch_writer(masks),
        "model.pt": torch_writer({k: v.detach().cpu() for k, v in model.state_dict().items()}),
        **extra,
    })


def _summary(config, data, epochs, layers, result, status, message) -> dict:
    totals = summary_totals(layers)
    final = epochs.iloc[-1] if len(epochs) else None
    def value(column):
        return float(final[column]) if final is not None else math.nan
    return {
        "status": status, "message": message, "config_hash": config.config_hash(),
        "data_source": data.source, "stand_in": data.stand_in, "data": source_words(config.dataset, data.source),
        "train_examples": data.train_examples, "test_examples": data.test_examples,
        "top1": value("top1"), "top5": value("top5"), "test_loss": value("test_loss"),
        "inference_s": value("inference_s"), "train_s": float(epochs["train_s"].sum()) if len(epochs) else 0.0,
        "train_s_per_epoch": float(epochs.loc[epochs["epoch"] > 0, "train_s"].mean()) if len(epochs) else math.nan,
        "epochs_done": int((epochs["epoch"] > 0).sum()) if len(epochs) else 0,
        "majority_class_top1": data.majority_class_top1,
        "rounds": result.rounds if result else 0,
        "kept": result.kept if result else None, "prunable": result.total if result else None,
        "prunable_density": result.density if result else 1.0,
        "collapsed_layers": result.collapsed if result else [],
        "vanished_layers": result.vanished if result else [],
        "param_density": totals["param_density"], "params_kept": totals["params_kept"],
        "params_total": totals["params_total"], "flop_density": totals["flop_density"],
        "flops": totals["flops_kept"], "flops_total": totals["flops_total"],
    }


def _timing_summary(model, test_loader, device, autocast, epochs, log) -> dict:
    """Test-set inference timed apart from the accuracy pass (median of repeated passes after a warm-up)
    and training seconds per epoch, each with its spread (slowest minus fastest) and count."""
    log(f"Timing inference over the test set: {INFERENCE_REPEATS} passes after a warm-up pass.")
    return {**time_inference(model, test_loader, device, autocast, INFERENCE_REPEATS).summary("inference"),
            **epoch_timing(epochs).summary("epoch_train")}


def _peak_memory(device, peaks: list[PeakMemory]) -> PeakMemory:
    """A ``PeakMemory`` for one training phase, kept in ``peaks`` (pruning in between is not counted)."""
    peaks.append(PeakMemory(device))
    return peaks[-1]


def _precision_summary(amp: AmpSettings, scaler, peaks: list[PeakMemory], resumed: bool) -> dict:
    """How the run was computed and what training cost: precision, peak memory, time per epoch."""
    measured = [p.peak_mb for p in peaks if math.isfinite(p.peak_mb)]
    return {
        "amp": amp.enabled, "amp_dtype": amp_name(amp),
        "grad_scaler": scaler.is_enabled(),
        "peak_memory_mb": max(measured) if measured else math.nan,
        # what was already held when training began (on a GPU: the model and the data split on the device)
        "peak_memory_start_mb": peaks[0].start_mb if peaks else math.nan,
        "peak_memory_kind": peaks[0].kind if peaks else "",
        "peak_memory_block_only": all(p.block_only for p in peaks) if peaks else False,
        "peak_memory_since_resume": resumed,
    }


def _announce_amp(amp: AmpSettings, device, log) -> None:
    if amp.enabled:
        scaler = "with" if make_scaler(amp, device).is_enabled() else "without"
        log(f"Mixed precision: {amp_name(amp)} autocast on {device.type}, {scaler} a gradient scaler.")


def _report(summary: dict, path: Path, stand_in: bool, log) -> None:
    if stand_in:
        log("WARNING: these results come from SYNTHETIC stand-in data, not the real data set.")
    log(f"Parameter density: {summary['params_kept']:,}/{summary['params_total']:,} "
        f"({summary['param_density']:.4f})   FLOPs: {summary['flops']:,}/{summary['flops_total']:,} "
        f"({summary['flop_density']:.4f})")
    log(f"Test top-1 {summary['top1']:.2f}%  top-5 {summary['top5']:.2f}%  loss {summary['test_loss']:.4f}  "
        f"inference over the test set {summary['inference_s']:.3f} s  [{summary['status']}]")
    log(f"Record: {path}")
