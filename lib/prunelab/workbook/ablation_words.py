"""Notebook 05's words: the findings per pruner (:func:`ablation_findings`, its Findings section) and the verdict on
Frankle et al.'s claim (:func:`ablation_key_result`, its key result), from :func:`.ablations.ablation_study`.

A verdict says what the tests can carry at this n: a large difference not told apart is unresolved, neither a
tie nor a finding; a cost or a tie found where the pruner as scored is near collapse is said to be so.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .ablations import (
    ABLATIONS,
    AS_SCORED,
    CLAIM_PRUNERS,
    LARGE_POINTS,
    NEAR_COLLAPSE_SHARE,
    AblationVerdict,
    ablation_study,
    clean_split_chance,
    pretrained_reinitialized,
)
from .numbers import ALPHA, AT_CHANCE, Span, compression_text, counted, listed, p_words

STAND_IN = "Every set-up here ran on synthetic stand-in data: a pipeline check, with nothing to conclude."
CLAIM = ("**Frankle et al.'s claim**: the pruners that score at initialization find how many weights to keep per "
         "layer, not which. If so, a layerwise shuffle or re-initialization costs SNIP, GraSP and SynFlow nothing, "
         "nor GraSP its inverted scores.")
#: what leads a claim line's ties: each ablation not told apart from its pruner as scored (a bare "from it" would
#: read as the claim, which "against it" and "in line with it" before it name)
TIES = f"Not told apart from the pruner {AS_SCORED}"


def ablation_findings(table: pd.DataFrame) -> str:
    """Markdown: per set-up and pruner, which ablations can be told apart from the pruner as scored at this n, and
    by how much; which large differences stay unresolved (:attr:`.ablations.AblationVerdict.low_power`); which
    lack the seeds for a test; a pruner none of whose ablations can be told apart, or is large, found a per-layer
    density, not weights."""
    verdicts = ablation_study(table)
    if not verdicts:
        return f"- {STAND_IN}"
    pretrained = pretrained_reinitialized(table)
    lines = []
    for (setup, pruner), verdicts_of in pd.DataFrame(verdicts).groupby(["setup", "pruner"], sort=False):
        parts = _pruner_parts(table, verdicts_of) + _lost_pretraining(verdicts_of, pretrained.get((setup, pruner)))
        lines.append(f"- **{pruner}** on {setup}: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def _lost_pretraining(verdicts_of: pd.DataFrame, epochs: list[int] | None) -> list[str]:
    """Where the pruner was pre-trained (``epochs``) and a re-initialized verdict compares something (not all at
    chance): that its difference also carries the loss of the pre-training re-initializing threw away."""
    reinit = verdicts_of[(verdicts_of["ablation"] == ABLATIONS["reinitialize"]) & ~verdicts_of["at_chance"]]
    if not epochs or not len(reinit):
        return []
    return [f"its {ABLATIONS['reinitialize']} runs also lose its {counted(epochs, 'epoch')} of pre-training, so "
            "their difference from it is not the mask's alone"]


def ablation_table_note(table: pd.DataFrame) -> str:
    """A sentence for Table M's caption (``table``: the notebook's records table): the pruners whose re-initialized
    runs threw away their pre-training (:func:`.ablations.pretrained_reinitialized`), so that their column is not
    read as the mask's effect alone; empty where none was pre-trained."""
    pretrained = pretrained_reinitialized(table)
    if not pretrained:
        return ""
    several = len({setup for setup, _ in pretrained}) > 1
    named = [f"{label} ({counted(epochs, 'epoch')} before pruning{f' on {setup}' if several else ''})"
             for (setup, label), epochs in pretrained.items()]
    one = len({label for _, label in pretrained}) == 1
    return (f" Re-initializing throws away the pre-training of {listed(named)} with the kept weights' values, so "
            f"{'its' if one else 'their'} {ABLATIONS['reinitialize']} difference mixes the mask's effect with the "
            "loss of pre-training.")


