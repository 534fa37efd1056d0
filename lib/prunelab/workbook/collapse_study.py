"""Where each pruner collapses across compression (Task 1's collapse study): how far each pruner goes on a
set-up before a seed falls to chance (and where every seed is), a layer empties or no path of kept weights is left,
and whether the SynFlow paper's claim (SynFlow outlasts the pruners that score from data) holds on these runs, counted
seed by seed: no test of mean top-1, which three seeds rarely settle, backs an order of pruners. Numbers and
verdicts as frozen dataclasses (:func:`collapse_study`, :func:`synflow_claim`), then words.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..core.choices import CHANCE_RULE
from .collapses import emptied_layers, runs_without_path
from .numbers import at_chance, compression_text
from .style import pruner_label


@dataclass(frozen=True)
class Survival:
    """How far one pruner goes on one set-up before its networks stop learning.

    ``survives_to``: the highest studied compression up to which (inclusive) every seed's top-1 stays above
    chance at every studied compression (None: already at chance at the lowest). ``first_at_chance``: the
    lowest compression where a seed falls to chance; ``every_at_chance``: the lowest where every seed is at chance
    (None: at none). ``first_emptied``: the lowest compression where a seed's
    network has a layer with no weight left after training (layer collapse; the collapse table's layers).
    ``first_cut``: the lowest compression where a seed's trained network keeps no path of weights from input to
    output (:mod:`.collapses`), None where none is cut or ``paths_checked`` is false (a row that names no
    readable record, or lacks the most frequent class's share). Only runs at chance are rebuilt: a network with
    no path answers every input alike, so it cannot score above chance. Chance is the collapse table's rule,
    :func:`~prunelab.workbook.numbers.at_chance`.
    """

    setup: str
    label: str
    survives_to: float | None
    first_at_chance: float | None
    first_emptied: float | None
    first_cut: float | None
    paths_checked: bool
    every_at_chance: float | None = None


def collapse_study(table: pd.DataFrame) -> list[Survival]:
    """A :class:`Survival` per set-up on real data and pruner label, set-ups and pruners in table order."""
    real = table[~table["stand_in"].astype(bool)]
    survivals = []
    for (setup, label), rows in real.groupby(["setup", "label"], sort=False):
        above, every, emptied, cut = {}, {}, {}, {}
        for compression, at in rows.assign(emptied=emptied_layers(rows)).groupby("compression"):
            chance = at_chance(at)
            above[compression], every[compression] = not chance.any(), bool(chance.all())
            emptied[compression] = any(bool(layers) for layers in at["emptied"])
            cut[compression] = runs_without_path(at[chance])
        shares = rows.get("majority_class_top1")  # chance needs each row's share of the most frequent class
        checked = None not in cut.values() and shares is not None and shares.notna().all()
        ordered = sorted(above)
        failing = [c for c in ordered if not above[c]]
        first_at_chance = failing[0] if failing else None
        survives = [c for c in ordered if first_at_chance is None or c < first_at_chance]
        survivals.append(Survival(setup, label, survives[-1] if survives else None, first_at_chance,
                                  next((c for c in ordered if emptied[c]), None),
                                  next((c for c in ordered if checked and cut[c]), None), bool(checked),
                                  next((c for c in ordered if every[c]), None)))
    return survivals


@dataclass(frozen=True)
class SynflowClaim:
    """The SynFlow paper's claim on one set-up: iterative SynFlow avoids layer collapse up to the highest
    compression, while SNIP and GraSP collapse earlier. ``synflow_survives``: every seed of SynFlow with its paper's
    rounds stays above chance at every studied compression, up to ``highest``; ``earlier``: the gradient pruners
    with every seed at chance at a compression where every seed of SynFlow is still above it (``earlier_at``: the
    lowest such compression of each); ``not_earlier``: those without. Both sides are held to the claim's strict
    reading: a gradient pruner falls only with every seed at chance, and SynFlow survives only with every seed
    above it, so one seed at chance moves SynFlow off surviving but no gradient pruner into falling first."""

    setup: str
    highest: float
    synflow_falls_at: float | None  # where a seed of SynFlow first falls to chance (None: never)
    earlier: tuple[str, ...]
    not_earlier: tuple[str, ...]
    earlier_at: tuple[float, ...] = ()
    synflow_every_at: float | None = None  # where every seed of SynFlow is at chance (None: never)

    @property
    def synflow_survives(self) -> bool:
        return self.synflow_falls_at is None

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
        # below ``reach`` every seed of SynFlow is above chance: a pruner all at chance there fell first
        earlier = tuple(g for g in gradient if g in by_label and by_label[g].every_at_chance is not None
                        and (reach is None or by_label[g].every_at_chance < reach))
        not_earlier = tuple(g for g in gradient if g in by_label and g not in earlier)
        claims.append(SynflowClaim(setup, highest, reach, earlier, not_earlier,
                                   tuple(float(by_label[g].every_at_chance) for g in earlier),
                                   by_label[synflow].every_at_chance))
    return claims


def _studied(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the set-ups run at more than one compression: those a collapse study speaks of."""
    return table[table.groupby("setup")["compression"].transform("nunique") > 1]


def studied_claims(table: pd.DataFrame) -> list[SynflowClaim]:
    """:func:`synflow_claim` on the real set-ups of ``table`` run at more than one compression."""
    table = _studied(table)
    return synflow_claim(table, collapse_study(table))


def collapse_study_findings(table: pd.DataFrame) -> str:
    """Markdown: per real set-up studied at several compressions, how far each pruner stays above chance, where
    a layer first empties and where a network is first left with no path, then whether the data agree with the
    SynFlow paper's claim."""
    table = _studied(table)
    survivals = collapse_study(table)
    if not survivals:
        return "- No set-up on real data was run at more than one compression: nothing to say about collapse."
    claims = synflow_claim(table, survivals)
    claim_lines = [f"- **The SynFlow paper's claim on {c.setup}**: {claim_verdict(c)}" for c in claims]
    return "\n".join([_survival_line(s) for s in survivals] + claim_lines)


def _survival_line(s: Survival) -> str:
    if s.survives_to is None:
        reach = f"has a seed at chance already at compression {compression_text(s.first_at_chance)}{_every_words(s)}"
    elif s.first_at_chance is None:
        reach = (f"stays above chance on every seed at every compression studied, up to "
                 f"{compression_text(s.survives_to)} ({10 ** -s.survives_to:.2%} of the weights kept)")
    else:
        reach = (f"stays above chance on every seed up to compression {compression_text(s.survives_to)}; a seed "
                 f"first falls to chance at {compression_text(s.first_at_chance)}{_every_words(s)}")
    return f"- **{s.label}** on {s.setup} {reach}; {_structure_words(s)}."


def _every_words(s: Survival) -> str:
    """" (every seed there)", " (every seed at 2.5)", " (never every seed)": where all the seeds are at chance."""
    if s.every_at_chance is None:
        return " (never every seed)"
    if s.every_at_chance == s.first_at_chance:
        return " (every seed there)"
    return f" (every seed at {compression_text(s.every_at_chance)})"


def _structure_words(s: Survival) -> str:
    """Where a layer first empties and, where the records were checked, where a network is first left with no
    path, the lower compression first."""
    emptied = None if s.first_emptied is None else f"a layer first empties at {compression_text(s.first_emptied)}"
    if not s.paths_checked or s.first_cut is None:
        kept = ", and every network keeps a path from input to output" if s.paths_checked else ""
        return (emptied or "no layer empties") + kept
    cut = f"a network is first left with no path from input to output at {compression_text(s.first_cut)}"
    if emptied is None:
        return f"no layer empties; {cut}"
    if s.first_cut == s.first_emptied:
        return (f"a layer first empties and a network is first left with no path from input to output at "
                f"{compression_text(s.first_cut)}")
    return f"{cut}; {emptied}" if s.first_cut < s.first_emptied else f"{emptied}; {cut}"


#: how the claim is judged: seed by seed, not by a test of mean top-1 (which n=3 seeds rarely settle)
CLAIM_BASIS = (f" (Counted seed by seed, not tested: a run is at chance where it scores {CHANCE_RULE}; a gradient "
               "pruner counts as falling first only at a compression where all its seeds are at chance and all of "
               "SynFlow's are still above it, and SynFlow survives only where all its seeds stay above chance.)")


def claim_verdict(c: SynflowClaim) -> str:
    """Whether the data agree with the SynFlow paper's claim on ``c.setup``, where each side falls, and on what
    basis (:data:`CLAIM_BASIS`)."""
    return _verdict(c) + CLAIM_BASIS


def _seeds_falling(c: SynflowClaim) -> str:
    """Where SynFlow's seeds fall to chance: "every seed at compression 3", or where the first does and where
    every seed is ("a seed at compression 2.5, every seed at 3"; "a seed at compression 2.5" where not all do)."""
    first = compression_text(c.synflow_falls_at)
    if c.synflow_every_at == c.synflow_falls_at:
        return f"every seed at compression {first}"
    every = f", every seed at {compression_text(c.synflow_every_at)}" if c.synflow_every_at is not None else ""
    return f"a seed at compression {first}{every}"


def _verdict(c: SynflowClaim) -> str:
    synflow = pruner_label("synflow", None)
    where = ", ".join(f"{name} at {compression_text(at)}" for name, at in zip(c.earlier, c.earlier_at))
    first = (f"every seed of {' and of '.join(c.earlier)} is at chance at a compression where every seed of "
             f"{synflow} is still above it ({where})")
    highest = " (the highest studied)" if c.synflow_falls_at == c.highest else ""
    if c.agrees:
        return (f"the data agree. Every seed of {synflow} stays above chance up to compression "
                f"{compression_text(c.highest)}, while {first}.")
    if c.earlier and not c.not_earlier and not c.synflow_survives:
        return f"the data partly agree: {first}, but {synflow} falls to chance too: {_seeds_falling(c)}{highest}."
    if c.synflow_survives:
        reach = f"every seed of {synflow} stays above chance up to compression {compression_text(c.highest)}"
    else:
        reach = f"{synflow} itself falls to chance: {_seeds_falling(c)}{highest}"
    parts = [reach] + ([first] if c.earlier else [])
    if c.not_earlier:
        parts.append(f"{' and '.join(c.not_earlier)} never {'has' if len(c.not_earlier) == 1 else 'have'} every "
                     f"seed at chance while every seed of {synflow} is still above it")
    return "the data do not fully agree: " + "; ".join(parts) + "."
