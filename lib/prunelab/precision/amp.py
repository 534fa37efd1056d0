"""Mixed precision for training: the autocast dtype per device, and the gradient scaler.

:func:`amp_settings` resolves a run's flags to a :class:`prunelab.core.evaluation.Precision` for its device; the
training loops make their autocast context from it. Wired together by hand::

    precision = amp_settings(device, enabled=True, amp_dtype=None)
    scaler = make_scaler(precision, device)
    with precision.autocast(device):
        loss = F.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)  # the hooks of keep_pruned_at_zero run inside this step
    scaler.update()

which is what ``core.train.ordinary_step(model, optimizer, precision, scaler)`` does. The optimizer keeps
owning fp32 parameters: autocast only runs convolutions and matrix products in the low-precision dtype, so
the masks stay exact (a pruned gradient is multiplied by 0 before the step and the pruned weight re-zeroed
after it, both in fp32).
"""

from __future__ import annotations

import torch

from ..core.evaluation import FP32, Precision
from ..errors import UserError

AMP_DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16}


def amp_settings(device: torch.device | str, enabled: bool, amp_dtype: str | None) -> Precision:
    """Resolve the autocast dtype for ``device``: CUDA fp16 (bf16 on request where supported), CPU bf16,
    MPS fp16; fp32 when not ``enabled``. ``amp_dtype`` is "fp16", "bf16" or None (the device's default)."""
    if amp_dtype is not None and amp_dtype not in AMP_DTYPES:
        raise UserError(f"unknown AMP dtype {amp_dtype!r}; choose fp16 or bf16, or leave it unset")
    if not enabled:
        return FP32
    kind = torch.device(device).type
    if kind == "cuda":
        if amp_dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise UserError("this CUDA device does not support bf16 autocast; use --amp-dtype fp16")
        return Precision(AMP_DTYPES[amp_dtype or "fp16"])
    if kind == "cpu":
        if amp_dtype == "fp16":
            raise UserError("fp16 autocast is not supported on the CPU; use --amp-dtype bf16 (the CPU default)")
        return Precision(torch.bfloat16)
    if kind == "mps":
        return Precision(AMP_DTYPES[amp_dtype or "fp16"])
    raise UserError(f"mixed precision is available on cuda, cpu and mps devices, not on {kind!r}")


def amp_name(precision: Precision) -> str:
    """"fp16", "bf16", or "fp32" when mixed precision is off (the names the flags use)."""
    if not precision.mixed:
        return "fp32"
    return next(name for name, dtype in AMP_DTYPES.items() if dtype == precision.dtype)


def make_scaler(precision: Precision, device: torch.device | str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 on CUDA (bf16 has fp32's range and needs none).

    A disabled scaler passes the loss and the step through unchanged, so a training loop can always
    call ``scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()``.
    """
    kind = torch.device(device).type
    enabled = precision.dtype == torch.float16 and kind == "cuda"
    return torch.amp.GradScaler(kind, enabled=enabled)
