"""Notebook 05's table and findings from hand-made records: which ablations can be told apart from their pruner."""

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from prunelab.data.catalog import source_words
from prunelab.workbook.ablation_words import (
    TIES,
    ablation_findings,
    ablation_key_result,
    ablation_table_note,
    claim_count,
    claim_rows,
    frankle_claim,
)
from prunelab.workbook.ablations import (
    AS_SCORED,
    ablation_of,
    ablation_study,
    ablation_table,
    clean_split_chance,
    pretrained_reinitialized,
)
from prunelab.workbook.grids import WorkbookParams, ablation_grid

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_ablations.ipynb"


def _table(stand_in: bool = False) -> pd.DataFrame:
    """SNIP: inverting its scores costs 30 points, shuffling and re-initializing nothing (a density, not weights);
    GraSP: every ablation within a point of it, seeds scattered."""
    rows = []
    for label, levels in (("SNIP", {"": 90, "shuffle": 90, "reinitialize": 90, "invert": 60}),
                          ("GraSP", {"": 85, "shuffle": 85.5, "reinitialize": 84.5, "invert": 85})):
        for flag, level in levels.items():
            for seed, offset in ((1, -1.0), (2, 0.0), (3, 1.2)):
                rows.append(dict(setup="MNIST / FC", label=label, compression=1.0, seed=seed, top1=level + offset,
                                 shuffle=flag == "shuffle", reinitialize=flag == "reinitialize",
                                 invert=flag == "invert", stand_in=stand_in, dataset="mnist", data_source="bundled",
                                 data=source_words("mnist", "bundled")))
    return pd.DataFrame(rows)


def test_the_table_has_a_row_per_pruner_and_a_column_per_ablation_with_welchs_p():
    table = ablation_table(_table())
    assert list(table.index.get_level_values("pruner")) == ["SNIP", "GraSP"]  # the workbook's pruner order
    assert list(table.columns) == [AS_SCORED, "layerwise shuffle", "layerwise shuffle: p", "re-initialized",
                                   "re-initialized: p", "inverted scores", "inverted scores: p"]
    snip = table.xs("SNIP", level="pruner").iloc[0]
    assert snip[AS_SCORED] == "90.1 ± 1.1 (n=3)" and snip["inverted scores"] == "60.1 ± 1.1 (n=3)"
    assert snip["inverted scores: p"] == "< 0.001" and float(snip["layerwise shuffle: p"]) == 1.0


def test_the_study_tells_apart_only_what_welch_does():
    verdicts = {(v.pruner, v.ablation): v for v in ablation_study(_table())}
    assert len(verdicts) == 6
    invert = verdicts[("SNIP", "inverted scores")]
    assert invert.told_apart and math.isclose(invert.difference, -30.0) and invert.p_value < 0.001
    assert not any(v.told_apart for key, v in verdicts.items() if key != ("SNIP", "inverted scores"))
    assert all(v.testable for v in verdicts.values())
    assert ablation_study(_table(stand_in=True)) == []  # a stand-in is a pipeline check


def test_a_pruners_ablations_are_holm_adjusted_together():
    """Each GraSP ablation 3 points below it at sd 1 (Welch alone p = 0.021, told apart three times); over the
    three ablations of its one compression Holm triples the smallest, so none is told apart, in the table and the
    study."""
    from scipy import stats

    table = _table()
    grasp = table["label"] == "GraSP"
    ablated = grasp & (table["shuffle"] | table["reinitialize"] | table["invert"])
    table.loc[grasp, "top1"] = 85.0 + table.loc[grasp, "seed"].map({1: -1.0, 2: 0.0, 3: 1.0})
    table.loc[ablated, "top1"] -= 3.0
    raw = stats.ttest_ind([81.0, 82.0, 83.0], [84.0, 85.0, 86.0], equal_var=False).pvalue
    assert raw < 0.05
    grasp_verdicts = [v for v in ablation_study(table) if v.pruner == "GraSP"]
    assert len(grasp_verdicts) == 3 and not any(v.told_apart for v in grasp_verdicts)
    assert all(v.p_value == pytest.approx(3 * raw) for v in grasp_verdicts)
    row = ablation_table(table).xs("GraSP", level="pruner").iloc[0]
    assert float(row["layerwise shuffle: p"]) == pytest.approx(3 * raw, abs=0.0005)


