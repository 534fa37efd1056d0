import torch
import torch.nn as nn

from prunelab.core.measure import SUMMARY_COLUMNS, count_flops, densities, layer_summary, summary_totals
from prunelab.core.pruners import PruneSettings, prune
from prunelab.models import layers as L
from prunelab.models.registry import build_model


def _independent_resnet20_flops() -> int:
    """ResNet20 on 32x32 by hand: every conv weight at every output pixel, BN scale + shift, residual
    scales, and the classifier (weights + bias)."""
    total = 3 * 16 * 9 * 32 * 32 + 2 * 16 * 32 * 32  # stem conv + its batchnorm
    for width, side, first_in in ((16, 32, 16), (32, 16, 16), (64, 8, 32)):
        pixels = side * side
        for block in range(3):
            f_in = first_in if block == 0 else width
            total += f_in * width * 9 * pixels + width * width * 9 * pixels  # conv1, conv2
            total += 2 * (2 * width * pixels)  # bn1, bn2
            if block == 0 and f_in != width:
                total += f_in * width * pixels + 2 * width * pixels  # 1x1 shortcut conv + its bn
            else:
                total += width * pixels  # identity scale
    return total + 64 * 10 + 10


def test_dense_resnet20_flops_match_an_independent_count():
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    flops = count_flops(model, (3, 32, 32))
    assert sum(sum(v.values()) for v in flops.values()) == _independent_resnet20_flops() == 41_288_330
    assert flops["blocks.3.shortcut.0"]["weight"] == 16 * 32 * 16 * 16


def test_resnet20_weights_cost_more_early_but_the_blocks_convolutions_cost_the_same():
    """Figure 5's caption: a conv weight is applied once per output position, so a first-stage weight (32 x 32)
    costs 16 times a last-stage one (8 x 8) and a classifier weight one multiply-add; the last stage has 16 times
    the weights, so the blocks' 3 x 3 convolutions do the same dense FLOPs, the strided first ones of stages 2 and
    3 half of that."""
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    flops = {name: f["weight"] for name, f in count_flops(model, (3, 32, 32)).items() if "weight" in f}
    per_weight = {name: f / model.get_submodule(name).weight.numel() for name, f in flops.items()}
    assert per_weight["conv"] == per_weight["blocks.0.conv1"] == 16 * per_weight["blocks.8.conv2"] == 1024
    assert per_weight["blocks.3.conv2"] == 4 * per_weight["blocks.8.conv2"] and per_weight["fc"] == 1
    full = flops["blocks.0.conv1"]
    assert all(flops[f"blocks.{b}.conv{i}"] == full for b in range(9) for i in (1, 2) if (b, i) not in {(3, 1), (6, 1)})
    assert flops["blocks.3.conv1"] == flops["blocks.6.conv1"] == full / 2


def test_flop_counting_removes_its_hooks_and_keeps_the_mode():
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    model.train()
    count_flops(model, (3, 32, 32))
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training


def test_pruned_resnet20_flops_and_densities_are_consistent():
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    batches = [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))]
    result = prune(model, PruneSettings("snip", 0.5), batches)
    flops = count_flops(model, (3, 32, 32))
    table = layer_summary(model, flops, result.scores)
    assert list(table.columns) == SUMMARY_COLUMNS
    totals = summary_totals(table)
    prunable = table[table["prunable"]]
    assert len(prunable) == 22  # 21 convs + the classifier
    assert totals["prunable_kept"] == result.kept and totals["prunable_total"] == result.total
    # each row's density is its mask's kept fraction; unpruned rows are dense
    for row in table.to_dict("records"):
        name = f"{row['module']}.{row['param']}"
        if row["prunable"]:
            module = model.get_submodule(row["module"])
            assert abs(row["density"] - module.mask_of(row["param"]).mean().item()) < 1e-12
            abs_sum = result.scores[name].abs().sum().item()
            assert abs(row["score abs sum"] - abs_sum) <= 1e-6 * abs_sum
        else:
            assert row["density"] == 1.0
    # pruned FLOPs are the sum of density x FLOPs, below the dense total and above the unprunable part
    expected = sum(d * f for d, f in zip(table["density"], table["flops"]))
    assert totals["flops_kept"] == round(expected)
    assert table.loc[~table["prunable"], "flops"].sum() < totals["flops_kept"] < totals["flops_total"]
    assert abs(totals["param_density"] - totals["params_kept"] / totals["params_total"]) < 1e-9
    block0 = table.query("module == 'blocks.0.conv1'")["density"].item()
    assert densities(model)["blocks.0.conv1.weight"] == block0
    # the SNIP scores are normalized: their sum over all prunable parameters is one
    assert abs(prunable["score sum"].sum() - 1.0) < 1e-5


def test_the_histograms_read_the_kept_weights_of_each_linear_and_conv_layer():
    from types import SimpleNamespace

    from prunelab.workbook.layer_findings import record_weights

    model = nn.Sequential(L.Conv2d(1, 2, 3), nn.Flatten(), L.Linear(8, 2))
    model[0].weight_mask[0] = 0
    L.apply_masks(model)
    state = model.state_dict()
    masks = {k: v for k, v in state.items() if k.endswith("_mask")}
    layers = layer_summary(model, count_flops(model, (1, 4, 4)))  # the record's layer table names the layers
    kept = record_weights(SimpleNamespace(state_dict=lambda: state, masks=lambda: masks, layers=layers))
    assert set(kept) == {"conv 1 (1→2)", "linear 1 (8→2)"}  # no biases
    assert kept["conv 1 (1→2)"].size == 9 and kept["linear 1 (8→2)"].size == 16
    assert (kept["conv 1 (1→2)"] == model[0].weight[1].detach().reshape(-1).numpy()).all()
