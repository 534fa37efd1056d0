"""Whether a group's runs train fused (:func:`decide`), and the line that says so.

``--fuse auto`` fuses when one fused step, measured on copies on this device against one step of one run
(``core.timing.interleaved``), is faster than M steps; it does not measure, and trains run by run, when
measuring would cost more than a small share of the training. ``on`` fuses unmeasured, ``off`` never. fp16
with a gradient scaler is not fused (one run's overflow would skip every run's step), nor a network that
:func:`~prunelab.core.fused.check_fused` refuses.

On CUDA a group first cuts itself into as many runs as the device's free memory holds a fused step of
(:func:`memory_chunks`, judged from one step of one run); each such chunk then trains as a group of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.fused import FusionRefused, check_fused, fuse_learners
from ..core.fused_loop import FusionTiming, device_room, fused_chunk, held_bytes, step_bytes, time_fusion
from ..core.timing import MARGIN
from ..core.train import GRAPH_WARMUP_STEPS, Learner, LoopOptions, train_step
from ..precision.amp import make_scaler
from .fused_parts import PartsBook, named_runs
from .run_state import RunState
from .singleshot import Training, fresh_learner, wants_graph

#: measuring may cost this share of the separate training it decides about (or MEASURE_FLOOR_S, if more)
MEASURE_SHARE = 0.05
MEASURE_FLOOR_S = 2.0
#: timed steps of each kind when measuring (after the warm-up)
MEASURE_REPEATS = 3


@dataclass(eq=False)
class Member:
    """One run of a group: set up (:class:`RunState`), its training where it stands (:class:`Training`), and
    its own random state (``rng``, :func:`~prunelab.runs.checkpoint.rng_state`): the fused loops draw no
    random numbers, so a run's state stays what its own training would leave, and its checkpoints keep it.
    ``alone_in``: the phase :func:`decide` said to train it by itself in (the decision holds for the group's later
    stages, so it is not measured again). ``stopped_history``: the training history a run stopped in a fused
    network had as it stopped (:func:`~prunelab.runs.fused_points.history`; the loader of its seed draws on for
    the others, but it keeps the history its checkpoint resumes it with).
    Members are compared by identity (a run is itself, whatever its state)."""

    run: RunState
    training: Training
    rng: dict
    alone_in: str | None = None
    stopped_history: int | None = None


def phase_end(member: Member) -> int:
    """The epoch the run's phase ends at: its pre-training epochs in "pre" (dense), else its post-training's."""
    config = member.run.config
    return config.pre_epochs if member.training.progress.phase == "pre" else config.post_epochs


def phases(members: list[Member]) -> list[str]:
    """Each run's phase: "pre" (dense pre-training) or "post"."""
    return [m.training.progress.phase for m in members]


def what_trains(members: list[Member]) -> str:
    """The runs in words, with their phases: "6 runs", "3 runs' pre-training", "18 runs (3 pre-training)"."""
    runs, pre = len(members), phases(members).count("pre")
    if pre and pre == runs:
        return f"{runs} runs' pre-training"
    return f"{runs} runs" + (f" ({pre} pre-training)" if pre else "")


def decide(members: list[Member], shared: int = 1) -> tuple[bool, str]:
    """Whether to fuse ``members``' training, each in its phase (``shared`` runs to an input block), and the
    line that says so (the progress line)."""
    runs = len(members)
    what = what_trains(members)
    if runs < 2:
        return False, f"separate: {runs} run{'s' if runs != 1 else ''} to train, nothing to fuse"
    first = members[0].run
    if make_scaler(first.precision, first.device).is_enabled():
        return False, (f"separate: {what}; fp16 with a gradient scaler is not fused (one scaler would skip "
                       "every run's step when one run overflows)")
    try:
        learner = fuse_learners([m.training.learner for m in members], fresh_for(first), shared)
        check_fused(learner.model, [m.run.model for m in members], _batch(first, 2)[0])
    except FusionRefused as why:
        return False, f"separate: {what}; not fused: {why}"
    if first.config.fuse == "on":
        return True, f"fused: {what} in 1 group (--fuse on, not measured)"
    timing = _measure(members, learner)
    del learner
    if timing is None:
        return False, (f"separate: {what}; fusion not measured (measuring would cost more than "
                       f"{MEASURE_SHARE:.0%} of their training)")
    turns = _turns_words(timing.turns)
    if timing.pays():
        return True, (f"fused: {what} in 1 group (a fused step measured {timing.speedup:.2f}x the speed of "
                      f"{runs} steps of one run{turns})")
    return False, (f"separate: {what}; fusion measured no faster here ({timing.speedup:.2f}x, where "
                   f"{1 / (1 - MARGIN):.2f}x would pay{turns})")


def _turns_words(turns: tuple[float, ...]) -> str:
    """The range of the turns' speedups where they differ ("; 1.91x to 2.20x over 3 timings, fused and separate
    steps taking turns"), else nothing."""
    low, high = f"{min(turns, default=0):.2f}", f"{max(turns, default=0):.2f}"
    return (f"; {low}x to {high}x over {len(turns)} timings, fused and separate steps taking turns"
            if low != high else "")


