"""Whether a path of kept weights joins input to output, on masked networks built by hand."""

import torch

from prunelab.core.connectivity import input_reaches_output
from prunelab.models.layers import masked_parameters
from prunelab.models.registry import build_model

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)


def _masks(model) -> dict:
    return {t.name: t.mask for t in masked_parameters(model)}


def _prune(model, name: str, keep) -> None:
    """Zero the mask of ``name`` except where ``keep`` (a bool tensor of its shape) is True, and apply it."""
    mask = _masks(model)[name]
    mask.copy_(keep.to(mask.dtype))
    with torch.no_grad():
        dict(model.named_parameters())[name].mul_(mask)


def test_a_dense_network_and_one_with_a_thin_path_reach_the_output():
    torch.manual_seed(0)
    model = build_model("fc", "default", MNIST, 10).eval()
    assert input_reaches_output(model, MNIST)
    # one kept weight per layer, along units 0 -> 0 -> ... -> class 0
    for name, mask in _masks(model).items():
        keep = torch.zeros_like(mask, dtype=torch.bool)
        keep[0, 0] = True
        _prune(model, name, keep)
    assert input_reaches_output(model, MNIST)


def test_kept_weights_that_lead_to_cut_units_leave_no_path_though_no_layer_is_empty():
    torch.manual_seed(0)
    model = build_model("fc", "default", MNIST, 10).eval()
    names = list(_masks(model))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for i, name in enumerate(names):
        keep = torch.zeros_like(_masks(model)[name], dtype=torch.bool)
        keep[0, 0 if i != 1 else 1] = True  # the second layer reads unit 1, which the first layer never feeds
        _prune(model, name, keep)
    pruned = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(int(m.sum()) == 1 for m in _masks(model).values())  # every layer keeps a weight
    assert not input_reaches_output(model, MNIST)
    assert all(torch.equal(pruned[k], v) for k, v in model.state_dict().items())  # the model is unchanged
    assert not all(torch.equal(before[k], v) for k, v in pruned.items())


def test_a_residual_shortcut_carries_the_path_past_an_emptied_block():
    torch.manual_seed(0)
    model = build_model("resnet20", "lottery", CIFAR, 10).eval()
    masks = _masks(model)
    for name in ("blocks.4.conv1.weight", "blocks.4.conv2.weight"):  # an identity-shortcut block's convolutions
        _prune(model, name, torch.zeros_like(masks[name], dtype=torch.bool))
    assert input_reaches_output(model, CIFAR)
    classifier = [n for n in masks if n.startswith("fc")][0]
    _prune(model, classifier, torch.zeros_like(masks[classifier], dtype=torch.bool))
    assert not input_reaches_output(model, CIFAR)


def test_a_path_through_many_wide_layers_is_not_lost_to_underflow():
    layers = []
    for _ in range(150):  # one kept weight of 256 per unit: 256**-150 is below float64's smallest number
        linear = torch.nn.Linear(256, 256)
        with torch.no_grad():
            linear.weight.copy_(torch.eye(256))
        layers += [linear, torch.nn.ReLU()]
    deep = torch.nn.Sequential(*layers).eval()
    assert input_reaches_output(deep, (256,))
    with torch.no_grad():
        deep[150].weight.zero_()
    assert not input_reaches_output(deep, (256,))
