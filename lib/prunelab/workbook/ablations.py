"""Notebook 05: are the pruners finding anything? The sanity checks of Frankle et al. (ICLR 2021) as a table
and a verdict per ablation, from records of runs that differ from the pruner's own run in one flag only; the
words drawn from the verdicts are in :mod:`.ablation_words`.

An ablation differs from the pruner's run in one flag. ``shuffle`` permutes each layer's mask and ``reinitialize``
draws fresh weights for the kept positions: each changes one thing after pruning, keeping the pruner's per-layer
densities. ``invert`` changes the pruning itself: it keeps the lowest scores instead of the highest, which under
global scope gives the layers other densities. If accuracy does not move under the shuffle, what the pruner found
was a density per layer, not which weights; under re-initialization, the kept weights' initial values did not
matter; under inversion, the order of the scores did not matter at all, neither which weights nor how many per
layer.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import pandas as pd

from .numbers import (  # LARGE_POINTS: a difference not told apart is large, and unresolved rather than a tie,
    LARGE_POINTS,  # from this many points of top-1 on, where every ablated seed also lies beyond every seed as scored
    MeanComparison,
    accuracy_cell,
    at_chance,
    compare_means,
    compression_text,
    holm,
    p_cell,
)
from .style import column_order
from .table_notes import SETUP_LEVEL
from .tables import setup_row_label

#: the ablations, as RunConfig's flag and a reader's name, in table order
ABLATIONS = {"shuffle": "layerwise shuffle", "reinitialize": "re-initialized", "invert": "inverted scores"}
#: the column of the unmodified pruner
AS_SCORED = "as scored"
#: the pruners of Frankle et al.'s claim, which score at initialization; GraSP's also covers its inverted scores
CLAIM_PRUNERS = ("snip", "grasp", "synflow")


def ablation_of(row) -> str | None:
    """A record's ablation: the reader's name of the one flag it sets, :data:`AS_SCORED` for none, or None for
    several at once (the command line takes them together, as the original tool did)."""
    chosen = [name for flag, name in ABLATIONS.items() if bool(row.get(flag, False))]
    return None if len(chosen) > 1 else chosen[0] if chosen else AS_SCORED


def single_ablations(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each run's ``ablation`` (:func:`ablation_of`), the runs that set several at once left out
    with a warning that counts them: each comparison here changes one thing against the pruner as scored."""
    table = table.assign(ablation=[ablation_of(row) for row in table.to_dict("records")])
    several = table["ablation"].isna()
    if several.any():
        warnings.warn(f"{int(several.sum())} of the runs set several ablations at once; they are left out, as the "
                      "sanity checks compare one ablation at a time with the pruner as scored", stacklevel=2)
    return table[~several]


def ablation_table(table: pd.DataFrame) -> pd.DataFrame:
    """Top-1 as "mean ± sd (n)" per set-up, pruner and compression (rows) and ablation (columns), each
    ablation's cell followed by Welch's p against the pruner as scored, Holm-adjusted over the pruner's family
    (:func:`ablation_tests`): the p the verdicts on it use."""
    table = single_ablations(table)
    tests = ablation_tests(table)
    rows = []
    for (setup, label, compression), group in _groups(table):
        scored = list(group.loc[group["ablation"] == AS_SCORED, "top1"])
        data = setup_row_label(setup, group["data_source"].iloc[0], group["data"].iloc[0])
        row = {SETUP_LEVEL: data, "pruner": label, "compression": compression_text(compression),
               AS_SCORED: accuracy_cell(scored)}
        for name in ABLATIONS.values():
            comparison = tests[(setup, label, compression, name)]
            row[name] = accuracy_cell(list(group.loc[group["ablation"] == name, "top1"]))
            row[f"{name}: p"] = p_cell(comparison.p_value) if comparison.testable else "–"
        rows.append(row)
    return pd.DataFrame(rows).set_index([SETUP_LEVEL, "pruner", "compression"])


def pretrained_reinitialized(table: pd.DataFrame) -> dict[tuple[str, str], list[int]]:
    """The set-ups and pruner labels whose re-initialized runs (that ablation alone: :func:`ablation_of`) were
    trained before pruning, with their pre-training epochs: re-initializing draws fresh weights after that training
    and so throws it away, and their difference from the pruner as scored mixes the mask's effect with the loss of
    pre-training. Read from the records (``pre_epochs``), whichever pruner it is (Mag in the workbook's grids)."""
    if "pre_epochs" not in table or table.empty:
        return {}
    reinitialized = pd.Series([ablation_of(row) == ABLATIONS["reinitialize"] for row in table.to_dict("records")],
                              index=table.index)
    runs = table[reinitialized & (table["pre_epochs"].fillna(0) > 0)]
    return {key: sorted(int(e) for e in set(epochs))
            for key, epochs in runs.groupby(["setup", "label"], sort=False)["pre_epochs"]}


