"""The header of a displayed table: the index's names sit in the top-left cells of the column headings' last row,
not in a row of their own (pandas' default, which reads as a stray row), whatever the columns' levels."""

import pandas as pd
from bs4 import BeautifulSoup

from prunelab.workbook.measurement_tables import captioned
from prunelab.workbook.table_headers import table_style
from prunelab.workbook.tables import styled


def _header(style) -> list[list[str]]:
    """The header rows of ``style`` as Jupyter displays it, each a list of its cells' texts, a cell repeated over
    its colspan."""
    head = BeautifulSoup(style._repr_html_(), "html.parser").find("thead")
    return [[" ".join(th.get_text().split()) for th in row.find_all("th") for _ in range(int(th.get("colspan", 1)))]
            for row in head.find_all("tr")]


def _frame(index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({"top-1 (%)": ["91.2", "90.8"], "time (ms)": ["1.20 ± 0.01", "1.10 ± 0.02"]}, index=index)


def test_a_named_index_shares_the_one_header_row_with_the_column_headings():
    frame = _frame(pd.Index(["Mag", "SNIP"], name="label"))
    assert _header(captioned(frame, "Table X. A table")) == [["label", "top-1 (%)", "time (ms)"]]
    assert frame.index.name == "label" and list(frame.columns) == ["top-1 (%)", "time (ms)"]  # the frame as it was


def test_each_level_of_a_multiindex_names_its_own_top_left_cell():
    frame = _frame(pd.MultiIndex.from_tuples([("CIFAR-10", "0.5"), ("CIFAR-10", "0.25")],
                                             names=["setup", "compression"]))
    assert _header(captioned(frame, "Table X.")) == [["setup", "compression", "top-1 (%)", "time (ms)"]]


def test_with_two_levels_of_columns_the_names_go_in_the_lower_row_of_headings():
    frame = _frame(pd.Index(["0.5", "0.25"], name="compression"))
    frame.columns = pd.MultiIndex.from_tuples([("Top-1 (%)", "fp32"), ("Top-1 (%)", "AMP bf16")])
    assert _header(captioned(frame, "Table X.")) == [["", "Top-1 (%)", "Top-1 (%)"],
                                                     ["compression", "fp32", "AMP bf16"]]


def test_an_unnamed_level_leaves_its_cell_blank_and_the_columns_name_is_kept():
    frame = _frame(pd.MultiIndex.from_tuples([("a", "0.5"), ("a", "0.25")], names=[None, "compression"]))
    assert _header(captioned(frame, "Table X.")) == [["", "compression", "top-1 (%)", "time (ms)"]]
    named = _frame(pd.Index(["conv1", "fc"], name="layer")).rename_axis(columns="pruner")
    assert _header(table_style(named)) == [["pruner \\ layer", "top-1 (%)", "time (ms)"]]


def test_an_unnamed_or_hidden_index_keeps_pandas_header():
    frame = _frame(pd.Index(["Mag", "SNIP"]))
    assert _header(captioned(frame, "Table X.")) == [["", "top-1 (%)", "time (ms)"]]
    named = _frame(pd.Index(["Mag", "SNIP"], name="label"))
    assert _header(captioned(named, "Table X.", index=False)) == [["top-1 (%)", "time (ms)"]]


def test_the_metric_tables_put_their_index_names_in_the_header_row_too():
    frame = pd.DataFrame({"Mag": [91.23, 90.0], "SNIP": [90.5, 89.9]},
                         index=pd.MultiIndex.from_tuples([("CIFAR-10 / ResNet20", 0.5), ("CIFAR-10 / ResNet20", 0.25)],
                                                         names=["Data / Arch", "Compression"]))
    style = styled(frame, "top1", "Table B. Top-1")
    assert _header(style) == [["Data / Arch", "Compression", "Mag", "SNIP"]]
    assert "91.2" in style.to_html() and "0.25" in style.to_html()  # the formats still apply


def test_a_tables_plain_text_is_its_caption_and_cells_as_shown_in_columns():
    """What a notebook stores as the table's text/plain output (read where its HTML is not rendered)."""
    frame = pd.DataFrame({"Rand": [90.123, 80.5], "SNIP": [float("nan"), 70.0]},
                         index=pd.Index(["MNIST / FC", "CIFAR"], name="set-up"))
    lines = repr(styled(frame, "top1", "Table A. Top-1.")).splitlines()
    assert lines[0] == "Table A. Top-1."
    cells = [line.split() for line in lines[1:]]
    assert cells[1][-2:] == ["90.1", "–"] and cells[2][-2:] == ["80.5", "70.0"]  # formatted as in the HTML
    assert len({line.index("90.1") for line in lines[2:3]} | {lines[3].index("80.5")}) == 1  # one column
