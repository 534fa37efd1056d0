"""int8 post-training quantization of a pruned model for CPU inference, and its timing against fp32.

:func:`quantize_int8` uses PyTorch's eager-mode static post-training
quantization (``torch.ao.quantization``: fuse, ``QuantWrapper``, ``prepare``, calibrate, ``convert``)
on the ``x86`` engine (fbgemm/oneDNN kernels). What torch 2.14.1 offers, as measured on a 2-core
x86 CPU (AVX-512 VNNI) for ``default.conv`` nets on 8x8 inputs:

* ``torch.ao.quantization`` eager mode: present and working, but marked deprecated ("will be removed
  in 2.10", a ``DeprecationWarning`` on every ``prepare``/``convert``), and quantized tensors warn
  once per process that their creation functions (``torch.quantize_per_tensor``...) are deprecated.
  It needs no compiler and no extra package, runs at any batch size, and was the fastest: for width
  64 (bench/quant.py) 3x fp32 at batch 64 and 5x at batch 360; at width 16 only 1.2x to 1.6x.
* ``torch.ao.quantization.quantize_fx`` (FX graph mode): present, deprecated the same way, runs. On
  sequential nets it was slower than eager mode (1.45x fp32 against 2.6x on one width-32 net): it
  dequantizes around ``nn.Flatten`` and requantizes before the classifier. It is the path for models
  with residual additions, which it turns into int8 adds: a pruned ResNet20 ran 9x faster than fp32 on
  one thread (batch 256, 32x32).
* PT2E (``prepare_pt2e``/``convert_pt2e`` with ``X86InductorQuantizer``) is no longer in torch; it
  lives in the ``torchao`` package (0.18.0 installs and imports with torch 2.14.1). The converted
  graph only runs int8 kernels after ``torch.compile`` with inductor freezing, which needs a C++
  compiler at run time and 3-35 s of compilation per input shape; uncompiled it is slower than fp32,
  and recompiling for a second batch size failed inside inductor's quantized-conv lowering (a stride
  assertion), so it needs ``dynamic=False``. Compiled, it was 1.3x to 4x compiled fp32 but never
  faster than the eager path. torchao's eager ``quantize_`` configs quantize ``nn.Linear`` only.

So :func:`quantize_int8` takes the eager path for ``nn.Sequential`` models (``default.fc``,
``default.conv``) and FX graph mode for the rest (the lottery VGGs and ResNets), and silences their
deprecation messages (they are recorded here instead). If a later torch removes both, PT2E through
torchao is the replacement.

Weights use symmetric per-channel int8 (zero point 0), so a pruned (zero) weight dequantizes to
exactly 0 (batchnorm folding scales whole output channels, so zeros stay zero). Activations use
PyTorch's default x86 histogram observer with a reduced range, [0, 127] (7-bit activations, safe on
CPUs without VNNI, where full-range int8 products can saturate).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.ao.nn.quantized as nnq
import torch.nn as nn
from torch import Tensor

from ..core.inference import strip_masks, weight_masks
from ..core.train import synchronize
from ..errors import UserError

QUANT_ENGINE = "x86"
#: messages of the eager path's deprecation warnings (see the module docstring), silenced in quantize_int8
_DEPRECATION_MESSAGES = (r"torch\.ao\.quantization is deprecated", r"torch\.quantize_per_tensor, torch\.quantize_per")

# Runs of module types that fuse into one quantized kernel, longest first.
_FUSE_PATTERNS: tuple[tuple[type[nn.Module], ...], ...] = (
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU),
    (nn.Conv2d, nn.BatchNorm2d),
    (nn.Conv2d, nn.ReLU),
    (nn.Linear, nn.BatchNorm1d),
    (nn.Linear, nn.ReLU),
    (nn.BatchNorm2d, nn.ReLU),
)


def int8_qconfig(reduce_range: bool = True) -> torch.ao.quantization.QConfig:
    """Histogram-calibrated uint8 activations, symmetric per-channel int8 weights (zero point 0)."""
    from torch.ao.quantization import HistogramObserver, PerChannelMinMaxObserver, QConfig

    # reduce_range written as its range, [0, 127]: the observer's own flag warns that it is deprecated
    activation = HistogramObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=127 if reduce_range else 255)
    return QConfig(activation=activation,
                   weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))


def fusion_groups(model: nn.Module) -> list[list[str]]:
    """Names of consecutive children of every ``nn.Sequential`` that match a fusable pattern."""
    groups = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        i = 0
        while i < len(names):
            for pattern in _FUSE_PATTERNS:
                run = names[i:i + len(pattern)]
                if len(run) == len(pattern) and all(type(module._modules[n]) is t for n, t in zip(run, pattern)):
                    groups.append([f"{prefix}.{n}" if prefix else n for n in run])
                    i += len(pattern)
                    break
            else:
                i += 1
    return groups


def _first_tensor(batch) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def quantize_int8(model: nn.Module, calibration_batches: Iterable, example_input: Tensor,
                  reduce_range: bool = True, method: str = "auto") -> nn.Module:
    """Static int8 post-training quantization of ``model`` for CPU inference (see the module docstring).

    ``calibration_batches`` yields inputs or ``(inputs, labels)`` (training batches, say); activation
    ranges are observed on them. ``example_input`` is run through the result to check that every layer
    has an int8 kernel. ``method``: "eager" (``nn.Sequential`` models), "fx" (any traceable model,
    residual additions included), or "auto": eager for a ``nn.Sequential``, else FX. ``model`` is not
    changed. Returns a CPU module taking and returning fp32 tensors.
    """
    if QUANT_ENGINE not in torch.backends.quantized.supported_engines:
        raise UserError(f"This PyTorch build has no {QUANT_ENGINE} quantized engine, so int8 inference is "
                        "not available here.")
    if method not in ("auto", "eager", "fx"):
        raise UserError(f"Unknown int8 method {method!r}; choose auto, eager or fx.")
    torch.backends.quantized.engine = QUANT_ENGINE
    plain = strip_masks(model).cpu().eval()
    if method == "auto":
        method = "eager" if isinstance(plain, nn.Sequential) else "fx"
    example = example_input.detach().float().cpu()
    with warnings.catch_warnings():
        for message in _DEPRECATION_MESSAGES:
            warnings.filterwarnings("ignore", message=message)
        quantized = (_eager_int8 if method == "eager" else _fx_int8)(plain, calibration_batches, example,
                                                                     int8_qconfig(reduce_range))
        try:
            quantized(example)
        except (NotImplementedError, RuntimeError) as error:
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
            hint = " (try method='fx')" if method == "eager" else ""
            raise UserError(f"int8 quantization ({method}) left an operation without an int8 kernel in this "
                            f"model{hint}: {detail}") from error
    return quantized


def _calibrate(prepared: nn.Module, calibration_batches: Iterable) -> None:
    seen = 0
    for batch in calibration_batches:
        prepared(_first_tensor(batch).detach().float().cpu())
        seen += 1
    if seen == 0:
        raise UserError("int8 calibration needs at least one batch of inputs.")


def _eager_int8(plain: nn.Module, calibration_batches: Iterable, example: Tensor, qconfig) -> nn.Module:
    """Fuse conv/bn/relu runs, wrap in quant/dequant stubs, observe, convert (sequential models only)."""
    from torch.ao.quantization import QuantWrapper, convert, fuse_modules, prepare

    groups = fusion_groups(plain)
    if groups:
        plain = fuse_modules(plain, groups)
    wrapped = QuantWrapper(plain).eval()
    wrapped.qconfig = qconfig
    prepare(wrapped, inplace=True)
    _calibrate(wrapped, calibration_batches)
    convert(wrapped, inplace=True)
    return wrapped


def _fx_int8(plain: nn.Module, calibration_batches: Iterable, example: Tensor, qconfig) -> nn.Module:
    """Symbolically trace, fuse and observe (residual additions become int8 adds), convert."""
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    try:
        prepared = prepare_fx(plain, QConfigMapping().set_global(qconfig), (example,))
    except Exception as error:  # noqa: BLE001 - any tracing failure means the same thing to the user
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"int8 quantization could not trace this model with torch.fx: {detail}") from error
    _calibrate(prepared, calibration_batches)
    return convert_fx(prepared)


def _strip_wrapper(name: str) -> str:
    """``module.0`` in the QuantWrapper is ``0`` in the original model."""
    return name.removeprefix("module.")


def int8_weights(qmodel: nn.Module) -> dict[str, Tensor]:
    """The dequantized weight of every quantized conv/linear, keyed by the original model's layer name.

    Raises ``ValueError`` if a weight has a non-zero zero point (zero would then not be exact).
    """
    found = {}
    for name, module in qmodel.named_modules():
        if not isinstance(module, (nnq.Conv2d, nnq.Linear)):
            continue
        weight = module.weight()
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            zero_points = weight.q_per_channel_zero_points()
        else:
            zero_points = torch.tensor([weight.q_zero_point()])
        if bool(torch.any(zero_points != 0)):
            raise ValueError(f"int8 weight {name} has a non-zero zero point, so 0 is not exact")
        found[_strip_wrapper(name)] = weight.dequantize()
    return found


def int8_weight_zero_fraction(qmodel: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero entries in each dequantized int8 weight (pruned ones and any rounded to 0)."""
    return {name: float((w == 0).float().mean()) for name, w in int8_weights(qmodel).items()}


