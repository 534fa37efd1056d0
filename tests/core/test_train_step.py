"""Training steps: the ordinary step, the CUDA-graph step and the choice between them; the loop's precision
and resume point.

The CUDA tests run where there is a GPU (scripts/gpu_check.sh runs them); the choice and the optimizer
state handling are checked everywhere.
"""

import copy
import io

import pytest
import torch

from prunelab.core.evaluation import FP32, Precision, evaluate
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.train import (
    GRAPH_WARMUP_STEPS,
    GraphedTrainStep,
    Learner,
    LoopOptions,
    graph_obstacle,
    load_optimizer_state,
    make_optimizer,
    ordinary_step,
    train_epoch,
    train_eval_loop,
    train_step,
)
from prunelab.models.layers import keep_pruned_at_zero, masked_parameters, trainable_parameters
from prunelab.models.registry import build_model

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def _pruned_resnet(device) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    prune(model, PruneSettings("rand", 1.0), [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))])
    return model.to(device, memory_format=torch.channels_last)


def _batches(device, sizes) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(n, 3, 32, 32, generator=gen).to(device, memory_format=torch.channels_last),
             torch.randint(0, 10, (n,), generator=gen).to(device)) for n in sizes]


def test_the_graph_is_asked_for_only_where_it_can_run():
    model = torch.nn.Linear(3, 2)
    adam = make_optimizer("adam", model.parameters(), 1e-3, 0.0)
    capturable = make_optimizer("adam", model.parameters(), 1e-3, 0.0, capturable=True)
    sgd = make_optimizer("momentum", model.parameters(), 1e-3, 0.0)
    assert "CUDA device" in graph_obstacle("cpu", capturable, False)
    assert "mixed precision" in graph_obstacle("cuda", capturable, True)
    assert "capturable" in graph_obstacle("cuda", adam, False)
    assert graph_obstacle("cuda", capturable, False) is None
    assert graph_obstacle("cuda:0", sgd, False) is None  # SGD keeps no step count
    # on the CPU a graph is never made, whatever is asked
    assert not isinstance(train_step(model, capturable, "cpu", cuda_graph=True), GraphedTrainStep)


def test_the_precision_decides_whether_a_cuda_step_may_be_a_graph():
    # made, not run: choosing a step touches no device
    model = torch.nn.Linear(3, 2)
    capturable = make_optimizer("adam", model.parameters(), 1e-3, 0.0, capturable=True)
    assert isinstance(train_step(model, capturable, "cuda", FP32, cuda_graph=True), GraphedTrainStep)
    for dtype in (torch.float16, torch.bfloat16):
        step = train_step(model, capturable, "cuda", Precision(dtype), cuda_graph=True)
        assert not isinstance(step, GraphedTrainStep), dtype
    assert not isinstance(train_step(model, capturable, "cuda", FP32), GraphedTrainStep)  # not asked for


def _autocast_log(model: torch.nn.Module) -> list[bool]:
    """Whether each forward of ``model`` from now on runs under CPU autocast."""
    log: list[bool] = []
    model.register_forward_hook(lambda *_: log.append(torch.is_autocast_enabled("cpu")))
    return log


def test_steps_and_evaluation_autocast_exactly_when_the_precision_is_mixed():
    batches = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))] * 2
    for precision, expected in ((FP32, False), (Precision(torch.bfloat16), True)):
        model = torch.nn.Linear(3, 2)
        log = _autocast_log(model)
        step = ordinary_step(model, torch.optim.SGD(model.parameters(), lr=0.1), precision)
        train_epoch(model, step, batches, "cpu")
        evaluate(model, batches, "cpu", precision)
        assert log == [expected] * 4, precision


def _learner(model: torch.nn.Module) -> Learner:
    optimizer = make_optimizer("momentum", model.parameters(), 0.1, 0.0)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1], gamma=0.5)
    return Learner(model, optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False))


def test_the_loop_trains_in_its_options_precision_and_resumes_after_the_last_row():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    log = _autocast_log(model)
    batches = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))] * 3
    learner = _learner(model)
    options = LoopOptions(torch.device("cpu"), Precision(torch.bfloat16), show_progress=False)
    saved: list[int] = []
    rows = train_eval_loop(learner, batches, batches[:1], 2, "post", options, after_epoch=saved.append)
    assert [r["epoch"] for r in rows] == saved == [0, 1, 2]
    assert [r["lr"] for r in rows] == [0.1, 0.1, 0.05]  # the rate each epoch trained at (the drop after epoch 1)
    assert log == [True] * len(log) and len(log) == 1 + 2 * (3 + 1)  # the evaluations and the steps
    # resuming after epoch 2: neither the evaluation before training nor a finished epoch again
    train_eval_loop(learner, batches, batches[:1], 3, "post", options, rows=rows, done=2, after_epoch=saved.append)
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3] and saved[-1] == 3
    train_eval_loop(learner, batches, batches[:1], 3, "post", options, rows=rows, done=3)  # nothing left
    assert len(rows) == 4


