"""The settings the hand-in PDF reads from each executed notebook's outputs tagged ``settings`` (two-column
Markdown tables: :func:`.tables.settings_markdown`'s and :func:`.tables.hardware_markdown`'s): the rows its cover
shows per task, and the appendix of the rest. The filtering is the PDF's alone: a notebook, read on its own,
prints its settings whole."""

from __future__ import annotations

from .index import output_html

#: the rows the cover's table gives per task, which the appendix leaves out
COVER_ROWS = ("data source", "data used", "training")
#: a settings table's row naming the machine, and the first header of a hardware table
HARDWARE = "hardware"


def settings_rows(notebook: dict) -> dict[str, str]:
    """The two-column rows of a notebook's ``settings`` Markdown tables ("hardware" -> "Intel ..."), first wins."""
    rows: dict[str, str] = {}
    for output in _settings_outputs(notebook):
        for key, value in (_table(output) or ("", []))[1]:
            rows.setdefault(key, value)
    return rows


def settings_appendix(notebooks: list[dict], rows: list[dict[str, str]], profile: str
                      ) -> tuple[list[str], list[list[str]]]:
    """The settings appendix as HTML pieces: (its opening, each notebook's settings), given each notebook's
    :func:`settings_rows` as ``rows``. Each notebook's are its settings outputs less what the cover gives: the rows
    it gives per task (:data:`COVER_ROWS`), the ``profile`` and, where every notebook that names a machine names the
    same one, that machine. A hardware table that every
    notebook printing one prints alike moves to the opening, printed once. A table left with no rows is left out."""
    machines = {row[HARDWARE] for row in rows if row.get(HARDWARE)}
    shown = {("profile", profile)} | ({(HARDWARE, *machines)} if len(machines) == 1 else set())
    outputs = [_settings_outputs(notebook) for notebook in notebooks]
    hardware = {_markdown(o) for os in outputs for o in os if (_table(o) or ("",))[0] == HARDWARE}
    shared = hardware.pop() if len(hardware) == 1 else None
    gives = "the profile" + (", the hardware" if len(machines) == 1 else "")
    opening = [f"<p>The cover gives {gives} and each task's data, examples and training; each task's other "
               "settings follow.</p>"]
    if shared:
        opening += ["<p>The machine's details, alike in every task that prints them:</p>",
                    output_html({"data": {"text/markdown": shared}})]
    pieces = [[piece for o in os if not (shared and _markdown(o) == shared)
               and (piece := output_html(_less(o, shown))) is not None] for os in outputs]
    return opening, pieces


def _settings_outputs(notebook: dict) -> list[dict]:
    return [output for cell in notebook["cells"] if "settings" in cell.get("metadata", {}).get("tags", [])
            for output in cell.get("outputs", [])]


def _markdown(output: dict) -> str:
    return "".join(output.get("data", {}).get("text/markdown", "")).strip()


def _table(output: dict) -> tuple[str, list[tuple[str, str]]] | None:
    """A two-column Markdown table's first header and (key, value) rows, code marks stripped; None for the rest."""
    lines = _markdown(output).splitlines()
    if not lines or not lines[0].startswith("|"):
        return None
    cells = [_cells(line) for line in lines]
    return cells[0][0], [(row[0], row[1]) for row in cells[2:] if len(row) == 2]


def _cells(line: str) -> list[str]:
    return [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]


def _less(output: dict, shown: set[tuple[str, str]]) -> dict:
    """``output`` with the rows of its Markdown table the cover shows left out: those of :data:`COVER_ROWS` and
    the (key, value) pairs ``shown``; with no data where none is left (a table of no rows prints nothing)."""
    if _table(output) is None:
        return output
    lines = _markdown(output).splitlines()
    kept = [line for line in lines[2:] if (row := _cells(line))[0] not in COVER_ROWS and tuple(row) not in shown]
    if len(kept) == len(lines) - 2:
        return output
    return {**output, "data": {"text/markdown": "\n".join(lines[:2] + kept)} if kept else {}}
