"""How a figure reaches a page: a PNG at :data:`SHOW_DPI` in an ``<img>`` whose alternative text is read off the
figure itself (its title, each panel's title, axes and series), so screen readers and the hand-in PDF get both."""

from __future__ import annotations

import base64
import html
import io

import matplotlib.pyplot as plt

#: panels an alternative text names one by one; the rest are counted
_ALT_PANELS = 6
#: resolution of a shown figure: the hand-in PDF needs at least 150 dpi
SHOW_DPI = 150


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _panel_words(ax) -> str:
    """One panel: its title, what it plots against what, and its series."""
    y, x = _one_line(ax.get_ylabel()), _one_line(ax.get_xlabel())
    what = f"{y} against {x}" if y and x else y or x
    legend = ax.get_legend()
    series = ", ".join(t.get_text() for t in legend.get_texts()) if legend else ""
    title = _one_line(ax.get_title())
    row = _figure_text(ax.figure, "suptitle") if ax.figure is not ax.figure.figure else ""  # a row's title
    title = f"{row}: {title}" if row and title else row or title
    words = "; ".join(w for w in (what, f"series: {series}" if series else "") if w)
    return f"{title}: {words}" if title and words else title or words


def _figure_text(fig, which: str) -> str:
    """The (sub)figure's ``suptitle``, ``supxlabel`` or ``supylabel`` ("" where unset, or where this matplotlib has no
    getter for it: the pins allow versions older than the getters)."""
    getter = getattr(fig, f"get_{which}", None)
    return _one_line(getter()) if getter else ""


def figure_alt(fig) -> str:
    """A figure in words for its alternative text, read off the figure itself: the title, then each panel's
    title, axes and series (a panel per layer is summarized after the first few)."""
    panels = [ax for ax in fig.axes if ax.get_visible() and (ax.has_data() or ax.get_title())]
    title, y, x = (_figure_text(fig, which) for which in ("suptitle", "supylabel", "supxlabel"))
    if not title and len(panels) == 1:
        title, panels = _panel_words(panels[0]), []
    words = [title or "A figure"]
    if panels:
        words.append(f"{len(panels)} panels" + (f", each {y} against {x}" if y and x else ""))
        words += [f"panel {i}, {_panel_words(ax)}" for i, ax in enumerate(panels[:_ALT_PANELS], 1)]
    if len(panels) > _ALT_PANELS:
        rest = [_one_line(ax.get_title()) for ax in panels[_ALT_PANELS:]]
        words.append(f"and {len(rest)} more panels like them" + (f": {', '.join(rest)}" if all(rest) else ""))
    legends = [*fig.legends, *(legend for row in fig.subfigs for legend in row.legends)]
    shared = list(dict.fromkeys(t.get_text() for legend in legends for t in legend.get_texts()))
    if shared:
        words.append(f"series in every panel: {', '.join(shared)}")
    return ". ".join(words) + "."


class FigureHTML:
    """A rendered figure as an ``<img>`` with its alternative text (``_repr_html_`` for notebooks)."""

    def __init__(self, png: bytes, alt: str) -> None:
        self.png, self.alt = png, alt

    def __repr__(self) -> str:  # what a viewer without HTML shows
        return f"[figure: {self.alt}]"

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return f'<img alt="{html.escape(self.alt)}" src="data:image/png;base64,{data}">'


def show_figure(fig, alt: str | None = None) -> FigureHTML:
    """``fig`` as a PNG ``<img>`` at :data:`SHOW_DPI` carrying an alternative text (``alt``, else
    :func:`figure_alt`), and closed, so that the notebook's inline backend does not show it a second time.
    Notebooks end a cell with it: a plain figure output would reach the rendered page with no description
    for screen readers."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=SHOW_DPI, bbox_inches="tight")
    text = alt if alt is not None else figure_alt(fig)
    plt.close(fig)
    return FigureHTML(buffer.getvalue(), text)
