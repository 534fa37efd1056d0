"""Dense (masks folded) against the sparse inference model, timed side by side in one process.

For each model and compression: a fresh model is pruned on one random batch (``--pruner``, default
``rand``: every layer keeps about the same fraction, the neutral pattern; no training is needed for a
timing), the dense reference is :func:`prunelab.core.inference.strip_masks` and the sparse model is
:func:`prunelab.core.sparse.sparse_inference_model` calibrated on one batch of the timed size. Both
outputs are compared first. Then the two take turns (ABBA: dense first on even repeats, sparse first on
odd ones, so drift and bursts of load from other processes hit both alike), one pass over ``--batches``
random batches each, ``--repeats`` times after ``--warmup`` passes; the line reports the median ms per
batch with the interquartile range, the speedup dense / sparse with the IQR of the per-repeat ratios, and
the ratio of the medians of process CPU time (on a CPU shared with other processes wall time also counts
the slices the scheduler gives them; CPU time does not, so it is the steadier reading of the same passes;
on a GPU it only measures the launching thread). The line after it lists the layers that switched kernel
or lost dead units, and the whole-model check of the calibration batch.

Models: ``fc`` (MNIST, the default class's 6-layer MLP of width 100, input 1x28x28), ``conv`` (MNIST, the
default class's conv net) and ``resnet20`` (CIFAR, the lottery class, input 3x32x32).

Targets on a 2-core CPU: fc at compression 2 at least 2x faster than dense, and never slower than dense at
any compression (within the printed spread).

Threads default to 1: on a 2-core machine shared with other processes, two OpenMP threads wait on each
other at every barrier and per-layer timings turn into noise (the kernel choice then is noise too).

Run: ``.venv/bin/python bench/sparse.py [--models fc,resnet20] [--compressions 0.5,1,2,3] [--repeats 9]
[--batch-size 256] [--device cpu] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from prunelab.core.inference import strip_masks
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.sparse import SparseModel, sparse_inference_model
from prunelab.core.train import resolve_device, synchronize
from prunelab.models.registry import build_model

#: name -> (model, model class, input shape, batches per timed pass)
MODELS = {
    "fc": ("fc", "default", (1, 28, 28), 32),
    "conv": ("conv", "default", (1, 28, 28), 2),
    "resnet20": ("resnet20", "lottery", (3, 32, 32), 2),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="fc,resnet20", help=f"comma-separated, of: {', '.join(MODELS)}")
    parser.add_argument("--compressions", default="0.5,1,2,3")
    parser.add_argument("--pruner", default="rand")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    parser.add_argument("--repeats", type=int, default=9, help="timed passes of each model (at least 5)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=None, help="batches per timed pass (default: per model)")
    parser.add_argument("--calibration-repeats", type=int, default=7, help="rounds timing each layer's kernels")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def pruned_model(name: str, compression: float, pruner: str, device: torch.device) -> torch.nn.Module:
    arch, model_class, shape, _ = MODELS[name]
    model = build_model(arch, model_class, shape, 10).to(device)
    batch = [(torch.randn(128, *shape, device=device), torch.randint(0, 10, (128,), device=device))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # layer collapse at compression 3 is part of what is measured
        prune(model, PruneSettings(pruner, compression), batch)
    return model.eval()


def interleaved(models: dict[str, torch.nn.Module], batches: list[torch.Tensor], repeats: int, warmup: int,
                device: torch.device) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process CPU seconds per pass of each model, taking turns (ABBA) after ``warmup`` passes."""
    names = list(models)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    with torch.no_grad():
        for r in range(warmup + repeats):
            for name in (names if r % 2 == 0 else names[::-1]):
                synchronize(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                for x in batches:
                    models[name](x)
                synchronize(device)
                if r >= warmup:
                    wall[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def switched_line(sparse: SparseModel) -> str:
    rows = sparse.switched
    whole = sparse.whole_model
    note = ""
    if whole:
        reverted = bool((sparse.choices["kernel"] == "dense").all())
        note = (f" | whole model on the calibration batch: dense layers {whole['dense'] * 1e3:.3f} ms, chosen "
                f"kernels {whole['sparse'] * 1e3:.3f} ms{' -> kernels reverted to dense' if reverted else ''}")
    if rows.empty:
        return "    switched: none (every layer stays dense)" + note
    parts = []
    for row in rows.itertuples():
        kernel = f"{row.kernel} {row.speedup:.1f}x" if row.kernel != "dense" else "dense"
        dead = f", -{row.dead_units} units" if row.dead_units else ""
        parts.append(f"{row.layer} [{row.shape}, d={row.density:.3f}] {kernel}{dead}")
    return "    switched: " + "; ".join(parts) + note


def bench_one(name: str, compression: float, args: argparse.Namespace, device: torch.device) -> None:
    _, _, shape, default_batches = MODELS[name]
    model = pruned_model(name, compression, args.pruner, device)
    batches = [torch.randn(args.batch_size, *shape, device=device) for _ in range(args.batches or default_batches)]
    dense = strip_masks(model).eval()
    start = time.perf_counter()
    sparse = sparse_inference_model(model, batches[0], repeats=args.calibration_repeats)
    calibration = time.perf_counter() - start
    with torch.no_grad():
        diff = float((dense(batches[0]) - sparse(batches[0])).abs().max())
    times, cpu = interleaved({"dense": dense, "sparse": sparse}, batches, args.repeats, args.warmup, device)
    per_batch = {k: [t / len(batches) * 1e3 for t in v] for k, v in times.items()}
    cpu_ratio = statistics.median(cpu["dense"]) / statistics.median(cpu["sparse"])
    ratios = [d / s for d, s in zip(times["dense"], times["sparse"], strict=True)]
    (d1, dm, d3), (s1, sm, s3), (r1, _, r3) = (quartiles(per_batch["dense"]), quartiles(per_batch["sparse"]),
                                               quartiles(ratios))
    print(f"{name:8s} c={compression:<4g} dense {dm:8.3f} ms [{d1:.3f}-{d3:.3f}]  sparse {sm:8.3f} ms "
          f"[{s1:.3f}-{s3:.3f}]  speedup {dm / sm:5.2f}x (IQR of ratios {r1:.2f}-{r3:.2f})  "
          f"CPU-time speedup {cpu_ratio:.2f}x  max |diff| {diff:.1e}  calibration {calibration:.1f} s")
    print(switched_line(sparse))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else resolve_device()
    torch.manual_seed(0)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {label}; torch {torch.__version__}; pruner {args.pruner}; batch {args.batch_size}; "
          f"median [IQR] ms per batch of {args.repeats} interleaved passes after {args.warmup} warm-up")
    for name in args.models.split(","):
        for compression in (float(c) for c in args.compressions.split(",")):
            bench_one(name, compression, args, device)


if __name__ == "__main__":
    main()
