"""int8 post-training quantization of a recorded run, written back to the result store as its own record.

A notebook's int8 table is then read from the store like every other number: the record under
``<result_dir>/int8/<run>-<settings hash>`` holds the fp32 and int8 accuracy and test-set inference
time (measured side by side in one process), the three model sizes on disk, and whether every pruned
weight is still exactly zero after quantization.

The int8 model comes from :func:`prunelab.precision.int8.quantize_int8` with ``method="auto"``: torchao's
PT2E path where it runs, else the deprecated ``torch.ao`` path, named with its reason in ``int8_path``.
When PT2E ran, the old path's model (eager mode for ``nn.Sequential`` nets, FX for the rest, as chosen
before PT2E) is measured too, in the same interleaved passes, under ``legacy_*``, and so is the fp32 model
compiled as PT2E's int8 graph is (:func:`prunelab.precision.int8.compiled_fp32`), under ``fp32_compiled_*``:
``speedup`` is int8 against fp32 run eagerly (``fp32_method``), so it holds what compiling fuses as well as the
int8 kernels, and ``speedup_over_compiled`` has compiling on both sides. Each time is the median of the
passes, with its spread (slowest minus fastest pass) beside it in ``*_spread_s``; fp32, int8 and compiled fp32
keep every pass in ``*_samples_s`` too, for the rank test that compares them. Where the old path or the compiled
fp32 model did not run, their numbers are NaN (no passes) and the old path's name "". Why no compiled fp32 was
timed can be read from the record: off the PT2E path (``int8_method``) nothing is compiled to match; on it, the fp32
model failed to compile, with the first line of the error in ``fp32_compiled_error`` ("" where none arose).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from ..core.timing import Timing
from ..data.in_memory import DeviceLoader
from ..errors import UserError
from ..precision.int8 import (
    InferenceResult,
    Int8Path,
    compare_models,
    compiled_fp32,
    int8_path_of,
    legacy_method,
    pruned_weights_zero,
    quantize_int8,
)
from ..precision.pt2e import first_line
from ..precision.sizes import model_sizes
from .prepare import DerivedKind, Measured, SourceRun, derived_record
from .store import RunRecord

EXPERIMENT = "int8"
#: how the fp32 baseline of ``speedup`` runs: eagerly, never compiled (``fp32_method`` in the record), so a
#: speed-up over PT2E's compiled int8 holds compilation's fusing too; ``speedup_over_compiled`` leaves it out
FP32_METHOD = "eager"
#: the summary prefix of the fp32 model compiled as PT2E's graph is (:meth:`~prunelab.core.timing.Timing.summary`)
FP32_COMPILED = "fp32_compiled_inference"


@dataclass(frozen=True)
class Int8Settings:
    """Calibration on ``calibration_batches`` shuffled training batches of ``calibration_batch_size``;
    timing as the median of ``repeats`` alternating passes over the test set."""

    calibration_batches: int = 8
    calibration_batch_size: int = 64
    repeats: int = 5  # at least 5: a time is the median of repeats with their spread beside it


def quantize_record(record: RunRecord, settings: Int8Settings = Int8Settings(), force: bool = False,
                    log: Callable[[str], None] = print) -> RunRecord:
    """The int8 record of ``record``'s model: reused when made from this very source (unless ``force``),
    else measured now on the CPU (:func:`measure_int8`). A record written before the path was recorded
    (no ``int8_path``), or before the compiled fp32 model was timed beside it, is measured again."""
    return derived_record(record, INT8, settings, force, log)


def measure_int8(source: SourceRun, settings: Int8Settings, log: Callable[[str], None]) -> Measured:
    """The run's model calibrated on training batches of its own data and compared with its fp32 self on
    its test set, through :func:`prunelab.precision.int8.quantize_int8` (PT2E where torchao runs, else
    eager mode for ``nn.Sequential`` nets and FX for the rest), and where PT2E ran, with the old path's int8
    and the fp32 model compiled as PT2E's graph is too (:func:`_beside_pt2e`). All run channels-last, the faster
    fp32 layout on a CPU, whatever the network."""
    config, data, name = source.config, source.data, source.record.path.name
    model = source.model.to(memory_format=torch.channels_last)
    train = DeviceLoader(data.train, data.info, settings.calibration_batch_size, shuffle=True, seed=config.seed,
                         channels_last=True)
    calibration = [x for _, (x, _) in zip(range(settings.calibration_batches), train)]
    if not calibration:
        raise UserError(f"{source.record.path}: no training batches to calibrate int8 on")
    log(f"int8: quantizing {name} ({config.dataset}/{config.model}, {config.pruner} at compression "
        f"{config.compression:g}), calibrated on {len(calibration)} training batches.")
    test = DeviceLoader(data.test, data.info, config.test_batch_size, channels_last=True)
    example = next(iter(test))[0]  # PT2E compiles per input shape: the test batches' shape, not calibration's
    start = time.perf_counter()
    qmodel = quantize_int8(model, calibration, example)
    quantize_s = time.perf_counter() - start
    path = int8_path_of(qmodel)
    beside, compile_error = _beside_pt2e(model, path, calibration, example, log)
    models = {"fp32": model, "int8": qmodel, **beside}
    log(f"int8: {path} in {quantize_s:.1f} s; timing {', '.join(models)} over the test set{_not_compiled(path)}.")
    results = compare_models(models, test, repeats=settings.repeats)
    fp32, int8 = results["fp32"], results["int8"]
    legacy = results.get("legacy")
    zero = pruned_weights_zero(model, qmodel)
    return Measured({
        "engine": torch.backends.quantized.engine,
        "int8_path": str(path), "int8_method": path.method, "int8_fallback": path.fallback or "",
        "fp32_method": FP32_METHOD,
        "int8_quantize_s": quantize_s, "int8_warmup_s": int8.warmup,
        "fp32_top1": fp32.top1, "int8_top1": int8.top1, "top1_drop": fp32.top1 - int8.top1,
        **fp32.timing.summary("fp32_inference"), **int8.timing.summary("int8_inference"),
        "speedup": fp32.seconds / int8.seconds, "timing_repeats": settings.repeats,
        **_compiled_fields(results.get("fp32_compiled"), int8), "fp32_compiled_error": compile_error,
        "legacy_path": legacy_method(model) if legacy is not None else "",
        "legacy_top1": legacy.top1 if legacy is not None else math.nan,
        "legacy_inference_s": legacy.seconds if legacy is not None else math.nan,
        "legacy_inference_spread_s": legacy.spread if legacy is not None else math.nan,
        "legacy_speedup": fp32.seconds / legacy.seconds if legacy is not None else math.nan,
        "pruned_weights_zero": all(zero.values()),
        "pruned_weights_zero_by_layer": zero, **model_sizes(model, qmodel),
    })


def _beside_pt2e(model: nn.Module, path: Int8Path, calibration: list[Tensor], example: Tensor,
                 log: Callable[[str], None]) -> tuple[dict[str, nn.Module], str]:
    """The models timed beside fp32 and int8 where int8 took the PT2E path: the deprecated path it replaces
    (``legacy``) and the fp32 model compiled as PT2E's graph is (``fp32_compiled``); each that does not run here is
    left out, and the log says why. Off the PT2E path neither is timed (:func:`_not_compiled` says why). With them,
    the first line of the error that kept the fp32 model from compiling, for the record ("" where none arose)."""
    if path.method != "pt2e":
        return {}, ""
    beside: dict[str, nn.Module] = {}
    try:
        beside["legacy"] = quantize_int8(model, calibration, example, method=legacy_method(model))
    except UserError as error:
        log(f"int8: the old {legacy_method(model)} path does not run on this model, so it is not timed: {error}")
    compiled = compiled_fp32(model)
    try:
        compiled(example.cpu())  # compiles for the test batches' shape, as quantize_int8 did for int8
    except Exception as error:  # noqa: BLE001 - a compilation failure costs this one side, not the int8 record
        log(f"int8: the fp32 model does not compile here, so it is not timed compiled: {first_line(error)}")
        return beside, first_line(error)
    beside["fp32_compiled"] = compiled
    return beside, ""


def _not_compiled(path: Int8Path) -> str:
    """For the log line: why no compiled fp32 model is timed beside an int8 model that did not take the PT2E path
    ("" where it did)."""
    if path.method == "pt2e":
        return ""
    return f" (no compiled fp32: int8 took the {path.method} path, which compiles nothing, so there is none to match)"


def _compiled_fields(compiled: InferenceResult | None, int8: InferenceResult) -> dict:
    """The compiled fp32 side's summary fields: its timing under :data:`FP32_COMPILED`, its top-1 and int8's
    speed-up over it (ratio of the medians); NaN, with no passes, where it was not timed."""
    if compiled is None:
        return {**Timing.of(()).summary(FP32_COMPILED), "fp32_compiled_top1": math.nan,
                "speedup_over_compiled": math.nan}
    return {**compiled.timing.summary(FP32_COMPILED), "fp32_compiled_top1": compiled.top1,
            "speedup_over_compiled": compiled.seconds / int8.seconds}


INT8 = DerivedKind(EXPERIMENT, measure_int8, on_cpu=True,
                   require=("int8_path", "int8_inference_samples_s", f"{FP32_COMPILED}_samples_s"))
