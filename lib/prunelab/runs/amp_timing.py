"""fp32 against mixed precision training time of a recorded run, measured side by side and written back as
its own record.

Two separate training runs time their epochs minutes apart, on a machine whose speed drifts (other
processes, clocks, caches), so their totals are not comparable. :func:`amp_timing_record` rebuilds the
run's trained, pruned model and trains two copies of it on the same few training batches, fp32 and mixed
precision taking turns in one process (:func:`prunelab.precision.timing.compare_training`): each time is
the median of ``repeats`` passes after a warm-up, with its spread (slowest minus fastest pass). The record
lands under ``<result_dir>/amp-timing/<run>-<settings hash>``; Tables J and K read it from the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.hardware import hardware_info
from ..core.timing import MIN_REPEATS
from ..core.train import make_optimizer, resolve_device
from ..data.in_memory import DeviceLoader
from ..errors import UserError
from ..models.layers import keep_pruned_at_zero, trainable_parameters
from ..precision.amp import amp_name, amp_settings
from ..precision.timing import compare_training
from .config import RunConfig
from .prepare import derived_path, model_from_record, record_data, reusable_derived, source_completed
from .store import RunRecord, json_writer, load_record, write_record

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


def amp_timing_path(record: RunRecord, settings: AmpTimingSettings = AmpTimingSettings()) -> Path:
    """Where the AMP timing record of ``record`` is (or will be) written."""
    return derived_path(record, EXPERIMENT, settings)


def amp_timing_record(record: RunRecord, settings: AmpTimingSettings = AmpTimingSettings(), force: bool = False,
                      log: Callable[[str], None] = print) -> RunRecord:
    """The interleaved fp32 / mixed precision training-time record of ``record``'s model: reused when made
    from this very source (unless ``force``), else measured now on this machine's default device."""
    if settings.repeats < 1 or settings.batches < 1:
        raise UserError(f"AMP timing needs at least one repeat and one batch, got {settings}.")
    final = amp_timing_path(record, settings)
    completed = source_completed(record)
    existing = reusable_derived(final, record, force, log)
    if existing is not None:
        return existing
    config = RunConfig.from_dict(record.config)
    device = resolve_device(config.gpu, config.no_cuda)
    amp = amp_settings(device, True, settings.amp_dtype)
    data = record_data(record, "AMP timing")
    model = model_from_record(record, device)
    channels_last = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())  # as the run itself trained
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    batch_size = settings.batch_size or config.train_batch_size
    train = DeviceLoader(data.train, data.info, batch_size, device, shuffle=True, seed=config.seed,
                         channels_last=channels_last)
    batches = [batch for _, batch in zip(range(settings.batches), train)]

    def optimizer(twin: torch.nn.Module) -> torch.optim.Optimizer:
        made = make_optimizer(config.optimizer, trainable_parameters(twin), config.lr, config.weight_decay)
        keep_pruned_at_zero(made, twin)
        return made

    log(f"amp-timing: {record.path.name}: fp32 against {amp_name(amp)} training, {len(batches)} batch(es) of "
        f"{batch_size} per pass, {settings.repeats} passes each in turn after {settings.warmup} warm-up.")
    timing = compare_training(model, batches, device, amp, optimizer, settings.repeats, settings.warmup)
    fp32, mixed = timing["fp32"], timing["amp"]
    summary = {
        "source_record": record.path.name, "source_hash": record.summary.get("config_hash"),
        "source_completed": completed, "stand_in": data.stand_in, "data_source": data.source,
        "device": device.type, "threads": torch.get_num_threads(), "amp_dtype": amp_name(amp),
        "batches": len(batches), "batch_size": batch_size, "compression": config.compression,
        **fp32.summary("fp32_train"), **mixed.summary("amp_train"),  # seconds of one pass of `batches` steps
        "fp32_samples_s": list(fp32.samples), "amp_samples_s": list(mixed.samples),
        "amp_over_fp32": mixed.median / fp32.median,
    }
    write_record(final, {
        "config.json": json_writer({**record.config, "experiment": EXPERIMENT,
                                    "amp_timing": dataclasses.asdict(settings)}),
        "summary.json": json_writer(summary),
        "env.json": json_writer({**hardware_info(device), "data_source": data.source}),
    })
    return load_record(final)