def test_a_learners_state_continues_training_as_the_learner_itself():
    torch.manual_seed(0)
    batches = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))] * 2
    first = _learner(torch.nn.Linear(3, 2))
    for _ in range(2):
        train_epoch(first.model, ordinary_step(first.model, first.optimizer), batches, "cpu")
        first.scheduler.step()
    saved = io.BytesIO()  # through a file, as a checkpoint: the state dict's tensors are the learner's own
    torch.save(first.state_dict(), saved)
    saved.seek(0)
    second = _learner(torch.nn.Linear(3, 2))
    second.load_state_dict(torch.load(saved, weights_only=True))
    for learner in (first, second):
        train_epoch(learner.model, ordinary_step(learner.model, learner.optimizer), batches, "cpu")
    assert second.optimizer.param_groups[0]["lr"] == first.optimizer.param_groups[0]["lr"] == 0.05
    assert all(torch.equal(p, q) for p, q in zip(first.model.parameters(), second.model.parameters()))


def test_an_explicit_ordinary_step_trains_as_the_default_one():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    b = copy.deepcopy(a)
    batches = [(x.contiguous(), y) for x, y in _batches("cpu", [4, 4, 3])]
    opt_a, opt_b = (make_optimizer("adam", m.parameters(), 1e-2, 0.0) for m in (a, b))
    loss_a = train_epoch(a, ordinary_step(a, opt_a), batches, "cpu")
    loss_b = train_epoch(b, train_step(b, opt_b, "cpu", cuda_graph=True), batches, "cpu")
    assert loss_a == loss_b
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_a_checkpoint_keeps_the_loading_optimizers_capturable_setting():
    model = torch.nn.Linear(3, 2)
    made = make_optimizer("adam", model.parameters(), 1e-3, 0.0)
    model(torch.randn(4, 3)).sum().backward()
    made.step()
    state = made.state_dict()
    state["param_groups"][0]["capturable"] = True  # as written by a CUDA run with graphs
    fresh = make_optimizer("adam", model.parameters(), 1e-3, 0.0)
    load_optimizer_state(fresh, state)
    assert fresh.param_groups[0]["capturable"] is False
    steps = [fresh.state[p]["step"] for p in model.parameters()]
    assert all(s.device.type == "cpu" and float(s) == 1.0 for s in steps)
    fresh.step()  # a CPU optimizer that is not capturable steps with its counts on the CPU
    assert float(fresh.state[next(model.parameters())]["step"]) == 2.0


@torch.no_grad()
def _copy_training_state(source, source_opt, target, target_opt) -> None:
    """``target`` and its optimizer take ``source``'s weights, buffers and optimizer state, in place (a CUDA
    graph reads them where they are)."""
    for t, s in zip(target.state_dict().values(), source.state_dict().values()):
        t.copy_(s)
    for t, s in zip(trainable_parameters(target), trainable_parameters(source)):
        for key, value in source_opt.state.get(s, {}).items():
            target_opt.state[t][key].copy_(value)


@cuda
@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_each_replay_trains_as_an_ordinary_step_from_the_same_state(optimizer, monkeypatch):
    # Each step starts both models from the same state, so float noise cannot grow over steps; cuDNN's
    # deterministic algorithms make the two steps' gradients comparable to rounding.
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    device = torch.device("cuda")
    ours = _pruned_resnet(device)
    twin = copy.deepcopy(ours)
    opts, schedules = [], []
    for model in (ours, twin):
        opt = make_optimizer(optimizer, trainable_parameters(model), 1e-2, 1e-4, capturable=True)
        keep_pruned_at_zero(opt, model)
        opts.append(opt)
        schedules.append(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=0.1))
    graphed, ordinary = train_step(ours, opts[0], device, cuda_graph=True), ordinary_step(twin, opts[1])
    assert isinstance(graphed, GraphedTrainStep)
    epoch = _batches(device, [32] * (GRAPH_WARMUP_STEPS + 4) + [8])  # a short last batch takes an ordinary step
    ours.train()
    twin.train()
    for _ in range(2):  # the rate drops after the first epoch: the graph is captured again
        for i, (x, y) in enumerate(epoch):
            _copy_training_state(twin, opts[1], ours, opts[0])
            torch.testing.assert_close(graphed(x, y), ordinary(x, y), rtol=1e-5, atol=1e-6)
            for (name, p), q in zip(ours.state_dict().items(), twin.state_dict().values()):
                torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=lambda m, n=name, i=i: f"step {i}, {n}: {m}")
        for schedule in schedules:
            schedule.step()
    assert graphed.captures == 2
    # first epoch: the warm-up steps, then a capture and 4 replays; second: a capture and 7 replays
    assert graphed.replays == 4 + 7
    for t in masked_parameters(ours, True, True, True):
        assert not t.param[t.mask == 0].any(), f"{t.module_name}.{t.param_name}: a pruned weight moved"


