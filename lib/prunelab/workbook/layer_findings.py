"""Findings on how pruning lands per layer: the density each pruner leaves in each layer (Task 3). The names the
report gives layers (:func:`layer_names`: every table, figure and finding that names a layer takes them from here)
and the per-layer frames first, then numbers and verdicts as frozen dataclasses, then words. Where sparse kernels
pay (Task 1's inference times) is :mod:`.sparse_speed`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.choices import DATA_FREE_NAMES, DATA_FREE_PRUNERS, DATA_FREE_WHY
from ..runs.store import RunRecord
from .grids import setup_label
from .numbers import listed, shape_sizes
from .style import column_order

# ------------------------------------------------------------------------------ the names of layers

#: a layer's kind by its weight's number of dimensions, for a layer whose module has no name of its own
LAYER_KINDS = {2: "linear", 4: "conv"}


def layer_names(layers: pd.DataFrame) -> dict[str, str]:
    """The name the report gives each parameter of a network's layer table (a record's ``layers.csv``: ``module``,
    ``param``, ``shape``, a row per parameter in network order), keyed by the parameter's path ("1.weight").

    A layer is named by its module's path ("blocks.3.shortcut.0"), unique in the network; ".weight" is left off,
    the weight being what is pruned. An ``nn.Sequential``'s modules have bare positions for paths ("1", "3": the
    FC network's), which say nothing to a reader, so such a linear or conv layer is named by its kind, its place
    among the network's layers of that kind and its inputs and outputs: "linear 2 (100→100)". A parameter other
    than a weight is its layer's name and its own: "fc bias"."""
    rows = [(str(module), param, shape_sizes(shape))
            for module, param, shape in zip(layers["module"], layers["param"], layers["shape"])]
    counts: dict[str, int] = {}
    placed: dict[str, str] = {}  # module path -> its name, for the layers whose modules have no name
    for module, param, sizes in rows:
        if param == "weight" and _unnamed(module) and len(sizes) in LAYER_KINDS:
            kind = LAYER_KINDS[len(sizes)]
            counts[kind] = counts.get(kind, 0) + 1
            placed[module] = f"{kind} {counts[kind]} ({sizes[1]}→{sizes[0]})"
    return {_path(module, param): _named(placed.get(module, module), param) for module, param, _ in rows}


def layer_name(path: str, names: dict[str, str] | None = None) -> str:
    """The name the report gives the parameter at ``path`` ("1.weight"): its name in ``names`` (:func:`layer_names`
    of its network), else, where the network's layer table is not at hand, its path with ".weight" left off."""
    return names[path] if names and path in names else path.removesuffix(".weight")


def _unnamed(module: str) -> bool:
    """Whether a module's path is bare positions in ``nn.Sequential`` ("3", "0.1"), no name a reader can place."""
    return bool(re.fullmatch(r"\d+(?:\.\d+)*", module))


def _path(module, param: str) -> str:
    """A parameter's path from its module's (a layer table read as :func:`~prunelab.runs.store.read_layers` does
    holds it as text; "" for the network's own parameters) and its name."""
    return f"{module}.{param}" if str(module) else param


def _named(layer: str, param: str) -> str:
    return layer if param == "weight" else f"{layer} {param}"


#: the module a residual block names its shortcut in every model prunelab ships with blocks (``lottery``'s ResNets,
#: ``tinyimagenet``'s): a layer under it is on the shortcut, the other layers of its block on the branch beside it
SHORTCUT = "shortcut"


def layer_routes(modules) -> dict[str, str]:
    """Each module path's place in its network (``modules``: every module of one network with a parameter, the
    shortcuts that prune nothing too): "shortcut" where a module on its path is named :data:`SHORTCUT`; "branch"
    where a module enclosing it (its block) holds a shortcut, so the signal has a path past it; else "only": no
    branch beside it (a plain chain as the FC networks, a ResNet's stem and classifier), every signal passes it."""
    modules = [str(m) for m in modules]
    blocks = {".".join(m.split(".")[:m.split(".").index(SHORTCUT)]) for m in modules if SHORTCUT in m.split(".")}
    return {m: "shortcut" if SHORTCUT in m.split(".") else
            "branch" if any(m.startswith(f"{b}.") for b in blocks) else "only" for m in modules}


