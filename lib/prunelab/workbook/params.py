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
import sys
from pathlib import Path

import yaml

from ..errors import UserError
from ..files import read_yaml
from ..runs.checks import describe_value

#: what a parameter whose default is of the key's type takes, in words (a None default takes anything)
KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list",
         dict: "a mapping"}


def read_params(path: Path, notebook: Path) -> dict:
    """The parameters ``path`` gives ``notebook``: UTF-8 YAML mapping names the notebook's parameters cell sets
    to values of their defaults' kind (or null), else a one-line :class:`UserError`."""
    try:
        values = read_yaml(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise UserError(f"cannot read the parameter file {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"the parameter file {path} is not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise UserError(f"the parameter file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise UserError(f"the parameter file {path} must map parameter names to values, not hold "
                        f"{describe_value(values)}")
    defaults = notebook_defaults(notebook)
    for name, value in values.items():
        if name not in defaults:
            close = difflib.get_close_matches(str(name), list(defaults), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"{path}: {notebook.name} has no parameter '{name}'{hint}; its parameters are "
                            f"{', '.join(defaults)}")
        kind = type(defaults[name])
        if value is not None and kind in KINDS and not _fits(value, kind):
            raise UserError(f"{path}: '{name}' is {describe_value(value)}; {notebook.name} takes {KINDS[kind]} "
                            "(or null)")
    return values


def notebook_defaults(notebook: Path) -> dict:
    """Each parameter the notebook's parameters cell sets, with its default (None where it is no literal)."""
    import papermill

    found = papermill.inspect_notebook(str(notebook))
    return {name: _literal(spec["default"]) for name, spec in found.items()}


def _literal(source: str):
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return None


def _fits(value, kind: type) -> bool:
    if isinstance(value, bool) != (kind is bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)


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
