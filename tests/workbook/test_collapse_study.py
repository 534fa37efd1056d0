"""Where each pruner collapses, from a hand-made table of real-data runs at seven compressions."""

import pandas as pd

from prunelab.data.catalog import source_words
from prunelab.workbook.collapse_study import (
    claim_verdict,
    collapse_study,
    collapse_study_findings,
    studied_claims,
    synflow_claim,
)
from prunelab.workbook.key_results import tuning_key_result

COMPRESSIONS = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
CHANCE = 11.35  # always answering the most frequent test class


def _study(collapse_at: dict[str, float]) -> pd.DataFrame:
    """MNIST / FC on real images over three seeds: a pruner in ``collapse_at`` scores chance and empties a
    layer from that compression on; every other pruner stays at 90%."""
    rows = []
    for label in ("SNIP", "GraSP", "SynFlow (100 rounds)"):
        for c in COMPRESSIONS:
            for seed in (1, 2, 3):
                down = c >= collapse_at.get(label, 99)
                rows.append(dict(setup="MNIST / FC", label=label, compression=c, seed=seed,
                                 top1=CHANCE + 0.1 * seed if down else 90.0 + 0.1 * seed,
                                 collapsed_layers=["layers.1"] if down else [], majority_class_top1=CHANCE,
                                 stand_in=False, dataset="mnist", data_source="bundled",
                                 data=source_words("mnist", "bundled")))
    return pd.DataFrame(rows)


def test_one_pruner_collapses_at_2_and_another_never_does():
    table = _study({"SNIP": 2.0})
    by_label = {s.label: s for s in collapse_study(table)}
    assert (by_label["SNIP"].survives_to, by_label["SNIP"].first_at_chance, by_label["SNIP"].first_emptied) \
        == (1.5, 2.0, 2.0)
    assert (by_label["GraSP"].survives_to, by_label["GraSP"].first_at_chance, by_label["GraSP"].first_emptied) \
        == (3.0, None, None)
    (claim,) = synflow_claim(table, list(by_label.values()))
    assert claim.synflow_survives and claim.earlier == ("SNIP",) and claim.not_earlier == ("GraSP",)
    assert not claim.agrees  # GraSP does not collapse earlier: the claim holds only in part


def test_the_claim_agrees_only_when_synflow_outlasts_both_gradient_pruners():
    table = _study({"SNIP": 2.0, "GraSP": 2.5})
    (claim,) = synflow_claim(table, collapse_study(table))
    assert claim.agrees and claim.earlier == ("SNIP", "GraSP") and claim.highest == 3.0
    table = _study({"SNIP": 2.0, "GraSP": 2.5, "SynFlow (100 rounds)": 2.5})
    (claim,) = synflow_claim(table, collapse_study(table))
    assert not claim.synflow_survives and claim.earlier == ("SNIP",) and not claim.agrees
    assert claim.synflow_falls_at == 2.5


def test_one_failing_seed_is_enough_to_fall_to_chance():
    table = _study({})
    table.loc[(table["label"] == "GraSP") & (table["compression"] == 2.5) & (table["seed"] == 2), "top1"] = CHANCE
    grasp = next(s for s in collapse_study(table) if s.label == "GraSP")
    assert (grasp.survives_to, grasp.first_at_chance, grasp.first_emptied) == (2.0, 2.5, None)


def test_the_study_calls_a_run_at_chance_exactly_where_the_collapse_table_does():
    table = _study({"SNIP": 2.0})
    # at 2 one seed's most frequent class share is unknown: the collapse table does not call that run
    # constant, so the study may not count it as fallen to chance either
    unknown = (table["label"] == "SNIP") & (table["compression"] == 2.0) & (table["seed"] == 1)
    table.loc[unknown, "majority_class_top1"] = float("nan")
    table.loc[(table["label"] == "SNIP") & (table["compression"] == 2.0) & (table["seed"] > 1), "top1"] = 90.0
    snip = next(s for s in collapse_study(table) if s.label == "SNIP")
    assert (snip.survives_to, snip.first_at_chance) == (2.0, 2.5)
    # a run exactly at the margin above chance is at chance in both
    table = _study({})
    table.loc[(table["label"] == "GraSP") & (table["compression"] == 3.0) & (table["seed"] == 3), "top1"] = CHANCE + 1
    grasp = next(s for s in collapse_study(table) if s.label == "GraSP")
    assert grasp.first_at_chance == 3.0