# ------------------------------------------------------------------------------ Task 3: density per layer


def record_weights(record: RunRecord) -> dict[str, np.ndarray]:
    """The kept weight values of every conv / linear layer of a stored model, by layer name (:func:`layer_names`)."""
    state, masks = record.state_dict(), record.masks()
    names = layer_names(record.layers)
    out = {}
    for key, mask in masks.items():
        name = key.removesuffix("_mask")
        if not name.endswith(".weight") or state[name].dim() not in (2, 4):
            continue  # linear and conv weights only (residual scales are (C, 1, 1))
        out[layer_name(name, names)] = state[name].float().reshape(-1)[mask.reshape(-1) != 0].numpy()
    return out


def layer_frame(records: dict[str, RunRecord]) -> pd.DataFrame:
    """Prunable rows of each record's layer table, with a ``label`` column (one row per layer and pruner), the
    record's ``pruner`` name (the findings tell random and data-free pruners by it), and its ``setup`` and
    ``data_source``, so a figure of them can say where the data were a stand-in; ``seed``, the run's, whose initial
    weights a data-free pruner's mask depends on; ``layer``, the name the report gives it (:func:`layer_names`);
    ``route``, its place beside a shortcut or not (:func:`layer_routes`, of the whole network).
    The layer table's own columns stay, its score statistics among them (absent or NaN for an older record)."""
    frames = []
    for label, record in records.items():
        layers = record.layers
        names = layer_names(layers)  # of the whole network: a layer's place counts the layers not pruned too
        routes = layer_routes(layers["module"])  # of the whole network too: an identity shortcut prunes nothing
        layers = layers[layers["prunable"]].copy()
        layers["route"] = [routes[str(m)] for m in layers["module"]]
        layers["label"] = label
        layers["pruner"] = record.config["pruner"]
        layers["seed"] = record.config.get("seed")
        layers["layer"] = [names[_path(m, p)] for m, p in zip(layers["module"], layers["param"])]
        layers["kept_flops"] = layers["density"] * layers["flops"]
        layers["setup"] = setup_label(record.config["dataset"], record.config["model"])
        layers["data_source"] = record.summary.get("data_source", record.config["data_source"])  # auto resolved
        frames.append(layers)
    return pd.concat(frames, ignore_index=True)


#: a layer a pruner keeps at under this share of the overall target density is named as nearly empty: so few
#: weights are left that its path is nearly cut (what that does depends on its route, :data:`ROUTE_WORDS`)
NEAR_EMPTY_SHARE = 0.1
#: a random mask's layer densities are called sampling noise while every layer is within this many standard
#: deviations of the target, sqrt(t (1 - t) / n) for a layer of n weights each kept with the target's chance t
NOISE_SDS = 3.0


@dataclass(frozen=True)
class NearEmptyLayer:
    """A layer kept at under :data:`NEAR_EMPTY_SHARE` of the target density: its density, kept and all weights, and
    its route (:func:`layer_routes`)."""

    layer: str
    density: float
    kept: int
    size: int
    route: str = "only"


@dataclass(frozen=True)
class PrunerDensity:
    """One pruner's kept fraction of all prunable weights, its densest and sparsest layer, and its FLOPs;
    ``near_empty``: its layers kept at under :data:`NEAR_EMPTY_SHARE` of the target, emptiest first;
    ``noise_sds``: its layers' largest distance from the target in standard deviations of a random draw (see
    :data:`NOISE_SDS`); ``pruner``: its name where the layer frame gives it (None: a random or data-free pruner
    is not recognized)."""

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


