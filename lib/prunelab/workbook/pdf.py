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
say where figures and sections landed: where one left a page near blank, :mod:`.pdf_fit` mends the layout
(a figure scaled down a little to stay on the page before, a section's spill taken back) and it prints again.

Exit codes: 0 written; 2 bad input (one line, nothing written); 3 no Chromium or no Playwright (one line).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

from ..errors import UserError
from .pdf_document import Document, build_document, page_anchors, page_html, profile_of, read_tasks
from .pdf_fit import PX_PER_PT, Layout, landing
from .pdf_style import FIT_TABLES, FOOTER, KEEP_SHORT_PARAGRAPHS, MARK_LAYOUT
from .startup import skip_unused_iri_grammar

EXIT_NO_CHROMIUM = 3
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PAPERS = {"a4": "A4", "letter": "Letter"}
PAPER_WIDTH_MM = {"a4": 210.0, "letter": 215.9}
PAPER_HEIGHT_MM = {"a4": 297.0, "letter": 279.4}
MARGIN_MM = {"top": 15, "bottom": 18, "left": 15, "right": 15}  # the bottom one holds the page number
MAX_PRINTS = 8  # the contents' numbers settle on the second print; more where the layout was mended
MEND_PRINTS = MAX_PRINTS - 2  # prints whose layout may be mended: the last two only settle the numbers


class NoChromium(Exception):
    """No browser to print with here; the message says what was looked for."""


class UnsettledContents(UserWarning):
    """The print loop ended before the contents' page numbers matched where the headings landed."""


class SmallTables(UserWarning):
    """Tables scaled to the page width print below :data:`SMALLEST_TABLE_PT`; the message names them."""


SMALLEST_TABLE_PT = 7.0  # the smallest type a table may print at, scaled to fit, before the PDF warns of it


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
    """The document printed until the contents' page numbers match where the headings landed and its layout
    wants no more mending (:class:`.pdf_fit.Layout`); :class:`UnsettledContents` is warned where
    :data:`MAX_PRINTS` prints did not get there."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise NoChromium("the playwright package is missing: pip install playwright") from None
    from pypdf import PdfReader

    width_px = int((PAPER_WIDTH_MM[paper] - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4 * 96)
    height_px = int((PAPER_HEIGHT_MM[paper] - MARGIN_MM["top"] - MARGIN_MM["bottom"]) / 25.4 * 96)
    pages: dict[str, int] = {}
    layout = Layout()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": width_px, "height": 1000})
            page.route(re.compile(r"^(https?|wss?)://"), lambda route: route.abort())  # the PDF stands alone
            page.emulate_media(media="print")
            for attempt in range(MAX_PRINTS):
                page.set_content(page_html(document, pages), wait_until="load")
                marked = page.evaluate(MARK_LAYOUT, layout.script_argument())  # first: it may set text sizes
                scaled = page.evaluate(FIT_TABLES, height_px)
                page.evaluate(KEEP_SHORT_PARAGRAPHS)
                pdf = page.pdf(format=PAPERS[paper], print_background=True, display_header_footer=True,
                               header_template="<span></span>", footer_template=FOOTER, outline=True, tagged=True,
                               margin={side: f"{mm}mm" for side, mm in MARGIN_MM.items()})
                landed = landing(PdfReader(io.BytesIO(pdf)))
                mended = attempt < MEND_PRINTS and layout.mend(marked, landed, height_px / PX_PER_PT)
                numbers = {anchor: landed[anchor].page for anchor in page_anchors(document) if anchor in landed}
                if numbers == pages and not mended:
                    break
                pages = numbers
            else:
                warnings.warn(f"the contents' page numbers still moved after {MAX_PRINTS} prints; some may be a page "
                              "off", UnsettledContents, stacklevel=2)
        finally:
            browser.close()
    _warn_of_small_tables(scaled)
    return pdf


def _warn_of_small_tables(scaled: list[list]) -> None:
    """Warn :class:`SmallTables` of the tables ``scaled`` ([caption, type size in pt]) below the smallest size."""
    small = [f"{caption or 'a table without a caption'} ({size:.1f} pt)" for caption, size in scaled
             if size < SMALLEST_TABLE_PT]
    if small:
        warnings.warn(f"{len(small)} table(s) scaled below {SMALLEST_TABLE_PT:g} pt to fit the page width: "
                      + "; ".join(small), SmallTables, stacklevel=3)


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
