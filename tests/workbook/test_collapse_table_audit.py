"""The collapse table reads each record's mask audit, and pruning's report for records made before it; where a
run at chance kept every layer, it rebuilds the run's model to tell whether a path is left."""

import json
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from prunelab.core.choices import CONSTANT_PREDICTION_MARGIN, DENSE_LABEL
from prunelab.runs.config import RunConfig
from prunelab.runs.fused import run_configs
from prunelab.workbook.collapse_figures import plot_collapse
from prunelab.workbook.collapse_study import collapse_study
from prunelab.workbook.collapses import VERDICTS, collapse_table, collapsed_cells, emptied_layers
from prunelab.workbook.findings import collapses
from prunelab.workbook.glossary import TERMS
from prunelab.workbook.grids import records_table
from prunelab.workbook.numbers import AT_CHANCE


def _row(label, **kw):
    base = dict(setup="MNIST / FC", label=label, compression=3.0, top1=11.35, seed=1, majority_class_top1=11.35,
                collapsed_layers=[], stand_in=False)
    return {**base, **kw}


def test_the_collapse_table_reads_the_audit_and_falls_back_for_older_records():
    table = pd.DataFrame([
        # audited after training: the audit's layers count, not pruning's
        _row("SNIP", collapsed_layers=["1.weight"], mask_audit="collapsed",
             mask_audit_collapsed=["1.weight", "3.weight"]),
        # made before the audit: no mask_audit, pruning's report stands
        _row("GraSP", collapsed_layers=["5.weight"], mask_audit=math.nan, mask_audit_collapsed=math.nan),
        # audited ok at a good accuracy: pruning's stale report does not make it a collapse
        _row("Rand", top1=90.0, collapsed_layers=["7.weight"], mask_audit="ok", mask_audit_collapsed=[]),
        # made before pruning reported its layers (NaN in a table that mixes it with newer records): none
        _row("Mag", top1=90.0, collapsed_layers=math.nan, mask_audit=math.nan, mask_audit_collapsed=math.nan),
    ])
    found = collapse_table(table).droplevel([0, 1])["layers with no weights"].to_dict()
    assert found == {"SNIP": "1, 3", "GraSP": "5"}  # no record to name them by: their paths, less ".weight"
    assert emptied_layers(table.drop(columns=["mask_audit", "mask_audit_collapsed"]))[3] == []


def test_a_table_of_older_records_only_reads_pruning_report():
    table = pd.DataFrame([_row("SNIP", collapsed_layers=["1.weight"]), _row("Rand", top1=90.0)])
    found = collapse_table(table).reset_index()
    assert list(found["pruner"]) == ["SNIP"] and found.iloc[0]["layers with no weights"] == "1"


def test_shown_it_names_each_compression_as_run_and_flags_a_stand_in():
    from prunelab.workbook.tables import styled

    table = pd.DataFrame([_row("SNIP", compression=0.25, collapsed_layers=["1.weight"]),
                          _row("SNIP", setup="CIFAR-10 / ResNet20", compression=0.25, collapsed_layers=["1.weight"],
                               stand_in=True)])
    found = collapse_table(table)
    html = styled(found, "top1", "Runs that collapsed").to_html()
    cells = re.findall(r'class="row_heading level1 row\d" [^>]*>([^<]*)<', html)  # the compression level
    assert cells == ["0.25", "0.25"]
    assert [bool(re.search("stand-in", name)) for name in found.index.get_level_values("Data / Arch")] == \
        [False, True]


