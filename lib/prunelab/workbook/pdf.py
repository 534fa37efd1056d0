"""The hand-in PDF: one document from a rendered folder's executed notebooks, printed by headless Chromium.

    python -m prunelab.workbook.pdf rendered/quick [--paper a4|letter] [--output FILE]

writes ``rendered/quick/prunelab-quick.pdf``: a cover (profile, date, commit, hardware, the data each task
used), the contents with page numbers, the key results, every task in file order (text, tables and figures
with their numbers and captions; no code, progress lines or tracebacks) and the settings as an appendix.

The HTML is built here and printed by the system's Chromium through Playwright, not by nbconvert's webpdf:
webpdf prints one notebook per file as it is (no cover, contents or appendix) and wants a browser it
downloads itself. Chromium has no ``target-counter()``, so the contents' page numbers come from a first
print: the contents link to each heading (and a task's pointer to its key result), Chromium turns link targets
into named destinations, pypdf reads their pages, and a second print fills the numbers in. The same destinations
say where each figure landed: one that moved whole to the next page, leaving the page before near blank, is
scaled down a little to fit there (:func:`figure_fits`), and the document printed again.

Exit codes: 0 written; 2 bad input (one line, nothing written); 3 no Chromium or no Playwright (one line).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .pdf_document import Document, build_document, page_anchors, page_html, profile_of, read_tasks
from .pdf_style import FIT_TABLES, FOOTER, KEEP_SHORT_PARAGRAPHS, MARK_FIGURES
from .startup import skip_unused_iri_grammar

EXIT_NO_CHROMIUM = 3
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PAPERS = {"a4": "A4", "letter": "Letter"}
PAPER_WIDTH_MM = {"a4": 210.0, "letter": 215.9}
PAPER_HEIGHT_MM = {"a4": 297.0, "letter": 279.4}
MARGIN_MM = {"top": 15, "bottom": 18, "left": 15, "right": 15}  # the bottom one holds the page number
MAX_PRINTS = 8  # the contents' numbers settle on the second print; more where figures were fitted
FIT_PRINTS = MAX_PRINTS - 2  # prints after which a figure may be fitted: the last two only settle the numbers
MIN_FIGURE_SCALE = 0.75  # the least share of its height a figure keeps when fitted to the page before
FIT_SLACK_PX = 8  # room a fitted figure leaves below it: a zero-height mark's place is a few px off
PX_PER_PT = 4 / 3


class NoChromium(Exception):
    """No browser to print with here; the message says what was looked for."""


@dataclass(frozen=True)
class Landed:
    """Where a print put a named destination: its page (from 1) and how far (pt) below its page's top margin."""

    page: int
    down: float


# ------------------------------------------------------------------------------------------ printing


def find_chromium() -> str:
    """``$PRUNELAB_CHROMIUM`` where set, else the first of :data:`CHROMIUM_NAMES` on the PATH."""
    chosen = os.environ.get("PRUNELAB_CHROMIUM")
    if chosen:
        if shutil.which(chosen) is None:
            raise NoChromium(f"PRUNELAB_CHROMIUM={chosen} is not a program")
        return shutil.which(chosen)
    found = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    if found is None:
        raise NoChromium(f"none of {', '.join(CHROMIUM_NAMES)} on the PATH")
    return found


