"""Every built-in score's formula (docs/pruners.md) on a network small enough to work out by hand.

The network is two bias-free linear layers, ``o = b (a . x)``: ``a`` is 1x2 and ``b`` 2x1, so two weights a
layer, with ``a = (2, -1)``, ``b = (3, -2)``, one example ``x = (1, 1)``. Its hidden value is ``h = a . x = 1``
and its output ``o = b h = (3, -2)``. The tests use the squared error ``L = |o - y|^2 / 2`` so that every
number below is exact arithmetic; the numbers in the comments are the hand computation.
"""

import pytest
import torch
import torch.nn as nn

from prunelab.core.pruners import GRASP_EPS, GRASP_TEMPERATURE, PruneSettings, compute_scores
from prunelab.models import layers as L

A, B, X = [[2.0, -1.0]], [[3.0], [-2.0]], [[1.0, 1.0]]


def squared_error(output, target):
    return 0.5 * ((output - target) ** 2).sum()


def tiny():
    model = nn.Sequential(L.Linear(2, 1, bias=False), L.Linear(1, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(A))
        model[1].weight.copy_(torch.tensor(B))
    return model


def scores(pruner: str, target=(1.0, 0.0)) -> tuple[list[float], list[float]]:
    model = tiny()
    batches = [(torch.tensor(X), torch.tensor([target]))]
    torch.manual_seed(7)  # rand's draws
    got = compute_scores(model, PruneSettings(pruner, 1.0), L.masked_parameters(model), batches, squared_error)
    return got["0.weight"].flatten().tolist(), got["1.weight"].flatten().tolist()


def test_mag_is_the_absolute_weight():
    assert scores("mag") == ([2.0, 1.0], [3.0, 2.0])


def test_rand_is_a_standard_normal_draw_per_weight_whatever_the_weights_and_data():
    torch.manual_seed(7)
    expected = torch.randn(1, 2).flatten().tolist(), torch.randn(2, 1).flatten().tolist()
    assert scores("rand") == expected
    assert scores("rand", target=(5.0, 5.0)) == expected


def test_snip_is_the_normalized_absolute_gradient_with_respect_to_the_mask():
    # y = (1, 0): residual r = o - y = (2, -2), L = 4. dL/db = r h = (2, -2); dL/dh = b . r = 10, dL/da = 10 x =
    # (10, 10). |dL/dm| = |dL/dw * w|: a -> (20, 10), b -> (6, 4); they sum to 40.
    a, b = scores("snip")
    assert a == pytest.approx([20 / 40, 10 / 40]) and b == pytest.approx([6 / 40, 4 / 40])


def test_grasp_is_the_hessian_gradient_product_times_the_weight_normalized_by_its_signed_sum():
    # y = 0, logits divided by T: L = u h^2 |b|^2 / 2 with u = 1/T^2. g_a = u h |b|^2 x = 13u (1, 1),
    # g_b = u h^2 b = u (3, -2). Differentiating z = g_stop . grad L:
    #   (Hg)_a = u |b|^2 (g_a . x) x + 2u h (g_b . b) x = u^2 (13*26 + 2*13) (1, 1) = 364 u^2 (1, 1)
    #   (Hg)_b = 2u h (g_a . x) b + u h^2 g_b = u^2 (2*26 + 1) (3, -2) = 53 u^2 (3, -2)
    # (Hg) * w: a -> u^2 (728, -364), b -> u^2 (477, 212); signed sum 1053 u^2.
    u2 = GRASP_TEMPERATURE ** -4
    norm = 1053 * u2 + GRASP_EPS
    a, b = scores("grasp", target=(0.0, 0.0))
    assert a == pytest.approx([728 * u2 / norm, -364 * u2 / norm], rel=1e-5)
    assert b == pytest.approx([477 * u2 / norm, 212 * u2 / norm], rel=1e-5)


def test_synflow_is_the_path_flow_of_the_absolute_network_on_an_all_ones_input():
    # |a| = (2, 1), |b| = (3, 2), input (1, 1): h = 3, R = (3 + 2) * 3 = 15. dR/d|a_i| = |b|.1 * x_i = 5 and
    # dR/d|b_j| = h = 3: a -> (10, 5), b -> (9, 6). Each layer's scores sum to R (SynFlow's conservation).
    a, b = scores("synflow")
    assert a == [10.0, 5.0] and b == [9.0, 6.0]
    assert sum(a) == sum(b) == 15.0
    assert scores("synflow", target=(7.0, -7.0)) == (a, b)  # no labels, no data but the input's shape
