"""Runs of one set-up trained together as one network, each ending in its own ordinary record.

:func:`run_group` takes runs that differ only in what pruning and the seed choose (:data:`PER_RUN_FIELDS`)
and does what each would do alone up to fixed masks: prepare, pre-train (shared, :mod:`prunelab.runs.pretrain`)
and prune, each with its own random numbers. Their post-pruning epochs then train as one widened network
(:mod:`prunelab.core.fused`), each run keeping its masks, weights, data order, evaluation, rows and checks;
runs of one seed draw the same batches, so they are ordered by seed and the first layer reads each seed's
batch once. After every epoch each run's checkpoint is saved as a run alone saves it, in a group commit
written in a thread while the next epoch trains (:mod:`prunelab.runs.checkpoint`), so a killed group
resumes together from its last commit and a run can resume alone. Each record is written as alone, with
``train_step: fused (M runs)``, its times its share of the group's (the wall time over M) and its peak
memory the group's.

``--fuse auto`` fuses when one fused step, measured on copies on this device against one step of one run
(``core.timing.interleaved``), is faster than M steps; it does not measure, and trains run by run, when
measuring would cost more than a small share of the training. ``on`` fuses unmeasured, ``off`` never.
Never fused: multishot (its cycles rewind each run), the conservation experiments (no training), a traced
run, image-folder data (streamed per run), fp16 with a gradient scaler (one run's overflow would skip every
run's step), and networks :func:`~prunelab.core.fused.check_fused` refuses.
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch

from ..core.fused import FusionRefused, check_fused, fuse_learners, split_learner
from ..core.fused_loop import FusedRows, FusionTiming, StackedLoader, fused_train_eval_loop, time_fusion
from ..core.train import GRAPH_WARMUP_STEPS, LoopOptions
from ..data.catalog import FOLDER_DATASETS
from ..precision.amp import make_scaler
from ..precision.memory import PeakMemory
from .checkpoint import GroupWriter, RunInProgress
from .config import RUNTIME_FIELDS, RunConfig
from .prepare import RunLog, reused_record
from .registry import run
from .singleshot import (
    CHECKPOINT_KEYS,
    RunState,
    Training,
    begin_training,
    checkpoint_state,
    diverging,
    finish,
    fresh_learner,
    open_run,
    post_train,
    pre_train_and_prune,
    wants_graph,
)
from .store import RunRecord, load_record

#: the settings in which the runs of one group may differ: what pruning and the seed choose, and the name
PER_RUN_FIELDS = ("pruner", "compression", "prune_epochs", "compression_schedule", "mask_scope",
                  "prune_dataset_ratio", "prune_batch_size", "prune_bias", "prune_batchnorm", "prune_residual",
                  "prune_train_mode", "reinitialize", "shuffle", "invert", "seed", "expid", "force", "verbose",
                  "pruner_version", "pruner_origin")
#: measuring may cost this share of the separate training it decides about (or MEASURE_FLOOR_S, if more)
MEASURE_SHARE = 0.05
MEASURE_FLOOR_S = 2.0
#: timed steps of each kind when measuring (after the warm-up)
MEASURE_REPEATS = 3


def fusion_obstacle(config: RunConfig) -> str | None:
    """Why ``config`` trains alone whatever its group, or None when it can be fused."""
    if config.fuse == "off":
        return "--fuse off"
    if config.experiment != "singleshot":
        return f"{config.experiment} runs train one at a time"
    if config.save_trace:
        return "a traced run is traced on its own network"
    if config.dataset in FOLDER_DATASETS:
        return "image-folder data sets are streamed by loader processes per run"
    return None


def group_key(config: RunConfig) -> tuple:
    """What every run of one group shares: every setting but :data:`PER_RUN_FIELDS` and the runtime settings
    that do not choose where it trains."""
    where = ("gpu", "no_cuda", "no_cuda_graphs", "result_dir", "fuse")
    left_out = set(PER_RUN_FIELDS) | (set(RUNTIME_FIELDS) - set(where))
    return tuple((f.name, _hashable(getattr(config, f.name))) for f in fields(config) if f.name not in left_out)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def plan(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """The runs split into groups that may train fused (in first-seen order); a run that cannot be fused, or
    has no partner, is a group of one."""
    groups: dict[tuple, list[RunConfig]] = {}
    alone: list[list[RunConfig]] = []
    for config in configs:
        if fusion_obstacle(config) is not None:
            alone.append([config])
        else:
            groups.setdefault(group_key(config), []).append(config)
    return [group for group in groups.values()] + alone


def plan_words(groups: list[list[RunConfig]]) -> str:
    """The plan in a few words: "fusable: 2 groups (11 and 6 runs), 4 runs alone"."""
    sizes = [len(g) for g in groups if len(g) > 1]
    alone = sum(len(g) for g in groups if len(g) == 1)
    if not sizes:
        return f"no runs to fuse, {alone} alone"
    counted = " and ".join(str(n) for n in sizes) if len(sizes) < 4 else f"{sum(sizes)} in all"
    return (f"fusable: {len(sizes)} group{'s' if len(sizes) > 1 else ''} ({counted} runs)"
            + (f", {alone} alone" if alone else ""))


@dataclass
class GroupResult:
    """What a group's runs ended in: each run's record path, or None for a run another process holds; and
    the fusion decision as one line ("fused: 18 runs in 1 group (...)", "separate: ...")."""

    paths: list[str | None]
    decision: str


@dataclass
class Member:
    """One run of a group: set up (:class:`RunState`) and trained up to fixed masks (:class:`Training`)."""

    run: RunState
    training: Training


def run_group(configs: list[RunConfig], progress: bool = True, log: Callable[[str], None] = print) -> GroupResult:
    """Run ``configs`` (one group of :func:`plan`), fused where the decision says, and return where each
    run's record is. ``log`` gets every run's lines (each run's are also its record's log.txt); the decision
    line is in the result, for the caller to show."""
    for config in configs:
        config.validate()
    keys = {group_key(c) for c in configs}
    if len(keys) > 1 or any(fusion_obstacle(c) for c in configs):
        raise FusionRefused("these runs do not share one set-up and training settings: plan() splits them")
    records: dict[str, RunRecord | None] = {}
    with contextlib.ExitStack() as stack:
        members = []
        for config in configs:
            run_log = RunLog(log)
            existing = reused_record(config, run_log)
            if existing is not None:
                records[config.record_name] = existing
                continue
            try:
                with run_log.warnings():  # loading its data may warn (a stand-in): a line of its log, not stderr
                    opened = stack.enter_context(open_run(config, progress, run_log))
            except RunInProgress:  # another process trains it: not this group's
                records[config.record_name] = None
                continue
            if isinstance(opened, RunRecord):
                records[config.record_name] = opened
                continue
            member = Member(opened, begin_training(opened))
            with run_log.warnings(), diverging(opened, member.training):
                pre_train_and_prune(opened, member.training)
            members.append(member)
        decision = post_train_group(members)
        for member in members:
            with member.run.log.warnings():
                records[member.run.config.record_name] = finish(member.run, member.training)
    paths = [str(records[c.record_name].path) if records[c.record_name] is not None else None for c in configs]
    return GroupResult(paths, decision)


def post_train_group(members: list[Member]) -> str:
    """Post-train the group's runs that have not diverged: fused where :func:`decide` says, else one after
    another. Runs resumed at different points of training (a kill between their checkpoint commits is set
    right by :func:`_align`) train in one subgroup per point. Returns the decision line."""
    live = [m for m in members if m.training.status == "complete"]
    _align(live)
    points: dict[int, list[Member]] = {}
    for member in live:
        points.setdefault(_point(member.training), []).append(member)
    decisions = []
    for subgroup in points.values():
        subgroup, shared = by_seed(subgroup)
        fuse, decision = decide(subgroup, shared)
        decisions.append(decision)
        if fuse:
            _train_fused(subgroup, shared)
            continue
        for member in subgroup:
            with member.run.log.warnings(), diverging(member.run, member.training):
                post_train(member.run, member.training)
    return "; ".join(decisions) if decisions else decide([])[1]


def by_seed(members: list[Member]) -> tuple[list[Member], int]:
    """``members`` ordered by seed (seeds in first-seen order), and how many consecutive runs share one input
    block when fused (:func:`input_blocks`)."""
    seeds = [m.run.config.seed for m in members]
    first_seen = list(dict.fromkeys(seeds))
    ordered = sorted(members, key=lambda m: first_seen.index(m.run.config.seed))
    return ordered, input_blocks(seeds)


def input_blocks(seeds: Sequence[int]) -> int:
    """How many consecutive runs, ordered by seed, read one input block when runs of ``seeds`` train fused:
    the runs per seed when every seed has as many, else 1 (each run's batch its own)."""
    counts = set(Counter(seeds).values())
    return len(seeds) // len(set(seeds)) if len(counts) == 1 else 1


def decide(members: list[Member], shared: int = 1) -> tuple[bool, str]:
    """Whether to fuse ``members``' post-training (``shared`` runs to an input block), and the line that says
    so (the progress line)."""
    runs = len(members)
    if runs < 2:
        return False, f"separate: {runs} run{'s' if runs != 1 else ''} to post-train, nothing to fuse"
    first = members[0].run
    if make_scaler(first.amp, first.device).is_enabled():
        return False, (f"separate: {runs} runs; fp16 with a gradient scaler is not fused (one scaler would skip "
                       "every run's step when one run overflows)")
    try:
        learner = fuse_learners([m.training.learner for m in members], _fresh_for(first), shared)
        check_fused(learner.model, [m.run.model for m in members], _example(first))
    except FusionRefused as why:
        return False, f"separate: {runs} runs; not fused: {why}"
    if first.config.fuse == "on":
        return True, f"fused: {runs} runs in 1 group (--fuse on, not measured)"
    timing = _measure(members, learner)
    del learner
    if timing is None:
        return False, (f"separate: {runs} runs; fusion not measured (measuring would cost more than "
                       f"{MEASURE_SHARE:.0%} of their training)")
    if timing.speedup > 1:
        return True, (f"fused: {runs} runs in 1 group (a fused step measured {timing.speedup:.2f}x the speed of "
                      f"{runs} steps of one run)")
    return False, f"separate: {runs} runs; fusion measured slower here ({timing.speedup:.2f}x)"


def _fresh_for(run: RunState):
    """How the group's learner is made: as ``run`` makes its own, for the fused network."""
    return lambda model: fresh_learner(run, wants_graph(run.config, run.device), model)


def _options(members: list[Member]) -> LoopOptions:
    first = members[0].training.options
    graph = all(m.training.options.cuda_graph for m in members)
    return LoopOptions(first.device, first.precision, cuda_graph=graph, verbose=False,
                       show_progress=first.show_progress)


def _example(run: RunState) -> torch.Tensor:
    """A small input batch for comparing outputs, drawn from its own generator (the runs' random state stays)."""
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, *run.info.input_shape, generator=generator).to(run.device)
    return example.contiguous(memory_format=torch.channels_last) if run.channels_last else example


