"""The SynFlow paper's conservation experiments (Tanaka et al. 2020, section 4 and figures 3, 4, 5b, 7).

*Synaptic saliency* is any score of the form ``S(θ) = ∂R/∂θ ⊙ θ``. If ``R`` is unchanged when a hidden
unit's incoming parameters are multiplied by ``α > 0`` and its outgoing weights divided by ``α`` (true when
the unit's activation is positively homogeneous: ReLU, max- or average-pooling, flatten), differentiating
at ``α = 1`` gives the laws measured here: unit-wise, the saliency flowing into a hidden unit equals the
saliency flowing out; layer-wise, in a bias-free chain every layer's total saliency is the same, so the
average score per parameter is proportional to the inverse layer size and large layers are pruned first
(the paper's explanation of layer collapse).

``synflow`` is a synaptic saliency exactly, and so is the signed ``∂L/∂θ ⊙ θ`` (:data:`SALIENCY`, SNIP
before its absolute value). ``snip`` takes ``|·|`` per parameter, so its sums obey the law only where all
terms share a sign. ``grasp``'s ``R = g_stop · g(θ)`` depends on θ through the gradient too, so
``S_in - S_out = ‖G_out‖² - ‖G_in‖²`` (then divided by GraSP's normalizer), not zero. Batchnorm and
residual branches break the symmetry; the laws are for chains of masked linear / conv layers.

The experiments score (or train) a *copy* of the model as it stands: prune it first with
:func:`prunelab.core.pruners.prune` to study a pruned network. Each ``*_conservation`` experiment returns
a tidy DataFrame, drawn by its ``plot_*`` companion in :mod:`prunelab.workbook.conservation_figures`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from ..models.layers import (
    apply_masks,
    keep_pruned_at_zero,
    masked_parameters,
    trainable_parameters,
)
from .masking import update_masks
from .pruners import (
    SCHEDULES,
    Batches,
    FrozenBatchnormStats,
    LossFn,
    PruneSettings,
    compute_scores,
    positive_network,
    prune,
    schedule_keep_counts,
    signed_saliency,
)
from .registry import find_pruner, pruner_names

#: the signed synaptic saliency ∂L/∂θ ⊙ θ (SNIP's score before |·| and normalization)
SALIENCY = "saliency"


# ----------------------------------------------------------------------------------------------- scores


def score_parameters(model: nn.Module, pruner: str, batches: Batches, loss_fn: LossFn = F.cross_entropy,
                     train_mode: bool = False) -> dict[str, Tensor]:
    """Scores of every masked linear / conv weight *and bias* (biases are part of a unit's incoming flow).

    ``pruner`` is any pruner, built in or registered (scored by :func:`prunelab.core.pruners.compute_scores`,
    as pruning would), or :data:`SALIENCY`. The model's weights, masks, mode and batchnorm statistics are
    unchanged. An unknown name raises :class:`~prunelab.errors.UserError` naming the choices.
    """
    if pruner != SALIENCY and find_pruner(pruner) is None:
        raise UserError(f"unknown score '{pruner}'; choose one of: {', '.join((*pruner_names(), SALIENCY))}")
    targets = masked_parameters(model, bias=True)
    if pruner == SALIENCY:
        with FrozenBatchnormStats(model):
            model.train(train_mode)
            return signed_saliency(model, targets, batches, loss_fn)
    settings = PruneSettings(pruner, 0.0, prune_bias=True, train_mode=train_mode)
    return compute_scores(model, settings, targets, batches, loss_fn)


def synaptic_flow(model: nn.Module, input_shape: Sequence[int], train_mode: bool = False) -> float:
    """SynFlow's ``R``: the summed output of the network with every parameter and buffer made positive, on an
    all-ones input, in float64 (exactly what ``synflow`` differentiates)."""
    with FrozenBatchnormStats(model), torch.no_grad():
        model.train(train_mode)
        tensors = positive_network(model)
        ones = torch.ones((1, *input_shape), dtype=torch.float64, device=next(iter(tensors.values())).device)
        return float(torch.func.functional_call(model, tensors, (ones,)).sum())


# ------------------------------------------------------------------------------------------ unit-wise


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The masked linear / conv layers in module order (the chain the laws are stated for)."""
    seen: dict[str, nn.Module] = {}
    for t in masked_parameters(model, bias=True):
        seen.setdefault(t.module_name, t.module)
    return list(seen.items())


def _incoming(scores: dict[str, Tensor], name: str) -> Tensor:
    weight = scores[f"{name}.weight"].double()
    total = weight.reshape(weight.shape[0], -1).sum(1)
    if f"{name}.bias" in scores:
        total = total + scores[f"{name}.bias"].double()
    return total


def _outgoing(scores: dict[str, Tensor], name: str, units: int) -> Tensor | None:
    """Score leaving each of ``units`` inputs of layer ``name``; None when its inputs are not those units."""
    per_input = scores[f"{name}.weight"].double().sum(0)  # [in] or [in, kh, kw]
    if per_input.dim() > 1 and per_input.shape[0] != units:
        return None  # a conv must read exactly the previous layer's channels
    if per_input.numel() % units:
        return None
    return per_input.reshape(units, -1).sum(1)  # a linear layer after a flatten reads channel-major blocks


def _as_list(pruner: str | Sequence[str]) -> list[str]:
    return [pruner] if isinstance(pruner, str) else list(pruner)


def unit_conservation(model: nn.Module, pruner: str | Sequence[str], batches: Batches,
                      loss_fn: LossFn = F.cross_entropy, train_mode: bool = False) -> pd.DataFrame:
    """Per hidden unit (neuron or channel): the score of its incoming and of its outgoing parameters.

    One row per unit between two consecutive masked layers whose shapes connect: ``pruner``, ``layer``
    (the layer whose output the unit is), ``next_layer``, ``unit``, ``score_in`` (weights plus bias),
    ``score_out``. Figure 3 of the paper plots ``score_in`` against ``score_out``.
    """
    rows = []
    chain = weight_layers(model)
    for name in _as_list(pruner):
        scores = score_parameters(model, name, batches, loss_fn, train_mode)
        for (layer, _), (following, _) in zip(chain, chain[1:]):
            score_in = _incoming(scores, layer)
            score_out = _outgoing(scores, following, len(score_in))
            if score_out is None:
                continue
            for unit, (s_in, s_out) in enumerate(zip(score_in.tolist(), score_out.tolist())):
                rows.append({"pruner": name, "layer": layer, "next_layer": following, "unit": unit,
                             "score_in": s_in, "score_out": s_out})
    return pd.DataFrame(rows, columns=["pruner", "layer", "next_layer", "unit", "score_in", "score_out"])


# ------------------------------------------------------------------------------------------ layer-wise


def _layer_rows(model: nn.Module, scores: dict[str, Tensor]) -> list[dict]:
    rows = []
    for layer, _ in weight_layers(model):
        names = [n for n in (f"{layer}.weight", f"{layer}.bias") if n in scores]
        size = sum(scores[n].numel() for n in names)
        total = float(sum(scores[n].double().sum() for n in names))
        rows.append({"layer": layer, "size": size, "inv_size": 1.0 / size, "score_sum": total,
                     "weight_sum": float(scores[f"{layer}.weight"].double().sum()), "average_score": abs(total) / size})
    return rows


def chain_gap(frame: pd.DataFrame, total: str = "score_sum", weights: str = "weight_sum") -> float:
    """How far a chain of layers is from the layer-wise law, relative to the largest layer total.

    By the unit-wise law, the weights of layer ``l + 1`` carry what flows into layer ``l``'s units: its
    weights *and* biases. So ``weights[l + 1] == total[l]`` for consecutive rows of ``frame`` (one group of
    layers in order); without biases that is the paper's "every layer carries the same". Returns
    ``max |weights[l + 1] - total[l]| / max |total|`` (0 for fewer than two layers).
    """
    if len(frame) < 2:
        return 0.0
    t, w = frame[total].to_numpy(), frame[weights].to_numpy()
    scale = float(np.abs(t).max())
    return float(np.abs(w[1:] - t[:-1]).max() / scale) if scale > 0 else 0.0


def layer_conservation(model: nn.Module, pruner: str | Sequence[str], batches: Batches,
                       loss_fn: LossFn = F.cross_entropy, train_mode: bool = False) -> pd.DataFrame:
    """Per masked layer: its total score (the "flux" through it) and the average score per parameter.

    Columns ``pruner``, ``layer``, ``size`` (weights plus bias), ``inv_size``, ``score_sum``, ``weight_sum``
    (the weights' part of it), ``average_score`` (``|score_sum| / size``, the original's figure 4 quantity).
    """
    rows = []
    for name in _as_list(pruner):
        scores = score_parameters(model, name, batches, loss_fn, train_mode)
        rows += [{"pruner": name, **row} for row in _layer_rows(model, scores)]
    return pd.DataFrame(rows, columns=["pruner", "layer", "size", "inv_size", "score_sum", "weight_sum",
                                       "average_score"])


# ------------------------------------------------------------------------------------ iterative magnitude


def _squared_norms(model: nn.Module) -> list[dict]:
    """Per masked layer: Σθ² of its weights and bias (the magnitude "score" IMP implicitly conserves)."""
    scores = {t.name: t.param.detach() ** 2 for t in masked_parameters(model, bias=True)}
    rows = _layer_rows(model, scores)
    for row, (_, module) in zip(rows, weight_layers(model)):
        row["density"] = float(module.weight_mask.float().mean())
    return rows


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Batches, loss_fn: LossFn) -> None:
    model.train()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()


