"""Notebook 05: are the pruners finding anything? The sanity checks of Frankle et al. (ICLR 2021) as a table
and findings, from records of runs that differ from the pruner's own run in one flag only.

An ablation changes one thing: ``shuffle`` permutes each layer's mask and ``reinitialize`` draws fresh weights
for the kept positions, both keeping the pruner's per-layer densities; ``invert`` keeps the lowest scores instead
of the highest, which under global scope moves the densities too. If accuracy does not move under the shuffle,
what the pruner found was a density per layer, not which weights; under re-initialisation, the kept weights'
initial values did not matter; if it does not move under inversion either, not even the densities show.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from .numbers import (
    ALPHA,
    accuracy_cell,
    at_chance,
    compare_means,
    compression_text,
    holm,
    listed,
    p_cell,
    p_words,
    passing_by_chance,
)
from .style import column_order
from .tables import setup_row_label

#: the ablations, as RunConfig's flag and a reader's name, in table order
ABLATIONS = {"shuffle": "layerwise shuffle", "reinitialize": "re-initialised", "invert": "inverted scores"}
#: the column of the unmodified pruner
AS_SCORED = "as scored"
#: the pruners of Frankle et al.'s claim, which score at initialisation; GraSP's also covers its inverted scores
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
    ablation's cell followed by Welch's p against the pruner as scored, Holm-adjusted over the row's ablations
    (:func:`.numbers.holm`)."""
    table = single_ablations(table)
    rows = []
    for (setup, label, compression), group in _groups(table):
        scored = list(group.loc[group["ablation"] == AS_SCORED, "top1"])
        data = setup_row_label(setup, group["data_source"].iloc[0], group["data"].iloc[0])
        row = {"Data / Arch": data, "pruner": label, "compression": compression_text(compression),
               AS_SCORED: accuracy_cell(scored)}
        values = {name: list(group.loc[group["ablation"] == name, "top1"]) for name in ABLATIONS.values()}
        tests = holm([compare_means(values[name], scored) for name in ABLATIONS.values()])
        for name, comparison in zip(ABLATIONS.values(), tests):
            row[name] = accuracy_cell(values[name])
            row[f"{name}: p"] = p_cell(comparison.p_value) if comparison.testable else "–"
        rows.append(row)
    return pd.DataFrame(rows).set_index(["Data / Arch", "pruner", "compression"])


def _groups(table: pd.DataFrame):
    """(set-up, pruner label, compression) groups, set-ups in table order and pruners in the workbook's order."""
    order = {label: i for i, label in enumerate(column_order(table["label"]))}
    keys = sorted(table.groupby(["setup", "label", "compression"], sort=False).groups,
                  key=lambda k: (list(dict.fromkeys(table["setup"])).index(k[0]), order[k[1]], k[2]))
    grouped = table.groupby(["setup", "label", "compression"], sort=False)
    return [(key, grouped.get_group(key)) for key in keys]


@dataclass(frozen=True)
class AblationVerdict:
    """One ablation of one pruner at one compression against the pruner as scored: the difference of mean top-1
    (ablation minus as scored, points), Welch's p Holm-adjusted over the ablations of that pruner and
    compression, and whether it can be told apart at this n. ``at_chance``:
    every run of both predicts no better than the most frequent class, so there is nothing to tell apart;
    ``collapsed``: how many of the pruner's own ``seeds`` runs as scored do, ``ablation_collapsed`` how many of
    the ablation's ``ablation_seeds`` do: where some do, a tie between them says nothing (a difference told apart
    still does: one side lifted the collapsed runs)."""

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


def ablation_study(table: pd.DataFrame) -> list[AblationVerdict]:
    """An :class:`AblationVerdict` per set-up on real data, pruner, compression and ablation that ran."""
    table = single_ablations(table[~table["stand_in"].astype(bool)])
    verdicts = []
    for (setup, label, compression), group in _groups(table):
        scored = list(group.loc[group["ablation"] == AS_SCORED, "top1"])
        constant = at_chance(group)
        ran = {name: list(group.loc[group["ablation"] == name, "top1"]) for name in ABLATIONS.values()}
        ran = {name: values for name, values in ran.items() if values and scored}
        collapsed = int(constant[group["ablation"] == AS_SCORED].sum())
        for name, c in zip(ran, holm([compare_means(values, scored) for values in ran.values()])):
            both = constant[group["ablation"].isin([AS_SCORED, name])].all()
            verdicts.append(AblationVerdict(setup, label, compression, name, c.difference, c.p_value, c.testable,
                                            c.significant, bool(both), collapsed, len(scored),
                                            int(constant[group["ablation"] == name].sum()), len(ran[name])))
    return verdicts


