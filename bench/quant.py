"""int8 against fp32 inference of a pruned conv net trained on the real digits data, on this CPU.

One run trains ``default.conv`` (3x3 same-padded convolutions, then a linear classifier) on
scikit-learn's 8x8 digits after pruning it (magnitude, compression 0.3: half the weights kept) and
quantizes it to int8 three ways with :func:`prunelab.precision.int8.quantize_int8`: torchao's PT2E path
(the maintained one, compiled by torch.compile), and the deprecated torch.ao eager and FX paths. It also
trains the same net unpruned (dense) and quantizes it with PT2E, to see whether sparsity buys int8 any
speed. All models are timed in one process over the test set tiled ``--copies`` times (the same 360
images, so accuracy is that of the test set) by :func:`prunelab.precision.timing.compare_models`, as the
int8 records are: ``--repeats`` passes taking turns (:func:`prunelab.core.timing.interleaved`), each model's
median pass ± half the range of its passes, at each batch size of ``--batch-sizes``. It prints images per
second, the speedup over fp32, top-1 accuracy and its drop, the compile times of the PT2E path, and the
model sizes on disk (int8 dense, and int8 with a bitmask).

Targets, for the maintained path (PT2E, or the fallback auto picks where PT2E cannot run): int8 at least
1.5x faster than fp32, at most 1 top-1 point lost. Figures per machine are kept in ``bench/RESULTS.md``.

Why width 64: convolutions on 8x8 images are small, and at width 16 a pass is dominated by per-layer
overhead (quantizing the input, dispatch), which int8 does not shrink; int8 pays off when the
convolution arithmetic dominates, and only on CPUs with VNNI (AVX-512 VNNI, AVX-VNNI) or AMX: without
them oneDNN's int8 convolution is no faster than its fp32 one. Both a small batch (64) and the whole
test set per batch (360) are measured, because fp32 is faster per image at 64 and int8 at 360: the 360
line alone would flatter int8. The fp32 model runs in channels-last memory format (the project's faster
CPU layout; pass --no-channels-last to compare).

Threads default to 1: on a 2-core machine shared with other processes, two OpenMP threads wait on
each other at every barrier and timings become noise.

Run: ``.venv/bin/python bench/quant.py [--width 64] [--batch-sizes 64,360] [--repeats 9] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from benchkit import at_least, number, numbers, parser, ratio_text, run

from prunelab.core.hardware import machine_line
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.registry import pruner_names
from prunelab.core.timing import timings_differ
from prunelab.data.in_memory import DeviceLoader, Split, load_data
from prunelab.models import default
from prunelab.models.layers import keep_pruned_at_zero
from prunelab.precision.int8 import compare_models, int8_path_of, pruned_weights_zero, quantize_int8
from prunelab.precision.sizes import model_sizes
from prunelab.workbook.numbers import time_cell

TARGET_SPEEDUP = 1.5
TARGET_MAX_DROP = 1.0


def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--width", type=at_least(1), default=64, help="channels of each convolution")
    p.add_argument("--depth", type=at_least(2), default=3, help="layers: depth - 1 convolutions and a classifier")
    p.add_argument("--pruner", choices=pruner_names(), default="mag")
    p.add_argument("--compression", type=number(float, 0), default=0.3, help="kept fraction 10^-compression")
    p.add_argument("--epochs", type=at_least(1), default=4)
    p.add_argument("--lr", type=number(float, 0), default=3e-3)
    p.add_argument("--batch-sizes", type=numbers(int, 1), default=[64, 360],
                   help="inference batch sizes, comma-separated (default: 64,360)")
    p.add_argument("--copies", type=at_least(1), default=8, help="test set copies per timed pass")
    p.add_argument("--repeats", type=at_least(2), default=9, help="timed passes per model (median reported)")
    p.add_argument("--calibration-batches", type=at_least(1), default=8, help="training batches of 64")
    p.add_argument("--threads", type=at_least(1), default=1)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--no-dense", dest="dense", action="store_false",
                   help="skip the unpruned net (int8 without sparsity)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def train_model(args: argparse.Namespace, data, train: DeviceLoader, compression: float | None) -> tuple:
    """``default.conv`` pruned at ``compression`` (None: dense) and trained; (model, kept, total, seconds)."""
    torch.manual_seed(args.seed)
    model = default.conv(data.info.input_shape, data.info.num_classes, depth=args.depth, width=args.width)
    kept = total = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    if compression is not None:
        result = prune(model, PruneSettings(args.pruner, compression), list(train)[:2])
        kept, total = result.kept, result.total
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    keep_pruned_at_zero(optimizer, model)
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for x, y in train:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval(), kept, total, time.perf_counter() - start


def timed_quantize(model: nn.Module, calibration: list, method: str) -> tuple[nn.Module, float]:
    start = time.perf_counter()
    qmodel = quantize_int8(model, calibration, calibration[0][0], method=method)
    return qmodel, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {machine_line('cpu')}, load average {load}", flush=True)
    data = load_data("digits")
    train = DeviceLoader(data.train, data.info, 64, shuffle=True, seed=args.seed)
    model, kept, total, train_s = train_model(args, data, train, args.compression)
    calibration = list(train)[:args.calibration_batches]

    # the maintained path (auto: PT2E where it runs), then the deprecated ones it replaces
    qmodel, quantize_s = timed_quantize(model, calibration, "auto")
    path = int8_path_of(qmodel)
    int8 = {f"int8 {path.method}": qmodel}
    for method in ("eager", "fx"):
        if method != path.method:
            int8[f"int8 {method}"] = timed_quantize(model, calibration, method)[0]
    zeros_exact = {name: all(pruned_weights_zero(model, q).values()) for name, q in int8.items()}
    fp32 = {"fp32": model}
    reference = {name: "fp32" for name in int8}  # the fp32 model each int8 one is compared with
    dense_note = ""
    if args.dense and path.method == "pt2e":
        dense, _, _, dense_train_s = train_model(args, data, train, None)
        fp32["fp32 dense"] = dense
        int8["int8 pt2e dense"], dense_quantize_s = timed_quantize(dense, calibration, "pt2e")
        reference["int8 pt2e dense"] = "fp32 dense"
        dense_note = f"; the unpruned net: {dense_train_s:.1f} s training, PT2E in {dense_quantize_s:.1f} s"

    tiled = Split(data.test.images.repeat(args.copies, 1, 1, 1), data.test.labels.repeat(args.copies))
    if args.channels_last:
        fp32 = {name: m.to(memory_format=torch.channels_last) for name, m in fp32.items()}
    layout = "channels-last" if args.channels_last else "contiguous"
    print(f"model: default.conv depth {args.depth} width {args.width}, {args.pruner} pruning at compression "
          f"{args.compression} ({kept} of {total} weights kept), {args.epochs} epochs in {train_s:.1f} s")
    print(f"int8 path (auto): {path}; quantized in {quantize_s:.1f} s (PT2E: export, calibration, conversion "
          f"and the compilation for one input shape){dense_note}")
    print("pruned weights exactly zero in int8: " + ", ".join(f"{n.removeprefix('int8 ')} {ok}"
                                                               for n, ok in zeros_exact.items()))
    print(f"timing: {len(tiled)} images per pass ({args.copies} x the 360-image test set), fp32 {layout}, "
          f"median pass ± half the range of {args.repeats} passes taking turns")
    maintained = f"int8 {path.method}"
    for batch_size in args.batch_sizes:
        test = DeviceLoader(tiled, data.info, batch_size, channels_last=args.channels_last)
        results = compare_models({**fp32, **int8}, test, repeats=args.repeats)
        for name, r in results.items():
            ref = results[reference.get(name, name)]
            compile_note = f", first calls {r.warmup:.1f} s" if r.warmup >= 0.5 else ""
            pass_cell = time_cell(r.seconds * 1e3, r.spread * 1e3, "ms")
            print(f"batch {batch_size:4d} {name:16s} {r.images_per_s:7.0f} images/s (pass {pass_cell}) top-1 "
                  f"{r.top1:.2f}% | {ratio_text(ref.timing, r.timing)} {reference.get(name, name)}, top-1 drop "
                  f"{ref.top1 - r.top1:+.2f}{compile_note}")
        base, ours = results["fp32"], results[maintained]
        speedup, drop = base.seconds / ours.seconds, base.top1 - ours.top1
        beyond = timings_differ(base.timing, ours.timing)
        met = speedup >= TARGET_SPEEDUP and beyond and drop <= TARGET_MAX_DROP
        print(f"batch {batch_size:4d} target, {maintained}: {ratio_text(base.timing, ours.timing)} fp32, top-1 "
              f"drop {drop:+.2f} points (targets >= {TARGET_SPEEDUP}x beyond the noise, <= {TARGET_MAX_DROP}): "
              f"{'met' if met else 'NOT met'}")
        if "int8 pt2e dense" in results:
            print(f"batch {batch_size:4d} sparsity: pruned PT2E int8 is "
                  f"{results['int8 pt2e dense'].seconds / results['int8 pt2e'].seconds:.2f}x the unpruned net's "
                  f"PT2E int8 speed (dense int8 kernels multiply the zeros too)")
    sizes = model_sizes(fp32["fp32"], qmodel)
    kb = 1024
    print(f"sizes: fp32 dense {sizes['fp32_dense_bytes'] / kb:.1f} KB, fp32 sparse "
          f"{sizes['fp32_sparse_bytes'] / kb:.1f} KB ({sizes['sparse_bitmask_layers']} bitmask + "
          f"{sizes['sparse_csr_layers']} CSR layers), int8 ({path.method}) {sizes['int8_bytes'] / kb:.1f} KB "
          f"(dense int8, pruned entries stored as 0; raw data {sizes['int8_raw_bytes'] / kb:.1f} KB), int8 with a "
          f"bitmask {sizes['int8_sparse_raw_bytes'] / kb:.1f} KB raw (computed: 1 bit per weight, 1 byte per kept one)")


if __name__ == "__main__":
    run(main)
