"""Tables C and C2 and the frames behind the sparse-kernel findings: each run's test-set time on dense kernels
against the sparse kernels chosen per layer (its ``sparse`` record), and whether the two count as different
(:func:`kernels_differ`, the one judgement Tables C and C2, Figures 1b and the findings share): a rank test of the
passes tells them apart, the sparse model is not the dense one (:func:`same_model`) and the dense time is no
outlier (:func:`noisy_dense`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import pandas as pd

from ..core.timing import Timing, timings_differ
from ..data.catalog import source_words
from ..errors import UserError
from ..runs.store import RunRecord
from .grids import setup_label
from .numbers import at_chance, counted, share_of, time_cell
from .style import column_order, pruner_label
from .table_notes import SETUP_LEVEL
from .tables import setup_blocks, setup_row_label

#: a dense-kernel time off its set-up's median dense time at its compression by more than this share of it, above or
#: below, is noise
NOISY_DENSE = 0.25
#: the fewest runs at one compression of a set-up among which a dense time is judged against their median
NOISY_DENSE_RUNS = 3


def same_model(sparse: pd.DataFrame) -> pd.Series:
    """Per run of the sparse table, whether its sparse model is its dense model: no layer went on sparse kernels
    and no unit was removed, so the two run the same computation and any ratio of their times is noise. False
    throughout where the rows lack the records' choices (``switched``, ``dead_units``), as :func:`.numbers.at_chance`
    does where they lack the most frequent class."""
    if not {"switched", "dead_units"} <= set(sparse.columns):
        return pd.Series(False, index=sparse.index)
    return (sparse["switched"] == 0) & (sparse["dead_units"] == 0)


def noisy_dense(sparse: pd.DataFrame) -> pd.Series:
    """Per run, whether its dense-kernel time lies more than :data:`NOISY_DENSE` of its set-up's median dense time
    at its compression above or below it: a time too high would make sparse kernels look faster, one too low would
    make them look slower. Passes taken in turn cancel a slow spell that covers both kernels' passes, but not one
    that hits one kernel's passes more than the other's. Every pruner's dense model at a compression does the same
    arithmetic, so a dense time far off its neighbours' is the timing's, not the kernels', and a ratio against it is
    no result either way. Judged only where :data:`NOISY_DENSE_RUNS` runs or more share the compression: of two,
    either could be the odd one."""
    return _dense_offset(sparse) > NOISY_DENSE  # NaN, where not judged, compares False


def dense_drift(sparse: pd.DataFrame) -> float | None:
    """The largest :func:`_dense_offset` of the runs, the share of its row's median by which a dense time lies off
    it; None where no row is judged. The dense models of one compression do the same arithmetic, so this is how far
    the machine's speed moved between the runs' timings, minutes apart: the spread of a row of Table C that says
    nothing of the pruners."""
    off = _dense_offset(sparse).dropna()
    return None if off.empty else float(off.max())


def _dense_offset(sparse: pd.DataFrame) -> pd.Series:
    """Per run, the share of its set-up's median dense time at its compression by which its dense time lies above
    or below it; NaN where fewer than :data:`NOISY_DENSE_RUNS` runs share the compression (no row to judge)."""
    times = sparse.groupby(["setup", "compression"])["dense_inference_s"]
    typical, runs = times.transform("median"), times.transform("size")
    off = (sparse["dense_inference_s"] - typical).abs() / typical
    return off.where(runs >= NOISY_DENSE_RUNS)


def left_out(sparse: pd.DataFrame) -> pd.Series:
    """Per run, whether its ratio counts neither way: its sparse model is its dense one (:func:`same_model`) or its
    dense time is noise (:func:`noisy_dense`). Tables C and C2, Figure 1b, the findings and the key result compare
    the two times of the other runs only."""
    return same_model(sparse) | noisy_dense(sparse)


def passes_differ(sparse: pd.DataFrame) -> pd.Series:
    """Per run of the sparse table, whether a rank test of its passes tells its dense-kernel and sparse-kernel times
    apart (:func:`prunelab.core.timing.timings_differ`), whatever the run: the test alone."""
    pairs = [(Timing.from_summary(row, "dense_inference"), Timing.from_summary(row, "sparse_inference"))
             for _, row in sparse.iterrows()]
    return pd.Series([timings_differ(*pair) for pair in pairs], index=sparse.index, dtype=bool)


def kernels_differ(sparse: pd.DataFrame) -> pd.Series:
    """Per run of the sparse table, whether its dense-kernel and sparse-kernel times count as different: the rank
    test tells them apart (:func:`passes_differ`), its sparse model is not the dense one (:func:`same_model`: there a
    difference is noise) and its dense time is no outlier (:func:`noisy_dense`)."""
    return passes_differ(sparse) & ~left_out(sparse)


def sparse_gains(sparse: pd.DataFrame) -> pd.Series:
    """Per run, whether it counts as faster on sparse kernels: the two times differ (:func:`kernels_differ`), the
    sparse one is the lower, and the network is not at chance (:func:`.numbers.at_chance`: a collapsed network's
    speed is no gain), a filter left out on synthetic stand-in data, where accuracy means nothing. Figure
    1b, the findings and the key result count these runs."""
    faster = kernels_differ(sparse) & (sparse["sparse_inference_s"] < sparse["dense_inference_s"])
    stand_in = sparse["stand_in"].astype(bool) if "stand_in" in sparse else pd.Series(False, index=sparse.index)
    return faster & (stand_in | ~at_chance(sparse))


def compression_medians(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One set-up's runs (``rows`` of the sparse table, every run, those left out too) as Figure 1b draws them: the
    median of each of ``columns`` per compression, by kept fraction from the least kept up."""
    return rows.groupby("compression")[["kept", *columns]].median().sort_values("kept")


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


