"""Timing cells of Tables G and J–L, and the figures, verdicts and words of the Task 2 / Task 4 and sparse-kernel
findings, on hand-made tables."""

import html
import math
import re
from types import SimpleNamespace

import pandas as pd
import pytest
from timed_passes import timed, timing_of

from prunelab.core.timing import BEYOND_NOISE, TIMING_RULE, TOO_FEW, WITHIN_NOISE, Timing
from prunelab.runs.int8 import FP32_COMPILED, FP32_METHOD
from prunelab.workbook.int8_findings import uncompiled_reason
from prunelab.workbook.key_results import quantization_key, quantization_key_result, trace_key_result
from prunelab.workbook.measurement_tables import (
    MEMORY_RATIO,
    RUN_TIME,
    TIME_RATIO,
    TOP1_ROUNDING_NOTE,
    amp_relative_caption,
    amp_relative_table,
    amp_training_table,
    captioned,
    conv_layer_table,
    design_comparison_table,
    difference_text,
    int8_comparison_caption,
    int8_comparison_table,
    int8_timing_caption,
    int8_timing_table,
    timed_step_heading,
)
from prunelab.workbook.numbers import Span, ratio_text, share_of, significant, steps_text, time_cell
from prunelab.workbook.sparse_speed import DENSE_MOVED, DenseTimes, _dense_line, sparse_findings, sparse_result
from prunelab.workbook.speed_findings import amp_time_words, amp_times, quantization_findings, quantization_result
from prunelab.workbook.table_notes import UNROUNDED_RATIOS
from prunelab.workbook.tables import INT8_METHODS, int8_sides, int8_table
from prunelab.workbook.tracing_findings import (
    conv_cost_words,
    conv_costs,
    design_speed,
    design_speed_words,
    per_flop_text,
    trace_capture_words,
    trace_findings,
    trace_result,
)


def _designs() -> pd.DataFrame:
    """The traced step of each design, as ``trace_designs.csv`` holds it (original first); each span among its
    design's untraced steps in :func:`_summary` (13.0 and 10.0 ms)."""
    rows = [("original: mask multiplied in every forward", 152, 13.0, 0.1),
            ("prunelab: masks folded into the weights", 73, 9.9234, 0.0)]
    return pd.DataFrame([{"design": d, "units": u, "step span (ms)": span, "busy (ms)": 8.0, "convolution (ms)": 7.0,
                          "mask multiply share": m} for d, u, span, m in rows])


def _trace(**kw) -> dict:
    return {**dict(device="cpu", step_span_ms=9.9234, step_busy_ms=7.975, conv_layers=21, conv_ms=2.271,
                   conv_share=0.285, main_sink="convolution", outputs_equal_to_original_design=True), **kw}


def _summary(original=(13.0, 0.5), ours=(10.0, 0.4), timed: bool = True, **trace) -> dict:
    """A trace record's summary: its trace, and five repeated steps of each design (ms: median, range)."""
    steps = {k: v for key, (median, spread) in (("original", original), ("ours", ours))
             for k, v in timing_of(median / 1e3, spread / 1e3).summary(f"{key}_step").items()}
    return {"trace": _trace(**trace), **({"design_steps": steps} if timed else {})}


def test_a_difference_is_claimed_only_where_the_rank_test_tells_the_times_apart():
    assert difference_text(timing_of(10.0, 1.0), timing_of(10.5, 0.8)) == WITHIN_NOISE
    assert difference_text(timing_of(12.0, 1.0), timing_of(10.0, 0.8)) == "slower"
    assert difference_text(timing_of(8.0, 1.0), timing_of(10.0, 0.5)) == "faster"
    one_slow = Timing.of([10.0, 10.1, 9.9, 10.05, 30.0])  # one slow pass: a range of 20 hides a 2 gap no longer
    assert difference_text(timing_of(8.0, 0.2), one_slow) == "faster"
    assert difference_text(Timing(8.0, 1.0, 5), timing_of(10.0, 0.5)) == TOO_FEW  # an old record: no passes
    noise = design_speed(_summary((10.4, 1.0), (10.0, 0.6)))  # 0.4 ms apart, ranges of 1.0 and 0.6
    assert not noise.differ and noise.original.repeats == 5
    real = design_speed(_summary((13.0, 0.5), (10.0, 0.4)))
    assert real.differ and real.folded_faster and real.against_folded == pytest.approx(1.3)
    slower = design_speed(_summary((10.0, 0.5), (13.0, 0.4)))
    assert slower.differ and not slower.folded_faster and slower.against_folded == pytest.approx(10 / 13)
    assert design_speed(_summary(timed=False)) is None  # no repeated steps


def test_the_design_speed_words_carry_the_step_times_and_claim_only_real_gaps():
    for times in (((10.4, 1.0), (10.0, 0.6)), ((13.0, 0.5), (10.0, 0.4)), ((10.0, 0.5), (13.0, 0.4))):
        speed, text = design_speed(_summary(*times)), design_speed_words(_summary(*times))
        assert time_cell(1e3 * speed.original.median, 1e3 * speed.original.spread, "ms") in text
        assert time_cell(1e3 * speed.folded.median, 1e3 * speed.folded.spread, "ms") in text
        assert "over 5 steps" in text
        assert (ratio_text(speed.against_folded) in text) == speed.differ and ("**" in text) == speed.differ
        if not speed.differ:
            assert f"the {1e3 * abs(speed.original.median - speed.folded.median):.3g} ms gap" in text
    assert "ms" not in design_speed_words(_summary(timed=False))


def test_the_trace_result_reads_the_trace_summary_and_the_design_comparison():
    result = trace_result(_summary(), _designs())
    s = result.summary
    assert (s.span_ms, s.busy_ms, s.conv_layers, s.conv_ms, s.conv_share) == (9.9234, 7.975, 21, 2.271, 0.285)
    assert s.main_sink == "convolution" and s.unit == "top-level ops"
    assert (result.original_units, result.folded_units, result.mask_share) == (152, 73, 0.1)
    assert result.outputs_equal and result.speed == design_speed(_summary())
    cuda = trace_result(_summary(device="cuda", outputs_equal_to_original_design=False), _designs())
    assert cuda.summary.unit == "kernels" and not cuda.outputs_equal


def test_the_trace_findings_words_carry_the_traces_figures():
    designs = _designs()
    for summary in (_summary(), _summary(device="cuda", main_sink="overhead", outputs_equal_to_original_design=False)):
        result, text = trace_result(summary, designs), trace_findings(summary, designs)
        s = result.summary
        assert "9.92 ms" in text and "7.97 ms" in text and "2.27 ms" in text and f"**{s.conv_share:.1%}**" in text
        assert f"{s.conv_layers} convolution layers" in text and f"**{s.main_sink}**" in text
        assert f"{result.original_units} {s.unit} against {result.folded_units}" in text
        assert f"{result.mask_share:.1%}" in text
        assert ("NOT identical" in text) != result.outputs_equal
        assert design_speed_words(summary) in text
    # a CPU's trace says a GPU's step would split otherwise, which a GPU's trace has no need to say
    from prunelab.workbook.tracing_findings import _on_the_cpu

    cpu, gpu = (trace_result(_summary(device=d), designs).summary for d in ("cpu", "cuda"))
    assert _on_the_cpu(cpu) in trace_findings(_summary(device="cpu"), designs) and _on_the_cpu(cpu)
    assert _on_the_cpu(gpu) == ""
    key = trace_key_result(_summary(), designs, "real CIFAR-10")
    assert "real CIFAR-10" in key and "21 convolution layers" in key and "**28.5%**" in key
    assert "2.27 ms" in key and "7.97 ms" in key and "sink is convolution" in key
    # the fix the lab notes proposed, as Table G measured it: the mask share, and the steps' ratio where told apart
    speed = design_speed(_summary())
    assert "10.0%" in key and speed.differ and f"**{ratio_text(speed.against_folded)}**" in key
    untimed = trace_key_result(_summary(timed=False), designs, "real CIFAR-10")
    assert "10.0%" in untimed and "**" not in untimed.split("**28.5%**")[1]
    from prunelab.core.trace import KINDS
    from prunelab.workbook.tracing_findings import SINK_FIXES

    assert set(SINK_FIXES) == set(KINDS)  # every kind a trace can name as its sink has a fix
    for sink in KINDS:
        assert SINK_FIXES[sink] in trace_key_result(_summary(main_sink=sink), designs, "real CIFAR-10")
        assert SINK_FIXES[sink] in trace_findings(_summary(main_sink=sink), _designs()) or (
            sink == "convolution")  # the findings word the convolutions' fix at length
    unnamed = trace_key_result(_summary(main_sink=None), designs, "real CIFAR-10")  # no sink found: no fix named
    assert not [fix for fix in SINK_FIXES.values() if fix in unnamed]


def test_steps_that_do_not_resolve_the_designs_are_not_read_as_folding_gaining_nothing():
    """The repeated steps cannot tell the designs apart, but the trace measured the mask multiplies (10% of 8 ms
    busy): the findings quote that time and share and the steps' spread, so "neither is faster" is not read as
    "folding gains nothing"; where the steps do tell them apart, the measured difference speaks for itself."""
    designs = _designs()
    noise = _summary((10.4, 1.0), (10.0, 0.6))
    result = trace_result(noise, designs)
    assert not result.speed.differ and result.mask_ms == pytest.approx(0.8)
    mask = f"{significant(result.mask_ms)} ms"
    text = trace_findings(noise, designs)
    (line,) = [line for line in text.splitlines() if design_speed_words(noise) in line]
    assert mask in line and f"{result.mask_share:.1%}" in line
    assert f"± {significant(0.5, 2)} ms" in line  # half the wider range, 1 ms
    resolved = trace_findings(_summary(), designs)  # 13 against 10 ms, told apart
    (line,) = [line for line in resolved.splitlines() if design_speed_words(_summary()) in line]
    assert mask not in line
    assert mask not in [line for line in trace_findings(_summary(timed=False), designs).splitlines()][-1]


def test_the_findings_say_how_much_of_the_busy_gap_the_mask_multiplies_explain():
    designs = _designs()  # the original's traced step busy 8.0 ms, 10% (0.8 ms) mask multiplies
    beyond = trace_findings(_summary(step_busy_ms=5.0), designs)  # a 3 ms gap, far beyond the multiplies' 0.8 ms
    assert "3.00 ms longer (8.00 against 5.00 ms); its mask multiplies took 0.800 ms" in beyond
    assert "other 2.20 ms" in beyond and "repeated steps below" in beyond  # 3 ms less the multiplies' 0.8 ms
    within = trace_findings(_summary(step_busy_ms=7.0), designs)  # 1.0 ms: the multiplies and a little more
    assert "1.00 ms longer" in within and "other 0.200 ms" not in within and "ms faster" not in within
    smaller = trace_findings(_summary(step_busy_ms=7.5), designs)  # 0.5 ms, less than the multiplies' 0.8 ms
    assert "0.500 ms longer" in smaller and "0.300 ms faster" in smaller  # the rest of that step ran faster
    busier = trace_findings(_summary(step_busy_ms=8.5), designs)  # the folded step was the busier
    assert "longer" not in busier and "0.500 ms shorter (8.00 against 8.50 ms)" in busier and "0.800 ms" in busier
    untimed = _summary(step_busy_ms=5.0, timed=False)  # a record without repeated steps
    assert "repeated steps below" not in trace_findings(untimed, designs)


def test_table_e_sets_each_conv_layers_traced_time_against_its_multiply_adds(tmp_path):
    import torch

    from prunelab.core.measure import count_flops, layer_summary
    from prunelab.core.trace import analyze_trace, capture_inference_trace
    from prunelab.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("resnet20", "lottery", (3, 32, 32), 10).eval()
    analysis = analyze_trace(capture_inference_trace(model, torch.randn(8, 3, 32, 32), tmp_path / "t.json", warmup=2))
    costs = conv_costs(analysis, layer_summary(model, count_flops(model, (3, 32, 32)), {}))
    assert len(costs) == 21 and costs["flops"].notna().all()  # every traced layer found in the layer table
    flops = costs.set_index("module")["flops"]
    assert flops["conv"] == 16 * 3 * 9 * 32 * 32 and flops["blocks.3.shortcut.0"] == 32 * 16 * 16 * 16
    per_flop = costs["time_us"] / costs["flops"]
    assert list(costs["relative"]) == pytest.approx(list(per_flop / per_flop.median()))
    table = conv_layer_table(costs)
    assert list(table["dense FLOPs (multiply-adds) per image (M)"][:2]) == ["0.442", "2.36"]
    assert list(table["time per FLOP (× median)"]) == [f"{r:.2f}" for r in costs["relative"]]


def test_the_layer_cost_words_name_each_layer_far_above_the_median_time_per_multiply_add():
    def costs(times, flops):
        frame = pd.DataFrame({"module": list("abcd"), "time_us": times, "flops": flops})
        per_flop = frame["time_us"] / frame["flops"]
        return frame.assign(relative=per_flop / per_flop.median())

    text = conv_cost_words(costs([100.0, 100.0, 100.0, 40.0], [1000.0, 1000.0, 1000.0, 100.0]))
    assert f"`d` ({per_flop_text(4.0)}x" in text and "`a`" not in text  # 4x the median time per FLOP
    assert "3.2%" in text and "11.8%" in text  # d's shares of the FLOPs and of the time
    assert "1.00x to 4.00x" in text
    quiet = conv_cost_words(costs([100.0, 110.0, 90.0, 15.0], [1000.0, 1000.0, 1000.0, 100.0]))
    assert "`" not in quiet and "0.86x to 1.43x" in quiet  # none at 2x either way: no layer named
    fast = conv_cost_words(costs([100.0, 100.0, 100.0, 4.0], [1000.0, 1000.0, 1000.0, 100.0]))
    assert f"`d` ({per_flop_text(0.04 / 0.1)}x" in fast  # far below the median time per FLOP is named too
    findings = trace_findings(_summary(), _designs(), costs([1.0, 1.0, 1.0, 4.0], [1.0] * 4))
    assert conv_cost_words(costs([1.0, 1.0, 1.0, 4.0], [1.0] * 4)) in findings
    unmatched = costs([1.0, 1.0, 1.0, 4.0], [1.0, 1.0, 1.0, float("nan")])  # a layer the layer table lacks
    plain = trace_findings(_summary(), _designs())
    assert trace_findings(_summary(), _designs(), unmatched) == plain  # not from part of them
    no_flops = costs([1.0, 1.0, 1.0, 4.0], [1.0, 1.0, 1.0, 0.0])  # a layer the FLOP count missed
    assert trace_findings(_summary(), _designs(), no_flops) == plain
    empty = pd.DataFrame({"module": [], "time_us": [], "flops": [], "relative": []})
    assert trace_findings(_summary(), _designs(), empty) == plain