def imp_conservation(model: nn.Module, batches: Batches, levels: int = 3, compression: float = 1.0,
                     epochs: int = 5, lr: float = 1e-3, loss_fn: LossFn = F.cross_entropy,
                     rewind: bool = True) -> pd.DataFrame:
    """Iterative magnitude pruning, recording every layer's Σθ² through each training phase.

    Under gradient flow (plain SGD, small ``lr``, no momentum or weight decay) ``d/dt ‖θ_in‖² = d/dt
    ‖θ_out‖²`` for every hidden unit (the saliency law with ``R`` the loss), so in a bias-free chain every
    layer's ``Σθ²`` changes by the same amount: training moves the small layers' average magnitude most,
    which is why IMP keeps them and avoids layer collapse (the paper's figure 5b). Pruned weights stay at
    zero, so the law holds in every phase.

    Phases: train the dense copy ``epochs`` passes over ``batches``, prune by magnitude to compression
    ``compression * (k + 1) / levels`` (the original multishot's schedule), rewind the kept weights to their
    initial values when ``rewind``, and repeat; after the last prune one more training phase (``levels=0``:
    one training phase and no pruning, the original tool's experiment). ``model`` is not changed. One row
    per (``level``, ``epoch``, ``layer``): ``size``, ``inv_size``, ``density``, ``score_sum`` (Σθ²),
    ``weight_sum`` (the weights' part), ``average_score``, ``delta_sum`` (change of Σθ² since the phase
    began), ``delta_weight_sum`` (the weights' part), ``average_delta``.
    """
    if levels < 0 or epochs < 0:
        raise ValueError("levels and epochs must be at least 0")
    work = copy.deepcopy(model)
    initial = copy.deepcopy(work.state_dict())
    rows: list[dict] = []
    for level in range(levels + 1):
        optimizer = torch.optim.SGD(trainable_parameters(work), lr=lr)
        keep_pruned_at_zero(optimizer, work)
        start = None
        for epoch in range(epochs + 1):
            if epoch:
                _train_epoch(work, optimizer, batches, loss_fn)
            now = _squared_norms(work)
            start = start or now
            for row, first in zip(now, start):
                delta = row["score_sum"] - first["score_sum"]
                rows.append({"level": level, "epoch": epoch, **row, "delta_sum": delta,
                             "delta_weight_sum": row["weight_sum"] - first["weight_sum"],
                             "average_delta": delta / row["size"]})
        if level == levels:
            break
        settings = PruneSettings("mag", compression * (level + 1) / levels, rounds=1)
        prune(work, settings, batches, loss_fn)
        if rewind:
            masks = {k: v for k, v in work.state_dict().items() if k.endswith("_mask")}
            work.load_state_dict({**initial, **masks})
            apply_masks(work)
    columns = ["level", "epoch", "layer", "size", "inv_size", "density", "score_sum", "weight_sum",
               "average_score", "delta_sum", "delta_weight_sum", "average_delta"]
    return pd.DataFrame(rows, columns=columns)


