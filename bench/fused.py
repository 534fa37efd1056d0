"""Fused training against runs one after another: images per second of M runs, and the 18-run grid end to end.

Two measurements, each printed with the machine it ran on:

* ``loop`` (the default): for MNIST / FC and CIFAR-10 / ResNet20, M = 1, 6 and 18 pruned networks (SNIP at
  compression 1) train either as one fused network (:mod:`prunelab.core.fused`) or one after another, each
  with its own optimizer, the way runs train alone (a timed block of the separate design is one run's steps
  in a row, the runs taking blocks in turn, as a grid trains them). Each run is fed its own batch, or with
  ``--seeds S`` the runs draw batches as S seeds would, as a grid's do (the fused network reads each seed's
  batch once). Both
  take the library's training step (a CUDA graph of it on CUDA, channels-last for convolutions, as runs
  train). A third design, ``one network``, trains one run's network on M times the batch: the same images with
  one run's kernels, a ceiling for any way of fusing M runs. A timed block is ``--steps`` steps of every run;
  the designs take turns (:func:`prunelab.core.timing.interleaved`) and images per second come from the
  median block, beside the median ± half the range of the blocks.
* ``grid``: the issue's CPU target, the 18-run MNIST / FC grid end to end (the quick profile's six pruner
  variants × three seeds at compression 1, on the bundled real MNIST subset when it is there, 30 epochs),
  every record written: ``run_configs`` with ``--fuse on`` against ``--fuse off``, each into a fresh result
  folder, alternating which goes first. The wall time covers pre-training, pruning, training, checkpoints
  and records.

Run: ``.venv/bin/python bench/fused.py [loop|grid] [--device cpu] [--setups fc resnet20] [--runs 1 6 18]
[--seeds 3]``.
Targets: the grid at least 2x faster fused on a CPU; ResNet20 at M = 18 at least 5x over separate CUDA-graph
steps on a GPU. Figures are kept in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from benchkit import at_least, ratio_text, torch_device
from benchkit import parser as bench_parser
from benchkit import run as run_bench

from prunelab.core.evaluation import Precision, synchronize
from prunelab.core.fused import fuse_learners, fused_losses, stack_inputs
from prunelab.core.hardware import machine_line
from prunelab.core.layout import uses_channels_last
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.timing import MIN_REPEATS, Timing, interleaved, noise_words
from prunelab.core.train import (
    GRAPH_WARMUP_STEPS,
    Learner,
    make_optimizer,
    ordinary_step,
    resolve_device,
    train_step,
)
from prunelab.data.catalog import DATASETS
from prunelab.errors import UserError
from prunelab.models.layers import keep_pruned_at_zero, trainable_parameters
from prunelab.models.registry import build_model
from prunelab.precision.amp import amp_name, amp_settings, make_scaler
from prunelab.runs.config import RunConfig
from prunelab.runs.fused_plan import input_blocks
from prunelab.runs.store import load_record
from prunelab.workbook.numbers import time_cell

#: the set-ups of the loop bench: (dataset, model, model class)
SETUPS = {"fc": ("mnist", "fc", "default"), "resnet20": ("cifar10", "resnet20", "lottery")}


def pruned_model(setup: str, seed: int, device: torch.device) -> nn.Module:
    """A network of ``setup`` pruned by SNIP at compression 1 on a random batch, in the layout its run trains in."""
    dataset, name, model_class = SETUPS[setup]
    info = DATASETS[dataset]
    torch.manual_seed(seed)
    model = build_model(name, model_class, info.input_shape, info.num_classes)
    batch = [(torch.randn(32, *info.input_shape), torch.randint(0, info.num_classes, (32,)))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a collapse warning does not matter for throughput
        prune(model, PruneSettings("snip", 1.0), batch)
    fmt = torch.channels_last if uses_channels_last(model) else torch.contiguous_format
    return model.to(device, memory_format=fmt)


def learner_for(device: torch.device, precision: Precision) -> Callable[[nn.Module], Learner]:
    """How each run (and the fused network) gets its optimizer: the runs' default Adam, pruned weights held at
    zero, and the gradient scaler ``precision`` needs, as ``prunelab.runs.singleshot.fresh_learner`` makes it."""
    def make(model: nn.Module) -> Learner:
        optimizer = make_optimizer("adam", trainable_parameters(model), 1e-3, 0.0, capturable=device.type == "cuda")
        keep_pruned_at_zero(optimizer, model)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[])
        return Learner(model, optimizer, scheduler, make_scaler(precision, device))
    return make


def batches(setup: str, runs: int, batch: int, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One batch per run, drawn apart (throughput does not depend on pixel values), on ``model``'s device and
    in its layout."""
    info = DATASETS[SETUPS[setup][0]]
    device = next(model.parameters()).device
    fmt = torch.channels_last if uses_channels_last(model) else torch.contiguous_format
    return [(torch.randn(batch, *info.input_shape, device=device).contiguous(memory_format=fmt),
             torch.randint(0, info.num_classes, (batch,), device=device)) for _ in range(runs)]


