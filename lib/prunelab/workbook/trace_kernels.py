"""What would cut a traced step's convolution time (Task 2's main time sink), with what Task 1's sparse kernels
measured on the traced run's set-up: the store's ``sparse`` records of runs on the same data set, model and device
(Tables C and C2), counted as Task 1's findings count them (:func:`.sparse_speed.sparse_count`). Numbers first, as a
frozen dataclass; then words.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.timing import can_differ
from ..runs.sparse import EXPERIMENT
from ..runs.store import RunRecord, is_complete, iter_records, load_record
from .numbers import Span, counted, listed, ratio_text
from .sparse_speed import KERNEL_WORDS, SparseCount, sparse_count
from .sparse_tables import same_model, sparse_table
from .style import pruner_label

#: why the convolutions' work stays what it is at any compression in a run that masks its weights
CONV_WORK = ("The convolutions' work does not shrink with compression here: pruned weights are zeros inside dense "
             "tensors, which the dense kernels still multiply")
#: what would cut it: a proposal (no channel-pruned model is traced or timed here)
CONV_FIX = ("removing whole channels (structured pruning, which leaves narrower convolutions, still dense) or sparse "
            "kernels, which pay only where few weights are left")
#: where no sparse record of the set-up is in the store
NOT_MEASURED = "Task 1's Tables C and C2 time sparse kernels against dense ones on this machine, run by run"


def setup_sparse_table(record: RunRecord) -> pd.DataFrame:
    """The sparse table (:func:`.sparse_tables.sparse_table`, Tables C and C2's rows) of the ``sparse`` records in
    ``record``'s result store made from runs on its data set and model, timed on its device, one per run (the last in
    folder order), with ``kernels``: the sparse kernels its layers went on; ``traced``: whether the run is ``record``'s
    pruner and compression. Empty where the store has none (Task 1 not run into it)."""
    root, config = record.path.parent.parent, record.config
    pairs = {}
    # the sparse records alone (a store's other files go unread); one failing verification is left out, as
    # the store's table leaves it
    for sparse in iter_records(root, {}, EXPERIMENT):
        c, s = sparse.config, sparse.summary
        if ((c["dataset"], c["model"]) != (config["dataset"], config["model"])
                or s.get("device") != record.env.get("device", s.get("device"))):
            continue
        source = _source(root, s.get("source_record", ""))
        if source is not None:
            pairs[source.path] = (source, sparse)  # in the folders' order: the last of a source's records stays
    if not pairs:
        return pd.DataFrame()
    sources, sparses = zip(*pairs.values())
    table = sparse_table(sources, sparses)
    traced = pruner_label(config["pruner"], config.get("prune_epochs"))
    return table.assign(kernels=[tuple(s.summary.get("switched_kernels", ())) for s in sparses],
                        traced=(table["label"] == traced) & (table["compression"] == config["compression"]))


def _source(root: Path, name: str) -> RunRecord | None:
    """The training record a derived record was made from, by its folder's name, in any experiment of the store."""
    for folder in sorted(root.glob(f"*/{name}")) if name else ():
        if folder.parent.name != EXPERIMENT and is_complete(folder):
            return load_record(folder)
    return None


@dataclass(frozen=True)
class SetupKernels:
    """Task 1's sparse-kernel runs on the traced set-up: as its findings count them (``count``); ``changed``, the
    runs whose sparse model is not the dense one (a layer on a sparse kernel or a unit removed) and their kept
    fractions; the layers' kernels over all runs and the dead units removed; whether the traced pruner and
    compression's run changed (None: not among them)."""

    count: SparseCount
    changed: int
    changed_kept: Span | None
    kernels: tuple[tuple[str, int], ...]
    dead_units: int
    traced_changed: bool | None


def setup_kernels(sparse: pd.DataFrame | None) -> SetupKernels | None:
    """The :class:`SetupKernels` of :func:`setup_sparse_table`'s rows; None where there are none."""
    if sparse is None or sparse.empty:
        return None
    changed = sparse[~same_model(sparse)]
    traced = sparse[sparse["traced"]] if "traced" in sparse else sparse.iloc[:0]
    kernels = Counter(k for row in sparse.get("kernels", ()) for k in row)
    return SetupKernels(sparse_count(str(sparse["setup"].iloc[0]), sparse), len(changed),
                        Span.of(changed["kept"]) if len(changed) else None, tuple(kernels.most_common()),
                        int(sparse["dead_units"].sum()), None if traced.empty else bool((~same_model(traced)).any()))


def conv_fix_words(sparse: pd.DataFrame | None) -> str:
    """Sentences on what would cut the convolutions' time (:data:`CONV_WORK`, :data:`CONV_FIX`), with what Task 1's
    sparse kernels measured on this set-up (:func:`kernel_words`) where the store has them, else where they are
    timed (:data:`NOT_MEASURED`)."""
    measured = kernel_words(setup_kernels(sparse)) or NOT_MEASURED
    return f"{CONV_WORK}, so cutting it would take {CONV_FIX}. {measured}."


def kernel_words(k: SetupKernels | None) -> str:
    """Task 1's sparse kernels on this set-up, a sentence without its period: how many of its runs they changed
    (the traced pruner and compression's among them or not), how, and of the runs compared how many differ beyond
    the passes' noise and by how much (:class:`.sparse_speed.SparseCount`, as Task 1's findings count them); ""
    for none."""
    if k is None:
        return ""
    c = k.count
    runs = f"{c.runs} runs on {c.setup}"
    if not k.changed:
        return (f"Task 1's sparse kernels changed none of its {runs} (Tables C and C2): no layer went on a sparse "
                "kernel and no unit was removed, so each ran the dense model")
    traced = {True: ", the traced pruner and compression among them", False: ", not the traced pruner and compression",
              None: ""}
    how = [f"{counted(n, 'layer')} to {KERNEL_WORDS.get(name, name).split(',')[0]}" for name, n in k.kernels]
    if k.dead_units:
        how.append(f"{k.dead_units:,} dead units removed")
    said = (f"Task 1's sparse kernels changed {k.changed} of its {runs}{traced[k.traced_changed]} (kept "
            f"{k.changed_kept.words('{:.3g}'.format)}: {listed(how)})")
    if not c.tested:
        return said + ", none of them compared, their dense times being noise (Table C)"
    if not can_differ(c.repeats, c.repeats):
        return said + f"; too few passes ({c.repeats}) to tell their times apart"
    if c.real_speedup is None:
        return said + (f"; in none of the {counted(c.tested, 'run')} compared do the two kernels' times differ beyond "
                       "the passes' noise (Tables C and C2)")
    faster = c.beyond - c.slower
    sign = "slower" if not faster else "faster" if not c.slower else f"{faster} faster and {c.slower} slower"
    return said + (f"; of the {counted(c.tested, 'run')} compared, {c.beyond} ran {sign} on sparse kernels beyond the "
                   f"passes' noise, **{c.real_speedup.words(ratio_text)}** as fast (kept "
                   f"{c.real_kept.words('{:.3g}'.format)}; Tables C and C2)")
