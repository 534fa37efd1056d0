"""The conservation laws of synaptic saliency, checked on tiny networks through prunelab's own scorers.

What is true, and so what is tested (see the docstring of prunelab.core.conservation for the derivations):

* SynFlow is a synaptic saliency of a rescaling-invariant R: per hidden unit score in == score out, and in a
  bias-free chain every layer's total == R, exactly (float64).
* The signed saliency dL/dθ ⊙ θ obeys the same two laws (float32 gradients).
* prunelab's SNIP takes |dL/dθ ⊙ θ| per parameter, so it does not conserve; per unit its sums are at least the
  absolute signed sums (sum of absolute values >= absolute value of the sum).
* GraSP's R = g_stop · g(θ) is not rescaling-invariant: per unit S_in - S_out is proportional (by GraSP's
  positive normalizer) to ‖G_out‖² - ‖G_in‖², G the gradient of the temperature-scaled loss.
* Under plain gradient descent every layer's Σθ² of a bias-free chain changes by the same amount, up to
  O(lr) per step relative error (IMP's implicit conservation); pruning keeps it, as pruned weights stay zero.
"""

import copy
import io
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.figure import Figure

from prunelab.core.conservation import (
    SALIENCY,
    imp_conservation,
    layer_conservation,
    schedule_conservation,
    score_parameters,
    synaptic_flow,
    unit_conservation,
)
from prunelab.core.pruners import GRASP_TEMPERATURE, PruneSettings, prune
from prunelab.errors import UserError
from prunelab.models import layers
from prunelab.workbook.conservation_figures import (
    plot_imp_conservation,
    plot_layer_conservation,
    plot_schedule_conservation,
    plot_unit_conservation,
)

# float64 SynFlow: in == out up to summation rounding
SYNFLOW_RTOL = 1e-9
# float32 gradients: relative to the largest unit score
SALIENCY_RTOL = 1e-4
# GraSP's relation after fitting its normalizer: float32 Hessian-gradient products
GRASP_RTOL = 1e-4
# plain SGD with lr 1e-3 in float64: the discrete step's lr * ‖G‖² / (2 <θ, G>) relative error, with margin
IMP_RTOL = 1e-2


def mlp(bias: bool, widths=(10, 32, 24, 5)) -> nn.Sequential:
    modules: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        modules += [layers.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*modules[:-1])


def conv_chain() -> nn.Sequential:
    """Conv, ReLU, max-pool, conv, ReLU, flatten, linear: positively homogeneous between every pair of layers."""
    return nn.Sequential(layers.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         layers.Conv2d(8, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), layers.Linear(6 * 4 * 4, 5))


def batches_for(shape, classes=5, count=2, size=16, dtype=torch.float32):
    return [(torch.randn(size, *shape, dtype=dtype), torch.randint(0, classes, (size,))) for _ in range(count)]


NETWORKS = {
    "mlp": (lambda: mlp(False), (10,)),
    "mlp with biases": (lambda: mlp(True), (10,)),
    "conv chain": (conv_chain, (3, 8, 8)),
}


def _gap(frame) -> float:
    return float((frame["score_in"] - frame["score_out"]).abs().max() / frame["score_in"].abs().max())


@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("score,rtol", [("synflow", SYNFLOW_RTOL), (SALIENCY, SALIENCY_RTOL)])
def test_unit_conservation_holds_for_synaptic_saliencies(network, score, rtol):
    build, shape = NETWORKS[network]
    model = build()
    frame = unit_conservation(model, score, batches_for(shape))
    hidden = {"mlp": 32 + 24, "mlp with biases": 32 + 24, "conv chain": 8 + 6}[network]
    assert len(frame) == hidden  # every hidden unit, including channels read through a flatten
    assert _gap(frame) < rtol


def test_scoring_leaves_the_model_as_it_was():
    model = nn.Sequential(layers.Linear(10, 8), layers.BatchNorm1d(8), nn.ReLU(), layers.Linear(8, 5)).train()
    before = copy.deepcopy(model.state_dict())
    unit_conservation(model, "synflow", batches_for((10,)))  # one all-ones input: eval-mode batchnorm
    unit_conservation(model, ["snip", "grasp", SALIENCY], batches_for((10,)), train_mode=True)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("network", ["mlp", "conv chain"])
def test_synflow_layers_all_carry_the_whole_flow(network):
    build, shape = NETWORKS[network]
    model = mlp(False) if network == "mlp" else _bias_free(build())
    frame = layer_conservation(model, "synflow", batches_for(shape))
    flow = synaptic_flow(model, shape)
    assert len(frame) == 3
    assert (frame["score_sum"] - flow).abs().max() < SYNFLOW_RTOL * flow
    # equal sums make the average score proportional to the inverse size (figure 4)
    assert torch.allclose(torch.tensor(frame["average_score"].to_numpy() / frame["inv_size"].to_numpy()),
                          torch.tensor(flow, dtype=torch.float64), rtol=SYNFLOW_RTOL)


def _bias_free(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)) and module.bias is not None:
                module.bias.zero_()
    return model


def test_signed_saliency_layer_sums_equal_the_output_term():
    model = mlp(False)
    batches = batches_for((10,))
    frame = layer_conservation(model, SALIENCY, batches)
    expected = 0.0
    for x, y in batches:  # <dL/dy, y> summed over the batches
        out = model(x)
        (grad,) = torch.autograd.grad(F.cross_entropy(out, y), out)
        expected += float((grad * out.detach()).sum())
    assert (frame["score_sum"] - expected).abs().max() < SALIENCY_RTOL * abs(expected)


