"""Test-set inference time of one pruned ResNet20, several ways, measured side by side in one process.

Variants (same weights; SNIP at compression 1):

* original design: the mask multiplied into each weight in every forward (the original tool's layers),
  in PyTorch's default NCHW layout, as the original runs it;
* prunelab as it runs test-set inference: masks folded into the weights once, plain convolutions, and
  the channels-last layout that ``prunelab.runs.singleshot`` gives every conv network and its batches;
* no masks at all in the same layout: the network built from plain ``nn`` layers (the floor for "masks
  cost nothing");
* the two parts of the gain apart: masks folded in NCHW (the fold alone), and no masks in NCHW;
* prunelab + conv/batchnorm folded for inference;
* prunelab under ``torch.compile`` (skip with ``--no-compile``);
* on a GPU also: bf16 autocast, and a CUDA graph replaying the whole forward.

The fold and the layout are measured apart because they pay differently: on a CPU the mask multiply is
a small elementwise op per layer next to each convolution, while the layout changes every convolution.

Each variant's pass over the test images is timed through :func:`prunelab.core.timing.interleaved` (one
warm-up pass each, then ``--rounds`` rounds taking turns, the order rotated each round so no variant
always runs first); each reports its median pass ± half the range of its passes, the statistic the
workbook's pages show, and "no slower" is judged by the workbook's rule (a gap counts only where a rank
test of the passes tells the two apart). Targets: prunelab at least 1.2x the original design on a 2-core
CPU, and no slower than no masks at all. Figures are kept in ``bench/RESULTS.md``.

Run: ``.venv/bin/python bench/inference.py [--images 2560] [--batch-size 256] [--rounds 5] [--device cuda]``.
Run nothing else meanwhile: on two cores a second process turns the timings into noise.
"""

from __future__ import annotations

import copy
import warnings

import torch
from benchkit import at_least, parser, ratio_text, run, torch_device

from prunelab.core.evaluation import synchronize
from prunelab.core.hardware import machine_line
from prunelab.core.inference import fuse_conv_bn, strip_masks
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.timing import MIN_REPEATS, interleaved, timings_differ
from prunelab.core.trace import original_design
from prunelab.core.train import resolve_device
from prunelab.models.registry import build_model
from prunelab.workbook.numbers import time_cell

ORIGINAL = "original design (mask in forward, NCHW)"
OURS = "prunelab (masks folded, channels-last)"
FLOOR = "no masks at all, channels-last"


def cuda_graph_runner(model, example):
    """Capture one forward of ``model`` on a static input; replay it for every batch."""
    static_in = example.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):
            model(static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        static_out = model(static_in)

    def run(x):
        static_in.copy_(x)
        graph.replay()
        return static_out
    return run


def one_pass(fn, data: list[torch.Tensor], device: torch.device):
    """A timed pass: ``fn`` over every batch, ending when the device has finished."""
    def run() -> None:
        for x in data:
            fn(x)
        synchronize(device)
    return run


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=at_least(1), default=2560, help="at least one batch")
    p.add_argument("--batch-size", type=at_least(1), default=256)
    p.add_argument("--rounds", type=at_least(2), default=MIN_REPEATS, help="timed passes of each variant, taking turns")
    p.add_argument("--device", type=torch_device, default=None)
    p.add_argument("--no-compile", action="store_true")
    args = p.parse_args()
    if args.images < args.batch_size:
        p.error(f"--images {args.images} is less than one batch of --batch-size {args.batch_size}")
    device = args.device or resolve_device()
    torch.manual_seed(0)
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prune(model, PruneSettings("snip", 1.0), [(torch.randn(100, 3, 32, 32), torch.randint(0, 10, (100,)))])
    model = model.to(device).eval()
    batches = [torch.randn(args.batch_size, 3, 32, 32, device=device)
               for _ in range(max(1, args.images // args.batch_size))]
    channels_last = [b.contiguous(memory_format=torch.channels_last) for b in batches]

    ours = copy.deepcopy(model).to(memory_format=torch.channels_last)
    variants = {
        ORIGINAL: (original_design(model), batches),
        OURS: (ours, channels_last),
        FLOOR: (strip_masks(model).to(memory_format=torch.channels_last), channels_last),
        "masks folded, NCHW (the fold alone)": (model, batches),
        "no masks at all, NCHW": (strip_masks(model), batches),
        "prunelab + conv/bn folded": (fuse_conv_bn(ours), channels_last),
    }
    if not args.no_compile:
        try:
            compiled = torch.compile(copy.deepcopy(ours))
            with torch.no_grad():
                compiled(channels_last[0])  # compile now, outside the timing
            variants["prunelab + torch.compile"] = (compiled, channels_last)
        except Exception as err:  # noqa: BLE001 - report and go on: compile needs a toolchain
            print(f"torch.compile unavailable here: {type(err).__name__}: {str(err).splitlines()[0][:100]}")
    if device.type == "cuda":
        def bf16(x, m=ours):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return m(x)
        variants["prunelab, bf16 autocast"] = (bf16, channels_last)
        variants["prunelab, CUDA graph"] = (cuda_graph_runner(ours, channels_last[0]), channels_last)

    images = len(batches) * args.batch_size
    print(f"machine: {machine_line(device)}")
    print(f"device {device}; ResNet20 (SNIP, compression 1); {images} images in batches of {args.batch_size}; "
          f"median pass ± half the range of {args.rounds} interleaved rounds; timing {len(variants)} designs ...",
          flush=True)
    with torch.no_grad():
        timings = interleaved({name: one_pass(fn, data, device) for name, (fn, data) in variants.items()},
                              args.rounds, warmup=1)
    base = timings[ORIGINAL].median
    for name, t in timings.items():
        print(f"{name:46s} {time_cell(t.median, t.spread):>18s}  {images / t.median:9.1f} images/s  "
              f"{base / t.median:5.2f}x original")
    fast, floor = timings[OURS], timings[FLOOR]
    fold = timings["masks folded, NCHW (the fold alone)"].median
    original = timings[ORIGINAL]
    beyond = timings_differ(original, fast)
    verdict = "met" if base / fast.median >= 1.2 and beyond else "NOT met"
    print(f"prunelab / original design: {ratio_text(original, fast)} (target >= 1.2x beyond the noise: "
          f"{verdict}), of which folding "
          f"the masks {base / fold:.2f}x and the channels-last layout {fold / fast.median:.2f}x")
    slower = fast.median > floor.median and timings_differ(fast, floor)
    print(f"prunelab / no masks at all, same layout: {floor.median / fast.median:.2f}x (target: no slower beyond "
          f"the noise: {'NOT met' if slower else 'met'})")


if __name__ == "__main__":
    run(main)
