"""Mixed-precision helpers, peak memory, and int8 post-training quantization of pruned models.

The tests run with one intra-op thread: these tiny models gain nothing from two, and on a 2-core
machine that other processes share, two OpenMP threads spend most of their time waiting for each
other (100x slower training steps were measured), which would make the file slow for no coverage.
"""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunelab.core.evaluation import FP32, Precision
from prunelab.core.inference import strip_masks, weight_masks
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.train import ordinary_step
from prunelab.errors import UserError
from prunelab.models import default
from prunelab.models import layers as L
from prunelab.precision.amp import amp_settings, make_scaler
from prunelab.precision.int8 import (
    Int8Path,
    compare_inference,
    int8_path_of,
    int8_weight_zero_fraction,
    legacy_method,
    pruned_weights_zero,
    quantize_int8,
)
from prunelab.precision.sizes import (
    SAVE_OVERHEAD_BASE,
    SAVE_OVERHEAD_PER_TENSOR,
    bitmask_bytes,
    csr_bytes,
    dense_from_sparse,
    model_sizes,
    sparse_state_dict,
)

#: int8 may cost at most this many top-1 points against fp32 on the digits test set
MAX_INT8_TOP1_DROP = 2.0
#: the fp32 model the quantization tests start from must have learned the task at least this well
MIN_FP32_TOP1 = 85.0


@pytest.fixture(scope="module")
def trained(trained_fp32):
    """The shared pruned digits net (conftest) and its int8 version on the old torch.ao path (eager mode,
    the fallback); the PT2E path has its own tests in test_pt2e.py."""
    model, calibration, test = trained_fp32
    return model, quantize_int8(model, calibration, next(iter(test))[0], method="eager"), test


# ------------------------------------------------------------------------------------- mixed precision


def test_amp_settings_defaults_per_device():
    assert amp_settings("cpu", True, None) == Precision(torch.bfloat16)
    assert amp_settings("cpu", True, "bf16").dtype == torch.bfloat16
    assert amp_settings("cuda", True, None) == Precision(torch.float16)
    assert amp_settings("cuda", True, "fp16").dtype == torch.float16
    assert amp_settings("mps", True, None).dtype == torch.float16
    assert amp_settings("cpu", False, None) == FP32 and not FP32.mixed
    assert amp_settings("cuda", False, "bf16") == FP32


def test_amp_settings_cuda_bf16_follows_device_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_settings("cuda:0", True, "bf16").dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(UserError, match="does not support bf16"):
        amp_settings("cuda:0", True, "bf16")


@pytest.mark.parametrize("device, enabled, amp_dtype, message", [
    ("cpu", True, "fp16", "fp16 autocast is not supported on the CPU"),
    ("cpu", True, "fp8", "AMP dtype 'fp8'"),
    ("cpu", False, "float16", "AMP dtype 'float16'"),
    ("meta", True, None, "available on cuda, cpu and mps"),
])
def test_amp_settings_rejects_bad_combinations(device, enabled, amp_dtype, message):
    with pytest.raises(UserError, match=message) as error:
        amp_settings(device, enabled, amp_dtype)
    text = str(error.value)
    assert text.count(". ") == 0 and "\n" not in text  # one sentence


def test_autocast_and_scaler_on_cpu():
    on = amp_settings("cpu", True, None)
    off = amp_settings("cpu", False, None)
    linear = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with on.autocast("cpu"):
        assert linear(x).dtype == torch.bfloat16
    with off.autocast("cpu"):
        assert linear(x).dtype == torch.float32
    assert not make_scaler(on, "cpu").is_enabled()
    assert not make_scaler(off, "cpu").is_enabled()
    # fp16 on CUDA is the one case that scales; bf16 on CUDA does not
    assert not make_scaler(Precision(torch.bfloat16), "cuda").is_enabled()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_scaler_enabled_for_cuda_fp16():
    assert make_scaler(amp_settings("cuda", True, "fp16"), "cuda").is_enabled()


def test_bf16_autocast_training_keeps_pruned_weights_exactly_zero():
    model = default.conv((1, 8, 8), 10, depth=3, width=8)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(2):  # momentum from before pruning must not revive pruned weights
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    prune(model, PruneSettings("rand", 0.5), [(x, y)])
    L.keep_pruned_at_zero(optimizer, model)
    amp = amp_settings("cpu", True, None)
    step = ordinary_step(model, optimizer, amp, make_scaler(amp, "cpu"))
    outputs = []
    model.register_forward_hook(lambda module, inputs, out: outputs.append(out.dtype))
    before = {t.name: t.param.detach().clone() for t in L.masked_parameters(model)}
    for _ in range(4):
        step(x, y)
    assert outputs == [torch.bfloat16] * 4
    for t in L.masked_parameters(model):
        assert t.param.dtype == torch.float32  # the optimizer still owns fp32 weights
        assert torch.all(t.param[t.mask == 0] == 0), t.name
        assert not torch.equal(t.param[t.mask == 1], before[t.name][t.mask == 1]), t.name  # kept ones train


