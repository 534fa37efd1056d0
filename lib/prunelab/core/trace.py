"""Profile inference steps and attribute one step's time to layers, from the exported Chrome trace.

Capture: every module's forward is wrapped in a profiler range named ``module::<name>::<Type>``; after
``warmup`` untimed steps :data:`PROFILED_STEPS` steps are profiled (CPU, plus CUDA when the model is on a GPU)
and exported as a Chrome / Perfetto trace.

Analysis reads only that trace file, and attributes the profiled step of median length, so that one step
stalled by another process on the machine does not stand for the model. On a GPU, each kernel is tied to the
host launch that issued it (by correlation id) and so to the innermost module range around the launch and to
the aten op that launched it. On the CPU, the unit is each top-level aten op of the step. A layer's time is
the *union* of its units' intervals: kernels overlapping on several streams count once, and idle gaps count
not at all. The step is reported both as its wall span and as its busy time (the union of every unit).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import warnings
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
from torch import Tensor

from ..models import layers as L
from .evaluation import synchronize
from .timing import MIN_REPEATS, Timing, interleaved

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep the profiler library's own chatter off the console

MODULE_PREFIX = "module::"
DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
KINDS = ("convolution", "batchnorm", "activation and add", "mask multiply", "linear", "memory copies", "other")


# -------------------------------------------------------------------------------------------- capture


@contextmanager
def quiet_native_stderr():
    """Silence what the profiler's C++ library writes straight to file descriptor 2 (start / stop lines)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def labelled_modules(model: nn.Module):
    """Wrap each submodule's forward in a profiler range ``module::<name>::<Type>`` (hooks removed after)."""
    handles, stack = [], []

    def enter(module, _inputs):
        rf = torch.profiler.record_function(module._prunelab_label)
        rf.__enter__()
        stack.append(rf)

    def leave(module, _inputs, _output):
        stack.pop().__exit__(None, None, None)

    for name, module in model.named_modules():
        if not name:
            continue
        module._prunelab_label = f"{MODULE_PREFIX}{name}::{type(module).__name__}"
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


#: eval-mode forwards profiled one after another; the analysis takes the one of median length
PROFILED_STEPS = 3


def capture_inference_trace(model: nn.Module, inputs: Tensor, path: str | Path, warmup: int = 5) -> Path:
    """Profile :data:`PROFILED_STEPS` eval-mode forwards of ``inputs`` after ``warmup`` steps; write a Chrome
    trace to ``path``."""
    path = Path(path)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if inputs.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    was_training = model.training
    model.eval()
    schedule = torch.profiler.schedule(wait=0, warmup=warmup, active=PROFILED_STEPS, repeat=1)
    try:
        with ExitStack() as stack:
            for context in (quiet_native_stderr(), warnings.catch_warnings(), labelled_modules(model),
                            torch.no_grad()):
                stack.enter_context(context)
            warnings.simplefilter("ignore", UserWarning)  # "profiler clears events at the end of each cycle"
            prof = stack.enter_context(torch.profiler.profile(
                activities=activities, schedule=schedule,
                on_trace_ready=lambda p: p.export_chrome_trace(str(path))))
            for _ in range(warmup + PROFILED_STEPS):
                model(inputs)
                if inputs.device.type == "cuda":
                    torch.cuda.synchronize(inputs.device)
                prof.step()
    finally:
        model.train(was_training)
    return path


# ------------------------------------------------------------------------------------------- analysis


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by ``(start, end)`` intervals, overlaps counted once, gaps not at all."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


@dataclass
class Unit:
    """One piece of work in the step: a device kernel / copy (GPU) or a top-level aten op (CPU)."""

    name: str
    op: str
    start: float
    end: float
    module: str
    module_type: str
    kind: str
    row: str


