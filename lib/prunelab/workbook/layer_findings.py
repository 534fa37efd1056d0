"""Findings on how pruning lands per layer: the density each pruner leaves in each layer (Task 3), and the layers
where sparse kernels pay (Task 1's inference times). The per-layer frames first, then numbers and verdicts as frozen
dataclasses, then words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.choices import DATA_FREE_NAMES, DATA_FREE_PRUNERS, DATA_FREE_WHY
from ..core.timing import ALPHA, TOO_FEW, Timing, can_differ, timings_differ
from ..runs.store import RunRecord
from .grids import setup_label
from .numbers import Span, at_chance, listed, passing_by_chance, significant
from .sparse_tables import NOISY_DENSE, NOISY_MARK, kernels_differ, noisy_dense, same_model, sparse_gains
from .style import column_order

# ------------------------------------------------------------------------------ Task 3: density per layer


def record_weights(record: RunRecord) -> dict[str, np.ndarray]:
    """The kept weight values of every conv / linear layer of a stored model."""
    state, masks = record.state_dict(), record.masks()
    out = {}
    for key, mask in masks.items():
        name = key.removesuffix("_mask")
        if not name.endswith(".weight") or state[name].dim() not in (2, 4):
            continue  # linear and conv weights only (residual scales are (C, 1, 1))
        out[name] = state[name].float().reshape(-1)[mask.reshape(-1) != 0].numpy()
    return out


def layer_frame(records: dict[str, RunRecord]) -> pd.DataFrame:
    """Prunable rows of each record's layer table, with a ``label`` column (one row per layer and pruner), the
    record's ``pruner`` name (the findings tell random and data-free pruners by it), and its ``setup`` and
    ``data_source``, so a figure of them can say where the data were a stand-in."""
    frames = []
    for label, record in records.items():
        layers = record.layers
        layers = layers[layers["prunable"]].copy()
        layers["label"] = label
        layers["pruner"] = record.config["pruner"]
        layers["layer"] = layers["module"]
        layers["kept_flops"] = layers["density"] * layers["flops"]
        layers["setup"] = setup_label(record.config["dataset"], record.config["model"])
        layers["data_source"] = record.summary.get("data_source", record.config["data_source"])  # auto resolved
        frames.append(layers)
    return pd.concat(frames, ignore_index=True)


#: a layer a pruner keeps at under this share of the overall target density is named as nearly empty: so few
#: weights are left that all the signal through the layer must pass them (SynFlow empties ResNet shortcuts so)
NEAR_EMPTY_SHARE = 0.1
#: a random mask's layer densities are called sampling noise while every layer is within this many standard
#: deviations of the target, sqrt(t (1 - t) / n) for a layer of n weights each kept with the target's chance t
NOISE_SDS = 3.0


@dataclass(frozen=True)
class NearEmptyLayer:
    """A layer kept at under :data:`NEAR_EMPTY_SHARE` of the target density: its density, kept and all weights."""

    layer: str
    density: float
    kept: int
    size: int


@dataclass(frozen=True)
class PrunerDensity:
    """One pruner's kept fraction of all prunable weights, its densest and sparsest layer, and its FLOPs;
    ``near_empty``: its layers kept at under :data:`NEAR_EMPTY_SHARE` of the target, emptiest first;
    ``noise_sds``: its layers' largest distance from the target in standard deviations of a random draw (see
    :data:`NOISE_SDS`); ``pruner``: its name where the layer frame gives it (None: a random or data-free pruner
    is not recognised)."""

    label: str
    overall: float
    densest_layer: str
    densest: float
    sparsest_layer: str
    sparsest: float
    kept_flops: float
    flops: float
    near_empty: tuple[NearEmptyLayer, ...] = ()
    noise_sds: float = math.nan
    pruner: str | None = None

    @property
    def random(self) -> bool:
        """Whether the mask is drawn at random: its layers' densities differ from the target by chance alone."""
        return self.pruner == "rand"

    @property
    def data_free(self) -> bool:
        """Whether the mask never reads the data (:data:`~prunelab.core.choices.DATA_FREE_PRUNERS`)."""
        return self.pruner in DATA_FREE_PRUNERS


