"""Training and evaluation loops, devices, and timing that waits for asynchronous devices.

Precision is explicit: every step and evaluation takes a :class:`Precision` and makes its autocast context
from it, and a training step becomes a CUDA graph only in fp32. :class:`Learner` holds what training
changes (what a checkpoint saves) and :class:`LoopOptions` how a run trains (the same in all its phases).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.layers import apply_masks
from .evaluation import FP32, Evaluation, Precision, evaluate, synchronize

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


#: where make_optimizer takes the fused (one-kernel) Adam and SGD
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


def make_optimizer(name: str, params: Iterable[Tensor], lr: float, weight_decay: float, capturable: bool = False
                   ) -> torch.optim.Optimizer:
    """The original tool's optimizers: sgd, momentum (0.9, Nesterov), adam, rms.

    ``capturable`` keeps Adam's and RMSprop's step counts on the device, which a CUDA graph of the training
    step needs (:class:`GraphedTrainStep`); SGD has no step count and needs nothing. Adam and SGD take
    PyTorch's fused implementation (one kernel for all tensors) on the CPU and CUDA, RMSprop, which has none,
    its foreach one: the same update, without a launch per tensor, which a small network's step is made of.
    """
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_OPTIMIZER_DEVICES for p in params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9, nesterov=True, fused=fused)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, capturable=capturable, fused=fused)
    if name == "rms":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, capturable=capturable, foreach=fused)
    raise ValueError(f"unknown optimizer {name!r}")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """``optimizer.load_state_dict(state)``, keeping this optimizer's own ``capturable`` and ``fused``
    settings: a checkpoint written on another device, with CUDA graphs off or by an older version says
    otherwise, and its step counts move to where those settings need them (the parameter's device when
    capturable or fused, the CPU when neither)."""
    kept = ("capturable", "fused", "foreach")
    wanted = [{k: group[k] for k in kept if k in group} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, own in zip(optimizer.param_groups, wanted):
        group.update(own)
        on_device = bool(own.get("capturable") or own.get("fused"))
        for param in group["params"]:
            step = optimizer.state.get(param, {}).get("step")
            if isinstance(step, Tensor):
                device = param.device if on_device else torch.device("cpu")
                optimizer.state[param]["step"] = step.to(device=device, dtype=torch.float32)


class Preempted(RuntimeError):
    """A stop was requested (SIGTERM, preemption) between two training steps."""


#: set by a signal handler to stop training at the next step; the last epoch checkpoint stays
stop_requested = threading.Event()


#: ordinary steps before a training step is captured as a CUDA graph: the optimizer's state and cuDNN's choice
#: of algorithms must exist first. They run on the current stream: a fresh side stream per warm-up step (as
#: PyTorch's notes warm up) raised the peak memory with each step.
GRAPH_WARMUP_STEPS = 3

TrainStep = Callable[[Tensor, Tensor], Tensor]
#: ``criterion(outputs, labels)``: the loss of a batch, a scalar; or one per run of a fused group
#: (``core.fused.fused_losses``), whose sum is differentiated
Criterion = Callable[[Tensor, Tensor], Tensor]


def _total(loss: Tensor) -> Tensor:
    """What backward differentiates: the loss, or the sum of a fused group's losses."""
    return loss if loss.dim() == 0 else loss.sum()


def ordinary_step(model: nn.Module, optimizer: torch.optim.Optimizer, precision: Precision = FP32,
                  scaler: torch.amp.GradScaler | None = None, criterion: Criterion = F.cross_entropy) -> TrainStep:
    """A training step of one kernel launch per operation: ``step(x, y)`` trains on the batch and returns the
    loss (``criterion``'s), detached. The forward and loss run in ``precision`` on the batch's device;
    ``scaler`` scales the loss (fp16 on CUDA needs it; a disabled one passes the step through)."""

    def step(x: Tensor, y: Tensor) -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast(x.device):
            loss = criterion(model(x), y)
        if scaler is not None:
            scaler.scale(_total(loss)).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            _total(loss).backward()
            optimizer.step()
        # detached, so the autograd graph (with its per-parameter gradient accumulators, made on this step's
        # stream) dies now: a CUDA-graph capture after it must make its own on the capture stream
        return loss.detach()

    return step


