"""Whether any path of kept weights still joins a pruned network's input to its output.

A network can keep weights in every layer and still compute a constant: when the weights a layer kept all
lead to units cut off from the input, or from the output, no chain of kept weights crosses the network, and
whatever the training does, every input gets the same answer (layer collapse in the wider sense of the
SynFlow paper). The check runs the network itself, so residual sums and shortcuts count as they compute: in
float64, with every kept weight set to 1, every bias to 0 and batch norm made the identity, and each layer's
output cut back to 1 wherever it is positive (so nothing overflows or underflows, however deep the network),
it compares the output for an input of ones with the output for an input of zeros. They differ exactly when
such a path exists, for networks whose activations pass positive values on and keep zero at zero (ReLU, max
and average pooling: every model prunelab ships).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .inference import strip_masks


def _path_network(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` (masks folded into the weights) with kept weights 1, biases 0, batch norm's
    running statistics those of the identity, and every leaf module's output 1 where positive."""
    plain = strip_masks(model).double().eval()
    with torch.no_grad():
        for name, tensor in [*plain.named_parameters(), *plain.named_buffers()]:
            last = name.rsplit(".", 1)[-1]
            if last in ("bias", "running_mean"):
                tensor.zero_()
            elif last == "running_var":
                tensor.fill_(1.0)
            elif tensor.is_floating_point():
                tensor.copy_((tensor != 0).to(tensor.dtype))
    for module in plain.modules():
        if next(module.children(), None) is None:
            module.register_forward_hook(_reached)
    return plain


def _reached(module: nn.Module, inputs, output):
    return (output > 0).to(output.dtype) if isinstance(output, Tensor) else output


@torch.no_grad()
def input_reaches_output(model: nn.Module, input_shape: tuple[int, ...]) -> bool:
    """True when some path of kept (non-zero) weights joins the input of ``model`` to its output.

    ``input_shape``: one example's shape, (1, 28, 28) for MNIST. ``model`` itself is not changed.
    """
    plain = _path_network(model)
    device = next(plain.parameters()).device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    return bool((plain(ones) - plain(torch.zeros_like(ones))).abs().sum() > 0)