@dataclass(frozen=True)
class SizeBias:
    """Under one pruner, the mean density of the layers with at most the ``median`` number of weights
    (``small``) and of the larger ones (``large``)."""

    label: str
    small: float
    large: float
    median: float


@dataclass(frozen=True)
class CompressionResult:
    """Task 3 at one compression: each pruner's densities (column order) and the focus pruner's size bias
    (None when it did not run); ``stand_in``: the set-ups whose runs used synthetic stand-in data, where which
    weights a data-driven pruner keeps says nothing about real images."""

    compression: float
    pruners: tuple[PrunerDensity, ...]
    size_bias: SizeBias | None
    stand_in: tuple[str, ...] = ()

    @property
    def target(self) -> float:
        return 10 ** -self.compression


def compression_result(layers: pd.DataFrame, compression: float, focus: str = "SNIP") -> CompressionResult:
    """The :class:`CompressionResult` of the per-layer table (:func:`layer_frame`)."""
    target = 10 ** -compression
    pruners = tuple(_pruner_density(layers[layers["label"] == label], label, target)
                    for label in column_order(layers["label"]))
    part = layers[layers["label"] == focus]
    bias = None
    if not part.empty:
        median = part["size"].median()
        bias = SizeBias(focus, float(part.loc[part["size"] <= median, "density"].mean()),
                        float(part.loc[part["size"] > median, "density"].mean()), float(median))
    fake = layers.loc[layers["data_source"] == "synthetic", "setup"] if "data_source" in layers else []
    return CompressionResult(compression, pruners, bias, tuple(sorted(set(fake))))


def _pruner_density(part: pd.DataFrame, label: str, target: float) -> PrunerDensity:
    """The :class:`PrunerDensity` of one pruner's rows of the per-layer table, at the overall ``target`` density."""
    hi, lo = part.loc[part["density"].idxmax()], part.loc[part["density"].idxmin()]
    thin = part[part["density"] < NEAR_EMPTY_SHARE * target].sort_values("density", kind="stable")
    near_empty = tuple(NearEmptyLayer(str(row.layer), float(row.density), round(row.density * row.size), int(row.size))
                       for row in thin.itertuples())
    sd = np.sqrt(target * (1 - target) / part["size"].to_numpy(float))
    sds = np.abs(part["density"].to_numpy(float) - target) / np.where(sd > 0, sd, np.inf)
    pruner = str(part["pruner"].iloc[0]) if "pruner" in part else None
    return PrunerDensity(label, float((part["density"] * part["size"]).sum() / part["size"].sum()),
                         hi["layer"], float(hi["density"]), lo["layer"], float(lo["density"]),
                         float(part["kept_flops"].sum()), float(part["flops"].sum()), near_empty, float(sds.max()),
                         pruner)


def compression_findings(layers: pd.DataFrame, compression: float, focus: str = "SNIP") -> str:
    """Markdown findings for Task 3 (:func:`compression_result`)."""
    result = compression_result(layers, compression, focus)
    lines = []
    if result.stand_in:
        lines.append(f"- {', '.join(result.stand_in)} ran on synthetic stand-in data: the data-driven pruners (and "
                     "Mag, after pre-training) chose their weights from generated images, so their densities below "
                     f"are a pipeline check, not a finding about them on real data. {DATA_FREE_NAMES} never read the "
                     f"data ({DATA_FREE_WHY}): theirs are the densities they would choose on the real "
                     "set.")
    lines.append(f"- The overall target keeps {result.target:.4f} of the prunable weights (compression "
                 f"{result.compression:g}).")
    lines += [_pruner_line(p) for p in result.pruners]
    lines.append(_near_empty_line(result))
    if result.size_bias is not None:
        b = result.size_bias
        lines.append(f"- Under {b.label}, layers of at most {math.floor(b.median):,} weights (the median size) keep on "
                     f"average {b.small:.3f} and larger ones {b.large:.3f}" + (
                         " (on the synthetic stand-in: a pipeline check)." if result.stand_in else
                         ": a global threshold does not prune every layer equally."))
    return "\n".join(lines)