def pruned_weights_zero(model: nn.Module, qmodel: nn.Module) -> dict[str, bool]:
    """For each pruned conv/linear weight of ``model``: do all its pruned entries dequantize to exactly 0?"""
    qweights = int8_weights(qmodel)
    result = {}
    for name, mask in weight_masks(model).items():
        if name not in qweights:
            raise ValueError(f"{name} has no int8 counterpart in the quantized model")
        result[name] = bool(torch.all(qweights[name].reshape(mask.shape)[~mask.cpu()] == 0))
    return result


# ----------------------------------------------------------------------------------------- inference


@dataclass
class InferenceResult:
    """Top-1 accuracy (percent) and the median seconds of one timed pass over the batches."""

    top1: float
    seconds: float
    images: int
    repeats: int

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
    """One model and its batches (already on its device): ``correct()`` counts hits, ``run()`` times a pass."""

    def __init__(self, model: nn.Module, batches: list[tuple[Tensor, Tensor]], device: torch.device) -> None:
        self.model, self.device = model.eval(), device
        self.batches = [(x.to(device), y.to(device)) for x, y in batches]

    def warm_up(self) -> None:
        self.model(self.batches[0][0])
        synchronize(self.device)

    def run(self) -> tuple[float, int]:
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        synchronize(self.device)
        start = time.perf_counter()
        for x, y in self.batches:
            correct += (self.model(x).argmax(dim=1) == y).sum()
        synchronize(self.device)
        return time.perf_counter() - start, int(correct)