def test_the_words_name_each_pruners_verdicts():
    lines = ablation_findings(_table()).splitlines()
    assert len(lines) == 2 and lines[0].startswith("- **SNIP**") and lines[1].startswith("- **GraSP**")
    assert "-30.0" in lines[0] and "< 0.001" in lines[0]
    assert "-30.0" not in lines[1] and "+0.5" in lines[1]
    # GraSP's inversion moved its densities under global scope, not under local: the verdicts differ there only
    local = ablation_findings(_table().assign(mask_scope="local")).splitlines()
    assert local[0] == ablation_findings(_table().assign(mask_scope="global")).splitlines()[0] == lines[0]
    assert local[1] != lines[1] == ablation_findings(_table().assign(mask_scope="global")).splitlines()[1]


def test_a_run_with_two_ablations_at_once_is_left_out_with_a_warning():
    assert ablation_of({"shuffle": True}) == "layerwise shuffle" and ablation_of({}) == AS_SCORED
    assert ablation_of({"shuffle": True, "invert": True}) is None
    table = _table()
    both = table[table["shuffle"].astype(bool)].head(1).assign(invert=True, top1=99.0)
    with pytest.warns(UserWarning, match="1 of the runs"):
        found = ablation_table(pd.concat([table, both], ignore_index=True))
    assert found.equals(ablation_table(table))
    with pytest.warns(UserWarning):
        assert ablation_findings(pd.concat([table, both], ignore_index=True)) == ablation_findings(table)


def test_the_grid_ablates_every_pruner_but_rand_and_shares_its_runs_as_scored(monkeypatch):
    monkeypatch.setenv("PRUNELAB_DATA", "/nonexistent-prunelab-data")  # auto: bundled MNIST, no real CIFAR-10
    params = WorkbookParams(data_source="auto", compressions=[1.0, 2.0], seeds=[1, 2, 3])
    grid = ablation_grid(params)
    assert {c.dataset for c in grid} == {"mnist"}  # CIFAR-10 joins only with its real data
    assert len(grid) == 4 * 2 * 3 * 4 and "rand" not in {c.pruner for c in grid}
    assert all(sum((c.shuffle, c.reinitialize, c.invert)) <= 1 for c in grid)
    scored = [c for c in grid if not (c.shuffle or c.reinitialize or c.invert)]
    assert len(scored) == 4 * 2 * 3


def test_an_ablation_at_chance_beside_its_pruner_at_chance_is_not_compared():
    # at compression 2 SNIP and its ablations all answer the most frequent class (10%), but shuffling its masks
    # lifts GraSP's collapsed runs above it: that one stays a comparison
    at_two = _table().assign(compression=2.0, top1=10.0)
    grasp_shuffle = (at_two["label"] == "GraSP") & at_two["shuffle"]
    at_two.loc[grasp_shuffle, "top1"] = 40.0 + at_two.loc[grasp_shuffle, "seed"]
    table = pd.concat([_table(), at_two]).assign(majority_class_top1=10.0)
    verdicts = {(v.pruner, v.compression, v.ablation): v for v in ablation_study(table)}
    chance = {key for key, v in verdicts.items() if v.at_chance}
    assert chance == {key for key in verdicts if key[1] == 2.0} - {("GraSP", 2.0, "layerwise shuffle")}
    assert verdicts[("GraSP", 2.0, "layerwise shuffle")].told_apart
    assert not any(v.at_chance for v in ablation_study(_table()))  # no majority class known: every cell compared
    lines = ablation_findings(table).splitlines()
    assert "at 2 (" not in lines[0]  # no SNIP cell at 2 ("… at 2 (+0.0 points, p = 1.00)") listed as a tie
    assert "+32.0" in lines[1]  # GraSP's shuffle at 2: 41, 42 and 43 against 10


def test_a_tie_beside_a_pruner_that_collapsed_on_some_seeds_is_not_read_as_a_finding():
    # at compression 2 two of SNIP's three seeds as scored answer the most frequent class, and so do its
    # ablations' (one seed each lifted above it): a tie there is two collapsed sets of runs, not a finding
    at_two = _table().assign(compression=2.0, top1=10.0)
    at_two.loc[at_two["seed"] == 3, "top1"] = 20.0
    table = pd.concat([_table(), at_two]).assign(majority_class_top1=10.0)
    verdicts = {(v.pruner, v.compression, v.ablation): v for v in ablation_study(table)}
    snip = verdicts[("SNIP", 2.0, "layerwise shuffle")]
    assert (snip.collapsed, snip.seeds, snip.at_chance, snip.told_apart) == (2, 3, False, False)
    assert verdicts[("SNIP", 1.0, "layerwise shuffle")].collapsed == 0
    snip_line = ablation_findings(table).splitlines()[0]
    assert "at 2 (" not in snip_line  # no "… at 2 (+0.0 points, p = 1.00)" among its ties
    assert "2 of its 3 seeds" in snip_line


