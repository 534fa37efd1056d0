"""The findings of Task 1 (pruners compared, collapse across compression): figures and verdicts computed from
the tables, never written in advance, then worded. :mod:`.collapse_study` holds Task 1's study of where each
pruner collapses; :mod:`.tracing_findings`, :mod:`.layer_findings` and :mod:`.speed_findings` the other tasks'
findings, in the same shape.

Each kind of finding is two steps: a function returning small frozen dataclasses of the numbers and verdicts
(:func:`tuning_result`, :func:`pruner_ranking`...), and the function a notebook calls, which renders that
structure to Markdown. Tests check the structures; the words only carry their numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from ..core.choices import DATA_FREE_WHY, SYNFLOW_ROUNDS
from .bias_free import BiasFreeCheck, synflow_check
from .collapses import CollapsedCell, collapsed_cells, stand_in_rest_lines, table_left_out
from .numbers import (
    ALPHA,
    AT_CHANCE,
    MeanComparison,
    accuracy_cell,
    at_chance,
    compare_means,
    compression_text,
    counted,
    head_start_words,
    holm,
    listed,
    p_words,
)
from .style import column_order, pruner_label
from .tables import metric_table

# ------------------------------------------------------------------------------ Task 1: pruners compared


@dataclass(frozen=True)
class Seeds:
    """One pruner's (or the unpruned network's) top-1 (%) in one cell, a value per seed, and per seed whether it
    is at chance (:func:`.numbers.at_chance`)."""

    label: str
    top1: tuple[float, ...]
    at_chance: tuple[bool, ...] = ()

    @property
    def mean(self) -> float:
        return sum(self.top1) / len(self.top1)


@dataclass(frozen=True)
class Comparison:
    """Another pruner against the best of its cell: its seeds, and Welch's t-test of the best's against them,
    Holm-adjusted over the cell's comparisons."""

    other: Seeds
    test: MeanComparison


@dataclass(frozen=True)
class PrunerRanking:
    """The pruner with the highest mean top-1 in one set-up at one compression, and each other one against it
    (in column order): ``better_than`` where Welch's t-test at :data:`.numbers.ALPHA`, Holm-adjusted over the
    cell's comparisons (:func:`.numbers.holm`), finds the best ahead,
    ``tied`` where the test runs and finds no difference, ``untestable`` where a side has fewer than two seeds;
    ``pre_epochs``: the epochs each pruner that had any trained its dense network before pruning (Mag)."""

    setup: str
    data: str
    compression: float
    best: Seeds
    better_than: tuple[Comparison, ...]
    tied: tuple[Comparison, ...]
    untestable: tuple[Comparison, ...]
    pre_epochs: tuple[tuple[str, int], ...] = ()

    @property
    def kept(self) -> float:
        return 10 ** -self.compression

    @property
    def others(self) -> tuple[Comparison, ...]:
        """Every other pruner of the cell against the best."""
        return self.better_than + self.tied + self.untestable

    @property
    def joint_best(self) -> tuple[Seeds, ...]:
        """The other pruners whose mean top-1 equals the best's: a tie for first (all at chance, say), named as
        one, not ranked by label."""
        return tuple(c.other for c in self.others if math.isclose(c.other.mean, self.best.mean, rel_tol=1e-12))

    @property
    def leaders(self) -> str:
        """The best and those tied with it, in words ("Mag", "Mag and SNIP")."""
        return listed([self.best.label, *(s.label for s in self.joint_best)])

    @property
    def all_tied(self) -> bool:
        """Whether every pruner of the cell has the best's mean top-1: none ranks above another."""
        return 0 < len(self.joint_best) == len(self.others)

    @property
    def above_chance_only(self) -> tuple[Comparison, ...]:
        """The tied pruners at chance in every seed where the best is above chance in every seed: apart by the
        chance rule, though the test at this n does not separate them."""
        return tuple(c for c in self.tied if c.other.at_chance and all(c.other.at_chance)
                     and self.best.at_chance and not any(self.best.at_chance))

    @property
    def runner_up(self) -> Comparison | None:
        """The other pruner with the highest mean top-1 (equal means: the first label in sorted order)."""
        return min(self.others, key=lambda c: (-c.other.mean, c.other.label), default=None)


