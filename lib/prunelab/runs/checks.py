"""The input rules every run and grid file is held to before anything is written: value types, numeric
ranges, record names, folders that can be written. Torch-free, so the command line stays instant.

Each check raises :class:`~prunelab.errors.UserError` with one line naming the setting and what it should be.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

#: record names: the characters below, at most this long (every derived name, such as ``.ckpt-<name>`` or
#: ``<name>-<6 hex>``, then stays far below the 255-byte limit of common file systems, and 143 of eCryptfs)
EXPID_MAX = 128
EXPID_CHARACTERS = "letters, digits and . _ - + = ,"
_EXPID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+=,-]*", re.ASCII)


def check_expid(expid: str) -> None:
    """A record name is 1 to :data:`EXPID_MAX` ASCII characters from :data:`EXPID_CHARACTERS`, starting with a
    letter, a digit or ``_`` (a leading dot would hide the record; ``/`` and control characters break paths)."""
    if expid == "":  # no expid: the record is named by the configuration's hash
        return
    rule = (f"use 1 to {EXPID_MAX} characters from {EXPID_CHARACTERS}, starting with a letter, digit or _")
    if len(expid) > EXPID_MAX:
        raise UserError(f"--expid is {len(expid)} characters long; {rule}")
    if _EXPID.fullmatch(expid):
        return
    bad = next((c for c in expid if not _EXPID.fullmatch("a" + c)), None)
    if bad is not None:
        what = "a control character" if ord(bad) < 32 or ord(bad) == 127 else f"the character {ascii(bad)}"
    else:
        what = "a leading dot" if expid[0] == "." else f"a leading {ascii(expid[0])}"
    raise UserError(f"--expid {ascii(expid)} holds {what}; {rule}")


def check_writable(result_dir: str | os.PathLike) -> None:
    """Raise :class:`UserError` unless records can be written under ``result_dir``."""
    if not str(result_dir).strip():  # Path("") is the working folder: records would land wherever one stands
        raise UserError("the result folder (--result-dir) is empty; name a folder, '.' for this one")
    problem = _cannot_make_folders(Path(result_dir))
    if problem is not None:
        raise UserError(f"cannot write results to {result_dir}: {problem}")


def check_data_folder(data_dir: str | os.PathLike) -> None:
    """Raise :class:`UserError` unless ``data_dir`` is a folder, or one can be made there for the data sets
    to be downloaded into (an existing folder may be read-only: data already in place is only read)."""
    if not str(data_dir).strip():
        raise UserError("the data folder (--data) is empty; name a folder, '.' for this one")
    if Path(data_dir).is_dir():
        return
    problem = _cannot_make_folders(Path(data_dir))
    if problem is not None:
        raise UserError(f"cannot use {data_dir} as the data folder (--data): {problem}")


def _cannot_make_folders(folder: Path) -> str | None:
    """Why nothing can be written at ``folder`` (None when it can): the nearest of it and its parents that
    exists must be a folder in which this process can make one. Tried, not read from permission bits,
    which root passes everywhere and ``/proc`` still refuses; the probe folder goes at once, so a refused
    run leaves nothing behind."""
    path = folder.absolute()
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".prunelab-probe-", dir=existing))
    except OSError as err:
        return f"no folder can be made in {existing} ({err.strerror})"
    return None


@dataclass(frozen=True)
class Range:
    """Closed bounds of a numeric setting (``low_open``: the lower bound itself is excluded)."""

    low: float
    high: float = math.inf
    low_open: bool = False

    def check(self, flag: str, value) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{flag} must be a finite number, not {value}")
        if value <= self.low if self.low_open else value < self.low:
            floor = "positive" if self.low_open and self.low == 0 else (
                "0 or more" if self.low == 0 else f"at least {self.low:g}")
            raise UserError(f"{flag} must be {floor}, not {value}")
        if value > self.high:
            raise UserError(f"{flag} must be at most {self.high:,}, not {value}")


def type_name(hint) -> str:
    """How a setting's type is said in an error: ``an integer``, ``a list of numbers``, ..."""
    options = [t for t in typing.get_args(hint) if t is not type(None)] if _is_optional(hint) else [hint]
    base = options[0]
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        text = f"a list of {_NAMES[item][1]}"
    elif typing.get_origin(base) is dict or base is dict:
        text = "a mapping"
    else:
        text = _NAMES[base][0]
    return text + (" or null" if _is_optional(hint) else "")


_NAMES = {bool: ("true or false", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"),
          str: ("a string", "strings"), list: ("a list", "lists")}


def _is_optional(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def matches(value: Any, hint) -> bool:
    """``value`` has the type ``hint`` names (``bool`` is not an integer here; an integer is a number)."""
    if _is_optional(hint):
        return value is None or any(matches(value, t) for t in typing.get_args(hint) if t is not type(None))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(matches(v, item) for v in value)
    if typing.get_origin(hint) is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


_SCIENTIFIC = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")


def read_as(value: Any, hint) -> Any:
    """``value`` as a file gives it for a setting of type ``hint``: a number in scientific notation that YAML 1.1
    (PyYAML) leaves a string (``1e-3``; it wants ``1.0e-3``) is the float it says where ``hint`` takes a number,
    in a list too; a string elsewhere stays one (an expid ``1e3``). Anything else is :func:`check_type`'s to judge."""
    options = [t for t in typing.get_args(hint) if t is not type(None)] if _is_optional(hint) else [hint]
    hint = options[0] if len(options) == 1 else hint
    if typing.get_origin(hint) is list and isinstance(value, list):
        (item,) = typing.get_args(hint)
        return [read_as(v, item) for v in value]
    if hint is float and isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    return value


def fuse_word(value):
    """``fuse`` as a YAML file gives it (grid and parameter files): YAML reads an unquoted on / off as true /
    false."""
    return ("on" if value else "off") if isinstance(value, bool) else value


def read_setting(where: str, name: str, value: Any, hint) -> Any:
    """``value`` of the setting ``name`` as a YAML file gives it (:func:`fuse_word`, :func:`read_as`), checked
    to be of type ``hint``; a mistake is one line naming ``where``."""
    value = fuse_word(value) if name == "fuse" else read_as(value, hint)
    check_type(where, value, hint)
    return value


def check_type(key: str, value: Any, hint) -> None:
    if not matches(value, hint):
        raise UserError(f"{key}: expected {type_name(hint)}, got {describe_value(value)}")


def describe_value(value: Any) -> str:
    text = ascii(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