def _pruner_parts(table: pd.DataFrame, verdicts_of: pd.DataFrame) -> list[str]:
    """The clauses of one pruner's line: told apart, tied, untested, at chance, collapsed, too large to call a tie."""
    group = verdicts_of[~verdicts_of["at_chance"]]
    apart = group[group["told_apart"]]
    tied = group[~group["told_apart"] & group["testable"]]
    clear = tied[(tied["collapsed"] == 0) & (tied["ablation_collapsed"] == 0)]  # a tie beside collapsed runs: none
    same, large = clear[~clear["low_power"]], clear[clear["low_power"]]
    chance = verdicts_of[verdicts_of["at_chance"]].groupby("compression", sort=False)["ablation"]
    parts = []
    if len(apart):
        parts.append("told apart from " + "; ".join(map(_difference, apart.itertuples())))
    if len(same):
        parts.append("not told apart from " + "; ".join(map(_difference, same.itertuples())))
    if not len(apart) and not len(large) and len(same):
        # inverted scores ranked over the whole network moved the densities too
        setup, pruner = verdicts_of["setup"].iloc[0], verdicts_of["pruner"].iloc[0]
        moved = ABLATIONS["invert"] in set(same["ablation"]) and _global(table, setup, pruner)
        parts.append("nothing it chose, weights or densities, shows at this n" if moved
                     else "nothing it found beyond each layer's density shows at this n")
    parts += _untested(group)
    parts += [f"at {compression_text(c)} it and its {listed(list(names))} ablation{'s' if len(names) > 1 else ''} "
              f"are {AT_CHANCE}: nothing to tell apart" for c, names in chance]
    return parts + _collapsed_ties(tied) + ([_low_power(large)] if len(large) else [])


def _difference(r) -> str:
    return f"{r.ablation} at {compression_text(r.compression)} ({r.difference:+.1f} points, {p_words(r.p_value)})"


def _untested(group: pd.DataFrame) -> list[str]:
    """The ablations not tested, if any, by why: short of two seeds on a side, or no spread on either side (Welch's
    test undefined: :func:`.ablations.ablation_tests`); all of one kind said as such, else each by name."""
    untested = group[~group["testable"]]
    if not len(untested):
        return []
    short = (untested["seeds"] < 2) | (untested["ablation_seeds"] < 2)
    parts = []
    for why, rows in (("fewer than two seeds", untested[short]),
                      ("no spread on either side, which leaves Welch's test undefined", untested[~short])):
        if len(rows) == len(group):
            parts.append(f"{why}: no ablation can be tested")
        elif len(rows):
            parts.append(f"{why}, so not tested: " + listed([f"{r.ablation} at {compression_text(r.compression)}"
                                                               for r in rows.itertuples()]))
    return parts


def _low_power(large: pd.DataFrame, several: bool = False) -> str:
    """Large differences not told apart, each with its side of the seeds, as unresolved at this n: a split that
    clean happens by chance as often as :func:`.ablations.clean_split_chance` says, so it is no finding yet."""
    odds = [_once_in(clean_split_chance(r.seeds, r.ablation_seeds)) for r in large.itertuples()]
    alike = len(set(odds)) == 1
    pieces = [f"{r.ablation} at {_where(r, several)} ({r.difference:+.1f} points, {p_words(r.p_value)}, "
              f"every ablated seed {'below' if r.difference < 0 else 'above'} every seed as scored"
              + ("" if alike else f"; by chance {odds_of}") + ")" for r, odds_of in zip(large.itertuples(), odds)]
    return (f"{'a large difference' if len(pieces) == 1 else 'large differences'} ({LARGE_POINTS:g} points or more) "
            f"not resolved at {_seeds(large)}: {'; '.join(pieces)}; "
            + (f"a split this clean happens by chance {odds[0]}" if alike
               else "splits this clean happen by chance as often as given") + ", and more seeds would settle it")


def _once_in(chance: float) -> str:
    """A chance as "1 time in 10", or "about 1 time in 18" where it is not one in a whole number."""
    odds = 1 / chance
    return f"1 time in {round(odds)}" if abs(odds - round(odds)) < 1e-9 else f"about 1 time in {round(odds)}"


def _seeds(rows: pd.DataFrame) -> str:
    """The seeds behind ``rows``' tests: "3 seeds", or "2 to 3 seeds" where they differ."""
    counts = sorted(set(rows["seeds"]) | set(rows["ablation_seeds"]))
    return counted(counts[0], "seed") if len(counts) == 1 else f"{counts[0]} to {counts[-1]} seeds"