def graph_obstacle(device: torch.device | str, optimizer: torch.optim.Optimizer, mixed_precision: bool
                   ) -> str | None:
    """Why a training step cannot be replayed as a CUDA graph here, or None when it can."""
    if torch.device(device).type != "cuda":
        return "CUDA graphs need a CUDA device"
    if mixed_precision:  # fp16's gradient scaler reads its overflow check on the CPU in every step
        return "mixed precision trains with ordinary steps"
    if any(group.get("capturable") is False for group in optimizer.param_groups):
        return f"this {type(optimizer).__name__} keeps its step count on the CPU (made without capturable=True)"
    return None


class GraphedTrainStep:
    """A training step (forward, loss, backward, the optimizer's step with its mask hooks) in fp32, captured
    once as a CUDA graph and replayed for each batch: one launch instead of several hundred kernel launches,
    which is what bounds a small network such as ResNet20 on a GPU (bench/train_throughput.py).

    Each replay computes what an ordinary step computes, with the same kernels. The first
    :data:`GRAPH_WARMUP_STEPS` batches take ordinary steps, then the step is captured. The graph holds each
    learning rate as a constant, so a changed rate (the schedule, between epochs) is captured again. The capture
    waits for a batch of the first batch's shape, and a batch of another shape (a short last batch) takes an
    ordinary step. The graph keeps the step's activations in memory of its own, so training peaks higher than
    with ordinary steps.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 criterion: Criterion = F.cross_entropy) -> None:
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.ordinary = ordinary_step(model, optimizer, criterion=criterion)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.shapes: tuple | None = None  # the first batch's: the shape the graph is captured for
        self.stream: torch.cuda.Stream | None = None  # the capture stream, made at the first capture
        self.warm_steps = 0
        self.captures = 0
        self.replays = 0

    def _rates(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        self.shapes = self.shapes or (x.shape, y.shape)
        if self.graph is not None and self._rates() != self.rates:
            # frees the old graph's memory before the new capture: nothing may hold a tensor of its pool
            self.graph = self.loss = self.grads = None
        if self.graph is None and self.warm_steps >= GRAPH_WARMUP_STEPS and (x.shape, y.shape) == self.shapes:
            self._capture(x, y)
        if self.graph is not None and x.shape == self.x.shape and y.shape == self.y.shape:
            self.x.copy_(x)
            self.y.copy_(y)
            self.graph.replay()
            self.replays += 1
            return self.loss
        if self.graph is None:
            self.warm_steps += 1
        return self.ordinary(x, y)

    def _capture(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x.clone(), y.clone()  # the graph's inputs: each replay reads the batch copied here
        self.optimizer.zero_grad(set_to_none=True)  # gradients are then allocated, and overwritten, by the graph
        graph = torch.cuda.CUDAGraph()
        # on the batch's device, with a capture stream there: torch.cuda.graph's default stream is made once, on
        # the device current then (cuda:0), and a model on cuda:1 would run beside that capture, leaving it empty
        device = self.x.device
        self.stream = self.stream or torch.cuda.Stream(device)
        # thread_local: a fused group's checkpoint writer may be copying states to the host in its thread
        # (after an lr drop, a capture can meet a commit), which the default "global" mode would refuse
        with torch.cuda.device(device), torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
            loss = self.criterion(self.model(self.x), self.y)
            _total(loss).backward()
            self.optimizer.step()
        self.loss = loss.detach()  # each replay writes its loss here; the autograd graph is not kept
        # the gradients live in the graph's memory: held here so that an ordinary step (which sets them to
        # None) cannot free what the next replay writes
        self.grads = [p.grad for group in self.optimizer.param_groups for p in group["params"]]
        self.graph, self.rates = graph, self._rates()
        self.captures += 1


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device | str,
               precision: Precision = FP32, scaler: torch.amp.GradScaler | None = None,
               cuda_graph: bool = False, criterion: Criterion = F.cross_entropy) -> TrainStep:
    """The training step to use: a :class:`GraphedTrainStep` when ``cuda_graph`` is asked for and nothing
    stands in its way (:func:`graph_obstacle`, told whether ``precision`` is mixed), else an ordinary step
    in ``precision`` with ``scaler``; either computes ``criterion``'s loss."""
    if cuda_graph and graph_obstacle(device, optimizer, precision.mixed) is None:
        return GraphedTrainStep(model, optimizer, criterion)
    return ordinary_step(model, optimizer, precision, scaler, criterion)


