"""Tables, figures and findings the notebooks show, all computed from result records.

Nothing here knows a number in advance: every table is a pivot of the records' summaries, every
sentence of the findings is formatted from those tables.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import __version__
from .store import RunRecord
from .workbook import PRUNER_NAMES, PRUNER_ORDER, setup_label

#: a run whose accuracy is within this many points of always predicting the most frequent class
CONSTANT_PREDICTION_MARGIN = 1.0
PALETTE = {"Rand": "#7f7f7f", "Mag": "#1f77b4", "SNIP": "#2ca02c", "GraSP": "#d62728",
           "SynFlow (1 round)": "#ff7f0e", "SynFlow (100 rounds)": "#9467bd", "SynFlow": "#9467bd"}


def use_style() -> None:
    """One look across the workbook: readable fonts, light grid, no top/right spines."""
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11,
        "axes.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
        "axes.spines.right": False, "legend.frameon": False, "figure.constrained_layout.use": True,
    })


def column_order(labels) -> list[str]:
    """Pruner columns in the user's order: Rand, Mag, SNIP, GraSP, SynFlow (1 round), SynFlow (100 rounds)."""
    def key(label: str):
        base = label.split(" (")[0]
        names = [PRUNER_NAMES[p] for p in PRUNER_ORDER]
        rounds = int(label.split("(")[1].split()[0]) if "(" in label else 0
        return (names.index(base) if base in names else len(names), rounds)
    return sorted(set(labels), key=key)


# ------------------------------------------------------------------------------------------ banner


def stand_in_banner(table: pd.DataFrame) -> str | None:
    """An unmissable HTML banner when any result came from synthetic stand-in data, else None."""
    if table.empty or not table["stand_in"].any():
        return None
    n, total = int(table["stand_in"].sum()), len(table)
    datasets = ", ".join(sorted(table.loc[table["stand_in"], "dataset"].unique()))
    return (
        '<div style="border:4px solid #c00;background:#fee;padding:12px 16px;margin:8px 0;'
        'font-size:1.15em;color:#600"><b>⚠ SYNTHETIC STAND-IN DATA, NOT REAL RESULTS.</b> '
        f"{n} of {total} runs in this notebook used generated stand-in images in place of {datasets}, "
        "because the real data set was not available. Every table and figure below is built from them: "
        "the numbers exercise the pipeline and must not be read or quoted as accuracies on the real "
        "data set.</div>")


def settings_markdown(params, table: pd.DataFrame) -> str:
    """The settings a reader needs first: profile, data, training, pruning, hardware, library versions.

    Everything but the profile name is read from the records themselves.
    """
    sources = ", ".join(f"{d}: {s}" for d, s in sorted(set(zip(table["dataset"], table["data_source"]))))
    devices = ", ".join(sorted(set(table["device_name"].dropna()))) or "not recorded"
    sizes = sorted(set(zip(table["dataset"], table["train_examples"], table["test_examples"])))
    used = "; ".join(f"{d}: {tr:,} training / {te:,} test examples" for d, tr, te in sizes)
    pruners = [PRUNER_NAMES.get(p, p) for p in PRUNER_ORDER if p in set(table["pruner"])]
    compressions = ", ".join(f"{c:g}" for c in sorted(set(table["compression"])))
    training = f"{', '.join(str(e) for e in sorted(set(table['post_epochs'])))} epoch(s) after pruning"
    if (table["pre_epochs"] > 0).any():
        pre = table[table["pre_epochs"] > 0]
        training += f"; {', '.join(PRUNER_NAMES.get(p, p) for p in sorted(set(pre['pruner'])))} pre-trained " \
                    f"{', '.join(str(e) for e in sorted(set(pre['pre_epochs'])))} epoch(s) first"
    synflow = table[table["pruner"] == "synflow"]
    rounds = sorted({100 if pd.isna(r) else int(r) for r in synflow["prune_epochs"]}) if len(synflow) else []
    lines = [
        "| setting | value |", "| --- | --- |",
        f"| profile | `{params.profile}` |",
        f"| data source | {sources} |",
        f"| data used | {used} |",
        f"| training | {training}; Adam, lr {table['lr'].iloc[0]:g}, batch {table['train_batch_size'].iloc[0]}, "
        f"weight decay {table['weight_decay'].iloc[0]:g}, seed {table['seed'].iloc[0]} |",
        f"| pruning | {', '.join(pruners)} at compression {compressions}; {table['mask_scope'].iloc[0]} scope, "
        f"{table['compression_schedule'].iloc[0]} schedule, {table['prune_dataset_ratio'].iloc[0]} examples per "
        f"class" + (f"; SynFlow with {' and '.join(map(str, rounds))} round(s)" if rounds else "") + " |",
        f"| hardware | {devices} |",
        *([f"| precision | {', '.join(sorted(set(table['amp_dtype'].dropna())))} |"] if "amp_dtype" in table else []),
        f"| libraries | prunelab {__version__}, torch {torch.__version__}, pandas {pd.__version__}, "
        f"matplotlib {matplotlib.__version__} |",
        f"| runs | {len(table)} records in `{params.result_dir}` |",
    ]
    return "\n".join(lines)


