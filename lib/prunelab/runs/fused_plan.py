"""Which runs of a sweep may train as one fused network (:mod:`prunelab.runs.fused`): the groups of runs that
share a set-up and every training setting, and how many of a group's runs read one input block."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import fields

from ..core.train import resolve_device
from ..data.catalog import FOLDER_DATASETS
from ..data.in_memory import data_root
from .config import RUNTIME_FIELDS, RunConfig
from .pretrain import shares_pretraining

#: the settings in which the runs of one group may differ: what pruning and the seed choose, the dense
#: pre-training's epochs (Mag's: a group trains each training history's runs together), and the name
PER_RUN_FIELDS = ("pruner", "compression", "pre_epochs", "prune_epochs", "compression_schedule", "mask_scope",
                  "prune_dataset_ratio", "prune_batch_size", "prune_bias", "prune_batchnorm", "prune_residual",
                  "prune_train_mode", "reinitialize", "shuffle", "invert", "seed", "expid", "force", "verbose",
                  "pruner_version", "pruner_origin")


def fusion_obstacle(config: RunConfig) -> str | None:
    """Why ``config`` trains alone whatever its group, or None when it can be fused."""
    if config.fuse == "off":
        return "--fuse off"
    if config.experiment != "singleshot":
        return f"{config.experiment} runs train one at a time"
    if config.save_trace:
        return "a traced run is traced on its own network"
    if config.dataset in FOLDER_DATASETS:
        return "image-folder data sets are streamed by loader processes per run"
    return None


def group_key(config: RunConfig) -> tuple:
    """What every run of one group shares: every setting but :data:`PER_RUN_FIELDS` and the runtime settings
    that do not choose where it trains, and the folder its data come from (the runs of a seed read one batch:
    runs whose ``--data`` differs may read other images, or another source under ``auto``)."""
    where = ("gpu", "no_cuda", "no_cuda_graphs", "result_dir", "fuse")
    left_out = set(PER_RUN_FIELDS) | (set(RUNTIME_FIELDS) - set(where))
    settings = tuple((f.name, _hashable(getattr(config, f.name))) for f in fields(config) if f.name not in left_out)
    return (*settings, ("data folder", str(data_root(config.data_dir).resolve())))


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def plan(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """The runs split into groups that may train fused (in first-seen order); a run that cannot be fused, or
    has no partner, is a group of one, and so is a run listed again (after its first: it reuses that record)."""
    groups: dict[tuple, list[RunConfig]] = {}
    alone: list[list[RunConfig]] = []
    seen: set[str] = set()
    for config in configs:
        if fusion_obstacle(config) is not None or config.record_name in seen:
            alone.append([config])
        else:
            groups.setdefault(group_key(config), []).append(config)
        seen.add(config.record_name)
    return [group for group in groups.values()] + alone


def share_out(groups: list[list[RunConfig]], workers: int) -> list[list[RunConfig]]:
    """``groups`` with the largest cut in two until there are ``workers`` of them, or none left to cut, so
    that no worker process of a sweep waits while another trains the whole grid (:func:`_halves`). Groups
    that train on a GPU stay whole: there the fused step gains most, and parts in processes of their own
    would each measure the same free memory."""
    groups = [list(g) for g in groups]
    while len(groups) < workers:
        cuts = {i: _halves(g) for i, g in enumerate(groups) if resolve_device(g[0].gpu, g[0].no_cuda).type == "cpu"}
        cuttable = [i for i, halves in cuts.items() if halves is not None]
        if not cuttable:
            break
        heaviest = max(cuttable, key=lambda i: _epochs(groups[i]))
        groups[heaviest:heaviest + 1] = cuts[heaviest]
    return groups


def _halves(group: list[RunConfig]) -> tuple[list[RunConfig], list[RunConfig]] | None:
    """``group`` in two parts as even in training epochs as may be, cut between seeds (every run of a part's
    seeds in it, so they still share input blocks and pre-trainings), or between variants where that evens the
    parts more (each variant with its runs of every seed, a pre-training's runs one variant); None where
    neither cut has two units (one run, or one seed's runs of one pre-training)."""
    cuts = []
    for key in (lambda c: c.seed, _variant):
        units: dict = {}
        for config in group:
            units.setdefault(key(config), []).append(config)
        if len(units) > 1:
            parts: tuple[list[RunConfig], list[RunConfig]] = ([], [])
            for unit in sorted(units.values(), key=_epochs, reverse=True):  # each to the lighter part so far
                min(parts, key=lambda part: (_epochs(part), len(part))).extend(unit)
            cuts.append(parts)
    return min(cuts, key=lambda parts: max(map(_epochs, parts)), default=None)


def _variant(config: RunConfig) -> tuple:
    """What the runs of one variant share: a pre-training's epochs, else every per-run setting but the seed."""
    if shares_pretraining(config):
        return ("pre_epochs", config.pre_epochs)
    return tuple(_hashable(getattr(config, name)) for name in PER_RUN_FIELDS if name != "seed")


def _epochs(runs: list[RunConfig]) -> int:
    """Training epochs of ``runs``, each pre-training counted once (it is shared by the runs of its seed)."""
    pre = {(c.seed, c.pre_epochs) for c in runs if shares_pretraining(c)}
    return sum(c.post_epochs for c in runs) + sum(epochs for _, epochs in pre)


def plan_words(groups: list[list[RunConfig]]) -> str:
    """The plan in a few words: "fusable: 2 groups (11 and 6 runs), 4 runs alone"."""
    sizes = [len(g) for g in groups if len(g) > 1]
    alone = sum(len(g) for g in groups if len(g) == 1)
    if not sizes:
        return f"no runs to fuse, {alone} alone"
    counted = " and ".join(str(n) for n in sizes) if len(sizes) < 4 else f"{sum(sizes)} in all"
    return (f"fusable: {len(sizes)} group{'s' if len(sizes) > 1 else ''} ({counted} runs)"
            + (f", {alone} alone" if alone else ""))


def input_blocks(seeds: Sequence[int]) -> int:
    """How many consecutive runs, ordered by seed, read one input block when runs of ``seeds`` train fused:
    the runs per seed when every seed has as many, else 1 (each run's batch its own)."""
    counts = set(Counter(seeds).values())
    return len(seeds) // len(set(seeds)) if len(counts) == 1 else 1
