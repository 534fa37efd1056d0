"""The original tool's ``tinyimagenet`` model class: VGG and ResNet for 64x64 inputs (Tiny ImageNet, 200 classes).

Module names, layouts and initialization follow the original (which took them from the pytorch-cifar100
models): VGG is ``features.N`` (conv, [batchnorm], ReLU, max-pool after every stage) then a three-layer
``classifier`` (``classifier.0``, ``.3``, ``.6``); ResNet is ``conv1`` (3x3 stem, stride 1), ``conv2_x`` ..
``conv5_x`` of blocks with a ``residual_function`` and a ``shortcut``, then ``fc``. Three things to know:

* ``dense_classifier`` makes the *whole* VGG classifier (all three linear layers) unmasked, as the original
  does; for ResNet it is the single ``fc``.
* In the original, ``wide-resnet18`` and ``wide-resnet34`` are the same networks as ``resnet18`` and
  ``resnet34``: their basic blocks ignore the width. That is kept, so results stay comparable.
* Two liberties, invisible on 64x64 RGB input: the stem takes as many channels as the input has, and the
  VGG classifier's input width is ``512 * (H // 32) * (W // 32)`` (2048 at 64x64, the original's fixed value).
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from . import layers
from .families import RESNET_PLANS, family_models, initialize_vgg, make_features

VGG_HIDDEN = 1024  # the original's dim // 2 with dim = 512 * 4
class VGG(nn.Module):
    def __init__(self, plan: list, input_shape, num_classes: int, dense_classifier: bool, batchnorm: bool) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.features = make_features(plan, channels, batchnorm)
        pools = plan.count("M")
        in_features = plan[-2] * (height >> pools) * (width >> pools)
        if in_features == 0:
            raise ValueError(f"a tinyimagenet VGG needs inputs of at least {2 ** pools}x{2 ** pools}, "
                             f"not {height}x{width}")
        linear = nn.Linear if dense_classifier else layers.Linear
        self.classifier = nn.Sequential(
            linear(in_features, VGG_HIDDEN), nn.ReLU(inplace=True), nn.Dropout(),
            linear(VGG_HIDDEN, VGG_HIDDEN), nn.ReLU(inplace=True), nn.Dropout(),
            linear(VGG_HIDDEN, num_classes),
        )
        self.initialize_weights()

    def initialize_weights(self) -> None:
        initialize_vgg(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride != 1 or in_channels != out_channels:
        return nn.Sequential(layers.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                             layers.BatchNorm2d(out_channels))
    return layers.Identity2d(in_channels)


class BasicBlock(nn.Module):
    """Two 3x3 convs. ``base_width`` is accepted and ignored, exactly as in the original."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, base_width: int = 64) -> None:
        super().__init__()
        self.residual_function = nn.Sequential(
            layers.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            layers.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            layers.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            layers.BatchNorm2d(out_channels),
        )
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.residual_function(x) + self.shortcut(x))


class BottleNeck(nn.Module):
    """1x1 down to ``width``, 3x3 (carrying the stride), 1x1 up to ``4 * out_channels``."""

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, base_width: int = 64) -> None:
        super().__init__()
        width = int(out_channels * (base_width / 64.0))
        expanded = out_channels * self.expansion
        self.residual_function = nn.Sequential(
            layers.Conv2d(in_channels, width, kernel_size=1, bias=False),
            layers.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            layers.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False),
            layers.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            layers.Conv2d(width, expanded, kernel_size=1, bias=False),
            layers.BatchNorm2d(expanded),
        )
        self.shortcut = _shortcut(in_channels, expanded, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.residual_function(x) + self.shortcut(x))


BLOCKS = {"basic": BasicBlock, "bottleneck": BottleNeck}


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | BottleNeck], counts: list[int], base_width: int, in_channels: int,
                 num_classes: int, dense_classifier: bool) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(layers.Conv2d(in_channels, 64, kernel_size=3, padding=1, bias=False),
                                   layers.BatchNorm2d(64), nn.ReLU(inplace=True))
        channels = 64
        stages = []
        for planes, count, stride in zip((64, 128, 256, 512), counts, (1, 2, 2, 2)):
            blocks = []
            for index in range(count):
                blocks.append(block(channels, planes, stride if index == 0 else 1, base_width))
                channels = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.conv2_x, self.conv3_x, self.conv4_x, self.conv5_x = stages
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = (nn.Linear if dense_classifier else layers.Linear)(channels, num_classes)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Convs Kaiming-normal (fan out), batchnorm 1 / 0, residual scales 1, ``fc`` PyTorch's default."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, layers.IDENTITY_TYPES):
                module.reset_parameters()
        self.fc.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        out = self.conv5_x(self.conv4_x(self.conv3_x(self.conv2_x(out))))
        return self.fc(self.avg_pool(out).flatten(1))


MODELS = family_models(VGG, ResNet, BLOCKS, wide_depths=RESNET_PLANS)