PEAK_SCRIPT = """
import torch

from prunelab.precision.memory import PeakMemory

with PeakMemory("cpu") as mem:
    block = torch.ones(256 * 2**20 // 4)  # 256 MB, touched
    del block
print(mem.kind, mem.block_only, mem.start_mb, mem.peak_mb)
"""


def test_peak_memory_on_cpu_sees_an_allocation_in_the_block():
    # a fresh interpreter: in a long test session the allocator may reuse memory already resident
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=120)
    kind, block_only, start_mb, peak_mb = out.stdout.split()
    assert kind == "cpu_peak_rss"
    assert float(peak_mb) >= 256
    if block_only == "True":  # the high-water mark was reset on entry
        assert float(peak_mb) >= float(start_mb) + 240


# strip_masks (prunelab.core.inference)


def _bn_net():
    return nn.Sequential(L.Conv2d(1, 6, 3, padding=1), L.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                         L.Linear(6 * 8 * 8, 10))


def test_to_plain_gives_standard_layers_with_the_same_function():
    model = _bn_net()
    x = torch.randn(16, 1, 8, 8)
    prune(model, PruneSettings("rand", 0.5), [(x, torch.randint(0, 10, (16,)))])
    model(x)  # move the batchnorm running statistics
    model.eval()
    plain = strip_masks(model)
    assert [type(m) for m in plain] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Flatten, nn.Linear]
    assert not any(name.endswith("_mask") for name in plain.state_dict())
    assert not plain.training
    torch.testing.assert_close(plain(x), model(x), rtol=0, atol=0)
    assert isinstance(model[0], L.Conv2d)  # the original is untouched


def test_to_plain_zeroes_pruned_weights_in_the_original_designs_mode():
    model = _bn_net().eval()
    L.set_mask_in_forward(model, True)
    with torch.no_grad():
        model[0].weight_mask[:3] = 0  # masks multiplied in the forward; the weights themselves not zeroed
    assert torch.count_nonzero(model[0].weight[:3]) > 0
    plain = strip_masks(model)
    assert torch.all(plain[0].weight[:3] == 0)
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(plain(x), model(x))


# -------------------------------------------------------------------------------------------- int8


def test_int8_keeps_accuracy_within_bound(trained):
    model, qmodel, test = trained
    result = compare_inference(model, qmodel, test)
    assert result.fp32.images == result.int8.images == 360
    assert result.fp32.top1 >= MIN_FP32_TOP1
    assert result.top1_drop <= MAX_INT8_TOP1_DROP, (result.fp32.top1, result.int8.top1)
    assert result.fp32.seconds > 0 and result.int8.seconds > 0 and result.speedup > 0


def test_int8_keeps_pruned_weights_exactly_zero(trained):
    model, qmodel, _ = trained
    checks = pruned_weights_zero(model, qmodel)
    assert set(checks) == {"0", "2", "5"}  # both convolutions and the classifier were quantized
    assert all(checks.values()), checks
    fractions = int8_weight_zero_fraction(qmodel)
    for name, mask in weight_masks(model).items():
        pruned = 1 - mask.float().mean().item()
        assert pruned > 0, name  # global magnitude pruning prunes the small first layer least
        assert fractions[name] >= pruned, name


def test_int8_with_batchnorm_folded_keeps_pruned_weights_zero(pruned_bn_net):
    model, batches = pruned_bn_net
    qmodel = quantize_int8(model, batches, batches[0][0], method="eager")  # PT2E's folding: test_pt2e.py
    assert all(pruned_weights_zero(model, qmodel).values())
    x = batches[0][0]
    assert (qmodel(x) - model(x)).abs().max() < 0.1 * model(x).abs().max()


def test_quantize_int8_leaves_the_model_alone_and_needs_calibration(trained):
    model, _, test = trained
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(UserError, match="at least one batch"):
        quantize_int8(model, [], next(iter(test))[0])
    assert isinstance(model[0], L.Conv2d)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_residual_models_on_the_old_path_go_through_fx_and_keep_pruned_weights_zero(pruned_resnet):
    model, x = pruned_resnet
    with pytest.raises(UserError, match="try method='fx'"):  # eager mode has no int8 residual add
        quantize_int8(model, [x], x, method="eager")
    qmodel = quantize_int8(model, [x[:16], x[16:]], x, method="fx")
    assert legacy_method(model) == "fx"  # the old path's choice for a model that is not a Sequential
    assert int8_path_of(qmodel) == Int8Path("fx")  # named, not a fallback
    zero = pruned_weights_zero(model, qmodel)
    assert len(zero) == 22 and all(zero.values())  # 21 convolutions and the classifier
    with torch.no_grad():
        reference, out = model(x), qmodel(x)
    # the same function up to int8 rounding (accuracy bounds on trained models: the digits tests above)
    assert F.cosine_similarity(out.flatten(), reference.flatten(), dim=0) > 0.95


