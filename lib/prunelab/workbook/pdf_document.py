"""The hand-in PDF's content as one HTML document: the cover, the contents (page numbers filled in from a first
print), the key results, each executed notebook's text, tables and figures under their numbers and captions (no
code, progress lines or tracebacks; a key result, printed once at the front, is a line pointing there), and the
terms (:mod:`.glossary`) and the settings as appendices. :mod:`.pdf` prints it."""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..core.choices import REAL_SUBSET_WHY, STAND_IN_CHECKS
from ..errors import UserError
from .glossary import glossary_html
from .index import KEY_RESULT, notebook_failed, notebook_title, output_html, tagged_outputs
from .pdf_settings import settings_appendix, settings_rows
from .pdf_style import STYLE

PAPER_WIDTH_MM = {"a4": 210.0, "letter": 215.9}
MARGIN_MM = {"top": 15, "bottom": 18, "left": 15, "right": 15}  # the bottom one holds the page number


@dataclass(frozen=True)
class Task:
    """An executed notebook as the PDF shows it: file stem ("01_tuning"), first heading, nbformat JSON."""

    name: str
    title: str
    notebook: dict

    @property
    def anchor(self) -> str:
        return f"task-{self.name}"

    @property
    def key_anchor(self) -> str:
        """The id of its key result under Key results, where its section points."""
        return f"key-{self.name}"


@dataclass(frozen=True)
class Heading:
    """A contents entry: the id its heading carries, its text, and 1 (a part or task), 2 (a section) or 3 (a
    question under a section)."""

    anchor: str
    text: str
    level: int


@dataclass(frozen=True)
class Document:
    """The printable parts: the cover and body HTML, and the headings the contents list."""

    title: str
    cover: str
    body: str
    headings: list[Heading]


# ------------------------------------------------------------------------------------------ reading


def read_tasks(folder: Path) -> list[Task]:
    """The executed notebooks ``NN_*.ipynb`` of ``folder`` in file order; UserError when there are none."""
    if not folder.is_dir():
        raise UserError(f"no rendered folder {folder}; run ./run_all.sh first, or name the folder it wrote")
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise UserError(f"{folder} holds no executed notebook (NN_name.ipynb); run ./run_all.sh first")
    tasks = []
    for path in paths:
        try:
            notebook = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{path.name} in {folder} is not a readable notebook ({error})") from None
        tasks.append(Task(path.stem, notebook_title(notebook, path.stem), notebook))
    return tasks


def profile_of(folder: Path, tasks: list[Task]) -> str:
    """The profile the notebooks ran with (papermill's parameters), else the folder's name."""
    profiles = {p for t in tasks if (p := _parameters(t).get("profile"))}
    if len(profiles) > 1:
        raise UserError(f"{folder} mixes notebooks of profiles {', '.join(sorted(profiles))}; render one profile")
    return profiles.pop() if profiles else folder.resolve().name


def _parameters(task: Task) -> dict:
    return (task.notebook.get("metadata", {}).get("papermill") or {}).get("parameters") or {}