def _collapsed_ties(tied: pd.DataFrame) -> list[str]:
    """The verdicts not told apart beside runs at chance, each with its difference, as neither ties nor findings
    (whatever their size: a seed at chance moves a mean by its own chance): once per compression where the pruner
    as scored collapsed on some seeds, once per ablation that did where it did not."""
    own = tied[tied["collapsed"] > 0]
    theirs = tied[(tied["collapsed"] == 0) & (tied["ablation_collapsed"] > 0)]
    return ([f"at {compression_text(c)} it collapsed on {rows['collapsed'].iloc[0]} of its {rows['seeds'].iloc[0]} "
             f"seeds ({AT_CHANCE}), so its ablations there, not told apart from it "
             f"({'; '.join(f'{r.ablation} {r.difference:+.1f} points' for r in rows.itertuples())}), are neither ties "
             "nor findings" for c, rows in own.groupby("compression", sort=False)]
            + [f"its {r.ablation} ablation at {compression_text(r.compression)} collapsed on {r.ablation_collapsed} of "
               f"{r.ablation_seeds} seeds, so it, not told apart ({r.difference:+.1f} points), is neither a tie nor a "
               "finding" for r in theirs.itertuples()])


def _global(table: pd.DataFrame, setup: str, label: str) -> bool:
    """Whether the runs of the pruner labelled ``label`` on ``setup`` ranked their scores over the whole network."""
    runs = (table["setup"] == setup) & (table["label"] == label)
    return "mask_scope" not in table or set(table.loc[runs, "mask_scope"]) == {"global"}


def claim_rows(table: pd.DataFrame, verdicts: list[AblationVerdict]) -> pd.DataFrame:
    """The verdicts that bear on Frankle et al.'s claim: a pruner of :data:`.ablations.CLAIM_PRUNERS` under a
    layerwise shuffle or re-initialization (GraSP under inverted scores too), testable and not all at chance."""
    names = dict(zip(table["label"], table["pruner"])) if "pruner" in table else {}
    frame = pd.DataFrame(verdicts)
    if frame.empty:
        return frame
    claimed = frame["pruner"].map(names).isin(CLAIM_PRUNERS)
    tested = frame["ablation"].isin([ABLATIONS["shuffle"], ABLATIONS["reinitialize"]]) | (
        (frame["pruner"].map(names) == "grasp") & (frame["ablation"] == ABLATIONS["invert"]))
    return frame[claimed & tested & frame["testable"] & ~frame["at_chance"]]


def frankle_claim(table: pd.DataFrame, verdicts: list[AblationVerdict]) -> str:
    """Markdown: the claim, a line per pruner that ran (:func:`_claim_line`: against it, undecided, or in line),
    what "near collapse" means where a line says so, and how many tests bear on the claim and passed against how
    many would by chance; empty where none of the claim's pruners ran."""
    rows = claim_rows(table, verdicts)
    if rows.empty:
        return ""
    several = rows["setup"].nunique() > 1
    lines = [line for _, of in rows.groupby("pruner", sort=False) if (line := _claim_line(of, several))]
    split = _ClaimSplit.of(rows)
    closing = []
    near = pd.concat([split.hurt[split.hurt["near_collapse"]], split.near_ties])
    if len(near):
        closing.append(_near_collapse_rule(near))
    if split.only_near:
        closing.append(f"Every cost against the claim comes from there: the effect shows only near collapse, "
                       f"at {_seeds(split.hurt)}.")
    closing.append(_count_words(rows, several))
    return "\n".join([CLAIM, "", *lines, "", " ".join(closing)])


@dataclass(frozen=True)
class ClaimCount:
    """The claim's tests (:func:`claim_rows`) counted: ``run`` in all, ``silent`` of them not told apart beside
    collapsed runs (neither ties nor findings: :func:`_collapsed_ties`), the ``bearing`` rest, how many ``passed``
    (told apart), and how many at most would pass by chance on average were no ablation to matter (``chance``, over
    all ``run``: a silent test could have passed)."""

    run: int
    silent: int
    bearing: int
    passed: int
    chance: float


def _silent(rows: pd.DataFrame) -> pd.Series:
    """Which verdicts are not told apart beside collapsed runs, on either side: neither ties nor findings."""
    return ~rows["told_apart"] & ((rows["collapsed"] > 0) | (rows["ablation_collapsed"] > 0))