def test_a_tie_with_an_ablation_that_collapsed_on_some_seeds_is_not_read_as_a_finding():
    table = _table().assign(majority_class_top1=10.0)
    shuffled = (table["label"] == "GraSP") & table["shuffle"] & (table["seed"] == 1)
    table.loc[shuffled, "top1"] = 10.0  # one of GraSP's shuffled runs collapsed: 10, 85.5, 86.7 against 84-86.2
    verdict = next(v for v in ablation_study(table) if v.pruner == "GraSP" and v.ablation == "layerwise shuffle")
    assert (verdict.collapsed, verdict.ablation_collapsed, verdict.ablation_seeds, verdict.told_apart) == (
        0, 1, 3, False)
    grasp = ablation_findings(table).splitlines()[1]
    assert "layerwise shuffle at 1 (" not in grasp and "1 of 3 seeds" in grasp


def test_frankle_et_als_claim_is_judged_per_pruner_by_the_ablations_that_test_it():
    table = _table().assign(pruner=lambda t: t["label"].str.lower())
    claim = frankle_claim(table, ablation_study(table))
    # SNIP's shuffle and re-initialization tie with it (its inversion, -30 points, is not the claim's test for
    # SNIP); GraSP's three ablations all tie: the data agree for both
    assert "points" not in claim and "SNIP" in claim and "GraSP" in claim  # no cost named: nothing against
    shuffled = table["shuffle"] & (table["label"] == "SNIP")
    worse = table.assign(top1=table["top1"] - 10.0 * shuffled)  # a shuffle that costs SNIP 10 points
    against = frankle_claim(worse, ablation_study(worse))
    snip, grasp = _claim_line(against, "SNIP"), _claim_line(against, "GraSP")
    assert "costs 10.0 points" in snip and "against it" in snip and "in line" in grasp
    assert frankle_claim(table.assign(pruner="mag"), ablation_study(table)) == ""  # Mag is not the claim's
    snip_only = worse[worse["label"] == "SNIP"]
    alone = frankle_claim(snip_only, ablation_study(snip_only))
    assert "costs 10.0 points" in alone and "weaker evidence" not in alone  # against only: no caveat about ties
    assert "re-initialized at 1" in claim and "layerwise shuffle at 1" in claim  # each pair that tied, named
    assert claim in ablation_key_result(table) and claim not in ablation_findings(table)  # the key result alone
    many = pd.concat([worse.assign(setup=f"{setup} {k}") for k in range(8) for setup in worse["setup"].unique()])
    assert "about 2 would pass by chance" in frankle_claim(many, ablation_study(many))  # 5 tests x 8
    assert "about 0.25 would pass by chance" in against  # 5 tests: 0.25 expected, not "none"


#: top-1 per seed of each pruner as scored and ablated at compressions 1 and 2, as the quick profile's MNIST / FC
#: runs gave them: SNIP and SynFlow lose to their shuffle only at 2, where they keep 27.7% and 43.9% of 89.5% and 87%
QUICK = {
    ("Mag", "mag"): {1.0: {"": [92.4, 90.8, 93.1], "shuffle": [85.1, 84.9, 87.0], "reinitialize": [79.7, 88.3, 85.2],
                           "invert": [10.0, 10.0, 10.0]},
                     2.0: {"": [10.0] * 3, "shuffle": [10.0] * 3, "reinitialize": [10.0] * 3, "invert": [10.0] * 3}},
    ("SNIP", "snip"): {1.0: {"": [88.9, 89.8, 89.9], "shuffle": [87.6, 88.0, 88.8], "reinitialize": [88.2, 88.0, 87.8],
                             "invert": [56.0, 59.4, 32.1]},
                       2.0: {"": [25.5, 26.0, 31.7], "shuffle": [10.0, 17.0, 13.4], "reinitialize": [30.9, 25.1, 33.2],
                             "invert": [10.0, 10.0, 10.0]}},
    ("GraSP", "grasp"): {1.0: {"": [87.0, 86.0, 88.4], "shuffle": [86.3, 86.7, 88.6],
                               "reinitialize": [87.7, 87.9, 86.4], "invert": [87.5, 90.1, 86.6]},
                         2.0: {"": [27.1, 10.0, 41.6], "shuffle": [10.0, 10.0, 10.0],
                               "reinitialize": [27.5, 10.0, 42.5], "invert": [41.1, 36.3, 42.9]}},
    ("SynFlow (100 rounds)", "synflow"): {
        1.0: {"": [87.5, 86.0, 87.6], "shuffle": [87.1, 84.8, 87.4], "reinitialize": [84.5, 85.6, 84.4],
              "invert": [10.0, 10.0, 10.0]},
        2.0: {"": [48.8, 40.3, 42.7], "shuffle": [15.5, 19.9, 16.5], "reinitialize": [47.1, 42.2, 45.3],
              "invert": [10.0, 10.0, 10.0]}},
}


