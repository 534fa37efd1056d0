"""The original tool's ``default`` model class: a fully connected and a small convolutional network.

Both keep PyTorch's default initialization, as the original does, and the same module layout (an
``nn.Sequential``), so layer names such as ``1.weight`` match the original tool's summaries.
"""

from __future__ import annotations

import math

import torch.nn as nn

from . import layers


def _classifier(in_features: int, num_classes: int, dense: bool) -> nn.Module:
    return nn.Linear(in_features, num_classes) if dense else layers.Linear(in_features, num_classes)


def fc(input_shape, num_classes: int, dense_classifier: bool = False, depth: int = 6, width: int = 100,
       nonlinearity: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """``depth`` linear layers of ``width`` units (the last one is the classifier)."""
    modules: list[nn.Module] = [nn.Flatten(), layers.Linear(math.prod(input_shape), width), nonlinearity()]
    for _ in range(depth - 2):
        modules += [layers.Linear(width, width), nonlinearity()]
    modules.append(_classifier(width, num_classes, dense_classifier))
    return nn.Sequential(*modules)


def conv(input_shape, num_classes: int, dense_classifier: bool = False, depth: int = 3, width: int = 32,
         nonlinearity: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """``depth - 1`` same-padded 3x3 convolutions of ``width`` channels, then a linear classifier."""
    channels, height, breadth = input_shape
    modules: list[nn.Module] = [layers.Conv2d(channels, width, kernel_size=3, padding=1), nonlinearity()]
    for _ in range(depth - 2):
        modules += [layers.Conv2d(width, width, kernel_size=3, padding=1), nonlinearity()]
    modules += [nn.Flatten(), _classifier(width * height * breadth, num_classes, dense_classifier)]
    return nn.Sequential(*modules)
