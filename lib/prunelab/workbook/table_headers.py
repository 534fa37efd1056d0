"""How a displayed table prints its header: :func:`table_style` is ``frame.style`` with the index's names in the
header row, for :func:`.tables.styled`, :func:`.measurement_tables.captioned` and the notebooks' own tables."""

from __future__ import annotations

import pandas as pd
from pandas.io.formats.style import Styler


def table_style(frame: pd.DataFrame) -> Styler:
    """``frame.style``, but rendering the index's names in the top-left cells of the last row of column headings:
    pandas gives them a header row of their own, blank but for them, which reads as a stray row of the table.
    Where the columns' own name sits in such a cell, it shows both: "columns' name \\ index's name". Only the
    rendering changes, not the frame."""
    return _NamesInHeader(frame)


class _NamesInHeader(Styler):
    """A Styler whose table of header cells, before its HTML template, has the index's names row merged into the
    row above (a subclass, as ``to_html`` renders a copy of the Styler of the same type)."""

    def __repr__(self) -> str:
        """The caption and the cells as shown, in aligned columns: a notebook's plain-text output of the table
        (what a terminal, a diff or a markdown export shows where the HTML is not rendered)."""
        separator = "\x1f"  # a character no cell holds
        text = self.to_string(delimiter=separator, sparse_index=False, sparse_columns=False)
        rows = [line.split(separator) for line in text.splitlines()]
        widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows), default=0))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        return "\n".join([self.caption, *lines] if self.caption else lines)

    def _translate(self, *args, **kwargs):
        cells = super()._translate(*args, **kwargs)
        named = [name is not None for name, hidden in zip(self.data.index.names, self.hide_index_) if not hidden]
        cells["head"] = _header_with_names(cells["head"], named)
        return cells


def _header_with_names(head: list[list[dict]], named: list[bool]) -> list[list[dict]]:
    """The header rows with the last, where it holds only the index's names, merged into the one above; ``named``:
    whether each shown index level has a name."""
    if len(head) < 2 or not any(named):
        return head
    names, last = head[-1], head[-2]
    width = next((i for i, cell in enumerate(names) if not cell["class"].startswith("index_name")), len(names))
    if not all(cell["class"].startswith("blank") for cell in names[width:]):
        return head  # the last row is column headings: pandas shows no names row (an unnamed or hidden index)
    shown = [cell for cell in names[:width] if cell["is_visible"]]
    if len(shown) != len(named):
        return head
    corner = []
    for has_name, name, cell in zip(named, shown, last):
        if not has_name:
            corner.append(cell)  # an unnamed level leaves its cell as it was
        elif cell["class"].startswith("index_name"):  # the columns' name is there already
            text = f"{cell['display_value']} \\ {name['display_value']}"
            corner.append({**cell, "value": text, "display_value": text})
        else:
            corner.append({**cell, "class": name["class"], "value": name["value"],
                           "display_value": name["display_value"]})
    return [*head[:-2], corner + last[len(corner):]]
