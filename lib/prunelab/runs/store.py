"""Results on disk: one folder per run, written atomically, read back as one tidy table.

Layout: ``<result_dir>/<experiment>/<expid or config hash>/`` holding ``config.json``, ``epochs.csv``,
``layers.csv``, ``env.json``, ``summary.json``, ``masks.pt``, ``model.pt`` and, written last, the
completion marker ``COMPLETE``. A record is assembled in a hidden temporary folder beside its final
place and renamed into place only when every file is written, so a run killed at any moment leaves a
complete record or none (at worst a hidden ``.tmp-*`` folder, which readers ignore).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..core.train import resolve_device
from ..errors import UserError
from ..precision.amp import amp_name, amp_settings
from .config import RunConfig

MARKER = "COMPLETE"
TMP_PREFIX = ".tmp-"


@dataclass
class RunRecord:
    """A complete run read back from disk."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    env: dict[str, Any]

    @property
    def epochs(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "epochs.csv")

    @property
    def layers(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "layers.csv")

    def state_dict(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)

    def masks(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / "masks.pt", map_location="cpu", weights_only=True)


def record_path(result_dir: str | os.PathLike, experiment: str, name: str) -> Path:
    return Path(result_dir) / experiment / name


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def load_record(path: str | os.PathLike) -> RunRecord:
    path = Path(path)
    if not is_complete(path):
        raise FileNotFoundError(f"{path} holds no complete record")
    read = lambda name: json.loads((path / name).read_text())  # noqa: E731
    return RunRecord(path, read("config.json"), read("summary.json"), read("env.json"))


def find_record(result_dir, experiment: str, name: str) -> RunRecord | None:
    path = record_path(result_dir, experiment, name)
    return load_record(path) if is_complete(path) else None


class RecordConflict(UserError):
    """The record under a run's name holds another run (another configuration, or another AMP dtype)."""


def usable_record(config: RunConfig, require: Iterable[str] = ()) -> RunRecord | None:
    """The one rule for "this configuration already has a record to reuse"; every caller asks here.

    Returns the record when it is complete, was made from this configuration (same hash), in the
    mixed-precision dtype this configuration would train in on this device, and holds every summary
    field in ``require`` (a record made before prunelab measured something lacks it). Returns None when
    there is none, when ``config.force`` asks for a fresh one, or when a required field is missing.
    Raises :class:`RecordConflict` when the name holds a different run.
    """
    record = find_record(config.result_dir, config.experiment, config.record_name)
    if record is None or config.force:
        return None
    if record.summary.get("config_hash") != config.config_hash():
        raise RecordConflict(f"{record.path} already holds a different run; pass --force to replace it, "
                             "or choose another --expid.")
    recorded = record.summary.get("amp_dtype")
    if config.quantization and config.amp_dtype is None and recorded is not None:
        here = _device_amp_name(config)
        if recorded != here:
            raise RecordConflict(f"{record.path} holds a {recorded} mixed-precision run, and this device would "
                                 f"train in {here}; pass --amp-dtype {recorded} to reuse it, --force to replace "
                                 "it, or another --expid.")
    if any(name not in record.summary for name in require):
        return None
    return record


def _device_amp_name(config: RunConfig) -> str:
    """The dtype ``--quantization`` without ``--amp-dtype`` trains in on this machine."""
    return amp_name(amp_settings(resolve_device(config.gpu, config.no_cuda), True, None))


def check_writable(result_dir: str | os.PathLike) -> None:
    """Raise :class:`UserError` unless records can be written under ``result_dir`` (creates nothing new
    beyond the folder itself)."""
    path = Path(result_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UserError(f"cannot write results to {path}: {err.strerror or err}.") from None


Writer = Callable[[Path], None]


def write_record(final: Path, files: dict[str, Writer]) -> Path:
    """Write ``files`` (name -> function writing that file) as one record at ``final``, atomically.

    An existing record at ``final`` is replaced only after the new one is complete.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, writer in files.items():
            writer(tmp / name)
        _fsync_dir_files(tmp)
        (tmp / MARKER).write_text("complete\n")
        if final.exists():
            old = final.parent / f"{TMP_PREFIX}{final.name}-old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fsync_dir_files(folder: Path) -> None:
    for item in folder.iterdir():
        with open(item, "rb") as handle:
            os.fsync(handle.fileno())


def json_writer(data: Any) -> Writer:
    def write(path: Path) -> None:
        path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return write


def csv_writer(frame: pd.DataFrame) -> Writer:
    return lambda path: frame.to_csv(path, index=False)


def torch_writer(obj: Any) -> Writer:
    return lambda path: torch.save(obj, path)


def iter_records(result_dir: str | os.PathLike, unreadable: list[Path] | None = None):
    """Every complete record under ``result_dir`` (any experiment), in a stable order.

    A folder whose files cannot be read is skipped and, when ``unreadable`` is given, appended to it.
    """
    root = Path(result_dir)
    for marker in sorted(root.glob(f"*/*/{MARKER}")):
        if _hidden(marker.parent):
            continue
        try:
            yield load_record(marker.parent)
        except (OSError, ValueError) as err:
            if unreadable is None:
                raise
            unreadable.append(marker.parent)
            del err


def incomplete_folders(result_dir: str | os.PathLike) -> list[Path]:
    """Run folders without a completion marker (a crashed writer, or one still running)."""
    root = Path(result_dir)
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not is_complete(p) and not _hidden(p))


def _hidden(folder: Path) -> bool:
    """Temporary, checkpoint and sweep-log folders start with a dot, at either level."""
    return folder.name.startswith(".") or folder.parent.name.startswith(".")


def load_table(result_dir: str | os.PathLike = "results") -> pd.DataFrame:
    """One row per complete record: its configuration, final metrics, densities, FLOPs and provenance.

    This is the table the notebooks read. Folders that hold no complete record (a run in progress, a
    crashed writer, an unreadable file) never make it fail: they are listed in
    ``table.attrs["incomplete"]`` and named in a warning.
    """
    rows, unreadable = [], []
    for record in iter_records(result_dir, unreadable):
        row = {**record.config, **record.summary}
        row["record"] = record.path.name
        row["path"] = str(record.path)
        row["device"] = record.env.get("device")
        rows.append(row)
    table = pd.DataFrame(rows)
    incomplete = sorted(set(incomplete_folders(result_dir)) | set(unreadable)) if Path(result_dir).exists() else []
    table.attrs["incomplete"] = [str(p) for p in incomplete]
    if incomplete:
        warnings.warn(f"{len(incomplete)} folder(s) in {result_dir} hold no complete record: "
                      f"{', '.join(p.name for p in incomplete[:5])}{' ...' if len(incomplete) > 5 else ''}",
                      stacklevel=2)
    return table
