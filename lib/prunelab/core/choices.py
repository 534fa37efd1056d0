"""The names a run chooses from, each list in the order tables and the command line show it.

No torch here: the command line lists these choices without loading it, and every other module reads
them from this one place. Pruners beyond the built-in five are registered (:mod:`prunelab.core.registry`).
"""

from __future__ import annotations

#: the built-in pruners, in the order every table and the command line list them (registered ones follow)
PRUNERS = ("rand", "mag", "snip", "grasp", "synflow")
#: SynFlow's scoring rounds unless told otherwise: its paper's iterative method (the original tool used 1)
SYNFLOW_ROUNDS = 100
SCOPES = ("global", "local")
SCHEDULES = ("exponential", "linear")
OPTIMIZERS = ("sgd", "momentum", "adam", "rms")


def default_rounds(pruner: str) -> int:
    """A built-in pruner's scoring rounds when none are given: :data:`SYNFLOW_ROUNDS` for SynFlow, one for the
    others (a registered pruner's are its own: :func:`prunelab.core.registry.pruner_rounds`)."""
    return SYNFLOW_ROUNDS if pruner == "synflow" else 1
