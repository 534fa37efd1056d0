"""The hand-in PDF (prunelab.workbook.pdf), read back with pypdf.

The smoke render's PDF (run_all.sh makes it) against its own HTML pages: contents whose page numbers are
where each task begins, every table and figure caption, every figure, nothing a reader must not see. A
hand-made notebook, printed here, covers what the smoke pages lack: a failed cell, a stream, a table wider
than the page, a sixth notebook the module was never told about, a key result printed once, US Letter paper,
and no Chromium at all.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from prunelab.workbook import pdf as handin
from prunelab.workbook.glossary import TERMS

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` binary on PATH: printing the PDF "
                                    "needs Debian's chromium (`apt-get install chromium`)")
PAGES = ["01_tuning", "02_tracing", "03_compression", "04_quantization"]
FIGURE_CAPTION = re.compile(r"Figure (\d+[a-z]?|[A-Z])[.:]")  # Figure 1, 1b, or a lettered one (Figure A)
A4_PT, LETTER_PT = (595, 842), (612, 792)  # in points; Chromium rounds A4 up to whole CSS pixels (595.92 x 842.88)


def compact(text: str) -> str:
    """Text without whitespace: pypdf breaks lines (and spaces) where the printed lines break."""
    return re.sub(r"\s+", "", text)


def spaced(text: str) -> str:
    """A regex of ``text`` that allows any whitespace, or none, between its characters."""
    return r"\s*".join(map(re.escape, compact(text)))


class _PageParts(HTMLParser):
    """A rendered page's ``<h1>`` headings, ``<caption>`` texts, "Figure N." paragraphs and ``<img>`` count."""

    def __init__(self):
        super().__init__()
        self.h1, self.captions, self.figure_captions, self.images = [], [], [], 0
        self._open: list[str] = []  # the tags whose text is being collected, innermost last
        self._text: list[str] = []
        self._hidden = 0  # inside nbconvert's pilcrow link after a heading

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images += 1
        elif tag == "a" and ("class", "anchor-link") in attrs:
            self._hidden += 1
        elif tag in ("h1", "caption", "p") and not self._open:
            self._open.append(tag)
            self._text = []

    def handle_endtag(self, tag):
        if tag == "a" and self._hidden:
            self._hidden -= 1
        elif self._open and tag == self._open[-1]:
            self._open.pop()
            text = " ".join("".join(self._text).split())
            if tag == "h1":
                self.h1.append(text)
            elif tag == "caption":
                self.captions.append(text)
            elif FIGURE_CAPTION.match(text):
                self.figure_captions.append(text)

    def handle_data(self, data):
        if self._open and not self._hidden:
            self._text.append(data)


def page_parts(path: Path) -> _PageParts:
    parser = _PageParts()
    parser.feed(path.read_text())
    return parser


def read_pdf(path: Path):
    from pypdf import PdfReader

    return PdfReader(path)


# ------------------------------------------------------------------------------------------ the smoke render


@pytest.fixture(scope="module")
def smoke_pdf(smoke):
    proc, out, _ = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = out / "prunelab-smoke.pdf"
    assert path.is_file(), f"run_all.sh wrote no PDF; its output ends:\n{proc.stdout[-1500:]}"
    assert str(path) in proc.stdout  # run_all.sh names the PDF it wrote
    reader = read_pdf(path)
    return out, reader, [page.extract_text() for page in reader.pages]


def _contents_pages(texts: list[str], titles: list[str]) -> dict[str, int]:
    """Title -> the page number the contents give it (the contents: the first page that starts so)."""
    contents = next(t for t in texts if t.lstrip().startswith("Contents"))
    pages = {}
    for title in titles:
        match = re.search(spaced(title) + r"\s*(\d+)(?!\d)", contents)
        assert match, f"the contents do not list {title!r} with a page number: {contents[:600]}"
        pages[title] = int(match[1])
    return pages


@needs_chromium
def test_contents_give_each_task_the_page_it_begins_on(smoke_pdf):
    out, reader, texts = smoke_pdf
    titles = [page_parts(out / f"{name}.html").h1[0] for name in PAGES]
    pages = _contents_pages(texts, [*titles, "Appendix: settings"])
    starts = [pages[t] for t in titles] + [pages["Appendix: settings"]]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), f"tasks out of order: {pages}"
    assert starts[-1] <= len(reader.pages)
    for title, first, after in zip(titles, starts, starts[1:]):
        assert after - first >= 1, f"{title} has no page of its own"
        assert compact(texts[first - 1]).startswith(compact(title)), \
            f"page {first} does not begin with {title!r}: {texts[first - 1][:300]!r}"
    assert compact(texts[starts[-1] - 1]).startswith("Appendix:settings")


@needs_chromium
def test_terms_appendix_is_listed_pointed_to_and_whole(smoke_pdf):
    _, _, texts = smoke_pdf
    pages = _contents_pages(texts, ["Key results", "Appendix: terms", "Appendix: settings"])
    first, settings = pages["Appendix: terms"], pages["Appendix: settings"]
    assert compact(texts[first - 1]).startswith("Appendix:terms") and settings > first
    assert re.search(rf"page\s*{first}(?!\d)", texts[pages["Key results"] - 1]), "the key results give no terms page"
    printed = compact("".join(texts[first - 1:settings - 1]))
    missing = [term for term, _ in TERMS if compact(term) not in printed]
    assert not missing, f"terms not printed in the appendix: {missing}"


