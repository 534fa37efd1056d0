"""A training run end to end: data, model, pre-train, prune, post-train, one result record.

Single-shot prunes once. Multishot (``levels`` cycles, the lottery-ticket procedure) pre-trains, prunes
to ``compression * (cycle + 1) / levels``, rewinds the kept weights to their initial values and resets the
optimizer, ``levels`` times, then post-trains; the original tool's rewind filtered the saved weights on
``requires_grad``, which a state dict never has, so it kept the trained weights.

After every pruning, and after an epoch once ``--checkpoint-every`` seconds have passed since the last save,
the run checkpoints its :class:`TrainingProgress` beside the learner's state, the random state and the data
order, so a killed run started again ends with the same record, bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core.audit import MaskAudit, audit_masks
from ..core.layout import uses_channels_last
from ..core.measure import count_flops, layer_summary
from ..core.pruners import PruneResult, PruneSettings, prune
from ..core.train import (
    Learner,
    LoopOptions,
    TrainingDiverged,
    epochs_frame,
    graph_obstacle,
    make_optimizer,
    train_eval_loop,
)
from ..data.catalog import source_words
from ..data.run_data import RunData
from ..models.layers import apply_masks, keep_pruned_at_zero, masked_parameters, trainable_parameters
from ..precision.amp import amp_settings, make_scaler
from ..precision.memory import PeakMemory
from .checkpoint import random_state, set_random_state
from .config import RunConfig
from .fused_parts import PartsBook
from .prepare import RunLog, environment, load_run_data, prepare, reused_record, run_checkpoint
from .pretrain import SharedPretraining, pretrain_key, shares_pretraining
from .run_files import (
    announce_amp,
    precision_summary,
    record_files,
    report_run,
    run_summary,
    timing_summary,
    trace_files,
    tracking_peak_memory,
)
from .run_state import CHECKPOINT_KEYS, RunOutcome, RunState, TrainingProgress
from .store import (
    RunRecord,
    load_record,
    run_record_path,
    usable_record,
    write_record,
)


def run_training(config: RunConfig, progress: bool = True, log: Callable[[str], None] = print) -> RunRecord:
    """Run one single-shot or multishot experiment and return its record; reuse a usable record unless forced.

    Anything a person can get wrong raises :class:`UserError` before a file is written, and the record
    appears only once it is complete. The run checkpoints as it trains (``--checkpoint-every``) and,
    started again after being killed, resumes from its last checkpoint and ends with the same record.
    """
    config.validate()
    existing = reused_record(config, log)
    if existing is not None:
        report_run(existing, config.verbose, log)
        return existing
    run_log = RunLog(log)
    with run_log.warnings():
        return _start(config, progress, run_log)


def _start(config: RunConfig, progress: bool, log: RunLog) -> RunRecord:
    with open_run(config, progress, log) as opened:
        return opened if isinstance(opened, RunRecord) else _run(opened)


@contextlib.contextmanager
def open_run(config: RunConfig, progress: bool, log: RunLog) -> Iterator[RunState | RunRecord]:
    """The run set up to train (its :class:`RunState`) with its checkpoint's lock held until the block ends,
    or the complete record another process finished meanwhile."""
    device, info, model, settings = prepare(config)
    precision = amp_settings(device, config.quantization, config.amp_dtype)
    announce_amp(precision, device, log)
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
                yield existing
                return
        log(f"Created {config.model} model ({config.model_class}) on {device}.")
        if channels_last:
            model.to(memory_format=torch.channels_last)
        yield RunState(config, checkpoint, model, settings, device, precision, info, data, channels_last, progress, log)
    finally:
        checkpoint.release()
        checkpoint.discard_if_empty()


def _run(run: RunState) -> RunRecord:
    training = begin_training(run)
    if training.status == "complete":  # not stopped already (a fused network's run that diverged)
        with diverging(run, training):
            pre_train_and_prune(run, training)
            post_train(run, training)
    return finish(run, training)


@contextlib.contextmanager
def diverging(run: RunState, training: Training) -> Iterator[None]:
    """A :class:`TrainingDiverged` raised in the block ends the run's training; its record is then written
    with the rows so far."""
    try:
        yield
    except TrainingDiverged as err:
        training.stop(str(err))
        run.log(f"STOPPED: {training.message}.")


def post_train(run: RunState, training: Training) -> None:
    """Train the pruned network its post-training epochs (continuing where its checkpoint stands)."""
    if training.progress.epochs_done != run.config.post_epochs:  # its last epochs train alone: the record says so
        training.train_step = own_step(training.options)
    run.log(f"Post-train for {run.config.post_epochs} epoch{'' if run.config.post_epochs == 1 else 's'}.")
    with tracking_peak_memory(run.device, training.peaks):
        train_eval_loop(training.learner, run.data.train, run.data.test, run.config.post_epochs, "post",
                        training.options, rows=training.progress.rows, done=training.progress.epochs_done,
                        after_epoch=lambda epoch: after_epoch(run, training, epoch))


@dataclass
class Training:
    """A run's training under way, from its start (or its checkpoint) to its record: the learner, how its
    loops train, where it stands, the last pruning's result, multishot's initial weights, each training
    phase's peak memory, whether it resumed, how it ended, and how its steps were taken (for the record;
    ``pretrain_step`` where its dense pre-training's last epochs were trained fused, for the shared
    pre-training's; both are checkpointed and name how the phase's last epochs trained)."""

    learner: Learner
    options: LoopOptions
    progress: TrainingProgress
    result: PruneResult | None
    initial: dict | None
    resumed: bool
    train_step: str
    peaks: list[PeakMemory] = field(default_factory=list)
    status: str = "complete"
    message: str = ""
    pretrain_step: str | None = None

    def stop(self, reason: str) -> None:
        """Training diverged (``reason``): the record is written with the rows so far."""
        self.status = "diverged"
        done = self.progress.epochs_done or 0
        self.message = f"{reason} ({self.progress.phase}-training, after {done} epoch{'s' if done != 1 else ''})"

    def restore(self, run: RunState, state: dict) -> None:
        """Continue from checkpoint ``state``."""
        self.learner.load_state_dict(state["learner"])
        set_random_state(state, run.data.train)
        self.progress = TrainingProgress.from_checkpoint(state["progress"])
        self.result, self.initial = _prune_result(state["prune"], run.settings), state["initial"]
        # how its steps were taken so far (absent from checkpoints of earlier versions)
        self.train_step = state.get("train_step", self.train_step)
        self.pretrain_step = state.get("pretrain_step")
        # a run stopped in a fused network is checkpointed stopped as it stops (absent before this version)
        self.status, self.message = state.get("status", "complete"), state.get("message", "")
        self.resumed = True


def begin_training(run: RunState) -> Training:
    """The run's learner and loop options, continued from its checkpoint when it has one."""
    capturable = wants_graph(run.config, run.device)
    learner = fresh_learner(run, capturable)
    options = _loop_options(run, learner, capturable)
    # multishot rewinds to these after every prune (the lottery-ticket procedure; the original meant to)
    initial = ({k: v.detach().clone() for k, v in run.model.state_dict().items()}
               if run.config.experiment == "multishot" else None)
    training = Training(learner, options, TrainingProgress(), None, initial, False, own_step(options))
    state = run.checkpoint.load(CHECKPOINT_KEYS)
    if state is not None:
        training.restore(run, state)
        progress = training.progress
        run.log(f"Resuming from the checkpoint after {progress.phase}-training epoch {progress.epochs_done or 0}"
                + (f": training stopped there, {training.message}." if training.status != "complete" else "."))
    return training