def test_the_trace_line_names_the_profiled_steps_only_where_the_record_gives_them():
    trace = {"batch": 256, "warmup": 5}
    assert "profiled" not in trace_capture_words(trace) and "5 warm-up" in trace_capture_words(trace)
    words = trace_capture_words({**trace, "profiled_steps": 3})
    assert "3 profiled steps" in words and "median" in words and "256 test images" in words


def test_table_g_shows_the_repeated_step_with_its_half_range():
    frame = design_comparison_table(_designs(), _summary((0.96, 0.2), (1.0, 0.1)))  # the user's 0.96x: noise
    assert list(frame["step time (ms)"]) == ["0.960 ± 0.10", "1.00 ± 0.050"]  # the heading gives the unit
    assert frame["against folded"].iloc[0] == f"0.960x, {WITHIN_NOISE}"
    untimed = design_comparison_table(_designs(), _summary(timed=False))
    assert "step time (ms)" not in untimed
    assert untimed["busy in traced step (ms)"].iloc[0] == "8.00"  # one step each: shown only where nothing repeated
    assert "busy in traced step (ms)" not in frame


def test_the_design_speed_words_quote_table_gs_ratio_as_its_cell_prints_it():
    """The findings' ratio of the two designs is the one Table G prints in the original design's row, whichever design
    is faster: a reader finds the finding's number in the table."""
    for times in (((13.0, 0.5), (10.0, 0.4)), ((10.0, 0.5), (13.0, 0.4)), ((30.4, 0.5), (10.0, 0.4))):
        cell = design_comparison_table(_designs(), _summary(*times))["against folded"].iloc[0]
        ratio = cell.split(", ")[0]  # "0.769x, faster"
        assert ratio in design_speed_words(_summary(*times)), (cell, design_speed_words(_summary(*times)))
    assert "0.769x" in design_speed_words(_summary((10.0, 0.5), (13.0, 0.4)))  # 10 / 13: the original, faster
    assert "3.04x" in design_speed_words(_summary((30.4, 0.5), (10.0, 0.4)))


def test_the_layer_cost_words_quote_table_es_cells():
    """Each time per FLOP the findings name, and the range they give, is a cell of Table E as printed."""
    frame = pd.DataFrame({"module": list("abcd"), "type": "Conv2d", "time_us": [100.0, 104.0, 96.0, 43.0],
                          "share_of_busy": 0.1, "share_of_span": 0.1, "flops": [1000.0, 1000.0, 1000.0, 100.0]})
    per_flop = frame["time_us"] / frame["flops"]
    costs = frame.assign(relative=per_flop / per_flop.median())  # d at 4.216x: 4.22 in the table
    cells = dict(zip(costs["module"], conv_layer_table(costs)["time per FLOP (× median)"]))
    assert cells["d"] == "4.22"
    text = conv_cost_words(costs)
    assert f"`d` ({cells['d']}x" in text and f"{cells['c']}x to {cells['d']}x" in text, (cells, text)


def _runs():
    return pd.DataFrame([dict(compression=c, amp=a, amp_dtype="bf16" if a else "fp32", peak_memory_mb=m,
                              top1=t, train_s=s, peak_memory_kind="cpu_peak_rss", device_name="cpu x",
                              model="resnet20", params_total=270_000, cpu_bf16=[], peak_memory_start_mb=500.0,
                              setup="CIFAR-10 / ResNet20", data_source="real")
                         for c, a, m, t, s in [(0.25, False, 1109.499023, 29.3, 84.0),
                                               (0.25, True, 1000.0, 29.25, 90.0), (0.5, False, 1100.0, 30.0, 20.0),
                                               (0.5, True, 1001.0, 31.0, 200.0)]])


def test_the_key_results_training_time_is_of_the_timed_pass_table_j_heads():
    """The AMP / fp32 ratio on the front page is of the steps timed in turn, not of the whole runs' training times
    Table J gives beside them: it says how many steps of how many images, as Table J's heading does."""
    timing = _timing().assign(batches=3, batch_size=48)
    key = quantization_key_result(_runs().assign(data="real CIFAR-10"), timing)
    heading = re.search(r"\d+ steps? of \d+ images", timed_step_heading(timing)).group(0)
    assert heading == "3 steps of 48 images" and heading in key
    assert ratio_text(1.1) in key and ratio_text(1.1) in amp_time_words(timing)  # the timed pass's ratio


def _timing():
    return timed(pd.DataFrame([
        dict(compression=0.25, amp_dtype="bf16", batches=1, batch_size=32, fp32_train_s=1.0,
             fp32_train_spread_s=0.2, fp32_train_repeats=5, amp_train_s=1.1, amp_train_spread_s=0.3,
             amp_train_repeats=5),
        dict(compression=0.5, amp_dtype="bf16", batches=1, batch_size=32, fp32_train_s=1.0,
             fp32_train_spread_s=0.05, fp32_train_repeats=5, amp_train_s=9.0, amp_train_spread_s=0.5,
             amp_train_repeats=5)])).set_index("compression")


def test_tables_j_and_k_show_people_numbers_and_call_only_real_gaps_differences():
    j = amp_training_table(_runs(), _timing())
    assert list(j.index) == ["0.25", "0.5"]
    assert j.loc["0.25", ("Top-1 (%)", "fp32")] == "29.3"
    on_cuda = amp_training_table(_runs().assign(peak_memory_kind="cuda_max_allocated"), _timing())
    assert on_cuda.loc["0.25", ("Peak memory (MB)", "fp32")] == "1,110"
    step = "Time of 1 step of 32 images (s)"  # what one timed pass holds, from the timing frame
    assert j.loc["0.25", (step, "AMP bf16")] == "1.10 ± 0.15"  # the heading gives the unit
    assert (j.loc["0.5", (RUN_TIME, "fp32")], j.loc["0.5", (RUN_TIME, "AMP bf16")]) == (
        "20.0", "200")  # each run's own train_s, as recorded
    k = amp_relative_table(_runs(), _timing())
    assert k.loc["0.25", "time difference"] == WITHIN_NOISE
    assert k.loc["0.5", "time difference"] == "slower" and k.loc["0.5", TIME_RATIO] == "9.00x"
    # peak memory: compared on a GPU, where it is CUDA's own; on the CPU, the training process's resident set
    on_cuda = amp_relative_table(_runs().assign(peak_memory_kind="cuda_max_allocated"), _timing())
    assert on_cuda.loc["0.25", MEMORY_RATIO] == "0.901x"
    assert MEMORY_RATIO not in k  # a column of "not compared" in every row is left out


def test_table_j_gives_a_cpus_peak_memory_under_its_own_heading_not_as_a_gpus():
    runs = _runs()  # the course's peak memory column; on a CPU the resident set of the process that trained the run
    j, on_cuda = (amp_training_table(r, _timing()) for r in (runs, runs.assign(peak_memory_kind="cuda_max_allocated")))
    gpu = set(on_cuda.columns.get_level_values(0)) - set(j.columns.get_level_values(0))
    (cpu,) = set(j.columns.get_level_values(0)) - set(on_cuda.columns.get_level_values(0))
    assert gpu == {"Peak memory (MB)"} and "(MB)" in cpu  # a heading of its own: not read as each run's own peak
    for (compression, amp), peak in zip(runs[["compression", "amp"]].itertuples(index=False), runs["peak_memory_mb"]):
        assert j.loc[f"{compression:g}", (cpu, "AMP bf16" if amp else "fp32")] == significant(peak)
    assert MEMORY_RATIO not in amp_relative_table(runs, _timing())  # shown, but not compared
    mixed = amp_training_table(runs.assign(peak_memory_kind=["cpu_peak_rss", "cuda_max_allocated"] * 2), _timing())
    assert not {"Peak memory (MB)", cpu} & set(mixed.columns.get_level_values(0))  # neither one kind's heading


def test_on_a_cpu_the_precisions_memory_is_compared_by_a_timed_pass_s_tensors_everywhere_it_is_shown():
    """Where the amp-timing records hold each precision's peak tensor memory of a timed pass, Tables J and K, the
    findings, the key result and Figure 6 compare the precisions by it (the process's resident set is not theirs)."""
    import matplotlib.pyplot as plt

    from prunelab.workbook.figures import plot_amp

    peaks = {0.25: (30.0, 18.0), 0.5: (40.0, 26.0)}  # (fp32, AMP) MB
    timing = _timing().assign(fp32_train_peak_mb=[p[0] for p in peaks.values()],
                              amp_train_peak_mb=[p[1] for p in peaks.values()])
    j = amp_training_table(_runs(), timing)
    (heading,) = {h for h in j.columns.get_level_values(0) if "memory" in h.lower()}
    for c, (fp32, amp) in peaks.items():
        assert (j.loc[f"{c:g}", (heading, "fp32")], j.loc[f"{c:g}", (heading, "AMP bf16")]) == (
            significant(fp32), significant(amp))
        assert amp_relative_table(_runs(), timing).loc[f"{c:g}", MEMORY_RATIO] == ratio_text(amp / fp32)
    low, high = sorted(amp / fp32 for fp32, amp in peaks.values())
    words = Span(low, high).words(ratio_text)
    assert words in quantization_findings(_runs(), pd.DataFrame(), timing)
    assert words in quantization_key_result(_runs().assign(data="real CIFAR-10"), timing)
    fig = plot_amp(_runs(), timing)
    memory_ax = next(ax for ax in fig.axes if "memory" in ax.get_ylabel().lower())
    heights = sorted(round(bar.get_height(), 6) for bar in memory_ax.patches)
    assert heights == sorted(v for pair in peaks.values() for v in pair)
    plt.close(fig)
    fig = plot_amp(_runs().assign(majority_class_top1=11.6), timing)  # the top-1 panel's chance level
    top1_ax = next(ax for ax in fig.axes if "top-1" in ax.get_ylabel().lower())
    assert [tuple(line.get_ydata()) for line in top1_ax.lines if line.get_linestyle() == ":"] == [(11.6, 11.6)]
    plt.close(fig)
    unmeasured = timing.assign(amp_train_peak_mb=math.nan)  # a device whose memory the pass did not measure
    assert MEMORY_RATIO not in amp_relative_table(_runs(), unmeasured)


def _disagree(changes, new_cells, old_cells) -> bool:
    """Whether a shown top-1 change is not the difference of the shown cells in some row."""
    return any(float(c) != round(float(n) - float(o), 1) for c, n, o in zip(changes, new_cells, old_cells))


def test_table_k_notes_rounding_where_its_top1_change_is_not_table_js_cells_difference():
    for fp32, amp, noted in ((29.3, 29.25, False), (10.94, 10.16, True)):  # -0.78: "-0.8" beside 10.2 and 10.9
        runs = _runs().assign(top1=[fp32, amp, 30.0, 31.0])
        j, k = amp_training_table(runs, _timing()), amp_relative_table(runs, _timing())
        shown = _disagree(k["top-1 AMP - fp32 (points)"], j[("Top-1 (%)", "AMP bf16")], j[("Top-1 (%)", "fp32")])
        assert shown == noted and (TOP1_ROUNDING_NOTE in amp_relative_caption(runs)) == noted


def test_table_l_notes_rounding_the_same_way_only_where_its_cells_disagree():
    for int8_top1 in (97.0, 97.06):  # 97.06 - 97.2222 = -0.16: "-0.2" beside 97.1 and 97.2
        int8 = _int8(**{"int8 top-1 (%)": int8_top1, "drop (points)": 97.2222 - int8_top1})
        row = int8_comparison_table(int8)
        shown = _disagree(row["top-1 int8 - fp32 (points)"], row["int8 top-1 (%)"], row["fp32 top-1 (%)"])
        assert shown == (int8_top1 == 97.06) and (TOP1_ROUNDING_NOTE in int8_comparison_caption(int8)) == shown


def test_amp_times_judge_each_compression_by_a_rank_test_of_its_passes():
    times = amp_times(_timing())
    assert (times.dtype, times.batches, times.batch_size, times.repeats) == ("bf16", 1, 32, 5)
    low, high = times.at
    assert low.compression == 0.25 and low.ratio == pytest.approx(1.1) and not low.differ  # passes interleave
    assert high.compression == 0.5 and high.ratio == pytest.approx(9.0) and high.differ
    assert times.ratios == Span(pytest.approx(1.1), pytest.approx(9.0)) and times.beyond == 1
    with_timing = quantization_result(_runs(), pd.DataFrame(), _timing())
    assert with_timing.timing == times and not with_timing.gain  # slower, and one gap is noise
    fast = timed(_timing().assign(amp_train_s=0.5, amp_train_spread_s=0.01, fp32_train_spread_s=0.01))
    assert quantization_result(_runs(), pd.DataFrame(), fast).gain  # 0.5x at both, beyond the noise
    mixed = fast.assign(amp_train_samples_s=[[0.3, 0.4, 0.5, 1.01, 1.02]] * 2)  # 2 of AMP's 5 passes slower
    assert not quantization_result(_runs(), pd.DataFrame(), mixed).gain


