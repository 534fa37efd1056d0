"""Each task's result in one paragraph, for the front page: what a reader would quote, with its spread and
the data it came from, and nothing claimed that the numbers do not support."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .findings import amp_time_summary
from .numbers import accuracy_cell, compare_means, compression_text, significant
from .tables import amp_ratios, collapse_table


def tuning_key_result(table: pd.DataFrame, compression: float = 1.0, dense: pd.DataFrame | None = None) -> str:
    """Task 1's result in one paragraph for the front page: per set-up on real data, the unpruned reference
    (from ``dense``), the best pruner at ``compression`` and whether the runner-up can be told apart from
    it, and any collapse."""
    parts = []
    references = {setup: list(rows["top1"]) for setup, rows in dense.groupby("setup")} if dense is not None else {}
    for setup, rows in table.groupby("setup", sort=False):
        rows = rows[np.isclose(rows["compression"], compression)]
        if rows.empty or rows["stand_in"].any():
            continue
        seeds = {label: list(group["top1"]) for label, group in rows.groupby("label")}
        ranked = sorted(seeds, key=lambda label: -sum(seeds[label]) / len(seeds[label]))
        best = ranked[0]
        text = f"**{setup}** ({rows['data'].iloc[0]})"
        if setup in references:
            text += f": unpruned {accuracy_cell(references[setup])} top-1"
        text += (f"; at compression {compression_text(compression)} the best mean top-1 is {best}'s, "
                 f"{accuracy_cell(seeds[best])}")
        if len(ranked) > 1:
            second = ranked[1]
            comparison = compare_means(seeds[best], seeds[second])
            text += (f", ahead of {second} ({accuracy_cell(seeds[second])})" if comparison.significant else
                     f", not told apart from {second} ({accuracy_cell(seeds[second])}) at this n")
        collapsed = collapse_table(rows)
        collapsed = collapsed[collapsed["layers with no weights"] != "none"]
        if not collapsed.empty:
            text += "; collapsed (a layer emptied): " + ", ".join(
                f"{r['pruner']} at {r['top-1 (%)']}" for r in collapsed.to_dict("records"))
        parts.append(text + ".")
    if not parts:
        return "Every run here used synthetic stand-in data: a pipeline check, with no result to quote."
    stand_in = sorted(set(table.loc[table["stand_in"], "setup"]))
    if stand_in:
        parts.append(f"{', '.join(stand_in)}: synthetic stand-in data, a pipeline check only.")
    return " ".join(parts)


def trace_key_result(trace: dict, data: str) -> str:
    """Task 2: where the traced inference step's time goes."""
    return (f"One traced inference step ({data}): its {trace['conv_layers']} convolution layers take "
            f"{significant(trace['conv_ms'])} ms of {significant(trace['step_busy_ms'])} ms busy time "
            f"(**{trace['conv_share']:.1%}**); the main time sink is {trace['main_sink']}.")


def quantization_key_result(table: pd.DataFrame, timing: pd.DataFrame) -> str:
    """Task 4: what mixed precision does to peak memory and training time, the time judged against the
    spread of passes taken in turn."""
    memory = amp_ratios(table)["memory AMP / fp32"]
    data = "; ".join(sorted(set(table["data"])))
    low, high = significant(memory.min()), significant(memory.max())
    span = low if low == high else f"{low} to {high}"
    dtype = ", ".join(sorted(set(table.loc[table["amp"], "amp_dtype"])))
    time = f"; {amp_time_summary(timing)}" if len(timing) else ""
    return f"Mixed precision ({dtype}; {data}): peak memory {span}x fp32's{time}."
