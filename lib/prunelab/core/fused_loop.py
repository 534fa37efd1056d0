"""The training loop of a fused group (:mod:`prunelab.core.fused`): its stacked batches, its evaluation, its
epochs with each run's rows and checks, and the timing that decides whether fusing pays on a device."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .evaluation import Evaluation, synchronize
from .fused import FusedModel, fused_losses, run_outputs, sample_losses, stack_inputs
from .timing import MARGIN, faster_by, interleaved
from .train import (
    TRAIN_LOSS_DIVERGED,
    Learner,
    LoopOptions,
    Preempted,
    divergence,
    epoch_row,
    stop_requested,
    train_step,
)


class StackedLoader:
    """Each epoch's fused batches from the runs' loaders: ``loaders`` are the distinct loaders (runs of one
    seed draw the same batches, so share one) and ``of_run[m]`` the index of run m's. Each distinct loader
    is iterated once per epoch; ``epoch`` reads theirs (all alike). With ``shared`` = R (a
    :class:`~prunelab.core.fused.FusedModel`'s), each R consecutive runs read one loader, and the fused input
    holds that loader's batch once; the labels are every run's, [B, M]."""

    def __init__(self, loaders: Sequence, of_run: Sequence[int], shared: int = 1) -> None:
        self.loaders, self.of_run = list(loaders), list(of_run)
        self.of_input = self.of_run[::shared]
        if self.of_run != [i for i in self.of_input for _ in range(shared)]:
            raise ValueError(f"runs do not read their loaders in blocks of {shared}: {self.of_run}")

    def __len__(self) -> int:
        return len(self.loaders[0])

    @property
    def epoch(self) -> int:
        return self.loaders[0].epoch

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for parts in zip(*self.loaders):
            yield (stack_inputs([parts[i][0] for i in self.of_input]),
                   torch.stack([parts[i][1] for i in self.of_run], dim=1))


@torch.no_grad()
def evaluate_fused(model: FusedModel, loader: Iterable[tuple[Tensor, Tensor]], options: LoopOptions
                   ) -> list[Evaluation]:
    """Each run's :class:`Evaluation` over its test batches, from one pass of the fused network; a run's
    ``inference_s`` is its share of the pass (the wall time over the runs)."""
    device, runs = options.device, model.runs
    model.eval()
    loss_sum = torch.zeros(runs, device=device, dtype=torch.float64)
    correct1 = torch.zeros(runs, device=device, dtype=torch.long)
    correct5 = torch.zeros(runs, device=device, dtype=torch.long)
    count = 0
    synchronize(device)
    start = time.perf_counter()
    for x, y in loader:
        with options.precision.autocast(device):
            logits = run_outputs(model(x), runs)
        loss_sum += sample_losses(logits.float(), y).sum(dim=0)
        hits = logits.topk(min(5, logits.shape[2]), dim=2).indices == y[:, :, None]
        correct1 += hits[:, :, 0].sum(dim=0)
        correct5 += hits.any(dim=2).sum(dim=0)
        count += y.shape[0]
    synchronize(device)
    share = (time.perf_counter() - start) / runs
    if count == 0:
        return [Evaluation(math.nan, math.nan, math.nan, share) for _ in range(runs)]
    losses = (loss_sum / count).tolist()
    top1, top5 = ([100.0 * n / count for n in correct.tolist()] for correct in (correct1, correct5))  # as a run counts
    return [Evaluation(losses[m], top1[m], top5[m], share) for m in range(runs)]


def train_fused_epoch(model: FusedModel, step, loader: Iterable[tuple[Tensor, Tensor]], device,
                      progress=None) -> list[float]:
    """One pass over the fused batches taking ``step`` (from :func:`~prunelab.core.train.train_step` with
    :func:`fused_losses`) on each; returns each run's mean training loss (NaN or infinite for a run that
    diverged: the others train on, untouched by it). Raises :class:`Preempted` when a stop was requested."""
    model.train()
    total = torch.zeros(model.runs, device=device, dtype=torch.float64)
    count = 0
    for x, y in loader:
        if stop_requested.is_set():
            raise Preempted("stop requested")
        losses = step(x, y)
        total += losses.detach().double() * y.shape[0]
        count += y.shape[0]
        if progress is not None:
            progress.update(1)
    return (total / max(count, 1)).tolist()


@dataclass
class FusedRows:
    """The epoch rows of each run of a fused loop (each run's list is its record's epochs.csv), the phase each
    run's rows are of ("pre" or "post": a dense pre-training may train fused with other runs' post-training),
    and which runs still train: a run that diverges stops getting rows, and ``diverged(m, reason)`` is told
    once."""

    rows: list[list[dict]]
    phases: list[str]
    live: list[bool]
    diverged: Callable[[int, str], None]

    def stop(self, run: int, reason: str) -> None:
        self.live[run] = False
        self.diverged(run, reason)


def fused_train_eval_loop(  # noqa: C901, PLR0913 - train_eval_loop's inputs and steps, with each run's own rows
        learner: Learner, train: StackedLoader, test: StackedLoader, epochs: int, options: LoopOptions,
        runs: FusedRows, *, done: int | None = None, after_epoch: Callable[[int], None] | None = None) -> None:
    """:func:`~prunelab.core.train.train_eval_loop` for a fused learner: evaluate, then train ``epochs``
    epochs evaluating after each, appending each live run's rows (of its phase) to its list in ``runs``. A
    run's rows and checks are those of its separate run (a training loss, test loss or weight gone NaN or infinite
    stops it); ``done`` resumes as there, and ``after_epoch(epoch)`` runs after each evaluation."""
    from tqdm import tqdm

    model: FusedModel = learner.model
    device = options.device

    def record(epoch: int, losses: list[float], train_s: float, lr: float) -> None:
        evaluations = evaluate_fused(model, test, options)
        finite = model.finite_runs()
        for m, ev in enumerate(evaluations):
            if not runs.live[m]:
                continue
            runs.rows[m].append(epoch_row(runs.phases[m], epoch, losses[m], ev, train_s, lr))
            reason = divergence(finite[m], ev)
            if reason is not None:
                runs.stop(m, reason)
        if after_epoch is not None:
            after_epoch(epoch)

    if done is None:
        record(0, [math.nan] * model.runs, 0.0, learner.lr)
        done = 0
    step = train_step(model, learner.optimizer, device, options.precision, learner.scaler, options.cuda_graph,
                      criterion=fused_losses)
    phases = "-".join(dict.fromkeys(runs.phases))  # "pre", "post" or, training both, "pre-post"
    bar = tqdm(total=max(epochs - done, 0) * len(train), desc=f"{phases}-train (fused)", unit="batch",
               disable=not options.show_progress, leave=False)
    try:
        for epoch in range(done + 1, epochs + 1):
            if not any(runs.live):
                break
            lr = learner.lr  # the rate this epoch trains at, before its schedule step
            synchronize(device)
            start = time.perf_counter()
            losses = train_fused_epoch(model, step, train, device, bar)
            synchronize(device)
            share = (time.perf_counter() - start) / model.runs  # each run's share of the fused epoch
            learner.scheduler.step()
            for m, loss in enumerate(losses):
                if runs.live[m] and not math.isfinite(loss):
                    runs.stop(m, TRAIN_LOSS_DIVERGED)
            record(epoch, losses, share, lr)
    finally:
        bar.close()


@dataclass(frozen=True)
class FusionTiming:
    """One fused training step of ``runs`` runs against one step of one run, each the median of repeats, and
    the speedup each turn measured (its fused step against its single one, timed one after the other): their
    range says how far a shared machine moved the median."""

    runs: int
    fused_s: float
    separate_s: float
    turns: tuple[float, ...] = ()

    @property
    def speedup(self) -> float:
        """How much faster the fused step trains the runs than their steps one after another (above 1: faster)."""
        return self.runs * self.separate_s / self.fused_s

    def pays(self) -> bool:
        """Whether fusing is worth it: the fused step takes at most ``1 - MARGIN`` of the runs' steps."""
        return faster_by(self.fused_s, self.runs * self.separate_s, MARGIN)


