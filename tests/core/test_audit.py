"""The mask audit on hand-made models: ok after pruning and hooked training, drift when a pruned weight is
non-zero after training or a mask changed since pruning, collapsed when a layer kept no weight."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunelab.core.audit import audit_masks
from prunelab.core.pruners import PruneSettings, PruningWarning, keep_count, prune
from prunelab.models import layers as L


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(L.Linear(12, 20), nn.ReLU(), L.Linear(20, 16), nn.ReLU(), L.Linear(16, 4))


def _batches():
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(32, 12, generator=gen), torch.randint(0, 4, (32,), generator=gen))]


def _pruned(pruner="mag", compression=0.5, scope="global"):
    model = _model()
    result = prune(model, PruneSettings(pruner, compression, scope=scope), _batches())
    return model, result


def _train(model, steps=5, hooked=True):
    """SGD with momentum on the batches, with or without the hooks that hold pruned weights at zero."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    if hooked:
        L.keep_pruned_at_zero(optimizer, model)
    for _ in range(steps):
        for x, y in _batches():
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()


def test_pruning_and_hooked_training_audit_ok_with_the_exact_counts():
    for scope in ("global", "local"):
        model, result = _pruned("snip", 0.7, scope)
        _train(model)
        audit = audit_masks(L.masked_parameters(model), result)
        total = 12 * 20 + 20 * 16 + 16 * 4
        assert audit.verdict == "ok" and audit.drift == 0 and audit.collapsed == [] and audit.off_target == []
        assert audit.total == total and audit.kept == audit.target_kept == keep_count(total, 0.7) == result.kept
        assert math.isclose(audit.target_fraction, 10 ** -0.7)
        frame = audit.frame()
        assert list(frame["layer"]) == ["0.weight", "2.weight", "4.weight"]
        masks = [int(t.mask.sum()) for t in L.masked_parameters(model)]
        assert list(frame["kept"]) == list(frame["target_kept"]) == masks
        assert frame["drift"].sum() == 0 and not frame["collapsed"].any()
        assert audit.summary()["mask_audit"] == "ok" and audit.summary()["mask_audit_drift"] == 0


def test_a_pruned_weight_set_non_zero_after_training_is_drift():
    model, result = _pruned()
    _train(model)
    layer = model[2]
    index = (layer.weight_mask == 0).nonzero()[0]
    with torch.no_grad():
        layer.weight[tuple(index)] = 0.25  # the hand-made drift
    audit = audit_masks(L.masked_parameters(model), result)
    assert audit.verdict == "drift" and audit.drift == 1
    assert audit.frame().set_index("layer")["drift"].to_dict() == {"0.weight": 0, "2.weight": 1, "4.weight": 0}
    assert audit.off_target == []  # the mask itself is as pruned
    summary = audit.summary()
    assert summary["mask_audit"] == "drift" and summary["mask_audit_drift"] == 1
    assert "2.weight: 1" in audit.report()


def test_training_without_the_hooks_lets_pruned_weights_drift_back():
    model, result = _pruned()
    _train(model, hooked=False)
    audit = audit_masks(L.masked_parameters(model), result)
    pruned = sum(int((t.mask == 0).sum()) for t in L.masked_parameters(model))
    assert audit.verdict == "drift" and 0 < audit.drift <= pruned


def test_a_non_finite_pruned_weight_is_drift():
    model, result = _pruned()
    with torch.no_grad():
        model[0].weight[model[0].weight_mask == 0] = float("nan")
    audit = audit_masks(L.masked_parameters(model), result)
    assert audit.verdict == "drift" and audit.drift == int((model[0].weight_mask == 0).sum())


def test_a_non_finite_pruned_weight_of_a_diverged_run_is_unchecked_not_drift():
    model, result = _pruned()
    pruned = model[0].weight_mask == 0
    with torch.no_grad():
        model[0].weight[pruned] = float("nan")  # NaN times the mask's zero: what a diverged run leaves
        model[0].weight.view(-1)[int(torch.nonzero(pruned.view(-1))[0])] = 1.0  # and one finite drift
    audit = audit_masks(L.masked_parameters(model), result, diverged=True)
    assert (audit.drift, audit.unchecked) == (1, int(pruned.sum()) - 1)
    with torch.no_grad():
        model[0].weight[pruned] = 0.0
        model[0].weight.view(-1)[int(torch.nonzero(pruned.view(-1))[0])] = float("inf")
    audit = audit_masks(L.masked_parameters(model), result, diverged=True)
    assert audit.verdict == "ok" and audit.unchecked == 1 and "1 NaN or infinite" in audit.report()


def test_a_mask_changed_after_pruning_is_drift_though_every_pruned_weight_is_zero():
    model, result = _pruned()
    with torch.no_grad():
        model[4].weight_mask.fill_(1.0)  # the layer's share back, as a rewind that restored masks would do
    audit = audit_masks(L.masked_parameters(model), result)
    assert audit.drift == 0 and audit.off_target == ["4.weight"] and audit.verdict == "drift"
    assert audit.kept == result.kept - result.layer_kept["4.weight"] + 16 * 4
    assert audit.overall_off_target
    assert audit.summary()["mask_audit_off_target"] == ["4.weight"]


def test_a_collapsed_layer_is_flagged():
    model = _model()
    with torch.no_grad():
        model[2].weight.mul_(1e-6)  # magnitude pruning empties this layer first
    with pytest.warns(PruningWarning, match="layer collapse"):
        result = prune(model, PruneSettings("mag", 0.5), _batches())
    assert result.collapsed == ["2.weight"]
    _train(model)
    audit = audit_masks(L.masked_parameters(model), result)
    assert audit.verdict == "collapsed" and audit.collapsed == ["2.weight"] and audit.drift == 0
    assert audit.frame().set_index("layer")["collapsed"].to_dict() == {"0.weight": False, "2.weight": True,
                                                                       "4.weight": False}
    assert audit.summary()["mask_audit_collapsed"] == ["2.weight"]
    with torch.no_grad():
        model[0].weight[model[0].weight_mask == 0] = 1.0
    assert audit_masks(L.masked_parameters(model), result).verdict == "drift"  # drift outranks collapse


def test_a_model_never_pruned_is_held_to_all_its_weights():
    model = _model()
    audit = audit_masks(L.masked_parameters(model), None)
    assert audit.verdict == "ok" and audit.kept == audit.total and audit.target_kept is None
    with torch.no_grad():
        model[0].weight_mask[0, 0] = 0.0
    assert audit_masks(L.masked_parameters(model), None).off_target == ["0.weight"]