@needs_chromium
def test_pdf_holds_every_table_title_and_figure_caption(smoke_pdf):
    out, _, texts = smoke_pdf
    text = compact("".join(texts))
    parts = [page_parts(out / f"{name}.html") for name in PAGES]
    captions = [c for p in parts for c in p.captions]
    figures = [c for p in parts for c in p.figure_captions]
    assert len(captions) >= 10 and len(figures) >= 5  # the pages have them: the test sees what it compares
    missing = [c for c in captions + figures if compact(c) not in text]
    assert not missing, f"the PDF lacks: {missing}"


@needs_chromium
def test_pdf_embeds_at_least_every_figure_of_the_pages(smoke_pdf):
    out, reader, _ = smoke_pdf
    figures = sum(page_parts(out / f"{name}.html").images for name in PAGES)
    assert figures >= len(PAGES)
    assert sum(len(page.images) for page in reader.pages) >= figures


@needs_chromium
def test_pdf_shows_no_path_of_this_machine_code_stream_or_traceback(smoke_pdf):
    out, _, texts = smoke_pdf
    folders = ["/work", "/tmp", "/root", "/home", str(Path.home()), str(REPO)]
    for number, text in enumerate(texts, 1):
        found = [f for f in folders if f in text]
        assert not found, f"page {number} shows {found}: {text[:300]!r}"
        assert "Traceback" not in text and "\x1b[" not in text, f"page {number} shows an error's traceback"
    cells = [c for name in PAGES for c in nbformat.read(out / f"{name}.ipynb", as_version=4).cells]
    code = [line for c in cells if c.cell_type == "code" for line in c.source.splitlines() if len(line) > 15]
    streams = [line for c in cells for o in c.get("outputs", []) if o.output_type == "stream"
               for line in o.text.splitlines() if line.strip()]
    assert len(code) > 20 and streams  # the notebooks have both: the test sees what it looks for
    text = compact("".join(texts))
    shown = [line for line in code + streams if compact(line) in text]
    assert not shown, f"the PDF shows code or stream lines: {shown[:5]}"


@needs_chromium
def test_cover_names_profile_commit_hardware_and_flags_stand_in_data(smoke_pdf):
    _, _, texts = smoke_pdf
    cover = " ".join(texts[0].split())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert "Profile smoke" in cover
    assert f"Commit {commit.stdout.strip() if commit.returncode == 0 else 'unknown'}" in cover
    assert re.search(r"Executed \d{4}-\d\d-\d\d", cover)
    assert "Hardware not recorded" not in cover and "device: cpu" in cover
    from prunelab.core.hardware import cpu_vector_units

    assert all(unit in cover for unit in cpu_vector_units())  # the CPU's vector units, as every timing needs
    assert "synthetic stand-in for CIFAR-10" in cover and "SYNTHETIC STAND-IN DATA, NOT REAL RESULTS" in cover
    assert re.search(r"after pruning: \d+ epochs?", cover)  # each task's training, shortened by the profile


# ------------------------------------------------------------------------------------------ a hand-made notebook

WIDE_COLUMNS = 30


def _png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


KEY_SENTENCE = "Keyresult of the extra task: the one sentence a reader would quote."


def key_result_cell(text: str = KEY_SENTENCE):
    """A code cell tagged ``key-result``, as the notebooks mark their key result, showing ``text``."""
    cell = new_code_cell("show_key_result()", outputs=[new_output("display_data", data={"text/markdown": text})])
    cell.metadata["tags"] = ["key-result"]
    return cell


def write_notebook(folder: Path) -> None:
    """``05_extra.ipynb``: a figure after its caption, a stream, a table wider than any page, one with a narrow
    column headed "top-1 (%)" holding a mean ± sd (n) and one holding a marked time, a settings output, a key
    result, and a cell that failed with a coloured traceback."""
    figure = f'<img alt="A red rectangle, the test figure" src="data:image/png;base64,{_png()}">'
    wide = ("<table><caption>Table Z. Thirty columns</caption><tr>"
            + "".join(f"<th>column number {i}</th>" for i in range(WIDE_COLUMNS)) + "</tr><tr>"
            + "".join(f"<td>cell{i}value</td>" for i in range(WIDE_COLUMNS)) + "</tr></table>")
    words = " ".join(f"word{i}" for i in range(150))  # a long column beside it leaves a narrow one its least width
    narrow = ("<table><tr><th>top-1 (%)</th><th>time (ms)</th><th>verdict</th></tr><tr><td>91.5 ± 0.3 (n=3)</td>"
              f"<td>4.47 ± 0.17 †</td><td>{words}</td></tr></table>")
    settings = new_code_cell("show_settings()", outputs=[new_output(
        "display_data", data={"text/markdown": "| setting | value |\n| --- | --- |\n| hardware | Test CPU |\n"
                              "| data source | synthetic stand-in for MNIST |\n| pruning | Test pruning rule |"})])
    settings.metadata["tags"] = ["settings"]
    cells = [
        new_markdown_cell("# Task 5 — An extra task\n\nWhat it is for.\n\n## A section\n\n"
                          "Figure 9. A red rectangle."),
        new_code_cell("draw_the_figure()", outputs=[new_output("execute_result", execution_count=1,
                                                                data={"text/html": figure, "text/plain": "fig"})]),
        new_code_cell("train()", outputs=[new_output("stream", name="stderr", text=" 40%|####  | 4/10 [00:01<00:02]\n"),
                                          new_output("display_data", data={"text/html": wide}),
                                          new_output("display_data", data={"text/html": narrow})]),
        settings,
        key_result_cell(),
        new_code_cell("fail()", outputs=[new_output("error", ename="ValueError", evalue="bad value",
                                                    traceback=["\x1b[31mTraceback (most recent call last)\x1b[0m"])]),
    ]
    notebook = new_notebook(cells=cells, metadata={"papermill": {"parameters": {"profile": "extra"},
                                                                 "end_time": "2025-01-02T03:04:05"}})
    nbformat.write(notebook, folder / "05_extra.ipynb")