def overall_density(part: pd.DataFrame) -> float:
    """The kept fraction of all the weights in rows of the per-layer table (:func:`layer_frame`): their kept weights
    (each layer's density times its size) over their size."""
    return float((part["density"] * part["size"]).sum() / part["size"].sum())


def _pruner_density(part: pd.DataFrame, label: str, target: float) -> PrunerDensity:
    """The :class:`PrunerDensity` of one pruner's rows of the per-layer table, at the overall ``target`` density."""
    hi, lo = part.loc[part["density"].idxmax()], part.loc[part["density"].idxmin()]
    if "route" not in part:  # a frame not made by layer_frame: routes from its own layers
        part = part.assign(route=part.get("module", part["layer"]).astype(str).map(
            layer_routes(part.get("module", part["layer"]))))
    thin = part[part["density"] < NEAR_EMPTY_SHARE * target].sort_values("density", kind="stable")
    near_empty = tuple(NearEmptyLayer(str(row.layer), float(row.density), round(row.density * row.size), int(row.size),
                                      str(row.route)) for row in thin.itertuples())
    sd = np.sqrt(target * (1 - target) / part["size"].to_numpy(float))
    sds = np.abs(part["density"].to_numpy(float) - target) / np.where(sd > 0, sd, np.inf)
    pruner = str(part["pruner"].iloc[0]) if "pruner" in part else None
    return PrunerDensity(label, overall_density(part),
                         hi["layer"], float(hi["density"]), lo["layer"], float(lo["density"]),
                         float(part["kept_flops"].sum()), float(part["flops"].sum()), near_empty, float(sds.max()),
                         pruner)


def same_weights(part: pd.DataFrame) -> str:
    """"from the same initial weights (one run per pruner, seed 1)": the condition under which a data-free pruner's
    figures in these rows of the per-layer table (one run per pruner, :func:`layer_frame`) hold on real data. Its
    mask reads no data but does read the initial weights (Rand: its random draw), which each seed draws anew, so
    the figures are one draw's."""
    seeds = sorted({int(seed) for seed in part["seed"].dropna()}) if "seed" in part else []
    several = "pruner" in part and part["pruner"].nunique() > 1
    runs = ("one run per pruner" if several else "one run") + (f", {len(seeds)} seeds" if len(seeds) > 1 else "")
    named = (f", seed {seeds[0]}" if len(seeds) == 1 else
             f": seeds {listed([str(seed) for seed in seeds])}" if seeds else "")
    draws = " and random draws" if "pruner" in part and part["pruner"].eq("rand").any() else ""  # Rand's mask
    return f"from the same initial weights{draws} ({runs}{named})"


def compression_findings(layers: pd.DataFrame, compression: float, focus: str = "SNIP") -> str:
    """Markdown findings for Task 3 (:func:`compression_result`)."""
    result = compression_result(layers, compression, focus)
    lines = []
    if result.stand_in:
        free = layers[layers["pruner"].isin(DATA_FREE_PRUNERS)] if "pruner" in layers else layers.iloc[:0]
        lines.append(f"- {', '.join(result.stand_in)} ran on synthetic stand-in data: the data-driven pruners (and "
                     "Mag, after pre-training) chose their weights from generated images, so their densities below "
                     f"are a pipeline check, not a finding about them on real data. {DATA_FREE_NAMES} never read the "
                     f"data ({DATA_FREE_WHY}): theirs are the densities they would choose on the real set "
                     f"{same_weights(free)}.")
    lines.append(f"- The overall target keeps {result.target:.4f} of the prunable weights (compression "
                 f"{result.compression:g}).")
    lines += [_pruner_line(p) for p in result.pruners]
    lines.append(_near_empty_line(result, layers))
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


