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
