"""The five built-in scores (rand, mag, snip, grasp, synflow) and masking (global / local, exponential /
linear rounds) for any registered pruner.

The built-in scores register through :func:`prunelab.core.registry.register_pruner`, as any other pruner
does; docs/pruners.md gives each formula and why. They follow the SynFlow paper's reference code:

* ``rand``: a standard normal draw per weight; ``mag``: ``|w|``.
* ``snip``: ``|dL/dm * 1|`` for a mask ``m`` multiplied into the weights, i.e. ``|g * w|`` with the
  gradient summed over the pruning batches, normalized to sum to one.
* ``grasp``: ``(H g) * w`` with logits divided by a temperature of 200, normalized by ``|sum| + 1e-10``.
* ``synflow``: ``|dR/dw * w|`` where ``R`` is the sum of the outputs of the network with every parameter
  and buffer replaced by its absolute value, for an all-ones input. It is computed on float64 copies of
  the model's tensors so that deep networks neither overflow nor underflow; the model itself is never touched.

Masking (:mod:`~prunelab.core.masking`) improves on the original in three ways: the kept count is exactly
``round(total * 10**-compression)`` (ties at the cut drawn at random, not kept together), a weight once pruned
never returns in a later round, and a layer left with no weights, or whose scores all vanished, is reported.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from ..models.layers import MaskedParam, apply_masks, masked_parameters
from ..models.registry import reinitialize
from .choices import BUILT_IN_LABELS, PRUNERS, SCHEDULES, SCOPES, default_rounds
from .masking import shuffle_masks, tie_generator, update_masks
from .registry import get_pruner, pruner_rounds, register_pruner, scores_of

GRASP_TEMPERATURE = 200.0
GRASP_EPS = 1e-10

Batches = Sequence[tuple[Tensor, Tensor]]
LossFn = Callable[[Tensor, Tensor], Tensor]


class PruningWarning(UserWarning):
    """A pruned network that will not train well: a collapsed layer, or scores that vanished."""


@dataclass(frozen=True)
class PruneSettings:
    """How to prune; the defaults are the original tool's (``rounds=None`` picks per pruner)."""

    pruner: str
    compression: float
    rounds: int | None = None
    schedule: str = "exponential"
    scope: str = "global"
    prune_bias: bool = False
    prune_batchnorm: bool = False
    prune_residual: bool = False
    reinitialize: bool = False
    shuffle: bool = False
    invert: bool = False
    train_mode: bool = False

    def targets(self, model: nn.Module) -> list[MaskedParam]:
        """The parameters of ``model`` these settings prune: weights, and biases, batchnorm and residual scales
        where asked."""
        return masked_parameters(model, self.prune_bias, self.prune_batchnorm, self.prune_residual)

    @property
    def resolved_rounds(self) -> int:
        """The rounds asked for, else the pruner's own (:func:`~prunelab.core.registry.pruner_rounds`)."""
        return pruner_rounds(self.pruner) if self.rounds is None else self.rounds

    def validate(self) -> None:
        get_pruner(self.pruner)  # an unknown name: one line listing the registered ones
        if self.scope not in SCOPES:
            raise UserError(f"unknown mask scope '{self.scope}'; choose global or local")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown compression schedule '{self.schedule}'; choose exponential or linear")
        if not math.isfinite(self.compression) or self.compression < 0:
            raise UserError(f"compression must be a number >= 0 (kept fraction 10^-compression), "
                            f"not {self.compression}")
        if self.resolved_rounds < 1:
            raise UserError(f"the number of pruning rounds must be at least 1, not {self.resolved_rounds}")


@dataclass
class PruneResult:
    """What pruning did. ``scores`` are the last round's, keyed by parameter name, on the CPU; ``layer_kept``
    is each scored parameter's kept count as pruning left it (the per-layer target a mask audit checks)."""

    settings: PruneSettings
    rounds: int
    kept: int
    total: int
    scores: dict[str, Tensor]
    collapsed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    layer_kept: dict[str, int] = field(default_factory=dict)

    @property
    def density(self) -> float:
        return self.kept / self.total


def keep_count(total: int, compression: float) -> int:
    """Weights kept out of ``total`` at ``compression``: ``round(total * 10**-compression)``, at least 1."""
    keep = round(total * 10.0 ** (-compression))
    if keep < 1:
        raise UserError(f"compression {compression} keeps {total * 10.0 ** (-compression):.3g} of "
                        f"{total} prunable weights, less than one; use a compression below "
                        f"{math.log10(2 * total):.2f}")
    return keep