def train_epoch(model: nn.Module, step: TrainStep, loader, device, progress=None) -> float:
    """One pass over ``loader`` taking ``step`` (from :func:`train_step`) on each batch; returns the mean
    training loss.

    Raises :class:`TrainingDiverged` on a NaN loss and :class:`Preempted` when a stop was requested.
    """
    model.train()
    total = torch.zeros((), device=device, dtype=torch.float64)
    count = 0
    for index, (x, y) in enumerate(loader):
        if stop_requested.is_set():
            raise Preempted("stop requested")
        loss = step(x, y)
        total += loss.detach().float() * y.shape[0]
        count += y.shape[0]
        if progress is not None:
            progress.update(1)
        if index % 50 == 49 and not torch.isfinite(total):  # check now and then: each check syncs
            break
    mean = total.item() / max(count, 1)
    if not math.isfinite(mean):
        raise TrainingDiverged(TRAIN_LOSS_DIVERGED)
    return mean


#: why a run stops when its epoch's training loss is NaN or infinite
TRAIN_LOSS_DIVERGED = "the training loss became NaN or infinite"


def divergence(weights_finite: bool, ev: Evaluation) -> str | None:
    """Why a run must stop after an evaluation, else None: its weights or its test loss are NaN or infinite
    (the training loss alone can stay finite while the last step's update ruins the weights)."""
    if not weights_finite:
        return "the weights became NaN or infinite"
    if not math.isnan(ev.top1) and not math.isfinite(ev.loss):  # NaN top-1: an empty test set, nothing evaluated
        return "the test loss became NaN or infinite"
    return None


def check_finite(model: nn.Module, ev: Evaluation) -> None:
    """Raise :class:`TrainingDiverged` with the :func:`divergence` of ``model`` after evaluation ``ev``."""
    values = [p.detach() for p in model.parameters()] + [b for b in model.buffers() if b.is_floating_point()]
    finite = not values or bool(torch.stack([v.isfinite().all() for v in values]).all())
    reason = divergence(finite, ev)
    if reason is not None:
        raise TrainingDiverged(reason)


def epoch_row(phase: str, epoch: int, train_loss: float, ev: Evaluation, train_s: float, lr: float) -> dict:
    """One row of a run's ``epochs.csv`` (:data:`EPOCH_COLUMNS`): the epoch's training loss and seconds, the
    evaluation after it, and the learning rate it trained at (for row 0, the evaluation before training, the
    rate the phase's first epoch trains at)."""
    return {"phase": phase, "epoch": epoch, "train_loss": train_loss, "test_loss": ev.loss, "top1": ev.top1,
            "top5": ev.top5, "inference_s": ev.inference_s, "train_s": train_s, "lr": lr}


