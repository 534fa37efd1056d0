"""Timing wording and cells of Tables I–L and the Task 2 / Task 4 findings, on hand-made tables."""

import pandas as pd

from prunelab.workbook.findings import amp_time_words, design_speed_words, quantization_findings
from prunelab.workbook.measurement_tables import (
    amp_relative_table,
    amp_training_table,
    design_comparison_table,
    difference_text,
    int8_comparison_table,
)


def _designs(original_ms, original_spread, ours_ms, ours_spread):
    rows = [("original: mask multiplied in every forward", 152, 0.1, original_ms, original_spread),
            ("prunelab: masks folded into the weights", 73, 0.0, ours_ms, ours_spread)]
    return pd.DataFrame([{"design": d, "units": u, "step span (ms)": 9.0, "busy (ms)": 8.0, "convolution (ms)": 7.0,
                          "mask multiply share": m, "step median (ms)": t, "step spread (ms)": s, "timed steps": 10}
                         for d, u, m, t, s in rows])


def test_a_gap_inside_the_spread_is_noise_and_outside_it_a_difference():
    assert difference_text(10.0, 1.0, 10.5, 0.8) == "within the spread (noise)"
    assert difference_text(12.0, 1.0, 10.0, 0.8) == "slower" and difference_text(8.0, 1.0, 10.0, 0.5) == "faster"
    noise = design_speed_words(_designs(10.4, 1.0, 10.0, 0.6))
    assert "within the spread" in noise and "neither design is measurably faster" in noise and "**" not in noise
    real = design_speed_words(_designs(13.0, 0.5, 10.0, 0.4))
    assert "**folded masks** is faster (1.30x)" in real and "over 10 steps of each taken in turn" in real
    assert "13.0 ± 0.25 ms in the original design against 10.0 ± 0.20 ms folded" in real
    assert "no repeated steps" in design_speed_words(_designs(1, 1, 1, 1).drop(columns=["step median (ms)"]))


def test_table_i_shows_the_repeated_step_with_its_half_range():
    frame = design_comparison_table(_designs(0.96, 0.2, 1.0, 0.1))  # the user's 0.96x: inside the spread
    assert list(frame["step time (ms)"]) == ["0.960 ± 0.10 ms", "1.00 ± 0.050 ms"]
    assert frame["against folded"].iloc[0] == "0.960x, within the spread (noise)"
    assert frame["busy in traced step (ms)"].iloc[0] == "8.00"


def _runs():
    return pd.DataFrame([dict(compression=c, amp=a, amp_dtype="bf16" if a else "fp32", peak_memory_mb=m,
                              top1=t, train_s=s, peak_memory_kind="cpu_peak_rss", device_name="cpu x",
                              model="resnet20", params_total=270_000, cpu_bf16=[], peak_memory_start_mb=500.0)
                         for c, a, m, t, s in [(0.25, False, 1109.499023, 29.3, 84.0),
                                               (0.25, True, 1000.0, 29.25, 90.0), (0.5, False, 1100.0, 30.0, 20.0),
                                               (0.5, True, 1001.0, 31.0, 200.0)]])


def _timing():
    return pd.DataFrame([
        dict(compression=0.25, amp_dtype="bf16", batches=1, batch_size=32, fp32_train_s=1.0,
             fp32_train_spread_s=0.2, fp32_train_repeats=5, amp_train_s=1.1, amp_train_spread_s=0.3,
             amp_train_repeats=5),
        dict(compression=0.5, amp_dtype="bf16", batches=1, batch_size=32, fp32_train_s=1.0,
             fp32_train_spread_s=0.05, fp32_train_repeats=5, amp_train_s=9.0, amp_train_spread_s=0.5,
             amp_train_repeats=5)]).set_index("compression")


def test_tables_j_and_k_show_people_numbers_and_call_only_real_gaps_differences():
    j = amp_training_table(_runs(), _timing())
    assert list(j.index) == ["0.25", "0.5"]
    assert j.loc["0.25", ("Peak memory (MB)", "fp32")] == "1,110" and j.loc["0.25", ("Top-1 (%)", "fp32")] == "29.3"
    assert j.loc["0.25", ("Training time (s)", "AMP bf16")] == "1.10 ± 0.15 s"
    k = amp_relative_table(_runs(), _timing())
    assert k.loc["0.25", "time difference"] == "within the spread (noise)"
    assert k.loc["0.5", "time difference"] == "slower" and k.loc["0.5", "time AMP / fp32"] == "9.00x"


