"""int8 post-training quantization of a recorded run, written back to the result store as its own record.

A notebook's int8 table is then read from the store like every other number: the record under
``<result_dir>/int8/<run>-<settings hash>`` holds the fp32 and int8 accuracy and test-set inference
time (measured side by side in one process), the three model sizes on disk, and whether every pruned
weight is still exactly zero after quantization.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..core.hardware import hardware_info
from ..data.catalog import DATASETS, dataset_info
from ..data.in_memory import DeviceLoader, load_data
from ..errors import UserError
from ..models.layers import apply_masks
from ..models.registry import build_model
from ..precision.int8 import compare_inference, pruned_weights_zero, quantize_int8
from ..precision.sizes import model_sizes
from .config import RunConfig
from .store import MARKER, RunRecord, is_complete, json_writer, load_record, record_path, write_record

EXPERIMENT = "int8"


@dataclass(frozen=True)
class Int8Settings:
    """Calibration on ``calibration_batches`` shuffled training batches of ``calibration_batch_size``;
    timing as the median of ``repeats`` alternating passes over the test set."""

    calibration_batches: int = 8
    calibration_batch_size: int = 64
    repeats: int = 3

    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:6]


def model_from_record(record: RunRecord, device: torch.device | str = "cpu") -> nn.Module:
    """The trained, pruned model of a record, rebuilt from its configuration and weights, in eval mode."""
    config = RunConfig.from_dict(record.config)
    info = dataset_info(config.dataset)
    model = build_model(config.model, config.model_class, info.input_shape, info.num_classes,
                        config.dense_classifier)
    model.load_state_dict(record.state_dict())
    apply_masks(model)
    return model.to(device).eval()


def quantize_record(record: RunRecord, settings: Int8Settings = Int8Settings(), force: bool = False,
                    log: Callable[[str], None] = print) -> RunRecord:
    """The int8 record of ``record``'s model: reused when it exists (unless ``force``), else measured now.

    The model is calibrated on training batches of the run's own data (same source, subsets and seed)
    and compared with its fp32 self on the run's test set, on the CPU, through
    :func:`prunelab.precision.int8.quantize_int8` (eager mode for ``nn.Sequential`` nets, FX for the rest).
    """
    final = int8_path(record, settings)
    completed = (record.path / MARKER).stat().st_mtime_ns  # a source recomputed with --force is a new source
    if is_complete(final) and not force:
        existing = load_record(final)
        if existing.summary.get("source_completed") == completed:
            return existing
    config = RunConfig.from_dict(record.config)
    if config.dataset not in DATASETS:
        raise UserError(f"int8 records are made for the in-memory data sets ({', '.join(DATASETS)}), "
                        f"not {config.dataset}.")
    data = load_data(config.dataset, config.data_source, train_subset=config.train_subset,
                     test_subset=config.test_subset, seed=config.seed)
    model = model_from_record(record).to(memory_format=torch.channels_last)  # the faster fp32 CPU layout
    info = data.info
    train = DeviceLoader(data.train, info, settings.calibration_batch_size, shuffle=True, seed=config.seed,
                         channels_last=True)
    calibration = [x for _, (x, _) in zip(range(settings.calibration_batches), train)]
    if not calibration:
        raise UserError(f"{record.path}: no training batches to calibrate int8 on.")
    log(f"int8: quantizing {record.path.name} ({config.dataset}/{config.model}, {config.pruner} at compression "
        f"{config.compression:g}), calibrated on {len(calibration)} training batches.")
    qmodel = quantize_int8(model, calibration, calibration[0])
    test = DeviceLoader(data.test, info, config.test_batch_size, channels_last=True)
    comparison = compare_inference(model, qmodel, test, repeats=settings.repeats)
    zero = pruned_weights_zero(model, qmodel)
    summary = {
        "source_record": str(record.path), "source_hash": record.summary.get("config_hash"),
        "source_completed": completed,
        "stand_in": data.stand_in, "data_source": data.source, "test_examples": len(data.test),
        "threads": torch.get_num_threads(), "engine": torch.backends.quantized.engine,
        "fp32_top1": comparison.fp32.top1, "int8_top1": comparison.int8.top1, "top1_drop": comparison.top1_drop,
        "fp32_inference_s": comparison.fp32.seconds, "int8_inference_s": comparison.int8.seconds,
        "speedup": comparison.speedup, "pruned_weights_zero": all(zero.values()),
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
    return record_path(record.path.parents[1], EXPERIMENT, f"{record.path.name}-{settings.key()}")