def claim_count(rows: pd.DataFrame) -> ClaimCount:
    """The :class:`ClaimCount` of the claim's verdicts ``rows`` (:func:`claim_rows`)."""
    silent = int(_silent(rows).sum())
    return ClaimCount(len(rows), silent, len(rows) - silent, int(rows["told_apart"].sum()), ALPHA * len(rows))


def _count_words(rows: pd.DataFrame, several: bool) -> str:
    """How many tests bear on the claim and passed, against how many would by chance; those not told apart beside
    collapsed runs counted apart and named with their differences, as the findings call them neither ties nor
    findings."""
    count = claim_count(rows)
    families = sorted(set(rows["family"]))
    sizes = str(families[0]) if len(families) == 1 else f"{families[0]} to {families[-1]}"
    level = f"{'each ' if count.run > 1 else ''}at the {ALPHA:g} level, " + (
        "not adjusted (its pruner's ablations at every compression of its set-up are one test, as in Table M)"
        if families == [1] else  # a family of one: nothing to adjust over
        f"Holm-adjusted over the {sizes} tests of its pruner's ablations at every compression of its set-up, as in "
        "Table M")
    passed = (f"{count.passed} passed; were no ablation to matter, on average at most about {count.chance:.2g}"
              + (f" of the {count.run}" if count.silent else "") + " would pass by chance.")
    if not count.silent:
        return f"{counted(count.run, 'test')} {'bear' if count.run > 1 else 'bears'} on the claim, {level}. {passed}"
    silent = rows[_silent(rows)]
    named = [f"{pruner}'s {listed(list(of['ablation']))} at {_where(of.iloc[0], several)}: "
             + Span.of(of["difference"]).words("{:+.1f}".format) + " points"
             for (pruner, _, _), of in silent.groupby(["pruner", "setup", "compression"], sort=False)]
    neither = "are neither ties nor findings" if count.silent > 1 else "is neither a tie nor a finding"
    return (f"{counted(count.run, 'test')} {'were' if count.run > 1 else 'was'} run on the claim, {level}: "
            f"{count.bearing} {'bear' if count.bearing != 1 else 'bears'} on it, and {count.silent} beside collapsed "
            f"runs, not told apart, {neither} ({'; '.join(named)}). {passed}")


@dataclass(frozen=True)
class _ClaimSplit:
    """Claim verdicts by what they say: costs and gains told apart, large differences unresolved (``large``),
    ties clear of collapsed runs away from collapse (``ties``) and near it (``near_ties``, weak either way)."""

    hurt: pd.DataFrame
    gains: pd.DataFrame
    large: pd.DataFrame
    ties: pd.DataFrame
    near_ties: pd.DataFrame

    @classmethod
    def of(cls, rows: pd.DataFrame) -> _ClaimSplit:
        ties = rows[~rows["told_apart"] & ~_silent(rows) & ~rows["low_power"]]  # no collapsed run beside a tie
        return cls(hurt=rows[rows["told_apart"] & (rows["difference"] < 0)],
                   gains=rows[rows["told_apart"] & (rows["difference"] > 0)], large=rows[rows["low_power"]],
                   ties=ties[~ties["near_collapse"]], near_ties=ties[ties["near_collapse"]])

    @property
    def only_near(self) -> bool:
        """Whether every cost comes from near collapse, with no large loss left unresolved away from it."""
        far_loss = (self.large["difference"] < 0) & ~self.large["near_collapse"]
        return bool(len(self.hurt) and self.hurt["near_collapse"].all() and not far_loss.any())