def commit() -> str:
    """The short commit of the checkout this package runs from, or "unknown" outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def executed_on(tasks: list[Task]) -> str:
    """The day the last notebook finished (papermill's end time), else today."""
    ends = [end for t in tasks if (end := (t.notebook.get("metadata", {}).get("papermill") or {}).get("end_time"))]
    return max(ends)[:10] if ends else date.today().isoformat()


# ------------------------------------------------------------------------------------------ the HTML


def build_document(tasks: list[Task], profile: str) -> Document:
    """Cover, key results, the tasks and the appendices (terms, settings), with the headings the contents list."""
    headings: list[Heading] = []
    body = [_key_results(tasks, headings)]
    rows = {t.name: settings_rows(t.notebook) for t in tasks}
    stand_in, subsets = _sources(rows.values(), "stand-in"), _sources(rows.values(), "subset")
    for task in tasks:  # what the cover explains, each task's banner need not say again
        section = _task_section(task, headings)
        section = section.replace(_STAND_IN_WHY, _STAND_IN_SEE_COVER) if stand_in else section
        body.append(section.replace(_SUBSET_WHY, _SUBSET_SEE_COVER) if subsets else section)
    headings.append(Heading("terms", "Appendix: terms", 1))
    body.append('<section class="part" id="terms"><h1>Appendix: terms</h1>' + glossary_html() + "</section>")
    headings.append(Heading("appendix", "Appendix: settings", 1))
    opening, settings = settings_appendix([t.notebook for t in tasks], list(rows.values()), profile)
    appendix = [f"<h2>{html.escape(t.title)}</h2>" + "".join(map(_block, pieces)) for t, pieces in zip(tasks, settings)]
    body.append('<section class="part" id="appendix"><h1>Appendix: settings</h1>' + "".join(map(_block, opening))
                + "".join(appendix) + "</section>")
    title = f"prunelab workbook, profile {profile}"
    return Document(title, _cover(tasks, profile, rows, stand_in, subsets), "\n".join(body), headings)


def _cover(tasks: list[Task], profile: str, rows: dict[str, dict[str, str]], stand_in: list[str],
           subsets: list[str]) -> str:
    """The cover: the profile, date, commit and hardware, each task's data and training (its settings ``rows``),
    the synthetic ``stand_in`` sources flagged and the real ``subsets`` explained."""
    machines = list(dict.fromkeys(r["hardware"] for r in rows.values() if r.get("hardware")))
    devices = list(dict.fromkeys(r["device"] for r in rows.values() if r.get("device")))
    hardware = "; ".join(machines) or "not recorded"
    if devices:
        hardware += f" (device: {', '.join(devices)})"
    units = next((r["CPU vector units"] for r in rows.values() if r.get("CPU vector units")), None)
    if units:
        hardware += f"; CPU vector units: {units}"
    facts = [("Profile", profile), ("Executed", executed_on(tasks)), ("Commit", commit()), ("Hardware", hardware)]
    data = "".join(  # with each task's training, which a profile other than full shortens
        f"<tr><td>{html.escape(t.title)}</td><td>{html.escape(rows[t.name].get('data source', 'not recorded'))}</td>"
        f"<td>{html.escape(rows[t.name].get('data used', ''))}</td>"
        f"<td>{html.escape(rows[t.name].get('training', ''))}</td></tr>" for t in tasks)
    banners = ("<div class='banner'><div style='border:4px solid #c00;background:#fee;padding:8px 12px;color:#600'>"
               f"<b>⚠ SYNTHETIC STAND-IN DATA, NOT REAL RESULTS</b>: {html.escape(', '.join(stand_in))}. Runs on it "
               f"are pipeline checks: {html.escape(STAND_IN_CHECKS)} Each task's section says which of its runs "
               "they are.</div></div>") if stand_in else ""
    banners += ("<div class='banner'><div style='border:2px solid #36c;background:#eef3ff;padding:8px 12px;"
                f"color:#123'><b>Real images, a subset</b> ({html.escape('; '.join(subsets))}). "
                f"{html.escape(REAL_SUBSET_WHY)} Each task's section names its runs on a subset.</div></div>"
                ) if subsets else ""
    return ('<section class="cover"><h1>prunelab: pruning at initialization</h1>'
            f"<p class='subtitle'>The workbook, profile <b>{html.escape(profile)}</b></p><table class='facts'>"
            + "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in facts) + "</table>"
            "<h2>Data and training each task used</h2><table class='facts'><tr><th>Task</th><th>Data</th>"
            "<th>Examples</th><th>Training</th></tr>"
            f"{data}</table>{banners}</section>")


def _sources(rows: Iterable[dict[str, str]], word: str) -> list[str]:
    """The data sources the tasks' settings ``rows`` name that hold ``word``: "stand-in" for the synthetic ones
    ("synthetic stand-in for CIFAR-10"), "subset" for the bundled real ones."""
    return sorted({part for row in rows for part in row.get("data source", "").split("; ") if word in part})


def _key_results(tasks: list[Task], headings: list[Heading]) -> str:
    headings.append(Heading("key-results", "Key results", 1))
    parts = ['<section class="part" id="key-results"><h1>Key results</h1>'
             '<p class="key-pointer"><a href="#terms">The terms are explained in an appendix'
             f'{_PAGE_OF.format(anchor="terms")}.</a></p>']
    for task in tasks:
        results = tagged_outputs(task.notebook, (KEY_RESULT,)) or ["<p>(no key result: see the task)</p>"]
        parts.append(f'<h3 id="{task.key_anchor}"><a href="#{task.anchor}">{html.escape(task.title)}</a></h3>'
                     + "".join(map(_block, results)))
    return "".join(parts) + "</section>"


def _task_section(task: Task, headings: list[Heading]) -> str:
    """A task's markdown and display outputs in notebook order; a figure with the paragraph before it as its
    caption, a table with the heading and text before it (:func:`_leads`); the settings left to the appendix."""
    from nbconvert.filters.markdown import markdown2html

    headings.append(Heading(task.anchor, task.title, 1))
    parts = [f'<section class="task" id="{task.anchor}">']
    cells = task.notebook["cells"]
    caption = opening = ""
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            following = _section_pieces(cells[i + 1], task) if i + 1 < len(cells) else []
            text, caption, opening = _leads(_with_anchors(markdown2html("".join(cell["source"])), task, headings),
                                            following)
            parts.append(text)
            continue
        settings = "settings" in cell.get("metadata", {}).get("tags", [])
        parts.append(_outputs([] if settings else _section_pieces(cell, task), caption, opening))
        caption = opening = ""
    if notebook_failed(task.notebook) and not any(o.get("output_type") == "error" for c in cells
                                                  for o in c.get("outputs", [])):
        parts.append(_FAILED.format(reason="this task did not finish running"))
    return "".join(parts) + "</section>"


def _leads(text: str, following: list[str]) -> tuple[str, str, str]:
    """A markdown cell's HTML as (what prints at once, a caption, an opening) by what the next cell shows: its
    last paragraph becomes the caption of a figure there; the whole cell, where it holds a heading, the opening
    of a table that comes first there (printed as one block: no heading ends a page alone)."""
    if any(map(_is_figure, following)):
        return (*_split_last_paragraph(text), "")
    if _HEADING.search(text) and following and "<table" in following[0]:
        return "", "", text
    return text, "", ""


def _outputs(pieces: list[str], caption: str, opening: str) -> str:
    """A code cell's display outputs, the first figure under ``caption`` and the first table under ``opening``
    (:func:`_leads`); either printed as it is where nothing takes it."""
    parts = []
    for piece in pieces:
        if _is_figure(piece):
            parts.append(f"<figure>{caption and f'<figcaption>{caption}</figcaption>'}{piece}</figure>")
            caption = ""
        elif opening:
            parts.append(f'<div class="opening">{opening}{_block(piece)}</div>')
            opening = ""
        else:
            parts.append(_block(piece))
    return "".join(parts) + opening + (f"<p>{caption}</p>" if caption else "")


def _section_pieces(cell: dict, task: Task) -> list[str]:
    """A cell's display pieces as its task's section prints them (:func:`_display_pieces`), but for a cell
    tagged ``key-result``: what Key results printed of it (its outputs with HTML) is a line pointing there,
    with the page :func:`page_html` fills in; what they left out, an error, stays."""
    if KEY_RESULT not in cell.get("metadata", {}).get("tags", []):
        return _display_pieces(cell)
    outputs = cell.get("outputs", [])
    rest = [output for output in outputs if output_html(output) is None]
    pointer = (f'<p class="key-pointer"><a href="#{task.key_anchor}">Key result: see Key results'
               f'{_PAGE_OF.format(anchor=task.key_anchor)}.</a></p>')
    return ([pointer] if len(rest) < len(outputs) else []) + _display_pieces({**cell, "outputs": rest})


def _display_pieces(cell: dict) -> list[str]:
    """A cell's display outputs as HTML (see ``output_html``; a bare PNG as an image with its text as
    alternative), an error as one line naming it; streams, tracebacks and plain text left out."""
    pieces = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            pieces.append(_FAILED.format(reason=f"this cell failed ({html.escape(output.get('ename', 'an error'))})"))
            continue
        piece = output_html(output)
        data = output.get("data", {})
        if piece is None and "image/png" in data:
            alt = html.escape("".join(data.get("text/plain", "")), quote=True)
            piece = f'<img alt="{alt}" src="data:image/png;base64,{"".join(data["image/png"]).strip()}">'
        if piece is not None:
            pieces.append(_ANCHOR_LINK.sub("", piece))
    return pieces


def _is_figure(piece: str) -> bool:
    return piece.lstrip().startswith("<img")


def _block(piece: str) -> str:
    """A table kept whole on one page where it fits (:data:`FIT_TABLES` lets a longer one break), its caption a
    paragraph before it (Chromium keeps a paragraph with the rows after it, never a ``<caption>``: a table that
    broke left its caption alone at a page's foot), its cells wrapping only where a reader would
    (:func:`_unbroken`); anything else as it is."""
    if "<table" not in piece:
        return piece
    caption = _CAPTION.search(piece)
    if caption:
        piece = f'<p class="caption">{caption[1]}</p>' + piece[:caption.start()] + piece[caption.end():]
    return f'<div class="table">{_CELL.sub(lambda m: m[1] + _unbroken(m[2]) + m[3], piece)}</div>'


_CAPTION = re.compile(r"<caption[^>]*>(.*?)</caption>", re.S)


def _unbroken(cell: str) -> str:
    """The text between a table cell's tags with a hyphenated word ("top-1": a narrow column broke it after the
    hyphen) and a value with its spread and any mark after it ("91.5 ± 0.3", "0.612 ± 0.008", "4.1 ± –",
    "4.47 ± 0.17 †": a narrow column put the "±" and the spread, or the mark, on a line of their own), or a spread
    on a line of its own below its value ("4.47<br>± 0.17 †", Tables C and C2), each in a span that does not wrap
    (:func:`_nowrap`); a cell of a marked value whose value is in tags ("<b>4.47 ± 0.17</b> †") in one span
    whole."""
    text = re.sub(r"<[^>]*>", "", cell).strip()
    if "<" in cell and _MARKED.fullmatch(text) and len(text) <= _NOWRAP_MOST:
        return f'<span class="nowrap">{cell}</span>'
    return "".join(part if part.startswith("<") else _KEPT_WHOLE.sub(_nowrap, part)
                   for part in re.split(r"(<[^>]*>)", cell))


def _nowrap(match: re.Match) -> str:
    """The match in a span that does not wrap, unless it is longer than a narrow column can take whole."""
    return f'<span class="nowrap">{match[0]}</span>' if len(match[0]) <= _NOWRAP_MOST else match[0]


_FAILED = "<p class='failed'>The task stopped here: {reason}.</p>"
# a task's stand-in banner (tables.stand_in_banner) names its set-ups and runs, then says what such runs are
# good for: that, the same in every task, the PDF prints once, on the cover
_STAND_IN_WHY = f": {STAND_IN_CHECKS}"
_STAND_IN_SEE_COVER = ", as the cover says."
# a task's real-subset box names its set-ups and sizes, then says what the subset is: that the cover says once
_SUBSET_WHY = f". {REAL_SUBSET_WHY}"
_SUBSET_SEE_COVER = "; the cover says what the subset is."
_PAGE_OF = '<span class="page-of" data-anchor="{anchor}"></span>'  # ", page N" once a print has placed it
_PAGE_OF_PATTERN = re.compile(r'<span class="page-of" data-anchor="([^"]*)"></span>')
_CELL = re.compile(r"(<t[hd]\b[^>]*>)(.*?)(</t[hd]>)", re.S)
_NOWRAP_MOST = 24  # characters: a longer piece is left to wrap, a narrow column cannot take it whole
_SPREAD = r"(?:[-+]?\d[\d.,]* )?± (?:\d[\d.,]*|–)"  # a value and its spread, or a spread on its own line
_MARK = r"(?: [†‡*])?"  # a mark after a value (Table C's † of a dense time taken as noise) stays with it
_KEPT_WHOLE = re.compile(rf"(\w+(?:-\w+)+|{_SPREAD}{_MARK})")
_MARKED = re.compile(rf"{_SPREAD} [†‡*]")
_ANCHOR_LINK = re.compile(r'<a class="anchor-link" href="[^"]*">[^<]*</a>')  # nbconvert's pilcrow after headings
_HEADING = re.compile(r'<h([1-6])(?: id="[^"]*")?>(.*?)</h\1>', re.S)
_LAST_PARAGRAPH = re.compile(r"(.*)<p>(.*?)</p>\s*$", re.S)


def _with_anchors(text: str, task: Task, headings: list[Heading]) -> str:
    """Rendered markdown with nbconvert's heading ids and pilcrows replaced: each ``h2`` and ``h3`` gets an id
    unique in the document and a contents entry, so a reader finds a question asked under a section ("Did any run
    collapse?") from the contents too; the others none (the task's section carries its own)."""

    def anchor(match: re.Match) -> str:
        level, inner = match[1], _ANCHOR_LINK.sub("", match[2])
        if level not in ("2", "3"):
            return f"<h{level}>{inner}</h{level}>"
        text = html.unescape(re.sub(r"<[^>]+>", "", inner)).strip()
        heading = Heading(f"{task.anchor}-{len(headings)}", text, int(level))
        headings.append(heading)
        return f'<h{level} id="{heading.anchor}">{inner}</h{level}>'

    return _HEADING.sub(anchor, text)


def _split_last_paragraph(text: str) -> tuple[str, str]:
    """(the HTML before its last paragraph, that paragraph's content), or (text, "") when it ends otherwise."""
    match = _LAST_PARAGRAPH.fullmatch(text)
    return (match[1], match[2]) if match else (text, "")


def contents_html(headings: list[Heading], pages: dict[str, int]) -> str:
    """The contents: a line per heading, linked to it, with its page (blank before the first print)."""
    lines = "".join(
        f'<li class="level{h.level}"><a href="#{h.anchor}">{html.escape(h.text)}</a>'
        f'<span class="page">{pages.get(h.anchor, "")}</span></li>' for h in headings)
    return f'<nav class="contents"><h1>Contents</h1><ul>{lines}</ul></nav>'


def page_anchors(document: Document) -> list[str]:
    """The ids whose pages the document prints: the contents' headings and those a pointer names."""
    return [h.anchor for h in document.headings] + _PAGE_OF_PATTERN.findall(document.body)


def page_html(document: Document, pages: dict[str, int]) -> str:
    """The whole document, the contents and the pointers with the ``pages`` a print placed their ids on."""

    def page_of(match: re.Match) -> str:
        return f", page {pages[match[1]]}" if match[1] in pages else ""

    body = _PAGE_OF_PATTERN.sub(page_of, document.body)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(document.title)}</title>"
            f"<style>{STYLE}</style></head><body>{document.cover}{contents_html(document.headings, pages)}"
            f"{body}</body></html>")