def own_step(options: LoopOptions) -> str:
    """How a run alone takes its training steps, as its record names them."""
    return "cuda graph" if options.cuda_graph else "ordinary"


def checkpoint_state(run: RunState, training: Training, learner_state: dict | None = None) -> dict:
    """What the run's checkpoint holds now; ``learner_state`` stands in for the learner's own (a fused
    group's part for this run)."""
    return {"progress": training.progress.to_checkpoint(),
            "learner": training.learner.state_dict() if learner_state is None else learner_state,
            **random_state(run.data.train), "prune": _prune_state(training.result), "initial": training.initial,
            "train_step": training.train_step, "pretrain_step": training.pretrain_step,
            "status": training.status, "message": training.message}


def after_epoch(run: RunState, training: Training, epoch: int) -> None:
    """An epoch is done: checkpoint it when its cadence says (``--checkpoint-every``)."""
    training.progress.epochs_done = epoch
    if run.checkpoint.cadence.due():
        run.checkpoint.save(checkpoint_state(run, training))


def pre_train_and_prune(run: RunState, training: Training) -> None:
    """Pre-train and prune, cycle by cycle, until the masks are fixed (the phase is then "post"); a single-shot
    run's dense pre-training is shared with every run of the same pre-training settings
    (:mod:`prunelab.runs.pretrain`)."""
    config, progress, log = run.config, training.progress, run.log
    cycles, multishot = config.cycles, config.experiment == "multishot"
    while progress.phase == "pre":
        cycle = progress.cycle
        if progress.epochs_done != config.pre_epochs:  # not trained already (a fused group's pre-training)
            training.pretrain_step = None  # its last epochs train alone: the shared record says so
            log(f"Pre-train for {config.pre_epochs} epoch{'' if config.pre_epochs == 1 else 's'}"
                + (f" (cycle {cycle + 1} of {cycles})." if multishot else "."))
        shared = SharedPretraining(config, run.data.source) if shares_pretraining(config) else None
        with shared.held(log) if shared is not None else contextlib.nullcontext() as tell_epoch:
            _pre_train(run, training, shared, tell_epoch)
        cycle_settings = dataclasses.replace(run.settings, compression=config.compression * (cycle + 1) / cycles)
        training.result = _prune(cycle_settings, run.model, run.data, run.show_progress, log)
        if training.initial is not None and not run.settings.reinitialize:  # --reinitialize: no ticket
            _rewind(run.model, training.initial)
            training.learner = fresh_learner(run, wants_graph(config, run.device))
        progress.next_cycle(cycles)
        run.checkpoint.save(checkpoint_state(run, training))


