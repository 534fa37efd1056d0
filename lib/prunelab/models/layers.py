"""Masked layers whose masks are applied once, not on every forward.

Each masked layer carries a ``<param>_mask`` buffer for every maskable parameter. Pruning writes the
masks and then calls :func:`apply_masks`, which zeroes the pruned entries *in the parameter itself*.
From then on the forward pass is the plain ``F.linear`` / ``F.conv2d`` / ``F.batch_norm`` of the parent
class: no mask multiply, no extra kernels. :func:`keep_pruned_at_zero` hooks an optimizer so that
pruned entries receive no gradient and are re-zeroed after every step (weight decay, momentum and
Adam's moment estimates would otherwise move them).

The original tool's design (mask multiplied in every forward) is kept as an opt-in mode,
``layer.mask_in_forward = True`` or :func:`set_mask_in_forward`, so that the two designs can be
compared on the same weights (tests, traces and benchmarks do that).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class MaskedMixin:
    """Shared mask handling. ``MASKED`` lists the parameter names that carry a mask."""

    MASKED: tuple[str, ...] = ("weight", "bias")
    mask_in_forward: bool = False
    #: names whose mask prunes something, refreshed by apply_masks (so optimizer hooks need no sync)
    pruned_names: tuple[str, ...] = ()

    def _register_masks(self) -> None:
        for name in self.MASKED:
            param = getattr(self, name, None)
            if isinstance(param, Tensor):
                self.register_buffer(f"{name}_mask", torch.ones_like(param, dtype=torch.float32))

    def masked_names(self) -> list[str]:
        return [n for n in self.MASKED if isinstance(getattr(self, n, None), Tensor)]

    def mask_of(self, name: str) -> Tensor:
        return getattr(self, f"{name}_mask")

    @torch.no_grad()
    def apply_masks(self) -> None:
        pruned = []
        for name in self.masked_names():
            mask = self.mask_of(name)
            getattr(self, name).mul_(mask.to(getattr(self, name).dtype))
            if not bool(torch.all(mask == 1)):
                pruned.append(name)
        self.pruned_names = tuple(pruned)

    def _effective(self, name: str) -> Tensor | None:
        param = getattr(self, name, None)
        if param is None or not self.mask_in_forward:
            return param
        return param * self.mask_of(name)


class Linear(MaskedMixin, nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self._register_masks()

    def forward(self, x: Tensor) -> Tensor:
        if not self.mask_in_forward:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, self._effective("weight"), self._effective("bias"))


class Conv2d(MaskedMixin, nn.Conv2d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self._register_masks()

    def forward(self, x: Tensor) -> Tensor:
        if not self.mask_in_forward:
            return self._conv_forward(x, self.weight, self.bias)
        return self._conv_forward(x, self._effective("weight"), self._effective("bias"))


class _MaskedBatchNorm(MaskedMixin):
    def forward(self, x: Tensor) -> Tensor:
        if not (self.mask_in_forward and self.affine):
            return super().forward(x)
        # Same arithmetic as nn.BatchNorm's forward, with the masked affine parameters.
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean if not self.training or self.track_running_stats else None,
                            self.running_var if not self.training or self.track_running_stats else None,
                            self._effective("weight"), self._effective("bias"),
                            use_batch_stats, momentum, self.eps)


class BatchNorm1d(_MaskedBatchNorm, nn.BatchNorm1d):
    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self._register_masks()


class BatchNorm2d(_MaskedBatchNorm, nn.BatchNorm2d):
    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self._register_masks()


class _Identity(MaskedMixin, nn.Module):
    """A per-channel scale on a residual connection, initialized to one.

    As in the original tool it is a parameter that is not trained and is prunable only on request
    (``prune_residual``). While every scale is exactly one the forward returns its input unchanged,
    which saves one elementwise kernel per residual block; ``scale_is_one`` is refreshed whenever the
    masks are applied or the weights re-initialized.
    """

    MASKED = ("weight",)
    SHAPE_SUFFIX: tuple[int, ...] = ()

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.weight = nn.Parameter(torch.ones(num_features, *self.SHAPE_SUFFIX))
        self._register_masks()
        self.scale_is_one = True

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(1.0)
        self.scale_is_one = True

    def apply_masks(self) -> None:
        super().apply_masks()
        self.scale_is_one = bool(torch.all(self.weight == 1))

    def forward(self, x: Tensor) -> Tensor:
        if self.mask_in_forward:
            return x * self._effective("weight")
        return x if self.scale_is_one else x * self.weight


class Identity1d(_Identity):
    SHAPE_SUFFIX = ()


class Identity2d(_Identity):
    SHAPE_SUFFIX = (1, 1)


BATCHNORM_TYPES = (BatchNorm1d, BatchNorm2d)
IDENTITY_TYPES = (Identity1d, Identity2d)
WEIGHT_TYPES = (Linear, Conv2d)


@dataclass(frozen=True)
class MaskedParam:
    """One prunable parameter: where it lives, the tensor, and its mask buffer."""

    module_name: str
    param_name: str
    module: nn.Module
    param: Tensor
    mask: Tensor

    @property
    def name(self) -> str:
        return f"{self.module_name}.{self.param_name}" if self.module_name else self.param_name


def is_prunable(module: nn.Module, batchnorm: bool = False, residual: bool = False) -> bool:
    """Linear and conv layers always; batchnorm and residual scales only when asked (original rule)."""
    if isinstance(module, WEIGHT_TYPES):
        return True
    if batchnorm and isinstance(module, BATCHNORM_TYPES):
        return bool(module.affine)
    if residual and isinstance(module, IDENTITY_TYPES):
        return True
    return False


def masked_parameters(model: nn.Module, bias: bool = False, batchnorm: bool = False,
                      residual: bool = False) -> list[MaskedParam]:
    """The parameters a pruner scores, in module order. Biases only when ``bias`` is true."""
    found = []
    for module_name, module in model.named_modules():
        if not is_prunable(module, batchnorm, residual):
            continue
        for param_name in module.masked_names():
            if param_name == "bias" and not bias:
                continue
            found.append(MaskedParam(module_name, param_name, module, getattr(module, param_name),
                                     module.mask_of(param_name)))
    return found


def masked_modules(model: nn.Module) -> Iterator[tuple[str, MaskedMixin]]:
    for name, module in model.named_modules():
        if isinstance(module, MaskedMixin):
            yield name, module


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter except the residual scales, which the original tool never trains."""
    params = []
    for module in model.modules():
        if isinstance(module, IDENTITY_TYPES):
            continue
        params.extend(module.parameters(recurse=False))
    return params


