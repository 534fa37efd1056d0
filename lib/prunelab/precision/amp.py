"""Mixed precision for training: the autocast dtype per device, the autocast context and the gradient scaler.

The training loop wires these pieces together::

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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import UserError

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
        raise UserError(f"unknown AMP dtype {amp_dtype!r}; choose fp16 or bf16, or leave it unset")
    if not enabled:
        return AmpSettings(False, None)
    kind = torch.device(device).type
    if kind == "cuda":
        if amp_dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise UserError("this CUDA device does not support bf16 autocast; use --amp-dtype fp16")
        return AmpSettings(True, AMP_DTYPES[amp_dtype or "fp16"])
    if kind == "cpu":
        if amp_dtype == "fp16":
            raise UserError("fp16 autocast is not supported on the CPU; use --amp-dtype bf16 (the CPU default)")
        return AmpSettings(True, torch.bfloat16)
    if kind == "mps":
        return AmpSettings(True, AMP_DTYPES[amp_dtype or "fp16"])
    raise UserError(f"mixed precision is available on cuda, cpu and mps devices, not on {kind!r}")


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


def autocast_factory(settings: AmpSettings, device: torch.device | str
                     ) -> Callable[[], contextlib.AbstractContextManager]:
    """What the training loops take as ``autocast``: ``contextlib.nullcontext`` itself when mixed precision
    is off (so ``core.train.train_step`` knows the step can be a CUDA graph), else a maker of
    :func:`autocast` contexts."""
    if not settings.enabled:
        return contextlib.nullcontext
    return lambda: autocast(settings, device)


def make_scaler(settings: AmpSettings, device: torch.device | str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 on CUDA (bf16 has fp32's range and needs none).

    A disabled scaler passes the loss and the step through unchanged, so a training loop can always
    call ``scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()``.
    """
    kind = torch.device(device).type
    enabled = settings.enabled and settings.dtype == torch.float16 and kind == "cuda"
    return torch.amp.GradScaler(kind, enabled=enabled)
