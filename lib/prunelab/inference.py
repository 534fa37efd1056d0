"""Inference-time variants of a trained pruned model, and timing them fairly.

* :func:`strip_masks`: the same network with plain ``nn`` layers and no masks at all (the reference
  for "masks cost nothing at inference").
* :func:`fuse_conv_bn`: every convolution followed by a batchnorm folded into one convolution (eval only).
* :func:`time_inference`: wall time of a pass over a list of batches, device synchronised, median of
  repeats after a warm-up.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .models import layers as L
from .train import synchronize


def _plain_twin(module: nn.Module) -> nn.Module | None:
    """A plain nn module with the same configuration and weights as a masked one (None: not masked)."""
    if isinstance(module, L.Conv2d):
        twin = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                         module.padding, module.dilation, module.groups, module.bias is not None)
    elif isinstance(module, L.Linear):
        twin = nn.Linear(module.in_features, module.out_features, module.bias is not None)
    elif isinstance(module, L.BatchNorm2d):
        twin = nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
    elif isinstance(module, L.BatchNorm1d):
        twin = nn.BatchNorm1d(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
    elif isinstance(module, L.IDENTITY_TYPES):
        return nn.Identity() if module.scale_is_one else None
    else:
        return None
    state = {k: v for k, v in module.state_dict().items() if not k.endswith("_mask")}
    twin.load_state_dict(state)
    return twin.to(next(module.parameters()).device)


def strip_masks(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose masked layers are plain ``nn`` layers (pruned weights stay zero)."""
    L.apply_masks(model)
    plain = copy.deepcopy(model)
    for name, module in list(plain.named_modules()):
        twin = _plain_twin(module)
        if twin is not None and name:
            parent_name, _, child = name.rpartition(".")
            setattr(plain.get_submodule(parent_name) if parent_name else plain, child, twin)
    return plain.train(model.training)


CONV_BN_PAIRS = (("conv", "bn"), ("conv1", "bn1"), ("conv2", "bn2"))


@torch.no_grad()
def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """An eval-mode copy with each conv + batchnorm pair folded into one conv (ResNet and VGG layouts).

    Folding scales each output channel of the conv, so weights pruned to zero stay zero.
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        for conv_name, bn_name in CONV_BN_PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, _fused(conv, bn))
                setattr(module, bn_name, nn.Identity())
        if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d):
            module[0] = _fused(module[0], module[1])
            module[1] = nn.Identity()
    return fused


def _fused(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    plain = _plain_twin(conv) if isinstance(conv, L.Conv2d) else conv
    plain_bn = _plain_twin(bn) if isinstance(bn, L.BatchNorm2d) else bn
    return fuse_conv_bn_eval(plain.eval(), plain_bn.eval())


def time_inference(model: Callable[[Tensor], Tensor], batches: Sequence[Tensor], device, repeats: int = 5,
                   warmup: int = 1) -> float:
    """Median seconds of one pass of ``model`` over ``batches`` (no grad, device synchronised)."""
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(batches[0])
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            for x in batches:
                model(x)
            synchronize(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times)
