"""The fused network: the runs' networks widened into one, its tensors joined and split back, and what it
refuses to fuse."""

import copy
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunelab.core.evaluation import FP32
from prunelab.core.fused import (
    FusedModel,
    FusionRefused,
    StackedLinear,
    check_fused,
    fuse_learners,
    fused_losses,
    split_learner,
    stack_inputs,
)
from prunelab.core.fused_loop import MEMORY_SHARE, device_room, fused_chunk, held_bytes, step_bytes, time_fusion
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.train import Learner, LoopOptions, make_optimizer
from prunelab.models import layers
from prunelab.models.layers import keep_pruned_at_zero, trainable_parameters
from prunelab.models.registry import build_model

SETUPS = {"fc": ("default", (1, 28, 28)), "conv": ("default", (1, 28, 28)), "resnet20": ("lottery", (3, 32, 32))}


def _pruned(name: str, seed: int, compression: float) -> nn.Module:
    model_class, shape = SETUPS[name]
    torch.manual_seed(seed)
    model = build_model(name, model_class, shape, 10)
    batch = [(torch.randn(8, *shape), torch.randint(0, 10, (8,)))]
    with warnings.catch_warnings():  # collapsed layers are welcome here: the residual scales pruned to zero
        warnings.simplefilter("ignore")
        prune(model, PruneSettings("snip", compression, prune_bias=True, prune_batchnorm=True, prune_residual=True),
              batch)
    return model.to(memory_format=torch.channels_last) if name != "fc" else model


def _learner(model: nn.Module) -> Learner:
    optimizer = make_optimizer("adam", trainable_parameters(model), 1e-2, 1e-4)
    keep_pruned_at_zero(optimizer, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1], gamma=0.1)
    return Learner(model, optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False))


def _inputs(name: str, runs: int, batch: int = 16, seed: int = 3):
    shape = SETUPS[name][1]
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, *shape, generator=gen) for _ in range(runs)]
    xs = [x.contiguous(memory_format=torch.channels_last) for x in xs] if name != "fc" else xs
    return xs, [torch.randint(0, 10, (batch,), generator=gen) for _ in range(runs)]


@pytest.mark.parametrize("name", SETUPS)
def test_a_fused_step_is_each_runs_own_step(name):
    models = [_pruned(name, seed, c) for seed, c in ((1, 0.5), (2, 1.0), (3, 2.0))]
    separate = [_learner(m) for m in models]
    fused = fuse_learners([_learner(m) for m in models], _learner)
    check_fused(fused.model, models, _inputs(name, 1, 2)[0][0])
    xs, ys = _inputs(name, len(models))
    for _ in range(2):  # two steps: the second with Adam's moments from the first
        own = []
        for learner, x, y in zip(separate, xs, ys):
            learner.model.train()
            learner.optimizer.zero_grad()
            loss = F.cross_entropy(learner.model(x), y)
            loss.backward()
            learner.optimizer.step()
            own.append(loss.item())
        fused.model.train()
        fused.optimizer.zero_grad()
        losses = fused_losses(fused.model(stack_inputs(xs)), torch.stack(ys, dim=1))
        losses.sum().backward()
        fused.optimizer.step()
        assert losses.tolist() == pytest.approx(own, rel=1e-5)
    for learner, state in zip(separate, split_learner(fused)):
        ours = learner.state_dict()
        assert state["model"].keys() == ours["model"].keys()
        # Adam's first steps are about lr in size: a loose bound. A gradient within rounding of zero can take the
        # step (lr, then lr / 10) the other way in one of the two, as 3 of ResNet20's 270,000 weights did on an
        # AVX2-only CPU: no weight further apart than two such steps, and those past the bound that rare
        apart = {key: (state["model"][key].float() - value.float()).abs() for key, value in ours["model"].items()}
        assert all(a.max() <= 2 * (1e-2 + 1e-3) + 1e-6 for a in apart.values() if a.numel())
        assert sum(int((a > 5e-3).sum()) for a in apart.values()) <= 1e-4 * sum(a.numel() for a in apart.values())
        masks = [key for key in ours["model"] if key.endswith("_mask")]
        assert all(torch.equal(state["model"][key], ours["model"][key]) for key in masks)
        for key in masks:  # pruned weights stayed exactly zero
            weight = state["model"][key.removesuffix("_mask")]
            assert torch.all(weight[state["model"][key] == 0] == 0), key
        assert state["optimizer"]["state"].keys() == ours["optimizer"]["state"].keys()
        assert state["scheduler"] == ours["scheduler"]
    [last] = split_learner(fused, [len(separate) - 1])  # one run's state alone: the same as split from all
    every = split_learner(fused)[-1]
    assert all(torch.equal(last["model"][k], v) for k, v in every["model"].items())
    assert all(torch.equal(last["optimizer"]["state"][i][n], v) for i, moments in every["optimizer"]["state"].items()
               for n, v in moments.items())


