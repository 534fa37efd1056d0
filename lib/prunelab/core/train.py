"""Training and evaluation loops, devices, and timing that waits for asynchronous devices."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .timing import MIN_REPEATS, Timing, repeat_timed

EPOCH_COLUMNS = ["phase", "epoch", "train_loss", "test_loss", "top1", "top5", "inference_s", "train_s", "lr"]


class TrainingDiverged(RuntimeError):
    """The training loss, the test loss or a weight became NaN or infinite: the run stops instead of training
    on garbage."""


def resolve_device(gpu: int = 0, no_cuda: bool = False) -> torch.device:
    """CUDA device ``gpu`` when there is one (and not ``no_cuda``), else Apple MPS, else the CPU."""
    if not no_cuda and torch.cuda.is_available():
        return torch.device(f"cuda:{min(gpu, torch.cuda.device_count() - 1)}")
    if not no_cuda and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(device: torch.device | str) -> None:
    """Wait until queued work on ``device`` is done, so a wall-clock reading covers it (no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def make_optimizer(name: str, params: Iterable[Tensor], lr: float, weight_decay: float
                   ) -> torch.optim.Optimizer:
    """The original tool's optimizers: sgd, momentum (0.9, Nesterov), adam, rms."""
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "rms":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


@dataclass
class Evaluation:
    loss: float
    top1: float
    top5: float
    inference_s: float


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], device: torch.device | str,
             autocast: Callable[[], AbstractContextManager] = nullcontext) -> Evaluation:
    """Test loss, top-1 and top-5 accuracy (percent), and the wall time of inference over the whole set.

    The clock starts and stops after synchronising the device; accuracy is accumulated on the device
    so the loop itself never waits for a result. ``autocast`` runs the forward in mixed precision.
    """
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct1 = torch.zeros((), device=device, dtype=torch.long)
    correct5 = torch.zeros((), device=device, dtype=torch.long)
    count = 0
    synchronize(device)
    start = time.perf_counter()
    for x, y in loader:
        with autocast():
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
        top = out.topk(min(5, out.shape[1]), dim=1).indices
        hits = top == y[:, None]
        correct1 += hits[:, 0].sum()
        correct5 += hits.any(dim=1).sum()
        count += y.shape[0]
    synchronize(device)
    elapsed = time.perf_counter() - start
    if count == 0:
        return Evaluation(math.nan, math.nan, math.nan, elapsed)
    return Evaluation(loss_sum.item() / count, 100.0 * correct1.item() / count,
                      100.0 * correct5.item() / count, elapsed)


@torch.no_grad()
def inference_pass(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], device: torch.device | str,
                   autocast: Callable[[], AbstractContextManager] = nullcontext) -> None:
    """One forward pass over the whole ``loader`` in eval mode, waiting for the device at the end."""
    model.eval()
    for x, _ in loader:
        with autocast():
            model(x)
    synchronize(device)


def time_inference(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], device: torch.device | str,
                   autocast: Callable[[], AbstractContextManager] = nullcontext, repeats: int = MIN_REPEATS,
                   warmup: int = 1) -> Timing:
    """Test-set inference time apart from the accuracy pass: ``warmup`` untimed passes over ``loader``,
    then the median and spread of ``repeats`` timed ones."""
    synchronize(device)
    return repeat_timed(lambda: inference_pass(model, loader, device, autocast), repeats, warmup)


def epoch_timing(epochs: pd.DataFrame) -> Timing:
    """Training seconds per epoch from a run's epoch table: the post-pruning epochs (all training epochs
    when there are none), the first left out as warm-up when there are at least two."""
    trained = epochs[epochs["epoch"] > 0]
    post = trained[trained["phase"] == "post"]
    seconds = list((post if len(post) else trained)["train_s"])
    return Timing.of(seconds[1:] if len(seconds) >= 2 else seconds)


class Preempted(RuntimeError):
    """A stop was requested (SIGTERM, preemption) between two training steps."""