def _quick() -> pd.DataFrame:
    rows = []
    for (label, pruner), levels in QUICK.items():
        for compression, flags in levels.items():
            for flag, values in flags.items():
                for seed, top1 in enumerate(values, start=1):
                    rows.append(dict(setup="MNIST / FC", label=label, pruner=pruner, compression=compression,
                                     seed=seed, top1=top1, shuffle=flag == "shuffle",
                                     reinitialize=flag == "reinitialize", invert=flag == "invert", stand_in=False,
                                     dataset="mnist", data_source="bundled", data=source_words("mnist", "bundled"),
                                     majority_class_top1=10.0, mask_scope="global"))
    return pd.DataFrame(rows)


def _claim_line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"- **{label}**"))


def test_the_notebook_shows_the_findings_in_its_section_and_the_claim_as_its_key_result():
    """The PDF prints a ``key-result`` cell on the front page only: the findings per pruner must not carry it."""
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    findings = [c for c in cells if "ablation_findings(" in "".join(c["source"])]
    key = [c for c in cells if "key-result" in c["metadata"].get("tags", [])]
    assert len(findings) == 1 and "key-result" not in findings[0]["metadata"].get("tags", [])
    assert len(key) == 1 and "ablation_key_result(" in "".join(key[0]["source"])


def test_the_claim_counts_the_tests_that_bear_on_it_and_those_that_passed():
    table = _quick()
    rows = claim_rows(table, ablation_study(table))
    # SNIP and SynFlow: shuffle and re-initialization at 1 and 2; GraSP: its inversion too; Mag is not the claim's
    assert len(rows) == 2 * 2 + 2 * 2 + 3 * 2 and "Mag" not in set(rows["pruner"])
    assert set(rows.loc[rows["told_apart"], "pruner"]) == {"SNIP", "SynFlow (100 rounds)"}
    assert int(rows["told_apart"].sum()) == 2  # the two shuffles at 2
    # GraSP collapsed on 1 of its 3 seeds at 2, and its three ablations there tie with it: the findings say such a
    # tie says nothing, so they are counted apart from the tests that bear on the claim
    count = claim_count(rows)
    assert (count.run, count.silent, count.bearing, count.passed) == (14, 3, 11, 2)
    assert count.chance == pytest.approx(0.05 * 14)  # a silent tie could have passed: chance counts every test run
    closing = ablation_key_result(table).splitlines()[-1]
    assert all(f" {n} " in closing for n in (14, 11, 3, 2)) and "0.7" in closing and "GraSP" in closing
    # those three are not called ties whatever their size: the closing line and GraSP's findings give each difference
    silent = rows[~rows["told_apart"] & (rows["collapsed"] > 0)]
    differences = [f"{d:+.1f}" for d in silent["difference"]]
    assert f"{min(differences, key=float)} to {max(differences, key=float)} points" in closing
    grasp = next(line for line in ablation_findings(table).splitlines() if "GraSP" in line)
    assert all(f"{d} points" in grasp for d in differences)
    no_grasp = table[table["pruner"] != "grasp"]
    count = claim_count(claim_rows(no_grasp, ablation_study(no_grasp)))
    assert (count.run, count.silent, count.bearing, count.passed) == (8, 0, 8, 2)
    closing = ablation_key_result(no_grasp).splitlines()[-1]
    assert "8 tests" in closing and "about 0.4 would" in closing  # 0.05 x 8, not "none"


def test_a_family_of_one_test_is_said_to_be_unadjusted_not_holm_adjusted_over_one():
    """SNIP's shuffle at one compression alone: a family of one, whose p is Welch's own; the claim's words do not
    call it Holm-adjusted over 1 test, and a family of several still is."""
    table = _quick()
    one = table[(table["pruner"] == "snip") & (table["compression"] == 1.0) & ~table["reinitialize"]
                & ~table["invert"]]
    rows = claim_rows(one, ablation_study(one))
    assert list(rows["family"]) == [1] and int(rows["told_apart"].sum()) == 1
    closing = ablation_key_result(one).splitlines()[-1]
    assert "Holm" not in closing and "over the 1 " not in closing
    assert "Holm" in ablation_key_result(table).splitlines()[-1]