def memory_chunks(members: list[Member], shared: int, book: PartsBook, stage: str
                  ) -> tuple[list[list[Member]], str | None]:
    """``members`` (ordered by seed, ``shared`` runs to an input block) cut in order into the groups the
    device's memory holds a fused step of (:func:`~prunelab.core.fused_loop.fused_chunk`, from one training
    step of a copy of the first run, and what a run holds beside it), and the line that says so (None when
    they are one group). Off CUDA they are one group. The size is kept in the runs' progress (``group_runs``,
    saved with their checkpoints), and the cut in ``book`` under ``stage`` (``"<stage>:<training history>"``): a
    resumed group cuts as it did, whatever memory is free and whichever runs have finished since (the caller
    passes every run it has, trained or diverged)."""
    first = members[0].run if members else None
    if first is None or len(members) < 2 or device_room(first.device) is None:
        return [members], None
    kept = [m.training.progress.group_runs for m in members if m.training.progress.group_runs is not None]
    parts = book.kept(stage, [m.run.config.record_name for m in members])
    if parts is not None:
        kept.append(max(len(part) for part in parts))
    size, free = (min(kept), "as measured when the group was first cut") if kept else _fitting_runs(members, shared)
    for member in members:
        member.training.progress.group_runs = size
    if parts is not None:
        chunks = _as_cut(members, parts, size)
    else:
        chunks = [members[start:start + size] for start in range(0, len(members), size)]
        if len(chunks) > 1:
            book.keep(stage, [[m.run.config.record_name for m in chunk] for chunk in chunks])
    if len(chunks) == 1:
        return chunks, None
    what = what_trains(members)
    if size == 1:
        return chunks, f"separate: {what}; a fused step of 2 would not fit ({free})"
    return chunks, (f"fused: {what} in {len(chunks)} groups of up to {size}, one after another (a fused step of "
                    f"more would not fit: {free})")


def _as_cut(members: list[Member], parts: list[list[str]], size: int) -> list[list[Member]]:
    """``members`` in the kept ``parts`` (a run since finished is not among them); a run no part names, cut by
    ``size`` after them."""
    chunks = [[m for m in members if m.run.config.record_name in part] for part in parts]
    named = named_runs(parts)
    rest = [m for m in members if m.run.config.record_name not in named]
    return [c for c in chunks if c] + [rest[start:start + size] for start in range(0, len(rest), size)]


def _fitting_runs(members: list[Member], shared: int) -> tuple[int, str]:
    """How many of ``members`` one fused network holds in the device's free memory, and that memory in words."""
    first = members[0].run
    options = group_options(members)
    single = fresh_learner(first, False, copy.deepcopy(first.model))
    single.model.train()
    step = train_step(single.model, single.optimizer, first.device, options.precision, single.scaler)
    need = step_bytes(step, _batch(first, first.config.train_batch_size), first.device) + held_bytes(single.model)
    del single, step
    room = device_room(first.device)  # the copy's memory is cached now, so counted as room
    size, _ = fused_chunk(len(members), shared, need, room, options.cuda_graph)
    return size, (f"{room / 2**30:.1f} GiB free" if room >= 2**30 else f"{room / 2**20:.0f} MiB free")


def fresh_for(run: RunState) -> Callable[[torch.nn.Module], Learner]:
    """How the group's learner is made: as ``run`` makes its own, for the fused network."""
    return lambda model: fresh_learner(run, wants_graph(run.config, run.device), model)


def group_options(members: list[Member]) -> LoopOptions:
    """How the group's loop trains: as its first run's, with CUDA-graph steps only where every run has them."""
    first = members[0].training.options
    graph = all(m.training.options.cuda_graph for m in members)
    return LoopOptions(first.device, first.precision, cuda_graph=graph, verbose=False,
                       show_progress=first.show_progress)


def _measure(members: list[Member], learner: Learner) -> FusionTiming | None:
    """One fused step against one step of one run, on copies (the runs' own networks are untouched), or
    None when measuring would cost more than its budget."""
    first = members[0].run
    options = group_options(members)
    single = fresh_learner(first, wants_graph(first.config, first.device), copy.deepcopy(first.model))
    batch = _batch(first, first.config.train_batch_size)
    probe = time_fusion(learner, single, batch, options, repeats=1, warmup=0)  # what one step of each costs
    steps = len(first.data.train) * sum(phase_end(m) - (m.training.progress.epochs_done or 0) for m in members)
    warmup = 1 + (GRAPH_WARMUP_STEPS + 1 if options.cuda_graph else 0)
    cost = (warmup + MEASURE_REPEATS) * (probe.fused_s + probe.separate_s)
    if cost > max(MEASURE_FLOOR_S, MEASURE_SHARE * steps * probe.separate_s):
        return None
    return time_fusion(learner, single, batch, options, repeats=MEASURE_REPEATS, warmup=warmup)


def _batch(run: RunState, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of ``size`` inputs and labels of the run's shape and layout, drawn from a generator of its own
    (the runs' random state stays): for timing a step, and for comparing outputs."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(size, *run.info.input_shape, generator=generator).to(run.device)
    y = torch.randint(0, run.info.num_classes, (size,), generator=generator).to(run.device)
    return (x.contiguous(memory_format=torch.channels_last) if run.channels_last else x), y
