"""One ResNet20 training alone against N of them at once on the same device, through the sweep's
``processes`` executor (each in its own process, the CPU threads shared out between them).

On a GPU a small network such as ResNet20 leaves most of the device idle (short kernels, launch overhead),
so several trainings side by side finish in little more time than one: the aggregate throughput is what
decides how many runs to put on one GPU, and so what the full profile costs. Each side runs the same
configuration (different seeds, so different records) from scratch in a fresh result store; process
start and CUDA initialization are counted on both sides alike. Each side is timed once, one after the
other, not interleaved as :mod:`prunelab.core.timing` does: a side is whole sweeps lasting minutes, and
the gain sought is a multiple, not the few percent a drift of the machine's speed could fake. Figures are
kept in ``bench/RESULTS.md``.

Run: ``.venv/bin/python bench/parallel_runs.py [--runs 4] [--epochs 2] [--train-subset 10000]``.
"""

from __future__ import annotations

import tempfile
import time

import torch
from benchkit import at_least, parser, run

from prunelab.core.hardware import machine_line
from prunelab.runs.config import RunConfig
from prunelab.runs.sweep import Executor, run_sweep


def configs(result_dir: str, runs: int, args) -> list[RunConfig]:
    return [RunConfig(dataset="cifar10", model="resnet20", model_class="lottery", pruner="rand", compression=1.0,
                      data_source="synthetic", train_subset=args.train_subset, test_subset=args.test_subset,
                      post_epochs=args.epochs, seed=seed, result_dir=result_dir, no_cuda=args.cpu,
                      fuse="off")  # N processes, not one fused group
            for seed in range(1, runs + 1)]


def timed(runs: int, args) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        outcomes = run_sweep(configs(folder, runs, args), Executor("processes", runs), log=lambda _: None)
        seconds = time.perf_counter() - start
    failed = [o for o in outcomes if o.status != "finished"]
    if failed:
        raise SystemExit(f"parallel_runs: {failed[0].name} {failed[0].status}: {failed[0].detail}")
    return seconds


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--runs", type=at_least(2), default=4, help="trainings at once against one")
    p.add_argument("--epochs", type=at_least(1), default=2)
    p.add_argument("--train-subset", type=at_least(1), default=10_000)
    p.add_argument("--test-subset", type=at_least(1), default=2_000)
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is there")
    args = p.parse_args()
    device = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    print(f"machine: {machine_line(device)}")
    print(f"device {device}; ResNet20 on {args.train_subset:,} synthetic CIFAR-10 images, {args.epochs} epoch(s) "
          "after pruning, each run in its own process; each side timed once (minutes of sweeps: no spread)",
          flush=True)
    one = timed(1, args)
    many = timed(args.runs, args)
    print(f"1 run alone:             {one:7.1f} s")
    print(f"{args.runs} runs at once:         {many:7.1f} s  ({many / one:.2f}x the time of one)")
    print(f"aggregate throughput: {args.runs * one / many:.2f}x one run at a time "
          f"(the full profile's trainings take {many / (args.runs * one):.2f}x as long run {args.runs} at a time)")


if __name__ == "__main__":
    run(main)
