"""Records that prove themselves: a manifest of every file's size and sha256, and the check against it.

The manifest (``manifest.json``) is written after every other file and before the completion marker, and
lists every file in the record folder but itself and the marker, whatever their names. A record is good
when it is complete, every file is there with its listed size and checksum, nothing unlisted was added,
``config.json``, ``summary.json`` and ``env.json`` are JSON objects, and a run's configuration hashes to the
``config_hash`` its summary holds (and, for a record named by its hash, to the folder's name), as the float
fields are read now or as an int spelling of them had it before (:meth:`RunConfig.earlier_hashes`). Records
made from another record (int8, sparse) hold no ``config_hash`` of their own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import UserError
from .config import RunConfig

MARKER = "COMPLETE"
MANIFEST = "manifest.json"
#: the files every record has (read by :func:`prunelab.runs.store.load_record`)
REQUIRED = ("config.json", "summary.json", "env.json")
_CHUNK = 1 << 20


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _listed(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name not in (MANIFEST, MARKER))


def write_manifest(folder: Path) -> None:
    """List every file of ``folder`` with its size and checksum."""
    files = {}
    for path in _listed(folder):
        if not path.is_file():
            raise ValueError(f"a record holds files only, not the folder {path.name}")
        files[path.name] = {"size": path.stat().st_size, "sha256": sha256(path)}
    text = json.dumps({"files": files}, indent=2, sort_keys=True)
    (folder / MANIFEST).write_text(text + "\n")


def problem(folder: Path) -> str | None:
    """Why ``folder`` is not a good record, in a few words; None when it proves itself."""
    if not (folder / MARKER).is_file():
        return "no completion marker (an interrupted write)"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        listed = manifest["files"]
        sizes = {name: int(entry["size"]) for name, entry in listed.items()}
        sums = {name: str(entry["sha256"]) for name, entry in listed.items()}
    except FileNotFoundError:
        return f"no {MANIFEST} (written before records were verified, or removed)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{MANIFEST} is unreadable"
    return _files_problem(folder, sizes, sums) or _content_problem(folder)


def _files_problem(folder: Path, sizes: dict[str, int], sums: dict[str, str]) -> str | None:
    present = {p.name for p in _listed(folder)}
    for name in sorted(set(sizes) | set(REQUIRED)):
        if name not in present:
            return f"{name} is missing"
    extra = sorted(present - set(sizes))
    if extra:
        return f"{extra[0]} is not in the manifest"
    for name in sorted(sizes):
        path = folder / name
        size = path.stat().st_size
        if size != sizes[name]:
            return f"{name} has {size} bytes, the manifest says {sizes[name]}"
        if sha256(path) != sums[name]:
            return f"{name} does not match its checksum"
    return None


def _content_problem(folder: Path) -> str | None:
    loaded = {}
    for name in REQUIRED:
        try:
            loaded[name] = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            return f"{name} is not valid JSON"
        if not isinstance(loaded[name], dict):
            return f"{name} does not hold a JSON object"
    recorded = loaded["summary.json"].get("config_hash")
    if recorded is None:
        return None
    try:
        config = RunConfig.from_dict(loaded["config.json"])
        actual = config.config_hash()
        if recorded != actual and recorded not in config.earlier_hashes():
            return f"config.json hashes to {actual}, the record was made for {recorded}"
    except (UserError, TypeError, ValueError) as err:
        return f"config.json is not a run configuration ({str(err).splitlines()[0][:80]})"
    if not config.expid and folder.name != recorded:
        return f"config.json hashes to {recorded}, not to the folder's name"
    return None