@torch.no_grad()
def compare_inference(model_fp32: nn.Module, qmodel: nn.Module, loader: Iterable[tuple[Tensor, Tensor]],
                      repeats: int = 1) -> InferenceComparison:
    """Top-1 accuracy and test-set inference time of the fp32 model (on its device) and the int8 one (CPU).

    The loader's batches are materialised first, so only the models are timed (eval mode, no_grad, one
    warm-up batch each). With ``repeats`` > 1 the two models take turns, alternating which goes first,
    and each reports the median pass; pass-to-pass drift then hits both alike.
    """
    if repeats < 1:
        raise UserError(f"The number of timing repeats must be at least 1, got {repeats}.")
    batches = [(x, y) for x, y in loader]
    if not batches:
        raise UserError("compare_inference needs at least one batch.")
    images = sum(len(y) for _, y in batches)
    fp32 = _Timed(model_fp32, batches, _model_device(model_fp32))
    int8 = _Timed(qmodel, batches, torch.device("cpu"))
    fp32.warm_up()
    int8.warm_up()
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    hits: dict[str, int] = {}
    for r in range(repeats):
        order = (("fp32", fp32), ("int8", int8)) if r % 2 == 0 else (("int8", int8), ("fp32", fp32))
        for name, timed in order:
            seconds, correct = timed.run()
            times[name].append(seconds)
            hits.setdefault(name, correct)
    return InferenceComparison(
        *(InferenceResult(100.0 * hits[n] / images, statistics.median(times[n]), images, repeats)
          for n in ("fp32", "int8")))
