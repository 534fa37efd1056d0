"""One file written whole or not at all: the bottom layer's single way to replace a file.

Record folders have their own staged writer (:mod:`prunelab.runs.atomic`); this is for single files beside
them (a data cache, an idx file, a fused group's kept cut), which a kill must leave either as they were or
complete, never half written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