def _pruner_line(p: PrunerDensity) -> str:
    """A pruner's overall density and kept FLOPs, with its densest and sparsest layer; for a random mask, whose
    layers differ from the target by chance alone, the spread of its layers and whether it is sampling noise."""
    flops = f"kept FLOPs {p.kept_flops:,.0f} of {p.flops:,.0f} in the prunable weights"
    if not p.random:
        return (f"- **{p.label}**: overall {p.overall:.4f}; densest `{p.densest_layer}` ({p.densest:.3f}), "
                f"sparsest `{p.sparsest_layer}` ({p.sparsest:.3f}); {flops}.")
    noise = ("sampling noise" if p.noise_sds <= NOISE_SDS else "more than sampling noise")
    return (f"- **{p.label}**: overall {p.overall:.4f}; {flops}. A random mask keeps every weight with the same "
            f"chance, so each layer stays near the target by construction. Its layers keep {p.sparsest:.3f} to "
            f"{p.densest:.3f} of their weights, up to {p.noise_sds:.1f} standard deviations from the target for a "
            f"random draw of their size: {noise}.")


def _near_empty_line(result: CompressionResult) -> str:
    """The layers each pruner keeps at under :data:`NEAR_EMPTY_SHARE` of the target, with their kept weights,
    and what that means; on stand-in data, which of those pruners never read the data (so it holds on real data)."""
    rule = f"under {NEAR_EMPTY_SHARE:.0%} of the overall target density ({NEAR_EMPTY_SHARE * result.target:.4f})"
    thin = [p for p in result.pruners if p.near_empty]
    if not thin:
        return f"- No pruner keeps any layer at {rule}: none is left nearly empty."
    named = "; ".join(f"**{p.label}** keeps " + " and ".join(
        f"`{n.layer}` at {n.density:.4f} ({n.kept:,} of its {n.size:,} weights)" for n in p.near_empty) for p in thin)
    line = (f"- Nearly empty layers, kept at {rule}: {named}. All the signal through such a layer must pass those "
            "few weights, so it is a bottleneck; a layer with none left passes nothing.")
    free = [p.label for p in thin if p.data_free]
    if result.stand_in and free:
        line += (f" {' and '.join(free)} never {'reads' if len(free) == 1 else 'read'} the data to choose a mask, "
                 "so this holds on real data too.")
    return line


def block_density_words(layers: pd.DataFrame, prefix: str = "blocks.0.conv") -> str:
    """The density and kept count of each weight whose module starts with ``prefix`` (a block's convolutions, in
    a per-layer table of one run: ``module``, ``param``, ``density``, ``size``), then of them together."""
    block = layers[layers["module"].str.startswith(prefix) & (layers["param"] == "weight")]
    if block.empty:
        return f"no prunable weight of a module named {prefix}…"
    kept = (block["density"] * block["size"]).round().astype(int)
    each = [f"`{module}` keeps {density:.6f} ({k:,} of {size:,})"
            for module, density, k, size in zip(block["module"], block["density"], kept, block["size"])]
    total, size = int(kept.sum()), int(block["size"].sum())
    return "; ".join(each) + f"; together {total / size:.6f} ({total:,} of {size:,})"


# ------------------------------------------------------------------------------ sparse kernels