def time_fusion(fused: Learner, single: Learner, batch: tuple[Tensor, Tensor], options: LoopOptions,
                repeats: int = 3, warmup: int = 1) -> FusionTiming:
    """Time training steps of the ``fused`` learner (each input block fed ``batch``) and of the ``single`` one,
    taking turns (:func:`~prunelab.core.timing.interleaved`): the steps each would take in training, CUDA
    graphs included where ``options`` has them. Both learners train meanwhile: pass copies."""
    model: FusedModel = fused.model
    x, y = batch
    joined = (stack_inputs([x] * model.inputs), torch.stack([y] * model.runs, dim=1))
    device = options.device
    steps = {"fused": (train_step(model, fused.optimizer, device, options.precision, fused.scaler, options.cuda_graph,
                                  criterion=fused_losses), joined),
             "separate": (train_step(single.model, single.optimizer, device, options.precision, single.scaler,
                                     options.cuda_graph), batch)}
    model.train()
    single.model.train()

    def taking(name: str):
        step, (inputs, labels) = steps[name]
        return lambda: (step(inputs, labels), synchronize(device))

    timings = interleaved({name: taking(name) for name in steps}, repeats, warmup)
    fused_time, separate_time = timings["fused"], timings["separate"]
    turns = tuple(model.runs * s / f for f, s in zip(fused_time.samples, separate_time.samples))
    return FusionTiming(model.runs, fused_time.median, separate_time.median, turns)


