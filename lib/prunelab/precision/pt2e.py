"""int8 through torchao's PT2E flow: the maintained replacement for ``torch.ao.quantization``.

:func:`pt2e_int8` exports the plain model (``torch.export``, strict, batch dimension dynamic), annotates it
with torchao's ``X86InductorQuantizer`` (histogram-observed uint8 activations, symmetric per-channel int8
weights), calibrates, converts, and wraps the result in :class:`PT2EInt8`, which runs it through
``torch.compile`` with freezing so that inductor fuses each dequantize-conv-quantize into one oneDNN int8
kernel. :class:`FrozenCompiled` is that wrapper for any module: an fp32 model run the same way is the baseline
that leaves the int8 kernels as the only difference.

It promises:

* pruned weights stay exactly zero (symmetric weights, zero point 0); :func:`pt2e_int8_weights` reads the
  int8 tensors back, and a graph whose conv / linear weights are not all int8 raises rather than passing
  as int8 (a quantizer that matches nothing converts without error);
* the converted graph's ``state_dict`` is what an int8 model stores (unused fp32 copies are dropped);
* torchao is imported only when PT2E is tried (:func:`pt2e_unavailable`, which also names a missing x86 CPU
  or C++ compiler), because importing its quantizer changes inductor's passes for the whole process.

Compilation happens on the first call per input shape: time a model only after it. Figures per machine
are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import warnings
from collections.abc import Iterable, Iterator

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import UserError

#: warnings printed while compiling a converted graph that say nothing about the model
_COMPILE_NOISE = (r"To copy construct from a tensor",)


def first_tensor(batch) -> Tensor:
    """The inputs of a batch given as inputs or as ``(inputs, labels)``."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def calibrate(prepared: nn.Module, calibration_batches: Iterable) -> None:
    """Run every calibration batch through an observed model (fp32, on the CPU)."""
    seen = 0
    for batch in calibration_batches:
        prepared(first_tensor(batch).detach().float().cpu())
        seen += 1
    if seen == 0:
        raise UserError("int8 calibration needs at least one batch of inputs")


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# inductor imports torch.utils.cpp_extension while compiling, which warns "No CUDA runtime is found" on a
# CUDA build of torch without a GPU: nothing a reader of an int8 table needs, so only errors are let through
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


#: loggers that warn while torchao imports: torch's pytree registry about one of torchao's own enums, and
#: torchao itself about a torch older than its C++ extensions need (then PT2E's reason is recorded anyway)
IMPORT_LOGGERS = ("torch.utils._pytree", "torchao")


@contextlib.contextmanager
def quiet_import_logs() -> Iterator[None]:
    """While torchao imports, :data:`IMPORT_LOGGERS` show only errors: their warnings are nothing a user
    can act on, and a notebook would print them under its int8 table."""
    logs = [logging.getLogger(name) for name in IMPORT_LOGGERS]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


def _torchao():
    """torchao's PT2E entry points (imported on first use: the import changes inductor's global config)."""
    with quiet_import_logs():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    return prepare_pt2e, convert_pt2e, x86


