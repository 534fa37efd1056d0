"""Training throughput of ResNet20 on CIFAR-10-shaped data: prunelab against the original design.

Both ways train the same pruned ResNet20 (random pruning, compression 1) for the same number of steps
in this one process, and print images per second and their ratio:

* original: PIL images through torchvision transforms (random crop with padding 4, flip, to-tensor,
  normalize) in a DataLoader with worker processes, the mask multiplied into the weights in every
  forward, contiguous (NCHW) tensors.
* prunelab: whole uint8 tensors on the device, crop / flip / normalize per batch with tensor ops (the
  epoch's random draws copied to the device once, so no step waits for a CPU-to-GPU copy), masks folded
  into the weights once and kept at zero by two foreach multiplies per step, channels-last memory format
  for the convolutions, and on CUDA the whole step replayed as one CUDA graph (as runs train there).

The two prunelab variants after it (ordinary steps; then also contiguous NCHW tensors) attribute the gain.
Every variant takes ``--warmup`` untimed steps (a CUDA graph is captured after its own warm-up), then the
variants take turns through :func:`prunelab.core.timing.interleaved`, a block of ``--steps`` steps at a
time, the order rotated each block; images per second come from each median block, printed beside the
median ± half the range of the blocks (the workbook's statistic).

Run: ``.venv/bin/python bench/train_throughput.py [--steps 5 --blocks 5] [--batch-size 256] [--device cpu]``.
Targets: at least 1.5x on a 2-core CPU, at least 5x on a GPU. Data is synthetic (throughput does not
depend on pixel values). Figures are kept in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from benchkit import at_least, parser, ratio_text, run, torch_device
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from prunelab.core.evaluation import synchronize
from prunelab.core.hardware import machine_line
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.timing import MIN_REPEATS, interleaved
from prunelab.core.train import (
    GRAPH_WARMUP_STEPS,
    GraphedTrainStep,
    make_optimizer,
    ordinary_step,
    resolve_device,
    train_step,
)
from prunelab.data.catalog import DATASETS
from prunelab.data.in_memory import DeviceLoader, Split
from prunelab.models.layers import keep_pruned_at_zero, set_mask_in_forward, trainable_parameters
from prunelab.models.registry import build_model
from prunelab.workbook.numbers import time_cell


class PilImages(Dataset):
    """What torchvision's CIFAR10 does per item: a PIL image from an HWC uint8 array, then transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


class Trainer:
    """A training step, its model and an endless batch stream; ``run(steps)`` takes that many steps and
    returns when the device has finished them."""

    def __init__(self, model, step, batches, device) -> None:
        self.model, self.step, self.batches, self.device = model, step, batches, device

    def run(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            x, y = next(self.batches)
            self.step(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
        synchronize(self.device)


def endless(loader):
    while True:
        yield from loader


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=at_least(1), default=5, help="steps per timed block")
    p.add_argument("--blocks", type=at_least(2), default=MIN_REPEATS, help="timed blocks per variant, taking turns")
    p.add_argument("--warmup", type=at_least(GRAPH_WARMUP_STEPS), default=GRAPH_WARMUP_STEPS + 2,
                   help="untimed steps per variant (a CUDA graph is captured after its warm-up steps)")
    p.add_argument("--batch-size", type=at_least(1), default=256)
    p.add_argument("--workers", type=at_least(0), default=min(4, os.cpu_count() or 1),
                   help="DataLoader workers of the original design (the original default is 4)")
    p.add_argument("--device", type=torch_device, default=None)
    args = p.parse_args()
    device = args.device or resolve_device()
    torch.manual_seed(0)
    info = DATASETS["cifar10"]
    n = args.batch_size * 8
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,))

    base = build_model("resnet20", "lottery", info.input_shape, info.num_classes)
    prune(base, PruneSettings("rand", 1.0), [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))])

    # the original design
    original = copy.deepcopy(base).to(device)
    set_mask_in_forward(original, True)
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])
    dataset = PilImages(images.permute(0, 2, 3, 1).numpy(), labels.numpy(), tf)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=args.workers > 0)
    opt = torch.optim.Adam(trainable_parameters(original), lr=1e-3)
    trainers = {"original": Trainer(original, ordinary_step(original, opt), endless(loader), device)}

    # prunelab's step as runs take it (a CUDA graph on CUDA), then without the graph and without
    # channels-last, for attribution
    for name, channels_last, graph in (("prunelab", True, True), ("prunelab-ordinary", True, False),
                                       ("prunelab-nchw", False, False)):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        ours = copy.deepcopy(base).to(device, memory_format=fmt)
        opt = make_optimizer("adam", trainable_parameters(ours), 1e-3, 0.0, capturable=graph and device.type == "cuda")
        keep_pruned_at_zero(opt, ours)
        ours_loader = DeviceLoader(Split(images, labels), info, args.batch_size, device, shuffle=True,
                                   augment=True, drop_last=True, channels_last=channels_last)
        step = train_step(ours, opt, device, cuda_graph=graph)
        trainers[name] = Trainer(ours, step, endless(ours_loader), device)
    graphed = isinstance(trainers["prunelab"].step, GraphedTrainStep)

    print(f"machine: {machine_line(device)}")
    print(f"device {device}; ResNet20, batch {args.batch_size}; median of {args.blocks} interleaved blocks of "
          f"{args.steps} steps each (block time ± half the range); timing {len(trainers)} designs ...", flush=True)
    for trainer in trainers.values():
        trainer.run(args.warmup)
    timings = interleaved({k: (lambda t=trainer: t.run(args.steps)) for k, trainer in trainers.items()},
                          args.blocks, warmup=0)
    ips = {k: args.steps * args.batch_size / t.median for k, t in timings.items()}
    cells = {k: time_cell(t.median, t.spread) for k, t in timings.items()}
    print(f"original design (DataLoader x{args.workers} + transforms, mask in forward): "
          f"{ips['original']:8.1f} images/s ({cells['original']})")
    step_words = "CUDA graph of the step" if graphed else "ordinary steps: no CUDA here"
    print(f"prunelab (device batches, folded masks, channels-last, {step_words}): "
          f"{ips['prunelab']:8.1f} images/s ({cells['prunelab']})")
    print(f"  prunelab with ordinary steps (no CUDA graph), for attribution:  {ips['prunelab-ordinary']:8.1f} images/s "
          f"({cells['prunelab-ordinary']})")
    print(f"  ... and with contiguous NCHW tensors, for attribution:          {ips['prunelab-nchw']:8.1f} images/s "
          f"({cells['prunelab-nchw']})")
    print(f"ratio prunelab / original: {ratio_text(timings['original'], timings['prunelab'])}")


if __name__ == "__main__":
    run(main)