@dataclass(frozen=True)
class SparseSetup:
    """One set-up's sparse-kernel records: test-set speed-up on sparse kernels against dense ones over all runs and
    over the ``beyond`` runs whose times differ (:func:`.sparse_tables.kernels_differ`: ``real_speedup``,
    ``real_kept``; None where none does), of which ``slower`` ran slower on sparse kernels and ``at_chance`` predict
    no better than the most frequent class; ``gains``: the runs that count as faster
    (:func:`.sparse_tables.sparse_gains`, as Figure 1b counts them; their speed-up: ``working_speedup``, None where
    none is left); the kept fractions, the fewest timed passes; the layers' kernel choices (``switched``: kernel and
    layer count for the layers that left the dense kernel) with the densities of the switched layers, of those that
    stayed dense and of all; dead units removed; the runs' dense-kernel times, the same work in each, whether the
    fastest and slowest differ beyond their passes' noise (``dense_moved``) and their median over pruners per
    compression (``dense_by_compression``, ms); the runs left out of the count: ``same`` whose sparse model is the
    dense one and ``noisy`` others whose dense time is an outlier, with their speed-ups; whether the runs used the
    synthetic stand-in (their accuracy means nothing)."""

    setup: str
    speedup: Span
    kept: Span
    repeats: int
    beyond: int
    runs: int
    real_speedup: Span | None
    real_kept: Span | None
    at_chance: int
    working_speedup: Span | None
    slower: int
    switched: tuple[tuple[str, int], ...]
    switched_density: Span
    dense_density: Span
    density: Span
    dead_units: int
    dense_ms: Span
    dense_moved: bool
    stand_in: bool = False
    gains: int = 0
    same: Span | None = None  # the speed-ups of the runs whose sparse model is the dense one
    same_runs: int = 0
    noisy: Span | None = None  # the speed-ups of the other runs whose dense time is noise
    noisy_runs: int = 0
    dense_by_compression: tuple[tuple[float, float], ...] = ()

    @property
    def switched_layers(self) -> int:
        return sum(n for _, n in self.switched)

    @property
    def tested(self) -> int:
        """The runs whose two times were compared: all but those left out as the same model or a noisy dense time."""
        return self.runs - self.same_runs - self.noisy_runs

    @property
    def density_decided(self) -> bool:
        """Whether every switched layer kept fewer weights than every layer that stayed dense (False where none
        stayed dense: nothing to compare)."""
        return bool(self.switched) and self.switched_density.high < self.dense_density.low


def _span_or_none(values: pd.Series) -> Span | None:
    return Span.of(values) if len(values) else None


def sparse_result(sparse: pd.DataFrame, layers: pd.DataFrame) -> tuple[SparseSetup, ...]:
    """A :class:`SparseSetup` per set-up of the sparse table (:func:`.tables.sparse_table`), with its layers'
    choices (:func:`.tables.sparse_layer_frame`)."""
    setups = []
    for setup, rows in sparse.groupby("setup", sort=False):
        part = layers[layers["setup"] == setup]
        switched = part[part["kernel"] != "dense"]
        real = rows[kernels_differ(rows)]
        working = working_beyond(rows)
        same = same_model(rows)
        noisy = rows[noisy_dense(rows) & ~same]
        by_compression = rows.groupby("compression")["dense_inference_s"].median().sort_index() * 1e3
        setups.append(SparseSetup(
            setup, Span.of(rows["speedup"]), Span.of(rows["kept"]), int(rows["timing_repeats"].min()),
            len(real), len(rows), _span_or_none(real["speedup"]), _span_or_none(real["kept"]),
            int(at_chance(real).sum()), _span_or_none(working["speedup"]), int((real["speedup"] < 1).sum()),
            tuple((str(k), int(n)) for k, n in switched["kernel"].value_counts().items()),
            Span.of(switched["density"]), Span.of(part.loc[part["kernel"] == "dense", "density"]),
            Span.of(part["density"]), int(rows["dead_units"].sum()), Span.of(rows["dense_inference_s"] * 1e3),
            _dense_moved(rows), bool(rows["stand_in"].any()) if "stand_in" in rows else False, len(working),
            _span_or_none(rows.loc[same, "speedup"]), int(same.sum()), _span_or_none(noisy["speedup"]), len(noisy),
            tuple((float(c), float(ms)) for c, ms in by_compression.items())))
    return tuple(setups)


def working_beyond(rows: pd.DataFrame) -> pd.DataFrame:
    """The runs of the sparse table that count as faster on sparse kernels (:func:`.sparse_tables.sparse_gains`:
    the times differ, the sparse one is lower, and on real data the network still predicts better than the most
    frequent class): the speed-ups a reader may quote, as Figure 1b counts them."""
    return rows[sparse_gains(rows)]


