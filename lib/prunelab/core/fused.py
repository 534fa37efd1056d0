"""Runs of one set-up trained as one network: each keeps its own masks, weights, batches, losses and optimizer
state, and the device takes one step for all of them.

The route is widening: every layer with weights becomes its M-fold twin (a convolution of M times the
channels and groups, batch norm and residual scales of M*C channels, a linear layer as M stacked matrices
applied by one batched product, :class:`StackedLinear`). Activations are [B, M*C, ...] with run m's channels
as block m, so the model families' own forward code runs unchanged and batch norm's statistics stay per
run. The loss is the sum of the runs' mean losses, so each run's gradients are its own, and SGD, Adam and
RMSprop, being elementwise, step each run as its own optimizer would.

Runs of one seed draw the same batches. With ``shared`` = R, each R consecutive runs read one input block:
the first layer takes the S = M / R distinct batches (a convolution of S groups, or S products of R runs'
matrices side by side), so the batch is not copied R times into the fused input. Not ``torch.func.vmap``:
batch norm's running statistics would need batched buffers updated in place under the transform, and every
operation would pay its dispatch; widened layers are plain modules that mask hooks and CUDA graphs handle.

What differs from separate runs is the order of reductions, so losses agree within 1e-5 relative (the
tests' bound; mostly nearer 1e-6), not bit for bit. Layers of other kinds, dropout (a random stream per run)
and forward code that mixes channels cannot be fused; :func:`check_fused` compares outputs with each run's
before training, so such a network is refused, never trained wrongly. The training loop is in
:mod:`prunelab.core.fused_loop`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.layers import IDENTITY_TYPES, MaskedMixin, apply_masks, trainable_parameters
from .train import Learner, load_optimizer_state

#: layers without weights that a run would draw random numbers in: a fused step would share one stream
RANDOM_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


class FusionRefused(ValueError):
    """These runs cannot be trained as one network (the message says why); they train one after another."""


class StackedLinear(MaskedMixin, nn.Module):
    """M linear layers as one: ``weight`` [M, out, in] and ``bias`` [M, out], applied by one batched matrix
    product to [B, M*in] or [B, M, in] (run m's features are block m, as everywhere in the fused network).

    The product is taken batch-last, W [M, out, in] @ x [M, in, B], and the output [B, M, out] is a view of its
    [M, out, B]: the next stacked layer reads it as [M, in, B] without a copy, an elementwise activation in
    between keeps that layout, and the weight gradient comes out in the weight's own layout (a batch-first
    product's would be transposed into it by a copy every step).

    With ``shared`` = R the input is [B, (M/R)*in]: each R consecutive runs read one block, and each block
    meets its R runs' matrices stacked in one product."""

    def __init__(self, runs: int, in_features: int, out_features: int, bias: bool, shared: int = 1) -> None:
        super().__init__()
        self.runs, self.in_features, self.out_features, self.shared = runs, in_features, out_features, shared
        self.weight = nn.Parameter(torch.empty(runs, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(runs, out_features)) if bias else None
        self._register_masks()

    def forward(self, x: Tensor) -> Tensor:
        inputs = self.runs // self.shared
        columns = x.reshape(x.shape[0], inputs, self.in_features).permute(1, 2, 0)  # [S, in, B]
        weight = self.weight.view(inputs, self.shared * self.out_features, self.in_features)
        out = (torch.bmm(weight, columns) if self.bias is None
               else torch.baddbmm(self.bias.view(inputs, -1, 1), weight, columns))  # [S, R*out, B]
        return out.permute(2, 0, 1).reshape(x.shape[0], self.runs, self.out_features)  # a view


def _widened(leaf: nn.Module, runs: int, shared: int = 1) -> nn.Module:
    """The M-fold twin of one layer, its tensors still to be filled by :meth:`FusedModel.load_runs`; with
    ``shared`` > 1 it reads one input block per ``shared`` runs (the first layer only)."""
    if isinstance(leaf, nn.Linear):
        return StackedLinear(runs, leaf.in_features, leaf.out_features, leaf.bias is not None, shared)
    if isinstance(leaf, RANDOM_LAYERS):
        raise FusionRefused(f"{type(leaf).__name__} draws random numbers in every step")
    if shared > 1 and not (isinstance(leaf, nn.Conv2d) and leaf.groups == 1):
        raise FusionRefused(f"a first {type(leaf).__name__} layer cannot read one input for several runs")
    twin = copy.copy(leaf)  # a shallow copy: its own attribute and tensor tables, filled below
    twin._parameters, twin._buffers, twin._modules = dict(leaf._parameters), dict(leaf._buffers), {}
    if isinstance(leaf, nn.Conv2d):  # with shared inputs: S = M / R groups, each making R runs' channels
        inputs = runs // shared
        twin.in_channels, twin.out_channels, twin.groups = (leaf.in_channels * inputs, leaf.out_channels * runs,
                                                            leaf.groups * inputs)
    elif isinstance(leaf, (nn.modules.batchnorm._BatchNorm, *IDENTITY_TYPES)):
        twin.num_features = leaf.num_features * runs
    elif any(True for _ in leaf.parameters(recurse=False)) or any(True for _ in leaf.buffers(recurse=False)):
        raise FusionRefused(f"{type(leaf).__name__} layers have no fused twin")
    return twin


class FusedModel(nn.Module):
    """M runs' networks of one architecture as one widened network (see the module's docstring).

    Its tensors are joined from the runs' (:meth:`load_runs`) and split back into per-run state dicts
    (:meth:`run_states`): along a new first dimension for :class:`StackedLinear`, end to end along the
    first dimension for every other layer; a 0-dimensional buffer (batch norm's step count) is one for all.
    Its input holds :attr:`inputs` blocks, each read by ``shared`` consecutive runs (see the module).
    """

    def __init__(self, models: Sequence[nn.Module], shared: int = 1) -> None:
        super().__init__()
        if not models:  # one run is allowed: its fused form is what bench/fused.py weighs against the plain one
            raise FusionRefused("fusing needs at least one run")
        if shared < 1 or len(models) % shared:
            raise FusionRefused(f"{len(models)} runs cannot read their inputs in blocks of {shared}")
        self.runs, self.shared = len(models), shared
        first = True  # the first layer with weights reads the shared inputs
        self.net = copy.deepcopy(models[0])
        # a dense classifier's runs have no masks there; its widened twin has
        self.run_keys = list(models[0].state_dict())
        for name, module in list(self.net.named_modules()):
            if any(True for _ in module.children()):
                if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(False)):
                    raise FusionRefused(f"{type(module).__name__} holds weights beside its layers")
                continue
            if name:
                parent, _, child = name.rpartition(".")
                weighted = any(True for _ in module.parameters(recurse=False))
                setattr(self.net.get_submodule(parent), child,
                        _widened(module, self.runs, shared if first and weighted else 1))
                first = first and not weighted
        self.net.to(_device_of(models[0]))
        self.load_runs(models)

    @property
    def inputs(self) -> int:
        """How many input blocks the fused network reads (each by :attr:`shared` consecutive runs)."""
        return self.runs // self.shared

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _stacked(self, key: str) -> bool:
        module = self.net.get_submodule(key.rpartition(".")[0])
        return isinstance(module, StackedLinear)

    def join(self, key: str, tensors: Sequence[Tensor]) -> Tensor:
        """The fused tensor of state-dict entry ``key`` (of the runs' networks) from each run's."""
        if tensors[0].dim() == 0:
            if any(not torch.equal(t, tensors[0]) for t in tensors[1:]):
                raise FusionRefused(f"the runs are at different points of training ({key} differs)")
            return tensors[0].clone()
        return torch.stack(list(tensors)) if self._stacked(key) else torch.cat(list(tensors))

    def split(self, key: str, tensor: Tensor, runs: Sequence[int] | None = None) -> list[Tensor]:
        """Each run's part (a copy) of the fused tensor of ``key``, or only the parts of ``runs`` (indices): the
        inverse of :meth:`join`."""
        runs = range(self.runs) if runs is None else runs
        if tensor.dim() == 0:
            return [tensor.clone() for _ in runs]
        parts = tensor.unbind(0) if self._stacked(key) else tensor.chunk(self.runs)
        return [parts[run].clone() for run in runs]

    @torch.no_grad()
    def load_runs(self, models: Sequence[nn.Module]) -> None:
        """Fill the fused network's parameters and buffers with the runs' (each run's memory format kept)."""
        states = [model.state_dict() for model in models]
        for key in states[0]:
            owner_name, _, name = key.rpartition(".")
            owner = self.net.get_submodule(owner_name)
            joined = self.join(key, [state[key] for state in states])
            if name in owner._parameters:
                old = owner._parameters[name]
                owner._parameters[name] = nn.Parameter(_like(joined, old), requires_grad=old.requires_grad)
            else:
                owner._buffers[name] = _like(joined, owner._buffers[name])
        apply_masks(self.net)

    def run_states(self, runs: Sequence[int] | None = None) -> list[dict[str, Tensor]]:
        """Each run's state dict (its network's keys), split from the fused one, or only those of ``runs``."""
        runs = range(self.runs) if runs is None else runs
        states: list[dict[str, Tensor]] = [{} for _ in runs]
        whole = self.net.state_dict()
        for key in self.run_keys:
            for state, part in zip(states, self.split(key, whole[key], runs)):
                state[key] = part
        return states

    def param_keys(self) -> list[str]:
        """The state-dict key of each trainable parameter, in the order an optimizer over
        :func:`trainable_parameters` holds them (the runs' optimizers hold theirs in the same order)."""
        names = {id(p): name for name, p in self.net.named_parameters()}
        return [names[id(p)] for p in trainable_parameters(self.net)]

    @torch.no_grad()
    def finite_runs(self) -> list[bool]:
        """Whether each run's parameters and floating-point buffers are all finite."""
        finite = torch.ones(self.runs, dtype=torch.bool, device=_device_of(self.net))
        for tensor in self.net.state_dict().values():
            if tensor.dim() and tensor.is_floating_point():
                finite &= tensor.reshape(self.runs, -1).isfinite().all(dim=1)
        return finite.tolist()


def _like(tensor: Tensor, old: Tensor) -> Tensor:
    """``tensor`` in channels-last layout where ``old`` was (4-d convolution weights), else contiguous."""
    if old.dim() == 4 and old.is_contiguous(memory_format=torch.channels_last) and not old.is_contiguous():
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor.contiguous()


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@contextmanager
def _without_tf32() -> Iterator[None]:
    """CUDA's convolutions and products in full fp32 inside: TF32 (cuDNN's default for convolutions) rounds a
    grouped and a single convolution about 1e-3 apart, which through ResNet20 exceeds the check's tolerance."""
    convolutions, products = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = convolutions
        torch.set_float32_matmul_precision(products)


@torch.no_grad()
def check_fused(fused: FusedModel, models: Sequence[nn.Module], example: Tensor) -> None:
    """Raise :class:`FusionRefused` unless the fused network, in eval mode, gives each run's own outputs on
    ``example`` (one input batch for every run): what catches forward code that mixes runs' channels. It
    computes in full fp32, so that it tests the forward code, not TF32's rounding (which trains either way)."""
    modes = [model.training for model in [fused, *models]]
    fused.eval()
    try:
        with _without_tf32():
            joined = fused(stack_inputs([example] * fused.inputs))
            owns = [model.eval()(example) for model in models]
        for index, own in enumerate(owns):
            if not own.isfinite().all():
                raise FusionRefused("a run's outputs are not finite before training, so the fused network's "
                                    "cannot be checked against them")
            mine = run_outputs(joined, fused.runs)[:, index]
            if mine.shape != own.shape or not torch.allclose(mine, own, rtol=1e-3, atol=1e-4 * (1 + own.abs().max())):
                raise FusionRefused("the fused network's outputs differ from the runs' own: its forward code "
                                    "mixes channels")
    except RuntimeError as error:  # a shape the widened layers cannot take
        raise FusionRefused(f"the fused network does not run: {str(error).splitlines()[0]}") from None
    finally:
        for model, mode in zip([fused, *models], modes):
            model.train(mode)


def stack_inputs(inputs: Sequence[Tensor]) -> Tensor:
    """One fused batch from each run's batch [B, C, ...]: [B, M*C, ...], run m's channels block m. Channels-last
    batches give a channels-last one; a batch of one channel is both layouts, and gives a contiguous one (what a
    fully connected network flattens without a copy)."""
    joined = torch.cat(list(inputs), dim=1)
    first = inputs[0]
    if joined.dim() == 4 and first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous():
        return joined.contiguous(memory_format=torch.channels_last)
    return joined


def run_outputs(out: Tensor, runs: int) -> Tensor:
    """The fused network's output ([B, M*K], or [B, M, K] from a stacked linear layer) as [B, M, K]: run m's
    logits at ``[:, m]``."""
    return out.reshape(out.shape[0], runs, -1)


def fused_losses(out: Tensor, labels: Tensor) -> Tensor:
    """Each run's mean cross-entropy over its batch, [M], from the fused output [B, M*K] and labels [B, M].
    Their sum is what a fused step differentiates: each run's gradient is then exactly its own loss's."""
    return sample_losses(run_outputs(out, labels.shape[1]), labels).mean(dim=0)


def sample_losses(logits: Tensor, labels: Tensor) -> Tensor:
    """The cross-entropy of each run's each image, [B, M], from logits [B, M, K] and labels [B, M]. Taken row by
    row, as a run alone takes its batch's, so the logits' gradients come out bit for bit as a run's own (over the
    classes' dimension of a [B, K, M] view some differ in the last bit, which bf16 training amplifies)."""
    batch, runs, classes = logits.shape
    rows = F.cross_entropy(logits.reshape(batch * runs, classes), labels.reshape(batch * runs), reduction="none")
    return rows.view(batch, runs)


def fuse_learners(learners: Sequence[Learner], fresh: Callable[[nn.Module], Learner], shared: int = 1) -> Learner:
    """One learner training every run of ``learners`` as a :class:`FusedModel` (its inputs ``shared`` by that
    many consecutive runs): ``fresh(model)`` makes its optimizer (with the masks' hooks), schedule and
    gradient scaler as a run makes its own, and the runs' states are joined into them. Raises
    :class:`FusionRefused` when the runs' schedules, optimizer settings or step counts differ (they would
    not train alike)."""
    fused = FusedModel([learner.model for learner in learners], shared)
    learner = fresh(fused)
    states = [learner_.state_dict() for learner_ in learners]
    for part in ("scheduler", "scaler"):
        if any(state[part] != states[0][part] for state in states[1:]):
            raise FusionRefused(f"the runs' {part} states differ")
    groups = [[{k: v for k, v in g.items() if k != "params"} for g in s["optimizer"]["param_groups"]]
              for s in states]
    if any(g != groups[0] for g in groups[1:]):
        raise FusionRefused("the runs' optimizer settings differ")
    load_optimizer_state(learner.optimizer, _join_optimizer(fused, [s["optimizer"] for s in states],
                                                            learner.optimizer))
    learner.scheduler.load_state_dict(states[0]["scheduler"])
    if states[0]["scaler"]:
        learner.scaler.load_state_dict(states[0]["scaler"])
    return learner


def _join_optimizer(fused: FusedModel, states: list[dict], optimizer: torch.optim.Optimizer) -> dict:
    keys = fused.param_keys()
    if any(set(s["state"]) != set(states[0]["state"]) for s in states[1:]):
        raise FusionRefused("some runs have optimizer state and some have none")
    joined = {}
    for index, per_param in states[0]["state"].items():
        joined[index] = {name: (fused.join(keys[index], [s["state"][index][name] for s in states])
                                if isinstance(value, Tensor) else value)
                         for name, value in per_param.items()}
    own = optimizer.state_dict()["param_groups"]
    groups = [{**group, "params": mine["params"]} for group, mine in zip(states[0]["param_groups"], own)]
    return {"state": joined, "param_groups": groups}


def split_learner(learner: Learner, runs: Sequence[int] | None = None) -> list[dict]:
    """Each run's :meth:`Learner.state_dict` from a fused learner, or only those of ``runs`` (indices; one run's
    alone copies no other's): what its own checkpoint holds, so a run resumes alone or in a group alike."""
    fused: FusedModel = learner.model
    runs = range(fused.runs) if runs is None else runs
    keys = fused.param_keys()
    whole = learner.optimizer.state_dict()
    optimizers = [{"state": {}, "param_groups": copy.deepcopy(whole["param_groups"])} for _ in runs]
    for index, per_param in whole["state"].items():
        parts = {name: (fused.split(keys[index], value, runs) if isinstance(value, Tensor) else [value] * len(runs))
                 for name, value in per_param.items()}
        for m, optimizer in enumerate(optimizers):
            optimizer["state"][index] = {name: values[m] for name, values in parts.items()}
    scheduler, scaler = learner.scheduler.state_dict(), learner.scaler.state_dict()
    return [{"model": model, "optimizer": optimizer, "scheduler": copy.deepcopy(scheduler),
             "scaler": copy.deepcopy(scaler)} for model, optimizer in zip(fused.run_states(runs), optimizers)]