#: the share of a CUDA device's free memory a fused group may plan to fill (the rest: its evaluation, the
#: allocator's fragmentation, what the other runs of the process hold)
MEMORY_SHARE = 0.8


def step_bytes(step: Callable[[Tensor, Tensor], Tensor], batch: tuple[Tensor, Tensor], device: torch.device) -> int:
    """The CUDA memory one call of ``step`` on ``batch`` takes at its peak beyond what was allocated before
    (activations, gradients, an optimizer's first state); 0 off CUDA. The step trains: pass a copy. It resets
    the device's peak-memory statistics, so it must not run inside a peak being measured (``PeakMemory``)."""
    if device.type != "cuda":
        return 0
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step(*batch)
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def held_bytes(model: torch.nn.Module) -> int:
    """The CUDA memory a run adds to a fused group beyond its step's (:func:`step_bytes`, which finds the
    run's own state already allocated): its state (weights, masks, buffers) in the fused network, and the
    copies of that state and of Adam's two moments that checkpoint commits hold while their thread writes
    them (two at once: an epoch's copies are made before the previous commit's write is waited for); 0 off
    CUDA."""
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values() if t.is_cuda)
    weights = sum(p.numel() * p.element_size() for p in model.parameters() if p.is_cuda)
    return state + 2 * (state + 2 * weights)


def device_room(device: torch.device) -> int | None:
    """The bytes a CUDA device can still give tensors (free, and cached by PyTorch but unused); None off CUDA,
    where memory does not bound how many runs fuse."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def fused_chunk(runs: int, shared: int, run_bytes: int, room: int | None, cuda_graph: bool) -> tuple[int, int]:
    """How many of ``runs`` runs (``shared`` to an input block) one fused network trains, and the runs to an
    input block of the first such chunk: all of them where ``room`` (:func:`device_room`) holds their steps of
    ``run_bytes`` each (:func:`step_bytes`; a CUDA graph's counted twice: its memory is its own, beside its
    warm-up steps'), else as many whole input blocks as it holds, else as many runs of one block. A chunk of 1
    trains alone."""
    if room is None:
        return runs, shared
    fits = int(MEMORY_SHARE * room // ((2 if cuda_graph else 1) * max(run_bytes, 1)))
    if fits >= runs:
        return runs, shared
    if fits >= shared:
        return fits // shared * shared, shared
    return max(fits, 1), max(fits, 1)