def pruner_ranking(rows: pd.DataFrame) -> PrunerRanking:
    """The :class:`PrunerRanking` of ``rows``, the runs of one set-up at one compression (equal means: the
    first label in sorted order is the best)."""
    seeds = {label: Seeds(label, tuple(float(v) for v in group["top1"]), tuple(bool(v) for v in at_chance(group)))
             for label, group in rows.groupby("label")}
    best = max(seeds.values(), key=lambda s: s.mean)
    others = [seeds[label] for label in column_order(seeds) if label != best.label]
    tests = holm([compare_means(best.top1, other.top1) for other in others])
    comparisons = [Comparison(other, test) for other, test in zip(others, tests)]
    pre = rows[rows["pre_epochs"] > 0].groupby("label")["pre_epochs"].max() if "pre_epochs" in rows else {}
    return PrunerRanking(
        rows["setup"].iloc[0], rows["data"].iloc[0], float(rows["compression"].iloc[0]), best,
        better_than=tuple(c for c in comparisons if c.test.significant),
        tied=tuple(c for c in comparisons if c.test.testable and not c.test.significant),
        untestable=tuple(c for c in comparisons if not c.test.testable),
        pre_epochs=tuple((str(label), int(epochs)) for label, epochs in dict(pre).items()))


@dataclass(frozen=True)
class Collapses:
    """The :class:`~.collapses.CollapsedCell` of ``table``, sorted for the findings: ``emptied`` on real data
    with a layer emptied; ``constant``: further cells on real data at chance (:func:`.numbers.at_chance`) with no
    layer emptied; ``stand_in``: how many collapsed cells are on synthetic stand-in data, of which ``masks_hold`` are
    the cells where a pruner that never reads the data emptied a layer (its mask there is the one it would
    choose on the real set, though the accuracy means nothing), ``left_out`` the stand-in's cells that Table A2
    leaves out and only its note counts (:func:`.collapses.table_left_out`); ``bias_free``: SynFlow's emptied layers
    pruned again without biases (:func:`.bias_free.synflow_check`)."""

    emptied: tuple[CollapsedCell, ...]
    constant: tuple[CollapsedCell, ...]
    stand_in: int
    masks_hold: tuple[CollapsedCell, ...] = ()
    bias_free: BiasFreeCheck | None = None
    left_out: tuple[CollapsedCell, ...] = ()

    @property
    def none(self) -> bool:
        return not self.emptied and not self.constant and not self.stand_in