def test_the_amp_time_ratio_says_which_way_it_goes_where_told_apart():
    """AMP's time over fp32's (more is slower) stands beside int8's speed-ups (more is faster): the front page says
    which way it went, over the compressions a rank test tells apart, and nothing where none is."""
    slow = amp_times(_timing())  # 1.1x within the noise, 9.0x beyond
    assert slow.way == "slower where told apart"
    both = timed(_timing().assign(amp_train_spread_s=0.01, fp32_train_spread_s=0.01))
    fast = timed(_timing().assign(amp_train_s=0.5, amp_train_spread_s=0.01, fp32_train_spread_s=0.01))
    split = timed(_timing().assign(amp_train_s=[0.5, 9.0], amp_train_spread_s=0.01, fp32_train_spread_s=0.01))
    lean = timed(_timing().assign(amp_train_s=[0.8, 0.9], amp_train_spread_s=[0.5, 0.5]))
    assert [amp_times(t).way for t in (both, fast, split, lean)] == [
        "slower", "faster", "slower at some compressions, faster at others", None]
    for timing in (_timing(), both, fast, split):
        key = quantization_key_result(_runs().assign(data="real CIFAR-10"), timing)
        assert f"({amp_times(timing).way})" in key
    unjudged = quantization_key_result(_runs().assign(data="real CIFAR-10"), lean)
    assert "slower" not in unjudged and "faster" not in unjudged
    for timing, way in ((both, "slower"), (fast, "faster")):  # Table K's time ratio: above 1 where AMP is slower
        cells = amp_relative_table(_runs(), timing)[TIME_RATIO]
        assert amp_times(timing).way == way and all((float(c.rstrip("x")) > 1) == (way == "slower") for c in cells)


def test_amp_time_words_carry_each_compressions_times_and_ratio():
    times, text = amp_times(_timing()), amp_time_words(_timing())
    for t in times.at:
        amp, fp32 = time_cell(t.amp.median, t.amp.spread), time_cell(t.fp32.median, t.fp32.spread)
        assert f"{t.compression:g} {amp} against {fp32}" in text
        assert (f"**{t.ratio:.2f}x**" if t.differ else f"{t.ratio:.2f}x") in text
    assert f"{times.batches} training step of {times.batch_size} images" in text
    assert f"{times.repeats} passes" in text and f"({times.dtype})" in text
    full = quantization_findings(_runs(), pd.DataFrame(), _timing())
    assert text in full  # the interleaved times, and not the ratio of the separate runs' totals (84 s ...)
    assert quantization_result(_runs(), pd.DataFrame(), _timing()).time.words("{:.2f}x".format) not in full


def test_table_l_gives_accuracy_and_size_and_leaves_the_times_to_table_l2():
    int8 = _int8()
    table = int8_comparison_table(int8)
    row = table.iloc[0]
    assert table.index[0] == ("digits / Conv", "0.25")
    assert list(table.columns) == ["kept weights (fraction)", "int8 path", "fp32 top-1 (%)", "int8 top-1 (%)",
                                   "top-1 int8 - fp32 (points)", "fp32 dense (KB)", "fp32 sparse (KB)", "int8 (KB)",
                                   "pruned weights zero in int8"]
    assert row["fp32 top-1 (%)"] == "97.2" and row["kept weights (fraction)"] == "0.562" and row["int8 (KB)"] == "30.0"
    assert row["top-1 int8 - fp32 (points)"] == "-0.2"  # int8 lost 0.22 points: the sign the discussion gives
    same = int8_comparison_table(int8.assign(**{"drop (points)": 0.0})).iloc[0]
    assert same["top-1 int8 - fp32 (points)"] == "+0.0"  # no change is not printed as "-0.0"
    assert row["pruned weights zero in int8"] == "yes"  # words, not a Python bool
    assert row["int8 path"] == "PT2E"
    fallback = int8_comparison_table(_int8(**_not_compiled())).iloc[0]["int8 path"]
    assert fallback == "torch.ao eager (PT2E failed)"  # why is the findings', once: not a bracket in a bracket
    unrecorded = int8_comparison_table(_int8(**{"int8 fallback": float("nan")})).iloc[0]["int8 path"]
    assert unrecorded == "PT2E"  # NaN where a concat left no text: no fallback


def test_table_l2_times_int8_against_fp32_eager_and_compiled_with_a_verdict_each():
    int8 = _int8()
    table = int8_timing_table(int8)
    assert table.index[0] == ("digits / Conv", "0.25")
    assert list(table.columns) == [
        ("inference time (ms)", "fp32 eager"), ("inference time (ms)", "fp32 compiled"),
        ("inference time (ms)", "int8"),
        ("int8 over fp32 eager", "speed-up"), ("int8 over fp32 eager", "time difference"),
        ("int8 over fp32 compiled", "speed-up"), ("int8 over fp32 compiled", "time difference"), ("passes", "")]
    row = table.iloc[0]
    assert row[("inference time (ms)", "fp32 eager")] == "1,110 ± 10" and row[("inference time (ms)", "int8")] \
        == "29.3 ± 0.50"
    assert row[("inference time (ms)", "fp32 compiled")] == "35.0 ± 1.0"
    assert row[("int8 over fp32 eager", "speed-up")] == "37.9x" and row[("int8 over fp32 eager", "time difference")] \
        == "faster"
    assert row[("int8 over fp32 compiled", "speed-up")] == "1.19x"  # 35.0 / 29.3, the medians' ratio
    assert row[("int8 over fp32 compiled", "time difference")] == "faster" and row[("passes", "")] == 5
    close = int8_timing_table(_int8(**{"fp32 compiled inference (ms)": 29.5, "speedup over compiled": 29.5 / 29.3}))
    assert close.iloc[0][("int8 over fp32 compiled", "time difference")] == WITHIN_NOISE  # passes overlap
    fallback = int8_timing_table(_int8(**_not_compiled())).iloc[0]
    assert fallback[("inference time (ms)", "fp32 compiled")] == "–"  # not timed: a dash, not "nan ± nan"
    assert fallback[("int8 over fp32 compiled", "speed-up")] == "–"
    assert fallback[("int8 over fp32 compiled", "time difference")] == "–"
    assert fallback[("int8 over fp32 eager", "time difference")] == "faster"  # the eager side stands


def test_table_l2_caption_says_what_each_speed_up_compares():
    caption = int8_timing_caption(_int8())
    assert f"Over fp32 eager: {int8_sides(_int8())}." in caption and TIMING_RULE in caption
    assert "Over fp32 compiled" in caption
    assert TIMING_RULE not in int8_comparison_caption(_int8())  # Table L shows no times


def test_table_l2_caption_explains_a_dash_only_where_a_row_shows_one():
    assert "–" not in int8_timing_caption(_int8())  # every row's compiled side timed
    mixed = pd.concat([_int8(), _int8(compression=0.5, **_not_compiled())])
    assert "– where" in int8_timing_caption(mixed)


def test_int8_words_say_in_how_many_runs_int8_was_the_slower_where_the_runs_disagree():
    from prunelab.workbook.int8_findings import int8_speed

    def row(compression: float, int8_ms: float) -> pd.DataFrame:  # fp32 at 30 ms; int8 told apart either way
        return _int8(compression=compression, **{"fp32 inference (ms)": 30.0, "fp32 inference spread (ms)": 1.0,
                                                 "int8 inference (ms)": int8_ms, "speedup": 30.0 / int8_ms})

    fast, slow = row(0.25, 24.0), row(0.5, 37.5)
    mixed = pd.concat([fast, slow])
    speed = int8_speed(mixed, "fp32 timing", "speedup")
    assert (speed.beyond, speed.runs, speed.slower) == (2, 2, 1)
    assert int8_speed(slow, "fp32 timing", "speedup").slower == 1
    assert int8_speed(fast, "fp32 timing", "speedup").slower == 0


def _not_compiled() -> dict:
    """The fields of an int8 table row whose int8 did not take the PT2E path: no compiled fp32 was timed."""
    return {"int8 path": "eager (fallback: no torchao)", "int8 method": "eager", "int8 fallback": "no torchao",
            "fp32 compiled inference (ms)": float("nan"), "fp32 compiled inference spread (ms)": float("nan"),
            "fp32 compiled timing": Timing.of(()), "speedup over compiled": float("nan")}


def _int8(**kw) -> pd.DataFrame:
    """One int8 table row (:func:`prunelab.workbook.tables.int8_table`); each timing's five passes spread evenly
    over its stated median and range unless ``kw`` gives the timing itself."""
    row = {"setup": "digits / Conv", "compression": 0.25, "stand-in": False, "kept weights": 0.562341,
           "int8 path": "pt2e", "int8 method": "pt2e", "fp32 method": "eager", "int8 fallback": None,
           "fp32 top-1 (%)": 97.2222, "int8 top-1 (%)": 97.0, "drop (points)": 0.2222,
           "fp32 inference (ms)": 1109.499023, "int8 inference (ms)": 29.3, "fp32 inference spread (ms)": 20.0,
           "int8 inference spread (ms)": 1.0, "fp32 compiled inference (ms)": 35.0,
           "fp32 compiled inference spread (ms)": 2.0, "timing repeats": 5, "speedup": 37.867,
           "speedup over compiled": 35.0 / 29.3, "fp32 dense (KB)": 100.0,
           "fp32 sparse (KB)": 60.0, "int8 (KB)": 30.0, "pruned weights zero in int8": True, **kw}
    for key in ("fp32", "int8", "fp32 compiled"):
        row.setdefault(f"{key} timing", timing_of(row[f"{key} inference (ms)"] / 1e3,
                                                   row[f"{key} inference spread (ms)"] / 1e3))
    return pd.DataFrame([row]).set_index(["setup", "compression"])


def test_the_int8_result_counts_real_speed_ups_and_checks_the_pruned_weights():
    result = quantization_result(_runs(), _int8(), _timing()).int8
    (digits,) = result.setups
    assert digits.setup == "digits / Conv" and digits.eager.speedup == Span(37.867, 37.867)
    assert (digits.eager.beyond, digits.runs) == (1, 1) and digits.top1_change == Span(-0.2222, -0.2222)
    assert digits.compiled.speedup == Span(pytest.approx(35.0 / 29.3), pytest.approx(35.0 / 29.3))
    assert (digits.compiled.beyond, digits.compiled.runs) == (1, 1) and not digits.stand_in
    assert result.zeros_kept and result.smaller_than_dense == Span(pytest.approx(100 / 30), pytest.approx(100 / 30))
    assert result.sparse_smaller == ()  # 60 KB sparse against 30 KB int8
    assert quantization_result(_runs(), _int8(**{"fp32 sparse (KB)": 20.0}), _timing()).int8.sparse_smaller \
        == (("digits / Conv", 0.25),)
    old = quantization_result(_runs(), _int8(**{"fp32 timing": Timing(1.1095, 0.02, 5)}), _timing()).int8
    assert old.setups[0].eager.beyond is None  # passes not recorded: no difference claimed
    assert not quantization_result(_runs(), _int8(**{"pruned weights zero in int8": False}), _timing()).int8.zeros_kept


def test_the_int8_words_carry_the_speed_up_and_sizes():
    for int8 in (_int8(), _int8(**{"fp32 sparse (KB)": 20.0, "pruned weights zero in int8": False})):
        result = quantization_result(_runs(), int8, _timing()).int8
        text = quantization_findings(_runs(), int8, _timing())
        (digits,) = result.setups
        eager = ratio_text(digits.eager.speedup.low)
        assert f"{digits.setup}: over fp32 run eagerly ({digits.sides}), **{eager}**" in text
        assert digits.runs == 1 and f"as fast, {BEYOND_NOISE}" in text and " of 1 run" not in text  # no "1 of 1"
        assert f"**{ratio_text(digits.compiled.speedup.low)}** as fast" in text
        assert f"{digits.top1_change.low:+.1f} points" in text and ratio_text(result.smaller_than_dense.low) in text
        assert ("NOT" in text) != result.zeros_kept
        assert all(f"{setup} at {c:g}" in text for setup, c in result.sparse_smaller)
    within = _int8(**{"int8 inference (ms)": 1100.0, "speedup": 1.0086})  # passes among fp32's: not in bold
    result = quantization_result(_runs(), within, _timing()).int8
    text = quantization_findings(_runs(), within, _timing())
    assert result.setups[0].eager.beyond == 0 and "1.01x" in text and "**1.01x**" not in text


def test_an_int8_speed_up_says_which_way_each_side_ran_as_its_records_do():
    fallback = _int8(**_not_compiled())
    assert int8_sides(_int8()) != int8_sides(fallback)  # read from the records' methods, not fixed
    assert int8_sides(_int8(**{"fp32 method": "compiled"})) not in (int8_sides(_int8()), int8_sides(fallback))
    for int8 in (_int8(), fallback):
        (digits,) = quantization_result(_runs(), int8, _timing()).int8.setups
        assert digits.sides == int8_sides(int8)
        text = quantization_findings(_runs(), int8, _timing())
        assert f"over fp32 run eagerly ({digits.sides}), **{ratio_text(digits.eager.speedup.low)}** as fast" in text
        assert f"Over fp32 eager: {digits.sides}." in int8_timing_caption(int8)  # and in Table L2's caption
    mixed = pd.concat([_int8(), fallback.rename(index={0.25: 0.5})])  # runs of one set-up on two paths
    (digits,) = quantization_result(_runs(), mixed, _timing()).int8.setups
    assert all(INT8_METHODS[method] in digits.sides for method in ("pt2e", "eager"))  # both named