def ablation_tests(table: pd.DataFrame) -> dict[tuple[str, str, float, str], MeanComparison]:
    """Welch's comparison of each ablation with its pruner as scored, keyed by set-up, pruner label,
    compression and ablation (the rows of ``table`` marked by :func:`single_ablations`), Holm-adjusted
    (:func:`.numbers.holm`) over the pruner's family: every ablation at every compression of its set-up, the
    tests that its verdict draws on together, so that the verdict's chance of a false difference stays at
    :data:`.numbers.ALPHA` however many compressions it spans. A pair whose every run on both sides is at chance
    (:func:`_both_at_chance`, the verdict's ``at_chance``) is one the verdict sets aside, nothing to tell apart,
    whatever the test says: it joins no family and gets no p, as a pair where neither side varies does."""
    raw: dict[tuple[str, str], dict] = {}
    for (setup, label, compression), group in _groups(table):
        scored = list(group.loc[group["ablation"] == AS_SCORED, "top1"])
        raw.setdefault((setup, label), {}).update(
            {(setup, label, compression, name): _welch(list(group.loc[group["ablation"] == name, "top1"]), scored,
                                                       _both_at_chance(group, name))
             for name in ABLATIONS.values()})
    return {key: comparison for family in raw.values()
            for key, comparison in zip(family, holm(list(family.values())))}


def _welch(ablated: list[float], scored: list[float], set_aside: bool) -> MeanComparison:
    """:func:`.numbers.compare_means` of ``ablated`` against ``scored``, untestable (p NaN) where neither group
    varies (every seed the same top-1, as runs at chance often are): Welch's statistic is undefined there, and
    compare_means' stand-in of p = 1 or 0 is no test to count in a family or show as a p. One group without
    spread leaves the test defined: the other's spread carries it. Untestable too where ``set_aside`` (both sides
    at chance: the verdict says nothing of the pair, so it is no test its verdict draws on)."""
    comparison = compare_means(ablated, scored)
    if comparison.testable and (set_aside or len(set(ablated)) == len(set(scored)) == 1):
        return replace(comparison, p_value=math.nan)
    return comparison


def _both_at_chance(group: pd.DataFrame, name: str) -> bool:
    """Whether every run of one set-up, pruner and compression (``group``) as scored and under ablation ``name``
    is at chance (:func:`.numbers.at_chance`), and some ran on each side: the verdict's ``at_chance``."""
    sides = group["ablation"].isin([AS_SCORED, name])
    ran = (group["ablation"] == AS_SCORED).any() and (group["ablation"] == name).any()
    return bool(ran and at_chance(group)[sides].all())


def _groups(table: pd.DataFrame):
    """(set-up, pruner label, compression) groups, set-ups in table order and pruners in the workbook's order."""
    order = {label: i for i, label in enumerate(column_order(table["label"]))}
    keys = sorted(table.groupby(["setup", "label", "compression"], sort=False).groups,
                  key=lambda k: (list(dict.fromkeys(table["setup"])).index(k[0]), order[k[1]], k[2]))
    grouped = table.groupby(["setup", "label", "compression"], sort=False)
    return [(key, grouped.get_group(key)) for key in keys]


#: a pruner as scored is near collapse where it keeps less than this share of its lead over always answering the
#: most frequent class at its lowest compression studied (:attr:`AblationVerdict.near_collapse`)
NEAR_COLLAPSE_SHARE = 0.5


