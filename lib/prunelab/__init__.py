"""prunelab: pruning-at-initialization experiments as a library, a command line and a workbook."""

from .core.registry import register_pruner
from .version import __version__

__all__ = ["__version__", "register_pruner", "run"]


def run(config, progress: bool = True, log=print):
    """Run one experiment (the same as the command line); see :func:`prunelab.runs.registry.run`."""
    from .runs.registry import run as _run

    return _run(config, progress=progress, log=log)