def test_a_cost_found_only_near_collapse_is_said_to_be_so_with_its_accuracy_as_scored():
    table = _quick()
    near = {(v.pruner, v.compression) for v in ablation_study(table) if v.near_collapse}
    # at 2 each keeps less than half its lead over the most frequent class (10%) at 1 (Mag none: it collapsed)
    assert near == {(label, 2.0) for label, _ in QUICK}
    key = ablation_key_result(table)
    snip, synflow = _claim_line(key, "SNIP"), _claim_line(key, "SynFlow (100 rounds)")
    assert "only near collapse" in snip and "27.7% as scored (89.5% at 1)" in snip and "14.3 points" in snip
    assert f"{TIES}: layerwise shuffle at 1" in snip  # the ties where SNIP works, beside the cost
    assert "only near collapse" in synflow and "43.9% as scored (87.0% at 1)" in synflow
    assert "near collapse" not in _claim_line(key, "GraSP")
    assert "the effect shows only near collapse, at 3 seeds" in key
    # a shuffle that costs SNIP 11 points at 1 as well: that cost is not near collapse, so SNIP's verdict and
    # the closing stand without the hedge (its cost at 2 alone says it is near collapse); SynFlow's keeps it
    healthy = table.copy()
    shuffled = (healthy["label"] == "SNIP") & healthy["shuffle"] & (healthy["compression"] == 1.0)
    healthy.loc[shuffled, "top1"] -= 10.0
    key = ablation_key_result(healthy)
    snip = _claim_line(key, "SNIP")
    assert "only near collapse" not in snip and "layerwise shuffle at 1 costs 11.4 points" in snip
    assert "27.7% as scored, near collapse (89.5% at 1)" in snip
    assert "89.5% as scored" in snip and "only near collapse" in _claim_line(key, "SynFlow (100 rounds)")
    assert "the effect shows only near collapse" not in key and "3 passed" in key


def test_a_large_difference_not_told_apart_is_unresolved_not_a_tie():
    table = _quick()
    verdicts = ablation_study(table)
    short = {(v.pruner, v.compression, v.ablation) for v in verdicts if v.low_power}
    # SNIP's inversion at 1 (-40.4, p = 0.087) and Mag's re-initialization (-7.7, p = 0.083): every ablated seed
    # below every seed as scored; SNIP's shuffle at 1 (-1.4, also below every seed) is small: a tie
    assert short == {("SNIP", 1.0, "inverted scores"), ("Mag", 1.0, "re-initialized")}
    findings = ablation_findings(table)
    snip = _claim_line(findings, "SNIP")
    ties = snip[snip.index("not told apart from"):snip.index("large difference")]
    assert "-1.4 points" in ties and "-40.4" not in ties
    assert "inverted scores at 1 (-40.4 points" in snip and "more seeds would settle it" in snip
    assert "more seeds would settle it" in _claim_line(findings, "Mag")
    assert all("settle" not in _claim_line(findings, label) for label in ("GraSP", "SynFlow (100 rounds)"))
    # a claim test of that kind leaves its pruner's verdict undecided, neither for nor against the claim
    wide = table[table["compression"] == 1.0].copy()
    reinit = (wide["label"] == "SynFlow (100 rounds)") & wide["reinitialize"]
    wide.loc[reinit, "top1"] = [70.0, 80.0, 60.0]
    assert next(v for v in ablation_study(wide) if v.pruner.startswith("SynFlow") and v.ablation == "re-initialized"
                ).low_power
    synflow = _claim_line(ablation_key_result(wide), "SynFlow (100 rounds)")
    assert "undecided" in synflow and "in line" not in synflow and "more seeds would settle it" in synflow


def test_an_unresolved_split_is_said_with_how_often_chance_gives_one_so_clean():
    """Every ablated seed below every seed as scored happens, were the ablation to change nothing, in 2 of the
    C(n1 + n2, n1) orderings of the pooled seeds: at 3 against 3, 1 time in 10; at 2 against 2, 1 in 3."""
    assert clean_split_chance(3, 3) == pytest.approx(0.1) and clean_split_chance(2, 2) == pytest.approx(1 / 3)
    assert clean_split_chance(3, 2) == pytest.approx(0.2) == clean_split_chance(2, 3)
    snip = _claim_line(ablation_findings(_quick()), "SNIP")  # its inversion at 1: 3 seeds against 3
    assert "inverted scores at 1 (-40.4 points" in snip and "1 time in 10" in snip
    two = _quick()[lambda t: t["seed"] <= 2]
    assert "1 time in 3" in _claim_line(ablation_findings(two), "SNIP")


