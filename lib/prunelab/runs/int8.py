"""int8 post-training quantization of a recorded run, written back to the result store as its own record.

A notebook's int8 table is then read from the store like every other number: the record under
``<result_dir>/int8/<run>-<settings hash>`` holds the fp32 and int8 accuracy and test-set inference
time (measured side by side in one process), the three model sizes on disk, and whether every pruned
weight is still exactly zero after quantization.

The int8 model comes from :func:`prunelab.precision.int8.quantize_int8` with ``method="auto"``: torchao's
PT2E path where it runs, else the deprecated ``torch.ao`` path, named with its reason in ``int8_path``.
When PT2E ran, the old path's model (eager mode for ``nn.Sequential`` nets, FX for the rest, as chosen
before PT2E) is measured too, in the same interleaved passes, under ``legacy_*``; each time is the median
of the passes, with its spread (slowest minus fastest pass) beside it in ``*_spread_s``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.hardware import hardware_info
from ..data.in_memory import DeviceLoader
from ..errors import UserError
from ..precision.int8 import compare_models, int8_path_of, legacy_method, pruned_weights_zero, quantize_int8
from ..precision.sizes import model_sizes
from .config import RunConfig
from .prepare import derived_path, model_from_record, record_data, reusable_derived, source_completed
from .store import RunRecord, json_writer, load_record, write_record

EXPERIMENT = "int8"


@dataclass(frozen=True)
class Int8Settings:
    """Calibration on ``calibration_batches`` shuffled training batches of ``calibration_batch_size``;
    timing as the median of ``repeats`` alternating passes over the test set."""

    calibration_batches: int = 8
    calibration_batch_size: int = 64
    repeats: int = 5  # at least 5: a time is the median of repeats with their spread beside it


def quantize_record(record: RunRecord, settings: Int8Settings = Int8Settings(), force: bool = False,
                    log: Callable[[str], None] = print) -> RunRecord:
    """The int8 record of ``record``'s model: reused when it exists (unless ``force``), else measured now.

    The model is calibrated on training batches of the run's own data (same source, subsets and seed)
    and compared with its fp32 self on the run's test set, on the CPU, through
    :func:`prunelab.precision.int8.quantize_int8` (PT2E where torchao runs, else eager mode for
    ``nn.Sequential`` nets and FX for the rest). A record written before the path was recorded
    (no ``int8_path``) is measured again.
    """
    final = int8_path(record, settings)
    completed = source_completed(record)
    existing = reusable_derived(final, record, force, log)
    if existing is not None and "int8_path" in existing.summary:
        return existing
    config = RunConfig.from_dict(record.config)
    data = record_data(record, "int8")
    model = model_from_record(record).to(memory_format=torch.channels_last)  # the faster fp32 CPU layout
    info = data.info
    train = DeviceLoader(data.train, info, settings.calibration_batch_size, shuffle=True, seed=config.seed,
                         channels_last=True)
    calibration = [x for _, (x, _) in zip(range(settings.calibration_batches), train)]
    if not calibration:
        raise UserError(f"{record.path}: no training batches to calibrate int8 on.")
    log(f"int8: quantizing {record.path.name} ({config.dataset}/{config.model}, {config.pruner} at compression "
        f"{config.compression:g}), calibrated on {len(calibration)} training batches.")
    test = DeviceLoader(data.test, info, config.test_batch_size, channels_last=True)
    example = next(iter(test))[0]  # PT2E compiles per input shape: the test batches' shape, not calibration's
    start = time.perf_counter()
    qmodel = quantize_int8(model, calibration, example)
    quantize_s = time.perf_counter() - start
    path = int8_path_of(qmodel)
    models = {"fp32": model, "int8": qmodel}
    if path.method == "pt2e":  # the deprecated path it replaces, measured alongside where it runs
        try:
            models["legacy"] = quantize_int8(model, calibration, example, method=legacy_method(model))
        except UserError as error:
            log(f"int8: the old {legacy_method(model)} path does not run on this model, so it is not timed: {error}")
    log(f"int8: {path} in {quantize_s:.1f} s; timing {', '.join(models)} over the test set.")
    results = compare_models(models, test, repeats=settings.repeats)
    fp32, int8 = results["fp32"], results["int8"]
    legacy = results.get("legacy")
    zero = pruned_weights_zero(model, qmodel)
    summary = {
        "source_record": str(record.path), "source_hash": record.summary.get("config_hash"),
        "source_completed": completed,
        "stand_in": data.stand_in, "data_source": data.source, "test_examples": len(data.test),
        "threads": torch.get_num_threads(), "engine": torch.backends.quantized.engine,
        "int8_path": str(path), "int8_method": path.method, "int8_fallback": path.fallback,
        "int8_quantize_s": quantize_s, "int8_warmup_s": int8.warmup,
        "fp32_top1": fp32.top1, "int8_top1": int8.top1, "top1_drop": fp32.top1 - int8.top1,
        "fp32_inference_s": fp32.seconds, "int8_inference_s": int8.seconds,
        "fp32_inference_spread_s": fp32.spread, "int8_inference_spread_s": int8.spread,
        "speedup": fp32.seconds / int8.seconds, "timing_repeats": settings.repeats,
        "legacy_path": legacy_method(model) if legacy is not None else None,
        "legacy_top1": legacy.top1 if legacy is not None else None,
        "legacy_inference_s": legacy.seconds if legacy is not None else None,
        "legacy_inference_spread_s": legacy.spread if legacy is not None else None,
        "legacy_speedup": fp32.seconds / legacy.seconds if legacy is not None else None,
        "pruned_weights_zero": all(zero.values()),
        "pruned_weights_zero_by_layer": zero, **model_sizes(model, qmodel),
    }
    write_record(final, {
        "config.json": json_writer({**record.config, "experiment": EXPERIMENT, "int8": dataclasses.asdict(settings)}),
        "summary.json": json_writer(summary),
        "env.json": json_writer({**hardware_info(torch.device("cpu")), "data_source": data.source}),
    })
    return load_record(final)


def int8_path(record: RunRecord, settings: Int8Settings = Int8Settings()) -> Path:
    """Where the int8 record of ``record`` is (or will be) written."""
    return derived_path(record, EXPERIMENT, settings)