def pt2e_unavailable() -> str | None:
    """Why the PT2E path cannot run here, in a few words, or None when it can be tried."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return f"an {platform.machine()} CPU, and the x86 inductor quantizer targets x86"
    try:
        _torchao()
    except Exception as error:  # noqa: BLE001 - ImportError, or torchao failing against this torch
        return f"torchao's PT2E quantization does not import ({first_line(error)})"
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:
        return None  # a later torch moved it: the compilation itself will tell
    try:
        get_cpp_compiler()
    except Exception as error:  # noqa: BLE001 - inductor's InvalidCxxCompiler
        return f"torch.compile finds no C++ compiler ({first_line(error)})"
    return None


class FrozenCompiled(nn.Module):
    """A module run through ``torch.compile`` with inductor freezing, for inference on the CPU: PT2E's int8 graph
    (:class:`PT2EInt8`), and the plain fp32 model timed beside it, so that the two compare int8 kernels rather than
    compiled code against eager code.

    Each call runs under ``no_grad`` (freezing needs it); the first call with a new input shape compiles
    (``dynamic=False``). The module is held under :attr:`HOLDS`, so ``state_dict`` is its own.
    """

    #: the attribute the compiled module is held under
    HOLDS = "module"
    #: what a refusal to train calls this model
    KIND = "a model compiled with inductor freezing"

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        setattr(self, self.HOLDS, module)
        # not a registered submodule: its parameters are the held module's, and state_dict must not repeat them
        object.__setattr__(self, "_compiled", torch.compile(module, dynamic=False))

    def train(self, mode: bool = True) -> FrozenCompiled:
        if mode:
            raise UserError(f"{self.KIND} is for inference only; it cannot be put in training mode")
        self.training = False
        return self

    def forward(self, x: Tensor) -> Tensor:
        import torch._inductor.config as inductor_config

        # freezing is patched into inductor's config around the call: the weight-packing pass fails without
        # it, and torch.compile(options={"freezing": True}) did not reach that pass

        with torch.no_grad(), warnings.catch_warnings(), inductor_config.patch(freezing=True):
            for message in _COMPILE_NOISE:
                warnings.filterwarnings("ignore", message=message)
            return self._compiled(x)


class PT2EInt8(FrozenCompiled):
    """A PT2E-converted int8 graph (``graph_module``) run as :class:`FrozenCompiled` runs a module.

    ``state_dict`` holds the int8 weights, their scales and zero points, and the fp32 biases; activation scales
    are constants of the graph.
    """

    HOLDS = "graph_module"
    KIND = "an int8 model"
    graph_module: torch.fx.GraphModule


def _drop_unused_attributes(graph_module: torch.fx.GraphModule) -> None:
    """Delete parameters and buffers that no ``get_attr`` node reads (the fp32 weights convert leaves)."""
    used = {node.target for node in graph_module.graph.nodes if node.op == "get_attr"}
    named = [*graph_module.named_parameters(), *graph_module.named_buffers()]
    for name, _ in named:
        if name in used:
            continue
        owner_name, _, attribute = name.rpartition(".")
        delattr(graph_module.get_submodule(owner_name), attribute)


@torch.no_grad()
def pt2e_int8(plain: nn.Module, calibration_batches: Iterable, example: Tensor, reduce_range: bool) -> PT2EInt8:
    """Export, annotate (x86 inductor quantizer, default config), calibrate and convert ``plain`` (an eval-mode
    fp32 CPU model without masks); nothing is compiled until the result is first called."""
    prepare_pt2e, convert_pt2e, x86 = _torchao()
    batch = torch.export.Dim.AUTO
    # strict (dynamo) export: it records each op's source module type (``source_fn_stack``), which the x86
    # quantizer's pattern matching reads; without it some torch versions annotate nothing (bench/RESULTS.md)
    exported = torch.export.export(plain, (example,), dynamic_shapes=({0: batch},), strict=True).module()
    config = x86.get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    prepared = prepare_pt2e(exported, x86.X86InductorQuantizer().set_global(config))
    calibrate(prepared, calibration_batches)
    converted = convert_pt2e(prepared)
    _drop_unused_attributes(converted)
    _require_int8_weights(converted)
    return PT2EInt8(converted)


def _require_int8_weights(graph_module: torch.fx.GraphModule) -> None:
    """Raise unless every convolution and linear layer of a converted graph reads an int8 weight: a quantizer
    that matches nothing converts without error into a graph that is still fp32."""
    weighted = [node for node in graph_module.graph.nodes if _is_weighted(node)]
    fp32 = [node.name for node in weighted if _dequantized_weight(node) is None]
    if fp32:
        import torchao

        raise RuntimeError(f"torchao {torchao.__version__}'s x86 quantizer left {len(fp32)} of {len(weighted)} "
                           f"conv/linear layers in fp32 under torch {torch.__version__} ({', '.join(fp32[:3])})")


# ------------------------------------------------------------------------------------ reading weights


def _weighted_ops() -> set:
    ops = torch.ops.aten
    return {ops.conv1d.default, ops.conv2d.default, ops.conv3d.default, ops.linear.default, ops.convolution.default}


def _is_weighted(node: torch.fx.Node) -> bool:
    """A convolution or linear call (its weight is argument 1)."""
    return node.op == "call_function" and node.target in _weighted_ops() and len(node.args) >= 2


def _dequantized_weight(node: torch.fx.Node) -> torch.fx.Node | None:
    """The dequantize node that feeds a weighted call its weight, or None where the weight is not int8."""
    dequantize = torch.ops.quantized_decomposed
    weight = node.args[1]
    dequantizers = {dequantize.dequantize_per_channel.default, dequantize.dequantize_per_tensor.default}
    return weight if isinstance(weight, torch.fx.Node) and weight.target in dequantizers else None


def _module_name(node: torch.fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    return list(stack.values())[-1][0] if stack else None


def _value(graph_module: torch.fx.GraphModule, arg) -> Tensor:
    if isinstance(arg, torch.fx.Node):
        if arg.op != "get_attr":
            raise ValueError(f"{arg.name} is computed in the graph, not stored")
        owner_name, _, attribute = arg.target.rpartition(".")
        return getattr(graph_module.get_submodule(owner_name), attribute)
    return torch.tensor(arg)


def pt2e_int8_weights(qmodel: PT2EInt8) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
    """``(int8 weight, scale, zero point)`` of every convolution and linear layer whose weight is int8 in the
    converted graph, keyed by the original model's layer name (from the export's module stack)."""
    gm = qmodel.graph_module
    found = {}
    for node in gm.graph.nodes:
        weight = _dequantized_weight(node) if _is_weighted(node) else None
        if weight is None:
            continue
        name = _module_name(node)
        if name is None:
            raise ValueError(f"{node.name} has no module name in the exported graph")
        q, scale, zero_point = (_value(gm, a) for a in weight.args[:3])
        found[name] = (q, scale, zero_point)
    return found


def dequantized(q: Tensor, scale: Tensor, zero_point: Tensor) -> Tensor:
    """``(q - zero point) * scale``, per output channel (dimension 0) or per tensor."""
    shape = (-1,) + (1,) * (q.dim() - 1)
    if scale.numel() == 1:
        return (q.float() - zero_point.float()) * scale.float()
    return (q.float() - zero_point.float().reshape(shape)) * scale.float().reshape(shape)
