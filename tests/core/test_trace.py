"""Tracing one inference step: capture, analysis (CPU and CUDA-shaped traces), and the mask overhead."""

import json

import pytest
import torch

from prunelab.core.inference import fuse_conv_bn, strip_masks
from prunelab.core.pruners import PruneSettings, prune
from prunelab.core.trace import (
    PROFILED_STEPS,
    analyze_trace,
    capture_inference_trace,
    classify,
    compare_designs,
    union_length,
)
from prunelab.models.registry import build_model


@pytest.fixture(scope="module")
def pruned_resnet20():
    torch.manual_seed(0)
    model = build_model("resnet20", "lottery", (3, 32, 32), 10)
    prune(model, PruneSettings("snip", 1.0), [(torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))])
    return model.eval()


def test_union_length_counts_overlaps_once_and_skips_gaps():
    assert union_length([]) == 0
    assert union_length([(0, 10), (5, 15), (20, 25)]) == 20  # [0,15] and [20,25]
    assert union_length([(0, 10), (2, 3), (4, 6)]) == 10  # nested inside
    assert union_length([(5, 6), (0, 1), (1, 2)]) == 3  # unsorted, touching


def test_cpu_trace_of_resnet20_yields_21_conv_layers(pruned_resnet20, tmp_path):
    path = capture_inference_trace(pruned_resnet20, torch.randn(8, 3, 32, 32), tmp_path / "t.json", warmup=2)
    assert json.loads(path.read_text())["traceEvents"]  # a Chrome / Perfetto trace
    analysis = analyze_trace(path)
    conv = analysis.conv_layers()
    assert len(conv) == 21
    assert list(conv["module"][:3]) == ["conv", "blocks.0.conv1", "blocks.0.conv2"]
    assert (conv["time_us"] > 0).all()
    assert 0 < analysis.conv_share <= 1
    assert analysis.step_busy_us <= analysis.step_span_us * 1.001
    assert abs(conv["time_us"].sum() - analysis.conv_total_us) < 1e-6 * analysis.conv_total_us + 1e-3
    breakdown = analysis.breakdown().set_index("kind")
    assert {"convolution", "batchnorm", "activation and add"} <= set(breakdown.index)
    assert "mask multiply" not in breakdown.index  # masks are folded: no multiply in the step


def test_the_analysed_step_is_the_profiled_step_of_median_length(pruned_resnet20, tmp_path):
    path = capture_inference_trace(pruned_resnet20, torch.randn(4, 3, 32, 32), tmp_path / "t.json", warmup=1)
    events = json.loads(path.read_text())["traceEvents"]
    steps = [e for e in events if e.get("ph") == "X" and e["name"].startswith("ProfilerStep")]
    assert len(steps) == PROFILED_STEPS
    # a hand-made trace: the last step stalls in its first op; the analysis takes the step of median length
    host = dict(ph="X", pid=1, tid=1)
    stalled = [dict(cat="user_annotation", name="ProfilerStep#1", ts=0, dur=100, **host),
               dict(cat="user_annotation", name="ProfilerStep#2", ts=200, dur=120, **host),
               dict(cat="user_annotation", name="ProfilerStep#3", ts=400, dur=900, **host)]
    for start, first in ((0, 40), (200, 50), (400, 800)):
        stalled += [dict(cat="cpu_op", name="aten::batch_norm", ts=start + 1, dur=first, **host),
                    dict(cat="cpu_op", name="aten::conv2d", ts=start + first + 2, dur=30, **host)]
    trace = tmp_path / "stalled.json"
    trace.write_text(json.dumps({"traceEvents": stalled}))
    analysis = analyze_trace(trace)
    assert (analysis.step_start, analysis.step_span_us, analysis.step_busy_us) == (200, 120, 80)


