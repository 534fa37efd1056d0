"""Tables, figures and findings the notebooks show, all computed from result records.

Nothing here knows a number in advance: every table is a pivot of the records' summaries, every
sentence of the findings is formatted from those tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch

from ..core.choices import REAL_SUBSET_WHY, STAND_IN_CHECKS
from ..core.registry import pruner_rounds
from ..core.timing import Timing
from ..runs.int8 import FP32_COMPILED, FP32_METHOD
from ..runs.store import RunRecord
from ..version import __version__
from .commands import CONFIG_COLUMN, command_lines
from .grids import setup_label
from .numbers import accuracy_cell, compression_text, counted, share_of, significant
from .style import column_order, pruner_name
from .table_headers import table_style
from .table_notes import SETUP_LEVEL, noted

# ------------------------------------------------------------------------------------------ banner


def stand_in_banner(table: pd.DataFrame) -> str | None:
    """A banner saying where the data came from when it is not the full real set: an unmissable red one
    naming the set-ups that ran on synthetic stand-in data (pipeline checks), a plain one for a real
    subset; None when every run used the full real data."""
    if table.empty:
        return None
    parts = []
    fake = table[table["data_source"] == "synthetic"]
    if not fake.empty:
        setups = ", ".join(sorted(fake["setup"].unique()))
        real = ", ".join(sorted(table.loc[table["data_source"] != "synthetic", "setup"].unique()))
        parts.append(
            '<div style="border:4px solid #c00;background:#fee;padding:12px 16px;margin:8px 0;'
            'font-size:1.15em;color:#600"><b>⚠ SYNTHETIC STAND-IN DATA, NOT REAL RESULTS</b> for '
            f"{setups}: {share_of(len(fake), len(table), 'run')} used generated images because the real data set "
            f"was not available. Their rows are pipeline checks: {STAND_IN_CHECKS}"
            + (f" The other set-ups ({real}) ran on real images." if real else "") + "</div>")
    subset = table[table["data_source"] == "bundled"]
    if not subset.empty:
        described = "; ".join(f"{setup} ({words}): {tr:,} training / {te:,} test images" for setup, words, tr, te in
                              sorted(set(zip(subset["setup"], subset["data"], subset["train_examples"],
                                             subset["test_examples"]))))
        parts.append(
            '<div style="border:2px solid #36c;background:#eef3ff;padding:10px 14px;margin:8px 0;color:#123">'
            f"<b>Real images, a subset.</b> {described}. {REAL_SUBSET_WHY}</div>")
    return "".join(parts) or None


def settings_markdown(params, table: pd.DataFrame) -> str:
    """The settings a reader needs first: profile, data, training, pruning, hardware, library versions; then the
    ``prunelab`` commands that make the runs again (:func:`.commands.command_lines`) where the table holds the
    records' configurations.

    Everything but the profile name is read from the records themselves; unpruned reference runs (compression
    0) count among the runs, and the pruning line names the pruned ones.
    """
    pruned = table[table["compression"] > 0]
    sources = "; ".join(sorted(set(table["data"])))
    devices = ", ".join(sorted(set(table["device_name"].dropna()))) or "not recorded"
    sizes = sorted(set(zip(table["dataset"], table["train_examples"], table["test_examples"])))
    used = "; ".join(f"{d}: {tr:,} training / {te:,} test examples" for d, tr, te in sizes)
    training = f"after pruning: {_epochs_text(table, 'post_epochs')}"
    if (table["pre_epochs"] > 0).any():
        pre = table[table["pre_epochs"] > 0]
        training += f"; {', '.join(pruner_name(p) for p in sorted(set(pre['pruner'])))} pre-trained before " \
                    f"pruning: {_epochs_text(pre, 'pre_epochs')}"
    synflow = table[table["pruner"] == "synflow"]
    rounds = sorted({pruner_rounds("synflow") if pd.isna(r) else int(r) for r in synflow["prune_epochs"]})
    diverged = int((table["status"] == "diverged").sum()) if "status" in table else 0
    lines = [
        "| setting | value |", "| --- | --- |",
        f"| profile | `{params.profile}` |",
        f"| data source | {sources} |",
        f"| data used | {used} |",
        f"| training | {training}; Adam, lr {table['lr'].iloc[0]:g}, batch {table['train_batch_size'].iloc[0]}, "
        f"weight decay {table['weight_decay'].iloc[0]:g} |",
        f"| seeds | {_seeds_text(table)} |",
        f"| pruning | {_grid_text(pruned)}; {table['mask_scope'].iloc[0]} scope, "
        f"{table['compression_schedule'].iloc[0]} schedule, {table['prune_dataset_ratio'].iloc[0]} examples per "
        f"class on average (drawn at random)"
        + (f"; SynFlow with {counted(rounds, 'round').replace(', ', ' and ')}" if rounds else "") + " |",
        f"| hardware | {devices} |",
        *([f"| precision | {', '.join(sorted(set(table['amp_dtype'].dropna())))} |"] if "amp_dtype" in table else []),
        f"| libraries | prunelab {__version__}, torch {torch.__version__}, pandas {pd.__version__}, "
        f"matplotlib {matplotlib.__version__} |",
        f"| runs | {len(table)} record{'s' if len(table) != 1 else ''} in the result store "
        f"`{Path(params.result_dir).name}`"
        + (f", {len(table) - len(pruned)} of them unpruned references" if len(pruned) < len(table) else "")
        + (f"; {diverged} stopped when their weights or loss became NaN or infinite (diverged), each counted with "
           "the accuracy of the model it stopped with" if diverged else "") + " |",
    ]
    if CONFIG_COLUMN in table:  # the records' own configurations: the command lines that make these runs again
        lines += ["", "Commands that make these runs again:", "", "```bash", *command_lines(table), "```"]
    return "\n".join(lines)


def _epochs_text(table: pd.DataFrame, column: str) -> str:
    """"30 epochs", or per set-up where they differ: "3 epochs for CIFAR-10 / ResNet20, 30 epochs for MNIST / FC"."""
    if table[column].nunique() == 1:
        return counted(table[column], "epoch")
    return ", ".join(f"{counted(part[column], 'epoch')} for {setup}" for setup, part in table.groupby("setup"))


def _grid_text(pruned: pd.DataFrame) -> str:
    """"Rand, Mag at compression 0.5, 1", or per set-up where the set-ups ran different grids: "... for MNIST /
    FC; ... for CIFAR-10 / ResNet20" (the union of two grids would name runs that never ran)."""
    def grid(part: pd.DataFrame) -> str:
        pruners = column_order(pruner_name(p) for p in set(part["pruner"]))
        return f"{', '.join(pruners)} at compression {', '.join(f'{c:g}' for c in sorted(set(part['compression'])))}"
    per_setup = {setup: grid(part) for setup, part in pruned.groupby("setup")}
    if len(set(per_setup.values())) <= 1:
        return grid(pruned)
    return "; ".join(f"{text} for {setup}" for setup, text in per_setup.items())


