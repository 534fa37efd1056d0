"""A sparse inference model: every conv and linear layer runs the kernel measured fastest for it.

Whether a sparse kernel beats a dense one depends on the layer's density and shape, the input, the library
and the device, and a wrong guess makes inference slower than dense; so the choice is measured, in place:

1. the masks are folded (:func:`~prunelab.core.inference.strip_masks`) and the units that carry nothing are
   removed (:mod:`prunelab.core.dead_units`), kept only where the whole model is faster by the margin;
2. a forward hook captures each layer's real input on a calibration batch;
3. the dense layer and each exact candidate of :mod:`prunelab.core.sparse_kernels` (checked against the
   dense output first) are timed on it in interleaved rounds, the median kept (:func:`layer_clock`);
4. :func:`choose_kernel`, a pure function of that table, keeps dense unless a kernel is faster by at least
   ``margin`` (5%), so no layer gets a kernel measured slower, or merely as fast, as dense;
5. the whole model is timed with the chosen kernels and with dense layers, and by the same rule the dense
   layers come back unless the kernels pay as a whole (layers timed alone can mislead).

The entry point is :func:`sparse_inference_model`; its result is an ``nn.Module`` with a ``choices`` table.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import pandas as pd
import torch
import torch.nn as nn
from torch import Tensor

from .dead_units import remove_dead_units
from .evaluation import synchronize
from .inference import strip_masks
from .sparse_kernels import HALF_TYPES, candidates
from .timing import MARGIN, faster_by

DENSE = "dense"
#: on CUDA, layers shrunk by dead-unit removal keep widths that are multiples of this
GPU_ALIGN = 8
CHOICE_COLUMNS = ["layer", "kind", "shape", "input", "density", "kernel", "dense_s", "sparse_s", "speedup",
                  "dead_units"]


def choose_kernel(seconds: Mapping[str, float], margin: float = MARGIN) -> str:
    """The kernel to run for one layer, from its timings in seconds (``{"dense": ..., "csr": ..., ...}``).

    The fastest sparse kernel wins only if it takes at most ``(1 - margin)`` of dense's time; otherwise
    dense stays. Non-finite times (a kernel that failed or does not apply) never win. So the kernel
    chosen is never slower than dense in the table it was chosen from.
    """
    if DENSE not in seconds or not math.isfinite(seconds[DENSE]):
        raise ValueError(f"a timing table needs a finite {DENSE!r} time, got {dict(seconds)}")
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), not {margin}")
    sparse = [(t, name) for name, t in seconds.items() if name != DENSE and math.isfinite(t)]
    if not sparse:
        return DENSE
    best_time, best = min(sparse)
    return best if faster_by(best_time, seconds[DENSE], margin) else DENSE


@dataclass(frozen=True)
class TimingSettings:
    """How each layer is timed: ``repeats`` interleaved rounds after ``warmup`` calls of every kernel.

    One round times ``inner`` calls of each kernel back to back, ``inner`` chosen so that a round of the
    dense layer lasts about ``sample_s`` (a single call of a small layer is too short to time alone). A
    kernel ``hopeless`` times slower than dense in the first round is not timed again: no noise turns that
    into a win, and on big layers (a ResNet conv on a batch of 256) its later rounds would cost seconds.
    """

    repeats: int = 7
    warmup: int = 2
    sample_s: float = 1e-3
    max_inner: int = 64
    hopeless: float = 3.0


def layer_clock(device: torch.device) -> Callable[[], float]:
    """The clock that times kernels: this thread's CPU time on a CPU running one intra-op thread, else wall.

    With one thread every kernel runs in the calling thread, so its CPU time is the time the kernel takes
    on an idle core, without the slices the scheduler gives other processes (on a shared machine wall-clock
    medians flip choices both ways). With more threads, or on a GPU, only wall time (device
    synchronized) sees all the work.
    """
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def _timed(kernel: nn.Module, x: Tensor, calls: int, device: torch.device) -> float:
    clock = layer_clock(device)
    synchronize(device)
    start = clock()
    for _ in range(calls):
        kernel(x)
    synchronize(device)
    return (clock() - start) / calls


@torch.no_grad()
def time_kernels(kernels: Mapping[str, nn.Module], x: Tensor, settings: TimingSettings = TimingSettings()
                 ) -> dict[str, float]:
    """Median seconds per call of each kernel on ``x``, over interleaved rounds (rotated order each round).

    The first kernel is the reference (dense) that sets the number of calls per round and the ``hopeless``
    cut; a kernel cut after the first round keeps that round's time.
    """
    names = list(kernels)
    reference = names[0]
    for _ in range(settings.warmup):
        for name in names:
            kernels[name](x)
    once = _timed(kernels[reference], x, 1, x.device)
    inner = max(1, min(settings.max_inner, math.ceil(settings.sample_s / max(once, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(1, settings.repeats)):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_timed(kernels[name], x, inner, x.device))
        if r == 0:
            names = [n for n in names if samples[n][0] <= settings.hopeless * samples[reference][0]]
    return {name: statistics.median(values) for name, values in samples.items()}


def capture_inputs(model: nn.Module, example_input: Tensor) -> dict[str, Tensor]:
    """The input of every conv and linear layer of ``model`` on ``example_input`` (first call of each)."""
    inputs: dict[str, Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(module, args):
            if name not in inputs and args and isinstance(args[0], Tensor):
                inputs[name] = args[0].detach().clone()
        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            handles.append(module.register_forward_pre_hook(hook_for(name)))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return inputs


def _tolerance(reference: Tensor) -> float:
    """Relative tolerance against the dense output: TF32 (cuDNN's default for fp32 convolutions on CUDA)
    makes the dense reference itself accurate to about 1e-3 only."""
    if reference.dtype in HALF_TYPES:
        return 2e-2
    if reference.device.type == "cuda" and (torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32):
        return 1e-2
    return 1e-4


@torch.no_grad()
def _agrees(kernel: nn.Module, x: Tensor, reference: Tensor) -> bool:
    """The kernel runs on ``x`` and matches the dense output (a kernel bug or an unsupported case is dropped)."""
    try:
        out = kernel(x)
    except (RuntimeError, NotImplementedError, ValueError, TypeError):
        return False
    if out.shape != reference.shape:
        return False
    tol = _tolerance(reference)
    scale = float(reference.abs().max()) if reference.numel() else 0.0
    return bool(torch.allclose(out.float(), reference.float(), rtol=tol, atol=tol * max(1.0, scale)))


@dataclass(frozen=True)
class LayerChoice:
    """One row of :attr:`SparseModel.choices`: a layer, the kernel it runs, and the timings behind it."""

    layer: str
    kind: str
    shape: str
    input: str
    density: float
    kernel: str
    dense_s: float
    sparse_s: float
    speedup: float
    dead_units: int


def _shape(size: Sequence[int]) -> str:
    return "x".join(str(s) for s in size)


def layer_choice(name: str, layer: nn.Module, x: Tensor, seconds: Mapping[str, float], kernel: str,
                 dead_units: int) -> LayerChoice:
    """The table row for ``layer``; ``sparse_s`` is the best sparse time even where dense was kept (NaN, as
    ``dense_s``, where the layer had no sparse candidate and so was not timed)."""
    weight = layer.weight.detach()
    sparse_times = [t for k, t in seconds.items() if k != DENSE and math.isfinite(t)]
    return LayerChoice(name, "linear" if isinstance(layer, nn.Linear) else "conv", _shape(weight.shape),
                       _shape(x.shape), float((weight != 0).float().mean()), kernel, seconds[DENSE],
                       min(sparse_times) if sparse_times else math.nan,
                       1.0 if kernel == DENSE else seconds[DENSE] / seconds[kernel],
                       dead_units)


class SparseModel(nn.Module):
    """The inference model: the plain network with each chosen layer swapped for its sparse kernel.

    ``choices`` has one row per conv / linear layer (columns ``CHOICE_COLUMNS``); ``timings`` the full
    timing table (layer -> {kernel: seconds}) it was chosen from; ``whole_model`` the calibration batch's
    seconds with dense layers and with the chosen kernels (empty when every layer stayed dense).
    """

    def __init__(self, model: nn.Module, choices: pd.DataFrame, timings: dict[str, dict[str, float]],
                 whole_model: dict[str, float] | None = None) -> None:
        super().__init__()
        self.model = model
        self.choices = choices
        self.timings = timings
        self.whole_model = whole_model or {}

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        """Straight to the inner model: a small model on a GPU is launch-bound, and one more module call
        (hook checks and dispatch) measurably slows it; so hooks on the wrapper itself are not run."""
        return self.model(*args, **kwargs)

    def train(self, mode: bool = True) -> SparseModel:
        """Inference only: folded constants assume eval-mode batchnorm and dropout, so training mode is refused."""
        if mode:
            raise ValueError("a SparseModel is for inference only; train the masked model instead.")
        return super().train(False)

    @property
    def switched(self) -> pd.DataFrame:
        """The rows of the layers that run a sparse kernel or lost dead units."""
        return self.choices[(self.choices["kernel"] != DENSE) | (self.choices["dead_units"] > 0)]


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def without_dead_units(plain: nn.Module, example_input: Tensor, settings: TimingSettings, remove_dead: bool | None
                       ) -> tuple[nn.Module, dict[str, int]]:
    """``plain`` with its dead units removed, if that is asked for (True) or measured faster (None).

    Removal only shrinks layers, which on a CPU is never slower, but on a GPU an odd width can leave the
    fast kernels: so by default the whole model is timed with and without removal on the calibration
    batch and the same rule as for kernels decides. On CUDA widths are kept multiples of ``GPU_ALIGN``.
    """
    if remove_dead is False:
        return plain, {}
    reduced = copy.deepcopy(plain)
    dead = remove_dead_units(reduced, GPU_ALIGN if example_input.device.type == "cuda" else 1)
    if not dead or remove_dead:
        return reduced, dead
    seconds = time_kernels({DENSE: plain, "dead_units_removed": reduced}, example_input, settings)
    return (reduced, dead) if choose_kernel(seconds) != DENSE else (plain, {})


def sparse_inference_model(model: nn.Module, example_input: Tensor, settings: TimingSettings = TimingSettings(),
                           kernels: Sequence[str] | None = None, remove_dead: bool | None = None) -> SparseModel:
    """An eval-mode inference copy of the pruned ``model`` whose layers each run their fastest exact kernel.

    ``example_input`` is a calibration batch on the model's device, shaped as inference batches will be
    (the timings depend on the batch size), each layer timed as ``settings`` say. ``kernels`` restricts the
    sparse candidates by name (default: all of :data:`~prunelab.core.sparse_kernels.LINEAR_KERNELS` and
    ``CONV_KERNELS`` that apply).
    ``remove_dead``: None (default) removes dead units where that is measured faster on the whole model,
    True always, False never. ``model`` itself is not changed. Outputs equal the dense model's
    (:func:`strip_masks`) within float tolerance.

    Layers timed one by one can mislead where the whole model is bound by something else: a small model on
    a GPU is bound by kernel launches, so a kernel that saves GPU time but adds launches wins alone and loses
    in the model. So once the layers are chosen, the whole model is timed with and without the chosen
    kernels, and by the same rule the dense layers come back unless the kernels pay as a whole.
    """
    plain, dead = without_dead_units(strip_masks(model).eval(), example_input, settings, remove_dead)
    base = copy.deepcopy(plain)
    rows, timings = [], {}
    with torch.no_grad():
        for name, x in capture_inputs(plain, example_input).items():
            layer = plain.get_submodule(name)
            reference = layer(x)
            found = {k: m for k, m in candidates(layer, tuple(x.shape), kernels).items()
                     if _agrees(m, x, reference)}
            if found:
                seconds = time_kernels({DENSE: layer, **found}, x, settings)
                kernel = choose_kernel(seconds)
            else:  # no exact sparse candidate for this layer: dense stays, and timing it alone would tell nothing
                seconds, kernel = {DENSE: math.nan}, DENSE
            if kernel != DENSE:
                _replace(plain, name, found[kernel])
            timings[name] = seconds
            rows.append(asdict(layer_choice(name, layer, x, seconds, kernel, dead.get(name, 0))))
    whole = {}
    if any(row["kernel"] != DENSE for row in rows):
        whole = time_kernels({DENSE: base, "sparse": plain}, example_input, settings)
        if choose_kernel(whole) == DENSE:
            plain = base
            rows = [dict(row, kernel=DENSE, speedup=1.0) for row in rows]
    return SparseModel(plain, pd.DataFrame(rows, columns=CHOICE_COLUMNS), timings, whole).eval()
