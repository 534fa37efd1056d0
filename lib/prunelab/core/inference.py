"""Inference-time variants of a trained pruned model, each computing what the masked model computes.

* :func:`strip_masks`: the same network with plain ``nn`` layers and no masks at all (the reference
  for "masks cost nothing at inference").
* :func:`fuse_conv_bn`: every convolution followed by a batchnorm folded into one convolution (eval only).
* :func:`weight_masks`: the keep-mask of every conv / linear weight, of a masked or a plain model.

Timing them is :mod:`prunelab.core.timing`'s job (``core.evaluation.time_inference`` for a test-set pass).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..models import layers as L


def _plain_conv(m: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                     m.bias is not None, m.padding_mode, device=m.weight.device, dtype=m.weight.dtype)


def _plain_linear(m: nn.Linear) -> nn.Linear:
    return nn.Linear(m.in_features, m.out_features, m.bias is not None, device=m.weight.device,
                     dtype=m.weight.dtype)


def _plain_batchnorm(m: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    cls = nn.BatchNorm1d if isinstance(m, nn.BatchNorm1d) else nn.BatchNorm2d
    return cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)


@torch.no_grad()
def _plain_copy(module: L.MaskedMixin) -> nn.Module:
    """A standard nn layer with the masked layer's values, pruned entries zeroed (in either mask mode)."""
    if isinstance(module, L.IDENTITY_TYPES):
        if bool(torch.all(module.weight * module.mask_of("weight") == 1)):
            return nn.Identity()
        return copy.deepcopy(module)  # a real per-channel scale: kept as it is
    if isinstance(module, L.Conv2d):
        plain = _plain_conv(module)
    elif isinstance(module, L.Linear):
        plain = _plain_linear(module)
    else:
        plain = _plain_batchnorm(module)
    masked = set(module.masked_names())
    state = {}
    for name, value in module.state_dict().items():
        if name.endswith("_mask"):
            continue
        state[name] = value * module.mask_of(name) if name in masked else value
    plain.load_state_dict(state)
    plain.to(device=next(iter(state.values())).device)
    plain.train(module.training)
    return plain


def strip_masks(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose masked layers are standard ``nn`` layers without mask buffers.

    Weights are multiplied by their masks, so pruned entries are zero even in the original design's
    mode (``mask_in_forward``); ``model`` itself is not changed. This is the reference for "masks cost
    nothing at inference", and quantization flows need it because they match layers by exact type.
    """
    plain = copy.deepcopy(model)
    if isinstance(plain, L.MaskedMixin):
        return _plain_copy(plain)
    _replace_masked(plain)
    return plain


def _replace_masked(parent: nn.Module) -> None:
    for name, child in parent.named_children():
        if isinstance(child, L.MaskedMixin):
            setattr(parent, name, _plain_copy(child))
        else:
            _replace_masked(child)


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
    plain = _plain_copy(conv) if isinstance(conv, L.Conv2d) else conv
    plain_bn = _plain_copy(bn) if isinstance(bn, L.BatchNorm2d) else bn
    return fuse_conv_bn_eval(plain.eval(), plain_bn.eval())


def weight_masks(model: nn.Module) -> dict[str, Tensor]:
    """Boolean keep-mask of every conv/linear weight, keyed by layer name (``<layer>`` for ``<layer>.weight``).

    Masked layers give their ``weight_mask`` buffer; plain layers their non-zero pattern.
    """
    masks = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        if isinstance(module, L.MaskedMixin):
            masks[name] = module.mask_of("weight") != 0
        else:
            masks[name] = module.weight.detach() != 0
    return masks
