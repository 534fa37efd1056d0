"""Runs of one set-up trained together as one network, each ending in its own ordinary record.

:func:`run_group` takes runs that differ only in what pruning and the seed choose (:data:`PER_RUN_FIELDS`)
and does what each would do alone up to fixed masks: prepare, pre-train (shared, :mod:`prunelab.runs.pretrain`)
and prune, each with its own random numbers; the dense pre-trainings it would train (one per seed, Mag's)
train fused first. Their post-pruning epochs then train as one widened network (:mod:`prunelab.core.fused`),
each run keeping its masks, weights, data order, evaluation, rows and checks; runs of one seed draw the same
batches, so they are ordered by seed and the first layer reads each seed's batch once. Where an epoch's end
is due a checkpoint (``--checkpoint-every``), each run's is saved as a run alone saves it, in a group commit
written in a thread while the next epoch trains (:mod:`prunelab.runs.checkpoint`), so a killed group
resumes together from its last commit and a run can resume alone. Each record is written as alone, with
``train_step: fused (M runs)``, its times its share of the group's (the wall time over M) and its peak
memory the group's. Whether to fuse is measured (:mod:`prunelab.runs.fused_decision`), and a group whose
fused step the device's memory would not hold trains as several, one after another.

Never fused: multishot (its cycles rewind each run), the conservation experiments (no training), a traced
run, image-folder data (streamed per run), fp16 with a gradient scaler (one run's overflow would skip every
run's step), and networks :func:`~prunelab.core.fused.check_fused` refuses.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from ..core.fused import FusionRefused, fuse_learners, split_learner
from ..core.fused_loop import FusedRows, StackedLoader, fused_train_eval_loop
from ..data.catalog import FOLDER_DATASETS
from ..precision.memory import PeakMemory
from .checkpoint import Cadence, GroupWriter, RunInProgress, rng_state, set_rng_state
from .config import RUNTIME_FIELDS, RunConfig
from .fused_decision import Member, decide, fresh_for, group_options, memory_chunks, phase_epochs
from .prepare import RunLog, reused_record
from .pretrain import SharedPretraining, shares_pretraining
from .registry import run
from .run_state import TrainingProgress
from .singleshot import (
    CHECKPOINT_KEYS,
    begin_training,
    checkpoint_state,
    diverging,
    finish,
    open_run,
    post_train,
    pre_train_and_prune,
)
from .store import RunRecord, load_record

#: the settings in which the runs of one group may differ: what pruning and the seed choose, and the name
PER_RUN_FIELDS = ("pruner", "compression", "prune_epochs", "compression_schedule", "mask_scope",
                  "prune_dataset_ratio", "prune_batch_size", "prune_bias", "prune_batchnorm", "prune_residual",
                  "prune_train_mode", "reinitialize", "shuffle", "invert", "seed", "expid", "force", "verbose",
                  "pruner_version", "pruner_origin")


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
    the fusion decisions as one line ("fused: 18 runs in 1 group (...)", "separate: ...")."""

    paths: list[str | None]
    decision: str


def run_group(configs: list[RunConfig], progress: bool = True, log: Callable[[str], None] = print) -> GroupResult:
    """Run ``configs`` (one group of :func:`plan`), fused where the decisions say, and return where each
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
            members.append(Member(opened, begin_training(opened), rng_state()))
        decisions = pre_train_group(members)
        for member in members:
            if member.training.status != "complete":  # diverged in a fused pre-training
                continue
            set_rng_state(member.rng)  # pruning draws from the run's own random state, as alone
            with member.run.log.warnings(), diverging(member.run, member.training):
                pre_train_and_prune(member.run, member.training)
            member.rng = rng_state()
        decisions.append(post_train_group(members))
        for member in members:
            with member.run.log.warnings():
                records[member.run.config.record_name] = finish(member.run, member.training)
    paths = [str(records[c.record_name].path) if records[c.record_name] is not None else None for c in configs]
    return GroupResult(paths, "; ".join(decisions))


def pre_train_group(members: list[Member]) -> list[str]:
    """Pre-train fused the runs that would each train a dense pre-training of their own (one run per shared
    pre-training not yet recorded, :mod:`prunelab.runs.pretrain`, with epochs still to train), where
    :func:`decide` says. Each is left as its own pre-training would leave it, for ``pre_train_and_prune``
    to share and prune. Returns the decision lines (none where fewer than two runs would pre-train)."""
    pending: dict[str, Member] = {}
    for member in members:
        run = member.run
        if shares_pretraining(run.config) and member.training.progress.phase == "pre":
            shared = SharedPretraining(run.config, run.data.source)
            if shared.record() is None:
                pending.setdefault(shared.key, member)
    chunks, line = memory_chunks(*by_seed(list(pending.values())), "pre")  # cut from all: as before a kill
    decisions = [line] if line else []
    for subgroup, shared in (pair for chunk in chunks for pair in _subgroups(chunk)):
        if len(subgroup) < 2 or _point(subgroup[0].training.progress) == subgroup[0].run.config.pre_epochs:
            continue  # alone, or pre-trained to the end (lined up first: a commit cut short)
        fuse, decision = decide(subgroup, shared, "pre")
        decisions.append(decision)
        if fuse:
            _train_fused(subgroup, shared, "pre")
    return decisions


def post_train_group(members: list[Member]) -> str:
    """Post-train the group's runs that have not diverged, in the groups the device's memory holds
    (:func:`memory_chunks`): fused where :func:`decide` says, else one after another. Returns the decision
    line."""
    chunks, line = memory_chunks(*by_seed(members))
    decisions = [line] if line else []
    for subgroup, shared in (pair for chunk in chunks for pair in _subgroups(chunk)):
        if _point(subgroup[0].training.progress) == subgroup[0].run.config.post_epochs:
            continue  # trained to the end already (killed as the records were written): each keeps its train_step
        fuse, decision = decide(subgroup, shared)
        decisions.append(decision)
        if fuse:
            _train_fused(subgroup, shared, "post")
            continue
        for member in subgroup:
            set_rng_state(member.rng)  # a network that draws random numbers in training draws its own, as alone
            with member.run.log.warnings(), diverging(member.run, member.training):
                post_train(member.run, member.training)
    return "; ".join(dict.fromkeys(decisions)) if decisions else decide([])[1]


def _subgroups(members: list[Member]) -> list[tuple[list[Member], int]]:
    """The runs still training, in one subgroup per point of training they stand at (a kill between their
    checkpoint commits is set right first, :func:`_align`), each ordered by seed with its runs per input
    block (:func:`by_seed`)."""
    live = [m for m in members if m.training.status == "complete"]
    _align(live)
    points: dict[int, list[Member]] = {}
    for member in live:
        points.setdefault(_point(member.training.progress), []).append(member)
    return [by_seed(subgroup) for subgroup in points.values()]


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


def _point(progress: TrainingProgress) -> int:
    """Where a run's training in its phase stands: the epoch of its last row (-1 before the first evaluation)."""
    return -1 if progress.epochs_done is None else progress.epochs_done