# ------------------------------------------------------------------------------------------- sizes


def _within_save_overhead(saved: int, raw: int, tensors: int) -> bool:
    return 0 < saved - raw <= SAVE_OVERHEAD_BASE + SAVE_OVERHEAD_PER_TENSOR * tensors


def test_model_sizes_add_up(trained):
    model, qmodel, _ = trained
    s = model_sizes(model, qmodel)
    total = sum(t.mask.numel() for t in L.masked_parameters(model))
    kept = sum(int(t.mask.sum()) for t in L.masked_parameters(model))
    assert (s["total_weights"], s["kept_weights"]) == (total, kept)
    assert 0.45 < kept / total < 0.55  # compression 0.3 keeps half
    # fp32 dense: 4 bytes per parameter, plus what torch.save adds
    assert s["fp32_dense_raw_bytes"] == 4 * s["num_params"]
    assert s["fp32_dense_bytes"] >= 4 * s["num_params"]
    assert _within_save_overhead(s["fp32_dense_bytes"], s["fp32_dense_raw_bytes"], s["fp32_dense_tensors"])
    # fp32 sparse: kept values, 1 bit per weight, shapes, and the dense biases
    assert s["sparse_bitmask_layers"] == 3 and s["sparse_csr_layers"] == 0  # a bitmask wins at half density
    assert s["sparse_values_bytes"] == 4 * kept
    assert s["sparse_index_bytes"] == sum((m.numel() + 7) // 8 for m in weight_masks(model).values())
    assert s["sparse_dense_bytes"] == 4 * (s["num_params"] - total)
    assert s["fp32_sparse_raw_bytes"] == (s["sparse_values_bytes"] + s["sparse_index_bytes"]
                                          + s["sparse_shape_bytes"] + s["sparse_dense_bytes"])
    assert _within_save_overhead(s["fp32_sparse_bytes"], s["fp32_sparse_raw_bytes"], s["fp32_sparse_tensors"])
    # int8: 1 byte per weight, a float64 scale and an int64 zero point per output channel, the rest fp32
    channels = sum(m.shape[0] for m in weight_masks(model).values())
    assert s["int8_weight_bytes"] == total
    assert s["int8_qparam_bytes"] == 16 * channels
    assert s["int8_raw_bytes"] == s["int8_weight_bytes"] + s["int8_qparam_bytes"] + s["int8_other_bytes"]
    assert _within_save_overhead(s["int8_bytes"], s["int8_raw_bytes"], s["int8_tensors"])
    assert s["int8_bytes"] < s["fp32_sparse_bytes"] < s["fp32_dense_bytes"]
    # int8 with sparsity: each dense int8 weight replaced by its bitmask and kept int8 values
    bitmasks = sum((m.numel() + 7) // 8 for m in weight_masks(model).values())
    assert s["int8_sparse_raw_bytes"] == s["int8_raw_bytes"] - total + bitmasks + kept


@pytest.mark.parametrize("compression", [0.3, 2.0])
def test_sparse_state_dict_round_trips(compression):
    model = default.conv((1, 8, 8), 10, depth=3, width=16)
    prune(model, PruneSettings("rand", compression), [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)))])
    sparse, counts = sparse_state_dict(model)
    if compression == 2.0:  # 1% density: CSR wins, except for the 144-weight first layer, whose row
        # pointers (68 bytes) cost more than its whole bitmask (18 bytes)
        assert counts["csr_layers"] == 2 and counts["bitmask_layers"] == 1
    dense = dense_from_sparse(sparse)
    plain = strip_masks(model).state_dict()
    assert dense.keys() == plain.keys()
    for key, value in plain.items():
        assert torch.equal(dense[key], value), key


def test_sparse_format_choice_is_the_smaller():
    assert bitmask_bytes(1000, 500) < csr_bytes(10, 500)
    assert csr_bytes(10, 10) < bitmask_bytes(1000, 10)


def test_the_tensor_peak_of_a_piece_of_work_counts_what_it_holds_at_once_above_its_start():
    from prunelab.precision.memory import tensor_peak_mb

    held = [torch.ones(2**20)]  # 4 MB allocated before the work: freeing it is not counted

    def work() -> None:
        held.clear()
        first, second = torch.ones(2**20), torch.ones(2**20)  # 8 MB at once
        del first, second
        torch.ones(2**19)  # 2 MB, after both were freed

    assert tensor_peak_mb(work, "cpu") == pytest.approx(8.0, abs=0.01)
