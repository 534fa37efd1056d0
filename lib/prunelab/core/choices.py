"""The names a run chooses from, each list in the order tables and the command line show it.

No torch here: the command line lists these choices without loading it, and every other module
(pruners, training, the workbook's labels) reads them from this one place.
"""

from __future__ import annotations

#: the pruners, in the order every table and the command line list them
PRUNERS = ("rand", "mag", "snip", "grasp", "synflow")
#: SynFlow's scoring rounds unless told otherwise: its paper's iterative method (the original tool used 1)
SYNFLOW_ROUNDS = 100
SCOPES = ("global", "local")
SCHEDULES = ("exponential", "linear")
OPTIMIZERS = ("sgd", "momentum", "adam", "rms")


def default_rounds(pruner: str) -> int:
    """Scoring rounds when none are given: :data:`SYNFLOW_ROUNDS` for SynFlow, one for the others."""
    return SYNFLOW_ROUNDS if pruner == "synflow" else 1
