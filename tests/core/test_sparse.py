"""The sparse inference model: exact outputs, exact dead-unit removal, and a kernel choice never slower than dense."""

from __future__ import annotations

import copy
import math
import random
import time
import warnings

import pytest
import torch
import torch.nn as nn

from prunelab.core import sparse as sparse_module
from prunelab.core.dead_units import find_links, remove_dead_units
from prunelab.core.inference import strip_masks
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.sparse import (
    CHOICE_COLUMNS,
    DENSE,
    SparseModel,
    TimingSettings,
    choose_kernel,
    sparse_inference_model,
    time_kernels,
)
from prunelab.core.sparse_kernels import conv_candidates, linear_candidates
from prunelab.models.registry import build_model

MODELS = {"fc": ("fc", "default", (1, 28, 28)), "conv": ("conv", "default", (1, 28, 28)),
          "resnet20": ("resnet20", "lottery", (3, 32, 32))}
FAST = TimingSettings(repeats=1, warmup=1, sample_s=1e-6)  # one call per kernel: these tests check values, not speed


def pruned(name: str, compression: float, pruner: str = "rand") -> nn.Module:
    arch, model_class, shape = MODELS[name]
    model = build_model(arch, model_class, shape, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # layer collapse at high compression is a case to cover, not an error
        prune(model, PruneSettings(pruner, compression), [(torch.randn(8, *shape), torch.randint(0, 10, (8,)))])
    return model.eval()


def assert_same_outputs(model: nn.Module, sparse: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        expected, got = strip_masks(model).eval()(x), sparse(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,compression", [("fc", 0.5), ("fc", 2), ("fc", 3), ("conv", 1), ("conv", 2.5),
                                              ("resnet20", 1), ("resnet20", 2.5)])
def test_sparse_model_outputs_equal_the_dense_model(name, compression):
    model = pruned(name, compression, "mag" if compression == 1 else "rand")
    x = torch.randn(2 if name == "resnet20" else 4, *MODELS[name][2])
    sparse = sparse_inference_model(model, x, FAST, remove_dead=True)
    assert isinstance(sparse, SparseModel) and not sparse.training
    assert list(sparse.choices.columns) == CHOICE_COLUMNS
    assert (sparse.choices["speedup"] >= 1).all()  # dense's time over the chosen kernel's: never below 1
    assert_same_outputs(model, sparse, torch.randn(3, *MODELS[name][2]))  # another batch size than calibrated


@pytest.mark.parametrize("name,compression", [("fc", 1), ("conv", 2), ("resnet20", 2)])
def test_outputs_stay_equal_when_every_layer_takes_a_sparse_kernel(name, compression, monkeypatch):
    """Timing may keep every layer dense on a given machine, so force the first sparse kernel everywhere."""
    monkeypatch.setattr(sparse_module, "choose_kernel", lambda seconds: next(
        (k for k in seconds if k != DENSE), DENSE))
    model = pruned(name, compression)
    x = torch.randn(2 if name == "resnet20" else 4, *MODELS[name][2])
    sparse = sparse_inference_model(model, x, FAST, remove_dead=True)
    assert (sparse.choices["kernel"] != DENSE).sum() >= len(sparse.choices) // 2
    assert_same_outputs(model, sparse, x)
    assert_same_outputs(model, copy.deepcopy(sparse), x)  # sparse tensors are rebuilt after a deep copy


def test_the_dense_layers_come_back_when_the_kernels_do_not_pay_as_a_whole(monkeypatch):
    """Each layer wins alone (say, on a launch-bound GPU) but the whole model does not: dense everywhere."""
    def layers_win_model_loses(seconds):
        return DENSE if "sparse" in seconds else next((k for k in seconds if k != DENSE), DENSE)

    monkeypatch.setattr(sparse_module, "choose_kernel", layers_win_model_loses)
    model = pruned("fc", 1)
    x = torch.randn(4, 1, 28, 28)
    sparse = sparse_inference_model(model, x, FAST, remove_dead=False)
    assert set(sparse.whole_model) == {DENSE, "sparse"}
    assert (sparse.choices["kernel"] == DENSE).all()
    assert all(type(m) in (nn.Sequential, nn.Flatten, nn.Linear, nn.ReLU) for m in sparse.model.modules())
    assert_same_outputs(model, sparse, x)


def pruned_weight(shape, density: float) -> torch.Tensor:
    weight = torch.randn(shape) * (torch.rand(shape) < density)
    weight[1] = 0  # a dead row / filter
    weight[:, 2] = 0  # a dead column / input channel
    return weight


@pytest.mark.parametrize("density", [0.0, 0.03, 0.3, 1.0])
@pytest.mark.parametrize("bias", [True, False])
def test_every_linear_kernel_equals_the_dense_layer(density, bias):
    layer = nn.Linear(40, 24, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(pruned_weight((24, 40), density))
    x = torch.randn(2, 5, 40)  # leading dimensions are kept
    kernels = linear_candidates(layer)
    assert {"csr", "csr_t", "bsr"} <= set(kernels)
    with torch.no_grad():
        for name, kernel in kernels.items():
            torch.testing.assert_close(kernel(x), layer(x), rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (1, 2, 2)])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.5])
