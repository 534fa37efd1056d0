"""Mixed precision for training, and int8 post-training quantization of a pruned model for CPU inference.

Mixed precision (the training loop wires these pieces together)::

    amp = amp_settings(device, enabled=True, amp_dtype=None)
    scaler = make_scaler(amp, device)
    with autocast(amp, device):
        loss = F.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)  # the hooks of keep_pruned_at_zero run inside this step
    scaler.update()

The optimizer keeps owning fp32 parameters: autocast only runs convolutions and matrix products in
the low-precision dtype, so the masks stay exact (a pruned gradient is multiplied by 0 before the
step and the pruned weight re-zeroed after it, both in fp32).

int8 quantization path: :func:`quantize_int8` uses PyTorch's eager-mode static post-training
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

import contextlib
import io
import math
import statistics
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.ao.nn.quantized as nnq
import torch.nn as nn
from torch import Tensor

from .errors import UserError
from .inference import strip_masks
from .models import layers
from .train import synchronize

# --------------------------------------------------------------------------------------- mixed precision

AMP_DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class AmpSettings:
    """Whether to autocast, and to which dtype (None when disabled)."""

    enabled: bool
    dtype: torch.dtype | None


def amp_settings(device: torch.device | str, enabled: bool, amp_dtype: str | None) -> AmpSettings:
    """Resolve the autocast dtype for ``device``: CUDA fp16 (bf16 on request where supported), CPU bf16,
    MPS fp16. ``amp_dtype`` is "fp16", "bf16" or None (the device's default)."""
    if amp_dtype is not None and amp_dtype not in AMP_DTYPES:
        raise UserError(f"Unknown AMP dtype {amp_dtype!r}; choose fp16 or bf16, or leave it unset.")
    if not enabled:
        return AmpSettings(False, None)
    kind = torch.device(device).type
    if kind == "cuda":
        if amp_dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise UserError("This CUDA device does not support bf16 autocast; use --amp-dtype fp16.")
        return AmpSettings(True, AMP_DTYPES[amp_dtype or "fp16"])
    if kind == "cpu":
        if amp_dtype == "fp16":
            raise UserError("fp16 autocast is not supported on the CPU; use --amp-dtype bf16 (the CPU default).")
        return AmpSettings(True, torch.bfloat16)
    if kind == "mps":
        return AmpSettings(True, AMP_DTYPES[amp_dtype or "fp16"])
    raise UserError(f"Mixed precision is available on cuda, cpu and mps devices, not on {kind!r}.")


def amp_name(settings: AmpSettings) -> str:
    """"fp16", "bf16", or "fp32" when mixed precision is off (the names the flags use)."""
    if not settings.enabled:
        return "fp32"
    return next(name for name, dtype in AMP_DTYPES.items() if dtype == settings.dtype)


def autocast(settings: AmpSettings, device: torch.device | str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the forward pass and loss when enabled, else a no-op context."""
    if not settings.enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=settings.dtype)


def make_scaler(settings: AmpSettings, device: torch.device | str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 on CUDA (bf16 has fp32's range and needs none).

    A disabled scaler passes the loss and the step through unchanged, so a training loop can always
    call ``scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()``.
    """
    kind = torch.device(device).type
    enabled = settings.enabled and settings.dtype == torch.float16 and kind == "cuda"
    return torch.amp.GradScaler(kind, enabled=enabled)


# ------------------------------------------------------------------------------------------- memory

_MB = 2**20


def _proc_status_kb(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in KB, or None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's resident-set high-water mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Peak memory of a block: ``with PeakMemory(device) as mem: ...`` then ``mem.peak_mb``, ``mem.kind``.

    * CUDA (``kind="cuda_max_allocated"``): the peak of tensors allocated by PyTorch on the device
      during the block (``reset_peak_memory_stats`` then ``max_memory_allocated``).
    * CPU and anything else (``kind="cpu_peak_rss"``): the peak resident set size of the whole process.
      That is a lifetime peak, so on entry the Linux high-water mark is reset where the kernel allows;
      ``block_only`` says whether that worked (if not, the peak may predate the block). ``start_mb``
      and ``start_peak_mb`` are the RSS and its high-water mark on entry, for comparison.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.kind = "cuda_max_allocated" if self.device.type == "cuda" else "cpu_peak_rss"
        self.peak_mb = math.nan
        self.start_mb = math.nan
        self.start_peak_mb = math.nan
        self.block_only = False

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / _MB
            self.start_peak_mb = torch.cuda.max_memory_allocated(self.device) / _MB
            torch.cuda.reset_peak_memory_stats(self.device)
            self.block_only = True
            return self
        rss, hwm = _proc_status_kb("VmRSS"), _proc_status_kb("VmHWM")
        self.start_mb = math.nan if rss is None else rss / 1024
        self.start_peak_mb = (hwm if hwm is not None else _ru_maxrss_kb()) / 1024
        self.block_only = _reset_peak_rss()
        return self

    def __exit__(self, *exc) -> bool:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / _MB
            return False
        synchronize(self.device)
        hwm = _proc_status_kb("VmHWM")
        self.peak_mb = (hwm if hwm is not None else _ru_maxrss_kb()) / 1024
        return False


def _ru_maxrss_kb() -> int:
    """``ru_maxrss`` of this process in KB (Linux reports KB; macOS reports bytes)."""
    import resource  # Unix only, so imported where needed

    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value // 1024 if sys.platform == "darwin" else value


# ------------------------------------------------------------------------------------------ int8 PTQ

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


# --------------------------------------------------------------------------------------------- sizes

#: torch.save's zip format costs about 1.3 KB per file plus about 240 B per stored tensor (record
#: headers, pickle, 64-byte alignment of each storage), measured on torch 2.14; bounds with headroom:
SAVE_OVERHEAD_BASE = 2048
SAVE_OVERHEAD_PER_TENSOR = 384


def weight_masks(model: nn.Module) -> dict[str, Tensor]:
    """Boolean keep-mask of every conv/linear weight, keyed by layer name (``<layer>`` for ``<layer>.weight``).

    Masked layers give their ``weight_mask`` buffer; plain layers their non-zero pattern.
    """
    masks = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        if isinstance(module, layers.MaskedMixin):
            masks[name] = module.mask_of("weight") != 0
        else:
            masks[name] = module.weight.detach() != 0
    return masks


def saved_bytes(obj) -> int:
    """Bytes of ``torch.save(obj)``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def _tensors(obj) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def raw_bytes(obj) -> tuple[int, int]:
    """(data bytes, stored tensors) of the tensors in ``obj``, as torch.save writes them.

    A per-channel quantized tensor is written as its int8 data plus float64 scales and int64 zero points.
    """
    total, count = 0, 0
    for t in _tensors(obj):
        total += t.untyped_storage().nbytes()
        count += 1
        if t.is_quantized and t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            total += t.q_per_channel_scales().numel() * 8 + t.q_per_channel_zero_points().numel() * 8
            count += 2
    return total, count


def bitmask_bytes(numel: int, kept: int) -> int:
    """1 bit per entry, packed, plus the kept values as fp32."""
    return math.ceil(numel / 8) + 4 * kept


def csr_bytes(rows: int, kept: int) -> int:
    """CSR of the [out, rest] view with int32 indices: row pointers, column indices, fp32 values."""
    return 4 * (rows + 1) + 8 * kept


def sparse_state_dict(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, int]]:
    """The plain state dict with every conv/linear weight stored sparsely, and its byte counts.

    Each weight takes the smaller of two formats: a bitmask (``ceil(n/8)`` bytes) plus fp32 kept values,
    or CSR of its ``[out, rest]`` view with int32 indices (``4(rows+1) + 8k`` bytes). The bitmask wins
    above a density of about 1/32, CSR below; ``<name>.shape`` (int32) restores the dense shape.
    Everything else (biases, batchnorm) stays dense.
    """
    masks = weight_masks(model)
    state = strip_masks(model).state_dict()
    out: dict[str, Tensor] = {}
    counts = dict(values=0, index=0, dense=0, shape=0, bitmask_layers=0, csr_layers=0)
    for key, value in state.items():
        layer = key.removesuffix(".weight")
        if not (key.endswith(".weight") and layer in masks):
            out[key] = value
            counts["dense"] += value.untyped_storage().nbytes()
            continue
        mask = masks[layer].cpu()
        flat_mask = mask.reshape(mask.shape[0], -1)
        kept, rows = int(mask.sum()), flat_mask.shape[0]
        values = value.detach().cpu().float().reshape(rows, -1)[flat_mask].contiguous()  # row-major order
        out[f"{key}.shape"] = torch.tensor(list(value.shape), dtype=torch.int32)
        out[f"{key}.values"] = values
        if bitmask_bytes(mask.numel(), kept) <= csr_bytes(rows, kept):
            bits = np.packbits(flat_mask.reshape(-1).numpy().astype(np.uint8))
            out[f"{key}.bitmask"] = torch.from_numpy(bits)
            counts["index"] += bits.nbytes
            counts["bitmask_layers"] += 1
        else:
            crow = torch.cat([torch.zeros(1, dtype=torch.int64), flat_mask.sum(1).cumsum(0)]).to(torch.int32)
            col = flat_mask.nonzero()[:, 1].to(torch.int32).contiguous()
            out[f"{key}.crow"], out[f"{key}.col"] = crow, col
            counts["index"] += crow.numel() * 4 + col.numel() * 4
            counts["csr_layers"] += 1
        counts["values"] += values.numel() * 4
        counts["shape"] += out[f"{key}.shape"].numel() * 4
    return out, counts


def dense_from_sparse(sparse: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rebuild the dense plain state dict from :func:`sparse_state_dict` (to check it loses nothing)."""
    dense = {}
    for key, value in sparse.items():
        if key.endswith((".values", ".bitmask", ".crow", ".col")):
            continue
        if not key.endswith(".shape"):
            dense[key] = value
            continue
        name = key.removesuffix(".shape")
        shape = [int(s) for s in value]
        rows = shape[0]
        numel = math.prod(shape)
        if f"{name}.bitmask" in sparse:
            bits = np.unpackbits(sparse[f"{name}.bitmask"].numpy(), count=numel).astype(bool)
            flat_mask = torch.from_numpy(bits).reshape(rows, -1)
        else:
            crow, col = sparse[f"{name}.crow"].long(), sparse[f"{name}.col"].long()
            row_of = torch.repeat_interleave(torch.arange(rows), crow.diff())
            flat_mask = torch.zeros(rows, numel // rows, dtype=torch.bool)
            flat_mask[row_of, col] = True
        weight = torch.zeros(rows, numel // rows)
        weight[flat_mask] = sparse[f"{name}.values"]
        dense[name] = weight.reshape(shape)
    return dense


def model_sizes(model_fp32_pruned: nn.Module, qmodel: nn.Module) -> dict[str, int]:
    """Bytes on disk (``torch.save`` to memory) of three encodings of a pruned model, with the counts
    that make the sums checkable.

    * ``fp32_dense_bytes``: the plain state dict (:func:`strip_masks`, masks dropped); raw data
      ``fp32_dense_raw_bytes`` (``4 * num_params`` plus any buffers).
    * ``fp32_sparse_bytes``: :func:`sparse_state_dict`; raw data ``fp32_sparse_raw_bytes`` is
      ``sparse_values_bytes + sparse_index_bytes + sparse_shape_bytes + sparse_dense_bytes``.
    * ``int8_bytes``: the quantized model's state dict; raw data ``int8_raw_bytes`` is
      ``int8_weight_bytes`` (1 byte per conv/linear weight) + ``int8_qparam_bytes`` (per-channel
      float64 scale and int64 zero point) + ``int8_other_bytes`` (fp32 biases, activation scales).

    Each ``*_bytes`` exceeds its ``*_raw_bytes`` by torch.save's overhead, at most
    ``SAVE_OVERHEAD_BASE + SAVE_OVERHEAD_PER_TENSOR * *_tensors``.
    """
    masks = weight_masks(model_fp32_pruned)
    dense_state = strip_masks(model_fp32_pruned).state_dict()
    dense_raw, dense_tensors = raw_bytes(dense_state)
    sparse, counts = sparse_state_dict(model_fp32_pruned)
    sparse_raw, sparse_tensors = raw_bytes(sparse)
    qstate = qmodel.state_dict()
    int8_raw, int8_tensors = raw_bytes(qstate)
    qweights = [m.weight() for m in qmodel.modules() if isinstance(m, (nnq.Conv2d, nnq.Linear))]
    int8_weight = sum(w.untyped_storage().nbytes() for w in qweights)
    int8_qparams = sum(raw_bytes(w)[0] - w.untyped_storage().nbytes() for w in qweights)
    return {
        "total_weights": sum(m.numel() for m in masks.values()),
        "kept_weights": sum(int(m.sum()) for m in masks.values()),
        "num_params": sum(p.numel() for p in model_fp32_pruned.parameters()),
        "fp32_dense_bytes": saved_bytes(dense_state),
        "fp32_dense_raw_bytes": dense_raw,
        "fp32_dense_tensors": dense_tensors,
        "fp32_sparse_bytes": saved_bytes(sparse),
        "fp32_sparse_raw_bytes": sparse_raw,
        "fp32_sparse_tensors": sparse_tensors,
        "sparse_values_bytes": counts["values"],
        "sparse_index_bytes": counts["index"],
        "sparse_shape_bytes": counts["shape"],
        "sparse_dense_bytes": counts["dense"],
        "sparse_bitmask_layers": counts["bitmask_layers"],
        "sparse_csr_layers": counts["csr_layers"],
        "int8_bytes": saved_bytes(qstate),
        "int8_raw_bytes": int8_raw,
        "int8_tensors": int8_tensors,
        "int8_weight_bytes": int8_weight,
        "int8_qparam_bytes": int8_qparams,
        "int8_other_bytes": int8_raw - int8_weight - int8_qparams,
    }


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
