"""int8 post-training quantization of a pruned model for CPU inference.

:func:`quantize_int8` takes one of three paths and records which on the result (:func:`int8_path_of`):

* ``"pt2e"``, the maintained one (:mod:`prunelab.precision.pt2e`): torchao's PT2E flow compiled by
  ``torch.compile``. It needs torchao, an x86 CPU and a C++ compiler at run time.
* ``"eager"`` and ``"fx"``, the fallback: PyTorch's own ``torch.ao.quantization`` (eager mode for
  ``nn.Sequential`` models, FX graph mode for the rest, which turns residual additions into int8 adds).
  It is deprecated and warns on every ``prepare`` / ``convert``; those warnings are silenced on this path
  only, since choosing it is already reported in the path.

``method="auto"`` (the default) runs PT2E where torchao imports and the converted model compiles and runs
on the example input; otherwise it takes the old path and records why PT2E did not run, so a table can say
which int8 it shows. Naming a method runs only that one.

Weights are symmetric per-channel int8 (zero point 0) on every path, so a pruned (zero) weight dequantizes
to exactly 0 (batchnorm folding scales whole output channels, so zeros stay zero); :func:`pruned_weights_zero`
checks it on the result. Activations are uint8 with a reduced range, [0, 127], by default: 7-bit
activations are safe on CPUs without VNNI, where full-range uint8 x int8 products can saturate in 16 bits.
Which path is fastest depends on the CPU's vector units: figures per machine are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.ao.nn.quantized as nnq
import torch.nn as nn
from torch import Tensor

from ..core.inference import strip_masks, weight_masks
from ..errors import UserError
from .pt2e import (
    FrozenCompiled,
    PT2EInt8,
    calibrate,
    dequantized,
    first_line,
    pt2e_int8,
    pt2e_int8_weights,
    pt2e_unavailable,
)
from .timing import InferenceComparison, InferenceResult, compare_inference, compare_models

__all__ = ["QUANT_ENGINE", "METHODS", "Int8Path", "InferenceComparison", "InferenceResult", "compare_inference",
           "compare_models", "compiled_fp32", "fusion_groups", "int8_path_of", "int8_qconfig",
           "int8_weight_zero_fraction", "int8_weights", "legacy_method", "pruned_weights_zero", "quantize_int8"]

QUANT_ENGINE = "x86"
METHODS = ("auto", "pt2e", "eager", "fx")
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


@dataclass(frozen=True)
class Int8Path:
    """Which path quantized a model: ``method`` is "pt2e", "eager" or "fx"; ``fallback`` says why PT2E did
    not run when ``method="auto"`` fell back to the old path (None when it ran, or when a path was named)."""

    method: str
    fallback: str | None = None

    def __str__(self) -> str:
        return self.method if self.fallback is None else f"{self.method} (fallback: {self.fallback})"


def int8_path_of(qmodel: nn.Module) -> Int8Path:
    """The path recorded on a result of :func:`quantize_int8`."""
    path = getattr(qmodel, "int8_path", None)
    if isinstance(path, Int8Path):
        return path
    return Int8Path("pt2e") if isinstance(qmodel, PT2EInt8) else Int8Path("unknown")


def legacy_method(model: nn.Module) -> str:
    """The old path's choice for ``model``: eager mode for a ``nn.Sequential``, else FX graph mode."""
    return "eager" if isinstance(model, nn.Sequential) else "fx"


@torch.no_grad()
def quantize_int8(model: nn.Module, calibration_batches: Iterable, example_input: Tensor,
                  reduce_range: bool = True, method: str = "auto") -> nn.Module:
    """Static int8 post-training quantization of ``model`` for CPU inference (see the module docstring).

    ``calibration_batches`` yields inputs or ``(inputs, labels)`` (training batches, say); activation
    ranges are observed on them. ``example_input`` is run through the result to check that every layer
    has an int8 kernel (on the PT2E path this compiles for its shape, so pass a batch of the shape the
    model will see). ``method``: "pt2e" (torchao), "eager" (``nn.Sequential`` models), "fx" (any
    traceable model, residual additions included), or "auto": PT2E where it runs, else the old path's
    choice (:func:`legacy_method`). ``model`` is not changed. Returns a CPU module taking and returning
    fp32 tensors, with the path taken in its ``int8_path`` attribute (:class:`Int8Path`).
    """
    if method not in METHODS:
        raise UserError(f"unknown int8 method {method!r}; choose {', '.join(METHODS)}")
    plain = strip_masks(model).cpu().eval()
    example = example_input.detach().float().cpu()
    calibration = list(calibration_batches)  # read twice when PT2E falls back
    if not calibration:
        raise UserError("int8 calibration needs at least one batch of inputs")
    fallback = None
    if method in ("auto", "pt2e"):
        fallback = pt2e_unavailable()
        if fallback is None:
            try:
                quantized = pt2e_int8(plain, calibration, example, reduce_range)
                quantized(example)  # compiles for this shape
                quantized.int8_path = Int8Path("pt2e")
                return quantized
            except UserError:
                raise
            except Exception as error:  # noqa: BLE001 - export, conversion or compilation: fall back, saying why
                fallback = f"PT2E failed: {first_line(error)}"
        if method == "pt2e":
            raise UserError(f"the PT2E int8 path cannot run here: {fallback}")
        method = legacy_method(plain)
    quantized = _legacy_int8(plain, calibration, example, reduce_range, method)
    quantized.int8_path = Int8Path(method, fallback)
    return quantized