def test_the_int8_discussion_says_what_int8_buys_over_compiled_fp32_as_well():
    close = _int8(**{"fp32 compiled inference (ms)": 29.5, "speedup over compiled": 29.5 / 29.3})
    for int8, beyond in ((_int8(), 1), (close, 0)):
        (digits,) = quantization_result(_runs(), int8, _timing()).int8.setups
        assert (digits.compiled.beyond, digits.compiled.runs) == (beyond, 1)
        text = quantization_findings(_runs(), int8, _timing())
        ratio = ratio_text(digits.compiled.speedup.low)
        assert (f"**{ratio}**" if beyond else f"{ratio} as fast") in text and ("**" + ratio in text) == bool(beyond)
        assert (f"{ratio} as fast, {WITHIN_NOISE}" in text) == (beyond == 0)  # where the test cannot tell apart
    fallback = quantization_findings(_runs(), _int8(**_not_compiled()), _timing())
    (untimed,) = quantization_result(_runs(), _int8(**_not_compiled()), _timing()).int8.setups
    assert untimed.uncompiled[0][0] in fallback and "nan" not in fallback  # why no compiled fp32 was timed
    mixed = pd.concat([_int8(), _int8(**_not_compiled()).rename(index={0.25: 0.5})])
    (digits,) = quantization_result(_runs(), mixed, _timing()).int8.setups
    assert (digits.compiled.runs, digits.runs) == (1, 2)  # only the PT2E run has a compiled side
    assert "graph (the 1 of 2 runs " in quantization_findings(_runs(), mixed, _timing())
    two = pd.concat([_int8(), _int8().rename(index={"digits / Conv": "MNIST / FC"}, level="setup")])
    text = quantization_findings(_runs(), two, _timing())
    assert text.count("both sides are compiled") == 1  # what the comparison is, said at its first set-up only
    assert text.count("over the same fp32 model compiled") == 2  # each set-up's figure still given
    slower = _int8(**{"fp32 compiled inference (ms)": 25.0, "fp32 compiled inference spread (ms)": 0.5,
                      "speedup over compiled": 25.0 / 29.3})  # int8 slower than compiled fp32 in every pass
    (digits,) = quantization_result(_runs(), slower, _timing()).int8.setups
    assert digits.compiled.every and digits.compiled.speedup.high < 1
    assert f"**{ratio_text(25.0 / 29.3)}** as fast: slower in the run, beyond the noise" in quantization_findings(
        _runs(), slower, _timing())  # not left to read as a gain



def test_the_int8_words_say_where_compiling_alone_made_fp32_slower_or_faster_beyond_the_noise():
    from prunelab.workbook.int8_findings import CompilingEffect

    def compiled_at(ms: float, spread: float) -> pd.DataFrame:  # eager fp32 at 30 ± 0.5 ms, int8 at 29.3 ms
        return _int8(**{"fp32 inference (ms)": 30.0, "fp32 inference spread (ms)": 1.0, "speedup": 30.0 / 29.3,
                        "fp32 compiled inference (ms)": ms, "fp32 compiled inference spread (ms)": spread,
                        "speedup over compiled": ms / 29.3})

    runs = _runs().assign(data="real CIFAR-10")
    for int8, slower, faster in ((compiled_at(40.0, 1.0), ((0.25, 40.0 / 30.0),), ()),
                                 (compiled_at(20.0, 1.0), (), ((0.25, 20.0 / 30.0),))):
        (digits,) = quantization_result(_runs(), int8, _timing()).int8.setups
        ((at, moved),) = slower or faster  # the run's compression and compiled fp32's time over eager fp32's
        assert (digits.compiling.runs, len(digits.compiling.slower), len(digits.compiling.faster)) == (
            1, len(slower), len(faster))
        assert (digits.compiling.slower or digits.compiling.faster)[0] == (at, pytest.approx(moved))
        ratio = ratio_text((slower or faster)[0][1])  # compiled fp32's time over eager fp32's: 1.33x, 0.667x
        assert ratio in quantization_findings(_runs(), int8, _timing())
        assert ratio in quantization_key_result(runs, _timing(), int8)
    close = compiled_at(30.2, 2.0)  # passes overlap: no difference claimed, nothing said
    (digits,) = quantization_result(_runs(), close, _timing()).int8.setups
    assert digits.compiling == CompilingEffect(1) and "1.01x" not in quantization_findings(_runs(), close, _timing())
    (fallback,) = quantization_result(_runs(), _int8(**_not_compiled()), _timing()).int8.setups
    assert fallback.compiling == CompilingEffect(0)  # no compiled fp32 timed: nothing to compare

def test_the_key_result_gives_int8_over_compiled_and_eager_fp32_and_a_stand_ins_times_alone():
    stand_in = _int8(**{"stand-in": True, "speedup": 2.0, "speedup over compiled": 3.0}).rename(
        index={"digits / Conv": "CIFAR-10 / ResNet20 (SYNTHETIC stand-in)"}, level="setup")
    int8 = pd.concat([_int8(), stand_in])
    runs = _runs().assign(data="real CIFAR-10")
    text = quantization_key_result(runs, _timing(), int8)
    assert text.startswith(quantization_key_result(runs, _timing()))  # the AMP sentence as before
    digits, resnet = quantization_key(runs, _timing(), int8).int8  # real data first
    assert (digits.setup, resnet.stand_in) == ("digits / Conv", True)
    # the stand-in's times hold (generated pixels change no kernel's work), its top-1 does not
    assert "3.00x" in text and "2.00x" in text and text.count("points") == 1
    text = text[:text.index(resnet.setup)]  # the real set-up's sentence
    assert f"both sides), **{ratio_text(35.0 / 29.3)}** as fast" in text  # the medians' ratio, told apart
    assert f"over fp32 run eagerly, **{ratio_text(37.867)}** as fast" in text and "-0.2 points" in text
    assert text.count(f"as fast, {BEYOND_NOISE}") == 2 and " of 1 run" not in text  # one run each: no "1 of 1"
    close = _int8(**{"fp32 compiled inference (ms)": 29.5, "speedup over compiled": 29.5 / 29.3})
    said = quantization_key_result(runs, _timing(), close)
    assert f"both sides), {ratio_text(29.5 / 29.3)} as fast, {WITHIN_NOISE}" in said
    fallback = quantization_key_result(runs, _timing(), _int8(**_not_compiled()))
    assert uncompiled_reason(_int8(**_not_compiled()).iloc[0]) in fallback and "nan" not in fallback
    assert "points" not in quantization_key_result(runs, _timing(), stand_in).removeprefix(
        quantization_key_result(runs, _timing()))



def test_the_int8_words_give_the_reason_each_record_stores_for_no_compiled_fp32():
    fallback = {**_not_compiled(), "int8 fallback": "no torchao here"}
    failed = {**_not_compiled(), "int8 method": "pt2e", "int8 path": "pt2e", "fp32 compiled error": "no C++ compiler"}
    cases = {"old path": _not_compiled(), "fallback": fallback, "compile failed": failed,
             "unstored": {**failed, "fp32 compiled error": None}, "unsaid": {**failed, "fp32 compiled error": ""},
             "old record": {**_not_compiled(), "fp32 compiled recorded": False}}
    reasons = {case: uncompiled_reason(_int8(**kw).iloc[0]) for case, kw in cases.items()}
    assert len(set(reasons.values())) == len(cases) and uncompiled_reason(_int8().iloc[0]) is None  # one per case
    assert "eager" in reasons["old path"] and "no torchao here" in reasons["fallback"]  # from the record's fields
    assert "no C++ compiler" in reasons["compile failed"] and "PT2E" not in reasons["old record"]
    assert "FX" in uncompiled_reason(_int8(**{**_not_compiled(), "int8 method": "fx"}).iloc[0])
    runs = _runs().assign(data="real CIFAR-10")
    for case, kw in cases.items():
        text = quantization_findings(_runs(), _int8(**kw), _timing())
        assert reasons[case] in text and reasons[case] in quantization_key_result(runs, _timing(), _int8(**kw))
    two = pd.concat([_int8(**fallback), _int8(**failed).rename(index={0.25: 0.5}), _int8().rename(index={0.25: 1.0})])
    (digits,) = quantization_result(_runs(), two, _timing()).int8.setups
    assert digits.uncompiled == ((reasons["fallback"], (0.25,)), (reasons["compile failed"], (0.5,)))
    assert (digits.compiled.runs, digits.runs) == (1, 3)
    text = quantization_findings(_runs(), two, _timing())
    assert "at compression 0.25" in text and "at compression 0.5" in text  # each reason with its runs

def test_an_int8_top1_change_is_counted_in_test_images_where_the_records_give_their_number():
    """-0.6 points of 360 test images is 2 images: the findings and the key result give the count beside the points,
    from each record's number of test images; a record without it is given in points alone."""
    two = pd.concat([_int8(**{"test images": 360, "drop (points)": 0.5556}),
                     _int8(**{"test images": 360, "drop (points)": -0.2778}).rename(index={0.25: 0.5})])
    (digits,) = quantization_result(_runs(), two, _timing()).int8.setups
    assert digits.top1_images == Span(-2, 1) and digits.test_images == Span(360, 360)
    runs = _runs().assign(data="real CIFAR-10")
    for text in (quantization_findings(_runs(), two, _timing()), quantization_key_result(runs, _timing(), two)):
        assert re.search(r"-2 to \+1 of [^.;]*360 test images", text), text
    (old,) = quantization_result(_runs(), _int8(), _timing()).int8.setups  # no "test images": not stored
    assert old.top1_images is None and "test images" not in quantization_findings(_runs(), _int8(), _timing())
    (row,) = int8_table([SimpleNamespace(
        config={"dataset": "digits", "model": "conv", "compression": 0.5},
        summary={"stand_in": False, "kept_weights": 50, "total_weights": 100, "fp32_top1": 97.0, "int8_top1": 96.9,
                 "top1_drop": 0.1, "speedup": 3.7, "fp32_dense_bytes": 4096, "fp32_sparse_bytes": 3072,
                 "int8_bytes": 1024, "pruned_weights_zero": True, "test_examples": 360,
                 **timing_of(1.0, 0.1).summary("fp32_inference"), **timing_of(0.27, 0.01).summary("int8_inference")})
    ]).to_dict("records")
    assert row["test images"] == 360  # from the record's test_examples


def test_the_int8_table_takes_each_sides_method_from_its_record():
    def record(**methods):
        summary = {"stand_in": False, "kept_weights": 50, "total_weights": 100, "fp32_top1": 97.0, "int8_top1": 96.9,
                   "top1_drop": 0.1, "speedup": 3.7, "fp32_dense_bytes": 4096, "fp32_sparse_bytes": 3072,
                   "int8_bytes": 1024, "pruned_weights_zero": True, "timing_repeats": 5, "int8_path": "pt2e",
                   **timing_of(1.0, 0.1).summary("fp32_inference"), **timing_of(0.27, 0.01).summary("int8_inference"),
                   **methods}
        return SimpleNamespace(summary=summary, config={"dataset": "digits", "model": "conv", "compression": 0.5})

    (row,) = int8_table([record(int8_method="pt2e", fp32_method="compiled")]).to_dict("records")
    assert (row["int8 method"], row["fp32 method"]) == ("pt2e", "compiled")
    (old,) = int8_table([record(int8_method="fx")]).to_dict("records")  # written before fp32_method: run eagerly
    assert (old["int8 method"], old["fp32 method"]) == ("fx", FP32_METHOD)
    assert math.isnan(old["fp32 compiled inference (ms)"]) and math.isnan(old["speedup over compiled"])
    assert old["fp32 compiled timing"].samples == () and old["stand-in"] is False  # written before it was timed
    assert old["fp32 compiled recorded"] is False and old["fp32 compiled error"] is None  # nor why: not stored
    (failed,) = int8_table([record(int8_method="pt2e", int8_fallback="", fp32_compiled_error="no C++ compiler",
                                   **Timing.of(()).summary(FP32_COMPILED))]).to_dict("records")
    assert (failed["fp32 compiled recorded"], failed["fp32 compiled error"], failed["int8 fallback"]) == (
        True, "no C++ compiler", "")
    compiled = timing_of(0.3, 0.02)
    (new,) = int8_table([record(**compiled.summary(FP32_COMPILED), speedup_over_compiled=0.3 / 0.27)]).to_dict(
        "records")
    assert new["fp32 compiled timing"] == compiled and new["fp32 compiled inference (ms)"] == pytest.approx(300.0)
    assert new["fp32 compiled inference spread (ms)"] == pytest.approx(20.0)
    assert new["speedup over compiled"] == pytest.approx(0.3 / 0.27)


def test_mixed_precision_faster_within_the_noise_everywhere_is_a_lean_not_a_difference():
    lean = timed(_timing().assign(amp_train_s=[0.8, 0.9], amp_train_spread_s=[0.5, 0.5]))  # faster, passes mixed
    key = quantization_key_result(_runs().assign(data="real CIFAR-10"), lean)
    assert "0.800x to 0.900x" in key and " 0 of " not in key  # no "beyond the noise at 0 of 2 compressions"
    text = quantization_findings(_runs().assign(cpu_bf16=[["avx512_bf16"]] * 4), pd.DataFrame(), lean)
    assert "0.800x to 0.900x fp32's" in text  # the lean over every compression, stated as one
    assert "0.800x to 0.900x fp32's" not in quantization_findings(_runs(), pd.DataFrame(), _timing())  # 1.10x, 9.00x
    measured = timed(lean.assign(amp_train_spread_s=[0.001, 0.001], fp32_train_spread_s=[0.001, 0.001]))
    small = quantization_findings(_runs(), pd.DataFrame(), measured)  # beyond the noise, but not by 10%
    assert "0.800x to 0.900x fp32's" in small and "within the noise" not in small.splitlines()[1]


