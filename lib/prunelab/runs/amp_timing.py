"""fp32 against mixed precision training time of a recorded run, measured side by side and written back as
its own record.

Two separate training runs time their epochs minutes apart, on a machine whose speed drifts (other
processes, clocks, caches), so their totals are not comparable. :func:`amp_timing_record` rebuilds the
run's trained, pruned model and trains two copies of it on the same few training batches, fp32 and mixed
precision taking turns in one process (:func:`prunelab.precision.timing.compare_training`): each time is
the median of ``repeats`` passes after a warm-up, with its spread (slowest minus fastest pass) and every pass
(``*_samples_s``); one more pass of each gives the peak of the tensor memory it allocates (``*_train_peak_mb``),
the memory the two precisions compare by on a CPU, where a run's own peak is its process's. The record lands
under ``<result_dir>/amp-timing/<run>-<settings hash>``; Tables J and K read it from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.timing import MIN_REPEATS
from ..core.train import make_optimizer
from ..data.in_memory import DeviceLoader
from ..errors import UserError
from ..models.layers import keep_pruned_at_zero, trainable_parameters
from ..precision.amp import amp_name, amp_settings
from ..precision.timing import compare_training
from .prepare import DerivedKind, Measured, SourceRun, derived_record
from .store import RunRecord

EXPERIMENT = "amp-timing"


@dataclass(frozen=True)
class AmpTimingSettings:
    """``batches`` training batches of ``batch_size`` (None: the run's own) per timed pass; ``repeats``
    passes of each precision, taking turns, after ``warmup`` untimed ones; ``amp_dtype`` None: the
    device's default (fp16 on CUDA, bf16 on the CPU)."""

    amp_dtype: str | None = None
    batches: int = 2
    batch_size: int | None = None
    repeats: int = MIN_REPEATS
    warmup: int = 1


def amp_timing_record(record: RunRecord, settings: AmpTimingSettings = AmpTimingSettings(), force: bool = False,
                      log: Callable[[str], None] = print) -> RunRecord:
    """The interleaved fp32 / mixed precision training-time record of ``record``'s model: reused when made
    from this very source (unless ``force``), else measured now on this machine's default device
    (:func:`measure_amp_timing`)."""
    if settings.repeats < 1 or settings.batches < 1:
        raise UserError(f"the AMP timing record needs at least one repeat and one batch, got {settings}")
    return derived_record(record, AMP_TIMING, settings, force, log)


def measure_amp_timing(source: SourceRun, settings: AmpTimingSettings, log: Callable[[str], None]) -> Measured:
    """Two copies of the run's model trained on the same few training batches, fp32 and mixed precision
    taking turns, in the memory layout the run itself trained in."""
    config, data, device = source.config, source.data, source.device
    amp = amp_settings(device, True, settings.amp_dtype)
    model = source.in_run_layout(source.model)
    batch_size = settings.batch_size or config.train_batch_size
    train = DeviceLoader(data.train, data.info, batch_size, device, shuffle=True, seed=config.seed,
                         channels_last=source.channels_last)
    batches = [batch for _, batch in zip(range(settings.batches), train)]

    def optimizer(twin: torch.nn.Module) -> torch.optim.Optimizer:
        made = make_optimizer(config.optimizer, trainable_parameters(twin), config.lr, config.weight_decay)
        keep_pruned_at_zero(made, twin)
        return made

    log(f"amp-timing: {source.record.path.name}: fp32 against {amp_name(amp)} training, {len(batches)} batch(es) "
        f"of {batch_size} per pass, {settings.repeats} passes each in turn after {settings.warmup} warm-up.")
    compared = compare_training(model, batches, device, amp, optimizer, settings.repeats, settings.warmup)
    fp32, mixed = compared.timings["fp32"], compared.timings["amp"]
    return Measured({
        "amp_dtype": amp_name(amp), "batches": len(batches), "batch_size": batch_size,
        "compression": config.compression,
        **fp32.summary("fp32_train"), **mixed.summary("amp_train"),  # seconds of one pass of `batches` steps
        "amp_over_fp32": mixed.median / fp32.median,
        # MB of tensors one pass allocates at its peak (NaN on a device whose memory is not measured)
        "fp32_train_peak_mb": compared.peak_mb["fp32"], "amp_train_peak_mb": compared.peak_mb["amp"],
    })


AMP_TIMING = DerivedKind(EXPERIMENT, measure_amp_timing, require=("amp_train_peak_mb",))
