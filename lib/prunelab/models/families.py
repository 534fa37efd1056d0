"""What the ``tinyimagenet`` and ``imagenet`` model classes share: the VGG and ResNet plans, the VGG feature
extractor and initialization, and one builder that turns a family's VGG and ResNet classes into its
table of named models (``vgg11`` ... ``vgg19-bn``, ``resnet18`` ... ``resnet152``, ``wide-resnet*``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch.nn as nn

from . import layers

VGG_PLANS: dict[int, list] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
RESNET_PLANS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}


def make_features(plan: list, in_channels: int, batchnorm: bool) -> nn.Sequential:
    """The VGG feature extractor as one flat ``nn.Sequential`` (so the indices match the original's names)."""
    modules: list[nn.Module] = []
    channels = in_channels
    for spec in plan:
        if spec == "M":
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        modules.append(layers.Conv2d(channels, spec, kernel_size=3, padding=1))
        if batchnorm:
            modules.append(layers.BatchNorm2d(spec))
        modules.append(nn.ReLU(inplace=True))
        channels = spec
    return nn.Sequential(*modules)


def initialize_vgg(model: nn.Module) -> None:
    """Convs Kaiming-normal (fan out), linears N(0, 0.01), biases zero, batchnorm scale 1 and shift 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


def initialize(model: nn.Module) -> None:
    """Draw fresh initial weights the way the family's constructors do (masks are left as they are)."""
    model.initialize_weights()


def family_models(vgg: type[nn.Module], resnet: type[nn.Module], blocks: dict[str, type[nn.Module]],
                  wide_depths: Iterable[int]) -> dict[str, Callable[..., nn.Module]]:
    """The named models of one family: ``vgg(plan, input_shape, num_classes, dense_classifier, batchnorm)``
    and ``resnet(block, counts, base_width, in_channels, num_classes, dense_classifier)``, with wide ResNets
    (base width 128) at ``wide_depths``."""
    def vgg_builder(depth: int, batchnorm: bool):
        def build(input_shape, num_classes: int, dense_classifier: bool = False) -> nn.Module:
            return vgg(VGG_PLANS[depth], tuple(input_shape), num_classes, dense_classifier, batchnorm)
        return build

    def resnet_builder(depth: int, base_width: int):
        kind, counts = RESNET_PLANS[depth]

        def build(input_shape, num_classes: int, dense_classifier: bool = False) -> nn.Module:
            return resnet(blocks[kind], counts, base_width, input_shape[0], num_classes, dense_classifier)
        return build

    return {
        **{f"vgg{d}": vgg_builder(d, False) for d in VGG_PLANS},
        **{f"vgg{d}-bn": vgg_builder(d, True) for d in VGG_PLANS},
        **{f"resnet{d}": resnet_builder(d, 64) for d in RESNET_PLANS},
        **{f"wide-resnet{d}": resnet_builder(d, 128) for d in wide_depths},
    }