def test_an_untestable_ablation_is_named_beside_the_tested_ones():
    # SNIP at 1 with one re-initialized seed: its shuffle and inversion are tested, its re-initialization not
    table = _quick()[lambda t: (t["label"] == "SNIP") & (t["compression"] == 1.0)]
    table = table[~(table["reinitialize"] & (table["seed"] > 1))]
    testable = {v.ablation: v.testable for v in ablation_study(table)}
    assert testable == {"layerwise shuffle": True, "re-initialized": False, "inverted scores": True}
    line = ablation_findings(table)
    assert "no ablation can be tested" not in line and "re-initialized at 1" in line
    single = table[table["seed"] == 1]  # one seed of each: nothing testable
    assert not any(v.testable for v in ablation_study(single))
    assert "no ablation can be tested" in ablation_findings(single)


def test_a_verdict_against_the_claim_keeps_its_unresolved_losses_and_gains():
    # SynFlow re-initialized at 1 scores 70, 80 and 60 against 86 to 87.6: 17 points below, unresolved at 3 seeds,
    # where SynFlow works; its only cost told apart (its shuffle at 2) is near collapse
    table = _quick()
    reinit = table["label"].str.startswith("SynFlow") & table["reinitialize"] & (table["compression"] == 1.0)
    table.loc[reinit, "top1"] = [70.0, 80.0, 60.0]
    verdict = next(v for v in ablation_study(table)
                   if v.pruner.startswith("SynFlow") and v.ablation == "re-initialized" and v.compression == 1.0)
    assert verdict.low_power and not verdict.near_collapse and verdict.difference == pytest.approx(-17.0, abs=0.05)
    key = ablation_key_result(table)
    synflow = _claim_line(key, "SynFlow (100 rounds)")
    assert "costs 26.6 points" in synflow and "-17.0 points" in synflow  # the loss at 1 stays in the verdict
    assert "only near collapse" not in synflow and "the effect shows only near collapse" not in key
    assert "only near collapse" in _claim_line(key, "SNIP")  # SNIP's own verdict keeps its hedge
    # a gain told apart beside a cost: SNIP re-initialized at 1 scores 6 points above it, and stays in its line
    gain = _quick()
    reinit = (gain["label"] == "SNIP") & gain["reinitialize"] & (gain["compression"] == 1.0)
    gain.loc[reinit, "top1"] = [95.0, 95.5, 96.0]
    snip = _claim_line(ablation_key_result(gain), "SNIP")
    assert "costs 14.3 points" in snip and "+6.0 points" in snip


def test_a_tie_near_collapse_is_not_counted_as_support_for_the_claim():
    # SNIP and SynFlow re-initialized at 2 tie with them where they keep under half their lead: weak either way
    table = _quick()
    ties = {(v.pruner, v.ablation) for v in ablation_study(table)
            if v.compression == 2.0 and v.near_collapse and v.testable and not v.told_apart and not v.low_power
            and not v.collapsed and not v.ablation_collapsed}
    assert ties == {("SNIP", "re-initialized"), ("SynFlow (100 rounds)", "re-initialized")}
    key = ablation_key_result(table)
    for label in ("SNIP", "SynFlow (100 rounds)"):
        line = _claim_line(key, label)
        support = line[line.index(f"{TIES}:"):]
        support = support[:support.index(".")]
        assert "layerwise shuffle at 1" in support and "at 2" not in support and "re-initialized at 2" in line
    # without its cost at 2, SynFlow's support is its ties at 1 alone, the tie at 2 set apart
    calm = table[~(table["label"].str.startswith("SynFlow") & table["shuffle"] & (table["compression"] == 2.0))]
    synflow = _claim_line(ablation_key_result(calm), "SynFlow (100 rounds)")
    support = synflow[synflow.index("in line with it"):]
    support = support[:support.index(".")]
    assert "re-initialized at 1" in support and "at 2" not in support and "re-initialized at 2" in synflow
    # ties near collapse alone decide nothing: SNIP with its re-initialization at 2 only
    alone = table[(table["label"] == "SNIP") & ~table["shuffle"]
                  & ~(table["reinitialize"] & (table["compression"] == 1.0))]
    snip = _claim_line(ablation_key_result(alone), "SNIP")
    assert "in line" not in snip and "re-initialized at 2" in snip


