"""What a shown table says once, in its caption (table_notes): the seed count its accuracy cells share, and a column
of one value in every row, from frames as the notebooks build them."""

import re

import pandas as pd

from prunelab.workbook.ablations import AS_SCORED
from prunelab.workbook.measurement_tables import captioned
from prunelab.workbook.table_notes import say_once
from prunelab.workbook.tables import accuracy_at_compression, by_compression, styled


def _runs(seeds: dict[str, int], setup: str = "MNIST / FC") -> pd.DataFrame:
    """Runs of two pruners at two compressions on one set-up, ``seeds[label]`` seeds each."""
    rows = [dict(setup=setup, data_source="bundled", data="real data", label=label, compression=c,
                 seed=seed, top1=90.0 + seed - c)
            for label, count in seeds.items() for c in (0.5, 1.0) for seed in range(1, count + 1)]
    return pd.DataFrame(rows)


def _cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>([^<]*)</td>", html)


def _caption(html: str) -> str:
    return re.search(r"<caption>(.*?)</caption>", html, re.S).group(1)


def test_cells_that_share_a_seed_count_drop_it_and_the_caption_gives_it_once():
    table = _runs({"SNIP": 3, "GraSP": 3})
    for frame in (by_compression(table, "top1"), accuracy_at_compression(table)):  # Tables B and A
        assert all("(n=3)" in cell for cell in frame.to_numpy().ravel())  # the frame keeps its counts
        html = styled(frame, "top1", "Table B. Test top-1 (%): mean ± sd over seeds").to_html()
        cells = _cells(html)
        assert cells and not any("(n=" in cell for cell in cells), cells
        assert "91.0 ± 1.0" in cells  # SNIP at 1: seeds 1 to 3, 91 to 93
        caption = _caption(html)
        assert caption.count("3 seeds") == 1 and "unless" not in caption, caption


def test_a_cell_of_another_seed_count_keeps_its_own():
    html = styled(by_compression(_runs({"SNIP": 3, "GraSP": 3, "Mag": 2}), "top1"), "top1", "Table B.").to_html()
    cells = _cells(html)
    assert sum("(n=2)" in cell for cell in cells) == 2  # Mag's two cells, one a compression
    assert not any("(n=3)" in cell for cell in cells)
    assert "3 seeds" in _caption(html) and "its own n" in _caption(html)


def test_a_table_of_mixed_columns_keeps_its_other_cells_as_they_are():
    frame = pd.DataFrame({AS_SCORED: ["90.0 ± 1.0 (n=3)", "80.0 ± 1.0 (n=3)"], "p": ["0.012", "0.340"]},
                         index=["SNIP", "GraSP"])
    html = styled(frame, "top1", "Table M.").to_html()
    assert _cells(html) == ["90.0 ± 1.0", "0.012", "80.0 ± 1.0", "0.340"]


def test_a_column_of_one_value_moves_to_the_caption_and_one_that_varies_stays():
    frame = pd.DataFrame({"time": ["1.0", "2.0", "3.0"], "path": ["PT2E"] * 3,
                          "verdict": ["faster", "slower", "faster"]})
    html = captioned(say_once(frame, ["path", "verdict"]), "Table L.").to_html()
    assert "PT2E" not in _cells(html) and ">path<" not in html  # neither the cells nor the heading
    caption = _caption(html)
    assert caption.count("PT2E") == 1 and caption.count("path") == 1, caption  # the value and its heading, once
    assert caption.index("path") < caption.index("PT2E")  # the heading names the value
    assert _cells(html).count("faster") == 2 and "verdict" not in _caption(html)
    unnamed = captioned(frame, "Table L.").to_html()  # only the columns a table names may move
    assert _cells(unnamed).count("PT2E") == 3


def test_each_column_of_one_value_is_said_once():
    frame = pd.DataFrame({"time": ["1.0", "2.0"], "path": ["PT2E"] * 2, "passes": ["5"] * 2})
    html = captioned(say_once(frame, ["path", "passes"]), "Table L.").to_html()
    assert _cells(html) == ["1.0", "2.0"]
    caption = _caption(html)
    assert all(caption.count(word) == 1 for word in ("path", "PT2E", "passes", "5")), caption


def test_a_table_of_one_row_keeps_its_columns():
    frame = say_once(pd.DataFrame({"time": ["1.0"], "path": ["PT2E"]}), ["path"])
    html = captioned(frame, "Table L.").to_html()
    assert "PT2E" in _cells(html) and _caption(html) == "Table L."


def test_a_column_empty_in_every_row_stays_in_the_table():
    frame = say_once(pd.DataFrame({"time": ["1.0", "2.0"], "path": [None, None]}), ["path"])
    shown = captioned(frame, "Table L.")
    assert "path" in shown.data.columns and _caption(shown.to_html()) == "Table L."


def test_a_table_of_one_seed_claims_no_sd():
    html = styled(by_compression(_runs({"SNIP": 1, "GraSP": 1}), "top1"), "top1", "Table A2.").to_html()
    assert not any("(n=" in cell for cell in _cells(html))
    note = _caption(html).removeprefix("Table A2.")
    assert "sd" not in note.replace("no sd", "") and "one seed" in note, note  # no mean ± sd over 1 seed


def test_a_set_up_whose_cells_share_another_seed_count_says_it_once():
    """CIFAR-10 at one seed beside MNIST at three: the block's n is said once, by its set-up, not in each cell."""
    both = pd.concat([_runs({"SNIP": 3, "GraSP": 3}), _runs({"SNIP": 1, "GraSP": 1}, "CIFAR-10 / ResNet20")])
    for frame in (by_compression(both, "top1"), accuracy_at_compression(both)):  # Tables B and A
        html = styled(frame, "top1", "Table B.").to_html()
        assert not any("(n=" in cell for cell in _cells(html)), _cells(html)
        caption = _caption(html)
        assert caption.count("CIFAR-10 / ResNet20") == 1 and caption.count("3 seeds") == 1, caption
        assert "unless" not in caption and "MNIST" not in caption
    few = pd.concat([_runs({"SNIP": 1, "GraSP": 1}), _runs({"SNIP": 3}, "CIFAR-10 / ResNet20")])  # usually one seed
    caption = _caption(styled(by_compression(few, "top1"), "top1", "Table B.").to_html())
    assert caption.count("sd over 3 seeds") == 1 and "one seed" in caption, caption  # neither contradicts the other
    mixed = pd.concat([both, _runs({"Mag": 2}, "CIFAR-10 / ResNet20")])  # a block of two counts keeps its cells'
    html = styled(by_compression(mixed, "top1"), "top1", "Table B.").to_html()
    assert sum("(n=1)" in cell for cell in _cells(html)) == 4 and sum("(n=2)" in cell for cell in _cells(html)) == 2
    assert "CIFAR-10" not in _caption(html) and "its own n" in _caption(html)