def test_the_quantization_key_result_carries_its_data_and_spreads():
    runs = _runs().assign(data="synthetic stand-in for CIFAR-10")
    key = quantization_key(runs, _timing())
    assert (key.dtype, key.data) == ("bf16", "synthetic stand-in for CIFAR-10")
    assert key.memory.ratios == Span(pytest.approx(1000 / 1109.499023), pytest.approx(1001 / 1100))
    assert key.times == amp_times(_timing())
    assert quantization_key(runs, _timing().iloc[:0]).times is None
    text = quantization_key_result(runs, _timing())
    assert key.data in text and "0.901" not in text and "0.910x" not in text  # a CPU's shared resident set
    on_gpu = quantization_key_result(runs.assign(peak_memory_kind="cuda_max_allocated"), _timing())
    assert "0.901x to 0.910x" in on_gpu  # memory ratios, both compressions
    assert "1.10x to 9.00x" in text and "1 of 2" in text  # time ratios; one beyond the noise
    assert text.count("Mixed precision") == 1  # one clause per quantity: the per-compression detail is in findings
    assert "9.00x" not in quantization_key_result(runs, _timing().iloc[:0])


def _sparse() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two ResNet20 runs on sparse and dense kernels (one 2x faster beyond the noise and at chance, one within
    the noise), and their layers: two switched to a compact kernel at low density."""
    runs = timed(pd.DataFrame([dict(setup="CIFAR-10 / ResNet20", compression=-math.log10(k), kept=k,
                                     speedup=d / s, timing_repeats=5,
                                     dead_units=u, dense_inference_s=d, dense_inference_spread_s=0.1,
                                     sparse_inference_s=s, sparse_inference_spread_s=0.1, top1=t,
                                     majority_class_top1=10.0)
                                for k, d, s, u, t in ((0.1, 2.0, 1.0, 3, 10.0), (0.316, 1.0, 1.05, 0, 60.0))]))
    kernels = (("compact", 0.01), ("compact", 0.02), ("dense", 0.5), ("dense", 0.9))
    layers = pd.DataFrame([dict(setup="CIFAR-10 / ResNet20", kernel=k, density=d) for k, d in kernels])
    return runs, layers


def test_the_sparse_result_counts_real_speed_ups_and_switched_layers():
    runs, layers = _sparse()
    (s,) = sparse_result(runs, layers)
    c = s.count
    assert c.speedup == Span(pytest.approx(1 / 1.05), 2.0)
    assert (c.repeats, c.beyond, c.runs, c.tested, s.dead_units) == (5, 1, 2, 2, 3)
    assert (c.real_speedup, c.real_kept, c.at_chance) == (Span(2.0, 2.0), Span(0.1, 0.1), 1)
    assert s.switched == (("compact", 2),) and s.switched_layers == 2
    assert s.switched_density == Span(0.01, 0.02) and s.dense_density == Span(0.5, 0.9) and s.density_decided
    (none,) = sparse_result(runs, layers.assign(kernel="dense"))
    assert none.switched == () and none.density == Span(0.01, 0.9) and not none.density_decided
    overlap = layers.assign(density=[0.01, 0.6, 0.0, 0.9])  # an empty layer stayed dense
    assert not sparse_result(runs, overlap)[0].density_decided
    (noise,) = sparse_result(runs.iloc[1:], layers)
    assert (noise.count.beyond, noise.count.real_speedup, noise.count.at_chance) == (0, None, 0)
    assert s.dense.ms == Span(1000.0, 2000.0) and s.dense.moved  # the same work, 1 s against 2 s (spreads 0.1 s)
    steady = timed(runs.assign(dense_inference_s=[2.0, 1.95]))
    assert not sparse_result(steady, layers)[0].dense.moved  # within the passes' noise


def test_dense_times_that_moved_between_runs_are_said_to_be_the_machines_not_the_work():
    runs, layers = _sparse()
    text = sparse_findings(runs, layers)
    assert "1,000 to 2,000 ms" in text
    steady = sparse_findings(timed(runs.assign(dense_inference_s=[2.0, 1.95])), layers)
    assert "1,950 to 2,000 ms" not in steady and DENSE_MOVED not in steady


def test_the_dense_time_range_is_over_the_runs_compared_and_its_cause_is_said_once():
    """A dense time marked as noise (†) is left out of the range of dense times, as Tables C and C2 leave it out;
    with two set-ups whose dense times moved, each gives its own range and the shared reason comes once."""
    _, layers = _sparse()
    frame = _at_one_compression((1.0, 0.5), (1.2, 1.0), (1.0, 1.0), (2.0, 1.0))  # 2.0 s: the † run
    (s,) = sparse_result(frame, layers.assign(setup="MNIST / FC"))
    assert s.dense.ms == Span(1000.0, 1200.0) and s.dense.moved  # not 2,000 ms
    other = frame.assign(setup="CIFAR-10 / ResNet20", dense_inference_s=frame["dense_inference_s"] * 2)
    both = pd.concat([frame, timed(other)], ignore_index=True)
    both_layers = pd.concat([layers.assign(setup="MNIST / FC"), layers])
    dense = [r.dense.ms for r in sparse_result(both, both_layers)]
    assert dense == [Span(1000.0, 1200.0), Span(2000.0, 2400.0)]
    text = sparse_findings(both, both_layers)
    assert "1,000 to 1,200 ms" in text and "2,000 to 2,400 ms" in text and "2,000 ms," not in text
    assert text.count(DENSE_MOVED) == 1


def test_the_sparse_words_carry_the_speed_ups_and_densities():
    runs, layers = _sparse()
    for kernels in (layers, layers.assign(kernel="dense")):
        (s,) = sparse_result(runs, kernels)
        c, text = s.count, sparse_findings(runs, kernels)
        assert f"**{ratio_text(c.real_speedup.low)}**" in text and f"{c.beyond} of its {c.runs} runs" in text
        assert f"kept fraction {c.real_kept.low:.3g}" in text and f"{c.repeats} passes" in text
        assert ("That run is" if c.at_chance == c.beyond == 1 else f"{c.at_chance} of those") in text
        assert f"{s.dead_units} dead units" in text
        if s.switched:
            assert f"{s.switched_layers} layer choices" in text and "2 to compact" in text
            assert "0.01 to 0.02" in text and "0.5 to 0.9" in text
        else:
            assert "0.01 to 0.9" in text
    noise = sparse_findings(runs.iloc[1:], layers)  # no run beyond the noise: its ratio is not put in bold
    assert "**" not in noise and ratio_text(1 / 1.05) in noise  # 0.952x


def test_a_run_slower_on_sparse_kernels_beyond_the_noise_is_counted_as_slower():
    runs, layers = _sparse()  # one run 2x faster beyond the noise
    slower = timed(runs.iloc[:1].assign(dense_inference_s=1.0, sparse_inference_s=2.0, speedup=0.5))
    (s,) = sparse_result(pd.concat([runs, slower], ignore_index=True), layers)
    assert (s.count.beyond, s.count.slower) == (2, 1)
    assert sparse_result(runs, layers)[0].count.slower == 0


def test_the_sparse_speed_up_of_the_runs_that_still_work_is_given_apart():
    runs, layers = _sparse()
    faster = timed(runs.iloc[:1].assign(kept=0.2, dense_inference_s=1.5, speedup=1.5, top1=80.0))  # beyond, working
    working = pd.concat([runs, faster], ignore_index=True)
    c = sparse_result(working, layers)[0].count
    assert (c.beyond, c.at_chance, c.real_speedup, c.working_speedup) == (2, 1, Span(1.5, 2.0), Span(1.5, 1.5))
    text = sparse_findings(working, layers)
    assert "**1.50x to 2.00x**" in text and "**1.50x**" in text  # all runs beyond the noise, then those that work
    assert sparse_result(runs, layers)[0].count.working_speedup is None  # the one run beyond the noise is at chance
    assert sparse_findings(runs, layers).count("**") == 2  # only the speed-up of all runs beyond the noise


def test_figure_6_draws_the_interleaved_times_not_the_runs_epoch_totals():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prunelab.workbook.figures import plot_amp

    fig = plot_amp(_runs(), _timing())
    time, top1 = fig.axes[:2]  # no memory panel on the CPU: the resident set of the process that trained the run
    assert not any("memory" in ax.get_ylabel().lower() for ax in fig.axes)
    on_cuda = plot_amp(_runs().assign(peak_memory_kind="cuda_max_allocated"), _timing())
    assert "memory" in on_cuda.axes[0].get_ylabel().lower() and len(on_cuda.axes) == 3
    plt.close(on_cuda)
    heights = sorted(round(bar.get_height(), 6) for bar in time.patches)
    assert heights == [1.0, 1.0, 1.1, 9.0]  # the medians of the passes, not train_s (84, 90, 20, 200)
    whiskers = sorted(round(float(seg[1][1] - seg[0][1]), 6) for c in time.collections for seg in c.get_segments())
    assert whiskers == [0.05, 0.2, 0.3, 0.5]  # whole whisker = the range: half of it either side
    assert sorted(round(b.get_height(), 2) for b in top1.patches) == [29.25, 29.3, 30.0, 31.0]
    assert steps_text(1, 32) in time.get_ylabel()  # Table J's words for the timed pass
    plt.close(fig)
    fused = plot_amp(_runs().assign(train_step="fused (2 runs)"), _timing())  # fp32 labelled with its step
    bars = fused.axes[0].patches
    assert len({b.get_hatch() for b in bars}) == 2  # fp32 and mixed precision in two looks, not one
    assert sorted(round(b.get_height(), 6) for b in bars) == heights  # fp32's bars are fp32's times
    plt.close(fused)


def test_a_shown_figure_is_an_img_whose_alternative_text_is_read_off_the_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prunelab.workbook.figure_output import show_figure
    from prunelab.workbook.figures import plot_amp

    fig = plot_amp(_runs(), _timing())
    shown = show_figure(fig)
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend will not show it twice
    alt = shown.alt
    title = " ".join(fig._suptitle.get_text().split())
    assert title and alt.startswith(title)
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) == 2 and int(re.search(r"(\d+) panels", alt).group(1)) == len(panels)
    for ax in panels:  # each panel's title and axis labels, in the order of the panels
        labels = [" ".join(text.split()) for text in (ax.get_title(), ax.get_ylabel(), ax.get_xlabel()) if text]
        assert ax.get_ylabel() and all(label in alt for label in labels)
    order = [alt.index(" ".join(ax.get_ylabel().split())) for ax in panels]
    assert order == sorted(order)
    series = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert sorted(series) == ["AMP bf16", "fp32"] and all(name in alt.split(". ")[-1] for name in series)
    page = shown._repr_html_()
    assert page.startswith(f'<img alt="{html.escape(title)}') and "data:image/png;base64,iVBOR" in page
    assert repr(shown).startswith(f"[figure: {title}")
    assert show_figure(plt.figure(), alt='a "quoted" figure')._repr_html_().startswith(
        '<img alt="a &quot;quoted&quot; figure"')


def test_figures_and_table_j_of_stand_in_runs_say_so_in_their_titles():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prunelab.workbook.figures import plot_amp, plot_density_and_flops
    from prunelab.workbook.measurement_tables import amp_training_caption

    layers = pd.DataFrame([dict(layer=f"conv{i}", label="SNIP", density=0.3, flops=1e6, kept_flops=3e5,
                                setup="CIFAR-10 / ResNet20", data_source="real") for i in range(3)])
    for source, flagged in (("real", False), ("synthetic", True)):
        runs = _runs().assign(data_source=source)
        figs = [plot_amp(runs, _timing()), plot_density_and_flops(layers.assign(data_source=source), 0.5)]
        assert [("stand-in" in fig._suptitle.get_text()) for fig in figs] == [flagged, flagged]
        assert ("stand-in" in amp_training_caption(runs, _timing(), "rand")) == flagged
        assert "median of 5 passes" in amp_training_caption(runs, _timing(), "rand")  # n, from the timing
        for fig in figs:
            plt.close(fig)


def test_table_j_names_the_runs_batch_where_the_timed_step_took_another():
    from prunelab.workbook.measurement_tables import amp_training_caption

    assert "batches of 256" in amp_training_caption(_runs().assign(train_batch_size=256), _timing(), "rand")
    assert "batches of" not in amp_training_caption(_runs().assign(train_batch_size=32), _timing(), "rand")
    assert "batches of" not in amp_training_caption(_runs(), _timing(), "rand")  # a table without the column


def test_sparse_words_when_every_layer_switched_and_every_run_differs():
    runs, layers = _sparse()
    runs = runs.iloc[:1]  # the one run beyond the noise
    every = layers.assign(kernel="compact")
    (s,) = sparse_result(runs, every)
    assert not s.density_decided and s.count.beyond == s.count.runs == 1
    text = sparse_findings(runs, every)
    assert "nan" not in text and "overlap" not in text and "the rest" not in text


def test_int8_speed_ups_are_in_bold_only_where_every_run_differs_beyond_the_noise():
    within = {"int8 inference (ms)": 1100.0, "speedup": 1.0086, "fp32 compiled inference (ms)": 1100.0,
              "fp32 compiled inference spread (ms)": 20.0, "speedup over compiled": 1.0}  # both sides within noise
    mixed = pd.concat([_int8(), _int8(**within).rename(index={0.25: 0.5}, level="compression")])
    text = quantization_findings(_runs(), mixed, _timing())
    assert text.count("1 of 2 runs beyond the noise") == 2
    assert "**" not in text.split("int8 post-training")[1].split("On disk")[0]
    (digits,) = quantization_result(_runs(), mixed, _timing()).int8.setups
    assert digits.compiled.speedup == Span(1.0, pytest.approx(35.0 / 29.3)) and digits.compiled.beyond == 1


def test_a_stand_in_run_at_chance_is_no_finding_on_its_accuracy():
    runs, layers = _sparse()
    (real,) = sparse_result(runs.assign(stand_in=False), layers)
    (fake,) = sparse_result(runs.assign(stand_in=True), layers)
    assert (real.count.stand_in, fake.count.stand_in, fake.count.at_chance) == (False, True, 1)
    said = sparse_findings(runs.assign(stand_in=False), layers)
    flagged = sparse_findings(runs.assign(stand_in=True), layers)
    assert said != flagged and "stand-in" in flagged and "stand-in" not in said


def test_table_e_caption_gives_the_step_and_its_convolutions_to_the_same_places(tmp_path):
    import torch

    from prunelab.core.trace import analyze_trace, capture_inference_trace
    from prunelab.workbook.measurement_tables import conv_layer_caption

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3)).eval()
    analysis = analyze_trace(capture_inference_trace(model, torch.randn(4, 3, 16, 16), tmp_path / "t.json", warmup=1))
    caption = conv_layer_caption(analysis)
    shown = re.findall(r"([\d.,]+) ms", caption)  # the convolutions, the busy time, the span
    times = [float(t.replace(",", "")) for t in shown]
    assert len(times) == 3 and len({len(t.partition(".")[2]) for t in shown}) == 1
    assert times[0] <= times[1] <= times[2] and f" {len(analysis.conv_layers())} layers" in caption


def test_the_discussion_gives_the_precisions_ratio_across_compressions():
    text = quantization_findings(_runs(), pd.DataFrame(), _timing())  # ratios 1.10x and 9.00x at two compressions
    assert [line for line in text.splitlines()[1:] if "1.10x to 9.00x" in line]
    one = _timing().iloc[:1]
    assert not [line for line in quantization_findings(_runs(), pd.DataFrame(), one).splitlines()
                if "Across compressions the ratio" in line]  # one compression: no ratio across them


def test_the_task_1_key_result_says_whether_pruning_bought_speed_on_real_data():
    from prunelab.workbook.key_results import speed_key_words

    runs, _ = _sparse()  # one run 2x faster beyond the noise but at chance, one within the noise
    real = runs.assign(setup="MNIST / FC", stand_in=False)
    (none,) = speed_key_words(real)
    assert "2.00x" not in none  # the only run beyond the noise no longer works
    working = pd.concat([real, timed(real.iloc[:1].assign(top1=80.0, speedup=1.5, dense_inference_s=1.5))],
                        ignore_index=True)
    (some,) = speed_key_words(working)
    assert "1 of its 3" in some and "1.50x" in some
    assert speed_key_words(real.assign(stand_in=True)) == []  # a stand-in: nothing to quote
    (few,) = speed_key_words(real.assign(timing_repeats=3))  # 3 against 3 passes: the test can never pass
    assert few != none and "3 passes" in few


def test_the_sparse_count_says_how_many_runs_would_pass_the_rank_test_by_chance():
    runs, layers = _sparse()
    many = pd.concat([runs] * 20, ignore_index=True)  # 40 runs, each tested at p < 0.05: 2 would pass by chance
    assert "up to about 2 would pass" in sparse_findings(many, layers)
    assert "by chance" not in sparse_findings(runs, layers)  # 2 runs: not even one expected


def test_findings_on_too_few_passes_claim_nothing_and_say_why():
    three = timed(_timing().assign(fp32_train_spread_s=0.001, amp_train_spread_s=0.001))
    three = three.assign(**{c: [v[1:4] for v in three[c]] for c in ("fp32_train_samples_s", "amp_train_samples_s")})
    times = amp_times(three)  # 9x apart at 0.5, but three passes each can never reach p < 0.05
    assert not any(t.judged or t.differ for t in times.at) and times.beyond == 0
    few = _int8(**{"fp32 timing": Timing.of([1.10, 1.11, 1.12]), "int8 timing": Timing.of([0.02, 0.03, 0.04])})
    assert quantization_result(_runs(), few, _timing()).int8.setups[0].eager.beyond is None
    runs, layers = _sparse()
    (s,) = sparse_result(runs.assign(timing_repeats=3), layers)
    assert "**" not in sparse_findings(runs.assign(timing_repeats=3), layers) and s.count.repeats == 3


def _headline_runs(text: str, setup: str) -> int:
    """The runs a set-up's first findings line counts over: the N of "in 1 of the N runs compared"."""
    line = next(line for line in text.splitlines() if line.startswith(f"- {setup}:"))
    return int(re.search(r"(?:\d+|none) of (?:the|its) (\d+) runs?", line).group(1))