def test_near_collapse_is_measured_over_each_set_ups_own_floor():
    # a second set-up whose records lack the most frequent class's share: its verdicts measure the lead over zero,
    # those of MNIST / FC over 10%, and the rule names both
    other = _quick().assign(setup="Other / FC", majority_class_top1=math.nan)
    table = pd.concat([_quick(), other], ignore_index=True)
    near = {(v.setup, v.pruner, v.chance_top1 if v.chance_top1 == v.chance_top1 else None)
            for v in ablation_study(table) if v.near_collapse and v.pruner == "SNIP"}
    assert near == {("MNIST / FC", "SNIP", 10.0), ("Other / FC", "SNIP", None)}
    key = ablation_key_result(table)
    rule = key[key.index("Near collapse means"):]
    rule = rule[:rule.index(" tests ")]
    assert "10.0% on MNIST / FC" in rule and "Other / FC" in rule


def _holm_by_hand(raw: dict) -> dict:
    """Holm's step-down adjustment of ``raw`` p-values, written out apart from :func:`.numbers.holm`."""
    ordered, adjusted, floor = sorted(raw, key=raw.get), {}, 0.0
    for rank, key in enumerate(ordered):
        floor = max(floor, min(1.0, (len(ordered) - rank) * raw[key]))
        adjusted[key] = floor
    return adjusted


def test_a_pruners_ablations_are_holm_adjusted_over_every_compression_of_its_set_up():
    """A pruner's verdict pools its ablations at compressions 1 and 2, so its six p-values are adjusted together,
    in the study and in Table M alike: SynFlow's re-initialization at 1 (Welch alone p = 0.015, 0.046 over its
    row's three) is no longer told apart over the six."""
    from scipy import stats

    table = _quick()
    flags = {"layerwise shuffle": "shuffle", "re-initialized": "reinitialize", "inverted scores": "invert"}
    verdicts = {(v.pruner, v.compression, v.ablation): v for v in ablation_study(table)}
    shown = ablation_table(table)
    for label, _ in QUICK:
        levels = QUICK[(label, _)]
        with warnings.catch_warnings():  # 10, 10, 10 beside others: scipy warns of precision, the p stands
            warnings.simplefilter("ignore", RuntimeWarning)
            raw = {(c, name): stats.ttest_ind(levels[c][flag], levels[c][""], equal_var=False).pvalue
                   for c in levels for name, flag in flags.items()
                   if len(set(levels[c][flag]) | set(levels[c][""])) > 1}
        assert len(raw) == (3 if label == "Mag" else 6)  # Mag at 2: 10.0 on every seed of both, no test
        for (c, name), p in _holm_by_hand(raw).items():
            verdict = verdicts[(label, c, name)]
            assert verdict.p_value == pytest.approx(p) and verdict.family == len(raw)
            assert verdict.told_apart == (p < 0.05)
            cell = shown.loc[(shown.index[0][0], label, f"{c:g}"), f"{name}: p"]
            assert cell == ("< 0.001" if p < 0.001 else f"{p:.3f}")  # the table shows the verdict's p
    reinit = verdicts[("SynFlow (100 rounds)", 1.0, "re-initialized")]
    assert not reinit.told_apart and 0.05 < reinit.p_value < 0.1
    rows = claim_rows(table, list(verdicts.values()))
    assert int(rows["told_apart"].sum()) == 2  # the two shuffles at 2 stay told apart
    # one compression alone: a family of three, each p the smaller
    at_one = table[table["compression"] == 1.0]
    alone = {(v.pruner, v.ablation): v for v in ablation_study(at_one)}
    assert alone[("SynFlow (100 rounds)", "re-initialized")].family == 3
    assert alone[("SynFlow (100 rounds)", "re-initialized")].p_value < reinit.p_value


def test_no_p_where_neither_group_varies_and_such_a_pair_joins_no_family():
    """Welch's statistic is undefined where every seed of both groups has one top-1 (0/0, or a difference over no
    spread): no p there, in the table or the study, and the pruner's other tests are adjusted over the defined ones
    alone. One group without spread (30, 30, 30 against 10, 17, 13.4) leaves the test defined."""
    table = _quick()
    snip = (table["label"] == "SNIP") & (table["compression"] == 2.0)
    scored_two = snip & ~(table["shuffle"] | table["reinitialize"] | table["invert"])
    table.loc[scored_two | (snip & table["reinitialize"]), "top1"] = 30.0  # equal; its inversion: 10 on every seed
    verdicts = {(v.compression, v.ablation): v for v in ablation_study(table) if v.pruner == "SNIP"}
    undefined = {key for key, v in verdicts.items() if not v.testable}
    assert undefined == {(2.0, "re-initialized"), (2.0, "inverted scores")}
    assert all(math.isnan(verdicts[key].p_value) and not verdicts[key].told_apart for key in undefined)
    assert {v.family for v in verdicts.values() if v.testable} == {4}  # 6 less the two undefined
    assert math.isfinite(verdicts[(2.0, "layerwise shuffle")].p_value)  # -16.5 points against 30 on every seed
    row = ablation_table(table).xs(("SNIP", "2"), level=("pruner", "compression")).iloc[0]
    assert row["re-initialized: p"] == row["inverted scores: p"] == "–" != row["layerwise shuffle: p"]
    snip_line = _claim_line(ablation_findings(table), "SNIP")
    assert "re-initialized at 2 (" not in snip_line and "inverted scores at 2 (" not in snip_line  # no p quoted