#: Table C's mark of a dense time taken as noise (:func:`noisy_dense`)
NOISY_MARK = "†"


#: where a cell of Tables C and C2 breaks its line: between the median and "± half the range". On one line
#: ("0.277 ± 0.0036", bold where faster) six pruners' columns are wider than the page, and the PDF shrinks a
#: table's type until it fits (to under 7 pt); a line each, a column is about as wide as a pruner's name
TIME_LINE_BREAK = "<br>"


def time_lines(median_ms: float, spread_ms: float | None, mark: str = "") -> str:
    """A cell of Tables C and C2: :func:`.numbers.time_cell` (ms, the unit in the caption) on two lines, the median
    over "± half the range" and any ``mark`` after it, as the PDF keeps a spread and its mark together."""
    median, _, half = time_cell(median_ms, spread_ms, unit="").partition(" ± ")
    return f"{median}{TIME_LINE_BREAK}± {half}{mark}"


def inference_time_table(sparse: pd.DataFrame, kernels: Literal["dense", "sparse"]) -> pd.DataFrame:
    """Table C (``kernels`` "dense") or C2 ("sparse"): test-set inference time (ms) per compression and pruner on
    those kernels, laid out as Table B (a block of rows per set-up, named with its data; a column per pruner),
    each cell the median over "± half the range" (:func:`time_lines`) of passes taken in turn with the other
    kernels' (so the two tables compare cell by cell), in bold where the pair differs (:func:`kernels_differ`) and
    these kernels are the faster; in Table C a dense time taken as noise (:func:`noisy_dense`) is marked
    :data:`NOISY_MARK`."""
    if kernels not in KERNELS:
        raise UserError(f"kernels are {' or '.join(KERNELS)}, not {kernels!r}")
    if sparse.empty:
        return pd.DataFrame()
    (other,) = set(KERNELS) - {kernels}
    metric, other = f"{kernels}_inference_s", f"{other}_inference_s"
    spreads = sparse[f"{kernels}_inference_spread_s"]
    marks = noisy_dense(sparse) if kernels == "dense" else pd.Series(False, index=sparse.index)
    cells = [time_lines(m * 1e3, s * 1e3, f" {NOISY_MARK}" if noisy else "")
             for m, s, noisy in zip(sparse[metric], spreads, marks)]
    faster = kernels_differ(sparse).to_numpy() & (sparse[metric] < sparse[other]).to_numpy()
    rows = sparse.assign(cell=[f"<b>{cell}</b>" if bold else cell for cell, bold in zip(cells, faster)])
    frame = setup_blocks(rows, lambda part: part.pivot_table(index="compression", columns="label", values="cell",
                                                             aggfunc="first"))
    frame = frame.reindex(columns=column_order(rows["label"]))
    frame.columns.name = None  # as Table B's: no "label" heading
    return frame


