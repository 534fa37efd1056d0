"""One look for every page of the workbook: pruner names and their order, colours, and the plot style.

The pruners themselves, their order and their default rounds are :mod:`prunelab.core.pruners`' facts;
this module only says how a page shows them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..core.choices import PRUNERS, default_rounds

#: how a page names each pruner (the user's spelling), in the pruners' own order
PRUNER_NAMES = dict(zip(PRUNERS, ("Rand", "Mag", "SNIP", "GraSP", "SynFlow"), strict=True))
#: colours of the kinds of work in a traced step (:data:`prunelab.core.trace.KINDS`)
KIND_COLORS = {"convolution": "#1f77b4", "batchnorm": "#2ca02c", "activation and add": "#ff7f0e",
               "mask multiply": "#d62728", "linear": "#9467bd", "memory copies": "#8c564b", "other": "#7f7f7f"}


def use_style() -> None:
    """One look across the workbook: readable fonts, light grid, no top/right spines."""
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11,
        "axes.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
        "axes.spines.right": False, "legend.frameon": False, "figure.constrained_layout.use": True,
    })


def pruner_label(pruner: str, rounds: int | None) -> str:
    """"SNIP"; SynFlow with its rounds, "SynFlow (100 rounds)", since one round and many differ so much."""
    name = PRUNER_NAMES.get(pruner, pruner)
    if pruner != "synflow":
        return name
    resolved = default_rounds(pruner) if rounds is None else int(rounds)
    return f"{name} ({resolved} round{'s' if resolved != 1 else ''})"


#: a colour per column label; SynFlow with one round and with its default rounds are told apart
PALETTE = {"Rand": "#7f7f7f", "Mag": "#1f77b4", "SNIP": "#2ca02c", "GraSP": "#d62728",
           pruner_label("synflow", 1): "#ff7f0e", pruner_label("synflow", None): "#9467bd", "SynFlow": "#9467bd"}


#: the column of the unpruned reference runs (compression 0: every weight kept)
DENSE_LABEL = "Dense (no pruning)"


def column_order(labels) -> list[str]:
    """Pruner columns in the user's order: Rand, Mag, SNIP, GraSP, SynFlow (1 round), SynFlow (100 rounds);
    the dense reference, where present, first."""
    names = [PRUNER_NAMES[p] for p in PRUNERS]

    def key(label: str):
        if label == DENSE_LABEL:
            return (-1, 0)
        base = label.split(" (")[0]
        rounds = int(label.split("(")[1].split()[0]) if "(" in label else 0
        return (names.index(base) if base in names else len(names), rounds)
    return sorted(set(labels), key=key)