def test_snip_is_not_conserved_but_bounds_the_signed_saliency():
    model = mlp(True)
    batches = batches_for((10,))
    snip = unit_conservation(model, "snip", batches)
    signed = unit_conservation(model, SALIENCY, batches)
    norm = sum(float(s.abs().sum()) for s in score_parameters(model, SALIENCY, batches).values())
    assert _gap(snip) > 100 * SALIENCY_RTOL  # |·| per parameter breaks the law
    for column in ("score_in", "score_out"):
        assert (snip[column] * norm >= signed[column].abs() * (1 - SALIENCY_RTOL)).all()


def test_grasp_unit_imbalance_is_the_gradient_norm_imbalance():
    model = mlp(True)
    batches = batches_for((10,))
    frame = unit_conservation(model, "grasp", batches)
    for p in model.parameters():
        p.grad = None
    for x, y in batches:
        F.cross_entropy(model(x) / GRASP_TEMPERATURE, y).backward()
    g = {name: p.grad.double() for name, p in model.named_parameters()}
    expected = torch.cat([(g[f"{nxt}.weight"] ** 2).sum(0) - (g[f"{cur}.weight"] ** 2).sum(1) - g[f"{cur}.bias"] ** 2
                          for cur, nxt in (("0", "2"), ("2", "4"))])
    imbalance = torch.tensor((frame["score_in"] - frame["score_out"]).to_numpy())
    scale = float(imbalance @ expected / (expected @ expected))  # 1 / GraSP's normalizer
    assert scale > 0
    assert (imbalance - scale * expected).abs().max() < GRASP_RTOL * imbalance.abs().max()
    assert imbalance.abs().max() > 100 * GRASP_RTOL * frame["score_in"].abs().max()  # and it is not zero


def test_imp_changes_every_layer_by_the_same_amount():
    torch.manual_seed(1)
    model = mlp(False).double()
    before = copy.deepcopy(model.state_dict())
    batches = batches_for((10,), dtype=torch.float64)
    frame = imp_conservation(model, batches, levels=2, compression=0.5, epochs=3, lr=1e-3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(frame) == 3 * 4 * 3  # (levels + 1) phases x (epochs + 1) records x 3 layers
    for (_, epoch), part in frame.groupby(["level", "epoch"]):
        deltas = part["delta_sum"]
        if epoch == 0:
            assert (deltas == 0).all()
        else:
            assert deltas.abs().min() > 0
            assert (deltas - deltas.mean()).abs().max() < IMP_RTOL * deltas.abs().max()
    starts = frame[frame["epoch"] == 0].pivot(index="layer", columns="level", values="score_sum")
    density = frame[frame["epoch"] == 0].pivot(index="layer", columns="level", values="density")
    assert (density[0] == 1).all() and (density[2] < density[1]).any() and (density[1] < 1).any()
    assert (starts[1] <= starts[0]).all()  # rewound to the initial weights, minus the pruned ones


def test_schedule_conservation_cut_ratios():
    torch.manual_seed(0)
    model = mlp(False, widths=(8, 64, 64, 64, 4))
    batches = batches_for((8,), classes=4, count=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # single-shot collapses, on purpose
        frame = schedule_conservation(model, batches, compressions=[1.0, 2.0], rounds=[1, 20])
        twin = copy.deepcopy(model)
        result = prune(twin, PruneSettings("synflow", 2.0, rounds=1), batches)
    assert len(frame) == 2 * 2 * 2
    # a round that cuts less than the flow cannot empty a layer, each of which carries all of it
    assert ((frame["max_cut_ratio"] >= 1) | (frame["collapsed"] == 0)).all()
    for (schedule, compression), part in frame.groupby(["schedule", "compression"]):
        single, iterative = part.sort_values("rounds")["max_cut_ratio"]
        assert iterative < single, (schedule, compression)
    # single shot at 1% kept collapses this network; twenty exponential rounds do not
    rows = frame.set_index(["schedule", "compression", "rounds"])
    assert rows.loc[("exponential", 2.0, 1), "collapsed"] > 0 and rows.loc[("exponential", 2.0, 20), "collapsed"] == 0
    # the one-round ratio agrees with prunelab's own prune: the pruned weights' scores over the flow
    flow = synaptic_flow(model, (8,))
    cut = sum(float((result.scores[n].double() * (1 - m.mask.double().cpu())).sum())
              for n, m in ((t.name, t) for t in layers.masked_parameters(twin)))
    assert rows.loc[("exponential", 2.0, 1), "max_cut_ratio"] == pytest.approx(cut / flow, rel=1e-9)


@pytest.mark.filterwarnings("ignore:layer collapse:prunelab.core.pruners.PruningWarning")  # incidental here
def test_every_experiment_has_a_figure():
    model = mlp(False)
    batches = batches_for((10,))
    figures = [
        plot_unit_conservation(unit_conservation(model, ["synflow", SALIENCY], batches)),
        plot_layer_conservation(layer_conservation(model, ["synflow", "snip"], batches)),
        plot_imp_conservation(imp_conservation(model, batches, levels=1, epochs=1)),
        plot_schedule_conservation(schedule_conservation(model, batches, [1.0], [1, 2])),
    ]
    for figure in figures:
        assert isinstance(figure, Figure) and figure.axes
        figure.savefig(io.BytesIO(), format="png")


def test_unknown_score_is_refused():
    with pytest.raises(UserError, match="'magnitude'"):
        unit_conservation(mlp(False), "magnitude", batches_for((10,)))
