"""prunelab: pruning-at-initialization experiments as a library, a command line and a workbook."""

__version__ = "0.1.0"