def _dense_moved(rows: pd.DataFrame) -> bool:
    """Whether the fastest and the slowest of ``rows``' dense-kernel times differ beyond their passes' noise."""
    fastest, slowest = rows.loc[rows["dense_inference_s"].idxmin()], rows.loc[rows["dense_inference_s"].idxmax()]
    return timings_differ(Timing.from_summary(fastest, "dense_inference"),
                          Timing.from_summary(slowest, "dense_inference"))


def _dense_trend(s: SparseSetup) -> str:
    """", and their median over pruners falls steadily with compression: 436, 416 and 305 ms at 0.2, 0.25 and 0.5"
    where those medians fall (or rise) at every step over three compressions or more; else nothing."""
    if len(s.dense_by_compression) < 3:  # two points are no trend
        return ""
    compressions, ms = zip(*s.dense_by_compression)
    steps = np.diff(ms)
    if not ((steps < 0).all() or (steps > 0).all()):
        return ""
    way = "falls" if steps[0] < 0 else "rises"
    return (f", and their median over pruners {way} steadily with compression: "
            f"{listed([significant(m) for m in ms])} ms at {listed([f'{c:g}' for c in compressions])}")


#: the sparse kernels (:mod:`prunelab.core.sparse_kernels`) as the findings name them
KERNEL_WORDS = {"compact": "compact, a dense product over the live units only", "csr": "CSR", "csr_t": "CSR transposed",
                "bsr": "block-sparse BSR", "semi24": "2:4 semi-structured", "im2col_csr": "im2col and CSR"}


def sparse_findings(sparse: pd.DataFrame, layers: pd.DataFrame) -> str:
    """Markdown findings on sparse kernels (:func:`sparse_result`): how much faster, which layers switched
    and why, and whether a rank test of the passes tells a difference from their noise."""
    lines = []
    for s in sparse_result(sparse, layers):
        lines.append(_speed_line(s))
        lines += _left_out_lines(s)
        if s.switched:
            kinds = "; ".join(f"{n} to {KERNEL_WORDS.get(k, k)}" for k, n in s.switched)
            why = (" (no layer stayed dense)." if not math.isfinite(s.dense_density.low) else
                   f", against {s.dense_density.words('{:.3g}'.format)} in the layers that stayed dense"
                   + (": a sparse kernel skips the zeros but reads an index per weight and runs far below the dense "
                      "kernels' rate, so it wins only where few weights are left." if s.density_decided else
                      ". The two ranges overlap, so density alone did not decide: a layer's choice also follows "
                      "its shape, and between kernels within the noise margin of each other it is a toss-up."))
            lines.append(f"  {s.switched_layers} layer choices switched ({kinds}); those layers kept "
                         f"{s.switched_density.words('{:.3g}'.format)} of their weights" + why)
        else:
            lines.append(
                f"  No layer switched: at these densities ({s.density.words('{:.3g}'.format)} of each layer's "
                "weights kept) every dense kernel was at least as fast as its sparse candidates, which pay only at "
                "much lower density (see `bench/sparse.py`).")
        if s.dead_units:
            lines.append(f"  {s.dead_units:,} dead units (neurons or channels with no kept weight in or out) were "
                         "removed, which narrows the dense layers themselves; where a run is faster without a "
                         "switched layer, that is where its time went.")
        if s.dense_moved:
            lines.append(f"  The dense kernels do the same arithmetic in every run, yet their times range from "
                         f"{s.dense_ms.words(significant)} ms across runs, beyond the passes' noise{_dense_trend(s)}. "
                         "So these differences come from something other than the arithmetic, which is not "
                         "measured here (the machine's load, the order the runs were timed in, ...). Compare the two "
                         "kernels within a run (a cell of Table C against the same cell of Table C2, timed in turn), "
                         "not runs down a column.")
    return "\n".join(lines)


def _by_chance(runs: int) -> str:
    """At most how many of ``runs`` tests at :data:`~prunelab.core.timing.ALPHA` would pass were no run different,
    where that is about one or more (the exact test passes a little less often than ALPHA): each run is its own
    test, and no correction over them is possible with a few passes each."""
    expected = passing_by_chance(runs)
    if expected is None:
        return ""
    return f" (each run tested at p < {ALPHA:g}: were none different, up to about {expected} would pass by chance)"