def test_every_conv_kernel_equals_the_dense_layer(stride, padding, dilation, density):
    layer = nn.Conv2d(6, 8, 3, stride=stride, padding=padding, dilation=dilation)
    with torch.no_grad():
        layer.weight.copy_(pruned_weight((8, 6, 3, 3), density))
    x = torch.randn(2, 6, 11, 9)
    kernels = conv_candidates(layer, tuple(x.shape))
    assert set(kernels) == {"compact", "im2col_csr"}
    with torch.no_grad():
        for name, kernel in kernels.items():
            torch.testing.assert_close(kernel(x), layer(x), rtol=1e-4, atol=1e-5, msg=name)


def test_a_dead_neuron_with_a_nonzero_bias_is_folded_into_the_next_bias_exactly():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).eval()
    with torch.no_grad():
        net[1].weight[1] = 0  # no incoming weights: outputs relu(0.7) = 0.7, a constant
        net[1].bias[1] = 0.7
        net[1].weight[2] = 0  # no incoming weights and a negative bias: outputs relu(-0.4) = 0
        net[1].bias[2] = -0.4
        net[3].weight[:, 3] = 0  # no outgoing weights: never read
    x = torch.randn(16, 5)
    with torch.no_grad():
        expected = net(x)
    reference = copy.deepcopy(net)
    removed = remove_dead_units(net)
    assert removed == {"1": 3}
    assert net[1].out_features == 1 and net[3].in_features == 1
    # the constant 0.7 now lives in the next layer's bias
    torch.testing.assert_close(net[3].bias, reference[3].bias + 0.7 * reference[3].weight[:, 1])
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)


def test_a_constant_channel_is_folded_only_where_exact():
    """Before a padded conv a constant non-zero channel is not constant at the borders: it must stay."""
    def net(padding: int) -> nn.Sequential:
        torch.manual_seed(2)
        seq = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=padding),
                            nn.ReLU(), nn.Flatten(), nn.Linear(4 * (8 - 2 + 2 * padding) ** 2, 5)).eval()
        with torch.no_grad():
            seq[0].weight[0] = 0
            seq[0].bias[0] = 0.5  # constant relu(0.5)
            seq[2].weight[1] = 0
            seq[2].bias[1] = 0.3  # a constant channel before the linear layer: always foldable
        return seq

    x = torch.randn(3, 2, 8, 8)
    for padding, removed_first in ((1, 0), (0, 1)):
        model = net(padding)
        with torch.no_grad():
            expected = model(x)
        removed = remove_dead_units(model)
        assert removed.get("0", 0) == removed_first and removed["2"] == 1
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_dead_channels_inside_a_resnet_block_are_removed_exactly():
    model = strip_masks(pruned("resnet20", 3)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    assert any(link.name.endswith("conv1") for link in find_links(model))
    removed = remove_dead_units(model)
    assert removed and all(name.endswith("conv1") for name in removed)  # conv2 feeds a residual sum
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dead,kept", [(5, 16), (9, 8), (16, 1)])
def test_aligned_removal_keeps_widths_a_multiple_of_eight(dead, kept):
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    with torch.no_grad():
        net[2].weight[:, :dead] = 0
    x = torch.randn(8, 4)
    with torch.no_grad():
        expected = net(x)
    remove_dead_units(net, align=8)
    assert net[0].out_features == kept  # 11 live round up to 16 (none removed), 7 to 8; a dead layer keeps 1
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)