@dataclass(frozen=True)
class AblationVerdict:
    """One ablation of one pruner at one compression against the pruner as scored: the difference of mean top-1
    (ablation minus as scored, points), Welch's p Holm-adjusted over every ablation of that pruner at every
    compression of its set-up (:func:`ablation_tests`), and whether it can be told apart at this n. ``at_chance``:
    every run of both is at chance (:func:`.numbers.at_chance`), so there is nothing to tell apart;
    ``collapsed``: how many of the pruner's own ``seeds`` runs as scored are at chance, ``ablation_collapsed`` how
    many of the ablation's ``ablation_seeds`` are: where some are, a tie between them says nothing (a difference
    told apart still does: one side lifted the collapsed runs).

    ``scored_top1``: the pruner's mean top-1 as scored here; ``lowest_top1`` its mean as scored at
    ``lowest_compression``, the lowest of its set-up; ``chance_top1`` the most frequent class's share (NaN where
    unknown).
    ``low_power``: a difference of :data:`LARGE_POINTS` or more, every ablated seed beyond every seed as scored,
    no collapsed run on either side, and yet not told apart: unresolved at this n, neither a tie nor a finding,
    as a split that clean happens by chance now and then (:func:`clean_split_chance`). ``near_collapse``: the
    pruner as scored keeps less than :data:`NEAR_COLLAPSE_SHARE` of its lead over the most frequent class (over 0
    where unknown) at the lowest compression: an effect found only there says little about the pruner where it
    works. ``family``: how many tests the p was Holm-adjusted over (:attr:`.numbers.MeanComparison.family`)."""

    setup: str
    pruner: str
    compression: float
    ablation: str
    difference: float
    p_value: float
    testable: bool
    told_apart: bool
    at_chance: bool = False
    collapsed: int = 0
    seeds: int = 0
    ablation_collapsed: int = 0
    ablation_seeds: int = 0
    scored_top1: float = math.nan
    lowest_top1: float = math.nan
    lowest_compression: float = math.nan
    chance_top1: float = math.nan
    low_power: bool = False
    near_collapse: bool = False
    family: int = 1


def clean_split_chance(seeds: int, ablation_seeds: int) -> float:
    """How often, were the ablation to change nothing, every ablated seed would lie below every seed as scored,
    or every one above: 2 / C(n1 + n2, n1) over the orderings of the pooled seeds (0.1 at 3 seeds against 3,
    1/3 at 2 against 2). A :attr:`AblationVerdict.low_power` split is no stronger evidence than this."""
    return 2 / math.comb(seeds + ablation_seeds, seeds)


def ablation_study(table: pd.DataFrame) -> list[AblationVerdict]:
    """An :class:`AblationVerdict` per set-up on real data, pruner, compression and ablation that ran, each p
    Holm-adjusted over its pruner's family (:func:`ablation_tests`), as Table M shows it."""
    table = single_ablations(table[~table["stand_in"].astype(bool)])
    tests = ablation_tests(table)
    scored = table[table["ablation"] == AS_SCORED]
    lowest = scored[scored["compression"] == scored.groupby(["setup", "label"])["compression"].transform("min")]
    lowest = lowest.groupby(["setup", "label"]).agg(top1=("top1", "mean"), compression=("compression", "first"))
    verdicts = []
    for (setup, label, compression), group in _groups(table):
        base = tuple(lowest.loc[(setup, label)]) if (setup, label) in lowest.index else (math.nan, math.nan)
        key = (setup, label, compression)
        verdicts += _verdicts(group, key, base, {name: tests[(*key, name)] for name in ABLATIONS.values()})
    return verdicts


def _verdicts(group: pd.DataFrame, key: tuple[str, str, float], lowest: tuple[float, float],
              tests: dict[str, MeanComparison]) -> list[AblationVerdict]:
    """The verdicts of one set-up, pruner and compression (``key``), from ``tests``, its ablations' comparisons
    as :func:`ablation_tests` adjusted them; ``lowest``: the pruner's mean top-1 as scored at the lowest
    compression of its set-up, and that compression."""
    lowest_top1 = lowest[0]
    scored = list(group.loc[group["ablation"] == AS_SCORED, "top1"])
    constant = at_chance(group)
    chance = float(group["majority_class_top1"].mean()) if "majority_class_top1" in group else math.nan
    ran = {name: list(group.loc[group["ablation"] == name, "top1"]) for name in ABLATIONS.values()}
    ran = {name: values for name, values in ran.items() if values and scored}
    collapsed = int(constant[group["ablation"] == AS_SCORED].sum())
    mean = sum(scored) / len(scored) if scored else math.nan
    floor = 0.0 if math.isnan(chance) else chance
    near = lowest_top1 > floor and mean - floor < NEAR_COLLAPSE_SHARE * (lowest_top1 - floor)
    verdicts = []
    for name, c in ((name, tests[name]) for name in ran):
        both = _both_at_chance(group, name)
        theirs = int(constant[group["ablation"] == name].sum())
        beyond = max(ran[name]) < min(scored) if c.difference < 0 else min(ran[name]) > max(scored)
        large = abs(c.difference) >= LARGE_POINTS and beyond and collapsed == theirs == 0
        verdicts.append(AblationVerdict(
            *key, name, c.difference, c.p_value, c.testable, c.significant, at_chance=bool(both),
            collapsed=collapsed, seeds=len(scored), ablation_collapsed=theirs, ablation_seeds=len(ran[name]),
            scored_top1=mean, lowest_top1=lowest_top1, lowest_compression=lowest[1], chance_top1=chance,
            low_power=bool(large and c.testable and not c.significant), near_collapse=bool(near), family=c.family))
    return verdicts