def _cuda_trace(path):
    """A hand-made trace shaped like a CUDA one: host ranges and launches on one thread, kernels on two
    streams tied to the launches by correlation ids."""
    host = dict(pid=1, tid=1)
    ev = [
        dict(ph="X", cat="user_annotation", name="ProfilerStep#5", ts=0, dur=100, **host),
        dict(ph="X", cat="user_annotation", name="module::conv::Conv2d", ts=1, dur=20, **host),
        dict(ph="X", cat="cpu_op", name="aten::conv2d", ts=2, dur=15, **host),
        dict(ph="X", cat="cuda_runtime", name="cudaLaunchKernel", ts=3, dur=1, args={"correlation": 1}, **host),
        dict(ph="X", cat="cuda_runtime", name="cudaLaunchKernel", ts=5, dur=1, args={"correlation": 2}, **host),
        dict(ph="X", cat="user_annotation", name="module::bn::BatchNorm2d", ts=30, dur=10, **host),
        dict(ph="X", cat="cpu_op", name="aten::batch_norm", ts=31, dur=8, **host),
        dict(ph="X", cat="cuda_runtime", name="cudaLaunchKernel", ts=32, dur=1, args={"correlation": 3}, **host),
        dict(ph="X", cat="user_annotation", name="module::blocks.0.conv1::Conv2d", ts=50, dur=20, **host),
        dict(ph="X", cat="cpu_op", name="aten::mul", ts=51, dur=3, **host),
        dict(ph="X", cat="cuda_runtime", name="cudaLaunchKernel", ts=52, dur=1, args={"correlation": 4}, **host),
        dict(ph="X", cat="cpu_op", name="aten::conv2d", ts=55, dur=10, **host),
        dict(ph="X", cat="cuda_runtime", name="cudaLaunchKernel", ts=56, dur=1, args={"correlation": 5}, **host),
        # kernels: conv's two kernels overlap on streams 7 and 8 ([10,30] and [20,40] -> 30 us, not 40)
        dict(ph="X", cat="kernel", name="implicit_convolve_sgemm", pid=0, tid=7, ts=10, dur=20,
             args={"correlation": 1, "stream": 7}),
        dict(ph="X", cat="kernel", name="winograd_fwd", pid=0, tid=8, ts=20, dur=20,
             args={"correlation": 2, "stream": 8}),
        dict(ph="X", cat="kernel", name="bn_fw_inf", pid=0, tid=7, ts=45, dur=5, args={"correlation": 3, "stream": 7}),
        dict(ph="X", cat="kernel", name="elementwise_mul", pid=0, tid=7, ts=60, dur=4,
             args={"correlation": 4, "stream": 7}),
        dict(ph="X", cat="kernel", name="implicit_convolve_sgemm", pid=0, tid=7, ts=70, dur=10,
             args={"correlation": 5, "stream": 7}),
        # a kernel from outside the step (no launch in it) is ignored
        dict(ph="X", cat="kernel", name="other", pid=0, tid=7, ts=500, dur=10, args={"correlation": 99}),
    ]
    path.write_text(json.dumps({"traceEvents": ev}))
    return path


def test_cuda_shaped_trace_gives_the_right_per_layer_sums(tmp_path):
    analysis = analyze_trace(_cuda_trace(tmp_path / "cuda.json"))
    assert analysis.device == "cuda" and analysis.unit_count == 5
    conv = analysis.conv_layers().set_index("module")
    assert conv.loc["conv", "time_us"] == 30  # overlapping kernels on two streams count once
    assert conv.loc["blocks.0.conv1", "time_us"] == 10  # its mask multiply is not convolution time
    assert analysis.step_span_us == 70  # first kernel start 10 to last end 80
    assert analysis.step_busy_us == 30 + 5 + 4 + 10  # idle gaps are not kernel time
    kinds = analysis.breakdown().set_index("kind")["time_us"].to_dict()
    assert kinds == {"convolution": 40, "batchnorm": 5, "mask multiply": 4}
    assert abs(analysis.conv_share - 40 / 49) < 1e-12
    assert [r.row for r in analysis.units].count("GPU stream 8") == 1


def test_classification_of_ops():
    assert classify("aten::cudnn_convolution", "Conv2d") == "convolution"
    assert classify("aten::mul", "Conv2d") == "mask multiply"
    assert classify("aten::mul", "") == "other"
    assert classify("aten::add_", "ResidualBlock") == "activation and add"
    assert classify("", "", "Memcpy HtoD", "gpu_memcpy") == "memory copies"


def test_folded_and_mask_multiplied_forwards_are_equal_and_folding_saves_ops(pruned_resnet20, tmp_path):
    comparison = compare_designs(pruned_resnet20, torch.randn(8, 3, 32, 32), tmp_path, warmup=1)
    assert comparison.outputs_equal and comparison.max_abs_difference < 1e-5
    table = comparison.table()
    original, ours = table.iloc[0], table.iloc[1]
    assert original["units"] > ours["units"] and original["mask multiply share"] > 0
    assert ours["mask multiply share"] == 0
    assert (tmp_path / "trace.json").exists() and (tmp_path / "trace_original_design.json").exists()


def test_inference_variants_compute_the_same_function(pruned_resnet20):
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        reference = pruned_resnet20(x)
        plain = strip_masks(pruned_resnet20)
        fused = fuse_conv_bn(pruned_resnet20)
        assert not any(n.endswith("_mask") for n in plain.state_dict())
        assert torch.allclose(plain(x), reference, atol=1e-5)
        assert torch.allclose(fused(x), reference, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    # pruned weights are still zero after folding the batchnorm into the conv
    mask = pruned_resnet20.blocks[0].conv1.weight_mask
    assert torch.all(fused.blocks[0].conv1.weight[mask == 0] == 0)


def test_the_designs_are_timed_over_repeated_steps_taken_in_turn(pruned_resnet20, tmp_path):
    comparison = compare_designs(pruned_resnet20, torch.randn(4, 3, 32, 32), tmp_path, warmup=1, repeats=5)
    assert set(comparison.timing) == {"original", "ours"}
    table = comparison.table()
    assert list(table["timed steps"]) == [5, 5] and (table["step spread (ms)"] >= 0).all()
    summary = comparison.timing_summary()
    assert summary["ours_step_repeats"] == 5 and summary["original_step_s"] > 0
    assert "original_step_spread_s" in summary and len(summary["original_step_samples_s"]) == 5