# ----------------------------------------------------------------------------------------- schedules


def schedule_conservation(model: nn.Module, batches: Batches, compressions: Sequence[float],
                          rounds: Sequence[int], schedules: Sequence[str] = SCHEDULES,
                          scope: str = "global") -> pd.DataFrame:
    """Single-shot against iterative SynFlow: the largest fraction of the flow cut in any one round.

    For each schedule, compression and number of rounds the model (a copy, from its current state) is pruned
    with ``synflow``; every round records ``cut / R``: the total score of the parameters the round leaves
    pruned over the synaptic flow ``R`` (:func:`synaptic_flow`). In a bias-free chain each layer carries all
    of ``R``, so a round whose ratio stays below 1 cannot remove a whole layer: enough rounds keep the ratio
    small and avoid layer collapse (the paper's figure 7). One row per (``schedule``, ``compression``,
    ``rounds``): ``max_cut_ratio``, ``density`` (kept fraction), ``min_layer_density``, ``collapsed``
    (layers left with no weight).
    """
    input_shape = tuple(batches[0][0].shape[1:])
    snapshot = copy.deepcopy(model.state_dict())
    work = copy.deepcopy(model)
    rows = []
    for schedule in schedules:
        for compression in compressions:
            for count in rounds:
                work.load_state_dict(snapshot)
                rows.append({"schedule": schedule, "compression": float(compression), "rounds": int(count),
                             **_prune_tracking_cuts(work, batches, float(compression), int(count), schedule, scope,
                                                    input_shape)})
    return pd.DataFrame(rows, columns=["schedule", "compression", "rounds", "max_cut_ratio", "density",
                                       "min_layer_density", "collapsed"])


def _prune_tracking_cuts(model: nn.Module, batches: Batches, compression: float, rounds: int, schedule: str,
                         scope: str, input_shape: tuple[int, ...]) -> dict:
    settings = PruneSettings("synflow", compression, rounds=rounds, schedule=schedule, scope=scope)
    settings.validate()
    targets = masked_parameters(model)
    total = sum(t.mask.numel() for t in targets)
    ratios = []
    for keep in schedule_keep_counts(total, compression, rounds, schedule):
        apply_masks(model)
        flow = synaptic_flow(model, input_shape)
        scores = compute_scores(model, settings, targets, batches)
        update_masks(targets, scores, keep, scope)
        cut = sum(float((scores[t.name].double() * (1 - t.mask.double())).sum()) for t in targets)
        ratios.append(cut / flow if flow > 0 else float("inf"))
    apply_masks(model)
    densities = [float(t.mask.float().mean()) for t in targets]
    kept = sum(float(t.mask.sum()) for t in targets)
    return {"max_cut_ratio": max(ratios), "density": kept / total, "min_layer_density": min(densities),
            "collapsed": sum(d == 0 for d in densities)}