def _measure(members: list[Member], learner) -> FusionTiming | None:
    """One fused step against one step of one run, on copies (the runs' own networks are untouched), or
    None when measuring would cost more than its budget."""
    first = members[0].run
    options = _options(members)
    single = fresh_learner(first, wants_graph(first.config, first.device), copy.deepcopy(first.model))
    batch = _batch(first)
    probe = time_fusion(learner, single, batch, options, repeats=1, warmup=0)  # what one step of each costs
    steps = len(first.data.train) * sum(first.config.post_epochs - (m.training.progress.epochs_done or 0)
                                        for m in members)
    warmup = 1 + (GRAPH_WARMUP_STEPS + 1 if options.cuda_graph else 0)
    cost = (warmup + MEASURE_REPEATS) * (probe.fused_s + probe.separate_s)
    if cost > max(MEASURE_FLOOR_S, MEASURE_SHARE * steps * probe.separate_s):
        return None
    return time_fusion(learner, single, batch, options, repeats=MEASURE_REPEATS, warmup=warmup)


def _batch(run: RunState) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch of the run's shape, drawn from its own generator."""
    generator = torch.Generator().manual_seed(1)
    size = run.config.train_batch_size
    x = torch.randn(size, *run.info.input_shape, generator=generator).to(run.device)
    y = torch.randint(0, run.info.num_classes, (size,), generator=generator).to(run.device)
    return (x.contiguous(memory_format=torch.channels_last) if run.channels_last else x), y