@dataclass
class TraceAnalysis:
    device: str  # "cuda" or "cpu"
    step_span_us: float
    step_busy_us: float
    units: list[Unit] = field(repr=False)
    host_ranges: list[tuple[str, str, float, float]] = field(repr=False)  # (module, type, start, end)
    step_start: float = 0.0

    @property
    def unit_count(self) -> int:
        return len(self.units)

    def layers(self) -> pd.DataFrame:
        """Per module: its time (union of its units), of which convolution time, and unit count."""
        rows = []
        by_module: dict[str, list[Unit]] = {}
        for u in self.units:
            by_module.setdefault(u.module, []).append(u)
        for module, units in by_module.items():
            conv = [(u.start, u.end) for u in units if u.kind == "convolution"]
            rows.append({"module": module, "type": units[0].module_type,
                         "time_us": union_length((u.start, u.end) for u in units),
                         "conv_time_us": union_length(conv), "units": len(units)})
        return pd.DataFrame(rows)

    def conv_layers(self) -> pd.DataFrame:
        """One row per convolution layer, in network order: its convolution time and share of the step."""
        layers = self.layers()
        conv = layers[layers["type"].isin(CONV_TYPES) & (layers["conv_time_us"] > 0)].copy()
        order = {name: i for i, (name, *_rest) in enumerate(self.host_ranges)}
        conv["order"] = conv["module"].map(order)
        conv = conv.sort_values("order").drop(columns=["order", "time_us"]).reset_index(drop=True)
        conv = conv.rename(columns={"conv_time_us": "time_us"})
        conv["share_of_busy"] = conv["time_us"] / self.step_busy_us
        conv["share_of_span"] = conv["time_us"] / self.step_span_us
        conv.index = range(1, len(conv) + 1)
        return conv

    @property
    def conv_total_us(self) -> float:
        return union_length((u.start, u.end) for u in self.units if u.kind == "convolution")

    @property
    def conv_share(self) -> float:
        """Convolution time as a share of the step's busy time."""
        return self.conv_total_us / self.step_busy_us if self.step_busy_us else 0.0

    def breakdown(self) -> pd.DataFrame:
        """Busy time by kind of work (each kind's own union), with shares of the busy time."""
        rows = []
        for kind in KINDS:
            units = [(u.start, u.end) for u in self.units if u.kind == kind]
            if units:
                time = union_length(units)
                rows.append({"kind": kind, "time_us": time, "units": len(units),
                             "share_of_busy": time / self.step_busy_us})
        return pd.DataFrame(rows).sort_values("time_us", ascending=False).reset_index(drop=True)

    def summary(self) -> dict:
        breakdown = self.breakdown().set_index("kind")
        return {"device": self.device, "step_span_ms": self.step_span_us / 1e3,
                "step_busy_ms": self.step_busy_us / 1e3, "units": self.unit_count,
                "conv_layers": len(self.conv_layers()), "conv_ms": self.conv_total_us / 1e3,
                "conv_share": self.conv_share,
                "mask_multiply_share": float(breakdown["share_of_busy"].get("mask multiply", 0.0)),
                "main_sink": breakdown.index[0] if len(breakdown) else None}


CONV_TYPES = ("Conv2d",)
MASKED_TYPES = ("Conv2d", "Linear", "BatchNorm2d", "BatchNorm1d", "Identity2d", "Identity1d")


def classify(op: str, module_type: str, name: str = "", category: str = "") -> str:
    """The kind of work a unit is, from the aten op that ran or launched it and the module around it."""
    op_l, name_l = op.lower(), name.lower()
    if category in ("gpu_memcpy", "gpu_memset") or any(k in op_l for k in ("copy_", "aten::to", "contiguous",
                                                                          "aten::clone", "_to_copy")):
        return "memory copies"
    if "conv" in op_l or (not op and ("conv" in name_l or "implicit_gemm" in name_l)):
        return "convolution"
    if "batch_norm" in op_l or (not op and "bn_" in name_l):
        return "batchnorm"
    if op_l in ("aten::mul", "aten::mul_") and module_type in MASKED_TYPES:
        return "mask multiply"
    if any(k in op_l for k in ("relu", "clamp_min", "threshold", "aten::add", "hardtanh")):
        return "activation and add"
    if any(k in op_l for k in ("linear", "addmm", "aten::mm", "matmul")):
        return "linear"
    return "other"


def _innermost(ranges: list[tuple[str, str, float, float]], t: float) -> tuple[str, str]:
    best, best_len = ("(outside modules)", ""), float("inf")
    for name, kind, start, end in ranges:
        if start <= t <= end and end - start < best_len:
            best, best_len = (name, kind), end - start
    return best


def _innermost_op(ops: list[dict], t: float) -> str:
    best, best_len = "", float("inf")
    for e in ops:
        if e["ts"] <= t <= e["ts"] + e["dur"] and e["dur"] < best_len:
            best, best_len = e["name"], e["dur"]
    return best


def analyze_trace(path: str | Path) -> TraceAnalysis:
    """Attribute the profiled step of median length in a Chrome trace (as written by
    :func:`capture_inference_trace`; of an even count, the shorter of the middle two)."""
    events = json.loads(Path(path).read_text())["traceEvents"]
    complete = [e for e in events if e.get("ph") == "X"]
    steps = [e for e in complete if e.get("cat") == "user_annotation" and e["name"].startswith("ProfilerStep")]
    if not steps:
        raise ValueError(f"{path} has no ProfilerStep range: not a prunelab inference trace")
    step = sorted(steps, key=lambda e: e["dur"])[(len(steps) - 1) // 2]
    s0, s1 = step["ts"], step["ts"] + step["dur"]

    def on_host(e):
        return e.get("pid") == step["pid"] and e.get("tid") == step["tid"] and s0 <= e["ts"] < s1

    host = [e for e in complete if on_host(e)]
    ranges = [(e["name"].split("::")[1], e["name"].split("::")[2], e["ts"], e["ts"] + e["dur"])
              for e in sorted(host, key=lambda e: e["ts"])
              if e.get("cat") == "user_annotation" and e["name"].startswith(MODULE_PREFIX)]
    ops = [e for e in host if e.get("cat") == "cpu_op"]
    launches = {e["args"]["correlation"]: e for e in complete
                if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})
                and on_host(e)}
    device_events = [e for e in complete if e.get("cat") in DEVICE_CATEGORIES
                     and e.get("args", {}).get("correlation") in launches]
    units = []
    if device_events:
        for e in device_events:
            launch = launches[e["args"]["correlation"]]
            module, mtype = _innermost(ranges, launch["ts"])
            op = _innermost_op(ops, launch["ts"])
            stream = e.get("args", {}).get("stream", e.get("tid"))
            units.append(Unit(e["name"], op, e["ts"], e["ts"] + e["dur"], module, mtype,
                              classify(op, mtype, e["name"], e["cat"]), f"GPU stream {stream}"))
        span = max(u.end for u in units) - min(u.start for u in units)
        device = "cuda"
    else:
        for e in _top_level(ops):
            module, mtype = _innermost(ranges, e["ts"])
            units.append(Unit(e["name"], e["name"], e["ts"], e["ts"] + e["dur"], module, mtype,
                              classify(e["name"], mtype), "host ops"))
        span = step["dur"]
        device = "cpu"
    busy = union_length((u.start, u.end) for u in units)
    return TraceAnalysis(device, span, busy, units, ranges, step_start=s0)


