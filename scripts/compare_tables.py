"""Compare the tables of two rendered workbook folders, cell by cell, leaving out measured times.

    .venv/bin/python scripts/compare_tables.py BEFORE_DIR AFTER_DIR

A refactoring must not move a number a reader sees: this reads every captioned table of the executed notebooks
(``NN_name.ipynb``) in both folders, keys each by its letter ("Table B") and each cell by its row and column
headings, and prints the cells whose numbers differ. Columns whose headings name a measurement of the moment
(:data:`TIMING`: times, kernels' speeds, passes, spreads, shares of a step's time, peak memory) are skipped. A row
of the first folder is found in the second by its heading, or by the end of a longer heading where a table gained
a set-up level. Rows, columns or tables in one folder only are counted apart. Exit code 1 when a shared cell's
numbers differ, else 0. Tables are paired by letter, so compare renders of one numbering: before 672cd9b the
tracing notebook's tables were G-I and the compression notebook's E-F.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

#: column headings of measurements of the moment, left out
TIMING = re.compile(r"\btime\b|inference|\(s\)|\bms\b|µs|\bstep\b|speed|passes|spread|share|kernels|memory",
                    re.IGNORECASE)
NUMBER = re.compile(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?")


def tables(folder: Path) -> dict[str, dict[tuple[str, str], str]]:
    """Table letter -> {(row heading, column heading): cell text} for every captioned table in ``folder``."""
    found = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            for output in cell.get("outputs", []):
                html = "".join(output.get("data", {}).get("text/html", ""))
                for table in BeautifulSoup(html, "html.parser").find_all("table"):
                    caption = table.find("caption")
                    letter = re.match(r"\s*(Table [A-Z])\b", caption.get_text()) if caption else None
                    if letter:
                        found[letter.group(1)] = _cells(table)
    return found


def _cells(table) -> dict[tuple[str, str], str]:
    """{(row heading, column heading): text}: header rows expanded over their colspans and joined per column;
    row headings that span several rows (a set-up over its compressions) carried down to each of them."""
    head = table.find("thead")
    columns: list[str] = []
    for row in head.find_all("tr") if head else []:
        spread = [" ".join(th.get_text().split()) for th in row.find_all("th")
                  for _ in range(int(th.get("colspan", 1)))]
        columns = spread if not columns else [f"{a} {b}".strip() for a, b in zip(columns, spread)]
    cells, carried = {}, []  # carried: [heading, rows left] of headings spanning rows
    for row in (table.find("tbody") or table).find_all("tr"):
        own = [" ".join(th.get_text().split()) for th in row.find_all("th")]
        carried = [c for c in carried if c[1] > 0]
        name = " / ".join([c[0] for c in carried] + [h for h in own if h])
        for c in carried:
            c[1] -= 1
        carried += [[" ".join(th.get_text().split()), int(th["rowspan"]) - 1] for th in row.find_all("th")
                    if int(th.get("rowspan", 1)) > 1]
        data = [" ".join(td.get_text().split()) for td in row.find_all("td")]
        names = columns[-len(data):] if data and len(columns) >= len(data) else [str(i) for i in range(len(data))]
        for column, text in zip(names, data):
            cells[(name, column)] = text
    return cells


def _match(key: tuple[str, str], other: dict) -> tuple[str, str] | None:
    """``key`` in ``other``, else the first row there whose heading ends with this row's heading (a table that
    gained a set-up level: "0.5" is "CIFAR-10 / ResNet20 (...) / 0.5"), same column."""
    if key in other:
        return key
    return next((k for k in other if k[1] == key[1] and k[0].endswith(" / " + key[0])), None)


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text.replace("−", "-"))


def compare(before: Path, after: Path) -> int:
    old, new = tables(before), tables(after)
    differing = 0
    for letter in sorted(set(old) | set(new)):
        if letter not in old or letter not in new:
            print(f"{letter}: only {'after' if letter in new else 'before'}")
            continue
        a, b = old[letter], new[letter]
        pairs = {key: _match(key, b) for key in a if not TIMING.search(key[1])}
        shared = {key: match for key, match in pairs.items() if match is not None}
        changed = [key for key, match in shared.items() if numbers(a[key]) != numbers(b[match])]
        differing += len(changed)
        only_after = len(set(b) - set(shared.values()) - {k for k in b if TIMING.search(k[1])})
        only_before = len([key for key, match in pairs.items() if match is None])
        print(f"{letter}: {len(shared)} cells compared, {len(changed)} differ"
              + (f"; {only_after} cells only after, {only_before} only before" if only_after or only_before else ""))
        for key in changed:
            print(f"    {key}: {a[key]!r} -> {b[shared[key]]!r}")
    return 1 if differing else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(compare(Path(sys.argv[1]), Path(sys.argv[2])))
