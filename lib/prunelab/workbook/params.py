"""A notebook's parameter file (``params/<profile>/<notebook>.yaml``), checked against the notebook before it runs.

    python -m prunelab.workbook.params PARAMS_DIR NOTEBOOK...   (run_all.sh checks every file it will use first)

papermill injects whatever names a file gives, and only logs a warning for one the notebook's parameters cell
does not set: a misspelt name (``post_epoch: 100``) would leave the default in force without a word, and a value
of the wrong kind (``post_epochs: "100"``) would fail deep in a cell, after the notebooks before it had run. Here
either is one line and exit code 2, before any notebook runs.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import sys
import typing
from pathlib import Path

from ..core.registry import check_pruner_name
from ..errors import UserError
from ..files import read_yaml_file
from ..runs.checks import describe_value, matches, read_setting
from .grids import PER_SETUP, SETUPS, WorkbookParams


def read_params(path: Path, notebook: Path | None) -> dict:
    """The parameters ``path`` gives ``notebook``, each of the kind the notebook takes (``fuse: on`` its word,
    ``1e-3`` a number, ``seed: 2`` of older files ``seeds: [2]``), else a one-line :class:`UserError`: UTF-8 YAML
    mapping names the notebook's parameters cell sets, or ``overrides`` (per set-up settings, checked likewise),
    to values. Without ``notebook``, only the shared parameters' kinds are checked."""
    values = _mapping(path)
    if "seed" in values:
        if "seeds" in values:
            raise UserError(f"{path}: give seeds or seed (older files: one seed), not both")
        values = {("seeds" if k == "seed" else k): ([v] if k == "seed" else v) for k, v in values.items()}
    kinds = parameter_kinds(notebook)
    read = {}
    for name, value in values.items():
        if notebook is not None and name not in kinds:
            close = difflib.get_close_matches(str(name), list(kinds), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"{path}: {notebook.name} has no parameter '{name}'{hint}; its parameters are "
                            f"{', '.join(kinds)}")
        read[name] = _read(f"{path}: '{name}'", name, value, kinds.get(name))
    if isinstance(read.get("overrides"), dict):
        read["overrides"] = {setup: _setup_overrides(f"{path}: overrides.{setup}", setup, changes)
                             for setup, changes in read["overrides"].items()}
    _check_pruners(path, read)
    return read


#: the parameters that name pruners, one or a list
PRUNER_PARAMETERS = ("pruner", "pruners", "focus_pruner", "amp_pruner")


def _check_pruners(path: Path, read: dict) -> None:
    """Each pruner the parameters name, a set-up's overrides included, is built in or registered (by a module
    that ``$PRUNELAB_PLUGINS`` names or an installed package's entry point: what a notebook can load), else a
    one-line :class:`UserError`."""
    overrides = read.get("overrides") if isinstance(read.get("overrides"), dict) else {}
    named = [(f"'{name}'", read[name]) for name in PRUNER_PARAMETERS if name in read] + \
        [(f"overrides.{setup}.pruners", changes["pruners"]) for setup, changes in overrides.items()
         if "pruners" in changes]
    for where, value in named:
        for pruner in value if isinstance(value, list) else [value]:
            try:
                check_pruner_name(pruner)
            except UserError as err:
                raise UserError(f"{path}: {where}: {err}") from None


def _read(where: str, name: str, value, kind):
    """``value`` for the parameter ``name`` of type ``kind`` (None: any), read as the notebooks read it."""
    return value if kind is None else read_setting(where, name, value, kind)


def _setup_overrides(where: str, setup, changes) -> dict:
    """One set-up's ``overrides``: settings of :data:`~prunelab.workbook.grids.PER_SETUP`, each of its kind."""
    if setup not in SETUPS:
        raise UserError(f"{where}: no set-up is called {setup!r}; the set-ups are {', '.join(SETUPS)}")
    if not isinstance(changes, dict):
        raise UserError(f"{where} is {describe_value(changes)}; give a mapping of settings to values")
    shared = typing.get_type_hints(WorkbookParams)
    read = {}
    for name, value in changes.items():
        if name not in PER_SETUP:
            raise UserError(f"{where}: '{name}' is no per set-up setting; those are {', '.join(PER_SETUP)}")
        read[name] = _read(f"{where}.{name}", name, value, shared[name])
    return read


def _mapping(path: Path) -> dict:
    values = read_yaml_file(path, "parameter file")
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise UserError(f"the parameter file {path} must map parameter names to values, not hold "
                        f"{describe_value(values)}")
    return values


def parameter_kinds(notebook: Path | None) -> dict:
    """Each name ``notebook`` takes, with its type: the names its parameters cell sets and ``overrides``, the
    shared parameters' types as declared, the notebook's own from their defaults (None: any value, where the
    default is None or no literal). Without ``notebook``: every shared parameter."""
    shared = typing.get_type_hints(WorkbookParams)
    if notebook is None:
        return shared
    own = {name: shared.get(name, _kind(default, comment)) for name, (default, comment) in _cell(notebook).items()}
    return {**own, "overrides": shared["overrides"]}


def notebook_defaults(notebook: Path) -> dict:
    """Each parameter the notebook's parameters cell sets, with its default (None where it is no literal)."""
    return {name: default for name, (default, _) in _cell(notebook).items()}


@functools.cache  # the estimate asks for a notebook's kinds and its defaults: papermill reads it once
def _cell(notebook: Path) -> dict:
    """Each parameter of the notebook's parameters cell: its default and its line's comment."""
    import papermill

    found = papermill.inspect_notebook(str(notebook))
    return {name: (_literal(spec["default"]), spec["help"]) for name, spec in found.items()}


def _literal(source: str):
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return None


def _kind(default, comment: str):
    """The type a notebook's own parameter takes, from its default (a list of numbers: of integers where all are,
    else of numbers), or null where its comment says what None means; anything where the default is None."""
    if default is None:
        return None
    kind = type(default)
    if isinstance(default, list) and default and all(matches(item, float) for item in default):
        kind = list[int] if all(matches(item, int) for item in default) else list[float]
    return kind | None if "None" in comment else kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("params_dir", type=Path, help="the folder of parameter files, one per notebook")
    parser.add_argument("notebooks", type=Path, nargs="+", help="the notebooks to check (one without a file is "
                                                                  "skipped, as run_all.sh skips it)")
    args = parser.parse_args(argv)
    try:
        for notebook in args.notebooks:
            path = args.params_dir / f"{notebook.stem}.yaml"
            if path.exists():
                read_params(path, notebook)
    except UserError as err:
        print(f"prunelab: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
