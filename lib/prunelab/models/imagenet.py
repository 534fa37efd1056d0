"""The original tool's ``imagenet`` model class: torchvision's VGG and ResNet (224x224 inputs, 1000 classes).

Module names, layouts and initialization are torchvision's, as in the original: VGG is ``features.N``,
``avgpool`` (adaptive, 7x7) and ``classifier.0`` / ``.3`` / ``.6``; ResNet is ``conv1`` (7x7, stride 2),
``bn1``, ``maxpool``, ``layer1`` .. ``layer4`` of blocks (``conv1``, ``bn1``, ``conv2``, ... ``downsample``)
and ``fc``. Parameter names therefore match torchvision's, so its pretrained state dicts load with
``strict=False`` (the masks are extra buffers). Residual connections are plain additions, as in the
original: this class has no residual scales for ``prune_residual`` to prune.

Where this differs from the original:

* ``num_classes`` is honoured; the original always built 1000 outputs whatever it was asked for.
* ``dense_classifier`` is implemented: the original warned that ImageNet models do not implement it and
  ignored it. Here it makes the *last* linear layer (VGG ``classifier.6``, ResNet ``fc``) an unmasked
  ``nn.Linear``, which is what the option's help says ("ensure last layer of model is dense"). Note that
  the ``tinyimagenet`` VGG, following its original, makes its whole classifier dense instead.
* The stem takes as many channels as the input has.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from . import layers
from .families import family_models, initialize_vgg, make_features

VGG_POOLED = 7  # the adaptive pool's output side, so the classifier's input is 512 * 7 * 7
VGG_HIDDEN = 4096


def _linear(in_features: int, out_features: int, dense: bool) -> nn.Linear:
    return (nn.Linear if dense else layers.Linear)(in_features, out_features)


class VGG(nn.Module):
    def __init__(self, plan: list, input_shape, num_classes: int, dense_classifier: bool,
                 batchnorm: bool) -> None:
        super().__init__()
        self.features = make_features(plan, input_shape[0], batchnorm)
        self.avgpool = nn.AdaptiveAvgPool2d((VGG_POOLED, VGG_POOLED))
        self.classifier = nn.Sequential(
            _linear(plan[-2] * VGG_POOLED * VGG_POOLED, VGG_HIDDEN, False), nn.ReLU(inplace=True), nn.Dropout(),
            _linear(VGG_HIDDEN, VGG_HIDDEN, False), nn.ReLU(inplace=True), nn.Dropout(),
            _linear(VGG_HIDDEN, num_classes, dense_classifier),
        )
        self.initialize_weights()

    def initialize_weights(self) -> None:
        initialize_vgg(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> layers.Conv2d:
    return layers.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> layers.Conv2d:
    return layers.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 base_width: int = 64) -> None:
        super().__init__()
        if base_width != 64:
            raise ValueError("BasicBlock only supports base_width=64")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = layers.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = layers.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5: the stride sits on the 3x3 conv (torchvision's choice, kept by the original)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 base_width: int = 64) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0))
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = layers.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = layers.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = layers.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], counts: list[int], base_width: int, in_channels: int,
                 num_classes: int, dense_classifier: bool) -> None:
        super().__init__()
        self.inplanes = 64
        self.base_width = base_width
        self.conv1 = layers.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = layers.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, counts[0], 1)
        self.layer2 = self._make_layer(block, 128, counts[1], 2)
        self.layer3 = self._make_layer(block, 256, counts[2], 2)
        self.layer4 = self._make_layer(block, 512, counts[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = _linear(512 * block.expansion, num_classes, dense_classifier)
        self.initialize_weights()

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, count: int,
                    stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       layers.BatchNorm2d(planes * block.expansion))
        blocks = [block(self.inplanes, planes, stride, downsample, self.base_width)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes, base_width=self.base_width) for _ in range(1, count)]
        return nn.Sequential(*blocks)

    def initialize_weights(self) -> None:
        """Convs Kaiming-normal (fan out), batchnorm 1 / 0, ``fc`` PyTorch's default (torchvision's rule)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        self.fc.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


# torchvision's wide_resnet50_2 / wide_resnet101_2: bottlenecks twice as wide; there are no wide 18/34/152
MODELS = family_models(VGG, ResNet, BLOCKS, wide_depths=(50, 101))
