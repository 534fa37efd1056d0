"""Where the runs of a fused group stand (:mod:`prunelab.runs.fused`): the point of training in their phase,
the training history they have behind it, and lining them up again when a kill fell between their checkpoint
commits, so a killed group resumes as it trained."""

from __future__ import annotations

from .checkpoint import rng_state
from .fused_decision import Member, phase_end
from .run_state import CHECKPOINT_KEYS, TrainingProgress


def point(progress: TrainingProgress) -> int:
    """Where a run's training in its phase stands: the epoch of its last row (-1 before the first evaluation)."""
    return -1 if progress.epochs_done is None else progress.epochs_done


def history(member: Member) -> int:
    """The epochs the run trained before its phase began (a Mag run's pre-training, in its post-training): runs
    of one history that stand at one point have taken as many steps and drawn as many epochs of data; a run
    stopped in a fused network keeps the history it stopped with."""
    if member.stopped_history is not None:
        return member.stopped_history
    return member.run.data.train.epoch - max(point(member.training.progress), 0)


def align(members: list[Member]) -> None:
    """Bring runs of one training history (a stage of :mod:`prunelab.runs.fused` cuts its runs by history) to
    one point when a kill fell between their checkpoint commits: a run a commit ahead (an epoch, or more with
    ``--checkpoint-every``) goes back to the state its group commit kept (``previous.pt``, its start before the
    first commit), and that state is made its current one, so the group resumes together however often it is
    killed. The point is the earliest of the runs that still train in their phase (a run at its phase's end may
    be ahead); a run goes back only to a state of the phase and cycle it is in: a save alone (after pruning, or
    in separate training) leaves the last group commit's ``previous.pt``, which may be from its pre-training."""
    target = min((point(m.training.progress) for m in members if point(m.training.progress) < phase_end(m)),
                 default=None)
    for member in members:
        if target is not None and point(member.training.progress) != target:
            _go_back(member, target)


def _go_back(member: Member, target: int) -> None:
    """Make the run's state the one its last group commit replaced, when that state stands at ``target`` of the
    phase and cycle the run is in."""
    previous = member.run.checkpoint.load(CHECKPOINT_KEYS, previous=True)
    if previous is None:
        return
    progress, now = TrainingProgress.from_checkpoint(previous["progress"]), member.training.progress
    if (progress.phase, progress.cycle) == (now.phase, now.cycle) and point(progress) == target:
        member.training.restore(member.run, previous)
        member.run.checkpoint.save(previous)  # current on disk too, so the next commit keeps it as previous.pt
        member.rng = rng_state()
        where = "its start" if target == -1 else f"epoch {target}"
        member.run.log(f"Back to {member.training.progress.phase}-training {where} with its group (a kill fell "
                       "between the group's checkpoint commits).")
