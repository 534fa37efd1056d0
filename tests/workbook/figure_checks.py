"""What a reader of a figure would see go wrong, found on the drawn figure itself (Agg canvas).

:func:`figure_problems` draws the figure and returns what it finds: a panel that shows no data (the
MNIST / FC panel of Figure 1b once drew a one-point line without a marker: axes, and nothing in them),
tick labels of one axis printed over each other (log-axis minor labels "6×10⁻¹4×10⁻¹…"), other texts
printed over each other (a legend beside the panels over a long suptitle), and text that lies outside the
figure's canvas (an outside legend that only ``bbox_inches="tight"`` would have kept).
Every check works in display pixels, so log scales, inverted axes and blended transforms need no cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from prunelab.workbook.figure_output import SHOW_DPI
from prunelab.workbook.pdf import MARGIN_MM, PAPER_WIDTH_MM
from prunelab.workbook.pdf_style import STYLE

#: pixels of slack: a point on the frame is inside, labels that touch by rounding do not overlap
TOLERANCE_PX = 0.5

EMPTY_PANEL = "panel draws no data"
OVERLAPPING_TICK_LABELS = "tick labels overlap"
OVERLAPPING_TEXT = "texts overlap"
TEXT_OUTSIDE = "text outside the figure"

#: the hand-in PDF's box for a figure, in inches: the narrowest paper's text width, and the stylesheet's
#: ``max-height`` of a figure's image (it keeps its aspect within both)
PRINT_WIDTH_IN = min(w - MARGIN_MM["left"] - MARGIN_MM["right"] for w in PAPER_WIDTH_MM.values()) / 25.4
PRINT_HEIGHT_IN = float(re.search(r"figure img \{[^}]*max-height: ([\d.]+)mm", STYLE).group(1)) / 25.4
#: CSS pixels per inch: a PNG's pixels are laid out as CSS pixels, whatever resolution it was saved at
CSS_PX_PER_IN = 96


@dataclass(frozen=True)
class Problem:
    """One defect: its ``kind`` (one of the constants above) and ``where`` it is, for a person to find it."""

    kind: str
    where: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}"


def figure_problems(fig: Figure) -> list[Problem]:
    """Draw ``fig`` on an Agg canvas and return every problem found (empty: the figure reads cleanly).

    A panel is every visible axes whose frame is drawn (``axis("off")`` slots of a grid are not panels);
    each must draw data in data coordinates inside its frame: lines with a marker or two points, collections,
    patches or images. Reference lines (``axhline``, ``axvline``) and text are not data."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_visible()]
    problems = [Problem(EMPTY_PANEL, _axes_name(ax)) for ax in panels if ax.axison and not _draws_data(ax, renderer)]
    texts = _drawn_texts(fig, panels)
    boxes = [text.get_window_extent(renderer) for text, _axis in texts]
    canvas = fig.bbox.padded(TOLERANCE_PX)
    problems += [Problem(TEXT_OUTSIDE, repr(text.get_text())) for (text, _axis), box in zip(texts, boxes)
                 if not _inside(box, canvas)]
    for i, j in zip(*np.triu_indices(len(texts), k=1)):
        (a, axis_a), (b, axis_b) = texts[i], texts[j]
        if _overlap(boxes[i], boxes[j]):
            pair = f"{a.get_text()!r} and {b.get_text()!r}"
            if axis_a is not None and axis_a is axis_b:
                name = f"{_axes_name(axis_a.axes)}, {axis_a.axis_name} axis"
                problems.append(Problem(OVERLAPPING_TICK_LABELS, f"{name}: {pair}"))
            else:
                problems.append(Problem(OVERLAPPING_TEXT, pair))
    return problems