#: set by a signal handler to stop training at the next step; the last epoch checkpoint stays
stop_requested = threading.Event()


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader, device, progress=None,
                autocast: Callable[[], AbstractContextManager] = nullcontext, scaler=None) -> float:
    """One pass over ``loader``; returns the mean training loss.

    Raises :class:`TrainingDiverged` on a NaN loss and :class:`Preempted` when a stop was requested.
    ``autocast`` and ``scaler`` (a ``torch.amp.GradScaler``) switch on mixed precision.
    """
    model.train()
    total = torch.zeros((), device=device, dtype=torch.float64)
    count = 0
    for step, (x, y) in enumerate(loader):
        if stop_requested.is_set():
            raise Preempted("stop requested")
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total += loss.detach().float() * y.shape[0]
        count += y.shape[0]
        if progress is not None:
            progress.update(1)
        if step % 50 == 49 and not torch.isfinite(total):  # check now and then: each check syncs
            break
    mean = total.item() / max(count, 1)
    if not math.isfinite(mean):
        raise TrainingDiverged("the training loss became NaN or infinite")
    return mean


def check_finite(model: nn.Module, ev: Evaluation) -> None:
    """Raise :class:`TrainingDiverged` when a weight or the test loss is NaN or infinite: the training loss
    alone can stay finite while the last step's update ruins the weights."""
    values = [p.detach() for p in model.parameters()] + [b for b in model.buffers() if b.is_floating_point()]
    if values and not bool(torch.stack([v.isfinite().all() for v in values]).all()):
        raise TrainingDiverged("the weights became NaN or infinite")
    if math.isnan(ev.top1):  # an empty test set: nothing was evaluated
        return
    if not math.isfinite(ev.loss):
        raise TrainingDiverged("the test loss became NaN or infinite")


def train_eval_loop(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, train_loader, test_loader,
                    device, epochs: int, phase: str, verbose: bool = False, show_progress: bool = True,
                    rows: list[dict] | None = None, done: int = -1,
                    after_epoch: Callable[[int], None] | None = None,
                    autocast: Callable[[], AbstractContextManager] = nullcontext, scaler=None) -> list[dict]:
    """Evaluate, then train ``epochs`` epochs evaluating after each, as the original tool does.

    Row 0 is the evaluation before training. Rows are appended to ``rows`` as they are made, so a
    caller still has the finished epochs when :class:`TrainingDiverged` is raised. ``done`` is the last
    epoch already finished (-1: not even row 0), for resuming; ``after_epoch(epoch)`` runs after each row
    (a checkpoint). ``autocast`` (training and evaluation) and ``scaler`` switch on mixed precision.
    """
    from tqdm import tqdm

    rows = [] if rows is None else rows

    def record(epoch: int, train_loss: float, train_s: float) -> None:
        ev = evaluate(model, test_loader, device, autocast)
        rows.append({"phase": phase, "epoch": epoch, "train_loss": train_loss, "test_loss": ev.loss,
                     "top1": ev.top1, "top5": ev.top5, "inference_s": ev.inference_s, "train_s": train_s,
                     "lr": optimizer.param_groups[0]["lr"]})
        if verbose:  # tqdm.write keeps the line clear of an active progress bar
            tqdm.write(f"[{phase} {epoch:3d}] train loss {train_loss:.4f}  test loss {ev.loss:.4f}  "
                       f"top1 {ev.top1:.2f}%  top5 {ev.top5:.2f}%  inference {ev.inference_s:.3f}s")
        check_finite(model, ev)
        if after_epoch is not None:
            after_epoch(epoch)

    if done < 0:
        record(0, math.nan, 0.0)
        done = 0
    if epochs <= done:
        return rows
    bar = tqdm(total=(epochs - done) * len(train_loader), desc=f"{phase}-train", unit="batch",
               disable=not show_progress, leave=False)
    try:
        for epoch in range(done + 1, epochs + 1):
            synchronize(device)
            start = time.perf_counter()
            loss = train_epoch(model, optimizer, train_loader, device, bar, autocast, scaler)
            synchronize(device)
            train_s = time.perf_counter() - start
            scheduler.step()
            record(epoch, loss, train_s)
            bar.set_postfix(top1=f"{rows[-1]['top1']:.1f}%")
    finally:
        bar.close()
    return rows


def epochs_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EPOCH_COLUMNS)