def _left_out_lines(s: SparseSetup) -> list[str]:
    """The runs whose ratio is noise and counts neither way: the sparse model is the dense one, or (among the
    others) the dense time is an outlier of its compression (:func:`.sparse_tables.noisy_dense`)."""
    lines = []
    if s.same is not None:
        lines.append(f"  In {s.same_runs} of {s.runs} runs no layer went on sparse kernels and no unit was removed: "
                     "the sparse model is the dense one and runs the same computation. Their ratios "
                     f"({s.same.words('{:.2f}x'.format)}) are noise, counted neither faster nor slower.")
    if s.noisy is not None:
        one = s.noisy_runs == 1
        lines.append(f"  In {s.noisy_runs} {'more run' if one else 'more runs'} the dense time lies more than "
                     f"{NOISY_DENSE - 1:.0%} above the set-up's median dense time at that compression (marked "
                     f"{NOISY_MARK} in Table C): {'its ratio' if one else 'their ratios'} "
                     f"({s.noisy.words('{:.2f}x'.format)}) {'is' if one else 'are'} taken as noise and not counted.")
    return lines


def _speed_line(s: SparseSetup) -> str:
    """The set-up's speed on sparse kernels: quoted (in bold) only for the runs whose times differ
    (:func:`.sparse_tables.kernels_differ`), and said when those runs no longer predict better than one class; the
    count of runs that gain is Figure 1b's (:func:`.sparse_tables.sparse_gains`)."""
    timed = f"medians of {s.repeats} passes taken in turn"
    if not can_differ(s.repeats, s.repeats):
        return f"- {s.setup}: {s.speedup.words('{:.2f}x'.format)} as fast on sparse kernels ({timed}), {TOO_FEW}."
    if s.real_speedup is None:
        return (f"- {s.setup}: in no run do the sparse-kernel and dense-kernel test-set times differ beyond the "
                f"passes' noise ({s.speedup.words('{:.2f}x'.format)} as fast, {timed}): no difference is claimed.")
    line = (f"- {s.setup}: in {s.beyond} of {s.runs} runs the sparse-kernel and dense-kernel times differ beyond "
            f"the passes' noise, by a rank test of the passes{_by_chance(s.tested)}: on sparse kernels the test set "
            "ran "
            f"**{s.real_speedup.words('{:.2f}x'.format)}** as fast (kept fraction "
            f"{s.real_kept.words('{:.3g}'.format)}; {timed})"
            + (f", {s.slower} of them slower than on dense kernels and {s.beyond - s.slower} faster" if s.slower
               else ", none of them slower")
            + ("; in the rest no difference is claimed." if s.beyond < s.runs else "."))
    if s.at_chance and s.stand_in:
        line += (f" {_of_those(s)} no better than the most frequent class, on the synthetic stand-in: a pipeline "
                 f"check, where accuracy means nothing, so none is left out for it: {s.gains} of the {s.runs} runs "
                 f"{'counts' if s.gains == 1 else 'count'} as faster, as in Figure 1b.")
    elif s.at_chance and s.working_speedup is not None:
        line += (f" {_of_those(s)} no better than the most frequent class, so part of that speed comes with networks "
                 f"that no longer work; {s.gains} of the {s.runs} runs ran faster while still predicting better: "
                 f"**{s.working_speedup.words('{:.2f}x'.format)}** as fast.")
    elif s.at_chance:
        line += (f" {_of_those(s)} no better than the most frequent class: there the speed comes with a network that "
                 "no longer works.")
    return line


def _of_those(s: SparseSetup) -> str:
    """"2 of those 4 runs predict", "That run predicts", "All 3 of those runs predict": the runs apart from the
    dense ones in time that predict no better than one class."""
    if s.at_chance == s.beyond:
        return "That run predicts" if s.beyond == 1 else f"All {s.beyond} of those runs predict"
    return f"{s.at_chance} of those {s.beyond} runs {'predicts' if s.at_chance == 1 else 'predict'}"