def _claim_line(rows: pd.DataFrame, several: bool) -> str:
    """One pruner's verdict: against the claim where an ablation costs accuracy beyond the test (each cost with
    the accuracy as scored, "only near collapse" where every cost comes from there and no large loss elsewhere is
    unresolved); undecided where a large difference is unresolved, or every tie is near collapse; in line where
    the rest tie or gain; empty where only collapsed runs tied. What the head leaves out follows it."""
    label, split = rows["pruner"].iloc[0], _ClaimSplit.of(rows)
    if len(split.hurt):
        costs = "; ".join(_cost(r, several, split.only_near) for r in split.hurt.itertuples())
        head, rest = f"against it{', but only near collapse' if split.only_near else ''}: {costs}.", ("large", "ties")
    elif len(split.large):
        head, rest = f"undecided: {_low_power(split.large, several)}.", ("ties",)
    elif len(split.ties) or len(split.gains):
        pairs = _named(pd.concat([split.ties, split.gains]), several)
        head = (f"in line with it: not worse under {listed(pairs)}."
                + (" These are ties at this n, weaker evidence than a difference." if len(split.ties) else ""))
        rest = ()
    elif len(split.near_ties):
        return f"- **{label}**: undecided: its only ties come near collapse, so weak either way: " + (
            f"{listed(_named(split.near_ties, several))}.")
    else:
        return ""
    low = _low_power(split.large, several) if len(split.large) else ""
    tail = {"large": f" {low[:1].upper()}{low[1:]}." if low else "",
            "ties": _sentence(TIES, _named(split.ties, several))
            + _sentence("Better ablated than as scored", [_gain(r, several) for r in split.gains.itertuples()], "; ")}
    return (f"- **{label}**: {head}" + "".join(tail[part] for part in rest)
            + _sentence("Near collapse, so weak either way", _named(split.near_ties, several)))


def _sentence(lead: str, items: list[str], joint: str = "") -> str:
    """" Lead: a, b and c." (or joined by ``joint``), empty for no items."""
    return f" {lead}: {joint.join(items) if joint else listed(items)}." if items else ""


def _cost(r, several: bool, only_near: bool) -> str:
    """A cost against the claim with the accuracy as scored, and, near collapse, the accuracy where it works."""
    lowest = f"{r.lowest_top1:.1f}% at {compression_text(r.lowest_compression)}"
    return (f"{r.ablation} at {_where(r, several)} costs {-r.difference:.1f} points ({p_words(r.p_value)}), from "
            f"{r.scored_top1:.1f}% as scored" + (f" ({lowest})" if only_near else
                                                  f", near collapse ({lowest})" if r.near_collapse else ""))


def _gain(r, several: bool) -> str:
    return f"{r.ablation} at {_where(r, several)} ({r.difference:+.1f} points, {p_words(r.p_value)})"


def _named(rows: pd.DataFrame, several: bool) -> list[str]:
    return [f"{r.ablation} at {_where(r, several)}" for r in rows.itertuples()]


def _near_collapse_rule(near: pd.DataFrame) -> str:
    """What "near collapse" means (:data:`.ablations.NEAR_COLLAPSE_SHARE`) for the verdicts ``near`` that a line
    calls so: the lead over the most frequent class's share where known, over zero where not, each named."""
    share = "half" if NEAR_COLLAPSE_SHARE == 0.5 else f"{NEAR_COLLAPSE_SHARE:.0%}"
    rule = ("Near collapse means that, as scored, the pruner's lead over {} has shrunk to under {} its lead at the "
            "lowest compression.")
    known, unknown = near[near["chance_top1"].notna()], near[near["chance_top1"].isna()]
    if not len(known):
        return rule.format("zero, the most frequent class's share being unknown", share)
    shares = set(known["chance_top1"].round(1))
    if not len(unknown):
        floor = "always answering the most frequent class" + (f" ({shares.pop():.1f}%)" if len(shares) == 1 else "")
        return rule.format(floor, share)
    # some set-ups know the share and some do not: each verdict measured its lead over its own floor
    mixed = near.groupby("setup")["chance_top1"].transform(lambda s: s.isna().nunique() > 1)
    place = near["setup"].where(~mixed, near["pruner"] + " on " + near["setup"])
    shown = dict.fromkeys(zip(place[known.index], known["chance_top1"].round(1)))
    return (rule.format("a floor", share) + " The floor is always answering the most frequent class where its share "
            f"is known ({'; '.join(f'{s:.1f}% on {at}' for at, s in shown)}) and zero where it is not "
            f"({listed(list(dict.fromkeys(place[unknown.index])))}).")


def _where(r, several: bool) -> str:
    return compression_text(r.compression) + (f" on {r.setup}" if several else "")


def ablation_key_result(table: pd.DataFrame) -> str:
    """Notebook 05's key result: the verdict on Frankle et al.'s claim (:func:`frankle_claim`); the findings per
    pruner stay in the task's Findings."""
    verdicts = ablation_study(table)
    if not verdicts:
        return STAND_IN
    return frankle_claim(table, verdicts) or (
        f"{CLAIM}\n\nNone of SNIP, GraSP and SynFlow has an ablation testable here: nothing to judge the claim by.")