@dataclass
class Learner:
    """What training changes, kept together: the model, its optimizer, the learning-rate schedule and the
    gradient scaler (a disabled one unless fp16 on CUDA). Its state dict is what a checkpoint needs of them."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler

    @property
    def lr(self) -> float:
        """The learning rate the next step takes (every parameter group shares it)."""
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``: weights and masks, the optimizer (keeping its own ``capturable``, see
        :func:`load_optimizer_state`), the schedule and the gradient scale."""
        self.model.load_state_dict(state["model"])
        apply_masks(self.model)  # refresh which masks prune something (the optimizer hooks read it)
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:  # an empty dict: the scaler was disabled
            self.scaler.load_state_dict(state["scaler"])


@dataclass(frozen=True)
class LoopOptions:
    """How a run's training loops train and report, the same in each of its phases: on ``device``, in
    ``precision``, replaying the step as a CUDA graph where :func:`train_step` can (``cuda_graph``), with a
    line per epoch (``verbose``) and a progress bar (``show_progress``)."""

    device: torch.device
    precision: Precision = FP32
    cuda_graph: bool = False
    verbose: bool = False
    show_progress: bool = True


def train_eval_loop(  # noqa: PLR0913 - what to train (five) apart from where a resumed run picks up (three)
        learner: Learner, train_loader, test_loader, epochs: int, phase: str, options: LoopOptions,
                    *, rows: list[dict] | None = None, done: int | None = None,
                    after_epoch: Callable[[int], None] | None = None) -> list[dict]:
    """Evaluate, then train ``epochs`` epochs evaluating after each, as the original tool does; the rows'
    ``phase`` column is ``phase``.

    Row 0 is the evaluation before training. Rows are appended to ``rows`` as they are made, so a caller
    still has the finished epochs when :class:`TrainingDiverged` is raised. To resume, ``done`` is the
    epoch of the phase's last row already made (0: only the evaluation before training); None begins the
    phase. ``after_epoch(epoch)`` runs after each row that passed :func:`check_finite` (a checkpoint).
    """
    from tqdm import tqdm

    rows = [] if rows is None else rows
    model, device = learner.model, options.device

    def record(epoch: int, train_loss: float, train_s: float, lr: float) -> None:
        ev = evaluate(model, test_loader, device, options.precision)
        rows.append(epoch_row(phase, epoch, train_loss, ev, train_s, lr))
        if options.verbose:  # tqdm.write keeps the line clear of an active progress bar
            tqdm.write(epoch_line(rows[-1]))
        check_finite(model, ev)
        if after_epoch is not None:
            after_epoch(epoch)

    if done is None:
        record(0, math.nan, 0.0, learner.lr)
        done = 0
    if epochs <= done:
        return rows
    step = train_step(model, learner.optimizer, device, options.precision, learner.scaler, options.cuda_graph)
    bar = tqdm(total=(epochs - done) * len(train_loader), desc=f"{phase}-train", unit="batch",
               disable=not options.show_progress, leave=False)
    try:
        for epoch in range(done + 1, epochs + 1):
            lr = learner.lr  # the rate this epoch trains at, before its schedule step
            synchronize(device)
            start = time.perf_counter()
            loss = train_epoch(model, step, train_loader, device, bar)
            synchronize(device)
            train_s = time.perf_counter() - start
            learner.scheduler.step()
            record(epoch, loss, train_s, lr)
            bar.set_postfix(top1=f"{rows[-1]['top1']:.1f}%")
    finally:
        bar.close()
    return rows


def epoch_line(row: dict) -> str:
    """An epoch row as ``--verbose`` prints it; epoch 0 is the evaluation before any training, which has no train
    loss to show (a NaN there would read as a diverged run)."""
    train = "–" if row["epoch"] == 0 else f"{row['train_loss']:.4f}"
    return (f"[{row['phase']} {row['epoch']:3d}] train loss {train}  test loss {row['test_loss']:.4f}  "
            f"top1 {row['top1']:.2f}%  top5 {row['top5']:.2f}%  inference {row['inference_s']:.3f}s")


def epochs_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EPOCH_COLUMNS)