def collapses(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> Collapses:
    """The :class:`Collapses` of the runs in ``table``, Table A2's own left out given the unpruned runs ``dense``."""
    cells = collapsed_cells(table)
    real = [c for c in cells if not c.stand_in]
    return Collapses(tuple(c for c in real if c.layers), tuple(c for c in real if not c.layers),
                     len(cells) - len(real), tuple(c for c in cells if c.stand_in and c.data_free and c.layers),
                     left_out=tuple(c for c in table_left_out(cells, dense) if c.stand_in))


@dataclass(frozen=True)
class DenseReference:
    """The unpruned network on one set-up on real data: what every pruner there is measured against."""

    setup: str
    data: str
    epochs: int
    top1: tuple[float, ...]


@dataclass(frozen=True)
class TuningResult:
    """Task 1: unpruned references, a :class:`PrunerRanking` per real set-up and compression, and the
    collapsed cells. ``setups``: every set-up in table order; ``stand_in``: those on synthetic stand-in data,
    pipeline checks from which nothing is ranked."""

    references: tuple[DenseReference, ...]
    setups: tuple[str, ...]
    stand_in: tuple[str, ...]
    rankings: tuple[PrunerRanking, ...]
    collapses: Collapses


def tuning_result(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> TuningResult:
    """The :class:`TuningResult` of the pruned runs in ``table`` and the unpruned ones in ``dense``."""
    references = tuple(
        DenseReference(setup, rows["data"].iloc[0], int(rows["post_epochs"].iloc[0]),
                       tuple(float(v) for v in rows["top1"]))
        for setup, rows in (dense.groupby("setup", sort=False) if dense is not None and not dense.empty else [])
        if not rows["stand_in"].any())
    setups, stand_in, rankings = [], [], []
    for setup, rows in table.groupby("setup", sort=False):
        setups.append(setup)
        if rows["stand_in"].any():
            stand_in.append(setup)
        else:
            rankings += [pruner_ranking(at) for _, at in rows.groupby("compression")]
    return TuningResult(references, tuple(setups), tuple(stand_in), tuple(rankings),
                        replace(collapses(table, dense), bias_free=synflow_check(table)))  # findings' alone: it prunes


def tuning_findings(table: pd.DataFrame, dense: pd.DataFrame | None = None) -> str:
    """Markdown findings for Task 1 (:func:`tuning_result`): a pruner is called better than another only
    where Welch's t-test over seeds says so, and stand-in set-ups give no conclusions."""
    result = tuning_result(table, dense)
    lines = [f"- Unpruned, {r.setup} reaches {accuracy_cell(r.top1)} top-1 ({r.data}, {r.epochs} "
             f"epoch{'s' if r.epochs != 1 else ''}): the reference every pruner below is measured against."
             for r in result.references]
    for setup in result.setups:
        if setup in result.stand_in:
            lines.append(f"- {setup} ran on synthetic stand-in data: a pipeline check. Its numbers show the code "
                         "runs end to end; no conclusion on accuracy is drawn from them.")
        lines += [_ranking_line(r) for r in result.rankings if r.setup == setup]
    return "\n".join(lines + _power_lines(result.rankings) + _collapse_lines(result.collapses))


def _power_lines(rankings: tuple[PrunerRanking, ...]) -> list[str]:
    """Where some pair of pruners was not told apart, what that means at the seeds the cells have: too little
    power to separate them, not evidence that they are equal."""
    pairs = [(r.best, c) for r in rankings if not r.all_tied for c in r.tied]
    if not pairs:
        return []
    seeds = sorted({len(s.top1) for best, c in pairs for s in (best, c.other)})
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
    family = max(c.test.family for _, c in pairs)
    holm_words = f" and Holm's adjustment over up to {family} comparisons a cell" if family > 1 else ""
    return [f"- Where two pruners are not told apart, the test had {n} seeds a pruner{holm_words}: too little power "
            "to separate differences of a few points (or a pruner at chance in every seed from one just above it), "
            "not evidence that the pruners are equal."]


def _ranking_line(r: PrunerRanking) -> str:
    cell = f"- **{r.setup}** at compression {compression_text(r.compression)} (kept {r.kept:.1%}; {r.data}): "
    if r.all_tied:
        return cell + f"every pruner has the same mean top-1, {accuracy_cell(r.best.top1)}: none ranks above another."
    verb = "share" if r.joint_best else "has"
    # more epochs in all than the others: said beside the lead it may explain
    head = head_start_words(dict(r.pre_epochs), r.best.label, [c.other.label for c in r.others])
    head = f", {head}" if head and not r.joint_best else ""
    parts = [cell + f"{r.leaders} {verb} the highest mean top-1, {accuracy_cell(r.best.top1)}{head}."]
    subject = r.best.label if r.joint_best else "It"
    if r.better_than:
        parts.append(f" {subject} is better than {_compared(r.better_than)} by Welch's t-test at the {ALPHA:g} "
                     "level.")
    tied = tuple(c for c in r.tied if c not in r.above_chance_only)
    if tied:
        parts.append(f" {subject} cannot be told apart from {_compared(tied)} at this n.")
    if r.above_chance_only:
        parts.append(f" {_compared(r.above_chance_only)} {'is' if len(r.above_chance_only) == 1 else 'are'} "
                     f"{AT_CHANCE} in every seed, while {r.best.label} stays above chance in every seed; at this n the "
                     "test does not separate them.")
    if r.untestable:
        parts.append(f" With fewer than two seeds, {', '.join(c.other.label for c in r.untestable)} cannot be told "
                     "apart from it at this n.")
    family = max((c.test.family for c in r.others), default=1)
    if family > 1:
        parts.append(f" The p-values are Holm-adjusted over the cell's {family} comparisons.")
    return "".join(parts)


def _compared(comparisons: tuple[Comparison, ...]) -> str:
    return ", ".join(f"{c.other.label} ({accuracy_cell(c.other.top1)}, {p_words(c.test.p_value)})" for c in comparisons)


def _constant_line(cells: tuple[CollapsedCell, ...]) -> str:
    """The cells at chance (:func:`.numbers.at_chance`) with every layer kept: in how many runs no path is left (a
    constant network whatever its training) and in how many one remains (the training did not recover them)."""
    runs = sum(c.runs for c in cells)
    words = (f"- In {counted(len(cells), 'further pruner and compression cell')}, {counted(runs, 'run')} "
             f"{'is' if runs == 1 else 'are'} {AT_CHANCE} with every layer keeping weights.")
    known = [c for c in cells if c.no_path is not None]
    no_path = [c.no_path for c in known]
    kept = [c.runs - c.no_path for c in known]
    if sum(no_path):
        words += (f" In {sum(no_path)} of those runs no path of kept weights joins input to output, so the network "
                  f"computes a constant whatever its training: {_counted_cells(known, no_path)}.")
    if sum(kept):
        words += (f" In {sum(kept)} a path remains, so the training did not recover them: "
                  f"{_counted_cells(known, kept)}.")
    if len(known) < len(cells):
        words += f" {runs - sum(c.runs for c in known)} have no record to rebuild, so their paths are not known."
    return words


def _counted_cells(cells: list[CollapsedCell], counts: list[int]) -> str:
    """Each cell with a count above 0 as "Rand on MNIST / FC at 2.5 (3 runs)"."""
    return "; ".join(f"{c.label} on {c.setup} at {compression_text(c.compression)} ({n} run{'s' if n > 1 else ''})"
                     for c, n in zip(cells, counts) if n)


def _emptied_line(cells: list[CollapsedCell]) -> str:
    """One set-up's cells where a layer emptied, in a line: per pruner the compressions (with the runs where not
    every seed's), and the range of those runs' top-1 beside the most frequent class's; Table A2 gives the layers."""
    compressions: dict[str, list[str]] = {}
    for e in sorted(cells, key=lambda e: e.compression):
        runs = "" if e.runs == e.seeds else f" ({e.runs_text} runs)"
        compressions.setdefault(e.label, []).append(compression_text(e.compression) + runs)
    where = "; ".join(f"{label} at {listed(at)}" for label, at in compressions.items())
    low, high = min(t for e in cells for t in e.top1), max(t for e in cells for t in e.top1)
    scores = f"{low:.1f}%" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}% to {high:.1f}%"
    majority = listed(list(dict.fromkeys(f"{e.majority_top1:.1f}%" for e in cells)))
    return (f"- **Collapse** on {cells[0].setup} (Table A2), where a layer emptied, by compression: {where}. Those "
            f"runs scored {scores} top-1; always answering the most frequent class scores {majority}."
            + _vanished_words(cells))


def _vanished_words(cells: list[CollapsedCell]) -> str:
    """Where a collapsed run's scores all came out zero in a layer (the collapse detector's second check): zero
    scores in every kept weight of a layer mean nothing flows through it to the output any more, so the network
    was already cut through when that round scored it."""
    hit = [c for c in cells if c.vanished]
    if not hit:
        return ""
    where = "; ".join(f"{c.label} at {compression_text(c.compression)} in `{', '.join(c.vanished)}` "
                      f"({c.vanished_runs} of {counted(c.seeds, 'run')})" for c in hit)
    rest = sum(c.vanished_known for c in hit) - sum(c.vanished_runs for c in hit)  # records that say so
    return (f" Scores vanished (all zero in a layer's kept weights) in {where}: a layer scores all zero only where "
            "nothing flows through its kept weights to the output any more (no path of kept weights and live "
            "units), so those networks were already cut through when that round scored them"
            + (f"; in the other {counted(rest, 'collapsed run')} of {'that cell' if len(hit) == 1 else 'those cells'} "
               "the scores did not vanish." if rest else "."))


def _cell_where(cell: CollapsedCell, first: bool = False) -> str:
    """"on MNIST / FC at compression 3, `linear 1 (784→100)`": a collapsed cell and the layers it emptied (with
    ``first``: "first at compression 3")."""
    at = f"{'first ' if first else ''}at compression {compression_text(cell.compression)}"
    return f"on {cell.setup} {at}, `{', '.join(cell.layers)}`"


def _iterative_synflow_lines(cells: list[CollapsedCell], after_one_round: bool, check: BiasFreeCheck | None
                             ) -> list[str]:
    """Why SynFlow over its paper's rounds still emptied layers in ``cells``, where it did (``after_one_round``:
    said after the one-round line, so "too"). It scores every parameter, biases included, as the reference code
    does; a bias adds flow to the layers after it only, so the layers nearer the input may fall behind the others
    as the rounds thin them, until a global threshold takes one whole. ``check`` (:mod:`.bias_free`) says whether
    they do: what pruning the runs again with the biases zeroed empties; without it the account is a likely one."""
    if not cells:
        return []
    several = len({layer for e in cells for layer in e.layers}) > 1
    return [f"- {cells[0].label} emptied {'layers' if several else 'a layer'}{' too' if after_one_round else ''}: "
            f"{'; '.join(map(_cell_where, cells))}. Its scores count the biases, as the reference code's do, and a "
            "bias adds flow only to the layers after it, so the layers nearer the input, which fewer biases feed, "
            f"{'fall' if check and check.biases_cause else 'can fall'} behind the others as the rounds thin them, "
            "until one global threshold takes a layer whole." + (f" {check.words()}" if check else "")]


def _collapse_lines(c: Collapses) -> list[str]:
    if c.none:
        return ["- No run collapsed: every layer kept weights and every run is above chance."]
    setups = dict.fromkeys(e.setup for e in c.emptied)
    lines = [_emptied_line([e for e in c.emptied if e.setup == setup]) for setup in setups]
    if c.constant:
        lines.append(_constant_line(c.constant))
    first = {}  # per set-up, SynFlow (1 round)'s emptied cell at the lowest compression
    for e in sorted((e for e in c.emptied if e.label == pruner_label("synflow", 1)), key=lambda e: e.compression):
        first.setdefault(e.setup, e)
    if first:
        where = "; ".join(_cell_where(e, first=True) for e in first.values())
        lines.append(f"- SynFlow's paper prunes over {SYNFLOW_ROUNDS} rounds, re-scoring as weights go; with one "
                     f"round every weight is scored once on the dense network and one global threshold can take a "
                     f"whole layer: here it emptied {where}. Compare the {SYNFLOW_ROUNDS}-round column.")
    lines += _iterative_synflow_lines([e for e in c.emptied if e.label == pruner_label("synflow", SYNFLOW_ROUNDS)],
                                      after_one_round=bool(first), check=c.bias_free)
    if c.masks_hold:
        where = "; ".join(f"{e.label} on {e.setup} at {compression_text(e.compression)}: `{', '.join(e.layers)}`"
                          for e in c.masks_hold)
        labels = list(dict.fromkeys(e.label for e in c.masks_hold))
        lines.append(f"- On synthetic stand-in data the accuracy means nothing, but {listed(labels)} "
                     f"never {'reads' if len(labels) == 1 else 'read'} the data to choose a mask ({DATA_FREE_WHY}), "
                     f"so the layers emptied there would be emptied on the real set too: {where}.")
    rest = c.stand_in - len(c.masks_hold) - len(c.left_out)  # the stand-in's other rows of Table A2
    return lines + stand_in_rest_lines(rest, list(c.left_out), further=bool(c.masks_hold))


def equal_flops_note(table: pd.DataFrame) -> str:
    """A sentence for Table D (``table``: the pruned runs' records table): the set-ups where every pruner's model
    performs the same FLOPs at each compression, so that a reader does not look for a difference between equal
    columns; for a fully connected network, why (every pruner keeps equally many weights, and each weight of a
    fully connected layer is one multiply-add per image wherever it is kept). Empty where no set-up has them."""
    equal, connected = [], []
    for setup, rows in table.groupby("setup", sort=False):
        flops = metric_table(rows, "flops")
        if flops.shape[1] > 1 and flops.notna().all().all() and (flops.nunique(axis=1) == 1).all():
            equal.append(setup)
            connected.append(set(rows["model"]) == {"fc"})
    if not equal:
        return ""
    why = (": the pruners keep equally many weights, and each weight of a fully connected layer is one multiply-add "
           "per image wherever it is kept") if all(connected) else ""
    return f" On {' and '.join(equal)} every pruner's model performs the same FLOPs at each compression{why}."