def test_a_run_whose_sparse_model_is_the_dense_one_counts_neither_faster_nor_slower():
    """No layer on sparse kernels and no unit removed: the two models run the same computation, so a ratio the rank
    test tells apart (here 2x, in a run that still predicts) is noise, not a speed-up; it is counted apart."""
    from prunelab.workbook.key_results import speed_key_words
    from prunelab.workbook.sparse_tables import inference_time_table, kernels_differ, pair_rule_note

    runs, layers = _sparse()
    runs = runs.assign(switched=[1, 1])
    same = timed(runs.iloc[:1].assign(top1=80.0, switched=0, dead_units=0, compression=0.5, kept=0.316))
    frame = pd.concat([runs, same], ignore_index=True)
    assert list(kernels_differ(frame)) == [True, False, False]
    c = sparse_result(frame, layers)[0].count
    assert (c.beyond, c.runs, c.tested, c.slower, c.gains) == (1, 3, 2, 0, 0)  # the 2x run at chance is apart
    assert (c.left_out.runs, c.left_out.same_runs, c.left_out.same) == (1, 1, Span(2.0, 2.0))
    text = sparse_findings(frame, layers)
    assert "(2.00x)" in text and _headline_runs(text, "CIFAR-10 / ResNet20") == 2  # the runs compared, not all 3
    (key,) = speed_key_words(frame.assign(setup="MNIST / FC", stand_in=False))
    assert "2.00x" not in key and "1 run " in key and "1 runs" not in key  # the other run beyond the noise: at chance
    c2 = inference_time_table(frame.assign(label=["Rand", "Mag", "SNIP"], data_source="bundled", data="real"), "sparse")
    assert "<b>" in c2["Rand"].dropna().iloc[0] and "<b>" not in c2["SNIP"].dropna().iloc[0]  # 2x, but the same model
    assert pair_rule_note(frame).startswith("In 1 of 3 runs")


def _at_one_compression(*times: tuple[float, float]) -> pd.DataFrame:
    """MNIST / FC runs at one compression, a pruner each, from (dense, sparse) times in s with 2% spreads; every
    run still predicts and has a layer on sparse kernels."""
    labels = ("Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)")
    return timed(pd.DataFrame([dict(setup="MNIST / FC", data="real MNIST", data_source="bundled", compression=0.5,
                                    kept=0.316, label=label, speedup=d / s, timing_repeats=5, dead_units=0, switched=1,
                                    dense_inference_s=d, dense_inference_spread_s=0.02, sparse_inference_s=s,
                                    sparse_inference_spread_s=0.02, top1=90.0, majority_class_top1=10.0, stand_in=False)
                               for label, (d, s) in zip(labels, times)]))


def test_a_dense_time_far_above_its_compressions_others_is_marked_noisy_and_not_counted():
    from prunelab.workbook.sparse_tables import inference_time_table, kernels_differ, noisy_dense, pair_rule_note

    _, layers = _sparse()
    four = _at_one_compression((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.4, 1.0))
    assert list(noisy_dense(four)) == [False, False, False, True]  # 1.4 s against a median of 1 s
    assert not kernels_differ(four).iloc[3]  # its 1.4x is a slow dense timing, not a gain
    c = sparse_result(four, layers.assign(setup="MNIST / FC"))[0].count
    assert (c.left_out.noisy_runs, c.left_out.noisy, c.beyond, c.tested) == (1, Span(1.4, 1.4), 0, 3)
    table = inference_time_table(four, "dense")
    assert table.iloc[0]["GraSP"].endswith("†") and not table.iloc[0]["SNIP"].endswith("†")
    assert "†" not in inference_time_table(four, "sparse").to_string()
    assert "(1 run)" in pair_rule_note(four)
    assert "(1.40x)" in sparse_findings(four, layers.assign(setup="MNIST / FC"))
    assert not noisy_dense(four.iloc[2:]).any()  # of two runs at a compression, neither is judged the odd one


def test_table_c_says_how_many_marked_runs_are_among_the_same_model_ones_so_its_count_meets_the_key_results():
    """A dense time marked as noise can belong to a run whose sparse model is the dense one: the findings and the key
    result count such a run once, with the same-model runs, and Table C's caption says how many of its marked runs
    those are, so that its count of marked runs less those is the key result's "others"."""
    from prunelab.workbook.key_results import speed_key_words
    from prunelab.workbook.sparse_tables import noisy_dense, pair_rule_note, same_model

    _, layers = _sparse()
    six = _at_one_compression((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.5, 1.0), (1.5, 1.0))
    six = six.assign(switched=[0, 0, 1, 1, 0, 1], dead_units=0)  # the same model in runs 0, 1 and 4
    assert list(noisy_dense(six)) == [False] * 4 + [True] * 2 and (same_model(six) & noisy_dense(six)).sum() == 1
    out = sparse_result(six, layers.assign(setup="MNIST / FC"))[0].count.left_out
    assert (out.same_runs, out.noisy_runs, out.runs) == (3, 1, 4)
    marked = re.search(r"at that compression \(([^)]*)\)", pair_rule_note(six)).group(1)
    runs, among, same = (int(n) for n in re.findall(r"\d+", marked))
    assert (runs, same) == (2, out.same_runs) and runs - among == out.noisy_runs
    (key,) = speed_key_words(six)
    assert f"{out.runs} runs left out" in key


def test_the_drift_of_a_row_of_dense_times_is_measured_where_three_runs_share_a_compression():
    """The dense models of one compression do the same arithmetic: how far their times lie from the row's median is
    the machine's drift between timings, which Table C's caption quotes."""
    from prunelab.workbook.sparse_tables import dense_drift, pair_rule_note

    four = _at_one_compression((1.0, 1.0), (1.1, 1.0), (0.95, 1.0), (1.4, 1.0))
    assert dense_drift(four) == pytest.approx(0.35 / 1.05)  # 1.4 s against a median of 1.05 s
    assert "33%" in pair_rule_note(four)
    assert dense_drift(four.iloc[2:]) is None  # two runs at a compression: no row to judge
    alike = four.assign(dense_inference_s=1.0)
    assert dense_drift(alike) == 0 and "%" not in pair_rule_note(alike)  # no drift to quote
    other = four.assign(compression=1.0, dense_inference_s=[2.0, 2.0, 2.1, 2.0])
    assert dense_drift(pd.concat([four.iloc[:3], other], ignore_index=True)) == pytest.approx(0.1 / 1.0)


def test_each_part_of_table_c_counts_only_its_own_set_ups_runs():
    from prunelab.workbook.sparse_tables import inference_time_parts

    mnist = _at_one_compression((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.4, 1.0))  # one noisy dense time
    cifar = _at_one_compression((1.0, 1.0), (1.0, 1.0)).assign(setup="CIFAR-10 / ResNet20", data_source="synthetic",
                                                               switched=0)  # both the same model as dense
    parts = inference_time_parts(pd.concat([cifar, mnist], ignore_index=True), "dense")
    assert [name.split(" (")[0] for name, _, _ in parts] == ["CIFAR-10 / ResNet20", "MNIST / FC"]
    (_, c_cells, c_note), (_, m_cells, m_note) = parts
    assert c_note.startswith(f"In {share_of(2, 2, 'run')} ") and "†" not in c_note and len(c_cells) == 1
    assert "(1 run)" in m_note and "In " not in m_note and m_cells.iloc[0]["GraSP"].endswith("†")