@pytest.fixture(scope="module")
def extra(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rendered")
    write_notebook(folder)
    return folder


def paper_is(page, size: tuple[int, int]) -> bool:
    """Whether ``page`` is ``size`` (width, height in points) to within a point."""
    return all(abs(float(have) - want) < 1 for have, want in zip((page.mediabox.width, page.mediabox.height), size))


def _text_positions(page) -> list[tuple[str, float]]:
    """(text, x in points) of every piece of text drawn on ``page``."""
    drawn = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            drawn.append((text.strip(), tm[4] * cm[0] + tm[5] * cm[2] + cm[4]))

    page.extract_text(visitor_text=visit)
    return drawn


@needs_chromium
def test_a_notebook_the_module_never_heard_of_is_printed_as_a_task(extra):
    path = handin.write_pdf(extra)
    assert path == extra / "prunelab-extra.pdf"
    reader = read_pdf(path)
    texts = [page.extract_text() for page in reader.pages]
    assert all(paper_is(page, A4_PT) for page in reader.pages)
    first = _contents_pages(texts, ["Task 5 — An extra task"])["Task 5 — An extra task"]
    task = texts[first - 1]
    assert compact(task).startswith(compact("Task 5 — An extra task"))
    assert "Figure 9. A red rectangle." in task and len(reader.pages[first - 1].images) == 1  # caption with figure
    assert "ValueError" in task  # the failed cell, by its error
    whole = "".join(texts)
    assert "Traceback" not in whole and "40%" not in whole and "draw_the_figure" not in whole
    assert "Test pruning rule" not in task and "Test pruning rule" in texts[-2] + texts[-1]  # settings: appendix
    assert "Profile extra" in " ".join(texts[0].split()) and "Test CPU" in texts[0]  # what the cover gives:
    assert "Test CPU" not in task + texts[-1]  # the machine there only


def _links(reader, number: int) -> list[tuple[int, str]]:
    """(the page it leads to, the text drawn inside it) of every link on page ``number`` (from 1)."""
    page, drawn = reader.pages[number - 1], []

    def visit(text, cm, tm, font, size):
        if text.strip():
            drawn.append((text, tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]))

    page.extract_text(visitor_text=visit)
    links = []
    for annotation in page.get("/Annots", []):
        annotation = annotation.get_object()
        if annotation.get("/Subtype") != "/Link" or "/Dest" not in annotation:
            continue
        left, bottom, right, top = map(float, annotation["/Rect"])
        target = reader.get_destination_page_number(reader.named_destinations[annotation["/Dest"]]) + 1
        links.append((target, " ".join(t for t, x, y in drawn if left - 1 <= x <= right and bottom - 1 <= y <= top)))
    return links


@needs_chromium
def test_a_key_result_is_printed_once_under_key_results_and_its_task_points_there(extra):
    reader = read_pdf(handin.write_pdf(extra))
    texts = [page.extract_text() for page in reader.pages]
    pages = _contents_pages(texts, ["Key results", "Task 5 — An extra task"])
    found = [number for number, text in enumerate(texts, 1) for _ in re.finditer(spaced(KEY_SENTENCE), text)]
    assert found == [pages["Key results"]], f"the key result is printed on pages {found}"
    task_links = [link for number in range(pages["Task 5 — An extra task"], len(texts) + 1)
                  for link in _links(reader, number)]
    pointers = [text for target, text in task_links if target == pages["Key results"]]
    assert pointers, f"the task does not link to its key result: {task_links}"
    assert all(re.search(rf"\b{pages['Key results']}\b", text) for text in pointers), \
        f"the task's pointer does not name the page it leads to: {pointers}"


def test_a_task_points_to_its_key_result_and_keeps_what_key_results_leave_out():
    from prunelab.workbook.pdf_document import Task, build_document, page_html

    failed = key_result_cell("Keyresult that failed")
    failed.outputs.append(new_output("error", ename="KeyError", evalue="'top1'", traceback=["Traceback"]))
    failed.outputs.append(new_output("stream", name="stdout", text="streamed line\n"))
    cells = [new_markdown_cell("# Task 7 — Keys\n\n## Findings\n\nWritten by code."), key_result_cell(),
             new_code_cell("more()", outputs=[new_output("display_data", data={"text/markdown": "Afterwards."})]),
             failed]
    task = Task("07_keys", "Task 7 — Keys", new_notebook(cells=cells))
    document = build_document([task], "keys")
    page = page_html(document, {})
    assert page.count(KEY_SENTENCE) == 1 and page.count("Keyresult that failed") == 1
    front, section = page.split(f'id="{task.anchor}"')
    assert KEY_SENTENCE in front and "Keyresult that failed" in front  # each printed under Key results only
    assert "Written by code." in section and "Afterwards." in section and "KeyError" in section  # the rest stays
    targets = re.findall(r'href="#([^"]+)"', section)
    assert any(f'id="{target}"' in front for target in targets), "the task does not link to its key result"
    assert "streamed line" not in page