def test_runs_at_chance_with_every_layer_kept_are_told_apart_by_whether_a_path_is_left(tmp_path):
    configs = [RunConfig(dataset="mnist", model="fc", data_source="synthetic", train_subset=128, test_subset=64,
                         post_epochs=1, pruner="rand", compression=compression, seed=seed, result_dir=str(tmp_path),
                         fuse="off")
               for compression in (2.0, 2.5) for seed in (1, 2)]
    table = records_table(run_configs(configs, progress=False, log=lambda message: None)).assign(stand_in=False)
    assert not any(table["mask_audit_collapsed"].map(len))  # every layer kept weights in all four runs
    found = collapse_table(table).reset_index()
    assert list(found["compression"]) == [2.0, 2.5] and list(found["collapsed runs"]) == ["2 of 2", "2 of 2"]
    assert list(found["verdict"]) == [VERDICTS["path"], VERDICTS["no path"]]
    cells = collapses(table).constant
    assert [(c.compression, c.runs, c.no_path) for c in cells] == [(2.0, 2, 0), (2.5, 2, 2)]
    assert [c.no_path for c in collapsed_cells(table.assign(stand_in=True))] == [None, None]  # stand-ins: unchecked
    (study,) = collapse_study(table)  # at chance from 2, with a path; cut off from input at 2.5
    assert (study.first_at_chance, study.first_emptied, study.first_cut, study.paths_checked) == (2.0, None, 2.5, True)
    assert _squares(table) == [(2.5, "Rand")]  # in Rand's lane of the strip under the panel
    assert _squares(table.assign(stand_in=True)) == []  # stand-ins: not checked, so not marked
    # a row naming no record, or a record moved away since: not known, never a guess
    unnamed = table.assign(path=[None] + list(table["path"][1:]))
    moved = table.assign(path=[str(tmp_path / "moved")] + list(table["path"][1:]))
    for partial in (unnamed, moved):
        (study,) = collapse_study(partial)
        assert (study.first_cut, study.paths_checked) == (None, False)
        assert [c.no_path for c in collapsed_cells(partial)] == [None, 2]  # the 2.0 cell's first run is unknown
    mixed = pd.concat([table[table["compression"] == 2.0], table[table["compression"] == 2.5].head(1)])
    (cell,) = collapsed_cells(mixed.assign(compression=2.0))
    assert cell.no_path == 1 and cell.verdict.startswith(VERDICTS["no path"])


def _squares(table: pd.DataFrame) -> list[tuple[float, str]]:
    """Figure 1c's squares, where a network is first left with no path, as (compression, the pruner whose lane it
    sits in), when the legend names them; none stands in an accuracy panel."""
    fig = plot_collapse(table)
    assert not [line for ax in fig.axes if ax.get_title() for line in ax.lines if line.get_marker() == "s"]
    points = [(float(line.get_xdata()[0]), next(t.get_text() for t in ax.texts if t.xy[1] == line.get_ydata()[0]))
              for ax in fig.axes if not ax.get_title() for line in ax.lines if line.get_marker() == "s"]
    legend = fig.legends[0]
    marked = any(handle.get_marker() == "s" for handle in getattr(legend, "legend_handles", None) or [])
    plt.close(fig)
    assert marked == bool(points)
    return points


def test_the_table_runs_by_set_up_in_the_runs_order_then_by_compression():
    cells = [("MNIST / FC", "SNIP", 3.0), ("MNIST / FC", "Rand", 2.5), ("Conv", "SNIP", 2.0),
             ("MNIST / FC", "SNIP", 2.5)]
    table = pd.DataFrame([_row(label, setup=setup, compression=c, collapsed_layers=["1.weight"])
                          for setup, label, c in cells])
    found = collapse_table(table).index.tolist()
    assert found == [("MNIST / FC", 2.5, "Rand"), ("MNIST / FC", 2.5, "SNIP"), ("MNIST / FC", 3.0, "SNIP"),
                     ("Conv", 2.0, "SNIP")]


def test_with_no_run_collapsed_the_table_is_empty_and_has_no_parts():
    found = collapse_table(pd.DataFrame([_row("Rand", top1=90.0), _row("SNIP", top1=91.0)]))
    assert found.empty and list(found.groupby(level="Data / Arch", sort=False)) == []


def test_emptied_layers_of_a_data_free_pruner_hold_on_stand_in_data_and_vanished_scores_are_named():
    from prunelab.workbook.findings import _collapse_lines

    table = pd.DataFrame([
        _row("SynFlow (1 round)", pruner="synflow", setup="CIFAR-10 / ResNet20", stand_in=True,
             collapsed_layers=["blocks.6.shortcut.0.weight"]),
        _row("SNIP", pruner="snip", setup="CIFAR-10 / ResNet20", stand_in=True, collapsed_layers=["conv.weight"]),
        _row("Rand", pruner="rand", setup="CIFAR-10 / ResNet20", stand_in=True),  # at chance, every layer kept
        _row("SynFlow (100 rounds)", pruner="synflow", collapsed_layers=["1.weight"], vanished_layers=["1.weight"]),
        _row("SynFlow (100 rounds)", pruner="synflow", seed=2, collapsed_layers=["1.weight"], vanished_layers=[]),
    ])
    found = collapses(table)
    assert found.stand_in == 3 and [c.label for c in found.masks_hold] == ["SynFlow (1 round)"]
    (real,) = found.emptied
    assert (real.vanished, real.vanished_runs, real.runs, real.data_free) == (("1",), 1, 2, True)
    text = "\n".join(_collapse_lines(found))
    assert "`blocks.6.shortcut.0`" in text and "`conv`" not in text  # SNIP's reads the stand-in
    assert "1 of 2" in text and "2 further" in text  # the vanished runs; the two stand-in cells left
    iterative = [line for line in _collapse_lines(found) if line.startswith("- SynFlow (100 rounds)")]
    assert len(iterative) == 1 and "`1`" in iterative[0]  # the cell and the layer it emptied
    assert not [line for line in _collapse_lines(collapses(table.iloc[:3])) if "SynFlow (100 rounds)" in line]
    plain = collapses(table.drop(columns=["pruner", "vanished_layers"]))  # tables without those columns
    assert plain.masks_hold == () and plain.emptied[0].vanished == ()
    older = table.assign(vanished_layers=[[], [], [], ["1.weight"], None])  # the second run's record predates it
    (cell,) = collapses(older).emptied
    assert (cell.vanished_runs, cell.vanished_known) == (1, 1)


