"""Mixed precision against fp32 training of ResNet20 (pruned, Rand at compression 1), side by side.

Time: the two precisions take turns, ``--steps`` training steps each, ``--repeats`` times, in one
process; the median per-step time of each is reported with its spread, and their ratio with whether it is
beyond the noise (the workbook's rank test). Memory: each precision trains
``--steps`` steps in a fresh interpreter (a process's allocator keeps what it once held, so one process
cannot measure both) and reports :class:`prunelab.precision.memory.PeakMemory` over its steps: the peak of CUDA
tensors on a GPU, the process's peak resident set on a CPU.

No target: this bench records what mixed precision buys on the machine it runs on (on a CPU it depends
on native bf16 units, see ``prunelab.core.hardware.cpu_bf16_flags``).

Run: ``.venv/bin/python bench/amp.py [--batch 128] [--steps 5] [--repeats 5] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from benchkit import at_least, parser, ratio_text, run, torch_device

from prunelab.core.evaluation import synchronize
from prunelab.core.hardware import machine_line
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.timing import Timing
from prunelab.core.train import ordinary_step
from prunelab.models.layers import keep_pruned_at_zero
from prunelab.models.registry import build_model
from prunelab.precision.amp import amp_name, amp_settings, make_scaler
from prunelab.precision.memory import PeakMemory
from prunelab.workbook.numbers import time_cell


def setup(device: torch.device, batch: int, amp_on: bool, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("resnet20", "lottery", (3, 32, 32), 10).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    prune(model, PruneSettings("rand", 1.0), [(x, y)])
    model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    keep_pruned_at_zero(optimizer, model)
    amp = amp_settings(device, amp_on, None)
    # the library's ordinary step in both precisions (fp32 CUDA graphs are bench/train_throughput.py's)
    step = ordinary_step(model, optimizer, amp, make_scaler(amp, device))

    def steps(n: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(n):
            step(x, y)
        synchronize(device)
        return (time.perf_counter() - start) / n

    return amp, steps


def memory_child(device: torch.device, batch: int, amp_on: bool, steps: int) -> None:
    _, train = setup(device, batch, amp_on)
    train(1)
    with PeakMemory(device) as memory:
        train(steps)
    print(json.dumps({"peak_mb": memory.peak_mb, "kind": memory.kind, "start_mb": memory.start_mb}))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--device", type=torch_device, default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=at_least(1), default=128)
    p.add_argument("--steps", type=at_least(1), default=5)
    p.add_argument("--repeats", type=at_least(2), default=5, help="alternating timed blocks (a spread needs two)")
    p.add_argument("--memory-child", choices=["fp32", "amp"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        memory_child(args.device, args.batch, args.memory_child == "amp", args.steps)
        return
    print(f"machine: {machine_line(args.device)}", flush=True)
    variants = {"fp32": setup(args.device, args.batch, False), "amp": setup(args.device, args.batch, True)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _, steps in variants.values():
        steps(1)  # warm-up: kernel selection, first allocations
    for r in range(args.repeats):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(variants[name][1](args.steps))
    name = amp_name(variants["amp"][0])
    print(f"ResNet20 (Rand, compression 1), batch {args.batch}, channels-last, median of {args.repeats} x "
          f"{args.steps} alternating steps (± half the range of the repeats)")
    fp32, amp = Timing.of(times["fp32"]), Timing.of(times["amp"])
    print(f"time per step: fp32 {time_cell(1e3 * fp32.median, 1e3 * fp32.spread, 'ms')}, {name} autocast "
          f"{time_cell(1e3 * amp.median, 1e3 * amp.spread, 'ms')} -> AMP speed-up {ratio_text(fp32, amp)}")
    peaks = {}
    for variant in ("fp32", "amp"):
        out = subprocess.run([sys.executable, __file__, "--memory-child", variant, "--device", str(args.device),
                              "--batch", str(args.batch), "--steps", str(args.steps)],
                             capture_output=True, text=True, check=True)
        peaks[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"peak memory ({peaks['fp32']['kind']}): fp32 {peaks['fp32']['peak_mb']:.0f} MB, {name} "
          f"{peaks['amp']['peak_mb']:.0f} MB -> AMP/fp32 {peaks['amp']['peak_mb'] / peaks['fp32']['peak_mb']:.2f}")


if __name__ == "__main__":
    run(main)
