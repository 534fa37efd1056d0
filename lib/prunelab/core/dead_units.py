"""Removing the neurons and channels that carry nothing, exactly.

A unit (a linear layer's output neuron, a convolution's output channel) carries nothing when all its
outgoing weights are pruned (nothing reads it), or all its incoming ones are (it outputs a constant, its bias
through what follows elementwise; the next layer's ``c * sum(W[:, unit])`` is folded into that layer's bias
before the unit goes). Pruning at initialization leaves many such units at high compression, and removing
them shrinks the dense layers on both sides, which speeds up every kernel.

Only what is provably exact is touched, on a plain model (:func:`prunelab.core.inference.strip_masks`) in
eval mode:

* consecutive layers of an ``nn.Sequential`` with only elementwise modules and per-channel batchnorms
  between them, and ``Conv2d -> ... -> Flatten -> Linear`` (a channel is ``H * W`` consecutive columns);
* inside a CIFAR ResNet block, ``conv1 -> bn1 -> relu -> conv2`` (``conv2`` feeds a residual sum, so its
  own channels stay).

A constant channel is folded into a following convolution only when the constant is zero or that
convolution pads nothing (zero padding makes a constant image non-constant at the borders). Grouped
convolutions, other padding modes and residual sums stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from ..models import layers as L
from ..models.lottery import ResidualBlock

#: modules that act on each element alone (in eval mode), so a unit's constant output stays per unit
ELEMENTWISE = (nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
               nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
               nn.Tanhshrink, nn.Dropout)
PER_CHANNEL = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class Slot:
    """Where a module lives (parent and attribute), so that a link still finds it after a replacement."""

    parent: nn.Module
    attr: str

    def get(self) -> nn.Module:
        return getattr(self.parent, self.attr)

    def set(self, module: nn.Module) -> None:
        setattr(self.parent, self.attr, module)


@dataclass(frozen=True)
class Link:
    """A producer layer whose every output unit reaches ``consumer`` through per-unit modules only.

    ``block``: consumer input columns per producer unit (``H * W`` after a Flatten, else 1);
    ``activation``: an elementwise function the parent's forward applies after ``between`` (ResNet's relu).
    """

    name: str
    producer: Slot
    between: tuple[Slot, ...]
    consumer: Slot
    block: int = 1
    activation: nn.Module | None = None


def _is_weight_layer(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


def _flattens_channels(module: nn.Module) -> bool:
    return isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1


def _sequential_link(seq: nn.Sequential, prefix: str, start: int) -> Link | None:
    """The link from ``seq[start]`` to the next weight layer, if everything between is per unit."""
    children = list(seq.named_children())
    name, producer = children[start]
    between, flattened = [], False
    norm = nn.BatchNorm2d if isinstance(producer, nn.Conv2d) else nn.BatchNorm1d
    for attr, module in children[start + 1:]:
        if isinstance(module, ELEMENTWISE) or (isinstance(module, norm) and not flattened):
            between.append(Slot(seq, attr))
        elif _flattens_channels(module) and isinstance(producer, nn.Conv2d) and not flattened:
            flattened = True
        elif isinstance(module, nn.Linear) and (flattened or isinstance(producer, nn.Linear)):
            block = module.in_features // producer.out_channels if flattened else 1
            if flattened and module.in_features % producer.out_channels:
                return None
            return Link(f"{prefix}{name}", Slot(seq, name), tuple(between), Slot(seq, attr), block)
        elif isinstance(module, nn.Conv2d) and _is_weight_layer(module) and isinstance(producer, nn.Conv2d) \
                and not flattened:
            return Link(f"{prefix}{name}", Slot(seq, name), tuple(between), Slot(seq, attr))
        else:
            return None
    return None


def find_links(model: nn.Module) -> list[Link]:
    """Every producer -> consumer pair in ``model`` where removing a unit is provably exact."""
    links = []
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.Sequential):
            for index, child in enumerate(module):
                if _is_weight_layer(child) and (link := _sequential_link(module, prefix, index)) is not None:
                    links.append(link)
        elif isinstance(module, ResidualBlock) and isinstance(module.bn1, PER_CHANNEL) \
                and _is_weight_layer(module.conv1) and _is_weight_layer(module.conv2):
            links.append(Link(f"{prefix}conv1", Slot(module, "conv1"), (Slot(module, "bn1"),),
                              Slot(module, "conv2"), activation=nn.ReLU()))
    return links


def _unit_constants(link: Link) -> Tensor:
    """What each producer unit outputs after ``between`` when its incoming weights are all zero."""
    producer = link.producer.get()
    units = producer.weight.shape[0]
    value = producer.bias.detach() if producer.bias is not None else producer.weight.new_zeros(units)
    value = value.view(1, units, 1, 1) if isinstance(producer, nn.Conv2d) else value.view(1, units)
    for slot in link.between:
        value = slot.get()(value)
    if link.activation is not None:
        value = link.activation(value)
    return value.flatten()


def _consumer_columns(link: Link, units: Tensor) -> Tensor:
    """Consumer input columns (linear) or channels (conv) that belong to ``units``."""
    if link.block == 1:
        return units
    offsets = torch.arange(link.block, device=units.device)
    return (units.unsqueeze(1) * link.block + offsets).flatten()


def _unit_weights(consumer: nn.Module, block: int) -> Tensor:
    """The consumer's weights grouped per producer unit: (out, units, everything read from one unit)."""
    weight = consumer.weight.detach()
    return weight.reshape(weight.shape[0], weight.shape[1] // block, -1)


def _pads(consumer: nn.Module) -> bool:
    return isinstance(consumer, nn.Conv2d) and any(p != 0 for p in consumer.padding)


def _rebuilt_linear(old: nn.Linear, weight: Tensor, bias: Tensor | None) -> nn.Linear:
    new = nn.Linear(weight.shape[1], weight.shape[0], bias is not None, device=weight.device, dtype=weight.dtype)
    _load(new, weight, bias)
    return new.train(old.training)


def _rebuilt_conv(old: nn.Conv2d, weight: Tensor, bias: Tensor | None) -> nn.Conv2d:
    new = nn.Conv2d(weight.shape[1], weight.shape[0], old.kernel_size, old.stride, old.padding, old.dilation,
                    1, bias is not None, old.padding_mode, device=weight.device, dtype=weight.dtype)
    _load(new, weight, bias)
    return new.train(old.training)


def _load(module: nn.Module, weight: Tensor, bias: Tensor | None) -> None:
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias is not None:
            module.bias.copy_(bias)


def _rebuilt(old: nn.Module, weight: Tensor, bias: Tensor | None) -> nn.Module:
    return (_rebuilt_linear if isinstance(old, nn.Linear) else _rebuilt_conv)(old, weight, bias)


def _sliced_batchnorm(bn: nn.modules.batchnorm._BatchNorm, keep: Tensor) -> nn.Module:
    dtype = next((t.dtype for t in (bn.running_mean, bn.weight) if t is not None), None)
    new = type(bn)(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats, device=keep.device,
                   dtype=dtype)
    state = {k: (v[keep] if v.dim() == 1 else v) for k, v in bn.state_dict().items()}
    new.load_state_dict(state)
    return new.train(bn.training)


def removable_units(link: Link, align: int = 1) -> Tensor:
    """Boolean per producer unit: outgoing weights all pruned, or incoming all pruned and foldable.

    At least one unit stays, and the units kept are rounded up to a multiple of ``align`` (never past the
    layer's width) by keeping some removable ones, which is always exact: GPU GEMM and convolution kernels
    take their fastest paths (tensor cores, vector loads) on widths that are multiples of 8, and on an H100
    shrinking layers to odd widths gained nothing (:mod:`prunelab.core.sparse` times the removal anyway).
    """
    producer, consumer = link.producer.get(), link.consumer.get()
    dead_in = (producer.weight.detach() != 0).flatten(1).sum(1) == 0
    grouped = _unit_weights(consumer, link.block)
    dead_out = (grouped != 0).sum((0, 2)) == 0
    constants = _unit_constants(link)
    foldable = torch.isfinite(constants) & ((constants == 0) | (not _pads(consumer)))
    remove = dead_out | (dead_in & foldable)
    kept = len(remove) - int(remove.sum())
    spare = min(len(remove), max(1, -(-kept // align) * align)) - kept
    if spare > 0:
        remove[remove.nonzero().flatten()[-spare:]] = False
    return remove


@torch.no_grad()
def remove_units(link: Link, remove: Tensor) -> int:
    """Remove the ``remove`` units of ``link``'s producer, folding constant ones into the consumer's bias."""
    count = int(remove.sum())
    if count == 0:
        return 0
    producer, consumer = link.producer.get(), link.consumer.get()
    keep, gone = (~remove).nonzero().flatten(), remove.nonzero().flatten()
    grouped = _unit_weights(consumer, link.block)
    constants = _unit_constants(link)[gone]
    live_gone = (grouped[:, gone] != 0).any(0).any(1)  # read by the consumer (others may be inf: not folded)
    shift = (grouped[:, gone][:, live_gone].sum(2) * constants[live_gone]).sum(1)
    bias = consumer.bias.detach() if consumer.bias is not None else None
    if bool((shift != 0).any()):
        bias = shift if bias is None else bias + shift
    weight = consumer.weight.detach().index_select(1, _consumer_columns(link, keep))
    link.consumer.set(_rebuilt(consumer, weight, bias))
    producer_bias = None if producer.bias is None else producer.bias.detach()[keep]
    link.producer.set(_rebuilt(producer, producer.weight.detach()[keep], producer_bias))
    for slot in link.between:
        if isinstance(slot.get(), PER_CHANNEL):
            slot.set(_sliced_batchnorm(slot.get(), keep))
    return count


def _masked(model: nn.Module) -> Iterator[str]:
    return (name for name, module in model.named_modules() if isinstance(module, L.MaskedMixin))


def remove_dead_units(model: nn.Module, align: int = 1) -> dict[str, int]:
    """Remove, in place, every unit of ``model`` that provably carries nothing; return the count per layer.

    Runs to a fixed point: removing a unit's column from the next layer can leave a row of that layer
    empty, which makes one of its units dead in turn (and the other way round). ``model`` must be a plain
    model (no masked layers: strip them first) in eval mode, since batchnorm and dropout are treated as
    their eval-mode per-unit maps. ``align``: keep each layer's width a multiple of this where it shrinks
    (see :func:`removable_units`; 8 suits GPUs).
    """
    if model.training:
        raise ValueError("remove_dead_units needs a model in eval mode (batchnorm and dropout as fixed maps).")
    if (masked := next(_masked(model), None)) is not None:
        raise ValueError(f"layer {masked!r} is a masked layer; call strip_masks first.")
    links = find_links(model)
    removed = {link.name: 0 for link in links}
    changed = True
    while changed:
        changed = False
        for link in links:
            count = remove_units(link, removable_units(link, align))
            removed[link.name] += count
            changed = changed or count > 0
    return {name: count for name, count in removed.items() if count}