def test_the_contents_list_a_question_under_a_section_below_it():
    from prunelab.workbook.pdf_document import Task, build_document, contents_html

    cells = [new_markdown_cell("# Task 7 — Keys\n\n## Table A\n\nText.\n\n### Did any run collapse?\n\nMore."),
             new_markdown_cell("#### A small label\n\n## Findings")]
    task = Task("07_keys", "Task 7 — Keys", new_notebook(cells=cells))
    document = build_document([task], "keys")
    listed = [(h.text, h.level) for h in document.headings if h.level > 1 and h.anchor.startswith(task.anchor)]
    assert listed == [("Table A", 2), ("Did any run collapse?", 3), ("Findings", 2)]
    contents = contents_html(document.headings, {})
    for heading in document.headings:  # each entry links to a heading that carries its id
        assert f'href="#{heading.anchor}"' in contents and f'id="{heading.anchor}"' in document.body


def _banner_task(name: str, table, source: str):
    """A task whose notebook shows :func:`stand_in_banner` of the runs ``table`` and settings naming ``source`` as
    its data source (what the cover reads), with that banner."""
    from prunelab.workbook.pdf_document import Task
    from prunelab.workbook.tables import stand_in_banner

    banner = new_code_cell("show_banner()", outputs=[new_output("display_data",
                                                                data={"text/html": stand_in_banner(table)})])
    banner.metadata["tags"] = ["banner"]
    settings = new_code_cell("show_settings()", outputs=[new_output(
        "display_data", data={"text/markdown": f"| setting | value |\n| --- | --- |\n| data source | {source} |"})])
    settings.metadata["tags"] = ["settings"]
    cells = [new_markdown_cell(f"# Task {name}\n\nWhat it is for."), banner, settings]
    return Task(name, f"Task {name}", new_notebook(cells=cells)), stand_in_banner(table)


def _stand_in_task(name: str, runs: int, cover_told: bool = True):
    """A task whose banner flags ``runs`` runs of CIFAR-10 / ResNet20 on stand-in data beside a real MNIST one,
    its settings naming the stand-in as data source (which puts a banner on the cover) where ``cover_told``."""
    table = pd.DataFrame({"setup": ["CIFAR-10 / ResNet20"] * runs + ["MNIST / FC"],
                          "data_source": ["synthetic"] * runs + ["real"]})
    return _banner_task(name, table, "synthetic stand-in for CIFAR-10; real MNIST" if cover_told else "real MNIST")


@pytest.mark.parametrize("cover_told", [True, False])
def test_the_stand_in_explanation_is_printed_once_on_the_cover_where_the_cover_flags_stand_ins(cover_told):
    from prunelab.core.choices import STAND_IN_CHECKS
    from prunelab.workbook.pdf_document import build_document, page_html

    tasks, banners = zip(*(_stand_in_task(name, runs, cover_told) for name, runs in (("08_a", 3), ("09_b", 5))))
    document = build_document(list(tasks), "stand-in")
    page = html.unescape(page_html(document, {}))
    on_cover = html.unescape(document.cover).count(STAND_IN_CHECKS)
    assert (on_cover, page.count(STAND_IN_CHECKS)) == ((1, 1) if cover_told else (0, 2))
    for task, banner in zip(tasks, banners):  # each task still says which of its runs used stand-in data
        section = page.split(f'id="{task.anchor}"')[1].split("</section>")[0]
        before, after = banner.split(f": {STAND_IN_CHECKS}")
        assert before in section and after in section


def _subset_task(name: str, train: int, cover_told: bool = True):
    """A task whose banner says its MNIST / FC runs used ``train`` images of the bundled real subset, its settings
    naming the subset as data source (which puts its explanation on the cover) where ``cover_told``."""
    from prunelab.data.catalog import source_words

    table = pd.DataFrame({"setup": ["MNIST / FC"], "data_source": ["bundled"], "train_examples": [train],
                          "data": [source_words("mnist", "bundled")], "test_examples": [1000]})
    return _banner_task(name, table, source_words("mnist", "bundled" if cover_told else "real"))


@pytest.mark.parametrize("cover_told", [True, False])
def test_the_real_subset_explanation_is_printed_once_where_the_cover_names_the_subset(cover_told):
    from prunelab.core.choices import REAL_SUBSET_WHY
    from prunelab.workbook.pdf_document import build_document, page_html

    tasks, banners = zip(*(_subset_task(name, train, cover_told) for name, train in (("08_a", 4000), ("09_b", 3000))))
    document = build_document(list(tasks), "subset")
    page = html.unescape(page_html(document, {}))
    on_cover = html.unescape(document.cover).count(REAL_SUBSET_WHY)
    assert (on_cover, page.count(REAL_SUBSET_WHY)) == ((1, 1) if cover_told else (0, 2))
    for task, banner in zip(tasks, banners):  # each task still names its runs on the subset and their sizes
        section = page.split(f'id="{task.anchor}"')[1].split("</section>")[0]
        assert banner.split(REAL_SUBSET_WHY)[0].rstrip(". ") in section