def _near_empty_line(result: CompressionResult, layers: pd.DataFrame) -> str:
    """The layers each pruner keeps at under :data:`NEAR_EMPTY_SHARE` of the target, with their kept weights,
    and what that means; on stand-in data, which of those pruners never read the data (so it holds on real data)."""
    rule = f"under {NEAR_EMPTY_SHARE:.0%} of the overall target density ({NEAR_EMPTY_SHARE * result.target:.4f})"
    thin = [p for p in result.pruners if p.near_empty]
    if not thin:
        return f"- No pruner keeps any layer at {rule}: none is left nearly empty."
    named = "; ".join(f"**{p.label}** keeps " + " and ".join(
        f"`{n.layer}` at {n.density:.4f} ({n.kept:,} of its {n.size:,} weights)" for n in p.near_empty) for p in thin)
    line = f"- Nearly empty layers, kept at {rule}: {named}." + _route_words([n for p in thin for n in p.near_empty])
    free = [p.label for p in thin if p.data_free]
    if result.stand_in and free:
        line += (f" {' and '.join(free)} never {'reads' if len(free) == 1 else 'read'} the data to choose a mask, "
                 f"so this holds on real data too, {same_weights(layers[layers['label'].isin(free)])}.")
    return line


#: what a nearly empty layer does by its route (:func:`layer_routes`): a subject and the rest of its sentence
ROUTE_WORDS = {
    "only": ("A layer with no branch beside it", "is a bottleneck: all the signal through it must pass those few "
             "weights, and a layer with none left passes nothing."),
    "shortcut": ("A shortcut kept so thin", "nearly cuts that path: its block then depends on its conv branch, which "
                 "carries the signal beside the shortcut."),
    "branch": ("A layer of a block's conv branch kept so thin", "nearly cuts that branch: its block then passes the "
               "signal on mostly through its shortcut."),
}


def _route_words(near_empty: list[NearEmptyLayer]) -> str:
    """What the nearly empty layers do, a sentence per route among them (:data:`ROUTE_WORDS`), naming its layers
    where they are of more than one."""
    routes = {route: list(dict.fromkeys(n.layer for n in near_empty if n.route == route))
              for route in ROUTE_WORDS if any(n.route == route for n in near_empty)}
    return "".join(f" {subject}{' (' + listed([f'`{n}`' for n in names]) + ')' if len(routes) > 1 else ''} {rest}"
                   for route, names in routes.items() for subject, rest in [ROUTE_WORDS[route]])


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


def block_density_key_result(layers: pd.DataFrame, focus: str, compression: float, data: str) -> str:
    """Task 3's key result: block 0's convolutions under the ``focus`` pruner (:func:`block_density_words`) at
    ``compression`` on ``data`` (words). Where that pruner read synthetic stand-in data to choose its mask, the
    figures are flagged as a pipeline check, and the same figures under a pruner that reads no data
    (:data:`~prunelab.core.choices.DATA_FREE_PRUNERS`; Rand left out, its layers sit at the target by construction)
    follow: those hold on the real set too, from the same initial weights (:func:`same_weights`: one run's)."""
    head = f"**Block 0 convolution weights under {focus} at compression {compression:g}** ({data}"
    own = layers[layers["label"] == focus]
    if not _reads_stand_in(own):
        return f"{head}): {block_density_words(own)}."
    text = (f"{head}; {focus} chose them from these generated images, so they are a pipeline check, not a finding): "
            f"{block_density_words(own)}.")
    free = [label for label in column_order(layers["label"])
            if set(layers.loc[layers["label"] == label, "pruner"]) <= set(DATA_FREE_PRUNERS) - {"rand"}]
    if free:  # the most rounds: SynFlow's paper's method
        chosen = layers[layers["label"] == free[-1]]
        text += (f" **{free[-1]}** never reads the data to choose its mask, so its figures hold on the real set too, "
                 f"{same_weights(chosen)}: {block_density_words(chosen)}.")
    return text


def _reads_stand_in(part: pd.DataFrame) -> bool:
    """Whether a pruner's rows of the per-layer table chose their mask from synthetic stand-in data."""
    synthetic = "data_source" in part and bool((part["data_source"] == "synthetic").any())
    return synthetic and not set(part["pruner"]) <= set(DATA_FREE_PRUNERS)