def test_the_words_render_each_kind_of_survival_and_skip_stand_in_and_single_compression_setups():
    table = _study({"SNIP": 2.0, "GraSP": 0.25})
    single = table[table["compression"] == 1.0].assign(setup="CIFAR-10 / ResNet20")
    fake = table.assign(setup="Fake / FC", stand_in=True)
    text = collapse_study_findings(pd.concat([table, single, fake], ignore_index=True))
    lines = text.splitlines()
    assert len(lines) == 4  # three pruners and the claim, all MNIST / FC
    assert all("MNIST / FC" in line for line in lines)
    assert "1.5" in lines[0] and "2" in lines[0]  # SNIP: up to 1.5, chance and an empty layer at 2
    assert "0.25" in lines[1]  # GraSP: at chance from the lowest compression


def test_the_front_page_gives_the_claims_verdict_where_the_fall_is():
    table = _study({"SNIP": 2.0, "SynFlow (100 rounds)": 3.0})
    (claim,) = studied_claims(table)
    assert (claim.synflow_falls_at, claim.highest, claim.earlier) == (3.0, 3.0, ("SNIP",))
    assert claim_verdict(claim) in tuning_key_result(table, 1.0)


def test_a_synflow_that_outlasts_snip_and_grasp_but_falls_at_the_end_is_told_from_agreement():
    table = _study({"SNIP": 2.0, "GraSP": 2.5, "SynFlow (100 rounds)": 3.0})
    (claim,) = studied_claims(table)
    assert (claim.synflow_falls_at, claim.earlier, claim.not_earlier, claim.agrees) == (3.0, ("SNIP", "GraSP"), (),
                                                                                      False)
    agreeing = studied_claims(_study({"SNIP": 2.0, "GraSP": 2.5}))[0]
    assert agreeing.agrees and claim_verdict(agreeing) != claim_verdict(claim)
    assert all(name in claim_verdict(claim) for name in ("SNIP", "GraSP", "3"))


def test_one_seed_of_three_at_chance_is_not_a_pruner_falling_to_chance_before_synflow():
    """GraSP with one seed of three at chance at 2 and every seed at 3, where SynFlow's seeds all fall at 3: a seed
    of GraSP reaches chance first, yet GraSP is not counted as falling before SynFlow; with every seed of GraSP at
    chance at 2.5 it is, at 2.5."""
    table = _study({"SNIP": 2.5, "GraSP": 3.0, "SynFlow (100 rounds)": 3.0})
    one_seed = (table["label"] == "GraSP") & (table["compression"] == 2.0) & (table["seed"] == 1)
    table.loc[one_seed, "top1"] = CHANCE
    grasp = next(s for s in collapse_study(table) if s.label == "GraSP")
    assert (grasp.survives_to, grasp.first_at_chance, grasp.every_at_chance) == (1.5, 2.0, 3.0)
    (claim,) = studied_claims(table)
    assert (claim.synflow_falls_at, claim.earlier, claim.earlier_at, claim.not_earlier) == (3.0, ("SNIP",), (2.5,),
                                                                                            ("GraSP",))
    table.loc[(table["label"] == "GraSP") & (table["compression"] == 2.5), "top1"] = CHANCE
    (claim,) = studied_claims(table)
    assert (claim.earlier, claim.earlier_at, claim.not_earlier) == (("SNIP", "GraSP"), (2.5, 2.5), ())
    assert next(s for s in collapse_study(table) if s.label == "GraSP").every_at_chance == 2.5


def test_the_claim_keeps_where_every_seed_of_synflow_is_at_chance_beside_where_its_first_is():
    table = _study({"SNIP": 2.0, "GraSP": 2.5, "SynFlow (100 rounds)": 3.0})
    (claim,) = studied_claims(table)
    assert (claim.synflow_falls_at, claim.synflow_every_at) == (3.0, 3.0)  # every seed at once
    one_seed = (table["label"] == "SynFlow (100 rounds)") & (table["compression"] == 2.5) & (table["seed"] == 2)
    table.loc[one_seed, "top1"] = CHANCE
    (claim,) = studied_claims(table)
    assert (claim.synflow_falls_at, claim.synflow_every_at) == (2.5, 3.0)
    assert claim_verdict(claim) != claim_verdict(studied_claims(_study({"SNIP": 2.0, "GraSP": 2.5,
                                                                       "SynFlow (100 rounds)": 3.0}))[0])