def _pre_train(run: RunState, training: Training, shared: SharedPretraining | None,
               tell_epoch: Callable[[int], None] | None) -> None:
    """Train the dense network of the current cycle, or continue from the ``shared`` pre-training's record (where
    another run finished it first, even one this run began and was stopped in), and write that record when this
    run trained it, telling ``tell_epoch`` each epoch (a run of another process waiting for it shows it)."""
    config, progress, log = run.config, training.progress, run.log
    begun = progress.epochs_done or 0
    record = shared.record() if shared is not None and begun < config.pre_epochs else None
    if record is not None:  # the same pre-training was done by another run: continue from it
        shared.resume(record, training.learner, progress.rows, run.data.train)
        progress.epochs_done = config.pre_epochs
        log(f"Continuing from the shared pre-training {record.path} (not trained again"
            + (f"; this run's own {begun} epochs of it set aside)." if begun else ")."))
        return

    def epoch_done(epoch: int) -> None:
        after_epoch(run, training, epoch)
        if tell_epoch is not None:
            tell_epoch(epoch)

    multishot = config.experiment == "multishot"
    with tracking_peak_memory(run.device, training.peaks):
        train_eval_loop(training.learner, run.data.train, run.data.test, config.pre_epochs,
                        f"pre{progress.cycle + 1}" if multishot else "pre", training.options, rows=progress.rows,
                        done=progress.epochs_done, after_epoch=epoch_done)
    if shared is not None and shared.record() is None:
        shared.share(training.learner, progress.rows, run.data.train,
                     environment(run.device, run.data.source), training.pretrain_step or training.train_step)
        log(f"Wrote the shared pre-training {shared.path}.")


def finish(run: RunState, training: Training) -> RunRecord:
    """Write the run's record from its trained model and rows, remove its checkpoint, and return the record."""
    config, model, data, log, progress = run.config, run.model, run.data, run.log, training.progress
    result = training.result
    layers = layer_summary(model, count_flops(model, run.info.input_shape, run.device), result.scores if result else {})
    audit = _audit(run, result, training.status == "diverged")
    epochs = epochs_frame(progress.rows)
    summary = {"status": training.status, "message": training.message, **run_summary(run, epochs, layers, result)}
    summary.update(audit.summary())
    summary.update(precision_summary(run.precision, training.learner.scaler, training.peaks, training.resumed))
    summary["train_step"] = training.train_step
    if shares_pretraining(config):  # the shared pre-training it trained or continued from
        summary["pretrain_record"] = pretrain_key(config, data.source)
    summary.update(timing_summary(run, epochs))
    every = masked_parameters(model, bias=True, batchnorm=True, residual=True)  # every mask, pruned or not
    masks = {f"{t.name}_mask": t.mask.detach().cpu().clone() for t in every}
    outcome = RunOutcome(summary, epochs, layers, masks, audit.frame())
    final = run_record_path(config)
    status = training.status
    with contextlib.ExitStack() as stack:  # a traced run's scratch, outside the results: nothing left there
        extra = {}
        if config.save_trace:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prunelab-trace-")))
            extra = trace_files(config, model, data.test, scratch, summary, log)
        log(f"Run {status}; writing the record.")  # its results follow, read back from the record
        write_record(final, {**record_files(run, outcome), **extra, "log.txt": log.write})
    run.checkpoint.remove()
    PartsBook.beside(config).tidy()  # a fused group's cut goes with the last of its runs' records
    record = load_record(final)
    if config.save_trace:
        log(f"Saved the PyTorch trace of one inference step: {record.path / 'trace.json'} "
            "(open it in chrome://tracing or ui.perfetto.dev).")
    report_run(record, config.verbose, log)
    return record