def ablation_findings(table: pd.DataFrame) -> str:
    """Markdown: per set-up and pruner, which ablations can be told apart from the pruner as scored at this n, and
    by how much; a pruner none of whose ablations can be told apart found a per-layer density, not weights."""
    verdicts = ablation_study(table)
    if not verdicts:
        return "- Every set-up here ran on synthetic stand-in data: a pipeline check, with nothing to conclude."
    lines = []
    for (setup, pruner), verdicts_of in pd.DataFrame(verdicts).groupby(["setup", "pruner"], sort=False):
        group = verdicts_of[~verdicts_of["at_chance"]]
        apart = group[group["told_apart"]]
        tied = group[~group["told_apart"] & group["testable"]]
        same = tied[(tied["collapsed"] == 0) & (tied["ablation_collapsed"] == 0)]  # a tie beside collapsed runs: none
        chance = verdicts_of[verdicts_of["at_chance"]].groupby("compression", sort=False)["ablation"]
        parts = []
        if len(apart):
            parts.append("told apart from " + "; ".join(
                f"{r.ablation} at {compression_text(r.compression)} ({r.difference:+.1f} points, "
                f"{p_words(r.p_value)})" for r in apart.itertuples()))
        if len(same):
            parts.append("not told apart from " + "; ".join(
                f"{r.ablation} at {compression_text(r.compression)} ({r.difference:+.1f} points, {p_words(r.p_value)})"
                for r in same.itertuples()))
        if not len(apart) and len(same):
            # inverted scores ranked over the whole network moved the densities too
            moved = ABLATIONS["invert"] in set(same["ablation"]) and _global(table, setup, pruner)
            parts.append("nothing it chose, weights or densities, shows at this n" if moved
                         else "nothing it found beyond each layer's density shows at this n")
        elif not len(apart) and not group["testable"].all():
            parts.append("fewer than two seeds: no ablation can be tested")
        parts += [f"at {compression_text(c)} it and its {listed(list(names))} ablation{'s' if len(names) > 1 else ''} "
                  "score no better than the most frequent class: nothing to tell apart" for c, names in chance]
        parts += _collapsed_ties(tied)
        lines.append(f"- **{pruner}** on {setup}: " + "; ".join(parts) + ".")
    claim = frankle_claim(table, verdicts)
    return "\n".join(lines + ([claim] if claim else []))


def frankle_claim(table: pd.DataFrame, verdicts: list[AblationVerdict]) -> str:
    """The paper's claim judged per pruner of :data:`CLAIM_PRUNERS` by the ablations that test it (layerwise
    shuffle, re-initialisation; for GraSP inverted scores as well): against it where one of them costs accuracy
    beyond the test (those named), for it where none does and some tie with it (no collapsed runs beside the
    tie) or gain (the ablation and compression of each named); empty where no such pruner ran."""
    names = dict(zip(table["label"], table["pruner"])) if "pruner" in table else {}
    against, agree, on_ties, tests = [], [], False, 0
    for label, rows in pd.DataFrame(verdicts).groupby("pruner", sort=False) if verdicts else ():
        if names.get(label) not in CLAIM_PRUNERS:
            continue
        tested = [ABLATIONS["shuffle"], ABLATIONS["reinitialize"]] + [ABLATIONS["invert"]] * (names[label] == "grasp")
        rows = rows[rows["ablation"].isin(tested) & ~rows["at_chance"]]
        tests += int(rows["testable"].sum())
        hurt = rows[rows["told_apart"] & (rows["difference"] < 0)]
        clear = (rows["collapsed"] == 0) & (rows["ablation_collapsed"] == 0)  # no collapsed run beside a tie
        ties = rows[~rows["told_apart"] & rows["testable"] & clear]
        gains = rows[rows["told_apart"] & (rows["difference"] > 0)]
        if len(hurt):
            against.append(f"{label} (" + "; ".join(f"{r.ablation} at {compression_text(r.compression)}: "
                                                    f"{r.difference:+.1f} points" for r in hurt.itertuples()) + ")")
        elif len(ties) or len(gains):
            on_ties |= bool(len(ties))
            pairs = [f"{r.ablation} at {compression_text(r.compression)}"
                     for r in pd.concat([ties, gains]).itertuples()]
            agree.append(f"{label} (not worse: {listed(pairs)})")
    if not against and not agree:
        return ""
    verdict = "; ".join(([f"these runs go against it for {listed(against)}"] if against else [])
                        + ([f"they are in line with it for {listed(agree)}"] if agree else []))
    expected = passing_by_chance(tests)
    chance = (f" ({tests} tests at p < {ALPHA:g}, each Holm-adjusted only over its pruner's ablations at one "
              f"compression: were no ablation to matter, up to about {expected} would pass by chance)"
              if expected else "")
    return ("- **Frankle et al.'s claim** (the pruners that score at initialisation find how many weights to keep "
            "per layer, not which: a layerwise shuffle or re-initialisation costs them nothing, nor GraSP its "
            f"scores inverted): {verdict}{chance}."
            + (" Where they agree, it rests on ties at this n, weaker evidence than a difference." if on_ties else ""))


def _collapsed_ties(tied: pd.DataFrame) -> list[str]:
    """The ties (verdicts not told apart) beside runs at chance, said as such: once per compression where the
    pruner as scored collapsed on some seeds, once per ablation that did where it did not."""
    own = tied[tied["collapsed"] > 0].drop_duplicates("compression")
    theirs = tied[(tied["collapsed"] == 0) & (tied["ablation_collapsed"] > 0)]
    return ([f"at {compression_text(r.compression)} it collapsed on {r.collapsed} of its {r.seeds} seeds (no better "
             "than the most frequent class), so a tie with its ablations there says nothing" for r in own.itertuples()]
            + [f"its {r.ablation} ablation at {compression_text(r.compression)} collapsed on {r.ablation_collapsed} of "
               f"{r.ablation_seeds} seeds, so a tie with it there says nothing" for r in theirs.itertuples()])


def _global(table: pd.DataFrame, setup: str, label: str) -> bool:
    """Whether the runs of the pruner labelled ``label`` on ``setup`` ranked their scores over the whole network."""
    runs = (table["setup"] == setup) & (table["label"] == label)
    return "mask_scope" not in table or set(table.loc[runs, "mask_scope"]) == {"global"}