def hardware_markdown(env: dict) -> str:
    """The machine a record was measured on, as a two-column Markdown table."""
    rows = [("device", env.get("device")), ("device name", env.get("device_name")), ("GPU driver", env.get("driver")),
            ("CUDA", env.get("cuda")), ("CPU", env.get("cpu")), ("CPU threads", env.get("threads")),
            ("torch", env.get("torch")), ("prunelab", env.get("prunelab"))]
    return "\n".join(["| hardware | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows if v is not None])


# ------------------------------------------------------------------------------------------ tables


def metric_table(table: pd.DataFrame, metric: str, index: str = "compression") -> pd.DataFrame:
    """``metric`` with a row per ``index`` value and a column per pruner, like the user's tables."""
    pivot = table.pivot_table(index=index, columns="label", values=metric, aggfunc="first")
    pivot = pivot[column_order(pivot.columns)]
    pivot.columns.name = None
    return pivot


def table_a(table: pd.DataFrame, compression: float = 1.0) -> pd.DataFrame:
    """Top-1 at one compression: a row per data set / architecture, a column per pruner."""
    rows = table[np.isclose(table["compression"], compression)]
    result = metric_table(rows, "top1", index="setup")
    result.index.name = "Data / Arch"
    return result


def by_compression(table: pd.DataFrame, metric: str, setup: str = "CIFAR-10 / ResNet20") -> pd.DataFrame:
    result = metric_table(table[table["setup"] == setup], metric)
    result.index.name = "Compression"
    return result


FORMATS = {"top1": "{:.2f}", "inference_s": "{:.4f}", "flops": "{:,.0f}", "density": "{:.6f}"}


def styled(frame: pd.DataFrame, metric: str, caption: str):
    """A pandas Styler with the metric's number format and a caption (renders in HTML exports)."""
    fmt = FORMATS.get(metric, "{:.4g}")
    return frame.style.format(fmt, na_rep="–").set_caption(caption).set_table_styles(
        [{"selector": "caption", "props": "caption-side: top; font-weight: bold; text-align: left;"}])


def collapse_table(table: pd.DataFrame) -> pd.DataFrame:
    """Runs that collapsed: a layer kept no weights, or accuracy at the level of a constant prediction."""
    rows = []
    for row in table.itertuples(index=False):
        layers = list(row.collapsed_layers or [])
        constant = row.top1 <= row.majority_class_top1 + CONSTANT_PREDICTION_MARGIN
        if layers or constant:
            rows.append({"Data / Arch": row.setup, "pruner": row.label, "compression": row.compression,
                         "top-1 (%)": row.top1, "most frequent class (%)": row.majority_class_top1,
                         "layers with no weights": ", ".join(layers) or "none",
                         "verdict": _verdict(layers, constant)})
    return pd.DataFrame(rows)


def _verdict(layers: list[str], constant: bool) -> str:
    if layers and constant:
        return "layer collapse: no signal reaches the output, so it predicts one class"
    if layers:
        return "layer collapse, though accuracy is above a constant prediction (the bias path still carries signal)"
    return "predicts no better than the most frequent class (no layer emptied: under-trained or diverged)"


# ----------------------------------------------------------------------------------------- figures


def plot_against_compression(table: pd.DataFrame, setup: str = "CIFAR-10 / ResNet20"):
    """Top-1, inference time and FLOPs against compression, a line per pruner, in one figure."""
    use_style()
    rows = table[table["setup"] == setup]
    panels = [("top1", "test top-1 accuracy (%)"), ("inference_s", "inference over the test set (s)"),
              ("flops", "FLOPs of the pruned model")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (metric, label) in zip(axes, panels):
        pivot = metric_table(rows, metric)
        for column in pivot.columns:
            ax.plot(pivot.index, pivot[column], marker="o", label=column, color=PALETTE.get(column))
        ax.set_xlabel("compression (kept fraction 10^-c)")
        ax.set_ylabel(label)
        ax.set_xticks(list(pivot.index))
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(6, 6))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{setup}: accuracy, inference time and FLOPs against compression")
    return fig


def record_weights(record: RunRecord, kept_only: bool = True) -> dict[str, np.ndarray]:
    """Weight values of every conv / linear layer of a stored model (kept entries only, by default)."""
    state, masks = record.state_dict(), record.masks()
    out = {}
    for key, mask in masks.items():
        name = key.removesuffix("_mask")
        if not name.endswith(".weight") or state[name].dim() not in (2, 4):
            continue  # linear and conv weights only (residual scales are (C, 1, 1))
        values = state[name].float().reshape(-1)
        if kept_only:
            values = values[mask.reshape(-1) != 0]
        out[name] = values.numpy()
    return out


def plot_weight_histograms(weights_by_label: dict[str, dict[str, np.ndarray]], title: str, bins: int = 40):
    """A panel per layer; each pruner's kept weights as a step histogram in that panel."""
    use_style()
    layers = list(next(iter(weights_by_label.values())))
    cols = 6
    rows = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        for label, weights in weights_by_label.items():
            values = weights.get(layer, np.zeros(0))
            if values.size:
                ax.hist(values, bins=bins, histtype="step", label=label, color=PALETTE.get(label))
        ax.set_title(f"{layer.removesuffix('.weight')}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(False)
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(weights_by_label) > 1:
        fig.legend(handles, labels, loc="lower right", fontsize=8)
    fig.supxlabel("weight value")
    fig.supylabel("count of kept weights")
    fig.suptitle(title)
    return fig


def layer_frame(records: dict[str, RunRecord]) -> pd.DataFrame:
    """Prunable rows of each record's layer table, with a ``label`` column (one row per layer and pruner)."""
    frames = []
    for label, record in records.items():
        layers = record.layers
        layers = layers[layers["prunable"]].copy()
        layers["label"] = label
        layers["layer"] = layers["module"]
        layers["kept_flops"] = layers["density"] * layers["flops"]
        frames.append(layers)
    return pd.concat(frames, ignore_index=True)


def plot_density_and_flops(layers: pd.DataFrame, compression: float):
    """Per-layer density and kept FLOPs, a line per pruner, layers in network order."""
    use_style()
    order = list(dict.fromkeys(layers["layer"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 6.5), sharex=True)
    for label in column_order(layers["label"]):
        part = layers[layers["label"] == label].set_index("layer").reindex(order)
        top.plot(range(len(order)), part["density"], marker="o", label=label, color=PALETTE.get(label))
        bottom.plot(range(len(order)), part["kept_flops"], marker="o", label=label, color=PALETTE.get(label))
    dense = layers.drop_duplicates("layer").set_index("layer").reindex(order)["flops"]
    bottom.bar(range(len(order)), dense, color="#ddd", label="dense", zorder=0)
    top.axhline(10 ** -compression, color="k", lw=0.8, ls="--", label=f"overall target {10 ** -compression:.3f}")
    top.set_ylabel("density (kept fraction)")
    bottom.set_ylabel("FLOPs per layer")
    bottom.set_yscale("log")
    bottom.set_xticks(range(len(order)), order, rotation=70, fontsize=7)
    top.legend(fontsize=8, ncol=4)
    fig.suptitle(f"Per-layer density and FLOPs at compression {compression}")
    return fig


# ---------------------------------------------------------------------------------------- findings


def tuning_findings(table: pd.DataFrame) -> str:
    """Markdown findings for Task 1, every figure taken from ``table``."""
    lines = []
    cifar = table[table["setup"] == "CIFAR-10 / ResNet20"]
    if not cifar.empty:
        acc = metric_table(cifar, "top1")
        for compression, row in acc.iterrows():
            best, worst = row.idxmax(), row.idxmin()
            lines.append(f"- At compression {compression:g} (kept {10 ** -compression:.1%}) **{best}** is best at "
                         f"{row[best]:.2f}% top-1 and {worst} worst at {row[worst]:.2f}%.")
        if len(acc) > 1:
            change = (acc.iloc[-1] - acc.iloc[0]).sort_values()
            lines.append(f"- From compression {acc.index[0]:g} to {acc.index[-1]:g} top-1 changes by "
                         f"{change.iloc[0]:+.2f} points for {change.index[0]} (the largest loss) and by "
                         f"{change.iloc[-1]:+.2f} points for {change.index[-1]}.")
            flops = metric_table(cifar, "flops")
            time = metric_table(cifar, "inference_s")
            flop_fall = 1 - flops.iloc[-1].mean() / flops.iloc[0].mean()
            spread = (time.max().max() - time.min().min()) / time.mean().mean()
            lines.append(f"- FLOPs fall by {flop_fall:.0%} on average between those compressions, and the pruner "
                         f"that keeps most FLOPs at {flops.index[-1]:g} is {flops.iloc[-1].idxmax()} "
                         f"({flops.iloc[-1].max():,.0f}) against {flops.iloc[-1].idxmin()} "
                         f"({flops.iloc[-1].min():,.0f}): pruners differ in which layers they thin, and "
                         "early layers, applied at full resolution, carry most FLOPs per weight.")
            lines.append(f"- Inference time over the test set varies by {spread:.0%} across all runs while FLOPs "
                         f"fall by {flop_fall:.0%}: pruned weights are zeros inside dense tensors, so the dense "
                         "kernels do the same work. Unstructured sparsity saves FLOPs on paper, not time, "
                         "unless a sparse kernel or structured pruning is used.")
    collapsed = collapse_table(table)
    if collapsed.empty:
        lines.append("- No run collapsed: every layer kept weights and every accuracy is above a constant "
                     "prediction.")
    else:
        structural = collapsed[collapsed["layers with no weights"] != "none"]
        for row in structural.to_dict("records"):
            lines.append(f"- **Collapse**: {row['pruner']} on {row['Data / Arch']} at compression "
                         f"{row['compression']:g} emptied `{row['layers with no weights']}` and scored "
                         f"{row['top-1 (%)']:.2f}% (a constant prediction scores "
                         f"{row['most frequent class (%)']:.2f}%).")
        constant_only = len(collapsed) - len(structural)
        if constant_only:
            lines.append(f"- {constant_only} further run(s) predict no better than the most frequent class "
                         "without an emptied layer: too little training for this profile, not a pruning "
                         "failure.")
        if (structural["pruner"] == "SynFlow (1 round)").any():
            lines.append("- SynFlow's paper prunes over 100 rounds; with one round the largest layer (the first) "
                         "gets the smallest scores per weight and is emptied. Compare the 100-round column.")
    return "\n".join(lines)


def compression_findings(layers: pd.DataFrame, compression: float, focus: str = "SNIP") -> str:
    """Markdown findings for Task 3 from the per-layer table."""
    target = 10 ** -compression
    lines = [f"- The overall target keeps {target:.4f} of the prunable weights (compression {compression:g})."]
    for label in column_order(layers["label"]):
        part = layers[layers["label"] == label]
        hi = part.loc[part["density"].idxmax()]
        lo = part.loc[part["density"].idxmin()]
        total = (part["density"] * part["size"]).sum() / part["size"].sum()
        lines.append(f"- **{label}**: overall {total:.4f}; densest `{hi['layer']}` ({hi['density']:.3f}), "
                     f"sparsest `{lo['layer']}` ({lo['density']:.3f}); kept FLOPs "
                     f"{part['kept_flops'].sum():,.0f} of {part['flops'].sum():,.0f}.")
    part = layers[layers["label"] == focus]
    if not part.empty:
        small = part[part["size"] <= part["size"].median()]["density"].mean()
        large = part[part["size"] > part["size"].median()]["density"].mean()
        lines.append(f"- Under {focus}, layers with fewer weights keep on average {small:.3f} and larger ones "
                     f"{large:.3f}: a global threshold does not prune every layer equally.")
    return "\n".join(lines)


def trace_findings(trace: dict, designs: pd.DataFrame) -> str:
    """Markdown findings for Task 2 from a record's trace summary and its design comparison."""
    unit = "kernels" if trace["device"] == "cuda" else "top-level ops"
    original, ours = designs.iloc[0], designs.iloc[1]
    lines = [
        f"- The step took {trace['step_span_ms']:.3f} ms from first to last {unit[:-1]} "
        f"({trace['step_busy_ms']:.3f} ms busy). Its {trace['conv_layers']} convolution layers account for "
        f"{trace['conv_ms']:.3f} ms, **{trace['conv_share']:.1%}** of the busy time.",
        f"- The main time sink is **{trace['main_sink']}**."
        + (" Convolutions dominate; with pruned weights still stored densely, a sparse or structured kernel "
           "(or channel pruning) is what would cut this time, not more unstructured sparsity."
           if trace["main_sink"] == "convolution" else
           " It is not the convolutions: per-op overhead dominates this small network, which kernel fusion "
           "(conv + batchnorm folding, torch.compile) or CUDA graphs attack."),
        f"- The original design multiplies every mask in every forward: {int(original['units'])} {unit} against "
        f"{int(ours['units'])}, {original['mask multiply share']:.1%} of its busy time in mask multiplies, "
        f"{original['busy (ms)']:.3f} ms busy against {ours['busy (ms)']:.3f} ms with the masks folded into "
        f"the weights ({original['busy (ms)'] / ours['busy (ms)']:.2f}x). The outputs are "
        + ("identical." if trace.get("outputs_equal_to_original_design") else "NOT identical: investigate."),
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ quantization

MEMORY_KINDS = {"cpu_peak_rss": "the process's peak resident set, CPU", "cuda_max_allocated": "peak of CUDA tensors"}
AMP_METRICS = {"peak_memory_mb": "Peak memory (MB)", "train_s": "Training time (s)", "top1": "Top-1 (%)"}


def precision_label(row) -> str:
    return f"AMP {row['amp_dtype']}" if row["amp"] else "fp32"


def amp_table(table: pd.DataFrame) -> pd.DataFrame:
    """Task 4's table as the course lays it out: a row per compression, and peak memory, training time
    and top-1 each with and without mixed precision."""
    t = table.assign(precision=table.apply(precision_label, axis=1))
    pivot = t.pivot_table(index="compression", columns="precision", values=list(AMP_METRICS), aggfunc="first")
    order = sorted(p for p in set(t["precision"]) if p != "fp32") + ["fp32"]
    columns = [(m, p) for m in AMP_METRICS for p in order if (m, p) in pivot.columns]
    frame = pivot[columns]
    frame.columns = pd.MultiIndex.from_tuples([(AMP_METRICS[m], p) for m, p in columns])
    return frame


def amp_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Per compression: AMP over fp32 for peak memory and training time, and the top-1 difference."""
    t = table.assign(precision=np.where(table["amp"], "amp", "fp32"))
    pivot = t.pivot_table(index="compression", columns="precision", values=list(AMP_METRICS), aggfunc="first")
    return pd.DataFrame({
        "memory AMP / fp32": pivot[("peak_memory_mb", "amp")] / pivot[("peak_memory_mb", "fp32")],
        "time AMP / fp32": pivot[("train_s", "amp")] / pivot[("train_s", "fp32")],
        "top-1 AMP - fp32 (points)": pivot[("top1", "amp")] - pivot[("top1", "fp32")],
    })


def plot_amp(table: pd.DataFrame):
    """Peak memory, training time and top-1 per compression, fp32 and mixed precision side by side."""
    use_style()
    frame = amp_table(table)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = np.arange(len(frame.index))
    for ax, name in zip(axes, AMP_METRICS.values()):
        precisions = [p for m, p in frame.columns if m == name]
        width = 0.8 / max(len(precisions), 1)
        for i, precision in enumerate(precisions):
            ax.bar(x + (i - (len(precisions) - 1) / 2) * width, frame[(name, precision)], width, label=precision,
                   color="#1f77b4" if precision == "fp32" else "#ff7f0e")
        ax.set_xticks(x, [f"{c:g}" for c in frame.index])
        ax.set_xlabel("compression (kept fraction 10^-c)")
        ax.set_ylabel(name)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper")
    kind = ", ".join(MEMORY_KINDS.get(k, k) for k in sorted(set(table["peak_memory_kind"])))
    fig.suptitle(f"Mixed precision against fp32 (peak memory: {kind})")
    return fig


def int8_table(records: Iterable[RunRecord]) -> pd.DataFrame:
    """int8 records by setup and compression: accuracy, test-set inference time and size on disk against fp32.

    A setup measured on synthetic stand-in data says so in its label."""
    rows = []
    for record in records:
        s, config = record.summary, record.config
        setup = setup_label(config["dataset"], config["model"]) + (" (SYNTHETIC stand-in)" if s["stand_in"] else "")
        rows.append({
            "setup": setup, "compression": config["compression"],
            "kept weights": s["kept_weights"] / s["total_weights"],
            "fp32 top-1 (%)": s["fp32_top1"], "int8 top-1 (%)": s["int8_top1"], "drop (points)": s["top1_drop"],
            "fp32 inference (ms)": 1e3 * s["fp32_inference_s"], "int8 inference (ms)": 1e3 * s["int8_inference_s"],
            "speedup": s["speedup"], "fp32 dense (KB)": s["fp32_dense_bytes"] / 1024,
            "fp32 sparse (KB)": s["fp32_sparse_bytes"] / 1024, "int8 (KB)": s["int8_bytes"] / 1024,
            "pruned weights zero in int8": s["pruned_weights_zero"],
        })
    return pd.DataFrame(rows).set_index(["setup", "compression"]).sort_index()


def _span(values: pd.Series, fmt: str) -> str:
    """"a to b" of a series' smallest and largest value, or one value when they print the same."""
    low, high = fmt.format(values.min() + 0.0), fmt.format(values.max() + 0.0)  # + 0.0: no "-0.00"
    return low if low == high else f"{low} to {high}"


def quantization_findings(table: pd.DataFrame, int8: pd.DataFrame) -> str:
    """Markdown discussion of Task 4: each sentence formatted from the AMP records and the int8 table."""
    ratios = amp_ratios(table)
    amp_rows = table[table["amp"]]
    dtype = ", ".join(sorted(set(amp_rows["amp_dtype"])))
    devices = ", ".join(sorted(set(table["device_name"].dropna())))
    on_cuda = bool(table["peak_memory_kind"].eq("cuda_max_allocated").all())
    model, params = table["model"].iloc[0], table["params_total"].iloc[0]
    times, memory = ratios["time AMP / fp32"], ratios["memory AMP / fp32"]
    acc = ratios["top-1 AMP - fp32 (points)"]
    lines = [f"- With mixed precision ({dtype} on {devices}) training took **{_span(times, '{:.2f}x')}** the "
             f"fp32 time and peak memory was {_span(memory, '{:.2f}x')} fp32's, across compressions "
             f"{', '.join(f'{c:g}' for c in ratios.index)}; top-1 moved by {_span(acc, '{:+.2f}')} points ({dtype} "
             "rounding sends the two trainings down different paths: with one seed per cell, a difference in "
             "top-1 says little until more seeds repeat it)."]
    gain = times.max() < 0.9
    if on_cuda:
        lines.append(
            "- " + ("Mixed precision paid off in time, though far less than tensor cores' peak rate suggests: " if gain
               else "The time gain is small: ")
            + f"{model} has {params / 1e6:.2f} M parameters, so each of its layers is a short kernel. Tensor cores "
            "speed up only the convolutions' arithmetic; batchnorm, ReLU, the residual "
            "additions, the casts autocast inserts and the optimizer's updates are memory-bound, and at this "
            "size launch overhead and those layers take much of every step. Peak memory falls "
            "less than half because weights, gradients and Adam's two moments stay fp32, and the data set "
            f"prunelab keeps on the device ({table['peak_memory_start_mb'].mean():.0f} MB held before training "
            "began, with the model) does not shrink at all; only activations saved for the backward pass do.")
    else:
        flags = sorted({f for value in table["cpu_bf16"].dropna() for f in value})
        units = f"native bf16 units ({', '.join(flags)})" if flags else "no native bf16 units"
        lines.append(
            f"- This CPU has {units}. " + (
                "oneDNN runs bf16 convolutions on them at a multiple of fp32's rate, which outweighs the casts "
                "autocast inserts before each convolution: mixed precision pays off in time even on a CPU. "
                if gain else
                "Autocast casts every weight and activation to bf16 before each convolution and back where fp32 "
                "is needed, and " + ("with these units the convolutions of so small a network gain too little "
                                     "to pay for that. " if flags else "without them bf16 arithmetic is emulated, "
                                     "so there is nothing to gain. "))
            + "The memory column is the peak resident set of the whole process (the Python runtime, the PyTorch "
            "libraries, the data set held in memory), not of tensors alone, so halving activations barely moves "
            "it. Run this notebook on a GPU for the memory of CUDA tensors and fp16 with tensor cores.")
    if not int8.empty:
        per_setup = "; ".join(
            f"{setup}: **{_span(part['speedup'], '{:.2f}x')}** faster, top-1 changed by "
            f"{_span(-part['drop (points)'], '{:+.2f}')} points" for setup, part in int8.groupby(level="setup"))
        lines.append(
            f"- int8 post-training quantization against fp32 test-set inference on the CPU: {per_setup}. Every "
            "pruned weight " + ("stayed exactly zero." if int8["pruned weights zero in int8"].all()
                                else "did NOT stay zero: investigate."))
        dense, sparse, q = int8["fp32 dense (KB)"], int8["fp32 sparse (KB)"], int8["int8 (KB)"]
        smaller = [f"{setup} at {c:g}" for setup, c in int8.index if sparse[(setup, c)] < q[(setup, c)]]
        lines.append(
            f"- On disk int8 is {_span(dense / q, '{:.1f}x')} smaller than dense fp32 (one byte per weight, pruned "
            "ones included, whatever the compression); storing only the kept fp32 weights and their positions "
            "shrinks with compression instead, and is smaller than int8 "
            + (f"for {', '.join(smaller)}." if smaller else "in none of these runs.")
            + " Both together (sparse int8) would compound the savings; PyTorch has no kernel that runs it.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- multishot


def multishot_table(table: pd.DataFrame) -> pd.DataFrame:
    """Multishot records (``load_table``'s rows): test top-1 against the fraction of prunable weights
    remaining, a column per pruner and number of prune-train cycles."""
    rows = table[table["experiment"] == "multishot"]
    if rows.empty:
        return pd.DataFrame()
    levels = rows["levels"].astype(int)
    column = [f"{PRUNER_NAMES.get(p, p)}, {n} cycle{'s' if n != 1 else ''}" for p, n in zip(rows["pruner"], levels)]
    frame = rows.assign(column=column, remaining=rows["prunable_density"].round(6))
    pivot = frame.pivot_table(index="remaining", columns="column", values="top1", aggfunc="first")
    pivot.index.name, pivot.columns.name = "weights remaining", None
    return pivot.sort_index(ascending=False)


def plot_multishot(table: pd.DataFrame):
    """Top-1 against weights remaining (log scale, fewest on the right), a line per pruner and cycle count."""
    use_style()
    pivot = multishot_table(table)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for column in pivot.columns:
        series = pivot[column].dropna()
        ax.plot(series.index, series.values, marker="o", label=column,
                linestyle="-" if column.endswith(" 1 cycle") else "--")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set(xlabel="fraction of prunable weights remaining", ylabel="test top-1 (%)",
           title="Multishot: accuracy against weights remaining")
    ax.legend(fontsize=8)
    return fig


# ------------------------------------------------------------------------------------------- index


def notebook_failed(notebook: dict) -> bool:
    """Whether an executed notebook stopped on an error (papermill marks it, and error outputs show it)."""
    if (notebook.get("metadata", {}).get("papermill") or {}).get("exception"):
        return True
    return any(o.get("output_type") == "error" for c in notebook["cells"] for o in c.get("outputs", []))


def build_index(out_dir: str | Path, profile: str) -> Path:
    """``index.html``: the write-up's front page, from the executed notebooks in ``out_dir``.

    For each notebook: a link to its rendered HTML, whether it ran cleanly, and the HTML outputs of its
    cells tagged ``banner``, ``settings`` and ``key-table``.
    """
    out_dir = Path(out_dir)
    executed = sorted(p for p in out_dir.glob("[0-9][0-9]_*.ipynb"))
    notebooks = {p.stem: json.loads(p.read_text()) for p in executed}
    failed = [name for name, nb in notebooks.items() if notebook_failed(nb)]
    parts = [f"<h1>prunelab workbook — profile <code>{html.escape(profile)}</code></h1>"]
    if failed:
        parts.append('<p style="color:#a00"><b>Failed:</b> ' + ", ".join(html.escape(f) for f in failed) +
                     " (each is still rendered, with its error).</p>")
    for name, nb in notebooks.items():
        status = "failed" if name in failed else "ok"
        title = next(("".join(c["source"]).splitlines()[0].lstrip("# ") for c in nb["cells"]
                      if c["cell_type"] == "markdown" and c["source"]), name)
        parts.append(f'<h2><a href="{name}.html">{html.escape(title)}</a> <small>[{status}]</small></h2>')
        parts.extend(_tagged_outputs(nb, ("banner", "settings", "key-table")))
    body = "\n".join(parts)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>prunelab workbook ({html.escape(profile)})"
            "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
            "text-align:right}caption{font-weight:bold;text-align:left}</style></head>"
            f"<body>{body}</body></html>")
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def _tagged_outputs(notebook: dict, tags: tuple[str, ...]) -> list[str]:
    cells = notebook["cells"]
    pieces = []
    for cell in cells:
        if not set(cell.get("metadata", {}).get("tags", [])) & set(tags):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                pieces.append("".join(data["text/html"]))
            elif "text/markdown" in data:
                pieces.append(_markdown_table_to_html("".join(data["text/markdown"])))
    return pieces


def _markdown_table_to_html(text: str) -> str:
    """Just enough Markdown for the settings table; anything else is shown as preformatted text."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines or not all(line.startswith("|") for line in lines):
        return f"<pre>{html.escape(text)}</pre>"
    rows = [[html.escape(c.strip().strip("`")) for c in line.strip("|").split("|")] for line in lines]
    head, body = rows[0], [r for r in rows[2:]]
    out = "<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"
    out += "".join("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in r) + "</tr>" for r in body)
    return out + "</table>"


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write index.html for a folder of executed notebooks.")
    parser.add_argument("out_dir")
    parser.add_argument("--profile", required=True)
    args = parser.parse_args(argv)
    print(build_index(args.out_dir, args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