def _losses_over_steps(learners_or_fused, xs_steps, ys_steps) -> list[list[float]]:
    """Each step's loss of each run, training as it goes: separate learners, or one fused learner."""
    out = []
    for xs, ys in zip(xs_steps, ys_steps):
        if isinstance(learners_or_fused, list):
            row = []
            for learner, x, y in zip(learners_or_fused, xs, ys):
                learner.optimizer.zero_grad()
                loss = F.cross_entropy(learner.model(x), y)
                loss.backward()
                learner.optimizer.step()
                row.append(loss.item())
        else:
            fused = learners_or_fused
            fused.optimizer.zero_grad()
            losses = fused_losses(fused.model(stack_inputs(xs)), torch.stack(ys, dim=1))
            losses.sum().backward()
            fused.optimizer.step()
            row = losses.tolist()
        out.append(row)
    return out


def test_resnet20_drifts_from_separate_runs_no_faster_than_any_change_of_rounding():
    """ResNet20 trained from initialization amplifies any change of rounding within a few steps; fusing is one
    (its backward sums in another order), another memory layout is another. Over six steps the fused runs
    stay as close to the separate runs as the separate runs in another layout do."""
    models = [_pruned("resnet20", seed, 1.0) for seed in (1, 2)]
    steps = [_inputs("resnet20", 2, 32) for _ in range(6)]
    xs_steps = [[x + k for x in xs] for k, (xs, _) in enumerate(steps)]
    ys_steps = [ys for _, ys in steps]
    separate = _losses_over_steps([_learner(copy.deepcopy(m)) for m in models], xs_steps, ys_steps)
    layout = _losses_over_steps([_learner(copy.deepcopy(m).to(memory_format=torch.contiguous_format)) for m in models],
                                [[x.contiguous() for x in xs] for xs in xs_steps], ys_steps)
    fused = _losses_over_steps(fuse_learners([_learner(copy.deepcopy(m)) for m in models], _learner), xs_steps,
                               ys_steps)

    def drift(other):
        return max(abs(a - b) / abs(a) for row, other_row in zip(separate, other) for a, b in zip(row, other_row))

    assert drift(layout) > 0  # rounding does move it
    assert drift(fused) <= 10 * drift(layout) + 1e-6
    assert drift(fused[:2]) < 1e-5  # the first steps agree as the records' test asks


def test_split_undoes_join_and_a_run_resumes_from_its_part():
    models = [_pruned("conv", seed, 1.0) for seed in (1, 2)]
    learners = [_learner(m) for m in models]
    xs, ys = _inputs("conv", 2)
    for learner, x, y in zip(learners, xs, ys):  # some optimizer state to carry
        F.cross_entropy(learner.model(x), y).backward()
        learner.optimizer.step()
    fused = fuse_learners(learners, _learner)
    for learner, state in zip(learners, split_learner(fused)):
        ours = learner.state_dict()
        assert all(torch.equal(state["model"][k], v) for k, v in ours["model"].items())
        for index, entries in ours["optimizer"]["state"].items():
            assert all(torch.equal(state["optimizer"]["state"][index][k], v) for k, v in entries.items())
        fresh = _learner(_pruned("conv", 9, 0.5))
        fresh.load_state_dict(state)  # a run's own learner takes its part as its own checkpoint
        assert all(torch.equal(fresh.model.state_dict()[k], v) for k, v in ours["model"].items())


