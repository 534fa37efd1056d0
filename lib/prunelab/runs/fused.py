"""Runs of one set-up trained together as one network, each ending in its own ordinary record.

:func:`run_group` takes runs that differ only in what pruning and the seed choose (:mod:`~prunelab.runs.fused_plan`)
and does what each would do alone up to fixed masks: prepare, pre-train (shared, :mod:`prunelab.runs.pretrain`)
and prune, each with its own random numbers. Their post-pruning epochs train as one widened network
(:mod:`prunelab.core.fused`); the dense pre-trainings the group would train (one per seed, Mag's) train in it
too, beside the other runs' post-training: both start from a fresh optimizer, so they are steps of one network
until the shorter phase ends (Mag's post-training, after its pruning, then trains as a network of its own). Each
run keeps its masks, weights, data order, evaluation, rows and checks; runs of one seed draw the same
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
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.fused import FusionRefused
from ..core.train import Preempted
from ..errors import UserError
from .checkpoint import RunInProgress, rng_state, set_rng_state
from .config import RunConfig
from .fused_decision import Member, decide, memory_chunks, phase_end, phases
from .fused_network import train_network
from .fused_parts import PartsBook
from .fused_plan import fusion_obstacle, group_key, input_blocks, plan
from .fused_points import align, history, point
from .prepare import RunLog, reused_record
from .pretrain import SharedPretraining, shares_pretraining
from .registry import run
from .run_files import report_run
from .singleshot import (
    Training,
    begin_training,
    diverging,
    finish,
    open_run,
    post_train,
    pre_train_and_prune,
)
from .store import RunRecord, load_record

#: the stages of :func:`train_group`: pre-trainings beside the post-trainings that need none, what the
#: pre-trainings have left, and the post-trainings left
BESIDE, PRE_LEFT, POST = "beside", "pre-left", "post"


@dataclass
class GroupResult:
    """What a group's runs ended in: each run's record path, or None for a run another process holds or one
    that failed; the fusion decisions as one line, one per network or set of runs decided ("fused: 18 runs (3
    pre-training) in 1 group (...); fused: 3 runs in 1 group (...)", "separate: ..."); and the error of each run
    that failed by itself (in opening or pruning, before its training joins the others'), by record name (a
    sweep's task returns each as one that pickles)."""

    paths: list[str | None]
    decision: str
    failures: dict[str, BaseException] = field(default_factory=dict)


@dataclass
class GroupWatch:
    """Who watches a group as it trains (a sweep's progress lines, the local executor): ``decided`` gets each
    fusion decision as it is made, ``standing`` where a long fused network stands (about once a minute), and
    ``ended`` the runs whose records were just written, with their paths: the runs whose post-training a fused
    network ended, together, or a run trained alone; ``failed`` a run that failed by itself, with its error."""

    decided: Callable[[str], None]
    standing: Callable[[str], None]
    ended: Callable[[list[tuple[RunConfig, str]]], None]
    failed: Callable[[RunConfig, BaseException], None] = lambda config, error: None


#: a group nobody watches
UNWATCHED = GroupWatch(lambda line: None, lambda line: None, lambda runs: None)


def run_group(configs: list[RunConfig], progress: bool = True, log: Callable[[str], None] = print,
              watch: GroupWatch = UNWATCHED) -> GroupResult:
    """Run ``configs`` (one group of :func:`plan`), fused where the decisions say, and return where each
    run's record is. ``log`` gets every run's lines (each run's are also its record's log.txt); the decision
    line is in the result, for the caller to show, and ``watch`` is told as the group goes. A run that fails in
    opening or pruning fails alone, as it would outside the group: the others train on without it."""
    keys = {group_key(c) for c in configs}
    if len(keys) > 1 or any(fusion_obstacle(c) for c in configs):
        raise FusionRefused("these runs do not share one set-up and training settings: plan() splits them")
    if len({c.record_name for c in configs}) < len(configs):
        raise FusionRefused("a run is listed twice in this group: plan() runs the repeat alone")
    group = _GroupRun(watch, {}, PartsBook.beside(configs[0]))
    with contextlib.ExitStack() as stack:
        members = _open_each(configs, stack, group, progress, log)
        if not group.records and not any(m.training.resumed for m in members):  # a fresh group: no cut is its yet
            group.parts.drop([m.run.config.record_name for m in members])
        train_group(members, group)
        members = group.alive(members)
        if not group.decisions:
            group.decided(_nothing_fused(members))
        left = [m for m in members if _left_to_train(m)]
        group.finish([m for m in members if m not in left])
        for member in left:  # what no fused network trained, each run alone
            set_rng_state(member.rng)  # a network that draws random numbers in training draws its own, as alone
            with member.run.log.warnings(), diverging(member.run, member.training):
                post_train(member.run, member.training)
            group.finish([member])
    records = {name: str(record.path) for name, record in group.records.items() if record is not None}
    return GroupResult([records.get(c.record_name) for c in configs], "; ".join(group.decisions), group.failures)


@dataclass
class _GroupRun:
    """A group as it trains: who watches it, the decisions so far, the records its runs ended in (a run
    held by another process: None; each run's record is written as soon as its training ends), and the parts
    it was cut into for the device's memory (kept for a resume), and the runs that failed by themselves."""

    watch: GroupWatch
    records: dict[str, RunRecord | None]
    parts: PartsBook
    decisions: list[str] = field(default_factory=list)
    failures: dict[str, BaseException] = field(default_factory=dict)

    def failed(self, config: RunConfig, error: BaseException, log: RunLog) -> None:
        """``config``'s run failed by itself (a stop asked for, :class:`Preempted`, stops the group instead)."""
        if isinstance(error, Preempted):
            raise error
        what = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"  # a person's: words
        log(f"FAILED: {what}; the group's other runs go on without this one.")
        traceback.clear_frames(error.__traceback__)  # its lines stay; the tensors its frames held go (a GPU's)
        self.failures[config.record_name] = error
        self.watch.failed(config, error)

    def alive(self, members: list[Member]) -> list[Member]:
        """``members`` but the runs that failed."""
        return [m for m in members if m.run.config.record_name not in self.failures]

    def decided(self, line: str) -> None:
        self.decisions.append(line)
        self.watch.decided(line)

    def finish(self, members: list[Member]) -> None:
        """Write the record of each of ``members`` not yet finished, and tell the watch they ended (those written,
        should a later one fail)."""
        written: list[tuple[RunConfig, str]] = []
        try:
            for member in [m for m in members if m.run.config.record_name not in self.records]:
                with member.run.log.warnings():
                    record = self.records[member.run.config.record_name] = finish(member.run, member.training)
                written.append((member.run.config, str(record.path)))
        finally:
            if written:
                self.watch.ended(written)


def _open_each(configs: list[RunConfig], stack: contextlib.ExitStack, group: _GroupRun, progress: bool,
               log: Callable[[str], None]) -> list[Member]:
    """Open each run that is left to train (held open until ``stack`` closes) as a member of the group; a run
    with a record, or held by another process (None), goes to the group's records instead, and one that fails
    to open to its failures."""
    members = []
    for config in configs:
        run_log = RunLog(log)
        try:
            member = _open_member(config, stack, progress, run_log)
        except RunInProgress:  # another process trains it: not this group's
            group.records[config.record_name] = None
        except Exception as error:  # noqa: BLE001 - its own record's conflict, its checkpoint: this run's alone
            group.failed(config, error, run_log)
        else:
            if isinstance(member, RunRecord):
                group.records[config.record_name] = member
            else:
                members.append(member)
    return members


def _open_member(config: RunConfig, stack: contextlib.ExitStack, progress: bool, run_log: RunLog
                 ) -> Member | RunRecord:
    """The run as a member of the group, or its record where it has one to reuse."""
    config.validate()
    existing = reused_record(config, run_log)
    if existing is not None:
        report_run(existing, config.verbose, run_log)
        return existing
    with run_log.warnings():  # loading its data may warn (a stand-in): a line of its log, not stderr
        opened = stack.enter_context(open_run(config, progress, run_log))
    if isinstance(opened, RunRecord):
        return opened
    training = begin_training(opened)
    return Member(opened, training, rng_state(), alone_in=_resumed_alone(training))


def _resumed_alone(training: Training) -> str | None:
    """The phase a resumed run stands partway through having trained its last epochs alone (its checkpoint's
    step name is no fused network's), or None. A run that trains a phase alone trains it to its end, so the
    group leaves it alone there, as it would have unkilled."""
    progress = training.progress
    if not training.resumed or training.status != "complete" or not progress.epochs_done:
        return None
    step = training.pretrain_step if progress.phase == "pre" else training.train_step
    return progress.phase if step is None or not step.startswith("fused") else None


def _left_to_train(member: Member) -> bool:
    """Whether the run, neither diverged nor stopped, has epochs left in its phase."""
    return member.training.status == "complete" and point(member.training.progress) < phase_end(member)


def _nothing_fused(members: list[Member]) -> str:
    """The decision line of a group that trained no network: nothing to fuse, or nothing left to train."""
    if len(members) < 2:
        return decide(members)[1]
    return f"separate: {len(members)} runs, none left to train together"


def train_group(members: list[Member], group: _GroupRun) -> None:
    """Train the group's runs, fused where :func:`decide` says (each decision told to ``group``, and each run
    finished there as a fused network ends its post-training). The dense pre-trainings the runs would each
    train (one run per shared pre-training not yet recorded, :mod:`prunelab.runs.pretrain`) train fused with
    the runs that need none, once those are pruned: Mag's pre-training and the other pruners' post-training
    are steps of one network from a fresh optimizer. Every run is then pruned (the others of a shared
    pre-training continue from its record), and the post-trainings left train fused; what no fused network
    trained, :func:`run_group` trains run by run."""
    pending = [m for m in members if _pretraining_pending(m)]
    trainers: dict[str, Member] = {}
    # the first run of each key trains it; one stopped there (resumed so) still holds it, and the others then
    # pre-train alone, as they did when it stopped
    for member in pending:
        trainers.setdefault(_pretraining(member).key, member)
    _prune_each([m for m in members if m not in pending], group)
    members = group.alive(members)
    if trainers:
        _train_stage([*trainers.values(), *_post(members)], BESIDE, group)
        # what the pre-trainings have left once the post-trainings beside them ended (the full profile's 200
        # epochs against 100): the pre-trainings alone, cut anew (on a GPU short of memory each may have trained
        # in a part of its own); where the network beside them was decided against, they stay apart
        _train_stage(list(trainers.values()), PRE_LEFT, group)
    _prune_each(members, group)  # a pre-training left unfused trains alone here, and is shared
    _train_stage(_post(group.alive(members)), POST, group)


def _pretraining(member: Member) -> SharedPretraining:
    return SharedPretraining(member.run.config, member.run.data.source)


def _pretraining_pending(member: Member) -> bool:
    """Whether the run still has to pre-train a shared pre-training that no record holds yet."""
    config = member.run.config
    return shares_pretraining(config) and member.training.progress.phase == "pre" and (
        _pretraining(member).record() is None)


def _post(members: list[Member]) -> list[Member]:
    """The runs pruned for good, trained or diverged (a group cuts itself from every run, :func:`_train_stage`)."""
    return [m for m in members if m.training.progress.phase == "post"]


def _prune_each(members: list[Member], group: _GroupRun) -> None:
    """Pre-train (what is left to train alone) and prune each run not yet pruned, from its own random state; a
    run whose pruning fails goes to the group's failures."""
    for member in members:
        if member.training.status != "complete" or member.training.progress.phase != "pre":
            continue
        set_rng_state(member.rng)  # pruning draws from the run's own random state, as alone
        try:
            with member.run.log.warnings(), diverging(member.run, member.training):
                pre_train_and_prune(member.run, member.training)
        except Exception as error:  # noqa: BLE001 - a researcher's pruner that raises fails its own runs only
            group.failed(member.run.config, error, member.run.log)
        member.rng = rng_state()


def _train_stage(members: list[Member], stage: str, group: _GroupRun) -> None:
    """Train ``members``, each in its phase, fused where :func:`decide` says: the runs of each training history
    (:func:`~prunelab.runs.fused_points.history`) with a run left to train, in the groups the device's memory
    holds (:func:`memory_chunks`, cut from every run of the history, trained or diverged), and within each, the
    runs that stand at one point (:func:`_next_round`) as one network until the first of their phases ends,
    then the runs left likewise; in the stages before :data:`POST`, only such networks as hold a pre-training
    (the others wait for a later stage). Each decision is told to ``group`` (a cut's only where a part of it
    trains here), and each cut kept in its book of parts under the stage and history."""
    pre_only = stage != POST
    histories: dict[int, list[Member]] = {}
    for member in members:
        histories.setdefault(history(member), []).append(member)
    for past, runs in histories.items():
        # a pre-training at its phase's end may be a commit ahead of the runs beside it, so it counts here
        if sum(m.training.status == "complete" for m in runs) < 2 or not any(map(_left_to_train, runs)) or (
                pre_only and "pre" not in phases(runs)):
            continue
        chunks, line = memory_chunks(*by_seed(runs), group.parts, f"{stage}:{past}")
        busy = [chunk for chunk in chunks if _next_round(chunk, pre_only)]
        # a cut into single runs fuses nothing: said once, in the last stage, where every run left trains
        if line and (busy or (not pre_only and all(len(chunk) == 1 for chunk in chunks))):
            group.decided(line)
        for chunk in busy:
            _train_chunk(chunk, pre_only, group)


def _next_round(chunk: list[Member], pre_only: bool) -> list[tuple[list[Member], int]]:
    """The networks ``chunk`` (one memory group) trains next, with their runs to an input block: its runs not
    decided apart in their phase, in subgroups of two or more by point (:func:`_subgroups`, which lines them up
    first), with ``pre_only`` only those holding a pre-training."""
    undecided = [m for m in chunk if m.alone_in != m.training.progress.phase]
    return [(runs, shared) for runs, shared in _subgroups(undecided)
            if len(runs) > 1 and (not pre_only or "pre" in phases(runs))]


def _train_chunk(chunk: list[Member], pre_only: bool, group: _GroupRun) -> None:
    """:func:`_train_stage` within one memory group: its networks, round after round, each run finished as its
    post-training ends. A decision to train runs apart holds for any later network of some of them in the same
    phase (here or in a later stage: fewer runs gain less from fusing), so it is not measured again."""
    while subgroups := _next_round(chunk, pre_only):
        for subgroup, shared in subgroups:
            fuse, decision = decide(subgroup, shared)
            group.decided(decision)
            if fuse:
                train_network(subgroup, shared, min(phase_end(m) for m in subgroup), group.watch.standing)
                group.finish([m for m in subgroup if not _left_to_train(m) and (
                    m.training.status != "complete" or m.training.progress.phase == "post")])
            else:
                for member in subgroup:
                    member.alone_in = member.training.progress.phase


def _subgroups(members: list[Member]) -> list[tuple[list[Member], int]]:
    """The runs (of one training history, as :func:`_train_stage` cuts them) with epochs left in their phase, in
    one subgroup per point of training they stand at (their optimizers' step counts and schedules then agree),
    after a kill between their checkpoint commits is set right (:func:`~prunelab.runs.fused_points.align`);
    each ordered by seed with its runs per input block (:func:`by_seed`)."""
    live = [m for m in members if m.training.status == "complete"]
    align(live)
    points: dict[int, list[Member]] = {}
    for member in live:
        if point(member.training.progress) < phase_end(member):
            points.setdefault(point(member.training.progress), []).append(member)
    return [by_seed(subgroup) for subgroup in points.values()]


def by_seed(members: list[Member]) -> tuple[list[Member], int]:
    """``members`` ordered by seed (seeds in first-seen order), and how many consecutive runs share one input
    block when fused (:func:`input_blocks`)."""
    seeds = [m.run.config.seed for m in members]
    first_seen = list(dict.fromkeys(seeds))
    ordered = sorted(members, key=lambda m: first_seen.index(m.run.config.seed))
    return ordered, input_blocks(seeds)


def run_configs(configs: list[RunConfig], progress: bool = True, log: Callable[[str], None] = print
                ) -> list[RunRecord]:
    """Run every configuration (the command line's list flags): the groups of :func:`plan` fused as their
    decision says, the rest one by one; a run held by another process raises its ``RunInProgress``, and a run
    that fails its error (in a group, once the others' records are written)."""
    records, failures = run_until_failure(configs, progress, log)
    if failures:
        raise next(iter(failures.values()))
    return [records[c.record_name] for c in configs]


def run_until_failure(configs: list[RunConfig], progress: bool = True, log: Callable[[str], None] = print
                      ) -> tuple[dict[str, RunRecord], dict[str, BaseException]]:
    """:func:`run_configs`'s runs until one fails: the records made, and the errors of the runs that failed (a
    group's, once the others' records are written, or a run held by another process), each by record name. The
    groups after a failure are not run; a stop asked for (:class:`Preempted`) is raised."""
    records: dict[str, RunRecord] = {}
    for group in plan(configs):
        if len(group) == 1:
            try:
                records[group[0].record_name] = run(group[0], progress, log)
            except Preempted:
                raise
            except Exception as error:  # noqa: BLE001 - the caller raises it, once it has said what ran
                return records, {group[0].record_name: error}
            continue
        result = run_group(group, progress, log, GroupWatch(log, log, lambda runs: None))  # decisions as made
        failures = dict(result.failures)
        for config, path in zip(group, result.paths):
            if path is not None:
                records[config.record_name] = load_record(path)
            elif config.record_name not in failures:
                failures[config.record_name] = RunInProgress(f"{config.record_name} is in progress in another "
                                                             "process; wait for it")
        if failures:
            return records, failures
    return records, {}