def _top_level(ops: list[dict]) -> list[dict]:
    """Ops not nested inside another op (their children's time is already inside theirs)."""
    top, end = [], -float("inf")
    for e in sorted(ops, key=lambda e: (e["ts"], -e["dur"])):
        if e["ts"] >= end:
            top.append(e)
            end = e["ts"] + e["dur"]
    return top


# ------------------------------------------------------------------------------------------- timeline


# ------------------------------------------------------------------------------ the mask overhead


@dataclass
class DesignComparison:
    """The same trained weights traced in the original design (mask in forward) and in ours."""

    ours: TraceAnalysis
    original: TraceAnalysis
    outputs_equal: bool
    max_abs_difference: float
    timing: dict[str, Timing] = field(default_factory=dict)  # "original" and "ours": repeated steps in turn

    def table(self) -> pd.DataFrame:
        """A row per design: the traced step's units, span, busy and convolution time and mask share, and,
        when timed, the median step (ms) of the repeated steps with its spread (slowest minus fastest)."""
        rows = []
        for key, design, a in (("original", "original: mask multiplied in every forward", self.original),
                               ("ours", "prunelab: masks folded into the weights", self.ours)):
            row = {"design": design, "units": a.unit_count, "step span (ms)": a.step_span_us / 1e3,
                   "busy (ms)": a.step_busy_us / 1e3, "convolution (ms)": a.conv_total_us / 1e3,
                   "mask multiply share": a.summary()["mask_multiply_share"]}
            if key in self.timing:
                t = self.timing[key]
                row.update({"step median (ms)": 1e3 * t.median, "step spread (ms)": 1e3 * t.spread,
                            "timed steps": t.repeats})
            rows.append(row)
        return pd.DataFrame(rows)

    def timing_summary(self) -> dict:
        """The repeated steps for a record: ``{design}_step_s``, ``_spread_s``, ``_repeats`` and ``_samples_s``
        per design (:meth:`prunelab.core.timing.Timing.summary`)."""
        return {k: v for key, t in self.timing.items() for k, v in t.summary(f"{key}_step").items()}


def original_design(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that multiplies its masks in every forward, as the original tool did."""
    twin = copy.deepcopy(model)
    L.set_mask_in_forward(twin, True)
    return twin


def time_designs(ours: nn.Module, original: nn.Module, inputs: Tensor, repeats: int = MIN_REPEATS,
                 warmup: int = 5) -> dict[str, Timing]:
    """One inference step of each design on ``inputs``, ``repeats`` times in turn after ``warmup`` each."""
    def step(model: nn.Module):
        def run() -> None:
            with torch.no_grad():
                model(inputs)
            synchronize(inputs.device)
        return run

    ours.eval()
    original.eval()
    return interleaved({"original": step(original), "ours": step(ours)}, repeats, warmup)


def compare_designs(model: nn.Module, inputs: Tensor, folder: str | Path, warmup: int = 5,
                    repeats: int = 0) -> DesignComparison:
    """Trace ``model`` as it is and in the original design; writes ``trace.json`` and
    ``trace_original_design.json`` into ``folder`` and checks that both give the same outputs. With
    ``repeats``, also times that many steps of each design in turn (:func:`time_designs`)."""
    folder = Path(folder)
    original = original_design(model)
    with torch.no_grad():
        model.eval()
        original.eval()
        ours_out, original_out = model(inputs), original(inputs)
    diff = float((ours_out - original_out).abs().max())
    capture_inference_trace(model, inputs, folder / "trace.json", warmup)
    capture_inference_trace(original, inputs, folder / "trace_original_design.json", warmup)
    timing = time_designs(model, original, inputs, repeats, warmup=1) if repeats else {}  # warm from tracing
    return DesignComparison(analyze_trace(folder / "trace.json"),
                            analyze_trace(folder / "trace_original_design.json"),
                            bool(torch.allclose(ours_out, original_out, rtol=1e-4, atol=1e-5)), diff, timing)
