"""The original tool's ``lottery`` model class: CIFAR-style VGG and ResNet (open_lth layout).

Module names follow the original (``conv``, ``bn``, ``blocks.N.conv1``, ``blocks.N.shortcut.0``,
``layers.N.conv``, ``fc``) so per-layer tables line up with the user's earlier results. Two liberties,
both invisible on 32x32 RGB input: the stem takes as many channels as the input has (so MNIST-shaped
data works), and VGG pools its last feature map adaptively to 1x1 instead of with a fixed 2x2 window.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import layers


def initialize_lottery(model: nn.Module) -> None:
    """Kaiming-normal weights and zero biases for linear / conv layers; batchnorm scale 1, shift 0."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, layers.IDENTITY_TYPES):
            module.reset_parameters()


class ResidualBlock(nn.Module):
    def __init__(self, f_in: int, f_out: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = layers.Conv2d(f_in, f_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = layers.BatchNorm2d(f_out)
        self.conv2 = layers.Conv2d(f_out, f_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = layers.BatchNorm2d(f_out)
        if downsample or f_in != f_out:
            self.shortcut = nn.Sequential(layers.Conv2d(f_in, f_out, kernel_size=1, stride=2, bias=False),
                                          layers.BatchNorm2d(f_out))
        else:
            self.shortcut = layers.Identity2d(f_in)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A stem conv, three segments of residual blocks (W, 2W, 4W filters), global pooling, a classifier."""

    def __init__(self, plan: list[tuple[int, int]], in_channels: int, num_classes: int,
                 dense_classifier: bool) -> None:
        super().__init__()
        filters = plan[0][0]
        self.conv = layers.Conv2d(in_channels, filters, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn = layers.BatchNorm2d(filters)
        blocks = []
        for segment, (width, count) in enumerate(plan):
            for index in range(count):
                blocks.append(ResidualBlock(filters, width, downsample=segment > 0 and index == 0))
                filters = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = (nn.Linear if dense_classifier else layers.Linear)(plan[-1][0], num_classes)
        initialize_lottery(self)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def resnet_plan(depth: int, width: int) -> list[tuple[int, int]]:
    if (depth - 2) % 6 != 0:
        raise ValueError(f"a CIFAR ResNet has depth 6n+2, not {depth}")
    n = (depth - 2) // 6
    return [(width, n), (2 * width, n), (4 * width, n)]


class _VGGUnit(nn.Module):
    def __init__(self, f_in: int, f_out: int, batchnorm: bool) -> None:
        super().__init__()
        self.conv = layers.Conv2d(f_in, f_out, kernel_size=3, padding=1)
        if batchnorm:
            self.bn = layers.BatchNorm2d(f_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if hasattr(self, "bn"):
            x = self.bn(x)
        return F.relu(x)


VGG_PLANS: dict[int, list] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


class VGG(nn.Module):
    def __init__(self, plan: list, in_channels: int, num_classes: int, dense_classifier: bool,
                 batchnorm: bool) -> None:
        super().__init__()
        units: list[nn.Module] = []
        filters = in_channels
        for spec in plan:
            if spec == "M":
                units.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                units.append(_VGGUnit(filters, spec, batchnorm))
                filters = spec
        self.layers = nn.Sequential(*units)
        self.fc = (nn.Linear if dense_classifier else layers.Linear)(filters, num_classes)
        initialize_lottery(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def _resnet(depth: int, width: int):
    def build(input_shape, num_classes: int, dense_classifier: bool = False) -> ResNet:
        return ResNet(resnet_plan(depth, width), input_shape[0], num_classes, dense_classifier)
    return build


def _vgg(depth: int, batchnorm: bool):
    def build(input_shape, num_classes: int, dense_classifier: bool = False) -> VGG:
        return VGG(VGG_PLANS[depth], input_shape[0], num_classes, dense_classifier, batchnorm)
    return build


MODELS = {
    **{f"vgg{d}": _vgg(d, False) for d in VGG_PLANS},
    **{f"vgg{d}-bn": _vgg(d, True) for d in VGG_PLANS},
    **{f"resnet{d}": _resnet(d, 16) for d in (20, 32, 44, 56, 110, 1202)},
    **{f"wide-resnet{d}": _resnet(d, 32) for d in (20, 32, 44, 56, 110, 1202)},
}
