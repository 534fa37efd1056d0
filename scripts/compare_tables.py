"""Compare the tables of two rendered workbook folders, cell by cell, leaving out measured times.

    .venv/bin/python scripts/compare_tables.py BEFORE_DIR AFTER_DIR

A refactoring must not move a number a reader sees: this reads every captioned table of the executed notebooks
(``NN_name.ipynb``) in both folders, keys each by its letter ("Table B") and each cell by its row and column
headings, and prints the cells whose numbers differ. Columns and captions that hold times (seconds, ms, "time",
"inference", "training time", "step") are skipped: they are measurements of the moment. Rows, columns or tables
present in one folder only are listed separately. Exit code 1 when a shared cell differs, else 0.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

TIMING = re.compile(r"\btime\b|inference|\(s\)|\bms\b|\bstep\b|speed|passes|spread", re.IGNORECASE)
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
    head = table.find("thead")
    header_rows = head.find_all("tr") if head else []
    columns: list[str] = []
    for row in header_rows:  # the last header row names the data columns; upper rows span them
        texts = [" ".join(th.get_text().split()) for th in row.find_all("th")]
        columns = texts if not columns else [f"{a} {b}".strip() for a, b in zip(_spread(row), texts)] or texts
    body = table.find("tbody") or table
    cells, last_row = {}, ""
    for row in body.find_all("tr"):
        headings = [" ".join(th.get_text().split()) for th in row.find_all("th")]
        data = [" ".join(td.get_text().split()) for td in row.find_all("td")]
        name = " / ".join(h for h in headings if h) or last_row
        last_row = name
        names = columns[-len(data):] if columns and len(columns) >= len(data) else [str(i) for i in range(len(data))]
        for column, text in zip(names, data):
            cells[(name, column)] = text
    return cells


def _spread(row) -> list[str]:
    out = []
    for th in row.find_all("th"):
        out += [" ".join(th.get_text().split())] * int(th.get("colspan", 1))
    return out


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
        shared = [key for key in a if key in b and not TIMING.search(key[1])]
        changed = [key for key in shared if numbers(a[key]) != numbers(b[key])]
        differing += len(changed)
        extra = len(set(b) - set(a)), len(set(a) - set(b))
        print(f"{letter}: {len(shared)} cells compared, {len(changed)} differ"
              + (f"; {extra[0]} cells only after, {extra[1]} only before" if any(extra) else ""))
        for key in changed:
            print(f"    {key}: {a[key]!r} -> {b[key]!r}")
    return 1 if differing else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(compare(Path(sys.argv[1]), Path(sys.argv[2])))
