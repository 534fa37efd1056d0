import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunelab.models import layers as L
from prunelab.models.registry import build_model


def _random_masks(model, density=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for t in L.masked_parameters(model):
        t.mask.copy_((torch.rand(t.mask.shape, generator=gen) < density).float())


def _conv_net():
    return nn.Sequential(L.Conv2d(3, 8, 3, padding=1), L.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         L.Linear(8 * 6 * 6, 5))


OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "sgd": lambda p: torch.optim.SGD(p, lr=1e-1, weight_decay=1e-3),
    "momentum": lambda p: torch.optim.SGD(p, lr=1e-1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "rms": lambda p: torch.optim.RMSprop(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pruned_weights_stay_zero_through_optimizer_steps(name):
    model = _conv_net()
    opt = OPTIMIZERS[name](L.trainable_parameters(model))
    x, y = torch.randn(16, 3, 6, 6), torch.randint(0, 5, (16,))
    # momentum / moment estimates built up before pruning must not revive pruned weights
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    _random_masks(model)
    L.apply_masks(model)
    L.keep_pruned_at_zero(opt, model)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        for t in L.masked_parameters(model):
            assert torch.all(t.param[t.mask == 0] == 0), t.name
    kept = model[0].weight[model[0].weight_mask == 1]
    assert torch.count_nonzero(kept) == kept.numel()  # kept weights still train


def test_effective_weights_equal_original_design_step_for_step_under_adam():
    ours = _conv_net()
    _random_masks(ours)
    original = copy.deepcopy(ours)
    L.set_mask_in_forward(original, True)  # the original: mask multiplied in every forward
    L.apply_masks(ours)  # ours: masks folded into the weights once
    opt_ours = torch.optim.Adam(L.trainable_parameters(ours), lr=1e-2)
    opt_orig = torch.optim.Adam(L.trainable_parameters(original), lr=1e-2)
    L.keep_pruned_at_zero(opt_ours, ours)
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        x, y = torch.randn(8, 3, 6, 6, generator=gen), torch.randint(0, 5, (8,), generator=gen)
        for model, opt in ((ours, opt_ours), (original, opt_orig)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        for a, b in zip(L.masked_parameters(ours), L.masked_parameters(original)):
            assert torch.allclose(a.param, b.param * b.mask, rtol=0, atol=1e-7), a.name
        assert torch.allclose(ours(x), original(x), rtol=0, atol=1e-6)


def test_folded_forward_runs_no_mask_multiply_and_matches_original_output():
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    _random_masks(model, density=0.2)
    original = copy.deepcopy(model)
    L.set_mask_in_forward(original, True)
    L.apply_masks(model)
    model.eval()
    original.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), original(x), atol=1e-5)
    # the folded forward is the parent class's: no mul op is recorded for a masked conv
    with torch.autograd.profiler.profile() as prof:
        with torch.no_grad():
            model.conv(x)
    assert not [e for e in prof.function_events if e.name == "aten::mul"]


def test_identity_scale_is_skipped_until_pruned():
    ident = L.Identity2d(4)
    x = torch.randn(2, 4, 3, 3)
    assert ident(x) is x
    ident.weight_mask[1] = 0
    ident.apply_masks()
    out = ident(x)
    assert torch.all(out[:, 1] == 0) and torch.equal(out[:, 0], x[:, 0])


def test_masks_are_buffers_saved_with_the_state_dict():
    model = _conv_net()
    keys = model.state_dict().keys()
    assert "0.weight_mask" in keys and "0.bias_mask" in keys and "1.weight_mask" in keys
    assert all(not n.endswith("_mask") for n, _ in model.named_parameters())


def test_trainable_parameters_exclude_residual_scales():
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    trainable = {id(p) for p in L.trainable_parameters(model)}
    identity = [m.weight for m in model.modules() if isinstance(m, L.Identity2d)]
    assert identity and all(id(p) not in trainable for p in identity)
    assert len(trainable) == sum(1 for _ in model.parameters()) - len(identity)