def test_a_verdict_names_the_chance_margin_it_applies_not_one_class():
    """Records hold no per-class predictions: a run above the most frequent class's share, within the margin, is
    at chance by the rule, and every verdict on such runs names that rule, the emptied-but-above ones its absence."""
    above = 11.35 + CONSTANT_PREDICTION_MARGIN / 2  # more than one class can score, within the margin
    table = pd.DataFrame([_row("Mag", top1=above), _row("SNIP", top1=above, collapsed_layers=["1.weight"]),
                          _row("GraSP", top1=60.0, collapsed_layers=["1.weight"])])
    cells = {c.label: c for c in collapsed_cells(table)}
    assert cells["Mag"].constant and cells["SNIP"].constant and not cells["GraSP"].constant
    assert AT_CHANCE in cells["Mag"].verdict and AT_CHANCE in cells["SNIP"].verdict
    assert AT_CHANCE not in cells["GraSP"].verdict
    at_chance_kinds = ("emptied, constant", "no path", "path", "constant")
    assert all(AT_CHANCE in VERDICTS[kind] for kind in at_chance_kinds)


def test_the_notebook_and_the_glossary_state_the_margin_the_code_applies():
    notebook = json.loads((Path(__file__).parents[2] / "notebooks" / "01_tuning.ipynb").read_text())
    text = " ".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    rule = r"no\s+more\s+than\s+(\d+(?:\.\d+)?)\s+points?\s+above\s+always\s+answering"
    stated = re.findall(rule, text) + re.findall(rule, dict(TERMS)[AT_CHANCE])
    assert len(stated) == 2 and all(float(margin) == CONSTANT_PREDICTION_MARGIN for margin in stated)
    assert AT_CHANCE in dict(TERMS)["collapse"]  # the collapse entry names the rule the glossary states once


def test_runs_at_chance_where_the_unpruned_network_is_at_chance_too_are_left_out_and_counted():
    """On a set-up whose unpruned network is itself at chance (9.6% against 11.6%), a pruned run at chance says
    nothing about its pruning: its rows leave the table and a line counts their runs; a row naming an emptied
    layer stays (a fact about the mask), and a set-up whose unpruned network learnt keeps its rows at chance."""
    from prunelab.workbook.collapses import chance_references, collapse_table_note

    cifar = dict(setup="CIFAR-10 / ResNet20", majority_class_top1=11.6, stand_in=True)
    table = pd.DataFrame([_row("SNIP", compression=0.5, top1=9.6, **cifar),
                          _row("SNIP", compression=0.5, top1=10.4, seed=2, **cifar),
                          _row("GraSP", compression=1.0, top1=11.4, **cifar),
                          _row("SynFlow (1 round)", compression=1.0, top1=11.2, collapsed_layers=["7.weight"], **cifar),
                          _row("Rand", compression=3.0)])  # MNIST / FC at chance, no layer emptied
    dense = pd.DataFrame([_row(DENSE_LABEL, compression=0.0, top1=9.6, **cifar),
                          _row(DENSE_LABEL, compression=0.0, top1=93.0)])
    assert chance_references(dense) == {("CIFAR-10 / ResNet20", True): (9.6, 11.6)}
    everything = collapse_table(table).reset_index()
    shown = collapse_table(table, dense=dense).reset_index()
    assert len(everything) == 4 and list(shown["pruner"]) == ["SynFlow (1 round)", "Rand"]
    note = collapse_table_note(table, dense=dense)
    assert len(note.splitlines()) == 1 and "CIFAR-10 / ResNet20" in note and "MNIST / FC" not in note
    assert re.search(r"\b3 runs\b", note) and "9.6" in note and "11.6" in note  # SNIP's two runs and GraSP's one
    assert collapse_table_note(table) == "" == collapse_table_note(table, dense=dense.assign(top1=93.0))
    # one unpruned seed that learnt: the reference is not at chance, and every row stays
    learnt = pd.concat([dense, pd.DataFrame([_row(DENSE_LABEL, compression=0.0, top1=40.0, seed=2, **cifar)])])
    assert chance_references(learnt) == {} and collapse_table(table, dense=learnt).equals(collapse_table(table))
    # every row of the set-up left out: none of its part remains, the line still counts them
    alone = table[table["label"].isin(["SNIP", "GraSP"])]
    assert collapse_table(alone, dense=dense).empty and collapse_table_note(alone, dense=dense) == note