def schedule_keep_counts(total: int, compression: float, rounds: int, schedule: str,
                         alive: int | None = None) -> list[int]:
    """The kept count after each round; the last is exactly :func:`keep_count`.

    ``alive``: weights still unpruned when this pruning starts (default ``total``). A model pruned before
    (a multishot cycle) goes on from its density to the target over the rounds, never asking to keep
    more than is left; a target above the current density keeps what is left.
    """
    alive = total if alive is None else alive
    start, density = alive / total, 10.0 ** (-compression)
    counts = []
    for r in range(1, rounds + 1):
        if schedule == "exponential":
            d = start * (density / start) ** (r / rounds)
        else:
            d = start - (start - density) * (r / rounds)
        counts.append(round(total * d))
    counts[-1] = keep_count(total, compression)
    return [min(count, alive) for count in counts]


# ----------------------------------------------------------------------------------------- scores


def score_rand(model, targets, batches, loss_fn):
    return {t.name: torch.randn_like(t.param) for t in targets}


def score_mag(model, targets, batches, loss_fn):
    return {t.name: t.param.detach().abs().clone() for t in targets}


def signed_saliency(model: nn.Module, targets: list[MaskedParam], batches: Batches, loss_fn: LossFn) -> dict:
    """``∂L/∂θ ⊙ θ`` of each target, the loss summed over ``batches`` (SNIP's score before ``|·|``); the
    model's gradients are left empty."""
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        loss_fn(model(x), y).backward()
    scores = {t.name: (t.param.grad * t.param).detach() if t.param.grad is not None
              else torch.zeros_like(t.param) for t in targets}
    model.zero_grad(set_to_none=True)
    return scores


def score_snip(model, targets, batches, loss_fn):
    scores = {name: s.abs() for name, s in signed_saliency(model, targets, batches, loss_fn).items()}
    norm = sum(s.sum() for s in scores.values())
    return {k: s / norm for k, s in scores.items()}


def score_grasp(model, targets, batches, loss_fn):
    params = [t.param for t in targets]
    masks = [t.mask.to(t.param.dtype) for t in targets]

    def masked_grads(x, y, create_graph):
        loss = loss_fn(model(x) / GRASP_TEMPERATURE, y)
        grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
        # gradients as the original design sees them: d/dw of a masked weight is masked
        return torch.cat([(torch.zeros_like(p) if g is None else g * m).reshape(-1)
                          for g, p, m in zip(grads, params, masks)])

    model.zero_grad(set_to_none=True)
    stopped = sum(masked_grads(x, y, False).detach() for x, y in batches)
    for x, y in batches:
        (stopped * masked_grads(x, y, True)).sum().backward()
    scores = {t.name: (t.param.grad * t.param).detach() if t.param.grad is not None
              else torch.zeros_like(t.param) for t in targets}
    model.zero_grad(set_to_none=True)
    norm = torch.abs(sum(s.sum() for s in scores.values())) + GRASP_EPS
    return {k: s / norm for k, s in scores.items()}


def positive_network(model: nn.Module) -> dict[str, Tensor]:
    """SynFlow's network for ``torch.func.functional_call``: positive float64 copies of ``model``'s buffers and
    parameters by name (requiring grad as theirs do), on its device or, for MPS (no float64), the CPU."""
    device = next(model.parameters()).device
    device = torch.device("cpu") if device.type == "mps" else device
    tensors = {name: _positive_copy(t, device) for name, t in model.named_buffers()}
    tensors.update({name: _positive_copy(p, device).requires_grad_(p.requires_grad)
                    for name, p in model.named_parameters()})
    return tensors


def score_synflow(model, targets, batches, loss_fn):
    device = targets[0].param.device
    params = positive_network(model)
    ones = torch.ones((1, *batches[0][0].shape[1:]), dtype=torch.float64, device=params[targets[0].name].device)
    torch.func.functional_call(model, params, (ones,)).sum().backward()
    scores = {}
    for t in targets:
        p = params[t.name]
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        scores[t.name] = (grad * p).detach().abs().to(device)
    return scores


@torch.no_grad()
def _positive_copy(tensor: Tensor, device: torch.device) -> Tensor:
    """A copy of ``tensor`` on ``device``: float64 and absolute where it is floating point, else as it is."""
    if tensor.is_floating_point():
        return tensor.to(device=device, dtype=torch.float64, copy=True).abs_()
    return tensor.to(device=device, copy=True)