class _MixesChannels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = layers.Conv2d(1, 4, 3, padding=1)
        self.fc = layers.Linear(4, 10)

    def forward(self, x):
        out = self.conv(x)
        out = out - out.mean(dim=1, keepdim=True)  # across all channels: in a fused network, across runs
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def test_forward_code_that_mixes_runs_is_refused_before_training():
    models = [_MixesChannels() for _ in range(3)]
    with pytest.raises(FusionRefused, match="mixes channels"):
        check_fused(FusedModel(models), models, torch.randn(2, 1, 8, 8))


def test_runs_whose_outputs_are_not_finite_are_refused_for_that_reason():
    """As ResNet1202's are at initialization: no tolerance can compare them, so the check says why it refuses."""
    models = [nn.Sequential(nn.Flatten(), layers.Linear(4, 3)) for _ in range(2)]
    with torch.no_grad():
        models[1][1].weight.fill_(float("inf"))
        models[1][1].weight[0] = float("-inf")
    with pytest.raises(FusionRefused, match="not finite"):
        check_fused(FusedModel(models), models, torch.ones(2, 4))


def test_the_check_computes_in_full_fp32_and_leaves_tf32_as_it_was(monkeypatch):
    """On an H200 a right ResNet20 network was refused under TF32 (cuDNN's default for convolutions): TF32 rounds
    a grouped and a single convolution apart. The check turns TF32 off while it computes, and back after."""
    seen = []
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # TF32 products, as a user may ask
    models = [_pruned("fc", seed, 1.0) for seed in (1, 2)]
    fused = FusedModel(models)

    def recording(module):  # each forward of the check, the fused network's and the runs' own, notes the flags
        module.register_forward_pre_hook(lambda *_: seen.append(
            (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)))

    for module in (fused, *models):
        recording(module)
    try:
        check_fused(fused, models, _inputs("fc", 1, 2)[0][0])
        assert seen == [(False, False)] * 3
        assert torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize("layer", [nn.Dropout(0.5), nn.LayerNorm(10)])
def test_layers_without_a_fused_twin_are_refused(layer):
    models = [nn.Sequential(nn.Flatten(), layers.Linear(4, 10), layer) for _ in range(2)]
    with pytest.raises(FusionRefused):
        FusedModel(models)


def test_runs_at_different_points_of_training_are_refused():
    models = [_pruned("fc", seed, 1.0) for seed in (1, 2)]
    learners = [_learner(m) for m in models]
    learners[1].optimizer.step()
    learners[1].scheduler.step()  # one run an epoch further on its schedule
    with pytest.raises(FusionRefused, match="scheduler"):
        fuse_learners(learners, _learner)


def test_timing_a_fused_step_against_a_single_one():
    models = [_pruned("fc", seed, 1.0) for seed in (1, 2, 3)]
    fused = fuse_learners([_learner(m) for m in models], _learner)
    xs, ys = _inputs("fc", 1, 64)
    timing = time_fusion(fused, _learner(_pruned("fc", 4, 1.0)), (xs[0], ys[0]), LoopOptions(torch.device("cpu"), FP32),
                         repeats=2)
    assert timing.runs == 3 and timing.fused_s > 0 and timing.separate_s > 0
    assert timing.speedup == pytest.approx(3 * timing.separate_s / timing.fused_s)
    assert len(timing.turns) == 2 and min(timing.turns) <= timing.speedup <= max(timing.turns)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("name", ["fc", "resnet20"])