def test_an_unpruned_network_at_chance_on_the_stand_in_leaves_real_runs_at_chance_in_the_table():
    """One set-up name, unpruned runs on the synthetic stand-in (at chance: it has nothing to learn) and pruned runs
    on the real data too: only the stand-in's pruned runs at chance are left out, as only they share the reference's
    data; the real data's runs at chance stay in Table A2, and the note counts the stand-in's alone."""
    from prunelab.workbook.collapses import chance_references, collapse_table_note

    cifar = dict(setup="CIFAR-10 / ResNet20", majority_class_top1=11.6)
    table = pd.DataFrame([_row("SNIP", compression=0.5, top1=9.6, stand_in=True, **cifar),
                          _row("GraSP", compression=0.5, top1=10.4, stand_in=True, **cifar),
                          _row("SNIP", compression=1.0, top1=10.1, **cifar),  # real data, at chance
                          _row("GraSP", compression=1.0, top1=85.0, **cifar)])  # real data, learnt
    dense = pd.DataFrame([_row(DENSE_LABEL, compression=0.0, top1=9.6, stand_in=True, **cifar),
                          _row(DENSE_LABEL, compression=0.0, top1=91.0, **cifar)])
    assert chance_references(dense) == {("CIFAR-10 / ResNet20", True): (9.6, 11.6)}
    shown = collapse_table(table, dense=dense).reset_index()
    assert list(zip(shown["pruner"], shown["compression"])) == [("SNIP", 1.0)]  # the real run at chance stays
    note = collapse_table_note(table, dense=dense)
    assert len(note.splitlines()) == 1 and re.search(r"\b2 runs\b", note) and "synthetic" in note
    # both unpruned networks at chance: every run at chance on either data is left out
    both = dense.assign(top1=9.6)
    assert set(chance_references(both)) == {("CIFAR-10 / ResNet20", True), ("CIFAR-10 / ResNet20", False)}
    assert collapse_table(table, dense=both).empty


def test_the_findings_say_which_stand_in_cells_table_a2_lists_and_which_only_its_note_counts():
    """The stand-in's collapsed cells beyond those whose masks hold: those at chance with every layer kept, where the
    unpruned network is at chance too, are not rows of Table A2 (its note counts them); the others are rows."""
    from prunelab.workbook.collapses import collapse_table_note
    from prunelab.workbook.findings import _collapse_lines

    cifar = dict(setup="CIFAR-10 / ResNet20", majority_class_top1=11.6, stand_in=True)
    table = pd.DataFrame([_row("SynFlow (1 round)", pruner="synflow", compression=0.5, top1=10.4,
                               collapsed_layers=["7.weight"], **cifar),  # a data-free mask: said on its own
                          _row("SNIP", pruner="snip", compression=0.5, top1=9.6, collapsed_layers=["3.weight"],
                               **cifar),  # a row of Table A2
                          _row("Rand", pruner="rand", compression=1.0, top1=9.6, **cifar),  # only the note counts
                          _row("Mag", pruner="mag", compression=1.0, top1=10.0, **cifar)])
    dense = pd.DataFrame([_row(DENSE_LABEL, compression=0.0, top1=9.6, **cifar)])
    found = collapses(table, dense)
    assert found.stand_in == 4 and len(found.masks_hold) == 1
    assert sorted(c.label for c in found.left_out) == ["Mag", "Rand"]
    rows = collapse_table(table, dense=dense).reset_index()["pruner"].tolist()
    assert sorted(rows) == ["SNIP", "SynFlow (1 round)"] and re.search(r"\b2 runs\b", collapse_table_note(table, dense))
    text = "\n".join(_collapse_lines(found))
    assert re.search(r"\b1 further collapsed cell\b", text) and re.search(r"\b2 other runs\b", text)
    assert collapses(table).left_out == ()  # no unpruned runs: Table A2 lists every cell, and the findings say so
    assert re.search(r"\b3 further collapsed cells\b", "\n".join(_collapse_lines(collapses(table))))
