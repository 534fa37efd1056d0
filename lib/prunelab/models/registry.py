"""Every model by class and name, as the original tool names them (``--model-class``, ``--model``)."""

from __future__ import annotations

import functools

import torch
import torch.nn as nn

from ..errors import UserError
from . import MODEL_CLASS_NAMES, default, families, imagenet, lottery, tinyimagenet

MODEL_CLASSES: dict[str, dict] = dict(zip(MODEL_CLASS_NAMES, (
    {"fc": default.fc, "conv": default.conv}, lottery.MODELS, tinyimagenet.MODELS, imagenet.MODELS), strict=True))
#: how each class draws initial weights (None: PyTorch's default per layer, as the original's default class)
INITIALIZERS = {"lottery": lottery.initialize_lottery, "tinyimagenet": families.initialize,
                "imagenet": families.initialize}


def classes_with(model: str) -> list[str]:
    return [cls for cls, models in MODEL_CLASSES.items() if model in models]


def model_names() -> list[str]:
    return sorted({name for models in MODEL_CLASSES.values() for name in models})


def build_model_check(model: str, model_class: str) -> None:
    """Raise :class:`UserError` unless ``model`` exists in ``model_class``."""
    if model_class not in MODEL_CLASSES:
        raise UserError(f"unknown model class '{model_class}'; choose one of: {', '.join(MODEL_CLASSES)}")
    family = MODEL_CLASSES[model_class]
    if model not in family:
        owners = classes_with(model)
        if owners:
            raise UserError(f"model '{model}' is not in model class '{model_class}'; it is in "
                            f"{', '.join(repr(c) for c in owners)} (use --model-class {owners[0]})")
        raise UserError(f"unknown model '{model}'; models are: {', '.join(model_names())}")


@functools.cache
def check_model_fits(model: str, model_class: str, input_shape: tuple[int, int, int], num_classes: int,
                     dense_classifier: bool = False) -> nn.Module | None:
    """Raise :class:`UserError` when ``model`` cannot take images of ``input_shape`` (a VGG's pools leave an
    8x8 image nothing): built and run once on the meta device (no memory, no arithmetic), so a run is refused
    before it writes anything, not after its data loads. Returns that meta model (its masks count what a
    compression keeps; shared, never to be changed), or None for one the meta device cannot build."""
    build_model_check(model, model_class)
    shown = "x".join(map(str, input_shape))
    try:
        with torch.device("meta"):
            net = MODEL_CLASSES[model_class][model](input_shape, num_classes, dense_classifier=dense_classifier)
    except ValueError as err:  # the model's own rule (tinyimagenet VGGs need 32x32)
        raise UserError(f"model '{model}' ({model_class}) cannot take {shown} images: {err}") from None
    except Exception:  # noqa: BLE001 - the meta device lacks something: the run finds out as it did
        return None
    try:
        net.eval()(torch.empty(1, *input_shape, device="meta"))
    except RuntimeError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"model '{model}' ({model_class}) cannot take {shown} images: {first}") from None
    except Exception:  # noqa: BLE001 - as above
        return None
    return net


def build_model(model: str, model_class: str, input_shape, num_classes: int,
                dense_classifier: bool = False) -> nn.Module:
    """Build ``model`` of ``model_class`` for inputs of ``input_shape`` (C, H, W) and ``num_classes``."""
    build_model_check(model, model_class)
    net = MODEL_CLASSES[model_class][model](tuple(input_shape), num_classes, dense_classifier=dense_classifier)
    net.prunelab_init = model_class
    return net


def reinitialize(model: nn.Module) -> None:
    """Draw fresh initial weights the way the model's class does (masks are left as they are)."""
    initializer = INITIALIZERS.get(getattr(model, "prunelab_init", "default"))
    if initializer is not None:
        initializer(model)
        return
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()
