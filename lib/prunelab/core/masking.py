"""Which weights a round keeps, given their scores: exactly ``keep`` of the highest-scoring weights still
alive, over the whole network or split over layers in proportion to their size, ties at the cut drawn at
random; and the layerwise shuffle of the masks that the ablations use."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..models.layers import MaskedParam


def _ranking_keys(scores: dict[str, Tensor], targets: list[MaskedParam], invert: bool) -> list[Tensor]:
    """Flat float64 keys per target: higher is kept first; pruned or NaN entries can never be kept."""
    keys = []
    for t in targets:
        key = scores[t.name].detach().to(torch.float64).reshape(-1)
        if invert:
            key = -key  # the lowest kept first, whatever the sign (the original's 1 / score is so for positives)
        keys.append(torch.nan_to_num(key, nan=-math.inf).masked_fill(t.mask.reshape(-1) == 0, -math.inf))
    return keys


def _topk_mask(key: Tensor, k: int) -> Tensor:
    """A mask of the ``k`` highest keys. Where equal keys straddle the cut (scores that vanished to zero, a
    pruner of integer scores), the ones kept among them are drawn at random: ``topk`` would keep the first by
    position, one block of a layer (13 of 100 units fed, for a layer of vanished scores). The draw is seeded
    by the run's seed from a generator of its own, so nothing drawn after pruning moves."""
    mask = torch.zeros_like(key, dtype=torch.float32)
    if k <= 0:
        return mask
    cut = torch.topk(key, k, sorted=False).values.min()
    above = key > cut
    mask[above] = 1.0
    tied = (key == cut).nonzero().squeeze(1)
    draw = torch.randperm(tied.numel(), generator=torch.Generator().manual_seed(torch.initial_seed()))
    mask[tied[draw[:k - int(above.sum())].to(tied.device)]] = 1.0
    return mask


def local_quotas(sizes: list[int], alive: list[int], keep: int) -> list[int]:
    """Split ``keep`` over layers in proportion to their size, summing exactly to ``keep``.

    Largest-remainder rounding; no layer is given more than it has alive (so nothing returns).
    """
    if keep > sum(alive):
        raise ValueError(f"cannot keep {keep} weights, only {sum(alive)} are left")
    total = sum(sizes)
    exact = [n * keep / total for n in sizes]
    quotas = [min(math.floor(e), a) for e, a in zip(exact, alive)]
    order = sorted(range(len(sizes)), key=lambda i: exact[i] - math.floor(exact[i]), reverse=True)
    left = keep - sum(quotas)
    while left > 0:
        progressed = False
        for i in order:
            if left and quotas[i] < alive[i]:
                quotas[i] += 1
                left -= 1
                progressed = True
        if not progressed:  # pragma: no cover - excluded by the check above
            raise ValueError("cannot apportion the kept weights")
    return quotas


@torch.no_grad()
def update_masks(targets: list[MaskedParam], scores: dict[str, Tensor], keep: int, scope: str,
                 invert: bool = False) -> None:
    """Keep exactly ``keep`` of the highest-scoring, still-alive weights (globally or per layer)."""
    keys = _ranking_keys(scores, targets, invert)
    alive = [int(t.mask.sum().item()) for t in targets]
    if keep > sum(alive):
        raise ValueError(f"cannot keep {keep} weights, only {sum(alive)} are left")
    if scope == "global":
        flat = _topk_mask(torch.cat(keys), keep)
        new_masks = torch.split(flat, [k.numel() for k in keys])
    else:
        quotas = local_quotas([t.mask.numel() for t in targets], alive, keep)
        new_masks = [_topk_mask(key, q) for key, q in zip(keys, quotas)]
    for t, new in zip(targets, new_masks):
        t.mask.copy_(new.view_as(t.mask))


@torch.no_grad()
def shuffle_masks(targets: list[MaskedParam], generator: torch.Generator | None = None) -> None:
    """Permute each mask within its own layer (the layer keeps its count, loses its pattern)."""
    for t in targets:
        flat = t.mask.reshape(-1)
        perm = torch.randperm(flat.numel(), generator=generator).to(flat.device)
        t.mask.copy_(flat[perm].view_as(t.mask))