def test_a_dense_time_far_below_its_compressions_others_is_noisy_too():
    """A dense time too low makes sparse kernels look slower, as one too high makes them look faster: either way
    off the others' median by more than the rule, the run counts neither way."""
    from prunelab.workbook.sparse_tables import NOISY_DENSE, inference_time_table, kernels_differ, noisy_dense

    _, layers = _sparse()
    low = _at_one_compression((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (0.6, 1.0))
    assert list(noisy_dense(low)) == [False, False, False, True]  # 0.6 s against a median of 1 s
    assert not kernels_differ(low).iloc[3]  # sparse kernels 1.67x slower only by a fast dense timing
    c = sparse_result(low, layers.assign(setup="MNIST / FC"))[0].count
    assert (c.left_out.noisy_runs, c.left_out.noisy, c.beyond, c.slower, c.tested) == (1, Span(0.6, 0.6), 0, 0, 3)
    assert inference_time_table(low, "dense").iloc[0]["GraSP"].endswith("†")
    within = [(1.0, 1.0)] * 3
    for dense in (1 - NOISY_DENSE + 0.05, 1 + NOISY_DENSE - 0.05):  # inside the rule either way: compared
        assert not noisy_dense(_at_one_compression(*within, (dense, 1.0))).any()


def test_the_sparse_findings_count_over_the_runs_compared_and_say_the_left_out_once():
    """Of four runs one has a dense time far off the others': the headline counts over the other three, in the
    finding of a difference and in that of none, and the left-out run is counted once, with its ratio."""
    _, layers = _sparse()
    layers = layers.assign(setup="MNIST / FC")
    faster = _at_one_compression((1.0, 0.5), (1.0, 1.0), (1.0, 1.0), (1.4, 1.0))
    none = _at_one_compression((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.4, 1.0))
    for frame, beyond in ((faster, 1), (none, 0)):
        c = sparse_result(frame, layers)[0].count
        assert (c.runs, c.tested, c.beyond, c.gains) == (4, 3, beyond, beyond)
        text = sparse_findings(frame, layers)
        assert _headline_runs(text, "MNIST / FC") == 3
        assert text.count(f"of the {c.runs} runs") == 1 and text.count("(1.40x)") == 1
    headline = sparse_findings(none, layers).splitlines()[0]
    assert "1.00x" in headline and "1.40x" not in headline  # the runs compared, as fast both ways


def test_the_key_result_and_the_findings_count_the_same_runs():
    """The key result's speed sentence counts the runs the findings count (:func:`sparse_counts`): of the runs
    compared, those that gain, and how many are left out, the same-model run and the noisy dense time alike."""
    from prunelab.workbook.key_results import speed_key_words
    from prunelab.workbook.sparse_speed import sparse_counts
    from prunelab.workbook.sparse_tables import NOISY_MARK

    _, layers = _sparse()
    frame = _at_one_compression((1.0, 0.5), (1.0, 1.0), (1.0, 1.0), (1.4, 1.0), (1.0, 0.5))
    frame.loc[4, ["switched", "dead_units"]] = 0  # 2x, but the sparse model is the dense one
    (c,) = sparse_counts(frame)
    assert (c.runs, c.tested, c.gains, c.left_out.same_runs, c.left_out.noisy_runs) == (5, 3, 1, 1, 1)
    assert sparse_result(frame, layers.assign(setup="MNIST / FC"))[0].count == c
    (key,) = speed_key_words(frame)
    assert f"{c.gains} of its {c.tested} runs" in key and "2.00x" in key and f"{c.left_out.runs} runs left out" in key
    assert "1 run whose" in key and "1 other whose" in key and NOISY_MARK in key  # a same-model run, a noisy one
    assert _headline_runs(sparse_findings(frame, layers.assign(setup="MNIST / FC")), "MNIST / FC") == c.tested


def test_the_sparse_findings_and_key_result_quote_speed_ups_as_the_reports_ratios_are_printed():
    """No table prints a run's speed-up on sparse kernels (Tables C and C2 give the times), so the findings and the key
    result quote it in the one style of the report's ratios (:func:`ratio_text`, 3 significant digits)."""
    from prunelab.workbook.key_results import speed_key_words

    _, layers = _sparse()
    frame = _at_one_compression((1.0, 1.0), (1.0, 1.0), (1.012, 0.1), (1.0, 1.11))  # 10.12x and 0.9009x, both told
    c = sparse_result(frame, layers.assign(setup="MNIST / FC"))[0].count
    assert (c.beyond, c.slower, c.gains) == (2, 1, 1) and c.real_speedup == Span(pytest.approx(1 / 1.11), 10.12)
    text = sparse_findings(frame, layers.assign(setup="MNIST / FC"))
    assert f"**{ratio_text(1 / 1.11)} to {ratio_text(10.12)}**" in text  # 0.901x to 10.1x
    assert "10.12x" not in text and "0.90x" not in text
    (key,) = speed_key_words(frame)
    assert f"{ratio_text(10.12)} as fast" in key and "10.12x" not in key


def test_the_dense_times_per_kept_fraction_quoted_are_figure_1bs_line_over_every_run():
    """Three runs per compression, some the dense model itself (left out of the comparison). The runs compared fall
    steadily (432, 420 and 388 ms), but two of those medians are one run each and every dense model does the same
    work: the findings quote Figure 1b's dense line, the median of all three runs at each kept fraction (390, 410 and
    380 ms), as the figure draws it, and not the medians of the runs compared."""
    import matplotlib.pyplot as plt

    from prunelab.workbook.sparse_figures import plot_sparse_inference

    times = {0.25: ((0.432, 1), (0.38, 0), (0.39, 0)), 0.5: ((0.42, 1), (0.40, 0), (0.41, 0)),
             1.0: ((0.396, 1), (0.37, 1), (0.38, 0))}  # (dense s, 1 where a layer went on sparse kernels)
    frame = timed(pd.DataFrame([dict(setup="CIFAR-10 / ResNet20", data="synthetic", compression=c, kept=10 ** -c,
                                     flop_density=10 ** -c, label=label, speedup=d / (0.9 * d), timing_repeats=5,
                                     dead_units=5 * on, switched=on, dense_inference_s=d,
                                     dense_inference_spread_s=0.02 * d, sparse_inference_s=0.9 * d,
                                     sparse_inference_spread_s=0.02 * d, top1=90.0, majority_class_top1=10.0,
                                     stand_in=True)
                                for c, runs in times.items() for label, (d, on) in zip(("Rand", "Mag", "SNIP"), runs)]))
    _, layers = _sparse()
    (s,) = sparse_result(frame, layers)
    assert s.dense.moved
    assert [k for k, _ in s.dense.line] == pytest.approx([10 ** -c for c in times])
    assert [ms for _, ms in s.dense.line] == pytest.approx([390.0, 410.0, 380.0])
    fig = plot_sparse_inference(frame)
    dense = next(line for line in fig.axes[0].lines if line.get_label() == "dense kernels")
    drawn = sorted(zip(dense.get_xdata(), dense.get_ydata()))
    assert [v for point in drawn for v in point] == pytest.approx([v for point in sorted(s.dense.line) for v in point])
    plt.close(fig)
    text = sparse_findings(frame, layers)
    assert "390, 410 and 380 ms" in text and "432, 420" not in text  # the figure's numbers, not the compared runs'
    assert "3 runs" not in text  # no count per point beside "the 4 runs compared", as if the same runs
    assert "differ" in _dense_line(s.dense) and "outside" not in _dense_line(s.dense)  # 380 to 410: in 370 to 432
    single = frame[frame["compression"] == 1.0]  # one kept fraction: no line to quote
    (one,) = sparse_result(single, layers)
    assert len(one.dense.line) == 1 and "380 ms" not in sparse_findings(single, layers)


def test_the_dense_line_says_its_points_differ_or_leave_the_range_only_where_they_do():
    """Figure 1b's dense line is over every run, those marked † included, so a point may fall outside the range of
    the runs compared: said where one does (450 ms against 370 to 432 ms), not where none does; and its points are
    said to differ only where the quoted values do (399.6 and 400.4 ms both read 400 ms)."""
    ms = Span(370.0, 432.0)
    out = _dense_line(DenseTimes(ms=ms, moved=True, line=((0.5, 450.0), (0.25, 400.0))))
    assert "450 and 400 ms at 0.5 and 0.25 kept" in out and "outside" in out and "differ" in out
    inside = _dense_line(DenseTimes(ms=ms, moved=True, line=((0.5, 399.6), (0.25, 400.4))))
    assert "400 and 400 ms" in inside and "outside" not in inside and "differ" not in inside
    assert _dense_line(DenseTimes(ms=ms, moved=True, line=((0.5, 400.0),))) == ""


def test_the_findings_say_when_the_traced_step_ran_longer_than_every_untraced_one():
    designs = _designs()  # folded steps untraced: 10.0 ms ± 0.2
    slowest = max(design_speed(_summary()).folded.samples)
    traced = trace_findings(_summary(step_span_ms=25.0), designs)  # the profiler's recording: 25 ms traced
    assert f"{len(design_speed(_summary()).folded.samples)} untraced steps" in traced
    assert f"({significant(1e3 * slowest)} ms)" in traced
    assert "untraced" not in trace_findings(_summary(), designs)  # 9.92 ms traced: within the untraced steps
    assert "untraced" not in trace_findings(_summary(step_span_ms=25.0, timed=False), designs)  # none to compare


def test_a_traced_step_outside_its_designs_untraced_steps_says_the_trace_ran_under_another_load():
    """The folded design's traced step (5 ms) is faster than every one of its untraced steps (9.8 to 10.2 ms): the
    profiler only adds time, so the trace ran under a lighter load than Table G's steps. The findings say so, with
    the bound it crossed, say that the shares come from single steps of differing load, and read the gap between
    the traced steps against Table G's medians, not as "extra work or the step merely varied"."""
    designs = _designs()  # original traced 13.0 ms span, 8.0 ms busy, 0.8 ms of mask multiplies
    lighter = _summary(step_span_ms=5.0, step_busy_ms=4.5)
    result = trace_result(lighter, designs)
    assert result.load_differs
    assert [(step.design, step.side) for step in result.traced_steps()] == [("original", 0), ("folded", -1)]
    text = trace_findings(lighter, designs)
    first, _, gap, steps = [line for line in text.splitlines() if line.startswith("- ")]
    fastest = min(result.speed.folded.samples)
    assert f"({significant(1e3 * fastest)} ms)" in first  # the fastest untraced step, the bound it fell below
    assert f"{result.summary.conv_share:.1%}" in first.split("**")[-1] and f"{result.mask_share:.1%}" in first
    assert "other 2.70 ms" not in gap  # 3.5 ms gap less the multiplies' 0.8: not offered as the design's extra work
    assert ratio_text(result.speed.against_folded) in gap and ratio_text(8.0 / 4.5) in gap  # Table G's, the traces'
    assert "merely varied" not in text
    in_range = trace_findings(_summary(step_busy_ms=5.0), designs)  # the same gap, traced among the untimed steps
    assert not trace_result(_summary(step_busy_ms=5.0), designs).load_differs and "other 2.20 ms" in in_range
    # the key result carries the differing load too, only where it differs
    key, plain = (trace_key_result(summary, designs, "real CIFAR-10") for summary in (lighter, _summary()))
    assert "load" in key and "load" not in plain


def test_a_traced_steps_span_is_set_against_its_untraced_steps_only_where_it_compares():
    designs = _designs()
    slower = trace_result(_summary(original=(20.0, 0.5)), designs)  # the original's 13 ms traced: below 19.75 ms
    assert [step.side for step in slower.traced_steps()] == [-1, 0] and slower.load_differs
    above = trace_result(_summary(step_span_ms=25.0), designs)  # the profiler's cost, or a busier machine
    assert [step.side for step in above.traced_steps()] == [0, 1] and above.load_differs
    # on a GPU the span is the kernels', without the host's time before the first: below every step means nothing
    gpu = trace_result(_summary(device="cuda", step_span_ms=5.0), designs)
    assert not gpu.load_differs and "untraced" not in trace_findings(_summary(device="cuda", step_span_ms=5.0),
                                                                     designs)
    assert trace_result(_summary(step_span_ms=25.0, device="cuda"), designs).load_differs
    assert trace_result(_summary(timed=False, step_span_ms=5.0), designs).traced_steps() == ()  # nothing to compare


def test_the_range_beside_the_runs_beyond_the_noise_is_theirs_and_the_rest_is_said_apart():
    within = {"int8 inference (ms)": 1100.0, "speedup": 1.0086}  # passes among fp32's: within the noise
    mixed = pd.concat([_int8(), _int8(**within).rename(index={0.25: 0.5}, level="compression")])
    (digits,) = quantization_result(_runs(), mixed, _timing()).int8.setups
    assert (digits.eager.beyond, digits.eager.runs) == (1, 2)
    assert digits.eager.apart == Span(37.867, 37.867) and digits.eager.rest == Span(1.0086, 1.0086)
    text = quantization_findings(_runs(), mixed, _timing())
    assert "37.9x as fast, 1 of 2 runs beyond the noise" in text  # not "1.01x to 37.9x"
    assert "1.01x to 37.9x" not in text and "1.01x" in text  # the run within the noise, said apart
    every = quantization_result(_runs(), _int8(), _timing()).int8.setups[0].eager
    assert every.apart == every.speedup and every.rest is None


def test_a_run_within_the_noise_with_a_ratio_as_large_as_those_beyond_it_says_which_passes_kept_it_so():
    """Two runs told apart at 1.13x, and one at 1.16x that the rank test does not tell apart: the words say, from its
    passes, how many of int8's took longer than eager fp32's fastest and how long the slowest took (not its median
    and half range, "5.17 ± 1.8 ms"), so a larger ratio within the noise does not read as an error; one pass far off
    the rest is named as one, against every fp32 pass; a run within the noise at a smaller ratio needs no reason
    beyond the test's."""
    def run(compression: float, int8_ms: float, int8_spread_ms: float, **kw) -> pd.DataFrame:
        return _int8(**{"fp32 inference (ms)": 6.0, "fp32 inference spread (ms)": 0.4, "int8 inference (ms)": int8_ms,
                        "int8 inference spread (ms)": int8_spread_ms, "speedup": 6.0 / int8_ms, **kw}).rename(
            index={0.25: compression}, level="compression")

    told = [run(0.25, 5.31, 0.2), run(0.5, 5.31, 0.2)]
    wide = pd.concat([*told, run(1.0, 6.0 / 1.16, 3.6)])  # int8 passes 3.37 to 6.97 ms, fp32's 5.8 to 6.2
    (digits,) = quantization_result(_runs(), wide, _timing()).int8.setups
    assert (digits.eager.beyond, digits.eager.runs) == (2, 3)
    ((compression, ratio, int8, fp32),) = digits.eager.wide
    assert compression == 1.0 and ratio == pytest.approx(1.16)
    over = [p for p in int8.samples if p > min(fp32.samples)]
    assert len(over) == 2 and max(over) == max(int8.samples)
    for text in (quantization_findings(_runs(), wide, _timing()),
                 quantization_key_result(_runs().assign(data="real digits"), _timing(), wide)):
        assert f"{significant(1e3 * max(int8.samples))} ms" in text  # the slowest int8 pass, 6.97 ms
        assert f"({significant(1e3 * min(fp32.samples))} ms)" in text  # eager fp32's fastest, 5.80 ms
        assert time_cell(int8.median * 1e3, int8.spread * 1e3, "ms") not in text  # not "5.17 ± 1.8 ms"
    one_off = Timing.of([2.38e-3, 2.66e-3, 2.66e-3, 3.52e-3, 31.5e-3])  # one pass far off the rest
    twice = [run(0.25, 3.0, 0.2), run(0.5, 3.0, 0.2)]  # 2.00x, told apart
    odd = pd.concat([*twice, run(1.0, 2.66, 29.1, **{"int8 timing": one_off, "speedup": 6.0 / 2.66})])
    (digits,) = quantization_result(_runs(), odd, _timing()).int8.setups
    assert [w[0] for w in digits.eager.wide] == [1.0]
    text = quantization_findings(_runs(), odd, _timing())
    assert "31.5 ms" in text and "(5.80 to 6.20 ms)" in text  # one int8 pass longer than every fp32 pass
    smaller = pd.concat([*told, run(1.0, 6.0 / 1.02, 3.6)])  # 1.02x: within the noise, and less than those told
    (digits,) = quantization_result(_runs(), smaller, _timing()).int8.setups
    assert digits.eager.wide == () and "(5.80 ms)" not in quantization_findings(_runs(), smaller, _timing())


def test_what_the_eager_ratio_compares_is_said_once_per_paragraph():
    two = pd.concat([_int8(), _int8().rename(index={"digits / Conv": "MNIST / FC"}, level="setup")])
    setups = quantization_result(_runs(), two, _timing()).int8.setups
    assert len(setups) == 2 and setups[0].sides == setups[1].sides
    paragraph = next(line for line in quantization_findings(_runs(), two, _timing()).splitlines()
                     if "int8 post-training" in line)
    assert paragraph.count(setups[0].sides) == 1
    other = pd.concat([_int8(), _int8(**_not_compiled()).rename(index={"digits / Conv": "MNIST / FC"},
                                                                level="setup")])
    sides = [s.sides for s in quantization_result(_runs(), other, _timing()).int8.setups]
    paragraph = next(line for line in quantization_findings(_runs(), other, _timing()).splitlines()
                     if "int8 post-training" in line)
    assert sides[0] != sides[1] and all(paragraph.count(s) == 1 for s in sides)  # each comparison, once


def test_the_discussion_quotes_each_precisions_ratio_as_table_k_prints_it():
    timing = timed(_timing().assign(amp_train_s=[10.02, 10.14], fp32_train_s=[1.0, 1.0],
                                    amp_train_spread_s=[0.01, 0.01], fp32_train_spread_s=[0.01, 0.01]))
    cells = list(amp_relative_table(_runs(), timing)[TIME_RATIO])
    assert cells == ["10.0x", "10.1x"]  # three significant digits
    text = quantization_findings(_runs(), pd.DataFrame(), timing)
    assert all(cell in text for cell in cells) and "10.02" not in text and "10.14" not in text
    key = quantization_key_result(_runs().assign(data="real CIFAR-10"), timing)
    assert cells[-1] in key and "10.14" not in key  # the front page's range, too


def _shown(style) -> tuple[str, str]:
    """A captioned table's caption and its HTML after the caption (the headings and cells)."""
    html = style.to_html()
    caption = re.search(r"<caption>(.*?)</caption>", html, re.S).group(1)
    return caption, html.split("</caption>", 1)[1]


def _says(caption: str, heading: str, value: str) -> bool:
    """Whether ``caption`` names ``heading`` once and gives ``value`` after it."""
    return caption.count(heading) == 1 and value in caption[caption.index(heading) + len(heading):]


def test_tables_l_and_l2_say_a_value_every_row_shares_once_in_the_caption():
    int8 = pd.concat([_int8(), _int8(compression=0.5)])  # both on PT2E, zeros kept, int8 faster, 5 passes
    caption, body = _shown(captioned(int8_comparison_table(int8), "Table L."))
    assert _says(caption, "int8 path", "PT2E") and _says(caption, "pruned weights zero in int8", "yes"), caption
    assert "PT2E" not in body and ">yes<" not in body and "kept weights (fraction)" in body
    caption, body = _shown(captioned(int8_timing_table(int8), "Table L2."))
    assert _says(caption, "time difference (int8 over fp32 eager)", "faster") and _says(caption, "passes", "5")
    assert "faster" not in body and "passes" not in body and "37.9x" in body  # the ratios stay in their cells
    mixed = pd.concat([_int8(), _int8(compression=0.5, **_not_compiled())])  # a fallback and a slower compiled side
    caption, body = _shown(captioned(int8_comparison_table(mixed), "Table L."))
    assert "int8 path" in body and "int8 path" not in caption
    caption, body = _shown(captioned(int8_timing_table(mixed), "Table L2."))
    assert _says(caption, "(int8 over fp32 eager)", "faster")  # the eager side: faster in both rows
    assert "int8 over fp32 compiled" in body and "(int8 over fp32 compiled)" not in caption  # "faster" and "–"


def test_table_g_says_once_a_count_of_timed_steps_both_designs_share():
    caption, body = _shown(captioned(design_comparison_table(_designs(), _summary()), "Table G.", index=False))
    assert _says(caption, "timed steps", "5") and "timed steps" not in body and "step time (ms)" in body


def test_table_e_says_once_a_layer_type_every_row_shares():
    frame = pd.DataFrame({"module": list("ab"), "type": "Conv2d", "time_us": [100.0, 50.0], "share_of_busy": 0.1,
                          "share_of_span": 0.1, "flops": [1000.0, 1000.0], "relative": [1.0, 0.5]})
    caption, body = _shown(captioned(conv_layer_table(frame), "Table E."))
    assert _says(caption, "type", "Conv2d") and "Conv2d" not in body
    caption, body = _shown(captioned(conv_layer_table(frame.assign(type=["Conv2d", "Linear"])), "Table E."))
    assert "Conv2d" in body and "Conv2d" not in caption


def test_table_k_puts_its_memory_note_beside_the_memory_column_and_names_its_ratios():
    caption = amp_relative_caption(_runs())
    assert "below 1" not in caption and UNROUNDED_RATIOS in caption  # no memory column on a CPU: no note
    assert UNROUNDED_RATIOS in int8_timing_caption(_int8())
    on_cuda = amp_relative_table(_runs().assign(peak_memory_kind="cuda_max_allocated"), _timing())
    assert MEMORY_RATIO in on_cuda.columns


def test_the_same_model_runs_check_the_rank_test_by_how_many_it_tells_apart():
    """A run whose sparse model is the dense one differs by the passes' jitter alone, so the rank test should tell
    none apart: the findings count how many it did, a check of the test the speed-ups rest on."""
    _, layers = _sparse()
    six = _at_one_compression(*[(1.0, 1.0)] * 6).assign(switched=0, dead_units=0)
    jitter = [1.00, 1.01, 0.99, 1.02, 0.98]
    six = six.assign(dense_inference_samples_s=[jitter] * 6,
                     sparse_inference_samples_s=[[v + 0.005 for v in jitter]] * 4 + [[v * 2 for v in jitter]] * 2)
    out = sparse_result(six, layers.assign(setup="MNIST / FC"))[0].count.left_out
    assert (out.same_runs, out.same_told_apart) == (6, 2)  # two runs 2x apart in every pass: the test tells them
    assert sparse_result(six.iloc[:4], layers.assign(setup="MNIST / FC"))[0].count.left_out.same_told_apart == 0


def test_the_int8_key_result_leads_with_the_speed_up_over_the_faster_fp32():
    """Where compiling made fp32 slower in every run, eager fp32 is the baseline to beat, so its speed-up comes
    first; where compiling made it faster, the speed-up over compiled fp32 does."""
    runs = _runs().assign(data="real CIFAR-10")
    slowed = _int8(**{"fp32 inference (ms)": 30.0, "fp32 inference spread (ms)": 0.5, "speedup": 30.0 / 20.0,
                      "fp32 compiled inference (ms)": 40.0, "fp32 compiled inference spread (ms)": 0.5,
                      "int8 inference (ms)": 20.0, "int8 inference spread (ms)": 0.5, "speedup over compiled": 2.0})
    for int8, eager_first in ((slowed, True), (_int8(), False)):
        text = quantization_key_result(runs, _timing(), int8)
        assert (text.index("over fp32 run eagerly") < text.index("over fp32 compiled")) == eager_first


def test_the_cpu_discussion_explains_a_missing_gain_only_where_mixed_precision_was_never_faster_or_was_slower():
    """AMP faster beyond the noise at one compression and within it at another (1.80x, its passes spread): the
    discussion gives the faster one's ratio and calls the other unresolved, with no word that bf16 gains too little;
    that explanation stands where AMP was slower beyond the noise, for those compressions, or never faster."""
    from prunelab.workbook.speed_findings import TOO_LITTLE

    runs = _runs().assign(cpu_bf16=[["avx512_bf16"]] * 4)
    split = timed(_timing().assign(amp_train_s=[0.5, 1.8], amp_train_spread_s=[0.01, 2.6],
                                   fp32_train_spread_s=[0.01, 1.3]))
    times = amp_times(split)
    assert [(t.differ, t.ratio < 1) for t in times.at] == [(True, True), (False, False)]
    cpu_line = quantization_findings(runs, pd.DataFrame(), split).splitlines()[1]
    assert TOO_LITTLE not in cpu_line and ratio_text(0.5) in cpu_line and ratio_text(1.8) in cpu_line
    slower = timed(_timing().assign(amp_train_s=[0.5, 9.0], amp_train_spread_s=0.01, fp32_train_spread_s=0.01))
    cpu_line = quantization_findings(runs, pd.DataFrame(), slower).splitlines()[1]
    assert TOO_LITTLE in cpu_line and ratio_text(0.5) in cpu_line and ratio_text(9.0) in cpu_line
    never = quantization_findings(runs, pd.DataFrame(), _timing()).splitlines()[1]  # 1.10x within, 9.00x slower
    assert TOO_LITTLE in never


def _three(setup: str = "digits / Conv", loaded: float = 1.0, compiled_ms: float = 5.0,
           compiled_at: tuple[float, ...] = ()) -> pd.DataFrame:
    """Three runs of one set-up at compressions 0.25, 0.5 and 1: eager fp32 4 ms, compiled fp32 ``compiled_ms``
    (4.8 ms at ``compiled_at``), int8 2 ms, each over five passes 2% apart, all times of the first run ``loaded``
    times as long (the same arithmetic at every compression: only the machine's load moves them)."""
    rows = []
    for c in (0.25, 0.5, 1.0):
        scale = loaded if c == 0.25 else 1.0
        eager, compiled, int8 = 4.0 * scale, (4.8 if c in compiled_at else compiled_ms) * scale, 2.0 * scale
        rows.append(_int8(**{"fp32 inference (ms)": eager, "fp32 inference spread (ms)": 0.02 * eager,
                             "fp32 compiled inference (ms)": compiled,
                             "fp32 compiled inference spread (ms)": 0.02 * compiled, "int8 inference (ms)": int8,
                             "int8 inference spread (ms)": 0.02 * int8, "speedup": eager / int8,
                             "speedup over compiled": compiled / int8}).rename(
            index={0.25: c}, level="compression").rename(index={"digits / Conv": setup}, level="setup"))
    return pd.concat(rows)


def test_compiling_is_said_to_have_made_fp32_slower_only_where_it_did_in_every_run():
    """Compiled fp32 slower than eager beyond the noise in 1 of 3 runs: the words count the runs and give the
    compression, not a general "compiling made fp32 slower"; where it was slower in every run, they say so."""
    one = _three(compiled_ms=4.0, compiled_at=(0.5,))  # 4 ms against eager's 4 ms, 4.8 ms at 0.5
    (digits,) = quantization_result(_runs(), one, _timing()).int8.setups
    assert digits.compiling.runs == 3 and [c for c, _ in digits.compiling.slower] == [0.5]
    for text in (quantization_findings(_runs(), one, _timing()),
                 quantization_key_result(_runs().assign(data="real digits"), _timing(), one)):
        assert "made fp32 slower" not in text and "1 of 3 runs" in text and "compression 0.5" in text
        assert ratio_text(1.2) in text
    every = _three(compiled_ms=6.0)
    (digits,) = quantization_result(_runs(), every, _timing()).int8.setups
    assert len(digits.compiling.slower) == 3
    assert "made fp32 slower in every run" in quantization_findings(_runs(), every, _timing())


def test_table_j_says_a_runs_own_peak_is_not_shown_only_where_no_column_shows_it():
    """On a CPU with a timed pass's tensors measured, Table J shows those, not a run's own resident set: its caption
    says that peak is not shown (a reader would look for its column); where the column shows the resident set, no."""
    from prunelab.workbook.measurement_tables import amp_training_caption

    timed_pass = _timing().assign(fp32_train_peak_mb=[30.0, 40.0], amp_train_peak_mb=[18.0, 26.0])
    assert "not shown" in amp_training_caption(_runs(), timed_pass, "rand")
    assert "not shown" not in amp_training_caption(_runs(), _timing(), "rand")  # the resident set is the column


def test_table_l2_says_each_rows_ratios_hold_only_where_a_sides_times_moved_with_the_load():
    """One run's three times all 3x the others' (the same arithmetic at every compression: the machine's load moved
    them): Table L2's caption names each side and set-up whose medians differ by over Table C's share of the fastest,
    with the fastest and slowest, and says each row's ratios hold; where they differ by less, or only across rows
    whose side ran different ways, or in another set-up, it names none of them."""
    from prunelab.workbook.int8_findings import load_spreads
    from prunelab.workbook.sparse_tables import NOISY_DENSE

    loaded = pd.concat([_three(loaded=3.0), _three(setup="CIFAR-10 / ResNet20")])
    assert load_spreads(loaded) == [("eager fp32", "digits / Conv", pytest.approx(4.0), pytest.approx(12.0)),
                                    ("compiled fp32", "digits / Conv", pytest.approx(5.0), pytest.approx(15.0)),
                                    ("int8", "digits / Conv", pytest.approx(2.0), pytest.approx(6.0))]
    caption = int8_timing_caption(loaded)
    assert "4.00 to 12.0 ms" in caption and "5.00 to 15.0 ms" in caption and "2.00 to 6.00 ms" in caption
    assert "CIFAR-10 / ResNet20" not in caption
    unloaded = int8_timing_caption(_three(setup="CIFAR-10 / ResNet20"))
    assert caption.startswith(unloaded[:-1]) and len(caption) > len(unloaded)  # one sentence added, nothing else
    assert load_spreads(_three(loaded=1 + NOISY_DENSE - 0.05)) == []  # 20% apart: within Table C's share
    assert int8_timing_caption(_three(loaded=1 + NOISY_DENSE - 0.05)) == int8_timing_caption(_three())
    assert [s[0] for s in load_spreads(_three(loaded=1 + NOISY_DENSE + 0.05))] == ["eager fp32", "compiled fp32",
                                                                                  "int8"]
    other_way = _three(loaded=3.0)
    other_way.loc[("digits / Conv", 0.25), "int8 method"] = "eager"  # the loaded run's int8 on another path
    assert [s[0] for s in load_spreads(other_way)] == ["eager fp32", "compiled fp32"]