def test_a_graphed_fused_step_trains_as_the_ordinary_fused_step(name):
    """The fused step replayed as a CUDA graph (as fused groups train on a GPU) takes the steps the ordinary
    fused step takes, from the same start."""
    from prunelab.core.train import GRAPH_WARMUP_STEPS, GraphedTrainStep, ordinary_step, train_step

    device = torch.device("cuda")
    models = [_pruned(name, seed, 1.0).to(device) for seed in (1, 2)]

    def learner(model):
        optimizer = make_optimizer("adam", trainable_parameters(model), 1e-3, 0.0, capturable=True)
        keep_pruned_at_zero(optimizer, model)
        return Learner(model, optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, []),
                       torch.amp.GradScaler("cuda", enabled=False))

    graphed = fuse_learners([learner(copy.deepcopy(m)) for m in models], learner)
    plain = fuse_learners([learner(copy.deepcopy(m)) for m in models], learner)
    step = train_step(graphed.model, graphed.optimizer, device, cuda_graph=True, criterion=fused_losses)
    assert isinstance(step, GraphedTrainStep)
    reference = ordinary_step(plain.model, plain.optimizer, criterion=fused_losses)
    graphed.model.train()
    plain.model.train()
    start = {key: value.detach().clone() for key, value in plain.model.state_dict().items()}
    for step_number in range(GRAPH_WARMUP_STEPS + 3):
        xs, ys = _inputs(name, 2, seed=step_number)  # new inputs each step: a graph must read them
        x, y = stack_inputs([v.to(device) for v in xs]), torch.stack(ys, dim=1).to(device)
        torch.testing.assert_close(step(x, y), reference(x, y), rtol=1e-4, atol=1e-5)
    assert step.replays > 0
    # each tensor's update as a whole, not each weight's: Adam moves a weight about lr a step whatever its
    # gradient's size, so rounding flips the step of a weight whose gradient is near zero (on an H200, up to 18
    # of a ResNet20 layer's weights ended 5e-4 apart, a batch norm's weights 2.7% of their update apart, TF32
    # on or off); a layer the graph does not update, or updates wrongly, misses by its whole update
    ours, theirs = graphed.model.state_dict(), plain.model.state_dict()
    for key, value in theirs.items():
        if not value.is_floating_point():
            assert torch.equal(ours[key], value), key
            continue
        moved = (value - start[key]).norm()
        assert (ours[key] - value).norm() <= 0.1 * moved + 1e-7, key
        if name == "fc":  # no convolutions: the same products, element by element
            torch.testing.assert_close(ours[key], value, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["fc", "conv"])
def test_runs_of_one_seed_reading_one_input_block_train_as_with_a_copy_each(name):
    """Two seeds, two runs each: the first layer reading each seed's batch once trains as if every run got a copy."""
    models = [_pruned(name, seed, c) for seed in (1, 2) for c in (0.5, 1.0)]
    copied = fuse_learners([_learner(copy.deepcopy(m)) for m in models], _learner)
    shared = fuse_learners([_learner(copy.deepcopy(m)) for m in models], _learner, shared=2)
    assert (shared.model.inputs, copied.model.inputs) == (2, 4)
    check_fused(shared.model, models, _inputs(name, 1, 2)[0][0])
    xs, ys = _inputs(name, 2)
    labels = torch.stack([ys[0], ys[0], ys[1], ys[1]], dim=1)
    for _ in range(2):
        rows = []
        for learner, inputs in ((copied, [xs[0], xs[0], xs[1], xs[1]]), (shared, xs)):
            learner.optimizer.zero_grad()
            losses = fused_losses(learner.model(stack_inputs(inputs)), labels)
            losses.sum().backward()
            learner.optimizer.step()
            rows.append(losses.tolist())
        assert rows[1] == pytest.approx(rows[0], rel=1e-6)  # the products sum in another order
    for ours, theirs in zip(split_learner(shared), split_learner(copied)):
        for key, value in theirs["model"].items():
            assert torch.allclose(ours["model"][key], value, atol=1e-4), key  # Adam: about lr per step


def test_runs_that_do_not_divide_into_input_blocks_are_refused():
    with pytest.raises(FusionRefused, match="blocks of 2"):
        FusedModel([_pruned("fc", seed, 1.0) for seed in (1, 2, 3)], shared=2)


def test_stacked_batches_keep_a_layout_the_first_layer_reads_without_a_copy():
    one_channel = [torch.randn(4, 1, 28, 28) for _ in range(3)]  # both layouts at once: stacked contiguous
    assert stack_inputs(one_channel).is_contiguous()
    rgb = [torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last) for _ in range(3)]
    joined = stack_inputs(rgb)
    assert joined.shape == (4, 9, 8, 8) and joined.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(joined[:, 3:6], rgb[1])


