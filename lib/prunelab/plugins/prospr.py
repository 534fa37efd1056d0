"""ProsPr, prospect pruning (Alizadeh et al., ICLR 2022), registered as the pruner ``prospr``.

A weight's score is how much the loss after a few steps of training depends on keeping it: with a mask
``c`` of ones multiplied into the initial weights, ``w_0 = c * w``, ``M`` steps of gradient descent
``w_{k+1} = w_k - lr * dL(w_k)/dw_k`` on the pruning data, and the score ``|dL(w_M)/dc|``, differentiated
through the steps (second order). With no steps it is SNIP's ``|dL/dw * w|`` before normalization.

The semantics follow the authors' code (github.com/mil-ad/prospr, ``prospr.prune`` and its command line's
defaults): every parameter takes the steps (biases and batchnorm's too), plain SGD of learning rate 0.1
without momentum for three steps, the same data for every step and for the final loss, and the full
meta-gradient rather than its first-order approximation. Where prunelab differs, and why, is in
docs/pruners.md: the data is the run's pruning batches (``--prune-dataset-ratio`` times the classes, drawn at random)
where the authors draw one batch of 128 training images, and batchnorm follows ``--prune-train-mode`` as it
does for every pruner, where the authors always score in training mode. Over several rounds the pruned
weights stay at zero through the steps. This module uses only prunelab's public registration.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from prunelab import register_pruner

#: the authors' command-line defaults: three inner steps of plain SGD at learning rate 0.1
STEPS = 3
LEARNING_RATE = 0.1


def prospr_scores(model, targets, batches, loss_fn, steps: int = STEPS, lr: float = LEARNING_RATE):
    """``|dL(w_steps)/dc|`` for each target (the prunable parameters), after ``steps`` steps of gradient descent
    at learning rate ``lr`` from the masked initial weights. ``L`` is the mean of ``loss_fn`` over ``batches``.
    The model's own parameters are not changed; targets already pruned keep a zero weight and score zero."""
    gates = {t.name: torch.ones_like(t.param, requires_grad=True) for t in targets}
    alive = {t.name: t.mask.to(t.param.dtype) for t in targets}
    weights = {name: p.detach() * gates[name] if name in gates else p.detach().requires_grad_()
               for name, p in model.named_parameters()}

    def loss(current: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(loss_fn(functional_call(model, current, (x,)), y) for x, y in batches) / len(batches)

    for _ in range(steps):
        grads = torch.autograd.grad(loss(weights), list(weights.values()), create_graph=True, materialize_grads=True)
        weights = {name: w - lr * g * alive.get(name, 1.0) for (name, w), g in zip(weights.items(), grads)}
    meta = torch.autograd.grad(loss(weights), [gates[t.name] for t in targets], materialize_grads=True)
    return {t.name: g.detach().abs() for t, g in zip(targets, meta)}


def score_prospr(model, targets, batches, loss_fn):
    """ProsPr with the authors' defaults, :data:`STEPS` steps at :data:`LEARNING_RATE`."""
    return prospr_scores(model, targets, batches, loss_fn)


register_pruner("prospr", score_prospr, label="ProsPr", colour="#17becf", version="1")
