"""What the hand-in PDF's next print changes so that fewer pages are left near blank (:mod:`.pdf` prints it).

A print says where things landed through named destinations (:data:`.pdf_style.MARK_LAYOUT` marks them). Two
causes of a near-blank page are mended: a figure too tall for the rest of a page moves whole to the next one
(:func:`figure_fits` shrinks it a little to stay), and a section whose last lines spill onto a page of their own
(:func:`spills`: its text is printed a point smaller, or left as it was where that does not take the spill back).
Each change moves what follows it in its section, so a section takes one change a print; sections start on a
fresh page, so a change in one leaves the others where they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# the least share of its image's height a figure keeps when fitted to the page before: figures are drawn at the
# width the PDF prints them (style.use_style), their smallest text at 8 pt, which 0.9 keeps above 7 pt
MIN_FIGURE_SCALE = 0.9
FIT_SLACK_PX = 8  # room a fitted figure leaves below it: a zero-height mark's place is a few px off
SPILL_SHARE = 0.2  # a section's last page holding less than this share of a page holds a spill
TIGHT_PT = 9.0  # the text size of a section printed tighter (the body's is 10 pt)
PX_PER_PT = 4 / 3


@dataclass(frozen=True)
class Landed:
    """Where a print put a named destination: its page (from 1) and how far (pt) below its page's top margin."""

    page: int
    down: float


@dataclass
class Layout:
    """What a print changes from the document as built: ``figures``, figure number -> its image's height (CSS
    px) fitted to the page before; ``sections``, section number -> its text size (pt), printed tighter;
    ``kept``, the sections that spilled even so and print as they were."""

    figures: dict[int, int] = field(default_factory=dict)
    sections: dict[int, float] = field(default_factory=dict)
    kept: set[int] = field(default_factory=set)

    def script_argument(self) -> dict:
        """The layout as :data:`.pdf_style.MARK_LAYOUT` applies it (JSON keys are strings)."""
        return {"figures": {str(n): px for n, px in self.figures.items()},
                "sections": {str(n): pt for n, pt in self.sections.items()}}

    def mend(self, marked: dict, landed: dict[str, Landed], page_pt: float) -> bool:
        """Take in the changes a print calls for (``marked``: what MARK_LAYOUT returned; ``landed``: where the
        print put the marks; ``page_pt``: a page's height inside its margins); whether there were any."""
        fits = figure_fits(marked["figures"], landed, page_pt, self.figures)
        fitted = {marked["figures"][n]["section"] for n in fits}
        self.figures |= fits
        spilled = [n for n in spills(marked["sections"], landed, page_pt) if n not in fitted | self.kept]
        for number in spilled:  # tighter where it spilled as it was, as it was where it spilled tighter too
            if self.sections.pop(number, None) is None:
                self.sections[number] = TIGHT_PT
            else:
                self.kept.add(number)
        return bool(fits or spilled)


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
    high) at :data:`MIN_FIGURE_SCALE` of its image's height or more. ``figures``: MARK_LAYOUT's boxes."""
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


def spills(sections: int, landed: dict[str, Landed], page_pt: float) -> list[int]:
    """The sections (of ``sections``) that run onto a last page of their own less than :data:`SPILL_SHARE` full."""
    spilled = []
    for number in range(sections):
        start, end = landed.get(f"fit-start-{number}"), landed.get(f"fit-end-{number}")
        if start is not None and end is not None and end.page > start.page and end.down < SPILL_SHARE * page_pt:
            spilled.append(number)
    return spilled
