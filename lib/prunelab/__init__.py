"""prunelab: pruning-at-initialization experiments as a library, a command line and a workbook."""

__version__ = "0.1.0"


def run(config, progress: bool = True, log=print):
    """Run one single-shot experiment (the same as the command line); see :func:`prunelab.experiment.run`."""
    from .experiment import run as _run

    return _run(config, progress=progress, log=log)