def compiled_fp32(model: nn.Module) -> FrozenCompiled:
    """``model`` as :func:`quantize_int8` takes it (masks stripped, on the CPU, eval mode) run as the PT2E path runs
    its int8 graph, through ``torch.compile`` with inductor freezing (:class:`~.pt2e.FrozenCompiled`): the fp32
    side against which an int8 speed-up is what the int8 kernels buy, not what compiling fuses. ``model`` is not
    changed; the first call per input shape compiles."""
    return FrozenCompiled(strip_masks(model).cpu().eval())


def _legacy_int8(plain: nn.Module, calibration: list, example: Tensor, reduce_range: bool, method: str) -> nn.Module:
    """The deprecated torch.ao paths (eager or FX), their deprecation messages silenced."""
    if QUANT_ENGINE not in torch.backends.quantized.supported_engines:
        raise UserError(f"this PyTorch build has no {QUANT_ENGINE} quantized engine, so int8 inference ({method}) "
                        "is not available here")
    torch.backends.quantized.engine = QUANT_ENGINE
    with warnings.catch_warnings():
        for message in _DEPRECATION_MESSAGES:
            warnings.filterwarnings("ignore", message=message)
        quantized = (_eager_int8 if method == "eager" else _fx_int8)(plain, calibration, example,
                                                                     int8_qconfig(reduce_range))
        try:
            quantized(example)
        except (NotImplementedError, RuntimeError) as error:
            hint = " (try method='fx')" if method == "eager" else ""
            raise UserError(f"int8 quantization ({method}) left an operation without an int8 kernel in this "
                            f"model{hint}: {first_line(error)}") from error
    return quantized


def _eager_int8(plain: nn.Module, calibration_batches: Iterable, example: Tensor, qconfig) -> nn.Module:
    """Fuse conv/bn/relu runs, wrap in quant/dequant stubs, observe, convert (sequential models only)."""
    from torch.ao.quantization import QuantWrapper, convert, fuse_modules, prepare

    groups = fusion_groups(plain)
    if groups:
        plain = fuse_modules(plain, groups)
    wrapped = QuantWrapper(plain).eval()
    wrapped.qconfig = qconfig
    prepare(wrapped, inplace=True)
    calibrate(wrapped, calibration_batches)
    convert(wrapped, inplace=True)
    return wrapped


def _fx_int8(plain: nn.Module, calibration_batches: Iterable, example: Tensor, qconfig) -> nn.Module:
    """Symbolically trace, fuse and observe (residual additions become int8 adds), convert."""
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    try:
        prepared = prepare_fx(plain, QConfigMapping().set_global(qconfig), (example,))
    except Exception as error:  # noqa: BLE001 - any tracing failure means the same thing to the user
        raise UserError(f"int8 quantization could not trace this model with torch.fx: {first_line(error)}") from error
    calibrate(prepared, calibration_batches)
    return convert_fx(prepared)


def _strip_wrapper(name: str) -> str:
    """``module.0`` in the QuantWrapper is ``0`` in the original model."""
    return name.removeprefix("module.")


def int8_weights(qmodel: nn.Module) -> dict[str, Tensor]:
    """The dequantized weight of every int8 conv/linear, keyed by the original model's layer name, on any path
    (PT2E: read from the converted graph's int8 tensors, scales and zero points).

    Raises ``ValueError`` if a weight has a non-zero zero point (zero would then not be exact).
    """
    found = {}
    if isinstance(qmodel, PT2EInt8):
        for name, (q, scale, zero_point) in pt2e_int8_weights(qmodel).items():
            if q.dtype != torch.int8:
                raise ValueError(f"weight {name} is {q.dtype} in the converted graph, not int8")
            if bool(torch.any(zero_point != 0)):
                raise ValueError(f"int8 weight {name} has a non-zero zero point, so 0 is not exact")
            found[name] = dequantized(q, scale, zero_point)
        return found
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


