"""Dense (masks folded) against the sparse inference model, timed side by side in one process.

For each model and compression: a fresh model is pruned on one random batch (``--pruner``, default
``rand``: every layer keeps about the same fraction, the neutral pattern; no training is needed for a
timing), the dense reference is :func:`prunelab.core.inference.strip_masks` and the sparse model is
:func:`prunelab.core.sparse.sparse_inference_model` calibrated on one batch of the timed size. Both
outputs are compared first. Then the two take turns through :func:`prunelab.core.timing.interleaved`, one
pass over ``--batches`` random batches each, ``--repeats`` times after ``--warmup`` passes, as Table C's
records are timed; the line reports each median ms per batch ± half the range of the passes, and calls the
speedup (dense / sparse medians) real only where a rank test of the passes says so, the workbook's rule. The line after
it lists the layers that switched kernel or lost dead units, and the whole-model check of the calibration
batch.

``--clock cpu`` times the same passes in process CPU time instead of wall time: on a CPU shared with other
processes it leaves out the slices the scheduler gives them (with one thread, the steadier reading; on a
GPU it only counts the launching thread).

Models: ``fc`` (MNIST, the default class's 6-layer MLP of width 100, input 1x28x28), ``conv`` (MNIST, the
default class's conv net) and ``resnet20`` (CIFAR, the lottery class, input 3x32x32).

Targets on a 2-core CPU: fc at compression 2 at least 2x faster than dense, and never slower than dense at
any compression (within the printed spread). Figures are kept in ``bench/RESULTS.md``.

Threads default to 1: on a 2-core machine shared with other processes, two OpenMP threads wait on each
other at every barrier and per-layer timings turn into noise (the kernel choice then is noise too).

Run: ``.venv/bin/python bench/sparse.py [--models fc,resnet20] [--compressions 0.5,1,2,3] [--repeats 9]
[--batch-size 256] [--device cpu] [--threads 1] [--clock wall|cpu]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from benchkit import at_least, names, numbers, parser, ratio_text, run, torch_device

from prunelab.core.evaluation import synchronize
from prunelab.core.hardware import machine_line
from prunelab.core.inference import strip_masks
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.registry import pruner_names
from prunelab.core.sparse import SparseModel, TimingSettings, sparse_inference_model
from prunelab.core.timing import MIN_REPEATS, interleaved
from prunelab.core.train import resolve_device
from prunelab.models.registry import build_model
from prunelab.workbook.numbers import time_cell

#: name -> (model, model class, input shape, batches per timed pass)
MODELS = {
    "fc": ("fc", "default", (1, 28, 28), 32),
    "conv": ("conv", "default", (1, 28, 28), 2),
    "resnet20": ("resnet20", "lottery", (3, 32, 32), 2),
}
#: --clock: what a timed pass is measured in
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def parse_args() -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--models", type=names(MODELS), default=["fc", "resnet20"],
                   help=f"comma-separated, of: {', '.join(MODELS)} (default: fc,resnet20)")
    p.add_argument("--compressions", type=numbers(float, 0), default=[0.5, 1, 2, 3],
                   help="comma-separated (default: 0.5,1,2,3)")
    p.add_argument("--pruner", choices=pruner_names(), default="rand")
    p.add_argument("--device", type=torch_device, default=None, help="cpu or cuda (default: the best available)")
    p.add_argument("--repeats", type=at_least(MIN_REPEATS), default=9,
                   help=f"timed passes of each model (at least {MIN_REPEATS})")
    p.add_argument("--warmup", type=at_least(0), default=2)
    p.add_argument("--batch-size", type=at_least(1), default=256)
    p.add_argument("--batches", type=at_least(1), default=None, help="batches per timed pass (default: per model)")
    p.add_argument("--calibration-repeats", type=at_least(1), default=7, help="rounds timing each layer's kernels")
    p.add_argument("--threads", type=at_least(1), default=1)
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="wall time (as records are timed) or process CPU time")
    return p.parse_args()


def pruned_model(name: str, compression: float, pruner: str, device: torch.device) -> torch.nn.Module:
    arch, model_class, shape, _ = MODELS[name]
    model = build_model(arch, model_class, shape, 10).to(device)
    batch = [(torch.randn(128, *shape, device=device), torch.randint(0, 10, (128,), device=device))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # layer collapse at compression 3 is part of what is measured
        prune(model, PruneSettings(pruner, compression), batch)
    return model.eval()


def one_pass(model: torch.nn.Module, batches: list[torch.Tensor], device: torch.device):
    """A timed pass: ``model`` over every batch, ending when the device has finished."""
    def run() -> None:
        for x in batches:
            model(x)
        synchronize(device)
    return run


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
    sparse = sparse_inference_model(model, batches[0], TimingSettings(repeats=args.calibration_repeats))
    calibration = time.perf_counter() - start
    with torch.no_grad():
        diff = float((dense(batches[0]) - sparse(batches[0])).abs().max())
        timings = interleaved({"dense": one_pass(dense, batches, device), "sparse": one_pass(sparse, batches, device)},
                              args.repeats, args.warmup, CLOCKS[args.clock])
    per_batch = 1e3 / len(batches)  # seconds per pass -> ms per batch
    d, sp = timings["dense"], timings["sparse"]
    print(f"{name:8s} c={compression:<4g} dense {time_cell(d.median * per_batch, d.spread * per_batch, 'ms')}  "
          f"sparse {time_cell(sp.median * per_batch, sp.spread * per_batch, 'ms')}  speedup "
          f"{ratio_text(d, sp)}  max |diff| {diff:.1e}  calibration {calibration:.1f} s")
    print(switched_line(sparse))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = args.device or resolve_device()
    torch.manual_seed(0)
    print(f"machine: {machine_line(device)}")
    print(f"device {device}; pruner {args.pruner}; batch {args.batch_size}; {args.clock} time, median ms per batch "
          f"± half the range of {args.repeats} interleaved passes after {args.warmup} warm-up")
    for name in args.models:
        for compression in args.compressions:
            bench_one(name, compression, args, device)


if __name__ == "__main__":
    run(main)