def wants_graph(config: RunConfig, device: torch.device) -> bool:
    """Whether this run asks for CUDA-graph training steps: on CUDA unless --no-cuda-graphs."""
    return device.type == "cuda" and not config.no_cuda_graphs


def fresh_learner(run: RunState, capturable: bool, model: torch.nn.Module | None = None) -> Learner:
    """The run's optimizer, learning-rate schedule and gradient scaler as at the start (pruned weights held at
    zero); ``capturable`` for CUDA-graph training steps. For ``model`` when given (a fused group's network)
    instead of the run's."""
    config, model = run.config, run.model if model is None else model
    optimizer = make_optimizer(config.optimizer, trainable_parameters(model), config.lr, config.weight_decay,
                               capturable)
    keep_pruned_at_zero(optimizer, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.lr_drops,
                                                     gamma=config.lr_drop_rate)
    return Learner(model, optimizer, scheduler, make_scaler(run.precision, run.device))


def _loop_options(run: RunState, learner: Learner, capturable: bool) -> LoopOptions:
    """How the run's loops train; a run that asks for CUDA-graph steps is told whether it gets them."""
    obstacle = graph_obstacle(run.device, learner.optimizer, run.precision.mixed) if capturable else None
    if capturable:
        run.log("Training steps replay a CUDA graph of the step (--no-cuda-graphs: ordinary steps)."
                if obstacle is None else f"Training steps are ordinary steps: {obstacle}.")
    return LoopOptions(run.device, run.precision, cuda_graph=capturable and obstacle is None,
                       verbose=run.config.verbose, show_progress=run.show_progress)


@torch.no_grad()
def _rewind(model, initial: dict) -> None:
    """Initial weights and batchnorm statistics back, the masks as pruned, pruned weights zero."""
    model.load_state_dict({k: v for k, v in initial.items() if not k.endswith("_mask")}, strict=False)
    apply_masks(model)


def _prune(settings: PruneSettings, model: torch.nn.Module, data: RunData, show_progress: bool, log: RunLog
           ) -> PruneResult:
    ablated = [words for flag, words in (("invert", "scores inverted"), ("shuffle", "masks shuffled per layer"),
                                         ("reinitialize", "weights re-initialized")) if getattr(settings, flag)]
    rounds = f"{settings.resolved_rounds} round{'s' if settings.resolved_rounds > 1 else ''}"
    log(f"Pruning with {settings.pruner} to compression {settings.compression:g} ({'; '.join([rounds, *ablated])}).")
    batches = data.prune_batches()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collapse and vanished scores are reported below and recorded
        result = prune(model, settings, batches, progress=show_progress)
    for name in result.collapsed:
        log(f"WARNING: layer collapse: {name} kept no weights.")
    if result.vanished:
        log(f"WARNING: scores vanished in {', '.join(result.vanished)}.")
    return result


def _audit(run: RunState, result: PruneResult | None, diverged: bool) -> MaskAudit:
    """Audit the trained model's masks against the last pruning; drift is an error line (the record is still
    written, so the evidence is kept)."""
    audit = audit_masks(run.settings.targets(run.model), result, diverged)
    if audit.verdict == "drift":
        run.log.error(f"ERROR: mask audit: {audit.report()}")
    else:
        run.log(f"Mask audit: {audit.report()}.")
    return audit


def _prune_state(result: PruneResult | None) -> dict | None:
    """The last pruning's result for a checkpoint (its settings are the run's, rebuilt on resume)."""
    if result is None:
        return None
    return {"rounds": result.rounds, "kept": result.kept, "total": result.total, "scores": result.scores,
            "collapsed": result.collapsed, "vanished": result.vanished, "layer_kept": result.layer_kept}


def _prune_result(saved: dict | None, settings: PruneSettings) -> PruneResult | None:
    if saved is None:
        return None
    return PruneResult(settings, saved["rounds"], saved["kept"], saved["total"], saved["scores"], saved["collapsed"],
                       saved["vanished"], saved.get("layer_kept", {}))  # none in a checkpoint from before the audit
