"""Tables C and C2 and the frames behind the sparse-kernel findings: each run's test-set time on dense kernels
against the sparse kernels chosen per layer (its ``sparse`` record), and whether a rank test of the passes tells
the two apart (:func:`kernels_differ`, the one judgement Tables C and C2, Figure 1b and the findings share).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import pandas as pd

from ..core.timing import Timing, timings_differ
from ..data.catalog import source_words
from ..errors import UserError
from ..runs.store import RunRecord
from .grids import setup_label
from .numbers import time_cell
from .style import column_order, pruner_label
from .tables import setup_blocks


def kernels_differ(sparse: pd.DataFrame) -> pd.Series:
    """Per run of the sparse table, whether a rank test of its passes tells its dense-kernel and sparse-kernel
    times apart (:func:`prunelab.core.timing.timings_differ`)."""
    pairs = [(Timing.from_summary(row, "dense_inference"), Timing.from_summary(row, "sparse_inference"))
             for _, row in sparse.iterrows()]
    return pd.Series([timings_differ(*pair) for pair in pairs], index=sparse.index, dtype=bool)


def sparse_table(records: Iterable[RunRecord], sparse_records: Iterable[RunRecord]) -> pd.DataFrame:
    """A row per run: its pruner label and compression, the kept fraction of weights and of FLOPs, its top-1
    and the most frequent class's share, and the dense and sparse-kernel test-set times (medians with their
    spreads and passes) of its sparse record."""
    rows = []
    for record, sparse in zip(records, sparse_records, strict=True):
        s, config = sparse.summary, record.config
        rows.append({
            "setup": setup_label(config["dataset"], config["model"]), "compression": config["compression"],
            "label": pruner_label(config["pruner"], config.get("prune_epochs")),
            "kept": record.summary["prunable_density"], "flop_density": record.summary["flop_density"],
            "top1": record.summary["top1"], "majority_class_top1": record.summary.get("majority_class_top1"),
            **{k: s[k] for k in ("dense_inference_s", "dense_inference_spread_s", "dense_inference_samples_s",
                                 "sparse_inference_s", "sparse_inference_spread_s", "sparse_inference_samples_s",
                                 "speedup", "dead_units", "layers", "timing_repeats")},
            "switched": len(s["switched_layers"]), "stand_in": s["stand_in"], "device": s["device"],
            "data_source": s["data_source"], "data": source_words(config["dataset"], s["data_source"]),
        })
    return pd.DataFrame(rows)


def sparse_layer_frame(records: Iterable[RunRecord], sparse_records: Iterable[RunRecord]) -> pd.DataFrame:
    """Every layer's kernel choice in every sparse record, with the run's setup, pruner and compression."""
    frames = []
    for record, sparse in zip(records, sparse_records, strict=True):
        layers = pd.read_csv(sparse.path / "layers.csv")
        config = record.config
        frames.append(layers.assign(setup=setup_label(config["dataset"], config["model"]),
                                    label=pruner_label(config["pruner"], config.get("prune_epochs")),
                                    compression=config["compression"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


#: the kernels a sparse record times, each a table: Table C's, then Table C2's
KERNELS = ("dense", "sparse")


def inference_time_table(sparse: pd.DataFrame, kernels: Literal["dense", "sparse"]) -> pd.DataFrame:
    """Table C (``kernels`` "dense") or C2 ("sparse"): test-set inference time (ms) per compression and pruner on
    those kernels, laid out as Table B (a block of rows per set-up, named with its data; a column per pruner),
    each cell "median ± half the range" of passes taken in turn with the other kernels' (so the two tables
    compare cell by cell), in bold where a rank test tells the pair apart and these kernels are the faster."""
    if kernels not in KERNELS:
        raise UserError(f"kernels are {' or '.join(KERNELS)}, not {kernels!r}")
    if sparse.empty:
        return pd.DataFrame()
    (other,) = set(KERNELS) - {kernels}
    metric, other = f"{kernels}_inference_s", f"{other}_inference_s"
    spreads = sparse[f"{kernels}_inference_spread_s"]
    cells = [time_cell(m * 1e3, s * 1e3, unit="") for m, s in zip(sparse[metric], spreads)]
    faster = kernels_differ(sparse).to_numpy() & (sparse[metric] < sparse[other]).to_numpy()
    rows = sparse.assign(cell=[f"<b>{cell}</b>" if bold else cell for cell, bold in zip(cells, faster)])
    frame = setup_blocks(rows, lambda part: part.pivot_table(index="compression", columns="label", values="cell",
                                                             aggfunc="first"))
    frame = frame.reindex(columns=column_order(rows["label"]))
    frame.columns.name = None  # as Table B's: no "label" heading
    return frame