def printed_scale(fig: Figure) -> float:
    """How much the hand-in PDF scales ``fig``: shown as :func:`~prunelab.workbook.show_figure` saves it (a tight
    box at :data:`SHOW_DPI`), an image of that many CSS pixels, shrunk to fit the page's figure box."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    natural = SHOW_DPI / CSS_PX_PER_IN
    return min(natural, PRINT_WIDTH_IN / box.width, PRINT_HEIGHT_IN / box.height)


def smallest_printed_text(fig: Figure) -> tuple[float, str]:
    """The smallest text of ``fig`` as the hand-in PDF prints it: (its size in points, the text)."""
    scale = printed_scale(fig)
    texts = [text for text, _axis in _drawn_texts(fig, [ax for ax in fig.axes if ax.get_visible()])]
    smallest = min(texts, key=lambda text: text.get_fontsize())
    return smallest.get_fontsize() * scale, smallest.get_text()


# ----------------------------------------------------------------------------------------- panels


def _axes_name(ax: Axes) -> str:
    title = ax.get_title() or _suptitle(ax.get_figure())
    where = ", ".join(f"{v:.2f}" for v in ax.get_position().bounds)
    return f"axes {title!r}" if title else f"untitled axes at ({where})"


def _suptitle(fig) -> str:
    suptitle = getattr(fig, "_suptitle", None)  # a subfigure's row title; the getter is newer than our pins
    return suptitle.get_text() if suptitle is not None else ""


def _in_data_coordinates(transform, ax: Axes) -> bool:
    return transform.contains_branch(ax.transData)


def _points_inside(points: np.ndarray, frame: Bbox) -> int:
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    finite = points[np.isfinite(points).all(axis=1)]
    return int(sum(frame.contains(x, y) for x, y in finite))


def _line_draws(line: Line2D, ax: Axes, frame: Bbox) -> bool:
    if not (line.get_visible() and _in_data_coordinates(line.get_transform(), ax)):
        return False
    points = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
    inside = _points_inside(points, frame)
    has_marker = line.get_marker() not in (None, "", " ", "None", "none") and line.get_markersize() > 0
    has_stroke = line.get_linestyle() not in ("None", "none", "", " ") and line.get_linewidth() > 0
    finite = int(np.isfinite(points).all(axis=1).sum())
    return inside > 0 and (has_marker or (has_stroke and finite >= 2))


def _collection_draws(collection: Collection, ax: Axes, frame: Bbox) -> bool:
    if not collection.get_visible():
        return False
    offsets = collection.get_offsets()
    if len(offsets) and _in_data_coordinates(collection.get_offset_transform(), ax):  # a scatter
        return _points_inside(collection.get_offset_transform().transform(offsets), frame) > 0
    if not _in_data_coordinates(collection.get_transform(), ax):
        return False
    transform = collection.get_transform()
    return any(_points_inside(transform.transform(path.vertices), frame) > 0 for path in collection.get_paths())


def _draws_data(ax: Axes, renderer) -> bool:
    frame = ax.bbox.padded(TOLERANCE_PX)
    if any(_line_draws(line, ax, frame) for line in ax.lines):
        return True
    if any(_collection_draws(c, ax, frame) for c in ax.collections):
        return True
    for patch in ax.patches:
        if patch.get_visible() and _in_data_coordinates(patch.get_transform(), ax):
            shown = Bbox.intersection(patch.get_window_extent(renderer), ax.bbox)
            if shown is not None and shown.width > 0 and shown.height > 0:
                return True
    return any(image.get_visible() for image in ax.images)


# ----------------------------------------------------------------------------------------- tick labels


def _drawn_axes(ax: Axes) -> list[Axis]:
    return [axis for axis in (ax.xaxis, ax.yaxis) if ax.axison and axis.get_visible()]


def _drawn_tick_labels(axis: Axis) -> list[Text]:
    """The non-empty tick labels the last draw put on the page: those of ticks inside the view interval
    (the tick pool keeps labels of ticks outside it, which are not drawn)."""
    scale = axis.get_transform()
    low, high = sorted(scale.transform(np.asarray(axis.get_view_interval(), dtype=float)))
    labels = []
    for locs, ticks in ((axis.get_majorticklocs(), axis.get_major_ticks),
                        (axis.get_minorticklocs(), axis.get_minor_ticks)):
        locs = np.asarray(locs, dtype=float)
        places = scale.transform(locs) if len(locs) else locs
        for place, tick in zip(places, ticks(len(locs))):
            if _within(place, low, high):
                labels += [label for label in (tick.label1, tick.label2)
                           if label.get_visible() and label.get_text().strip()]
    return labels


def _within(place: float, low: float, high: float) -> bool:
    """``place`` in [low, high] up to a millionth of the interval (rounding of the tick locations)."""
    slack = 1e-6 * (high - low)
    return bool(np.isfinite(place)) and low - slack <= place <= high + slack


def _overlap(a: Bbox, b: Bbox) -> bool:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width > TOLERANCE_PX and height > TOLERANCE_PX


# ----------------------------------------------------------------------------------------- text


def _drawn_texts(fig: Figure, panels: list[Axes]) -> list[tuple[Text, Axis | None]]:
    """Every non-empty text the figure draws, each with the axis it labels a tick of (else None): figure and
    subfigure texts (suptitles among them), legends, and per visible axes its titles, texts and annotations,
    legend, and where its frame is drawn, axis labels, offset texts and drawn tick labels."""
    texts = []
    figures = [fig]
    while figures:
        current = figures.pop()
        figures += list(getattr(current, "subfigs", []))
        texts += list(current.texts)
        texts += [t for legend in current.legends for t in _legend_texts(legend)]
    for ax in panels:
        texts += [ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None), *ax.texts]
        if ax.get_legend() is not None:
            texts += _legend_texts(ax.get_legend())
        for axis in _drawn_axes(ax):
            texts += [axis.label, axis.get_offset_text()]
    texts = [(t, None) for t in texts]
    for ax in panels:
        texts += [(t, axis) for axis in _drawn_axes(ax) for t in _drawn_tick_labels(axis)]
    return [(t, axis) for t, axis in texts if t is not None and t.get_visible() and t.get_text().strip()]


def _legend_texts(legend) -> list[Text]:
    return [*legend.get_texts(), legend.get_title()] if legend.get_visible() else []


def _inside(box: Bbox, canvas: Bbox) -> bool:
    return canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and canvas.y0 <= box.y0 and box.y1 <= canvas.y1