def _point(training: Training) -> int:
    """Where a run's post-training stands: the epoch of its last row (-1 before the first evaluation)."""
    done = training.progress.epochs_done
    return -1 if done is None else done


def _align(members: list[Member]) -> None:
    """Bring the runs to one point when a kill fell between their checkpoint commits: a run one epoch ahead
    goes back to the state its group commit kept (``previous.pt``), so the group resumes together."""
    target = min(_point(m.training) for m in members)
    for member in members:
        if _point(member.training) == target:
            continue
        previous = member.run.checkpoint.load(CHECKPOINT_KEYS, previous=True)
        done = previous["progress"]["epochs_done"] if previous is not None else None
        if previous is not None and (-1 if done is None else done) == target:
            member.training.restore(member.run, previous)
            member.run.log(f"Back to post-training epoch {target} with its group (a kill fell between the "
                           "group's checkpoint commits).")


def _train_fused(members: list[Member], shared: int) -> None:  # noqa: C901 - resume, divergence and checkpoints per run
    """Post-train ``members`` (in :func:`by_seed`'s order) as one fused network, ``shared`` runs to an input
    block; each run's rows, checkpoints and final state its own."""
    first = members[0].run
    runs = len(members)
    learner = fuse_learners([m.training.learner for m in members], _fresh_for(first), shared)
    options = _options(members)
    step_name = f"fused ({runs} runs)" + (", cuda graph" if options.cuda_graph else "")
    owners: list[Member] = []  # runs of one seed draw the same batches: the first one's loaders serve them all
    loader_of: dict[int, int] = {}
    for member in members:
        if member.run.config.seed not in loader_of:
            loader_of[member.run.config.seed] = len(owners)
            owners.append(member)
    of_run = [loader_of[m.run.config.seed] for m in members]
    train = StackedLoader([o.run.data.train for o in owners], of_run, shared)
    test = StackedLoader([o.run.data.test for o in owners], of_run, shared)

    def diverged(index: int, reason: str) -> None:
        member = members[index]
        member.training.learner.load_state_dict(split_learner(learner)[index])  # its weights as they went wrong
        member.training.stop(reason)
        member.run.log(f"STOPPED: {member.training.message}.")

    rows = FusedRows([m.training.progress.rows for m in members], [True] * runs, diverged)

    writer = GroupWriter()

    def after_epoch(epoch: int) -> None:
        states = split_learner(learner)
        saved = []
        for index, member in enumerate(members):
            member.run.data.train.epoch = train.epoch
            if not rows.live[index]:
                continue
            member.training.progress.epochs_done = epoch
            saved.append((member.run.checkpoint, checkpoint_state(member.run, member.training, states[index])))
        writer.commit(saved)

    for member in members:
        member.training.train_step = step_name
        member.run.log(f"Post-train for {member.run.config.post_epochs} epochs, fused with {runs - 1} other runs "
                       f"of this set-up (one network of {runs} runs).")
    with PeakMemory(options.device) as peak, writer:
        fused_train_eval_loop(learner, train, test, first.config.post_epochs, "post", options, rows,
                              done=members[0].training.progress.epochs_done, after_epoch=after_epoch)
    states = split_learner(learner)
    for index, member in enumerate(members):
        member.training.peaks.append(peak)
        if rows.live[index]:
            member.training.learner.load_state_dict(states[index])


def run_configs(configs: list[RunConfig], progress: bool = True, log: Callable[[str], None] = print
                ) -> list[RunRecord]:
    """Run every configuration (the command line's list flags): the groups of :func:`plan` fused as their
    decision says, the rest one by one; a run held by another process raises its ``RunInProgress``."""
    records: dict[str, RunRecord] = {}
    for group in plan(configs):
        if len(group) == 1:
            records[group[0].record_name] = run(group[0], progress, log)
            continue
        result = run_group(group, progress, log)
        log(result.decision)
        for config, path in zip(group, result.paths):
            if path is None:
                raise RunInProgress(f"{config.record_name} is in progress in another process; wait for it")
            records[config.record_name] = load_record(path)
    return [records[c.record_name] for c in configs]