@pytest.mark.parametrize("shared", [1, 3])
def test_a_stacked_linear_layer_is_each_runs_linear_layer(shared):
    """Run m's output block is its own layer's output on its input block (the S = M / R inputs read by R runs
    each), and its weights' gradients are that layer's."""
    runs, layers_ = 6, [nn.Linear(5, 4) for _ in range(6)]
    stacked = StackedLinear(runs, 5, 4, bias=True, shared=shared)
    with torch.no_grad():
        stacked.weight.copy_(torch.stack([layer.weight for layer in layers_]))
        stacked.bias.copy_(torch.stack([layer.bias for layer in layers_]))
    xs = [torch.randn(7, 5) for _ in range(runs // shared)]
    out = stacked(torch.cat(xs, dim=1))
    assert out.shape == (7, runs, 4)
    for m, layer in enumerate(layers_):
        torch.testing.assert_close(out[:, m], layer(xs[m // shared]))
    out.square().sum().backward()
    for m, layer in enumerate(layers_):
        layer(xs[m // shared]).square().sum().backward()
        torch.testing.assert_close(stacked.weight.grad[m], layer.weight.grad)
        torch.testing.assert_close(stacked.bias.grad[m], layer.bias.grad)


@pytest.mark.parametrize("fits,chunk", [(40, (18, 6)), (18, (18, 6)), (17, (12, 6)), (6, (6, 6)), (5, (5, 5)),
                                        (1, (1, 1)), (0, (1, 1))])
def test_a_group_is_cut_into_whole_input_blocks_where_the_memory_holds_them(fits, chunk):
    # 18 runs, 6 to an input block (3 seeds), each step 1 MB: the room holds `fits` of them
    room = fits * 2**20 / MEMORY_SHARE + 1
    assert fused_chunk(18, 6, 2**20, room, cuda_graph=False) == chunk
    assert fused_chunk(18, 6, 2**20, 2 * room, cuda_graph=True) == chunk  # a CUDA graph's step counts twice
    assert fused_chunk(18, 6, 2**20, None, cuda_graph=False) == (18, 6)  # off CUDA, memory does not bound it


def test_step_memory_is_measured_on_cuda_only():
    calls = []
    assert step_bytes(lambda x, y: calls.append(1), (torch.zeros(1), torch.zeros(1)), torch.device("cpu")) == 0
    assert calls == [] and device_room(torch.device("cpu")) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_steps_memory_is_what_its_activations_take():
    device = torch.device("cuda")
    weight = torch.randn(1024, 1024, device=device, requires_grad=True)

    def step(x, y):
        (x @ weight).relu().sum().backward()

    x = torch.randn(4096, 1024, device=device)
    need = step_bytes(step, (x, None), device)
    assert 4096 * 1024 * 4 <= need <= 8 * 4096 * 1024 * 4  # the product's output at least, a few copies at most
    assert device_room(device) > need


def test_a_run_holds_no_device_memory_beyond_its_step_off_cuda():
    assert held_bytes(_pruned("fc", 1, 1.0)) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_fused_group_takes_no_more_than_its_runs_planned_memory():
    # what a fused network of 4 ResNet20 runs allocates (its state, a step, a checkpoint commit's copies of
    # each run's state) stays within what a group plans for 4 runs: one run's step and held bytes each, with
    # the share of the room it leaves for what no plan counts (the fused step's workspace, fragmentation)
    from prunelab.core.train import ordinary_step

    device, runs = torch.device("cuda"), 4
    models = [_pruned("resnet20", seed, 1.0).to(device) for seed in range(1, runs + 1)]
    single = _learner(_pruned("resnet20", 9, 1.0).to(device))
    xs, ys = _inputs("resnet20", runs, 64)
    xs, ys = [x.to(device) for x in xs], [y.to(device) for y in ys]
    plan = step_bytes(ordinary_step(single.model, single.optimizer), (xs[0], ys[0]), device) + held_bytes(single.model)
    del single
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fused = fuse_learners([_learner(m) for m in models], _learner)
    ordinary_step(fused.model, fused.optimizer, criterion=fused_losses)(stack_inputs(xs), torch.stack(ys, dim=1))
    states = split_learner(fused)
    torch.cuda.synchronize(device)
    assert states and torch.cuda.max_memory_allocated(device) - before <= runs * plan / MEMORY_SHARE
