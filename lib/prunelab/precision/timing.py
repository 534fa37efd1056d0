"""Accuracy and test-set inference time of several models of one task, measured side by side.

:func:`compare_models` times any number of models (fp32, the int8 paths...) over the same batches in
one process, taking turns through :func:`prunelab.core.timing.interleaved`, so drift of a shared
machine's speed hits all alike and each time is the statistic every other timing reports: the median
pass with the spread of the passes. It also reports the seconds of each model's warm-up (one batch of
each input shape: where a model is compiled per input shape, that is its compilation).
:func:`compare_inference` is the two-model form (fp32 against int8). :func:`compare_training` times fp32
against mixed precision training steps of one model the same way (copies of it, the same batches), and measures
the peak tensor memory of a pass of each.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from ..core.evaluation import FP32, Precision, synchronize
from ..core.timing import MIN_REPEATS, Timing, interleaved
from ..core.train import ordinary_step, train_epoch
from ..errors import UserError
from .amp import make_scaler
from .memory import tensor_peak_mb


@dataclass
class InferenceResult:
    """Top-1 accuracy (percent) over ``images`` test images, the :class:`Timing` of the timed passes over the
    batches (``seconds``: their median; ``spread``: slowest minus fastest, NaN for one pass), and ``warmup``, the
    seconds of the untimed first call on each input shape (compilation, for a compiled model)."""

    top1: float
    images: int
    timing: Timing
    warmup: float = 0.0

    @property
    def seconds(self) -> float:
        return self.timing.median

    @property
    def spread(self) -> float:
        return self.timing.spread

    @property
    def repeats(self) -> int:
        return self.timing.repeats

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


@dataclass
class InferenceComparison:
    fp32: InferenceResult
    int8: InferenceResult

    @property
    def speedup(self) -> float:
        """How many times faster int8 is (fp32 seconds / int8 seconds)."""
        return self.fp32.seconds / self.int8.seconds

    @property
    def top1_drop(self) -> float:
        """Accuracy points lost by int8 (negative when int8 is more accurate)."""
        return self.fp32.top1 - self.int8.top1


def _model_device(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    return torch.device("cpu") if tensor is None else tensor.device


class _Timed:
    """One model and its batches (already on its device): ``run()`` is one pass, counting correct answers."""

    def __init__(self, model: nn.Module, batches: list[tuple[Tensor, Tensor]], device: torch.device) -> None:
        self.model, self.device = model.eval(), device
        self.batches = [(x.to(device), y.to(device)) for x, y in batches]
        self.correct = torch.zeros((), dtype=torch.long)

    def warm_up(self) -> float:
        """One call per distinct input shape (a model compiled per shape compiles here); its seconds."""
        shapes: dict[tuple[int, ...], Tensor] = {}
        for x, _ in self.batches:
            shapes.setdefault(tuple(x.shape), x)
        synchronize(self.device)
        start = time.perf_counter()
        for x in shapes.values():
            self.model(x)
        synchronize(self.device)
        return time.perf_counter() - start

    def run(self) -> None:
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for x, y in self.batches:
            correct += (self.model(x).argmax(dim=1) == y).sum()
        synchronize(self.device)
        self.correct = correct  # read after the timing: reading a CUDA scalar waits on the device


@torch.no_grad()
def compare_models(models: Mapping[str, nn.Module], loader: Iterable[tuple[Tensor, Tensor]],
                   repeats: int = MIN_REPEATS) -> dict[str, InferenceResult]:
    """Top-1 accuracy and test-set inference time of each model (each on the device of its parameters;
    a model without parameters, such as a quantized one, on the CPU), keyed as ``models``.

    The loader's batches are materialized first, so only the models are timed (eval mode, no_grad,
    warmed up on every input shape). The passes take turns as :func:`~prunelab.core.timing.interleaved`
    orders them (rotated by one each repeat), so with ``repeats`` >= the number of models each goes first
    once; each reports the median pass and the spread of its passes.
    """
    if repeats < 1:
        raise UserError(f"the number of timing repeats must be at least 1, got {repeats}")
    if not models:
        raise UserError("compare_models needs at least one model")
    batches = [(x, y) for x, y in loader]
    if not batches:
        raise UserError("compare_models needs at least one batch")
    images = sum(len(y) for _, y in batches)
    timed = {name: _Timed(model, batches, _model_device(model)) for name, model in models.items()}
    warmup = {name: t.warm_up() for name, t in timed.items()}
    timings = interleaved({name: t.run for name, t in timed.items()}, repeats, warmup=0)
    return {name: InferenceResult(100.0 * int(t.correct) / images, images, timings[name], warmup[name])
            for name, t in timed.items()}


def compare_inference(model_fp32: nn.Module, qmodel: nn.Module, loader: Iterable[tuple[Tensor, Tensor]],
                      repeats: int = MIN_REPEATS) -> InferenceComparison:
    """Top-1 accuracy and test-set inference time of the fp32 model (on its device) and the int8 one (CPU),
    taking turns as in :func:`compare_models` (two models: the first to run alternates)."""
    results = compare_models({"fp32": model_fp32, "int8": qmodel}, loader, repeats)
    return InferenceComparison(results["fp32"], results["int8"])


@dataclass(frozen=True)
class TrainingComparison:
    """fp32 against mixed precision training of one model, keyed ``"fp32"`` and ``"amp"``: the :class:`Timing` of
    each one's passes, and the peak of the tensor memory one pass allocates, in MB
    (:func:`.memory.tensor_peak_mb`)."""

    timings: dict[str, Timing]
    peak_mb: dict[str, float]


def compare_training(model: nn.Module, batches: list[tuple[Tensor, Tensor]], device: torch.device | str,
                     amp: Precision, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
                     repeats: int = MIN_REPEATS, warmup: int = 1) -> TrainingComparison:
    """fp32 against mixed precision training, interleaved in this process: ``"fp32"`` and ``"amp"`` each
    train their own copy of ``model`` (own optimizer from ``make_optimizer``, own gradient scaler) on the
    same ``batches``; one repeat is one pass over them (a few training steps), the two taking turns (fp32
    AMP, AMP fp32, ...) after ``warmup`` untimed passes each. Then one more pass of each, untimed, measures its
    peak tensor memory (the profiler that does so on a CPU slows the pass it watches)."""
    if not batches:
        raise UserError("compare_training needs at least one batch")

    def steps(precision: Precision) -> Callable[[], None]:
        twin = copy.deepcopy(model)
        step = ordinary_step(twin, make_optimizer(twin), precision, make_scaler(precision, device))

        def run() -> None:
            train_epoch(twin, step, batches, device)
            synchronize(device)
        return run

    passes = {"fp32": steps(FP32), "amp": steps(amp)}
    timings = interleaved(passes, repeats, warmup)
    return TrainingComparison(timings, {name: tensor_peak_mb(run, device) for name, run in passes.items()})
