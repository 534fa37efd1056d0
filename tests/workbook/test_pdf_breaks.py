"""Where the hand-in PDF's pages break (prunelab.workbook.pdf, printed by Chromium and read back with pypdf): a
heading never ends a page with only its lead line, and no paragraph leaves one or two lines alone. Each test
prints one document of many sections, each on its own page, with filler of a different length before the text
under test, so that in one of them or another it falls across a page's foot."""

from __future__ import annotations

import io
import re
import shutil

import pytest

from prunelab.workbook import pdf as handin

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` binary on PATH: printing the PDF needs "
                                "Debian's chromium (`apt-get install chromium`)")
OFFSETS = range(40, 60)  # lines of filler: an A4 page holds about 55 of them


def _pages(sections: list[str]) -> list[str]:
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Document, Heading

    body = "".join(f'<section class="task" id="t{i}">{s}</section>' for i, s in enumerate(sections))
    document = Document("breaks", "<p>cover</p>", body, [Heading("t0", "Breaks", 1)])
    return [page.extract_text() for page in PdfReader(io.BytesIO(handin.print_pdf(document, CHROMIUM, "a4"))).pages]


def _filler(lines: int) -> str:
    return "".join(f'<p style="margin:0">filler line {i}</p>' for i in range(lines))


def test_a_heading_and_its_lead_line_never_end_a_page_without_the_text_after_them():
    sections = [_filler(n) + f"<h2>Findings</h2><p>leadline{n} written by code.</p>"
                f"<ul><li>finding{n} " + "words " * 40 + "</li><li>" + "more " * 40 + "</li></ul>" for n in OFFSETS]
    pages = _pages(sections)
    for n in OFFSETS:
        page = next(text for text in pages if f"leadline{n}" in text)
        assert f"finding{n}" in page, f"with {n} lines of filler the heading and its lead line end a page alone"


def test_no_paragraph_or_list_item_leaves_one_or_two_lines_alone_on_a_page():
    sizes = range(3, 9)  # lines of each paragraph and list item, one line each by <br>

    def lines(kind: str, n: int, size: int) -> str:
        return "<br>".join(f"{kind}{n}s{size}l{i}" for i in range(size))

    sections = [_filler(n) + "".join(f"<p>{lines('para', n, size)}</p><ul><li>{lines('item', n, size)}</li></ul>"
                                     for size in sizes) for n in OFFSETS]
    pages = _pages(sections)
    split = 0
    for n in OFFSETS:
        for size in sizes:
            for kind in ("para", "item"):
                token = re.compile(rf"\b{kind}{n}s{size}l\d\b")
                counts = [found for text in pages if (found := len(token.findall(text)))]
                assert sum(counts) == size
                split += len(counts) > 1
                assert min(counts) >= 3, f"a {size}-line {kind} after {n} lines of filler splits {counts}"
    assert split  # some did fall across a page's foot, so the test shows something


def _setup_table(cell, caption: str) -> str:
    """A table as the notebooks display Tables B and C (:func:`.tables.styled`): a block of 7 and one of 4
    compressions, a column per pruner, a bold or marked time in a cell."""
    import pandas as pd

    from prunelab.workbook.tables import styled

    pruners = ["Random", "Magnitude", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)", "ProsPr"]
    blocks = [pd.DataFrame([[cell(row * 10 + col) for col in range(len(pruners))] for row in range(len(rows))],
                           columns=pruners, index=pd.MultiIndex.from_product(
                               [[setup], rows], names=["Data / Arch", "Compression"]))
              for setup, rows in [("MNIST (real, 4,000 images) / FC", [0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
                                  ("CIFAR-10 (synthetic stand-in, 1,000 images) / ResNet20", [0.2, 0.25, 0.5, 1.0])]]
    return styled(pd.concat(blocks), "inference_s", caption).to_html()


def test_a_caption_of_many_lines_prints_whole_on_the_page_its_table_starts_on():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Task, build_document

    accuracy = _setup_table(lambda i: f"{50 + i / 3:.1f} ± {i % 7 / 3:.1f} (n=3)", "Table B. Accuracy")
    times = _setup_table(lambda i: f"<b>{10 + i / 7:.3g} ± {i % 9 / 4:.2g}</b> †",
                         "Table C. Inference time, first words " + "words " * 80 + "lastword of the caption")
    apart = []
    for lines in range(2, 21, 6):  # filler before Table B: Table C's caption falls across a page's foot
        filler = "".join(f'<p style="margin:0">filler line {i}</p>' for i in range(lines))
        cells = [new_markdown_cell(f"# Task 6 — Captions\n\n{filler}"),
                 *(new_code_cell("show()", outputs=[new_output("display_data", data={"text/html": table})])
                   for table in (accuracy, times))]
        pdf = handin.print_pdf(build_document([Task("06_captions", "Task 6", new_notebook(cells=cells))], "c"),
                               CHROMIUM, "a4")
        pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
        at = next(i for i, text in enumerate(pages) if "first words" in text)
        after = pages[at].split("lastword", 1)
        apart += [] if len(after) == 2 and "Compression" in after[1] else [lines]
    assert apart == []


def _figure_task(paragraphs: int) -> tuple[str, str, str]:
    """A task's markdown: ``paragraphs`` paragraphs of filler, then a heading and a caption; and a tall PNG."""
    import base64

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (800, 1000), (200, 220, 255)).save(buffer, "PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    filler = "\n\n".join(f"filler{paragraphs}x{i} " + "words " * 12 for i in range(paragraphs))
    return (f"# Task — Figures\n\n{filler}", "## The figure\n\nFigure 9. figcaption of the figure.", png)


def test_a_figure_that_would_leave_the_page_before_near_blank_is_scaled_to_fit_it():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Task, build_document

    tasks = []
    for paragraphs in (3, 6, 10):  # the page about a tenth, a fifth and a third full before the figure
        text, lead, png = _figure_task(paragraphs)
        cells = [new_markdown_cell(text), new_markdown_cell(lead),
                 new_code_cell("show()", outputs=[new_output("display_data", data={"image/png": png})])]
        tasks.append(Task(f"0{paragraphs}_figures", f"Task {paragraphs}", new_notebook(cells=cells)))
    reader = PdfReader(io.BytesIO(handin.print_pdf(build_document(tasks, "figures"), CHROMIUM, "a4")))
    for paragraphs, kept in ((3, True), (6, True), (10, False)):  # a third gone: shrinking it would take too much
        text = next(i for i, page in enumerate(reader.pages) if f"filler{paragraphs}x0" in page.extract_text())
        figure = next(i for i, page in enumerate(reader.pages) if "figcaption" in page.extract_text() and i >= text)
        assert (figure == text) == kept, f"after {paragraphs} paragraphs the figure is on page {figure + 1}"
        assert len(reader.pages[figure].images) == 1  # the figure whole, with its caption


def test_a_task_whose_last_lines_would_spill_onto_a_page_of_their_own_is_printed_tighter():
    from nbformat.v4 import new_markdown_cell, new_notebook
    from pypdf import PdfReader

    from prunelab.workbook.pdf_document import Task, build_document

    tasks = []
    for paragraphs in (15, 21):  # a page holds 14: one over is taken back, seven over are a page's worth and stay
        text = "\n\n".join(f"para{paragraphs}x{i} " + "words " * 40 for i in range(paragraphs))
        tasks.append(Task(f"{paragraphs}_spill", f"Task {paragraphs}", new_notebook(cells=[new_markdown_cell(text)])))
    pages = [page.extract_text() for page in
             PdfReader(io.BytesIO(handin.print_pdf(build_document(tasks, "spill"), CHROMIUM, "a4"))).pages]

    def page_of(paragraphs: int, n: int) -> int:
        return next(i for i, text in enumerate(pages) if f"para{paragraphs}x{n} " in text)

    assert page_of(15, 0) == page_of(15, 14)
    assert page_of(21, 0) + 1 == page_of(21, 14) == page_of(21, 20)  # printed as it was: 14 on its first page
