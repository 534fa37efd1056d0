"""Start-up time of the processes that read notebooks (run_all.sh starts several per notebook)."""

from __future__ import annotations

import sys


def skip_unused_iri_grammar() -> None:
    """Keep jsonschema from building its IRI grammar; call before anything imports nbformat.

    nbformat validates notebooks with jsonschema, whose format checkers import the rfc3987-syntax package
    where it is installed (JupyterLab's dependencies install it). That package builds about 35 Earley
    parsers at import, seconds of every process that reads a notebook, for the "iri"
    formats that no notebook schema uses (python-jsonschema/jsonschema#1428). Marked absent, the package is
    skipped as if it were not installed, which jsonschema supports. A process that has already imported it
    keeps it.
    """
    sys.modules.setdefault("rfc3987_syntax", None)