@torch.no_grad()
def apply_masks(model: nn.Module) -> None:
    """Zero every pruned entry in the parameters themselves."""
    for _, module in masked_modules(model):
        module.apply_masks()


def set_mask_in_forward(model: nn.Module, enabled: bool) -> None:
    """Switch every masked layer between our design (False) and the original one (True)."""
    for _, module in masked_modules(model):
        module.mask_in_forward = enabled


def _multiply_in_place(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``tensor *= mask`` for each (tensor, mask) pair, the mask cast to the tensor's dtype, in one foreach call."""
    if pairs:
        torch._foreach_mul_([t for t, _ in pairs], [mask.to(t.dtype) for t, mask in pairs])


def keep_pruned_at_zero(optimizer: torch.optim.Optimizer, model: nn.Module):
    """Hook ``optimizer`` so that pruned entries get no gradient and stay exactly zero.

    Before each step the gradients of pruned entries are zeroed: the kept entries then see exactly the
    gradients and optimizer state of the original design. After each step the masks are re-applied,
    because momentum or moment estimates from before pruning (pre-training) could still move a pruned
    entry. Only masks that prune something (as of the last :func:`apply_masks`) are touched, so the
    hooks add no device synchronization. Returns the two hook handles.
    """
    modules = [module for _, module in masked_modules(model)]

    def active():
        for module in modules:
            for name in module.pruned_names:
                yield getattr(module, name), module.mask_of(name)

    # One foreach multiply per hook instead of one multiply per layer: on a GPU each multiply is a kernel
    # launch, and a ResNet20 step would otherwise launch about 40 of them for the masks alone.
    def before_step(opt, args, kwargs):
        _multiply_in_place([(param.grad, mask) for param, mask in active() if param.grad is not None])

    def after_step(opt, args, kwargs):
        with torch.no_grad():
            _multiply_in_place(list(active()))

    return (optimizer.register_step_pre_hook(before_step), optimizer.register_step_post_hook(after_step))