def seed_batches(setup: str, runs: int, seeds: int, batch: int, model: nn.Module
                 ) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The runs per input block as ``runs`` runs of ``seeds`` seeds share them (:func:`input_blocks`), and one
    batch per block (run ``r`` reads block ``r // shared``)."""
    shared = input_blocks([run * seeds // runs for run in range(runs)])
    return shared, batches(setup, runs // shared, batch, model)


@dataclass(frozen=True)
class LoopCase:
    """One row of the loop bench: ``runs`` networks of ``setup`` drawing batches of ``batch`` images as
    ``seeds`` seeds would, trained on ``device`` in ``precision``."""

    setup: str
    runs: int
    seeds: int
    batch: int
    device: torch.device
    precision: Precision

    def steps_of(self, learner: Learner, criterion: Callable = F.cross_entropy):
        """The library's training step for ``learner``: a CUDA graph of it on CUDA in fp32, as runs train;
        mixed precision takes ordinary steps (:func:`prunelab.core.train.graph_obstacle`)."""
        return train_step(learner.model, learner.optimizer, self.device, self.precision, learner.scaler,
                          self.device.type == "cuda", criterion=criterion)


def loop_designs(case: LoopCase) -> dict[str, Callable[[int], None]]:
    """``fused`` and ``separate``: each takes ``steps`` training steps of all ``runs`` runs' worth when called,
    ``separate`` as the runs train one after another (one run's ``runs * steps`` steps in a row, the runs
    taking turns from call to call). The runs draw batches as ``seeds`` seeds would (:func:`input_blocks`):
    runs of one seed get the same batch, and the fused network reads it once. ``one network``: the same images
    as one run's network at ``runs`` times the batch, the same work with the kernels of one run: a ceiling for
    any way of fusing the runs."""
    setup, runs, device = case.setup, case.runs, case.device
    make = learner_for(device, case.precision)
    models = [pruned_model(setup, seed, device) for seed in range(1, runs + 1)]
    shared, data = seed_batches(setup, runs, case.seeds, case.batch, models[0])
    separate = [make(copy.deepcopy(m)) for m in models]
    separate_steps = [case.steps_of(s) for s in separate]
    for run, (learner, step) in enumerate(zip(separate, separate_steps)):
        learner.model.train()
        for _ in range(GRAPH_WARMUP_STEPS + 1):  # every run's warm-up (and its graph's capture) before any timing
            step(*data[run // shared])
    fused = fuse_learners([make(m) for m in models], make, shared)
    fused_step = case.steps_of(fused, criterion=fused_losses)
    joined = (stack_inputs([x for x, _ in data]), torch.stack([data[run // shared][1] for run in range(runs)], dim=1))

    turn = itertools.count()  # which run takes the next block

    def run_separate(steps: int) -> None:
        # one run takes all the block's steps in a row, the runs taking blocks in turn: in a grid a run trains
        # its hundreds of steps before the next starts, its weights and optimizer state warm in the cache; a
        # block of a few steps of each run in turn would evict them on a CPU and flatter fusing (measured: 2.31x
        # against 1.47x for 18 FC runs on the AMD EPYC, bench/RESULTS.md)
        run = next(turn) % runs
        learner, step, (x, y) = separate[run], separate_steps[run], data[run // shared]
        learner.model.train()
        for _ in range(steps * runs):
            step(x, y)
        synchronize(device)

    def run_fused(steps: int) -> None:
        fused.model.train()
        for _ in range(steps):
            fused_step(*joined)
        synchronize(device)

    one = make(copy.deepcopy(models[0]))
    one_step = case.steps_of(one)
    big = batches(setup, 1, case.batch * runs, models[0])[0]

    def run_one(steps: int) -> None:
        one.model.train()
        for _ in range(steps):
            one_step(*big)
        synchronize(device)

    return {"fused": run_fused, "separate": run_separate, "one network": run_one}


def streams_design(case: LoopCase) -> Callable[[int], None]:
    """``streams`` (CUDA, fp32 only): the runs of :func:`loop_designs`, each with its own network and optimizer, their
    whole training steps captured as one CUDA graph in which each run's step is a branch on a stream of its
    own. Another route to training runs together: each keeps its own kernels, and the branches run side by
    side as M processes' would, with one launch and one context."""
    device = case.device
    make = learner_for(device, case.precision)
    learners = [make(pruned_model(case.setup, seed, device)) for seed in range(1, case.runs + 1)]
    shared, data = seed_batches(case.setup, case.runs, case.seeds, case.batch, learners[0].model)
    inputs = [data[run // shared] for run in range(case.runs)]
    streams = [torch.cuda.Stream(device) for _ in learners]
    for learner in learners:
        learner.model.train()
    main = torch.cuda.current_stream(device)
    warm_steps = [ordinary_step(learner.model, learner.optimizer) for learner in learners]
    for _ in range(GRAPH_WARMUP_STEPS):  # ordinary steps first, each on its stream (autograd, cuBLAS handles)
        for stream, step, (x, y) in zip(streams, warm_steps, inputs):
            stream.wait_stream(main)
            with torch.cuda.stream(stream):
                step(x, y)
            main.wait_stream(stream)
    for learner in learners:
        learner.optimizer.zero_grad(set_to_none=True)  # the graph allocates the gradients and overwrites them
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.device(device), torch.cuda.graph(graph):  # the capture stream on the runs' device
        capture = torch.cuda.current_stream(device)
        for stream, learner, (x, y) in zip(streams, learners, inputs):
            stream.wait_stream(capture)
            with torch.cuda.stream(stream):
                F.cross_entropy(learner.model(x), y).backward()
                learner.optimizer.step()
        for stream in streams:  # every branch joins the capture stream before the capture ends
            capture.wait_stream(stream)

    held = (learners, data, streams)  # the graph reads and writes their memory: it must outlive this function

    def run_streams(steps: int) -> None:
        assert held
        for _ in range(steps):
            graph.replay()
        synchronize(device)

    return run_streams


def bench_loop(args: argparse.Namespace, device: torch.device, precision: Precision) -> None:
    seeds = f"runs of {args.seeds} seeds, one seed's runs reading one input block" if args.seeds else "a seed per run"
    graphed = device.type == "cuda" and not precision.mixed
    print(f"device {device}; Adam, batch {args.batch_size} per run, SNIP at compression 1, {seeds}; median of "
          f"{args.blocks} interleaved blocks of {args.steps} steps of every run (block time ± half the range); "
          f"{amp_name(precision)}, {'CUDA-graph' if graphed else 'ordinary'} training steps")
    print(f"{'set-up':10} {'M':>3} {'fused img/s':>12} {'separate img/s':>15} {'fused/separate':>15} "
          f"{'one network img/s':>18} {'fused/one':>10}   block times; fused against separate")
    for setup in args.setups:
        for runs in args.runs:
            case = LoopCase(setup, runs, min(args.seeds or runs, runs), args.batch_size, device, precision)
            designs = loop_designs(case)
            if args.streams:
                designs["streams"] = streams_design(case)
            for design in designs.values():
                design(args.warmup)
            timings = interleaved({k: (lambda d=d: d(args.steps)) for k, d in designs.items()}, args.blocks, warmup=0)
            images = runs * args.steps * args.batch_size
            fused, separate, one = (images / timings[k].median for k in ("fused", "separate", "one network"))
            noise = f"({noise_words(timings['separate'], timings['fused'])})"
            print(f"{setup:10} {runs:3d} {fused:12.0f} {separate:15.0f} {fused / separate:14.2f}x "
                  f"{one:18.0f} {fused / one:9.2f}x   "
                  f"fused {time_cell(timings['fused'].median, timings['fused'].spread)}, "
                  f"separate {time_cell(timings['separate'].median, timings['separate'].spread)}, "
                  f"one network {time_cell(timings['one network'].median, timings['one network'].spread)}; {noise}")
            if args.streams:
                streams = images / timings["streams"].median
                print(f"{'':14} streams (one graph, a branch per run): {streams:.0f} img/s, {streams / separate:.2f}x "
                      f"separate, fused/streams {fused / streams:.2f}x; block "
                      f"{time_cell(timings['streams'].median, timings['streams'].spread)}")


def grid_configs(result_dir: str, fuse: str, epochs: int) -> list[RunConfig]:
    """The quick profile's MNIST / FC variants (SynFlow with 1 and 100 rounds) × seeds 1-3 at compression 1."""
    from prunelab.workbook.grids import WorkbookParams, pruner_variants, run_config

    params = WorkbookParams(result_dir=result_dir, fuse=fuse, overrides={"mnist": {
        "train_subset": 4000, "test_subset": 1000, "post_epochs": epochs, "pre_epochs_mag": epochs}})
    return [replace(run_config(params, "mnist", p, 1.0, r, seed), verbose=False)
            for seed in (1, 2, 3) for p, r in pruner_variants(params, "mnist")]


def grid_designs(workers: int) -> dict[str, tuple[str, Callable[[list[RunConfig]], list]]]:
    """How the grid is run, by design name, as (its ``--fuse``, what runs it): in this process ``on`` and
    ``off`` (one after another); with ``workers`` > 1 also both in that many worker processes
    (``--executor processes``, a fused group cut so that every worker has runs to train,
    :func:`prunelab.runs.fused_plan.share_out`)."""
    from prunelab.runs.fused import run_configs
    from prunelab.runs.sweep import Executor, run_sweep

    def here(configs: list[RunConfig]) -> list:
        return run_configs(configs, progress=False, log=lambda message: None)

    def in_workers(configs: list[RunConfig]) -> list:
        outcomes = run_sweep(configs, Executor("processes", workers), log=lambda message: None, echo=False)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} runs failed: {failed[0].detail}")
        return [load_record(o.detail) for o in outcomes]

    designs = {"fused": ("on", here), "one after another": ("off", here)}
    if workers > 1:
        designs |= {f"fused, {workers} workers": ("on", in_workers),
                    f"separate, {workers} workers": ("off", in_workers)}
    return designs


def bench_grid(args: argparse.Namespace) -> None:
    import torchvision  # noqa: F401 - the data loading's first import, else paid only by the design timed first

    designs = grid_designs(args.workers)
    walls: dict[str, list[float]] = {name: [] for name in designs}
    for repeat in range(args.grid_repeats):
        order = list(designs) if repeat % 2 == 0 else list(reversed(designs))
        for name in order:
            fuse, run = designs[name]
            with tempfile.TemporaryDirectory() as folder:
                configs = grid_configs(folder, fuse, args.epochs)
                start = time.perf_counter()
                records = run(configs)
                walls[name].append(time.perf_counter() - start)
                steps = {r.summary.get("train_step") for r in records}
                sources = {str(r.summary.get("data_source")) for r in records}
            print(f"  repeat {repeat + 1}, {name}: {len(records)} records in {walls[name][-1]:.1f} s "
                  f"(train_step: {', '.join(sorted(map(str, steps)))})", flush=True)
    wall = {name: Timing.of(times) for name, times in walls.items()}
    serial = wall["one after another"]
    print(f"18-run MNIST / FC grid ({', '.join(sorted(sources))} data, {args.epochs} epochs), median ± half the "
          f"range of {args.grid_repeats}: fused {time_cell(wall['fused'].median, wall['fused'].spread)}, one after "
          f"another {time_cell(serial.median, serial.spread)}: {ratio_text(serial, wall['fused'])}")
    if args.workers > 1:
        fused, separate = wall[f"fused, {args.workers} workers"], wall[f"separate, {args.workers} workers"]
        print(f"in {args.workers} worker processes: fused {time_cell(fused.median, fused.spread)}, separate "
              f"{time_cell(separate.median, separate.spread)}: {ratio_text(separate, fused)}; fused in "
              f"{args.workers} workers against one after another in this process {ratio_text(serial, fused)}")


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("what", nargs="?", choices=("loop", "grid"), default="loop")
    parser.add_argument("--device", type=torch_device, default=None)
    parser.add_argument("--setups", nargs="+", choices=tuple(SETUPS), default=list(SETUPS))
    parser.add_argument("--runs", nargs="+", type=at_least(1), default=[1, 6, 18], help="M: runs trained together")
    parser.add_argument("--seeds", type=at_least(1), default=None,
                        help="loop: the runs' seeds, as in a grid (runs of one seed read one input block); default: "
                             "a seed per run")
    parser.add_argument("--streams", action="store_true",
                        help="loop, CUDA only: also time the runs as branches of one CUDA graph, a stream each")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="loop: fp32 (the runs' default), or autocast to bf16 as --amp-dtype bf16 runs train "
                             "(ordinary steps: mixed precision takes no CUDA graph; fp16's gradient scaler is "
                             "never fused, so it has no fused design to time)")
    parser.add_argument("--batch-size", type=at_least(1), default=256, help="per run (the runs' default)")
    parser.add_argument("--steps", type=at_least(1), default=3, help="steps of every run per timed block")
    parser.add_argument("--blocks", type=at_least(2), default=MIN_REPEATS, help="timed blocks per design, taking turns")
    parser.add_argument("--warmup", type=at_least(0), default=GRAPH_WARMUP_STEPS + 2,
                        help="untimed steps per design (a CUDA graph is captured after its warm-up steps)")
    parser.add_argument("--epochs", type=at_least(1), default=30, help="grid: training epochs per run (quick: 30)")
    parser.add_argument("--grid-repeats", type=at_least(1), default=4,
                        help="grid: runs of each design, alternating (at least 4 for the rank test to tell them apart)")
    parser.add_argument("--workers", type=at_least(1), default=1,
                        help="grid: also time both designs in this many worker processes (--executor processes)")
    args = parser.parse_args()
    device = args.device or resolve_device()
    if args.streams and device.type != "cuda":
        parser.error(f"--streams needs a CUDA device, not {device}")
    if args.what == "grid" and args.precision != "fp32":
        parser.error("--precision is the loop's; the grid trains as the quick profile's runs do (fp32)")
    if args.streams and args.precision != "fp32":
        parser.error("--streams times fp32 CUDA graphs; leave --precision at fp32")
    try:
        precision = amp_settings(device, args.precision != "fp32", None if args.precision == "fp32" else args.precision)
    except UserError as err:
        parser.error(f"--precision {args.precision} on {device.type}: {err}")
    print(f"machine: {machine_line(device)}")
    if args.what == "loop":
        bench_loop(args, device, precision)
    else:
        bench_grid(args)


if __name__ == "__main__":
    run_bench(main)
