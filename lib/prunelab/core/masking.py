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


def _topk_mask(key: Tensor, alive: Tensor, k: int, ties: torch.Generator) -> Tensor:
    """A mask of the ``k`` highest keys among the ``alive`` entries (``k`` at most their count). Where equal keys
    straddle the cut (scores that vanished to zero, a pruner of integer scores), the ones kept among them are
    drawn at random with ``ties``, from the alive ones only (a pruned weight's key, -inf, can tie with a NaN
    score's): ``topk`` would keep the first by position, one block of a layer (13 of 100 units fed, for a
    layer of vanished scores)."""
    mask = torch.zeros_like(key, dtype=torch.float32)
    if k <= 0:
        return mask
    cut = torch.topk(key, k, sorted=False).values.min()
    above = key > cut
    mask[above] = 1.0
    tied = ((key == cut) & alive).nonzero().squeeze(1)
    draw = torch.randperm(tied.numel(), generator=ties)
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


def tie_generator() -> torch.Generator:
    """The generator that draws among tied keys: seeded by the run's seed (``torch.initial_seed``), its own, so
    that nothing drawn from the global one after pruning moves. One serves a pruning's rounds and layers."""
    return torch.Generator().manual_seed(torch.initial_seed())


@torch.no_grad()
def update_masks(targets: list[MaskedParam], scores: dict[str, Tensor], keep: int, scope: str,
                 invert: bool = False, ties: torch.Generator | None = None) -> None:
    """Keep exactly ``keep`` of the highest-scoring, still-alive weights (globally or per layer), drawing among
    keys tied at a cut with ``ties`` (default: a fresh :func:`tie_generator`)."""
    ties = tie_generator() if ties is None else ties
    keys = _ranking_keys(scores, targets, invert)
    alive = [t.mask.reshape(-1) != 0 for t in targets]
    counts = [int(a.sum()) for a in alive]
    if keep > sum(counts):
        raise ValueError(f"cannot keep {keep} weights, only {sum(counts)} are left")
    if scope == "global":
        flat = _topk_mask(torch.cat(keys), torch.cat(alive), keep, ties)
        new_masks = torch.split(flat, [k.numel() for k in keys])
    else:
        quotas = local_quotas([t.mask.numel() for t in targets], counts, keep)
        new_masks = [_topk_mask(key, a, q, ties) for key, a, q in zip(keys, alive, quotas)]
    for t, new in zip(targets, new_masks):
        t.mask.copy_(new.view_as(t.mask))


@torch.no_grad()
def shuffle_masks(targets: list[MaskedParam], generator: torch.Generator | None = None) -> None:
    """Permute each mask within its own layer (the layer keeps its count, loses its pattern)."""
    for t in targets:
        flat = t.mask.reshape(-1)
        perm = torch.randperm(flat.numel(), generator=generator).to(flat.device)
        t.mask.copy_(flat[perm].view_as(t.mask))
