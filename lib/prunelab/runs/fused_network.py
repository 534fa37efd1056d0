"""One fused network of a group's runs (:mod:`prunelab.runs.fused`) trained to an epoch: each run in its phase,
with its own rows, checkpoints (a group commit written in a thread while the next epoch trains) and final
state, and a line once a minute for a person watching a long network."""

from __future__ import annotations

from collections.abc import Callable

from ..core.fused import fuse_learners, split_learner
from ..core.fused_loop import FusedRows, StackedLoader, fused_train_eval_loop
from ..core.train import epoch_line
from ..precision.memory import PeakMemory
from .checkpoint import Cadence, GroupWriter
from .fused_decision import Member, fresh_for, group_options, phase_end, phases
from .fused_points import history
from .singleshot import checkpoint_state

#: how often a fused network says which epoch it stands at (seconds), for a person watching a long group
STANDING_EVERY_S = 60.0


def train_network(members: list[Member], shared: int, epochs: int, standing: Callable[[str], None]) -> None:
    """Train ``members`` (in :func:`~prunelab.runs.fused.by_seed`'s order, each in its phase: dense pre-training
    or post-training) to epoch ``epochs`` as one fused network, ``shared`` runs to an input block; each run's
    rows, checkpoints and final state its own. ``standing`` gets the epoch it stands at once a minute (a long
    network's progress line)."""
    from tqdm import tqdm

    runs = len(members)
    learner = fuse_learners([m.training.learner for m in members], fresh_for(members[0].run), shared)
    options = group_options(members)
    writer = GroupWriter()

    def diverged(index: int, reason: str) -> None:
        """The run stops with its weights as they went wrong, checkpointed so at once (after the commits
        before): a kill before the network ends resumes it stopped, its record as if not killed."""
        member = members[index]
        member.training.learner.load_state_dict(split_learner(learner, [index])[0])
        member.training.stop(reason)
        member.stopped_history = history(member)  # as its checkpoint resumes it
        member.run.log(f"STOPPED: {member.training.message}.")
        writer.commit([(member.run.checkpoint, _saved(member))])

    _save_starts(members)
    network = _announce(members, epochs, f"fused ({runs} runs)" + (", cuda graph" if options.cuda_graph else ""))
    rows = FusedRows([m.training.progress.rows for m in members], phases(members), [True] * runs, diverged)
    cadence, said = Cadence(members[0].run.config.checkpoint_every), Cadence(STANDING_EVERY_S)
    train, test = _stacked_loaders(members, shared)

    def after_epoch(epoch: int) -> None:
        for index, member in enumerate(members):
            member.run.data.train.epoch = train.epoch
            made = rows.rows[index]
            if member.run.config.verbose and made and made[-1]["epoch"] == epoch:  # its row of this epoch
                tqdm.write(f"{_name(member)} {epoch_line(made[-1])}")
            if rows.live[index]:
                member.training.progress.epochs_done = epoch
        if cadence.due():
            states = split_learner(learner)
            writer.commit([(m.run.checkpoint, _saved(m, states[index])) for index, m in enumerate(members)
                           if rows.live[index]])
            cadence.saved()
        if said.due() and 0 < epoch < epochs:
            stopped = runs - sum(rows.live)
            standing(f"fused: {network}: {epoch} of {epochs} epochs trained"
                     + (f", {stopped} run{'s' if stopped > 1 else ''} stopped" if stopped else ""))
            said.saved()

    with PeakMemory(options.device) as peak, writer:
        fused_train_eval_loop(learner, train, test, epochs, options, rows,
                              done=members[0].training.progress.epochs_done, after_epoch=after_epoch)
    states = split_learner(learner)
    for index, member in enumerate(members):
        member.training.peaks.append(peak)
        if rows.live[index]:
            member.training.learner.load_state_dict(states[index])


def _name(member: Member) -> str:
    """Which run a line of the network is about (the runs' lines interleave)."""
    config = member.run.config
    return f"{config.pruner} c={config.compression:g} seed {config.seed} ({config.record_name})"


def _save_starts(members: list[Member]) -> None:
    """Save the start of each run that has no checkpoint yet: a kill within the group's first commit then sends
    a run back to its start (:func:`~prunelab.runs.fused_points.align`)."""
    for member in members:
        if not member.run.checkpoint.path.is_file():
            member.run.checkpoint.save(_saved(member))


def _saved(member: Member, learner_state: dict | None = None) -> dict:
    """What the run's checkpoint holds (:func:`~prunelab.runs.singleshot.checkpoint_state`, ``learner_state`` its
    part of the fused learner where given), with its own random state."""
    return {**checkpoint_state(member.run, member.training, learner_state), **member.rng}


def _announce(members: list[Member], epochs: int, step_name: str) -> str:
    """Name the fused network in each run's record (``step_name``) and log; returns its name for progress lines
    ("one network of 18 runs, 3 of them pre-training")."""
    runs, each = len(members), phases(members)
    network = f"one network of {runs} runs" + (f", {each.count('pre')} of them pre-training"
                                               if "pre" in each and "post" in each else "")
    for member, phase in zip(members, each):
        if phase == "post":
            member.training.train_step = step_name
        else:
            member.training.pretrain_step = step_name
        end = phase_end(member)
        span = f"for {end} epoch{'' if end == 1 else 's'}" if epochs == end else f"to epoch {epochs} of {end}"
        member.run.log(f"{phase.capitalize()}-train {span}, fused with {runs - 1} other run{'s' if runs > 2 else ''} "
                       f"of this set-up ({network}).")
    return network


def _stacked_loaders(members: list[Member], shared: int) -> tuple[StackedLoader, StackedLoader]:
    """The fused network's training and test batches: runs of one seed draw the same batches, so the first
    such run's loaders serve them all."""
    owners: list[Member] = []
    loader_of: dict[int, int] = {}
    for member in members:
        if member.run.config.seed not in loader_of:
            loader_of[member.run.config.seed] = len(owners)
            owners.append(member)
    of_run = [loader_of[m.run.config.seed] for m in members]
    return (StackedLoader([o.run.data.train for o in owners], of_run, shared),
            StackedLoader([o.run.data.test for o in owners], of_run, shared))
