"""int8 on torchao's PT2E path (the maintained one), the fallback to torch.ao and how it is named, and
timing several models side by side.

One compiled PT2E model serves the module (compiling takes seconds per input shape); the batchnorm and
residual checks read the converted graph and run it uncompiled, which needs no compilation.
"""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import prunelab.precision.int8 as int8_module
from prunelab.core.inference import strip_masks, weight_masks
from prunelab.errors import UserError
from prunelab.models import layers as L
from prunelab.precision.int8 import (
    Int8Path,
    compare_models,
    compiled_fp32,
    int8_path_of,
    int8_weight_zero_fraction,
    int8_weights,
    pruned_weights_zero,
    quantize_int8,
)
from prunelab.precision.pt2e import (
    FrozenCompiled,
    PT2EInt8,
    pt2e_int8,
    pt2e_int8_weights,
    pt2e_unavailable,
    quiet_import_logs,
)
from prunelab.precision.sizes import SAVE_OVERHEAD_BASE, SAVE_OVERHEAD_PER_TENSOR, model_sizes

#: the bench's target: int8 may cost at most this many top-1 points against fp32 on the digits test set
MAX_TOP1_DROP = 1.0
MIN_FP32_TOP1 = 85.0
UNAVAILABLE = pt2e_unavailable()
needs_pt2e = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"PT2E cannot run here: {UNAVAILABLE}")


@pytest.fixture(scope="module")
def pt2e_model(trained_fp32):
    """The shared pruned digits net and its int8 model from ``method="auto"``, compiled for batches of 120."""
    if UNAVAILABLE is not None:
        pytest.skip(f"PT2E cannot run here: {UNAVAILABLE}")
    model, calibration, test = trained_fp32
    return model, quantize_int8(model, calibration, next(iter(test))[0]), test


def test_auto_picks_pt2e_where_torchao_runs(pt2e_model):
    _, qmodel, _ = pt2e_model
    assert isinstance(qmodel, PT2EInt8)
    assert int8_path_of(qmodel) == Int8Path("pt2e") and str(int8_path_of(qmodel)) == "pt2e"
    assert qmodel.eval() is qmodel
    with pytest.raises(UserError, match="an int8 model is for inference only"):
        qmodel.train()
    assert all(key.startswith("graph_module.") for key in qmodel.state_dict())  # held as before the base class


def test_pt2e_keeps_accuracy_within_bound(pt2e_model):
    model, qmodel, test = pt2e_model
    results = compare_models({"fp32": model, "pt2e": qmodel, "compiled": compiled_fp32(model)}, test, repeats=2)
    fp32, int8, compiled = results["fp32"], results["pt2e"], results["compiled"]
    assert fp32.images == int8.images == compiled.images == 360 and fp32.repeats == compiled.repeats == 2
    assert fp32.top1 >= MIN_FP32_TOP1
    assert fp32.top1 - int8.top1 <= MAX_TOP1_DROP, (fp32.top1, int8.top1)
    assert int8.seconds > 0 and int8.spread >= 0 and int8.warmup > 0
    assert abs(compiled.top1 - fp32.top1) <= 0.5 and compiled.seconds > 0  # the same fp32 model, compiled
    assert compiled.warmup > 0  # the warm-up compiled it, as it compiles PT2E's graph


def test_compiled_fp32_is_the_plain_model_frozen_as_pt2e_runs_its_graph(trained_fp32):
    model, _, test = trained_fp32
    compiled = compiled_fp32(model)
    assert isinstance(compiled, FrozenCompiled) and not isinstance(compiled, PT2EInt8)
    plain = strip_masks(model).eval()
    assert compiled.state_dict().keys() == {f"module.{k}" for k in plain.state_dict()}  # no mask buffers
    x = next(iter(test))[0][:8]
    with torch.no_grad():
        assert torch.allclose(compiled(x), plain(x), atol=1e-4)
    with pytest.raises(UserError, match="inference only"):
        compiled.train()
    assert any(isinstance(m, L.MaskedMixin) for m in model.modules())  # the model itself keeps its masks