def _settings_task(name: str, machine: str, threads: int):
    """A task whose settings print a settings table (profile quick, its own data, training and seeds, the
    ``machine``), a hardware table and a line of text, as the notebooks' settings cells do."""
    from prunelab.workbook.pdf_document import Task

    settings = (f"| setting | value |\n| --- | --- |\n| profile | `quick` |\n| data source | real MNIST for {name} |\n"
                f"| data used | mnist: {name} training |\n| training | {name} epochs |\n| seeds | seeds of {name} |\n"
                f"| hardware | {machine} |")
    hardware = f"| hardware | |\n| --- | --- |\n| device | cpu |\n| CPU | {machine} |\n| CPU threads | {threads} |"
    cell = new_code_cell("show_settings()", outputs=[
        new_output("display_data", data={"text/markdown": text}) for text in (settings, hardware, f"Trace of {name}.")])
    cell.metadata["tags"] = ["settings"]
    cells = [new_markdown_cell(f"# Task {name}\n\nWhat it is for."), cell]
    return Task(name, f"Task {name}", new_notebook(cells=cells))


@pytest.mark.parametrize("same_machine", [True, False])
def test_the_settings_appendix_leaves_out_what_the_cover_gives_and_prints_a_shared_machine_once(same_machine):
    from prunelab.workbook.pdf_document import build_document, page_html

    machines = [("AMD EPYC", 2), ("AMD EPYC", 2) if same_machine else ("Intel Xeon", 16)]
    tasks = [_settings_task(name, *machine) for name, machine in zip(("08_a", "09_b"), machines)]
    document = build_document(tasks, "quick")
    page = html.unescape(page_html(document, {}))
    appendix = page.split('id="appendix"')[1]
    opening, *parts = appendix.split("<h2>")
    keys = re.compile(r"<tr>\s*<td>([^<]*)</td>")
    hardware = ["device", "CPU", "CPU threads"]
    assert keys.findall(opening) == (hardware if same_machine else [])  # the shared machine once, first
    for task, part in zip(tasks, parts):  # each task keeps the rows the cover does not give, and its text
        assert keys.findall(part) == ["seeds"] + ([] if same_machine else ["hardware", *hardware])
        assert f"seeds of {task.name}" in part and f"Trace of {task.name}." in part
        for given in (f"real MNIST for {task.name}", f"mnist: {task.name} training", f"{task.name} epochs"):
            assert given in html.unescape(document.cover) and given not in appendix


@needs_chromium
def test_a_table_wider_than_the_page_is_scaled_to_fit(extra):
    reader = read_pdf(handin.write_pdf(extra))
    for page in reader.pages:
        width = float(page.mediabox.width)
        outside = [(t, round(x)) for t, x in _text_positions(page) if not 0 <= x < width]
        assert not outside, f"text drawn off the page: {outside[:5]}"
    cells = {t for page in reader.pages for t, _ in _text_positions(page)}
    assert {f"cell{i}value" for i in range(WIDE_COLUMNS)} <= cells


@needs_chromium
def test_a_narrow_column_breaks_neither_a_hyphenated_word_nor_a_mean_and_its_spread(extra):
    texts = [page.extract_text() for page in read_pdf(handin.write_pdf(extra)).pages]
    page = next(text for text in texts if "word149" in text)
    assert "top-1" in page and "91.5 ± 0.3" in page and "word0" in page
    assert "4.47 ± 0.17 †" in page  # a value's mark on the value's line


def test_only_a_short_hyphenated_word_or_a_mean_and_spread_is_kept_from_wrapping():
    from prunelab.workbook.pdf_document import _block

    long_word = "blocks-six-shortcut-zero-weight"  # longer than a narrow column takes whole: left to wrap
    html = _block(f'<table><tr><th class="col-a">top-1 (%)</th><td>{long_word}</td><td>9.6 ± 0.3 (n=3)</td>'
                  '<td><b>0.0023 ± 0.0001</b> †</td><td>4.1 ± – s</td></tr></table>')
    assert re.findall(r'<span class="nowrap">([^<]*)</span>', html) == ["top-1", "9.6 ± 0.3", "4.1 ± –"]
    assert '<span class="nowrap"><b>0.0023 ± 0.0001</b> †</span>' in html  # a marked value whole, tags and all
    assert 'class="col-a"' in html and long_word in html  # tags and their attributes as they were


def test_a_mark_after_a_value_is_kept_on_the_values_line():
    from prunelab.workbook.pdf_document import _block

    html = _block("<table><tr><td>4.47 ± 0.17 †</td><td>0.910 ± 0.091</td><td>4.94 ± 0.098 † and more</td>"
                  "<td><b>0.996 ± 0.099</b> †</td><td><b>3.64 ± 0.36</b></td></tr></table>")
    kept = re.findall(r'<span class="nowrap">(.*?)</span>(?=(?:</b>)?</td>| and)', html)
    assert kept == ["4.47 ± 0.17 †", "0.910 ± 0.091", "4.94 ± 0.098 †", "<b>0.996 ± 0.099</b> †",
                    "3.64 ± 0.36"]


