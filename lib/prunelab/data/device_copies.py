"""One copy of a data split's tensor on a device for every loader of the process that holds equal data."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable

import torch


class DeviceCopy:
    """A split's tensor on a device, the CPU tensor it was copied from (to compare others with), and tensors
    made from it once for every loader that shares it (:meth:`derived`)."""

    def __init__(self, source: torch.Tensor, tensor: torch.Tensor) -> None:
        self.source, self.tensor = source, tensor
        self._derived: dict[Hashable, torch.Tensor] = {}

    def derived(self, key: Hashable, make: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``make(self.tensor)``, made on the first call with ``key`` and shared by every later one (the loaders
        never write to it)."""
        if key not in self._derived:
            self._derived[key] = make(self.tensor)
        return self._derived[key]


#: the copies the loaders of this process hold, by device, dtype, shape and a sample of the values;
#: an entry lives while a loader holds it
_DEVICE_COPIES: weakref.WeakValueDictionary[tuple, DeviceCopy] = weakref.WeakValueDictionary()


def device_copy(tensor: torch.Tensor, device: torch.device) -> DeviceCopy:
    """``tensor`` on ``device``, one copy shared by every loader of the process whose tensor is equal (the
    loaders never write to it). A fused group opens all its runs before training, and a copy per run of
    CIFAR-10 (185 MB) would fill a GPU before its first step. On the CPU the first such tensor itself: what the
    loaders derive from it (normalized inputs, four times its size) is then made once too."""
    flat = tensor.reshape(-1)
    sample = flat[::max(1, flat.numel() // 4096)]
    key = (str(device), tensor.dtype, tuple(tensor.shape), hash(sample.cpu().numpy().tobytes()))
    found = _DEVICE_COPIES.get(key)
    if found is not None and torch.equal(found.source, tensor):
        return found
    made = DeviceCopy(tensor, tensor.to(device))
    if found is None:
        _DEVICE_COPIES[key] = made
    return made