def print_pdf(document: Document, chromium: str, paper: str) -> bytes:
    """The document printed until the contents' page numbers match where the headings landed."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise NoChromium("the playwright package is missing: pip install playwright") from None
    from pypdf import PdfReader

    width_px = int((PAPER_WIDTH_MM[paper] - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4 * 96)
    height_px = int((PAPER_HEIGHT_MM[paper] - MARGIN_MM["top"] - MARGIN_MM["bottom"]) / 25.4 * 96)
    pages: dict[str, int] = {}
    fitted: dict[int, int] = {}  # figure number -> its image's height (CSS px), fitted to the page before
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": width_px, "height": 1000})
            page.route(re.compile(r"^(https?|wss?)://"), lambda route: route.abort())  # the PDF stands alone
            page.emulate_media(media="print")
            for attempt in range(MAX_PRINTS):
                page.set_content(page_html(document, pages), wait_until="load")
                page.evaluate(FIT_TABLES, height_px)
                page.evaluate(KEEP_SHORT_PARAGRAPHS)
                figures = page.evaluate(MARK_FIGURES, {str(number): px for number, px in fitted.items()})
                pdf = page.pdf(format=PAPERS[paper], print_background=True, display_header_footer=True,
                               header_template="<span></span>", footer_template=FOOTER, outline=True, tagged=True,
                               margin={side: f"{mm}mm" for side, mm in MARGIN_MM.items()})
                landed = landing(PdfReader(io.BytesIO(pdf)))
                fits = figure_fits(figures, landed, height_px / PX_PER_PT, fitted) if attempt < FIT_PRINTS else {}
                numbers = {anchor: landed[anchor].page for anchor in page_anchors(document) if anchor in landed}
                if numbers == pages and not fits:
                    break
                pages, fitted = numbers, fitted | fits
        finally:
            browser.close()
    return pdf


def landing(reader) -> dict[str, Landed]:
    """Where each named destination of a PDF Chromium printed landed (Chromium gives a destination's top as the
    page's height less how far it is below the top margin)."""
    landed = {}
    for name, destination in reader.named_destinations.items():
        number = reader.get_destination_page_number(destination)
        down = float(reader.pages[number].mediabox.height) - float(destination.top or 0)
        landed[name.lstrip("/")] = Landed(number + 1, down)
    return landed


def figure_fits(figures: list[dict], landed: dict[str, Landed], page_pt: float,
                fitted: dict[int, int]) -> dict[int, int]:
    """Image heights (figure number -> CSS px) that keep figures on the page before the one they moved to
    whole: in each section the first such figure, not yet ``fitted``, that fits the rest of that page (``page_pt``
    high) at :data:`MIN_FIGURE_SCALE` of its image's height or more. One a section a print: a fit moves what
    follows. ``figures``: :data:`.pdf_style.MARK_FIGURES`'s boxes; ``landed``: where the print put their marks."""
    fits: dict[int, int] = {}
    for number, figure in enumerate(figures):
        mark, box = landed.get(f"fit-room-{number}"), landed.get(figure["id"])
        if (number in fitted or figure["section"] in {figures[n]["section"] for n in fits} or not figure["image"]
                or mark is None or box is None or box.page != mark.page + 1):
            continue
        room_px = (page_pt - mark.down) * PX_PER_PT - FIT_SLACK_PX
        height = figure["image"] - (figure["need"] - room_px)
        if MIN_FIGURE_SCALE * figure["image"] <= height < figure["image"]:  # not one that moved for other reasons
            fits[number] = int(height)
    return fits


def write_pdf(folder: Path, paper: str = "a4", output: Path | None = None) -> Path:
    """Print ``folder``'s executed notebooks to ``output`` (default ``folder/prunelab-<profile>.pdf``)."""
    tasks = read_tasks(folder)
    profile = profile_of(folder, tasks)
    output = output or folder / f"prunelab-{profile}.pdf"
    if not output.parent.is_dir():
        raise UserError(f"no folder {output.parent} to write {output.name} into")
    chromium = find_chromium()
    pdf = print_pdf(build_document(tasks, profile), chromium, paper)
    partial = output.with_name(f".{output.name}.partial")  # a failed write leaves no half PDF under the name
    partial.write_bytes(pdf)
    partial.replace(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a rendered folder's notebooks as one hand-in PDF.")
    parser.add_argument("folder", help="a folder run_all.sh rendered, e.g. rendered/quick")
    parser.add_argument("--paper", choices=sorted(PAPERS), default="a4")
    parser.add_argument("--output", help="the PDF to write (default: FOLDER/prunelab-<profile>.pdf)")
    args = parser.parse_args(argv)
    skip_unused_iri_grammar()
    try:
        path = write_pdf(Path(args.folder), args.paper, Path(args.output) if args.output else None)
    except UserError as error:
        print(f"prunelab pdf: error: {error}", file=sys.stderr)
        return 2
    except NoChromium as missing:
        print(f"PDF skipped: no Chromium found ({missing}; apt-get install chromium, or set PRUNELAB_CHROMIUM "
              "to its path)", file=sys.stderr)
        return EXIT_NO_CHROMIUM
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