def test_dead_unit_removal_refuses_masked_layers_and_training_mode():
    with pytest.raises(ValueError, match="strip_masks"):
        remove_dead_units(pruned("fc", 1))
    with pytest.raises(ValueError, match="eval mode"):
        remove_dead_units(nn.Sequential(nn.Linear(2, 2)).train())


def test_the_choice_never_picks_a_kernel_slower_than_dense_on_a_hand_made_table():
    table = {
        "clear win": {"dense": 1.0, "csr": 0.5, "bsr": 0.7},
        "inside the margin": {"dense": 1.0, "csr": 0.97},
        "slower": {"dense": 1.0, "csr": 1.3, "compact": 1.01},
        "failed kernels": {"dense": 1.0, "csr": math.nan, "bsr": math.inf},
        "dense only": {"dense": 2e-5},
        "exactly at the margin": {"dense": 1.0, "compact": 0.95},
    }
    assert {layer: choose_kernel(seconds, margin=0.05) for layer, seconds in table.items()} == {
        "clear win": "csr", "inside the margin": "dense", "slower": "dense", "failed kernels": "dense",
        "dense only": "dense", "exactly at the margin": "compact"}
    rng = random.Random(0)
    for _ in range(2000):
        seconds = {"dense": rng.uniform(1e-6, 1.0)}
        seconds.update({k: rng.choice([rng.uniform(1e-6, 2.0), math.nan, math.inf]) for k in ("csr", "bsr")})
        margin = rng.choice([0.0, 0.05, 0.2])
        chosen = choose_kernel(seconds, margin)
        assert chosen == DENSE or seconds[chosen] <= (1 - margin) * seconds[DENSE]
    with pytest.raises(ValueError):
        choose_kernel({"csr": 1.0})


class Ticker(nn.Module):
    """A 'kernel' that moves a fake clock on by ``seconds`` per call and counts its calls."""

    def __init__(self, seconds: float, now: list) -> None:
        super().__init__()
        self.seconds, self.now, self.calls = seconds, now, 0

    def forward(self, x):
        self.calls += 1
        self.now[0] += self.seconds
        return x


def test_a_hopeless_kernel_is_timed_in_the_first_round_only(monkeypatch):
    now = [0.0]  # a clock that moves only when a kernel runs: powers of two, so every reading is exact
    monkeypatch.setattr(sparse_module, "layer_clock", lambda device: lambda: now[0])
    dense, close, slow = Ticker(2**-10, now), Ticker(2**-9, now), Ticker(2**-4, now)  # 1x, 2x, 64x dense
    settings = TimingSettings(repeats=5, warmup=1, sample_s=2**-7, max_inner=64, hopeless=3.0)
    seconds = time_kernels({DENSE: dense, "close": close, "slow": slow}, torch.zeros(1), settings)
    inner = 8  # a round of dense lasts sample_s: 2**-7 / 2**-10 calls
    assert dense.calls == 1 + 1 + 5 * inner  # warm-up, the call that sizes a round, five rounds
    assert close.calls == 1 + 5 * inner  # within 3x of dense: timed in every round
    assert slow.calls == 1 + inner  # warm-up, then the first round only
    assert seconds == {DENSE: 2**-10, "close": 2**-9, "slow": 2**-4}  # the cut kernel keeps its first round
    assert choose_kernel(seconds) == DENSE


def test_kernels_are_timed_on_the_threads_cpu_clock_only_with_one_thread():
    """The tests run one intra-op thread; the wall-clock branch (several threads) is checked here."""
    cpu = torch.device("cpu")
    assert sparse_module.layer_clock(cpu) is time.thread_time
    torch.set_num_threads(2)
    try:
        assert sparse_module.layer_clock(cpu) is time.perf_counter
    finally:
        torch.set_num_threads(1)
    assert sparse_module.layer_clock(torch.device("meta")) is time.perf_counter