def test_a_spread_on_a_line_of_its_own_is_kept_whole_with_its_mark():
    from prunelab.workbook.pdf_document import _block

    html = _block("<table><tr><td><b>0.277<br>± 0.0036</b></td><td>1,240<br>± 16 †</td></tr></table>")
    assert re.findall(r'<span class="nowrap">(.*?)</span>', html) == ["± 0.0036", "± 16 †"]
    assert "0.277<br>" in html and "1,240<br>" in html  # the median keeps its own line


def _six_pruner_times() -> pd.DataFrame:
    """Tables C and C2's runs as the full profile makes them: six pruners, CIFAR-10 at four compressions and MNIST
    at one, real data, sparse kernels faster (bold in C2) and the MNIST times under a millisecond ("0.277 ±
    0.0036": the widest cells)."""
    labels = ("Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)")
    rows = []
    for setup, data, compressions, dense in [("CIFAR-10 / ResNet20", "real CIFAR-10", (0.2, 0.25, 0.5, 1.0), 1.234),
                                             ("MNIST / FC", "real MNIST", (1.0,), 0.000612)]:
        for compression in compressions:
            for i, label in enumerate(labels):
                d, s = dense * (1 + 0.01 * i), 0.45 * dense * (1 + 0.01 * i)
                rows.append(dict(setup=setup, data=data, data_source="bundled", compression=compression, label=label,
                                 dense_inference_s=d, dense_inference_spread_s=0.0213 * d, sparse_inference_s=s,
                                 sparse_inference_spread_s=0.0161 * s, switched=1, dead_units=0, top1=90.0,
                                 majority_class_top1=11.35, stand_in=False,
                                 dense_inference_samples_s=[d * (1 + 0.01 * f) for f in range(5)],
                                 sparse_inference_samples_s=[s * (1 + 0.01 * f) for f in range(5)]))
    return pd.DataFrame(rows)


@needs_chromium
def test_tables_c_and_c2_of_six_pruners_fit_the_page_at_the_tables_own_type_size():
    """The PDF shrinks a table wider than the page until it fits (pdf_style.FIT_TABLES): Tables C and C2 of the
    full profile's six pruners fit as they are, so they print at the 8 pt of every table."""
    from playwright.sync_api import sync_playwright

    from prunelab.workbook.pdf_document import _block
    from prunelab.workbook.pdf_style import FIT_TABLES, STYLE
    from prunelab.workbook.sparse_tables import inference_time_table
    from prunelab.workbook.tables import styled

    width_px = int((handin.PAPER_WIDTH_MM["a4"] - handin.MARGIN_MM["left"] - handin.MARGIN_MM["right"]) / 25.4 * 96)
    runs = _six_pruner_times()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": width_px, "height": 1000})
            page.emulate_media(media="print")
            for kernels in ("dense", "sparse"):
                table = styled(inference_time_table(runs, kernels), "inference_s", f"Table C ({kernels} kernels)")
                page.set_content(f"<html><head><style>{STYLE}</style></head><body>{_block(table.to_html())}</body>"
                                 "</html>")
                page.evaluate(FIT_TABLES, 1000)
                zoom = page.evaluate("() => document.querySelector('table').style.zoom")
                assert zoom == "", f"{kernels} kernels: scaled to {zoom}"
        finally:
            browser.close()


@needs_chromium
def test_letter_paper_is_8_5_by_11_inches(extra, tmp_path):
    path = handin.write_pdf(extra, "letter", tmp_path / "letter.pdf")
    assert all(paper_is(page, LETTER_PT) and not paper_is(page, A4_PT) for page in read_pdf(path).pages)


@pytest.mark.parametrize("chromium", ["/nowhere/chromium", None])
def test_no_chromium_is_one_line_and_exit_code_3(extra, tmp_path, chromium):
    env = {**os.environ, "PATH": str(tmp_path)}  # a folder without any browser in it
    env.pop("PRUNELAB_CHROMIUM", None)
    if chromium:
        env["PRUNELAB_CHROMIUM"] = chromium
    proc = subprocess.run([sys.executable, "-m", "prunelab.workbook.pdf", str(extra), "--output",
                           str(tmp_path / "x.pdf")], capture_output=True, text=True, env=env, timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 3 and len(lines) == 1, proc.stdout + proc.stderr
    looked_for = [chromium] if chromium else list(handin.CHROMIUM_NAMES)  # what was looked for, by name
    assert all(name in lines[0] for name in looked_for), lines[0]
    assert "PRUNELAB_CHROMIUM" in lines[0] and not (tmp_path / "x.pdf").exists()


def test_a_missing_or_empty_folder_is_one_line_and_exit_code_2(tmp_path, capsys):
    for folder in (tmp_path / "nowhere", tmp_path):
        assert handin.main([str(folder)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.splitlines()) == 1 and str(folder) in err
    assert list(tmp_path.iterdir()) == []


@needs_chromium
def test_a_table_taller_than_a_page_starts_under_its_heading_not_on_a_fresh_page():
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Document, Heading

    rows = "".join(f"<tr><td>row{i}cell</td><td>{i}</td></tr>" for i in range(120))
    short = "".join(f"<tr><td>short{i}cell</td></tr>" for i in range(3))
    body = ('<section class="task" id="t"><h1>Tall</h1><p>introtext</p>'
            f'<div class="table"><table>{rows}</table></div>'
            f'<h2>Next</h2><div class="table"><table>{short}</table></div></section>')
    document = Document("tall", "<p>cover</p>", body, [Heading("t", "Tall", 1)])
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(handin.print_pdf(document, CHROMIUM, "a4"))).pages]
    intro = next(i for i, text in enumerate(pages) if "introtext" in text)
    assert "row0cell" in pages[intro]  # kept whole it would start a page later, leaving this one near blank
    assert sum("row119cell" in text for text in pages) == 1
    assert sum(all(f"short{i}cell" in text for i in range(3)) for text in pages) == 1  # a short one stays whole


