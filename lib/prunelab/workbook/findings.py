"""The findings under each notebook: Markdown sentences formatted from the tables, never written in advance."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..core.choices import SYNFLOW_ROUNDS
from .numbers import ALPHA, accuracy_cell, compare_means, compression_text, significant, time_cell, times_differ
from .style import column_order, pruner_label
from .tables import CONSTANT_PREDICTION_MARGIN, amp_ratios, collapse_table


def tuning_findings(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> str:
    """Markdown findings for Task 1, every figure taken from ``table`` (and the unpruned reference runs in
    ``dense``); a pruner is called better than another only where Welch's t-test over seeds says so, and
    stand-in set-ups give no conclusions."""
    lines = []
    for setup, rows in (dense.groupby("setup", sort=False) if dense is not None and not dense.empty else []):
        if not rows["stand_in"].any():
            lines.append(f"- Unpruned, {setup} reaches {accuracy_cell(list(rows['top1']))} top-1 "
                         f"({rows['data'].iloc[0]}, {int(rows['post_epochs'].iloc[0])} epochs): the reference "
                         "every pruner below is measured against.")
    for setup, rows in table.groupby("setup", sort=False):
        if rows["stand_in"].any():
            lines.append(f"- {setup} ran on synthetic stand-in data: a pipeline check. Its numbers show the code "
                         "runs end to end; no conclusion is drawn from them.")
            continue
        for compression, at in rows.groupby("compression"):
            lines.append(_pruner_ranking(setup, at["data"].iloc[0], compression, at))
    lines += _collapse_lines(table)
    return "\n".join(lines)


def _pruner_ranking(setup: str, data: str, compression: float, rows: pd.DataFrame) -> str:
    """The pruner with the best mean top-1 at one compression, and how it compares with each other one."""
    seeds = {label: list(group["top1"]) for label, group in rows.groupby("label")}
    means = {label: sum(v) / len(v) for label, v in seeds.items()}
    best = max(means, key=means.get)
    head = (f"- **{setup}** at compression {compression_text(compression)} (kept {10 ** -compression:.1%}; {data}): "
            f"{best} has the highest mean top-1, {accuracy_cell(seeds[best])}.")
    beaten, tied = [], []
    for label in column_order(seeds):
        if label == best:
            continue
        comparison = compare_means(seeds[best], seeds[label])
        (beaten if comparison.significant else tied).append((label, comparison))
    parts = [head]
    if beaten:
        parts.append(" It is better than " + ", ".join(
            f"{label} ({accuracy_cell(seeds[label])}, p {_p(c.p_value)})" for label, c in beaten)
            + f" by Welch's t-test at the {ALPHA:g} level.")
    if tied:
        untestable = [label for label, c in tied if not c.testable]
        testable = [(label, c) for label, c in tied if c.testable]
        if testable:
            parts.append(" It cannot be told apart from " + ", ".join(
                f"{label} ({accuracy_cell(seeds[label])}, p {_p(c.p_value)})" for label, c in testable)
                + " at this n.")
        if untestable:
            parts.append(f" With fewer than two seeds, {', '.join(untestable)} cannot be told apart from it "
                         "at this n.")
    return "".join(parts)


def _p(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"= {p_value:.3f}"


def _collapse_lines(table: pd.DataFrame) -> list[str]:
    collapsed = collapse_table(table)
    if collapsed.empty:
        return ["- No run collapsed: every layer kept weights and every accuracy is above a constant prediction."]
    lines = []
    real = collapsed[~collapsed["stand_in"]]
    structural = real[real["layers with no weights"] != "none"]
    for row in structural.to_dict("records"):
        lines.append(f"- **Collapse**: {row['pruner']} on {row['Data / Arch']} at compression "
                     f"{compression_text(row['compression'])} emptied `{row['layers with no weights']}` in "
                     f"{row['collapsed runs']} runs and scored {row['top-1 (%)']} (always answering the most "
                     f"frequent class scores {row['most frequent class (%)']:.1f}%).")
    constant_only = len(real) - len(structural)
    if constant_only:
        lines.append(f"- {constant_only} further pruner and compression cell(s) predict no better than the most "
                     "frequent class without an emptied layer: too little training for this profile, not a "
                     "pruning failure.")
    if (structural["pruner"] == "SynFlow (1 round)").any():
        lines.append(f"- SynFlow's paper prunes over {SYNFLOW_ROUNDS} rounds; with one round the largest layer "
                     "(the first) gets the smallest scores per weight and is emptied. Compare the "
                     f"{SYNFLOW_ROUNDS}-round column.")
    if len(collapsed) > len(real):
        lines.append(f"- {len(collapsed) - len(real)} collapsed cell(s) are on synthetic stand-in data and are "
                     "listed in the table above only as pipeline checks.")
    return lines


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
        f"- The traced step took {significant(trace['step_span_ms'])} ms from first to last {unit[:-1]} "
        f"({significant(trace['step_busy_ms'])} ms busy). Its {trace['conv_layers']} convolution layers account "
        f"for {significant(trace['conv_ms'])} ms, **{trace['conv_share']:.1%}** of the busy time (one step: the "
        "shares are what the picture shows, not a timing to compare).",
        f"- The main time sink is **{trace['main_sink']}**."
        + (" Convolutions dominate; with pruned weights still stored densely, a sparse or structured kernel "
           "(or channel pruning) is what would cut this time, not more unstructured sparsity."
           if trace["main_sink"] == "convolution" else
           " It is not the convolutions: per-op overhead dominates this small network, which kernel fusion "
           "(conv + batchnorm folding, torch.compile) or CUDA graphs attack."),
        f"- The original design multiplies every mask in every forward: {int(original['units'])} {unit} against "
        f"{int(ours['units'])} in the traced step, {original['mask multiply share']:.1%} of its busy time in mask "
        "multiplies. The outputs are "
        + ("identical." if trace.get("outputs_equal_to_original_design") else "NOT identical: investigate."),
        "- " + design_speed_words(designs),
    ]
    return "\n".join(lines)


def design_speed_words(designs: pd.DataFrame) -> str:
    """Which design is faster, from the repeated interleaved steps, claimed only beyond their spread."""
    if "step median (ms)" not in designs:
        return ("One traced step cannot tell which design is faster (one step's time is noise); this record "
                "has no repeated steps.")
    original, ours = designs.iloc[0], designs.iloc[1]
    a, b = original["step median (ms)"], ours["step median (ms)"]
    spread_a, spread_b = original["step spread (ms)"], ours["step spread (ms)"]
    n = int(min(original["timed steps"], ours["timed steps"]))
    cells = f"{time_cell(a, spread_a, 'ms')} in the original design against {time_cell(b, spread_b, 'ms')} folded"
    how = f"over {n} steps of each taken in turn (median ± half the range)"
    if not times_differ(a, spread_a, b, spread_b):
        return (f"Step time {how}: {cells}; the {abs(a - b):.3g} ms gap is within the spread of the repeats "
                "(noise), so neither design is measurably faster on this batch and device.")
    faster = "folded masks" if b < a else "the original design"
    return (f"Step time {how}: {cells}; **{faster}** is faster ({max(a, b) / min(a, b):.2f}x), a gap larger "
            "than the spread of the repeats.")


def amp_time_words(timing: pd.DataFrame) -> str:
    """Mixed precision against fp32 training time per compression, from passes taken in turn."""
    parts = []
    for compression, r in timing.iterrows():
        ratio = r["amp_train_s"] / r["fp32_train_s"]
        if times_differ(r["amp_train_s"], r["amp_train_spread_s"], r["fp32_train_s"], r["fp32_train_spread_s"]):
            verdict = f"**{ratio:.2f}x** fp32's time ({'faster' if ratio < 1 else 'slower'}, beyond the spread)"
        else:
            verdict = f"{ratio:.2f}x fp32's time, within the spread (noise: no measurable difference)"
        parts.append(f"at compression {compression:g} {time_cell(r['amp_train_s'], r['amp_train_spread_s'])} "
                     f"against {time_cell(r['fp32_train_s'], r['fp32_train_spread_s'])}, {verdict}")
    first = timing.iloc[0]
    steps = f"{int(first['batches'])} training step{'s' if int(first['batches']) != 1 else ''}"
    return (f"Mixed precision ({first['amp_dtype']}) against fp32 training, {steps} of {int(first['batch_size'])} "
            f"images per pass, the median of {int(timing['fp32_train_repeats'].min())} passes of each taken in turn "
            f"± half their range: {'; '.join(parts)}.")


def amp_time_summary(timing: pd.DataFrame) -> str:
    """One clause for the front page: the range of AMP / fp32 time ratios and at how many compressions the
    difference exceeds the spread (the per-compression figures are in the findings)."""
    ratios = timing["amp_train_s"] / timing["fp32_train_s"]
    beyond = sum(times_differ(r["amp_train_s"], r["amp_train_spread_s"], r["fp32_train_s"], r["fp32_train_spread_s"])
                 for _, r in timing.iterrows())
    return (f"training time {_span(ratios, '{:.2f}')}x fp32's, beyond the spread of passes taken in turn at "
            f"{beyond} of {len(timing)} compressions")


def int8_beyond_spread(part: pd.DataFrame) -> str:
    """"k of n runs differ beyond the spread" for rows of the int8 table (old records: no spread)."""
    if "fp32 inference spread (ms)" not in part or part["fp32 inference spread (ms)"].isna().any():
        return "no spread recorded, so no difference is claimed"
    real = sum(times_differ(r["int8 inference (ms)"], r["int8 inference spread (ms)"], r["fp32 inference (ms)"],
                            r["fp32 inference spread (ms)"]) for _, r in part.iterrows())
    return f"{real} of {len(part)} runs differing by more than the spread (the rest: noise)"


def _span(values: pd.Series, fmt: str) -> str:
    """"a to b" of a series' smallest and largest value, or one value when they print the same."""
    low, high = fmt.format(values.min() + 0.0), fmt.format(values.max() + 0.0)  # + 0.0: no "-0.00"
    return low if low == high else f"{low} to {high}"