def test_quantization_findings_word_times_by_their_spread():
    text = amp_time_words(_timing())
    assert "at compression 0.25 1.10 ± 0.15 s against 1.00 ± 0.10 s, 1.10x fp32's time, within the spread" in text
    assert "at compression 0.5 9.00 ± 0.25 s against 1.00 ± 0.025 s, **9.00x** fp32's time (slower" in text
    assert "median of 5 passes of each taken in turn" in text
    full = quantization_findings(_runs(), pd.DataFrame(), _timing())
    assert "Against fp32, peak memory was" in full and "84" not in full  # separate runs' totals not compared


def test_table_l_formats_times_with_spreads_and_compressions_plainly():
    int8 = pd.DataFrame([{
        "setup": "digits / Conv", "compression": 0.25, "kept weights": 0.562341, "int8 path": "pt2e",
        "fp32 top-1 (%)": 97.2222, "int8 top-1 (%)": 97.0, "drop (points)": 0.2222, "fp32 inference (ms)": 1109.499023,
        "int8 inference (ms)": 29.3, "fp32 inference spread (ms)": 20.0, "int8 inference spread (ms)": 1.0,
        "timing repeats": 5, "speedup": 37.867, "fp32 dense (KB)": 100.0, "fp32 sparse (KB)": 60.0, "int8 (KB)": 30.0,
        "pruned weights zero in int8": True}]).set_index(["setup", "compression"])
    row = int8_comparison_table(int8).iloc[0]
    assert int8_comparison_table(int8).index[0] == ("digits / Conv", "0.25")
    assert row["fp32 inference"] == "1,110 ± 10 ms" and row["int8 inference"] == "29.3 ± 0.50 ms"
    assert row["fp32 top-1 (%)"] == "97.2" and row["speedup"] == "37.9x" and row["time difference"] == "faster"
    assert row["kept weights"] == "0.562" and row["passes"] == 5


def test_the_front_pages_key_results_carry_their_data_and_spreads():
    from prunelab.workbook.key_results import quantization_key_result, trace_key_result

    runs = _runs().assign(data="synthetic stand-in for CIFAR-10")
    text = quantization_key_result(runs, _timing())
    assert "synthetic stand-in for CIFAR-10" in text and "0.901 to 0.910x" in text  # memory ratios, both compressions
    assert "1.10 to 9.00x" in text and "1 of 2 compressions" in text  # time ratios; one beyond the spread
    assert text.count("Mixed precision") == 1  # one clause per quantity: the per-compression detail is in findings
    trace = dict(conv_layers=21, conv_ms=2.271, step_busy_ms=7.975, conv_share=0.285, main_sink="convolution")
    assert trace_key_result(trace, "real CIFAR-10") == (
        "One traced inference step (real CIFAR-10): its 21 convolution layers take 2.27 ms of 7.97 ms busy time "
        "(**28.5%**); the main time sink is convolution.")


def test_figure_6_draws_the_interleaved_times_not_the_runs_epoch_totals():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prunelab.workbook.figures import plot_amp

    fig = plot_amp(_runs(), _timing())
    memory, time, top1 = fig.axes[:3]
    heights = sorted(round(bar.get_height(), 6) for bar in time.patches)
    assert heights == [1.0, 1.0, 1.1, 9.0]  # the medians of the passes, not train_s (84, 90, 20, 200)
    whiskers = sorted(round(float(seg[1][1] - seg[0][1]), 6) for c in time.collections for seg in c.get_segments())
    assert whiskers == [0.05, 0.2, 0.3, 0.5]  # whole whisker = the range: half of it either side
    assert sorted(round(b.get_height(), 2) for b in top1.patches) == [29.25, 29.3, 30.0, 31.0]
    assert "1 batch(es) of 32" in time.get_ylabel()
    plt.close(fig)


def test_a_shown_figure_is_an_img_whose_alternative_text_is_read_off_the_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prunelab.workbook.figures import plot_amp, show_figure

    fig = plot_amp(_runs(), _timing())
    shown = show_figure(fig)
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend will not show it twice
    alt = shown.alt
    assert alt.startswith("Mixed precision against fp32 (peak memory: ") and "3 panels" in alt
    assert ". panel 2, fp32 and AMP bf16 in turn: median ± half range: training time of 1 batch(es) of 32 (s) " \
           "against compression (kept fraction 10^-c). panel 3, Top-1 (%) against" in alt
    assert alt.endswith("series in every panel: AMP bf16, fp32.")
    page = shown._repr_html_()
    assert page.startswith('<img alt="Mixed precision') and "data:image/png;base64,iVBOR" in page
    assert repr(shown).startswith("[figure: Mixed precision")
    assert show_figure(plt.figure(), alt='a "quoted" figure')._repr_html_().startswith(
        '<img alt="a &quot;quoted&quot; figure"')