@needs_chromium
def test_contents_that_never_settle_are_warned_of_and_settled_ones_are_not(monkeypatch, recwarn):
    from prunelab.workbook.pdf_document import Document, Heading

    body = '<section class="task" id="t"><h1>One</h1><p>text</p></section>'
    document = Document("one", "<p>cover</p>", body, [Heading("t", "One", 1)])
    handin.print_pdf(document, CHROMIUM, "a4")  # settles on its second print
    assert not [w for w in recwarn if w.category is handin.UnsettledContents]
    monkeypatch.setattr(handin, "MAX_PRINTS", 1)  # the first print cannot know where its headings land
    monkeypatch.setattr(handin, "MEND_PRINTS", 0)
    with pytest.warns(handin.UnsettledContents):
        handin.print_pdf(document, CHROMIUM, "a4")


@needs_chromium
def test_a_table_scaled_below_the_smallest_type_is_warned_of_by_its_caption(recwarn):
    from prunelab.workbook.pdf_document import Document, Heading

    def document(columns: int) -> Document:
        cells = "".join(f"<td>value{i}</td>" for i in range(columns))
        body = (f'<section class="task" id="t"><h1>One</h1><table><caption>Table Z. Wide</caption><tr>{cells}</tr>'
                "</table></section>")
        return Document("one", "<p>cover</p>", body, [Heading("t", "One", 1)])

    handin.print_pdf(document(6), CHROMIUM, "a4")  # fits at its own size
    handin.print_pdf(document(14), CHROMIUM, "a4")  # scaled a little: above the smallest size
    assert not [w for w in recwarn if w.category is handin.SmallTables]
    with pytest.warns(handin.SmallTables, match="Table Z. Wide") as caught:
        handin.print_pdf(document(40), CHROMIUM, "a4")
    size = float(str(caught[0].message).rsplit("(", 1)[1].split(" pt")[0])
    assert 0 < size < handin.SMALLEST_TABLE_PT


@needs_chromium
def test_a_table_of_most_of_a_page_starts_under_its_text_rather_than_leaving_the_text_alone_on_a_page():
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Document, Heading

    filler = "".join(f"<p>{' '.join(f'filler{p}x{i}' for i in range(60))}</p>" for p in range(4))  # a third of a page
    rows = "".join(f"<tr><td>tabrow{i}</td><td>{i}</td></tr>" for i in range(45))  # most of a page
    body = (f'<section class="task" id="t"><h1>Tall</h1>{filler}<h3>Runs</h3><p>introtext says what follows.</p>'
            f'<div class="table"><table>{rows}</table></div></section>')
    document = Document("tall", "<p>cover</p>", body, [Heading("t", "Tall", 1)])
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(handin.print_pdf(document, CHROMIUM, "a4"))).pages]
    intro = next(i for i, text in enumerate(pages) if "introtext" in text)
    assert "tabrow0" in pages[intro] and "filler0x0" in pages[intro]  # no blank below the text
    assert sum("tabrow44" in text for text in pages) == 1


@needs_chromium
def test_a_table_that_breaks_keeps_its_caption_with_its_first_rows():
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Task, build_document

    rows = "".join(f"<tr><td>tabrow{i}</td><td>{i}</td></tr>" for i in range(45))  # over half a page: may break
    table = f"<table><caption>Table Z. captiontext of the table</caption><tbody>{rows}</tbody></table>"
    apart = []
    for lines in range(44, 54, 2):  # filler that ends at different heights: one of them left the caption alone
        filler = "".join(f'<p style="margin:0">filler line {i}</p>' for i in range(lines))  # a line each
        cells = [new_markdown_cell(f"# Task 6 — Captions\n\n{filler}"),
                 new_code_cell("show()", outputs=[new_output("display_data", data={"text/html": table})])]
        task = Task("06_captions", "Task 6 — Captions", new_notebook(cells=cells))
        pdf = handin.print_pdf(build_document([task], "captions"), CHROMIUM, "a4")
        pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
        at = next(i for i, text in enumerate(pages) if "captiontext" in text)
        apart += [lines] if "tabrow0" not in pages[at] else []
    assert apart == []


@needs_chromium
def test_a_heading_near_the_foot_of_a_page_moves_with_the_table_it_opens():
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Task, build_document

    filler = "\n\n".join(" ".join(f"filler{p}x{i}" for i in range(60)) for p in range(14))  # most of a page
    rows = "".join(f"<tr><td>tabrow{i}</td><td>{i}</td></tr>" for i in range(25))
    cells = [new_markdown_cell(f"# Task 6 — Openings\n\n{filler}"),
             new_markdown_cell("## The opening\n\nopeningintro says what the table holds."),
             new_code_cell("show()", outputs=[new_output("display_data",
                                                         data={"text/html": f"<table>{rows}</table>"})])]
    task = Task("06_openings", "Task 6 — Openings", new_notebook(cells=cells))
    document = build_document([task], "openings")
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(handin.print_pdf(document, CHROMIUM, "a4"))).pages]
    heading = next(i for i, text in enumerate(pages) if "The opening" in text and "openingintro" in text)
    assert "tabrow0" in pages[heading] and "tabrow24" in pages[heading]  # heading, text and table on one page
    assert "filler13x59" not in pages[heading]  # the filler did leave too little room below it for all three



