"""Files as every layer writes and reads them: one file written whole or not at all, and YAML as people write it.

Record folders have their own staged writer (:mod:`prunelab.runs.atomic`); :func:`write_whole` is for single files
beside them (a data cache, an idx file, a fused group's kept cut), which a kill must leave either as they were or
complete, never half written. :func:`read_yaml_file` reads the files people write (grid files, notebook parameters).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import yaml

from .errors import UserError


def write_whole(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write`` (given the open binary file) into a temporary file beside it, synced to
    disk, then renamed over ``path``; the file reads like any other (mode 0644). Nothing is left behind if
    ``write`` or the rename fails, and the error goes to the caller."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


class _OnceEachKey(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that names a key twice (plain YAML keeps the last, silently); a key
    a merge (``<<: *defaults``) brings in may be set again, as YAML means it to be."""

    def construct_mapping(self, node, deep=False):
        own = [self.construct_object(key, deep=True) for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
        twice = next((key for index, key in enumerate(own) if key in own[:index]), None)
        if twice is not None:
            raise yaml.constructor.ConstructorError(None, None, f"{twice!r} is given twice", node.start_mark)
        return super().construct_mapping(node, deep)


def read_yaml(text: str):
    """The value ``text`` holds as YAML, read safely, each mapping's keys once; a mistake raises
    ``yaml.YAMLError``. Numbers are YAML 1.1's: ``1e-3`` is a string here, which a setting that takes a number
    reads as one (:func:`prunelab.runs.checks.read_as`)."""
    return yaml.load(text, Loader=_OnceEachKey)


def read_yaml_file(path: str | os.PathLike, what: str):
    """The value the file at ``path`` holds as UTF-8 YAML (:func:`read_yaml`). A file that cannot be read, is not
    UTF-8 or is not valid YAML raises :class:`UserError`, one line naming it as ``what`` (``grid file``)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as err:
        raise UserError(f"cannot read the {what} {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"the {what} {path} is not UTF-8 text (byte {err.start})") from None
    try:
        return read_yaml(text)
    except yaml.YAMLError as err:
        raise UserError(f"the {what} {path} is not valid YAML: {str(err).splitlines()[0]}") from None