def test_pt2e_keeps_pruned_weights_exactly_zero(pt2e_model):
    model, qmodel, _ = pt2e_model
    checks = pruned_weights_zero(model, qmodel)
    assert set(checks) == {"0", "2", "5"}  # both convolutions and the classifier hold int8 weights
    assert all(checks.values()), checks
    plain = strip_masks(model)
    for name, (q, scale, zero_point) in pt2e_int8_weights(qmodel).items():
        assert q.dtype == torch.int8 and bool(torch.all(zero_point == 0)), name  # symmetric: 0 is exact
        assert scale.numel() == q.shape[0], name  # one scale per output channel
        fp32 = plain.get_submodule(name).weight.detach()
        step = scale.reshape(-1, *[1] * (q.dim() - 1))
        assert bool(torch.all((int8_weights(qmodel)[name] - fp32).abs() <= step / 2 + 1e-6)), name
    fractions = int8_weight_zero_fraction(qmodel)
    for name, mask in weight_masks(model).items():
        assert fractions[name] >= 1 - mask.float().mean().item(), name


def test_pt2e_model_sizes_count_int8_weights_and_float32_scales(pt2e_model):
    model, qmodel, _ = pt2e_model
    assert not [k for k in qmodel.state_dict() if k.endswith(".weight")]  # the fp32 copies were dropped
    s = model_sizes(model, qmodel)
    masks = weight_masks(model).values()
    total, kept = sum(m.numel() for m in masks), sum(int(m.sum()) for m in masks)
    channels = sum(m.shape[0] for m in masks)
    assert s["int8_weight_bytes"] == total
    assert s["int8_qparam_bytes"] == 12 * channels  # a float32 scale and an int64 zero point per channel
    assert s["int8_other_bytes"] == 4 * channels  # the fp32 biases
    assert s["int8_raw_bytes"] == s["int8_weight_bytes"] + s["int8_qparam_bytes"] + s["int8_other_bytes"]
    overhead = SAVE_OVERHEAD_BASE + SAVE_OVERHEAD_PER_TENSOR * s["int8_tensors"]
    assert 0 < s["int8_bytes"] - s["int8_raw_bytes"] <= overhead
    assert s["int8_bytes"] < s["fp32_sparse_bytes"] < s["fp32_dense_bytes"]
    bitmasks = sum((m.numel() + 7) // 8 for m in masks)
    assert s["int8_sparse_raw_bytes"] == s["int8_raw_bytes"] - total + bitmasks + kept < s["int8_raw_bytes"]


@needs_pt2e
def test_pt2e_folds_batchnorm_and_keeps_pruned_weights_zero(pruned_bn_net):
    model, batches = pruned_bn_net
    qmodel = pt2e_int8(strip_masks(model).eval(), batches, batches[0][0], reduce_range=True)  # not compiled
    zero = pruned_weights_zero(model, qmodel)
    assert set(zero) == {"0", "4"} and all(zero.values())  # the convolution, its batchnorm folded in
    x = batches[0][0]
    with torch.no_grad():
        reference, out = model(x), qmodel.graph_module(x)  # the converted graph, uncompiled
    assert (out - reference).abs().max() < 0.1 * reference.abs().max()


@needs_pt2e
def test_pt2e_residual_model_keeps_pruned_weights_zero(pruned_resnet):
    model, x = pruned_resnet
    qmodel = pt2e_int8(strip_masks(model).eval(), [x[:16], x[16:]], x, reduce_range=True)
    zero = pruned_weights_zero(model, qmodel)
    assert len(zero) == 22 and all(zero.values())  # 21 convolutions and the classifier
    with torch.no_grad():
        reference, out = model(x), qmodel.graph_module(x)
    assert F.cosine_similarity(out.flatten(), reference.flatten(), dim=0) > 0.95


# ------------------------------------------------------------------------------------------ fallback


def test_auto_falls_back_to_the_old_path_and_names_why(trained_fp32, monkeypatch):
    model, calibration, test = trained_fp32
    monkeypatch.setattr(int8_module, "pt2e_unavailable", lambda: "torchao is not installed (test)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the old path's deprecation messages are silenced
        qmodel = quantize_int8(model, calibration[:2], next(iter(test))[0])
    path = int8_path_of(qmodel)
    assert path == Int8Path("eager", "torchao is not installed (test)")  # a Sequential: eager mode
    assert str(path) == "eager (fallback: torchao is not installed (test))"
    assert all(pruned_weights_zero(model, qmodel).values())
    with pytest.raises(UserError, match="PT2E int8 path cannot run here: torchao is not installed"):
        quantize_int8(model, calibration[:2], next(iter(test))[0], method="pt2e")


def test_auto_falls_back_when_pt2e_fails_and_says_how(trained_fp32, monkeypatch):
    model, calibration, test = trained_fp32

    def broken(*args, **kwargs):
        raise RuntimeError("inductor could not lower a quantized convolution\nmore detail")

    monkeypatch.setattr(int8_module, "pt2e_unavailable", lambda: None)
    monkeypatch.setattr(int8_module, "pt2e_int8", broken)
    qmodel = quantize_int8(model, iter(calibration[:2]), next(iter(test))[0])  # a one-pass iterable, read twice
    assert int8_path_of(qmodel) == Int8Path("eager", "PT2E failed: inductor could not lower a quantized convolution")
    with pytest.raises(UserError, match="int8 method 'onnx'"):
        quantize_int8(model, calibration[:2], next(iter(test))[0], method="onnx")


@needs_pt2e
def test_a_quantizer_that_matches_nothing_is_caught_and_auto_falls_back(trained_fp32, monkeypatch):
    """Under torch 2.11 the x86 quantizer matched no layer of a non-strict export: convert_pt2e then returns an
    fp32 graph without error. That must not pass for int8."""
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer

    model, calibration, test = trained_fp32
    monkeypatch.setattr(X86InductorQuantizer, "annotate", lambda self, graph_module: graph_module)
    with pytest.raises(RuntimeError, match=r"left 3 of 3 conv/linear layers in fp32 under torch"):
        pt2e_int8(strip_masks(model).eval(), calibration[:1], next(iter(test))[0], reduce_range=True)
    qmodel = quantize_int8(model, calibration[:2], next(iter(test))[0])
    path = int8_path_of(qmodel)
    assert path.method == "eager" and "x86 quantizer left 3 of 3 conv/linear layers in fp32" in path.fallback
    assert all(pruned_weights_zero(model, qmodel).values())


# -------------------------------------------------------------------------------------------- timing


class _Logged(nn.Module):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x):
        self.log.append(self.name)
        return torch.zeros(len(x), 10)


def test_compare_models_takes_turns_and_reports_spread():
    log: list[str] = []
    models = {n: _Logged(n, log) for n in "abc"}
    batches = [(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)), (torch.zeros(2, 1, 8, 8),
                                                                             torch.zeros(2, dtype=torch.long))]
    results = compare_models(models, batches, repeats=3)
    warm_up = ["a", "a", "b", "b", "c", "c"]  # one call per input shape, each model in turn
    passes = [m for order in ("abc", "bca", "cab") for m in order for _ in batches]  # rotated each repeat
    assert log == warm_up + passes
    for r in results.values():
        assert r.images == 6 and r.repeats == 3 and r.top1 == 100.0 and r.spread >= 0 and r.warmup >= 0
    with pytest.raises(UserError, match="at least one model"):
        compare_models({}, batches)


def test_torchaos_import_warnings_are_held_back_and_its_errors_let_through(caplog):
    # torchao 0.18 on torch 2.4 warns "Skipping import of cpp extensions ..." through its logger as it
    # imports, and the quantization notebook printed it four times above its int8 table
    with caplog.at_level(logging.WARNING), quiet_import_logs():
        logging.getLogger("torchao").warning("skipping cpp extensions")
        logging.getLogger("torch.utils._pytree").warning("an enum registered twice")
        logging.getLogger("torchao").error("a real failure")
    assert [r.getMessage() for r in caplog.records] == ["a real failure"]
    caplog.clear()
    logging.getLogger("torchao").warning("after the import")  # the levels are restored
    assert [r.getMessage() for r in caplog.records] == ["after the import"]