def _seeds_text(table: pd.DataFrame) -> str:
    """"1, 2, 3 for MNIST / FC; 1 for CIFAR-10 / ResNet20": the seeds each set-up ran with."""
    per_setup = table.groupby("setup")["seed"].apply(lambda seeds: ", ".join(str(s) for s in sorted(set(seeds))))
    return "; ".join(f"{seeds} for {setup}" for setup, seeds in per_setup.items())


def hardware_markdown(env: dict) -> str:
    """The machine a record was measured on, as a two-column Markdown table."""
    units = " ".join(env.get("cpu_vector_units") or []) or None  # records made before they were kept: none
    name = env.get("device_name") if env.get("device_name") != env.get("cpu") else None  # a CPU: named once below
    rows = [("device", env.get("device")), ("device name", name), ("GPU driver", env.get("driver")),
            ("CUDA", env.get("cuda")), ("CPU", env.get("cpu")), ("CPU vector units", units),
            ("CPU threads", env.get("threads")), ("torch", env.get("torch")), ("prunelab", env.get("prunelab"))]
    return "\n".join(["| hardware | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows if v is not None])


def machine_caption(env: dict) -> str:
    """The machine a record's times come from, as a sentence for the caption of a timing table: the CPU model
    with its vector units and threads, and the GPU where the record ran on one (:func:`hardware_markdown`)."""
    units = " ".join(env.get("cpu_vector_units") or []) or "not recorded"
    cpu, threads = env.get("cpu") or "not recorded", env.get("threads") or "not recorded"
    text = f"Measured on the CPU {cpu} (vector units: {units}; threads: {threads})"
    if str(env.get("device")).startswith("cuda"):  # "cuda:0" as runs record it
        text += f" with the GPU {env.get('device_name')} (driver {env.get('driver') or 'not recorded'})"
    return text + "."


# ------------------------------------------------------------------------------------------ tables


def metric_table(table: pd.DataFrame, metric: str, index: str = "compression") -> pd.DataFrame:
    """The mean of ``metric`` over seeds, a row per ``index`` value and a column per pruner (for figures
    and findings; pages show :func:`accuracy_table`'s cells)."""
    pivot = table.pivot_table(index=index, columns="label", values=metric, aggfunc="mean")
    pivot = pivot[column_order(pivot.columns)]
    pivot.columns.name = None
    return pivot


def accuracy_table(table: pd.DataFrame, index: str = "compression", metric: str = "top1") -> pd.DataFrame:
    """``metric`` over seeds as "mean ± sd (n=k)" cells, a row per ``index`` value and a column per pruner."""
    cells = table.groupby([index, "label"])[metric].apply(lambda values: accuracy_cell(list(values)))
    frame = cells.unstack("label")
    frame = frame[column_order(frame.columns)]
    frame.columns.name = None
    return frame


def setup_row_label(setup: str, data_source: str, data: str) -> str:
    """A table row's name: the set-up and its data, a stand-in marked as the pipeline check it is."""
    if data_source == "synthetic":
        return f"{setup} (synthetic stand-in: pipeline check)"
    return f"{setup} ({data})"


def accuracy_at_compression(table: pd.DataFrame, compression: float = 1.0,
                            dense: pd.DataFrame | None = None) -> pd.DataFrame:
    """Top-1 at one compression over seeds: a row per data set / architecture, a column per pruner, and
    first the unpruned reference where ``dense`` (its runs' table) is given."""
    rows = table[np.isclose(table["compression"], compression)]
    if dense is not None and not dense.empty:
        used = ["setup", "data_source", "data", "label", "top1"]  # only these: pandas 2 warns on all-NA columns
        rows = pd.concat([dense[used], rows[used]], ignore_index=True)
    rows = rows.assign(row=[setup_row_label(*v) for v in zip(rows["setup"], rows["data_source"], rows["data"])])
    result = accuracy_table(rows, index="row")
    result.index.name = SETUP_LEVEL
    return result


def by_compression(table: pd.DataFrame, metric: str, setup: str | None = None) -> pd.DataFrame:
    """``metric`` per compression and pruner, a block of rows per set-up (all set-ups unless ``setup`` names
    one), each block named with its data: accuracy as mean ± sd (n) cells, other metrics as means over seeds."""
    rows = table if setup is None else table[table["setup"] == setup]
    result = setup_blocks(rows, lambda part: accuracy_table(part, metric=metric) if metric == "top1"
                          else metric_table(part, metric))
    return result[column_order(result.columns)]


def setup_blocks(rows: pd.DataFrame, block: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """The ``block`` table of each set-up's ``rows`` (a table by compression), stacked in the rows' order, each
    under its set-up's name and data (:func:`setup_row_label`); empty where there are no rows."""
    names = [setup_row_label(*v) for v in zip(rows["setup"], rows["data_source"], rows["data"])]
    blocks = []
    for name, part in rows.groupby(pd.Series(names, index=rows.index), sort=False):
        frame = block(part)
        frame.index = pd.MultiIndex.from_product([[name], frame.index], names=[SETUP_LEVEL, "Compression"])
        blocks.append(frame)
    return pd.concat(blocks) if blocks else pd.DataFrame()


FORMATS = {"top1": "{:.1f}", "flops": "{:,.0f}", "density": "{:.3g}"}


def styled(frame: pd.DataFrame, metric: str, caption: str):
    """A pandas Styler with the metric's number format (3 significant digits unless named in
    :data:`FORMATS`; text cells as they are), compressions as 0.25, a caption (renders in HTML), and the index's
    names in the header row (:func:`.table_headers.table_style`). What every cell or row repeats is said once in the
    caption instead (:func:`.table_notes.noted`)."""
    fmt = FORMATS.get(metric)
    frame, caption = noted(frame, caption)

    def number(value):
        if isinstance(value, str):
            return value
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "–"
        return fmt.format(value) if fmt else significant(float(value))

    styler = table_style(frame).format(number)
    if "compression" in frame.columns:  # a column of compressions reads 0.25, whatever the metric's format
        styler = styler.format(compression_text, subset=["compression"])
    return styler.format_index(_index_text).set_caption(caption).set_table_styles(
        [{"selector": "caption", "props": "caption-side: top; font-weight: bold; text-align: left;"}])


def _index_text(value) -> str:
    return compression_text(value) if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------ quantization

MEMORY_KINDS = {"cpu_peak_rss": "the process's peak resident set, CPU", "cuda_max_allocated": "peak of CUDA tensors"}
AMP_METRICS = {"peak_memory_mb": "Peak memory (MB)", "train_s": "Training time (s)", "top1": "Top-1 (%)"}


def own_peak_memory(kinds: Iterable[str]) -> bool:
    """Whether peaks of these ``peak_memory_kind``s are each run's own, to compare between precisions: CUDA's
    tensors; on a CPU the peak is the resident set of the process that trained the run, which counts all that process
    already held."""
    return set(kinds) == {"cuda_max_allocated"}


def peak_memory_heading(kinds: Iterable[str]) -> str:
    """Table J's peak memory heading: "Peak memory (MB)" where the peaks are each run's own
    (:func:`own_peak_memory`), else a heading that says what they are and that they are not compared."""
    kinds = set(kinds)
    if own_peak_memory(kinds):
        return "Peak memory (MB)"
    return ("Process peak RSS (MB), not compared" if kinds == {"cpu_peak_rss"} else
            "Peak memory (MB), not compared")


def precision_label(row) -> str:
    """"AMP bf16", "fp32", or "fp32, CUDA graph" for a run whose training steps replayed a CUDA graph (mixed
    precision never does), so that a time column never passes two step designs off as two precisions; a run
    trained in a fused group says so ("fp32, fused (18 runs)"): its peak memory is the group's."""
    step = str(row.get("train_step") or "")
    if row["amp"]:
        label = f"AMP {row['amp_dtype']}"
    else:
        label = "fp32, CUDA graph" if step == "cuda graph" else "fp32"
    return f"{label}, {step.removesuffix(', cuda graph')}" if step.startswith("fused") else label


def amp_table(table: pd.DataFrame) -> pd.DataFrame:
    """Task 4's table as the course lays it out: a row per compression, and peak memory, training time
    and top-1 each with and without mixed precision."""
    t = table.assign(precision=table.apply(precision_label, axis=1))
    pivot = t.pivot_table(index="compression", columns="precision", values=list(AMP_METRICS), aggfunc="first")
    order = sorted(p for p in set(t["precision"]) if p.startswith("AMP")) + sorted(
        p for p in set(t["precision"]) if p.startswith("fp32"))
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


def int8_table(records: Iterable[RunRecord]) -> pd.DataFrame:
    """int8 records by setup and compression: accuracy, test-set inference time and size on disk against fp32.

    A setup measured on synthetic stand-in data says so in its label (and in "stand-in"); "int8 path" names the
    quantization path that made the int8 model (torchao's PT2E, or the deprecated torch.ao fallback and why), "int8
    method" and "fp32 method" how each side of "speedup" ran (:func:`int8_sides` in words). "fp32 compiled" is the
    fp32 model compiled as PT2E's int8 graph is, and "speedup over compiled" int8's speed-up over it: NaN (no passes)
    where it was not timed, why read from "int8 method" and "int8 fallback", "fp32 compiled error" (None: not
    recorded) and "fp32 compiled recorded" (False: the record predates it). Each "timing" holds a
    :class:`~prunelab.core.timing.Timing` with its passes, for judging two sides apart."""
    rows = []
    for record in records:
        s, config = record.summary, record.config
        setup = setup_label(config["dataset"], config["model"]) + (" (SYNTHETIC stand-in)" if s["stand_in"] else "")
        recorded = f"{FP32_COMPILED}_s" in s  # a record older than the compiled side has none of its fields
        compiled = Timing.from_summary(s, FP32_COMPILED) if recorded else Timing.of(())
        rows.append({
            "setup": setup, "compression": config["compression"], "stand-in": bool(s["stand_in"]),
            "kept weights": s["kept_weights"] / s["total_weights"],
            "int8 path": s.get("int8_path", "torch.ao (recorded before PT2E)"),
            # which way each side ran; a record older than "fp32_method" ran its fp32 model eagerly as well
            "int8 method": s.get("int8_method", "torch.ao"), "fp32 method": s.get("fp32_method", FP32_METHOD),
            "int8 fallback": s.get("int8_fallback"), "fp32 compiled error": s.get("fp32_compiled_error"),
            "fp32 compiled recorded": recorded,
            "fp32 top-1 (%)": s["fp32_top1"], "int8 top-1 (%)": s["int8_top1"], "drop (points)": s["top1_drop"],
            "test images": s.get("test_examples"),  # None where a record does not say how many
            "fp32 inference (ms)": 1e3 * s["fp32_inference_s"], "int8 inference (ms)": 1e3 * s["int8_inference_s"],
            "fp32 inference spread (ms)": 1e3 * s.get("fp32_inference_spread_s", np.nan),
            "int8 inference spread (ms)": 1e3 * s.get("int8_inference_spread_s", np.nan),
            "fp32 compiled inference (ms)": 1e3 * compiled.median,
            "fp32 compiled inference spread (ms)": 1e3 * compiled.spread,
            "fp32 timing": Timing.from_summary(s, "fp32_inference"),
            "int8 timing": Timing.from_summary(s, "int8_inference"), "fp32 compiled timing": compiled,
            "timing repeats": s.get("timing_repeats"),
            "speedup": s["speedup"], "speedup over compiled": s.get("speedup_over_compiled", np.nan),
            "fp32 dense (KB)": s["fp32_dense_bytes"] / 1024,
            "fp32 sparse (KB)": s["fp32_sparse_bytes"] / 1024, "int8 (KB)": s["int8_bytes"] / 1024,
            "pruned weights zero in int8": s["pruned_weights_zero"],
        })
    return pd.DataFrame(rows).set_index(["setup", "compression"]).sort_index()


#: how an int8 / fp32 model of the int8 records ran, in words, by its record's ``int8_method`` / ``fp32_method``
INT8_METHODS = {"pt2e": "compiled by PT2E", "eager": "by torch.ao's eager mode", "fx": "by torch.ao's FX graph mode",
                "torch.ao": "by torch.ao"}
FP32_METHODS = {"eager": "run eagerly", "compiled": "compiled"}
COMPILED = {"pt2e", "compiled"}


def int8_sides(int8: pd.DataFrame) -> str:
    """What the int8 speed-up over eager fp32 ("speedup" of these rows, :func:`int8_table`) compares, from their
    records' methods: "int8 compiled by PT2E against fp32 run eagerly", and where only the int8 side was compiled,
    that the ratio holds what compiling fuses as well as the int8 kernels (the speed-up over compiled fp32 does
    not)."""
    int8_ways, fp32_ways = set(int8["int8 method"]), set(int8["fp32 method"])
    text = (f"int8 {' or '.join(sorted(INT8_METHODS.get(m, m) for m in int8_ways))} against fp32 "
            f"{' or '.join(sorted(FP32_METHODS.get(m, m) for m in fp32_ways))}")
    if int8_ways & COMPILED and not fp32_ways & COMPILED:
        text += ", so the ratio holds what compiling fuses as well as the int8 kernels"
    return text


# --------------------------------------------------------------------------------------- multishot


def multishot_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The multishot records among ``table``'s rows (``load_table``'s), each with its ``column`` (pruner and
    number of prune-train cycles) and ``remaining`` (the fraction of prunable weights kept)."""
    rows = table[table["experiment"] == "multishot"]
    if rows.empty:  # a table of other experiments may have no levels column at all
        return rows.assign(column=[], remaining=[])
    levels = rows["levels"].astype(int)
    column = [f"{pruner_name(p)}, {n} cycle{'s' if n != 1 else ''}" for p, n in zip(rows["pruner"], levels)]
    return rows.assign(column=column, remaining=rows["prunable_density"].round(6))


def multishot_table(table: pd.DataFrame) -> pd.DataFrame:
    """Multishot records (``load_table``'s rows): test top-1 as "mean ± sd (n=k)" over seeds against the
    fraction of prunable weights remaining, a column per pruner and number of prune-train cycles."""
    runs = multishot_runs(table)
    if runs.empty:
        return pd.DataFrame()
    cells = runs.groupby(["remaining", "column"])["top1"].apply(lambda values: accuracy_cell(list(values)))
    frame = cells.unstack("column")
    frame.index.name, frame.columns.name = "weights remaining", None
    return frame.sort_index(ascending=False)