def pair_rule_note(sparse: pd.DataFrame) -> str:
    """What Table C's caption adds to the timing rule, from the runs, as sentences ready to stand before the next
    (a trailing space): how far a row's dense times lie apart (:func:`dense_drift`), how many runs' sparse model is
    their dense one (:func:`same_model`) and how many dense times are marked as noise (:func:`noisy_dense`), how
    many of those are among the former (the findings and the key result count each left-out run once, so their
    "others" are the marked runs less those), and that the marked runs are left out of the speed counts
    (:func:`left_out`); empty where there are none."""
    same_runs, noisy_runs, drift = same_model(sparse), noisy_dense(sparse), dense_drift(sparse)
    same, noisy, both = int(same_runs.sum()), int(noisy_runs.sum()), int((same_runs & noisy_runs).sum())
    text = ""
    if drift is not None and math.isfinite(drift) and round(drift, 2) > 0:  # "up to 0%" tells nothing
        text += ("Every pruner's dense model at one compression does the same arithmetic, so the times across a row "
                 f"differ only by when each run was timed (up to {drift:.0%} off the row's median here): compare a "
                 "cell with its twin in Table C2, timed in turn with it, not with its neighbours. ")
    if same:
        text += (f"In {share_of(same, len(sparse), 'run')} the sparse model is the dense one (no layer on sparse "
                 "kernels, no unit removed): their two times differ only by noise, and neither is bold. ")
    if noisy:
        text += (f"{NOISY_MARK} marks a dense time over {NOISY_DENSE:.0%} above or below the median of its set-up's "
                 f"dense times at that compression ({counted(noisy, 'run')}{_among(both, noisy, same)}): the same "
                 "arithmetic as the others, so it is taken as noise; neither of the run's times is bold, and the "
                 "findings and Figure 1b leave the run out of their speed counts. ")
    return text


def _among(both: int, noisy: int, same: int) -> str:
    """", 1 of them among the 7 above": how many of the ``noisy`` runs marked are among the ``same`` runs whose
    sparse model is the dense one, said just before; "" where none is."""
    if not both:
        return ""
    above = "the one above" if same == 1 else f"the {same} above"
    if noisy == 1:
        return f", among {above}"
    return f", {'both' if noisy == 2 else 'all'} among {above}" if both == noisy else f", {both} of them among {above}"


def inference_time_parts(sparse: pd.DataFrame, kernels: Literal["dense", "sparse"]) -> list[tuple[str, pd.DataFrame,
                                                                                                     str]]:
    """Table C or C2 (:func:`inference_time_table`) in a part per set-up, in the table's order: the set-up's name
    and data, its block by compression, and the :func:`pair_rule_note` of its own runs, so that each part's caption
    counts only the runs it shows."""
    table = inference_time_table(sparse, kernels)
    if table.empty:
        return []
    names = pd.Series([setup_row_label(*v) for v in zip(sparse["setup"], sparse["data_source"], sparse["data"])],
                      index=sparse.index)
    return [(name, cells.droplevel(SETUP_LEVEL), pair_rule_note(sparse[names == name]))
            for name, cells in table.groupby(level=SETUP_LEVEL, sort=False)]
