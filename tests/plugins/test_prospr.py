"""The ProsPr plugin: its score worked out by hand on a tiny network, and pruning with it by name.

The network is tests/core/test_score_formulas.py's: two bias-free linear layers ``o = b (a . x)`` with
``a = (2, -1)``, ``b = (3, -2)``, one example ``x = (1, 1)``, target ``y = (1, 0)``, ``L = |o - y|^2 / 2``.
"""

from importlib.metadata import entry_points

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import prunelab.plugins.prospr as prospr
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.registry import get_pruner, pruner_names
from prunelab.models import default
from prunelab.models import layers as L


def squared_error(output, target):
    return 0.5 * ((output - target) ** 2).sum()


def tiny():
    model = nn.Sequential(L.Linear(2, 1, bias=False), L.Linear(1, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[2.0, -1.0]]))
        model[1].weight.copy_(torch.tensor([[3.0], [-2.0]]))
    return model


def scores(steps: int, lr: float = 0.1):
    model = tiny()
    batches = [(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 0.0]]))]
    got = prospr.prospr_scores(model, L.masked_parameters(model), batches, squared_error, steps=steps, lr=lr)
    return got["0.weight"].flatten().tolist(), got["1.weight"].flatten().tolist()


def test_one_step_meta_gradient_matches_the_hand_computation():
    # h = 1, r = o - y = (2, -2), b . r = 10. One step at lr 0.1:
    #   a' = a - 0.1 (b . r) x = (1, -2), h' = -1;  b' = b - 0.1 h r = (2.8, -1.8);  r' = b' h' - y = (-3.8, 1.8)
    # dL'/db' = r' h' = (3.8, -1.8), dL'/dh' = b' . r' = -13.88, dL'/da' = -13.88 x.
    # Back through the step (s = b . r = |b|^2 h - b . y; da'/da = I - 0.1 |b|^2 x x^T, da'/db = -0.1 x (2bh - y)^T,
    # db'/da = -0.1 (2bh - y) x^T, db'/db = (1 - 0.1 h^2) I), with x . dL'/da' = -27.76 and (2bh - y) = (5, -4):
    #   dL'/da_j = -13.88 + 0.1 * 13 * 27.76 - 0.1 * (3.8 * 5 + 1.8 * 4) = 19.588
    #   dL'/db   = 0.1 * 27.76 * (5, -4) + 0.9 * (3.8, -1.8) = (17.3, -12.724)
    # |dL'/dc| = |dL'/dw * w|: a -> (39.176, 19.588), b -> (51.9, 25.448)
    a, b = scores(steps=1)
    assert a == pytest.approx([39.176, 19.588], rel=1e-5)
    assert b == pytest.approx([51.9, 25.448], rel=1e-5)


def test_without_steps_it_is_snips_score_before_normalization():
    # dL/da = 10 x, dL/db = (2, -2): |g * w| = (20, 10) and (6, 4)
    assert scores(steps=0) == (pytest.approx([20.0, 10.0]), pytest.approx([6.0, 4.0]))


def test_it_registers_through_the_public_call_and_its_entry_point_is_declared():
    pruner = get_pruner("prospr")
    assert (pruner.label, pruner.rounds, pruner.version) == ("ProsPr", 1, "1")
    assert pruner.origin == "prunelab.plugins.prospr:score_prospr" and pruner.importable
    assert pruner_names()[:6] == ("rand", "mag", "snip", "grasp", "synflow", "prospr")
    declared = {point.name: point.value for point in entry_points(group="prunelab.pruners")}  # as installed
    assert declared == {"prospr": "prunelab.plugins.prospr"}


def test_pruning_by_name_keeps_the_count_leaves_the_weights_and_scores_pruned_weights_zero():
    torch.manual_seed(0)
    model = default.fc((1, 4, 4), 3, depth=3, width=8)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("_mask")}
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(12, 1, 4, 4, generator=gen), torch.randint(0, 3, (12,), generator=gen))]
    result = prune(model, PruneSettings("prospr", 0.5, rounds=2), batches)
    targets = L.masked_parameters(model)
    total = sum(t.mask.numel() for t in targets)
    assert result.kept == round(total * 10 ** -0.5) == int(sum(t.mask.sum() for t in targets))
    for t in targets:  # pruned weights are zero, kept ones as they were
        assert torch.equal(t.param, before[t.name] * t.mask)
    pruned = {k: v.clone() for k, v in model.state_dict().items()}
    again = prospr.score_prospr(model, targets, batches, F.cross_entropy)  # scoring the pruned network
    assert all(torch.equal(v, pruned[k]) for k, v in model.state_dict().items())  # changes nothing
    for t in targets:  # pruned weights stay at zero through the steps: they score zero, the others do not
        assert torch.all(again[t.name][t.mask == 0] == 0) and torch.any(again[t.name][t.mask == 1] > 0)
