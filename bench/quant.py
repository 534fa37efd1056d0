"""int8 against fp32 inference of a pruned conv net trained on the real digits data, on this CPU.

One run trains ``default.conv`` (3x3 same-padded convolutions, then a linear classifier) on
scikit-learn's 8x8 digits after pruning it (magnitude, compression 0.3: half the weights kept),
quantizes it to int8 with :func:`prunelab.precision.int8.quantize_int8`, then times both over the test set
tiled ``--copies`` times (the same 360 images, so accuracy is that of the test set), taking turns for
``--repeats`` passes and reporting the median pass, at each batch size of ``--batch-sizes``. It prints
images per second, the speedup, top-1 accuracy and its drop, and the model sizes on disk.

Targets: int8 at least 1.5x faster than fp32, at most 1 top-1 point lost.

Why width 64: convolutions on 8x8 images are small, and at width 16 a pass is dominated by per-layer
overhead (quantizing the input, dispatch), which int8 does not shrink; int8 pays off when the
convolution arithmetic dominates. Both a small batch (64) and the whole test set per batch (360) are
measured, because fp32 is faster per image at 64 and int8 at 360: the 360 line alone would flatter
int8. The fp32 model runs in channels-last memory format (the project's faster CPU layout; pass
--no-channels-last to compare).

Threads default to 1: on a 2-core machine shared with other processes, two OpenMP threads wait on
each other at every barrier and timings become noise (training steps 100x slower were measured).

Run: ``.venv/bin/python bench/quant.py [--width 64] [--batch-sizes 64,360] [--repeats 9] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from prunelab.core.pruners import PruneSettings, prune
from prunelab.data.in_memory import DeviceLoader, Split, load_data
from prunelab.models import default
from prunelab.models.layers import keep_pruned_at_zero
from prunelab.precision.int8 import compare_inference, pruned_weights_zero, quantize_int8
from prunelab.precision.sizes import model_sizes

TARGET_SPEEDUP = 1.5
TARGET_MAX_DROP = 1.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=64, help="channels of each convolution")
    parser.add_argument("--depth", type=int, default=3, help="layers: depth - 1 convolutions and a classifier")
    parser.add_argument("--pruner", default="mag")
    parser.add_argument("--compression", type=float, default=0.3, help="kept fraction 10^-compression")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-sizes", default="64,360", help="inference batch sizes, comma-separated")
    parser.add_argument("--copies", type=int, default=8, help="test set copies per timed pass")
    parser.add_argument("--repeats", type=int, default=9, help="timed passes per model (median reported)")
    parser.add_argument("--calibration-batches", type=int, default=8, help="training batches of 64")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_data("digits")
    train = DeviceLoader(data.train, data.info, 64, shuffle=True, seed=args.seed)
    model = default.conv(data.info.input_shape, data.info.num_classes, depth=args.depth, width=args.width)
    result = prune(model, PruneSettings(args.pruner, args.compression), list(train)[:2])
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    keep_pruned_at_zero(optimizer, model)
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for x, y in train:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    train_s = time.perf_counter() - start
    model.eval()

    start = time.perf_counter()
    calibration = list(train)[:args.calibration_batches]
    qmodel = quantize_int8(model, calibration, calibration[0][0])
    quantize_s = time.perf_counter() - start
    zeros_exact = all(pruned_weights_zero(model, qmodel).values())

    tiled = Split(data.test.images.repeat(args.copies, 1, 1, 1), data.test.labels.repeat(args.copies))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    layout = "channels-last" if args.channels_last else "contiguous"
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s), "
          f"engine {torch.backends.quantized.engine}, load average {load}")
    print(f"model: default.conv depth {args.depth} width {args.width}, {args.pruner} pruning at compression "
          f"{args.compression} ({result.kept} of {result.total} weights kept), {args.epochs} epochs in "
          f"{train_s:.1f} s, int8 calibration and conversion in {quantize_s:.1f} s, "
          f"pruned weights exactly zero in int8: {zeros_exact}")
    print(f"timing: {len(tiled)} images per pass ({args.copies} x the 360-image test set), fp32 {layout}, "
          f"median of {args.repeats} alternating passes")
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        test = DeviceLoader(tiled, data.info, batch_size, channels_last=args.channels_last)
        cmp = compare_inference(model, qmodel, test, repeats=args.repeats)
        met = cmp.speedup >= TARGET_SPEEDUP and cmp.top1_drop <= TARGET_MAX_DROP
        print(f"batch {batch_size:4d}: fp32 {cmp.fp32.images_per_s:7.0f} images/s top-1 {cmp.fp32.top1:.2f}% | "
              f"int8 {cmp.int8.images_per_s:7.0f} images/s top-1 {cmp.int8.top1:.2f}% | "
              f"speedup {cmp.speedup:.2f}x, top-1 drop {cmp.top1_drop:+.2f} points "
              f"(targets >= {TARGET_SPEEDUP}x, <= {TARGET_MAX_DROP}): {'met' if met else 'NOT met'}")
    sizes = model_sizes(model, qmodel)
    kb = 1024
    print(f"sizes: fp32 dense {sizes['fp32_dense_bytes'] / kb:.1f} KB, fp32 sparse "
          f"{sizes['fp32_sparse_bytes'] / kb:.1f} KB ({sizes['sparse_bitmask_layers']} bitmask + "
          f"{sizes['sparse_csr_layers']} CSR layers), int8 {sizes['int8_bytes'] / kb:.1f} KB "
          f"(dense int8, pruned entries stored as 0)")

if __name__ == "__main__":
    main()
