"""What a set-up's steps cost on a device, measured: one run's training step, epoch and evaluation pass
(:func:`measure_setup`), and a fused step of several runs (:func:`measure_fused`), on synthetic data of the set-up's
shape, as its runs would take them (a CUDA graph on CUDA in fp32), after a warm-up, the median of the steps. The
profile estimate (:mod:`prunelab.workbook.estimate`) costs runs with them."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.evaluation import Precision, synchronize
from ..core.fused import FusedModel, fused_losses, stack_inputs
from ..core.fused_loop import held_bytes, step_bytes
from ..core.layout import uses_channels_last
from ..core.timing import repeat_timed
from ..core.train import GRAPH_WARMUP_STEPS, GraphedTrainStep, make_optimizer, train_step
from ..data.catalog import dataset_info
from ..data.in_memory import DeviceLoader, synthetic_data
from ..models.registry import build_model
from ..precision.amp import amp_settings, make_scaler
from ..runs.config import RunConfig


@dataclass(frozen=True)
class Setup:
    """What sets the time of one epoch."""

    dataset: str
    model: str
    model_class: str
    train_examples: int
    test_examples: int
    batch_size: int
    test_batch_size: int
    amp: bool
    amp_dtype: str | None

    @classmethod
    def of(cls, config: RunConfig) -> Setup:
        info = dataset_info(config.dataset)
        return cls(config.dataset, config.model, config.model_class, config.train_subset or info.train_size,
                   config.test_subset or info.test_size, config.train_batch_size, config.test_batch_size,
                   config.quantization, config.amp_dtype)

    @property
    def label(self) -> str:
        precision = f", AMP {self.amp_dtype or 'default'}" if self.amp else ""
        return (f"{self.dataset} / {self.model}, {self.train_examples:,} training images, batch "
                f"{self.batch_size}{precision}")


@dataclass(frozen=True)
class SetupTiming:
    """One run of a set-up on a device (:func:`measure_setup`): seconds per training step, per epoch (its steps
    and an evaluation pass) and per evaluation pass; its step's memory with what the run holds, in bytes; and
    whether the step is a CUDA graph."""

    step_s: float
    epoch_s: float
    eval_s: float
    step_bytes: int
    cuda_graph: bool


@dataclass(frozen=True)
class FusedTiming:
    """Seconds of one fused training step and of one fused evaluation batch (:func:`measure_fused`)."""

    step_s: float
    eval_batch_s: float


def _step_seconds(step, batches: list, device: torch.device, warmup: int) -> float:
    """The median seconds of ``step(x, y)`` over ``batches`` taken in turn (round again where there are fewer),
    after ``warmup`` untimed steps (the first of them, where there are no more batches than that)."""
    turn = itertools.cycle(batches)

    def one() -> None:
        step(*next(turn))
        synchronize(device)

    warmup = min(warmup, len(batches) - 1)
    return repeat_timed(one, repeats=max(len(batches) - warmup, 1), warmup=warmup).median


@torch.no_grad()
def _eval_step_seconds(model, batches: list, device: torch.device, precision: Precision) -> float:
    """The median seconds of an evaluation batch over ``batches``, the first untimed."""
    model.eval()

    def forward(x, _):
        with precision.autocast(device):
            model(x)

    return _step_seconds(forward, batches, device, warmup=1)


def _network(setup: Setup, device: torch.device) -> torch.nn.Module:
    """A fresh network of ``setup`` on ``device``, in the memory layout its runs train in."""
    info = dataset_info(setup.dataset)
    model = build_model(setup.model, setup.model_class, info.input_shape, info.num_classes).to(device)
    return model.to(memory_format=torch.channels_last) if uses_channels_last(model) else model


def _run_step(model: torch.nn.Module, setup: Setup, device: torch.device, criterion=F.cross_entropy):
    """The training step a run of ``setup`` takes (runs' default: a CUDA graph of it on CUDA in fp32, else an
    ordinary one), its precision, and the untimed steps its capture takes (its warm-up and the capture)."""
    precision = amp_settings(device, setup.amp, setup.amp_dtype)
    optimizer = make_optimizer("adam", model.parameters(), 1e-3, 0.0, capturable=device.type == "cuda")
    step = train_step(model, optimizer, device, precision, make_scaler(precision, device), cuda_graph=True,
                      criterion=criterion)
    return step, precision, GRAPH_WARMUP_STEPS + 1 if isinstance(step, GraphedTrainStep) else 0


#: the most seconds measuring one group's fused step may take (a large group of a slow set-up on a CPU)
FUSED_BUDGET_S = 60.0


def measure_fused(setup: Setup, runs: int, device: torch.device, steps: int = 5, warmup: int = 2,
                  shared: int = 1) -> FusedTiming:
    """Seconds per fused training step and per fused evaluation batch of ``runs`` runs of ``setup`` on
    ``device`` (median of ``steps``), each run fed a batch of the set-up's size, ``shared`` runs to an
    input block as a group of that many runs per seed trains."""
    fused = FusedModel([_network(setup, device) for _ in range(runs)], shared)
    channels_last, info = uses_channels_last(fused), dataset_info(setup.dataset)
    step, precision, capture = _run_step(fused, setup, device, fused_losses)
    data = synthetic_data(info, setup.batch_size, setup.test_batch_size, seed=0)
    (x, y), = DeviceLoader(data.train, info, setup.batch_size, device, channels_last=channels_last)
    (tx, _), = DeviceLoader(data.test, info, setup.test_batch_size, device, channels_last=channels_last)
    fused.train()
    batch = (stack_inputs([x] * fused.inputs), torch.stack([y] * runs, dim=1))
    step_s = _step_seconds(step, [batch] * (steps + warmup + capture), device, warmup + capture)
    joined_test = stack_inputs([tx] * fused.inputs)
    eval_s = _eval_step_seconds(fused, [(joined_test, None)] * (steps + 1), device, precision)
    return FusedTiming(step_s, eval_s)


def measure_setup(setup: Setup, device: torch.device, steps: int = 5, warmup: int = 2) -> SetupTiming:
    """Seconds per training step, per epoch and per evaluation pass of ``setup`` on ``device`` (steps the median of
    ``steps``)."""
    model = _network(setup, device)
    channels_last, info = uses_channels_last(model), dataset_info(setup.dataset)
    step, precision, capture = _run_step(model, setup, device)
    warmup += capture
    data = synthetic_data(info, setup.batch_size * (steps + warmup), setup.test_batch_size * (steps + 1), seed=0)
    # full batches where there is one (a short one takes an ordinary step); a small dataset's (digits: 5) come
    # round again, so the timed steps follow the warm-up and the capture
    train = list(DeviceLoader(data.train, info, setup.batch_size, device, shuffle=True, augment=info.augment,
                              drop_last=len(data.train) >= setup.batch_size, channels_last=channels_last))
    test = DeviceLoader(data.test, info, setup.test_batch_size, device, channels_last=channels_last)
    model.train()
    # a run's memory in a fused group (CUDA): how many runs one holds
    need = step_bytes(step, train[0], device) + held_bytes(model)
    step_s = _step_seconds(step, [train[i % len(train)] for i in range(warmup + steps)], device, warmup)
    eval_s = _eval_step_seconds(model, list(test), device, precision)
    train_steps = math.ceil(setup.train_examples / setup.batch_size)
    eval_steps = math.ceil(setup.test_examples / setup.test_batch_size)
    return SetupTiming(step_s, train_steps * step_s + eval_steps * eval_s, eval_steps * eval_s, need,
                       isinstance(step, GraphedTrainStep))