def test_pairs_at_chance_on_both_sides_join_no_family_and_get_no_p():
    """Mag at 2 at chance on every seed as scored and ablated, but with spread (10.4, 9.8, 10.1 and the like): the
    verdict sets such pairs aside (nothing to tell apart), so they are no tests it draws on: no p in the study or in
    Table M, and Mag's three ablations at 1 are adjusted over those three alone."""
    from scipy import stats

    table = _quick()
    mag_two = (table["pruner"] == "mag") & (table["compression"] == 2.0)
    table.loc[mag_two, "top1"] = [10.4, 9.8, 10.1, 10.0, 10.6, 9.9, 9.7, 10.3, 10.2, 10.5, 10.0, 9.6]
    verdicts = {(v.compression, v.ablation): v for v in ablation_study(table) if v.pruner == "Mag"}
    chance = {key for key, v in verdicts.items() if v.at_chance}
    assert chance == {(2.0, name) for name in ("layerwise shuffle", "re-initialized", "inverted scores")}
    assert all(math.isnan(verdicts[key].p_value) and not verdicts[key].told_apart for key in chance)
    levels = QUICK[("Mag", "mag")][1.0]
    with warnings.catch_warnings():  # 10, 10, 10 beside others: scipy warns of precision, the p stands
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = {name: stats.ttest_ind(levels[flag], levels[""], equal_var=False).pvalue
               for name, flag in (("layerwise shuffle", "shuffle"), ("re-initialized", "reinitialize"),
                                  ("inverted scores", "invert"))}
    for name, p in _holm_by_hand(raw).items():
        assert verdicts[(1.0, name)].family == 3 and verdicts[(1.0, name)].p_value == pytest.approx(p)
    shown = ablation_table(table)
    for (c, name), v in verdicts.items():  # the table's p is the verdict's, a dash where it has none
        cell = shown.loc[(shown.index[0][0], "Mag", f"{c:g}"), f"{name}: p"]
        assert cell == ("–" if math.isnan(v.p_value) else "< 0.001" if v.p_value < 0.001 else f"{v.p_value:.3f}")


def test_a_pruner_trained_before_pruning_is_said_to_lose_that_training_when_re_initialized():
    """Re-initializing draws fresh weights after pre-training: the records' pre-training epochs, not a pruner's
    name, decide which pruners' re-initialized difference also carries that loss, in Table M's note and in their
    findings line."""
    table = _quick().assign(pre_epochs=lambda t: (t["pruner"] == "mag") * 30)
    assert pretrained_reinitialized(table) == {("MNIST / FC", "Mag"): [30]}
    note = ablation_table_note(table)
    assert "Mag" in note and "30" in note and "SNIP" not in note
    plain = _quick().assign(pre_epochs=0)
    assert ablation_table_note(plain) == "" == ablation_table_note(_quick())  # none pre-trained, or not recorded
    before, after = ablation_findings(plain).splitlines(), ablation_findings(table).splitlines()
    assert after[0].startswith(before[0][:-1]) and len(after[0]) > len(before[0])  # Mag's line gains a clause
    assert after[1:] == before[1:]
    # another pruner pre-trained (SNIP, 5 epochs): it is the one named, whatever its name
    snip = _quick().assign(pre_epochs=lambda t: (t["pruner"] == "snip") * 5)
    assert pretrained_reinitialized(snip) == {("MNIST / FC", "SNIP"): [5]}
    assert "SNIP" in ablation_table_note(snip) and "Mag" not in ablation_table_note(snip)
    # Mag's re-initialized runs at 2 are at chance beside it there: with those alone, nothing to qualify
    only_two = table[(table["label"] != "Mag") | (table["compression"] == 2.0)]
    assert ablation_findings(only_two).splitlines()[0] == ablation_findings(
        only_two.assign(pre_epochs=0)).splitlines()[0]