def _register_built_ins() -> None:
    """The five built-in pruners, through the call every pruner registers with: their labels, and tab10's
    grey, blue, green, red and purple."""
    scores = (score_rand, score_mag, score_snip, score_grasp, score_synflow)
    colours = ("#7f7f7f", "#1f77b4", "#2ca02c", "#d62728", "#9467bd")
    for name, score, colour in zip(PRUNERS, scores, colours, strict=True):
        register_pruner(name, score, label=BUILT_IN_LABELS[name], colour=colour, rounds=default_rounds(name))


_register_built_ins()


class FrozenBatchnormStats:
    """Restores batchnorm running statistics and the train / eval mode on exit: scoring must not change them."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.saved = [(m, {k: v.clone() for k, v in m.named_buffers(recurse=False) if v is not None})
                      for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.training = self.model.training
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for module, buffers in self.saved:
                for name, value in buffers.items():
                    getattr(module, name).copy_(value)
        self.model.train(self.training)


def compute_scores(model: nn.Module, settings: PruneSettings, targets: list[MaskedParam],
                   batches: Batches, loss_fn: LossFn = F.cross_entropy) -> dict[str, Tensor]:
    """One round of scores for ``targets`` (eval mode unless ``train_mode``; batchnorm stats kept)."""
    with FrozenBatchnormStats(model):
        model.train(settings.train_mode)
        pruner = get_pruner(settings.pruner)
        return scores_of(pruner, model, targets, batches, loss_fn)


# ---------------------------------------------------------------------------------------- masking


def find_collapsed(targets: list[MaskedParam]) -> list[str]:
    """Names of prunable parameters with no weight left: nothing flows through that layer."""
    return [t.name for t in targets if not bool(t.mask.any())]


def find_vanished(scores: dict[str, Tensor], targets: list[MaskedParam]) -> list[str]:
    """Names of parameters whose alive weights all scored exactly zero (vanishing gradients)."""
    names = []
    for t in targets:
        alive = t.mask.reshape(-1) != 0
        if bool(alive.any()) and not bool(((scores[t.name].reshape(-1) != 0) & alive).any()):
            names.append(t.name)
    return names


def prune(model: nn.Module, settings: PruneSettings, batches: Batches, loss_fn: LossFn = F.cross_entropy,
          progress: bool = False) -> PruneResult:
    """Score and mask ``model`` in place, then zero the pruned weights in the parameters.

    ``batches`` is a re-iterable sequence of ``(inputs, targets)`` on the model's device (GraSP reads it
    twice per round). Collapsed layers and vanished scores are warned about and recorded.
    """
    settings.validate()
    targets = settings.targets(model)
    if not targets:
        raise UserError("this model has no prunable parameters")
    total = sum(t.mask.numel() for t in targets)
    rounds = settings.resolved_rounds
    alive = int(sum(t.mask.sum().item() for t in targets))
    counts = schedule_keep_counts(total, settings.compression, rounds, settings.schedule, alive)
    vanished: set[str] = set()
    iterator = range(rounds)
    if progress and rounds > 1:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc=f"{settings.pruner} rounds", leave=False)
    scores: dict[str, Tensor] = {}
    # each round zeroes the weights pruned so far; a shuffled mask must land on the weights scoring began with
    start = [t.param.detach().clone() for t in targets] if settings.shuffle and rounds > 1 else None
    ties = tie_generator()  # one draw among tied scores across the rounds and layers
    for r in iterator:
        apply_masks(model)
        scores = compute_scores(model, settings, targets, batches, loss_fn)
        vanished.update(find_vanished(scores, targets))
        update_masks(targets, scores, counts[r], settings.scope, settings.invert, ties)
    if settings.reinitialize:
        reinitialize(model)
    elif start is not None:
        with torch.no_grad():
            for t, weights in zip(targets, start):
                t.param.copy_(weights)
    if settings.shuffle:
        shuffle_masks(targets)
    apply_masks(model)
    layer_kept = {t.name: int(t.mask.sum().item()) for t in targets}
    kept = sum(layer_kept.values())
    collapsed = find_collapsed(targets)
    if collapsed:
        warnings.warn(f"layer collapse: {', '.join(collapsed)} kept no weights; the network cannot pass "
                      f"signal through {'it' if len(collapsed) == 1 else 'them'}.", PruningWarning,
                      stacklevel=2)
    if vanished:
        warnings.warn(f"{settings.pruner} scores vanished (all zero) in {', '.join(sorted(vanished))}; "
                      "those layers were pruned at random among ties.", PruningWarning, stacklevel=2)
    ordered_vanished = [t.name for t in targets if t.name in vanished]
    return PruneResult(settings, rounds, kept, total, {k: v.detach().cpu() for k, v in scores.items()},
                       collapsed, ordered_vanished, layer_kept)
