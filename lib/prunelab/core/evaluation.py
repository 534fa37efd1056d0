"""How a model is run for its numbers: the precision it runs in (:class:`Precision`, the one place an autocast
context is made), its test-set evaluation (loss, top-1, top-5), and its inference time (median and spread of
repeated passes, the device waited for so a wall clock covers the work)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .timing import MIN_REPEATS, Timing, repeat_timed


def synchronize(device: torch.device | str) -> None:
    """Wait until queued work on ``device`` is done, so a wall-clock reading covers it (no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass(frozen=True)
class Precision:
    """How training and evaluation compute: fp32 when ``dtype`` is None, else mixed precision, autocasting
    to ``dtype`` (the optimizer keeps fp32 weights). Resolved per device by ``precision.amp.amp_settings``."""

    dtype: torch.dtype | None = None

    @property
    def mixed(self) -> bool:
        return self.dtype is not None

    def autocast(self, device: torch.device | str) -> AbstractContextManager:
        """The context a forward pass and its loss run in on ``device``: ``torch.autocast`` when mixed."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=self.dtype)


FP32 = Precision()


@dataclass
class Evaluation:
    loss: float
    top1: float
    top5: float
    inference_s: float


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], device: torch.device | str,
             precision: Precision = FP32) -> Evaluation:
    """Test loss, top-1 and top-5 accuracy (percent), and the wall time of inference over the whole set.

    The clock starts and stops after synchronizing the device; accuracy is accumulated on the device
    so the loop itself never waits for a result. The forward runs in ``precision``.
    """
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct1 = torch.zeros((), device=device, dtype=torch.long)
    correct5 = torch.zeros((), device=device, dtype=torch.long)
    count = 0
    synchronize(device)
    start = time.perf_counter()
    for x, y in loader:
        with precision.autocast(device):
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
                   precision: Precision = FP32) -> None:
    """One forward pass over the whole ``loader`` in eval mode, waiting for the device at the end."""
    model.eval()
    for x, _ in loader:
        with precision.autocast(device):
            model(x)
    synchronize(device)


def time_inference(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], device: torch.device | str,
                   precision: Precision = FP32, repeats: int = MIN_REPEATS, warmup: int = 1) -> Timing:
    """Test-set inference time apart from the accuracy pass: ``warmup`` untimed passes over ``loader``,
    then the median and spread of ``repeats`` timed ones."""
    synchronize(device)
    return repeat_timed(lambda: inference_pass(model, loader, device, precision), repeats, warmup)


def epoch_timing(epochs: pd.DataFrame) -> Timing:
    """Training seconds per epoch from a run's epoch table: the post-pruning epochs (all training epochs
    when there are none), the first left out as warm-up when there are at least two."""
    trained = epochs[epochs["epoch"] > 0]
    post = trained[trained["phase"] == "post"]
    seconds = list((post if len(post) else trained)["train_s"])
    return Timing.of(seconds[1:] if len(seconds) >= 2 else seconds)
