"""prunelab's version: one place, read by the package, the records' environment and the settings tables."""

__version__ = "0.1.0"