def test_a_figure_is_fitted_to_the_page_before_only_where_it_keeps_most_of_its_height():
    from prunelab.workbook.pdf_fit import FIT_SLACK_PX, Landed, figure_fits

    # each figure 500 CSS px high from its mark to its foot, 400 of them its image; a page 700 px high
    sections = [1, 1, 2, 2, 2, 3]
    figures = [{"section": s, "need": 500, "image": 400, "id": f"f{n}"} for n, s in enumerate(sections)]
    marks = [(3, 220), (5, 200), (8, 400), (10, 50), (11, 220), (13, 100)]  # page, CSS px down it
    pages = [4, 6, 9, 10, 12, 15]  # where each figure landed: the fourth stayed, the sixth is two pages on
    landed = {**{f"fit-room-{n}": Landed(page, px * 3 / 4) for n, (page, px) in enumerate(marks)},
              **{f"f{n}": Landed(page, 0) for n, page in enumerate(pages)}}
    slack = FIT_SLACK_PX
    fits = figure_fits(figures, landed, 700 * 3 / 4, {})
    # the first 28 px short: fitted, and the second waits for the next print (the first's fit moves it); the
    # third 208 px short, over a tenth of its image: left to move; the fifth is its section's first fit
    assert fits == {0: 400 - (500 - (700 - 220 - slack)), 4: 400 - (500 - (700 - 220 - slack))}
    marks[0] = (3, 250)  # 58 px short: more than a tenth of the image, so it moves whole
    landed["fit-room-0"] = Landed(3, 250 * 3 / 4)
    assert 0 not in figure_fits(figures, landed, 700 * 3 / 4, {})
    assert figure_fits(figures, landed, 700 * 3 / 4, fits) == {1: 400 - (500 - (700 - 200 - slack))}


def test_a_section_that_spills_a_few_lines_is_printed_tighter_and_as_it_was_where_that_does_not_help():
    from prunelab.workbook.pdf_fit import TIGHT_PT, Landed, Layout

    page_pt = 700.0

    def landed(ends: dict[int, tuple[int, float]]) -> dict[str, Landed]:  # section -> its last page, pt down it
        return {**{f"fit-start-{n}": Landed(2 * n + 1, 0) for n in range(4)},
                **{f"fit-end-{n}": Landed(page, down) for n, (page, down) in ends.items()}}

    marked = {"figures": [], "sections": 4}
    layout = Layout()
    # the first ends on its own first page; the second spills 50 pt; the third 300 pt, too much to take back
    assert layout.mend(marked, landed({0: (1, 600), 1: (4, 50), 2: (6, 300), 3: (7, 40)}), page_pt)
    assert layout.sections == {1: TIGHT_PT}  # the fourth ends 40 pt down its first page: no spill
    assert not layout.mend(marked, landed({0: (1, 600), 1: (3, 690), 2: (6, 300), 3: (7, 40)}), page_pt)
    layout = Layout()
    layout.mend(marked, landed({1: (4, 50)}), page_pt)
    assert layout.mend(marked, landed({1: (4, 20)}), page_pt)  # spills tighter too: printed as it was
    assert layout.sections == {} and layout.kept == {1}
    assert not layout.mend(marked, landed({1: (4, 50)}), page_pt)


def _titles() -> dict[int, str]:
    """Each notebook's number and the title its first heading gives it, as the PDF's contents print it."""
    titles = {}
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = json.loads(path.read_text())["cells"][0]
        titles[int(path.name[:2])] = "".join(first["source"]).splitlines()[0].lstrip("# ").strip()
    return titles


def test_the_terms_name_each_part_of_the_report_as_the_report_titles_it():
    titles = _titles()
    glossary = " ".join(f"{term} {meaning}" for term, meaning in TERMS)
    for number in map(int, re.findall(r"Task (\d+)", glossary)):
        assert titles[number].startswith(f"Task {number}"), f"the terms name Task {number}: {titles[number]}"


def test_the_terms_define_the_abbreviations_the_pages_print_with_the_codes_margins():
    from prunelab.core.timing import MARGIN
    from prunelab.workbook.sparse_tables import NOISY_DENSE, NOISY_MARK

    terms = " ".join(term for term, _ in TERMS)
    for used in ("PT2E", "torchao", "CSR", "BSR", "RSS", "compact", "units", "host ops", "ProsPr", "VNNI", "AMX",
                 "Perfetto", "dead units", "exponential schedule", "FX graph mode", "inductor freezing", NOISY_MARK):
        assert used in terms, f"no entry for {used}"
    (compact_meaning,) = [meaning for term, meaning in TERMS if term == "compact"]
    assert f"{1 - MARGIN:.0%}" in compact_meaning  # the kernel choice's margin, from the code
    (noisy_meaning,) = [meaning for term, meaning in TERMS if term.startswith(NOISY_MARK)]
    assert f"{NOISY_DENSE:.0%}" in noisy_meaning  # Table C's noise rule, from the code
