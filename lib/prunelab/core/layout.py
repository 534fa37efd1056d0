"""Which memory layout a model runs in: the one rule training, the estimate and the records made from a
run (sparse kernels, AMP timing) share, so a measurement sees the model as its run trained it."""

from __future__ import annotations

import torch


def uses_channels_last(model: torch.nn.Module) -> bool:
    """Whether ``model`` runs in channels-last memory format: every network with a 2-d convolution does
    (its convolutions are faster so on CPUs and on tensor cores); fully connected ones have no 4-d tensors."""
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