class _FakeGraph:
    def replay(self) -> None:
        pass


def test_the_graph_is_captured_for_the_first_batchs_shape_and_released_whole(monkeypatch):
    """The dispatch of a graphed step, on the CPU with a stand-in capture: a short batch where the capture is
    due waits for a full one, and a new learning rate drops every tensor of the old graph's memory."""
    captured = []

    def fake_capture(self, x, y):
        self.x, self.y, self.loss, self.grads = x.clone(), y.clone(), torch.zeros(()), [torch.zeros(1)]
        self.graph, self.rates = _FakeGraph(), self._rates()
        captured.append(x.shape[0])

    monkeypatch.setattr(GraphedTrainStep, "_capture", fake_capture)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = GraphedTrainStep(model, optimizer)
    batch = {n: (torch.randn(n, 4), torch.randint(0, 3, (n,))) for n in (8, 3)}
    for n in [8] * GRAPH_WARMUP_STEPS + [3, 8, 3, 8]:
        step(*batch[n])
    assert captured == [8]
    assert (step.replays, step.warm_steps) == (2, GRAPH_WARMUP_STEPS + 1)  # the short batches take ordinary steps
    optimizer.param_groups[0]["lr"] = 0.01
    step(*batch[3])
    assert step.graph is None and step.loss is None and step.grads is None
    step(*batch[8])
    assert captured == [8, 8]


def test_a_checkpoint_from_more_gpus_restores_the_generators_there_are(monkeypatch):
    from prunelab.runs import checkpoint

    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for module in (torch.cuda, torch.cuda.random):
        monkeypatch.setattr(module, "set_rng_state", lambda state, device="cuda": restored.append(device))
    checkpoint.set_rng_state({"rng_cpu": torch.get_rng_state(), "rng_cuda": [torch.zeros(16, dtype=torch.uint8)] * 2})
    assert restored == [0]


@cuda
def test_a_cpu_checkpoint_resumes_into_a_capturable_optimizer_that_a_graph_can_step():
    device = torch.device("cuda")
    model = _pruned_resnet(device)
    plain = make_optimizer("adam", trainable_parameters(model), 1e-3, 0.0)
    train_epoch(model, ordinary_step(model, plain), _batches(device, [16]), device)
    fresh = make_optimizer("adam", trainable_parameters(model), 1e-3, 0.0, capturable=True)
    load_optimizer_state(fresh, plain.state_dict())
    assert all(s["step"].device.type == "cuda" for s in fresh.state.values())
    step = train_step(model, fresh, device, cuda_graph=True)
    train_epoch(model, step, _batches(device, [16] * (GRAPH_WARMUP_STEPS + 2)), device)
    assert step.replays == 2
    assert all(float(s["step"]) == GRAPH_WARMUP_STEPS + 3 for s in fresh.state.values())


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "rms"])
def test_one_kernel_optimizers_step_as_the_per_tensor_ones(name):
    """make_optimizer's fused Adam and SGD (foreach RMSprop) take the per-tensor implementation's steps, and an
    old per-tensor checkpoint resumes into them with the fused setting kept."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    ours = make_optimizer(name, params, 1e-2, 1e-3)
    group = ours.param_groups[0]
    assert group.get("fused") or group.get("foreach")
    options = {"sgd": {}, "momentum": {"momentum": 0.9, "nesterov": True}, "adam": {}, "rms": {}}[name]
    kind = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "adam": torch.optim.Adam, "rms": torch.optim.RMSprop}
    plain = kind[name](twins, lr=1e-2, weight_decay=1e-3, foreach=False, **options)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        for p, q, g in zip(params, twins, grads):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        plain.step()
    for p, q in zip(params, twins):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    resumed = make_optimizer(name, params, 1e-2, 1e-3)
    load_optimizer_state(resumed, plain.state_dict())
    assert {k: resumed.param_groups[0].get(k) for k in ("fused", "foreach")} == {
        k: group.get(k) for k in ("fused", "foreach")}
    for p in params:
        p.grad = torch.randn_like(p)
    resumed.step()  # the resumed step counts sit where the fused kernel reads them