def _align(members: list[Member]) -> None:
    """Bring the runs to one point when a kill fell between their checkpoint commits: a run one epoch ahead
    goes back to the state its group commit kept (``previous.pt``, its start before the first commit), and
    that state is made its current one, so the group resumes together however often it is killed. Only to a
    state of the phase and cycle it is in: a save alone (after pruning, or in separate training) leaves the
    last group commit's ``previous.pt``, which may be from its pre-training."""
    target = min((_point(m.training.progress) for m in members), default=None)
    for member in members:
        if _point(member.training.progress) == target:
            continue
        previous = member.run.checkpoint.load(CHECKPOINT_KEYS, previous=True)
        if previous is None:
            continue
        progress, now = TrainingProgress.from_checkpoint(previous["progress"]), member.training.progress
        if (progress.phase, progress.cycle) == (now.phase, now.cycle) and _point(progress) == target:
            member.training.restore(member.run, previous)
            member.run.checkpoint.save(previous)  # current on disk too, so the next commit keeps it as previous.pt
            member.rng = rng_state()
            point = "its start" if target == -1 else f"epoch {target}"
            member.run.log(f"Back to {member.training.progress.phase}-training {point} with its group (a kill fell "
                           "between the group's checkpoint commits).")


def _train_fused(members: list[Member], shared: int, phase: str) -> None:  # noqa: C901 - resume, divergence, checkpoints
    """Train ``members`` (in :func:`by_seed`'s order) through ``phase`` ("pre" or "post") as one fused
    network, ``shared`` runs to an input block; each run's rows, checkpoints and final state its own."""
    first = members[0].run
    runs, epochs = len(members), phase_epochs(first.config, phase)
    learner = fuse_learners([m.training.learner for m in members], fresh_for(first), shared)
    options = group_options(members)
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

    for member in members:  # a kill within the group's first commit sends a run back to its start (_align)
        if not member.run.checkpoint.path.is_file():
            member.run.checkpoint.save({**checkpoint_state(member.run, member.training), **member.rng})
    rows = FusedRows([m.training.progress.rows for m in members], [True] * runs, diverged)
    writer = GroupWriter()
    cadence = Cadence(first.config.checkpoint_every)

    def after_epoch(epoch: int) -> None:
        for index, member in enumerate(members):
            member.run.data.train.epoch = train.epoch
            if rows.live[index]:
                member.training.progress.epochs_done = epoch
        if cadence.due():
            states = split_learner(learner)
            writer.commit([(m.run.checkpoint, {**checkpoint_state(m.run, m.training, states[index]), **m.rng})
                           for index, m in enumerate(members) if rows.live[index]])
            cadence.saved()

    for member in members:
        if phase == "post":
            member.training.train_step = step_name
        else:
            member.training.pretrain_step = step_name
        member.run.log(f"{phase.capitalize()}-train for {epochs} epochs, fused with {runs - 1} other "
                       f"run{'s' if runs > 2 else ''} of this set-up (one network of {runs} runs).")
    with PeakMemory(options.device) as peak, writer:
        fused_train_eval_loop(learner, train, test, epochs, phase, options, rows,
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
