"""Notebook 05's table and findings from hand-made records: which ablations can be told apart from their pruner."""

import math

import pandas as pd
import pytest

from prunelab.data.catalog import source_words
from prunelab.workbook.ablations import AS_SCORED, ablation_findings, ablation_of, ablation_study, ablation_table
from prunelab.workbook.grids import WorkbookParams, ablation_grid


def _table(stand_in: bool = False) -> pd.DataFrame:
    """SNIP: inverting its scores costs 30 points, shuffling and re-initialising nothing (a density, not weights);
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
    assert list(table.columns) == [AS_SCORED, "layerwise shuffle", "layerwise shuffle: p", "re-initialised",
                                   "re-initialised: p", "inverted scores", "inverted scores: p"]
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
    three ablations of one row Holm triples the smallest, so none is told apart, in the table and the study."""
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
    from prunelab.workbook.ablations import frankle_claim

    table = _table().assign(pruner=lambda t: t["label"].str.lower())
    claim = frankle_claim(table, ablation_study(table))
    # SNIP's shuffle and re-initialisation tie with it (its inversion, -30 points, is not the claim's test for
    # SNIP); GraSP's three ablations all tie: the data agree for both
    assert "points" not in claim and "SNIP" in claim and "GraSP" in claim  # no cost named: nothing against
    shuffled = table["shuffle"] & (table["label"] == "SNIP")
    worse = table.assign(top1=table["top1"] - 10.0 * shuffled)  # a shuffle that costs SNIP 10 points
    against = frankle_claim(worse, ablation_study(worse))
    assert "-10.0 points" in against and against.index("SNIP (") < against.index("GraSP (")  # against, then for
    assert frankle_claim(table.assign(pruner="mag"), ablation_study(table)) == ""  # Mag is not the claim's
    snip_only = worse[worse["label"] == "SNIP"]
    alone = frankle_claim(snip_only, ablation_study(snip_only))
    assert "-10.0 points" in alone and alone.endswith(").")  # against only: no caveat about ties after it
    assert "re-initialised at 1" in claim and "layerwise shuffle at 1" in claim  # each pair that tied, named
    assert claim in ablation_findings(table)
    many = pd.concat([worse.assign(setup=f"{setup} {k}") for k in range(8) for setup in worse["setup"].unique()])
    assert "by chance" in frankle_claim(many, ablation_study(many)) and "by chance" not in against