def quantization_findings(table: pd.DataFrame, int8: pd.DataFrame, timing: pd.DataFrame | None = None) -> str:
    """Markdown discussion of Task 4: each sentence formatted from the AMP records, their interleaved
    training times (``timing``: :func:`.measurement_tables.amp_timing_frame`) and the int8 table. A time
    difference is called one only when it exceeds the larger spread of the repeats."""
    ratios = amp_ratios(table)
    amp_rows = table[table["amp"]]
    dtype = ", ".join(sorted(set(amp_rows["amp_dtype"])))
    devices = ", ".join(sorted(set(table["device_name"].dropna())))
    on_cuda = bool(table["peak_memory_kind"].eq("cuda_max_allocated").all())
    model, params = table["model"].iloc[0], table["params_total"].iloc[0]
    times, memory = ratios["time AMP / fp32"], ratios["memory AMP / fp32"]
    acc = ratios["top-1 AMP - fp32 (points)"]
    graphed = "train_step" in table and bool(table.loc[~table["amp"], "train_step"].eq("cuda graph").any())
    fused = "train_step" in table and bool(table["train_step"].astype(str).str.startswith("fused").any())
    memory_words = (f"peak memory was {_span(memory, '{:.2f}x')} fp32's"
                    + (" (the fp32 runs replayed a CUDA graph of their training step, which keeps the step's "
                       "activations in memory of its own, and mixed precision took ordinary steps: this ratio "
                       "compares step designs as well as precisions)" if graphed else "")
                    + (" (runs trained in a fused group, as the labels say, report their group's peak memory: "
                       "this ratio compares group sizes as well as precisions)" if fused else "")
                    + ", across compressions "
                    f"{', '.join(f'{c:g}' for c in ratios.index)}; top-1 moved by {_span(acc, '{:+.1f}')} points "
                    f"({dtype} rounding sends the two trainings down different paths: with one seed per cell, a "
                    "difference in top-1 says little until more seeds repeat it).")
    if timing is not None and not timing.empty:
        lines = ["- " + amp_time_words(timing) + " Against fp32, " + memory_words]
        real = [times_differ(r.amp_train_s, r.amp_train_spread_s, r.fp32_train_s, r.fp32_train_spread_s)
                for r in timing.itertuples()]
        ratio = timing["amp_train_s"] / timing["fp32_train_s"]
        gain = bool(all(real) and (ratio < 0.9).all())
    else:
        lines = [f"- With mixed precision ({dtype} on {devices}) training took **{_span(times, '{:.2f}x')}** the "
                 "fp32 time and " + memory_words + " Those times are totals of separate runs, not timed in turn, "
                 "so they are not a measured difference."]
        if graphed:
            lines[-1] += " The time ratio, too, compares step designs as well as precisions."
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
            f"{setup}: **{_span(part['speedup'], '{:.2f}x')}** as fast, {int8_beyond_spread(part)}, top-1 changed "
            f"by {_span(-part['drop (points)'], '{:+.1f}')} points" for setup, part in int8.groupby(level="setup"))
        lines.append(
            f"- int8 post-training quantization against fp32 test-set inference on the CPU (medians of passes "
            f"taken in turn): {per_setup}. Every pruned weight "
            + ("stayed exactly zero." if int8["pruned weights zero in int8"].all()
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


def sparse_findings(sparse: pd.DataFrame, layers: pd.DataFrame) -> str:
    """Markdown findings on sparse kernels, from the sparse records: how much faster, which layers switched
    and why, and whether a difference is larger than the passes' own spread."""
    lines = []
    for setup, rows in sparse.groupby("setup", sort=False):
        columns = ["dense_inference_s", "dense_inference_spread_s", "sparse_inference_s", "sparse_inference_spread_s"]
        real = pd.Series([times_differ(*values) for values in rows[columns].itertuples(index=False)])
        lines.append(
            f"- {setup}: on sparse kernels the test set ran **{_span(rows['speedup'], '{:.2f}x')}** as fast as on "
            f"dense kernels (kept fraction {_span(rows['kept'], '{:.3g}')}; medians of "
            f"{int(rows['timing_repeats'].min())} passes taken in turn); {int(real.sum())} of {len(rows)} runs differ "
            "by more than the passes' spread, the rest are the same speed within noise.")
        part = layers[layers["setup"] == setup]
        switched = part[part["kernel"] != "dense"]
        dead = int(rows["dead_units"].sum())
        if len(switched):
            kinds = ", ".join(f"{k} ({n})" for k, n in switched["kernel"].value_counts().items())
            lines.append(
                f"  {len(switched)} layer choices switched ({kinds}); those layers kept "
                f"{_span(switched['density'], '{:.3g}')} of their weights, against "
                f"{_span(part.loc[part['kernel'] == 'dense', 'density'], '{:.3g}')} in the layers that stayed dense: "
                "a sparse kernel skips the zeros but reads an index per weight and runs far below the dense kernels' "
                "rate, so it wins only where few weights are left.")
        else:
            lines.append(
                f"  No layer switched: at these densities ({_span(part['density'], '{:.3g}')} of each layer's weights "
                "kept) every dense kernel was at least as fast as its sparse candidates, which pay only at much "
                "lower density (see `bench/sparse.py`).")
        if dead:
            lines.append(f"  {dead} dead units (neurons or channels with no kept weight in or out) were removed, which "
                         "narrows the dense layers themselves; where a run is faster without a switched layer, that "
                         "is where its time went.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ where pruners collapse


@dataclass(frozen=True)
class Survival:
    """How far one pruner goes on one set-up before its networks stop learning.

    ``survives_to``: the highest studied compression up to which (inclusive) every seed's top-1 stays above
    chance at every studied compression (None: already at chance at the lowest). ``first_at_chance``: the
    lowest compression where a seed falls to chance. ``first_emptied``: the lowest compression where a seed's
    pruned network has a layer with no weight left (layer collapse). Chance is always answering the most
    frequent test class, plus :data:`CONSTANT_PREDICTION_MARGIN` points.
    """

    setup: str
    label: str
    survives_to: float | None
    first_at_chance: float | None
    first_emptied: float | None


def collapse_study(table: pd.DataFrame) -> list[Survival]:
    """A :class:`Survival` per set-up on real data and pruner label, set-ups and pruners in table order."""
    real = table[~table["stand_in"].astype(bool)]
    survivals = []
    for (setup, label), rows in real.groupby(["setup", "label"], sort=False):
        above, emptied = {}, {}
        for compression, at in rows.groupby("compression"):
            chance = at["majority_class_top1"] + CONSTANT_PREDICTION_MARGIN
            above[compression] = bool((at["top1"] > chance).all())
            emptied[compression] = any(bool(layers) for layers in at["collapsed_layers"] if layers is not None)
        ordered = sorted(above)
        failing = [c for c in ordered if not above[c]]
        first_at_chance = failing[0] if failing else None
        survives = [c for c in ordered if first_at_chance is None or c < first_at_chance]
        survivals.append(Survival(setup, label, survives[-1] if survives else None, first_at_chance,
                                  next((c for c in ordered if emptied[c]), None)))
    return survivals


@dataclass(frozen=True)
class SynflowClaim:
    """The SynFlow paper's claim on one set-up: iterative SynFlow avoids layer collapse up to the highest
    compression, while SNIP and GraSP collapse earlier. ``synflow_survives``: SynFlow with its paper's rounds
    stays above chance at every studied compression, up to ``highest``; ``earlier``: the gradient pruners that
    fall to chance at a lower compression than SynFlow does; ``not_earlier``: those that do not."""

    setup: str
    highest: float
    synflow_survives: bool
    earlier: tuple[str, ...]
    not_earlier: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.synflow_survives and not self.not_earlier


def synflow_claim(table: pd.DataFrame, survivals: list[Survival]) -> list[SynflowClaim]:
    """Check the claim on each real set-up that ran SynFlow with its paper's rounds and SNIP or GraSP."""
    synflow, gradient = pruner_label("synflow", None), [pruner_label(p, None) for p in ("snip", "grasp")]
    claims = []
    for setup in dict.fromkeys(s.setup for s in survivals):
        by_label = {s.label: s for s in survivals if s.setup == setup}
        if synflow not in by_label or not any(g in by_label for g in gradient):
            continue
        highest = float(table.loc[table["setup"] == setup, "compression"].max())
        reach = by_label[synflow].first_at_chance  # None: SynFlow never reaches chance
        earlier = tuple(g for g in gradient if g in by_label and by_label[g].first_at_chance is not None
                        and (reach is None or by_label[g].first_at_chance < reach))
        not_earlier = tuple(g for g in gradient if g in by_label and g not in earlier)
        claims.append(SynflowClaim(setup, highest, reach is None, earlier, not_earlier))
    return claims


def collapse_study_findings(table: pd.DataFrame) -> str:
    """Markdown: per real set-up studied at several compressions, how far each pruner stays above chance and
    where a layer first empties, then whether the data agree with the SynFlow paper's claim."""
    table = table[table.groupby("setup")["compression"].transform("nunique") > 1]
    survivals = collapse_study(table)
    if not survivals:
        return "- No set-up on real data was run at more than one compression: nothing to say about collapse."
    claims = synflow_claim(table, survivals)
    return "\n".join([_survival_line(s) for s in survivals] + [_claim_line(c) for c in claims])


def _survival_line(s: Survival) -> str:
    if s.survives_to is None:
        reach = f"is at chance already at compression {compression_text(s.first_at_chance)}"
    elif s.first_at_chance is None:
        reach = (f"stays above chance on every seed at every compression studied, up to "
                 f"{compression_text(s.survives_to)} ({10 ** -s.survives_to:.2%} of the weights kept)")
    else:
        reach = (f"stays above chance on every seed up to compression {compression_text(s.survives_to)} and "
                 f"falls to chance at {compression_text(s.first_at_chance)}")
    emptied = ("; no layer empties" if s.first_emptied is None else
               f"; a layer first empties at {compression_text(s.first_emptied)}")
    return f"- **{s.label}** on {s.setup} {reach}{emptied}."


def _claim_line(c: SynflowClaim) -> str:
    synflow = pruner_label("synflow", None)
    head = f"- **The SynFlow paper's claim on {c.setup}**: "
    if c.agrees:
        return head + (f"the data agree. {synflow} stays above chance up to compression {compression_text(c.highest)}, "
                       f"while {' and '.join(c.earlier)} fall to chance earlier.")
    reach = (f"stays above chance up to compression {compression_text(c.highest)}" if c.synflow_survives
             else "itself falls to chance within the studied range")
    parts = [f"{synflow} {reach}"]
    if c.earlier:
        parts.append(f"{' and '.join(c.earlier)} fall to chance before it does")
    if c.not_earlier:
        parts.append(f"{' and '.join(c.not_earlier)} do not fall to chance before it does")
    return head + "the data do not fully agree: " + "; ".join(parts) + "."
