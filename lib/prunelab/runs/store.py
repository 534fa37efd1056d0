"""Results on disk: one folder per run, written atomically, read back as one tidy table.

Layout: ``<result_dir>/<experiment>/<expid or config hash>/`` holding ``config.json``, ``epochs.csv``,
``layers.csv``, ``env.json``, ``summary.json``, ``masks.pt``, ``model.pt``, a training run's
``mask_audit.csv`` (:mod:`prunelab.core.audit`; none in records made before it) and whatever else a run
adds, the manifest of their sizes and checksums and, written last, the completion marker ``COMPLETE``
(:mod:`prunelab.runs.integrity`). A record is assembled in a hidden stage beside its final place and
renamed into place only when complete (:mod:`prunelab.runs.atomic`), so a run killed at any moment
leaves a complete record or none, and the next write or lookup in that folder settles what it left.

Every read verifies: a record whose files do not match its manifest is never loaded, reused or listed as
a result; :func:`load_table` names it with the reason, and a rerun recomputes it.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core.choices import ABLATION_RULES, ablation_rules_matter
from ..core.train import resolve_device
from ..data.run_data import resolved_source
from ..errors import UserError
from ..precision.amp import amp_name, amp_settings
from .atomic import TMP_PREFIX, Writer, recover, write_record
from .checks import check_writable
from .config import RunConfig
from .integrity import MARKER, problem

# re-exported: the store is where records are, and where runs ask whether they can be written
__all__ = ["MARKER", "TMP_PREFIX", "Writer", "check_writable", "write_record"]


class InvalidRecord(ValueError):
    """A complete record whose files do not prove themselves (see :func:`prunelab.runs.integrity.problem`)."""


@dataclass
class RunRecord:
    """A complete run read back from disk; in ``summary`` a number not measured (null in the file) is NaN."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    env: dict[str, Any]

    @property
    def epochs(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "epochs.csv")

    @property
    def layers(self) -> pd.DataFrame:
        return read_layers(self.path)

    @property
    def mask_audit(self) -> pd.DataFrame:
        """The per-layer mask audit of a training run (:class:`FileNotFoundError` for a record made before it)."""
        return pd.read_csv(self.path / "mask_audit.csv")

    def state_dict(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)

    def masks(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / "masks.pt", map_location="cpu", weights_only=True)


def read_layers(folder: str | os.PathLike) -> pd.DataFrame:
    """The layer table of the record in ``folder`` (``layers.csv``: a row per parameter), its module paths as text:
    read as numbers, an ``nn.Sequential``'s paths ("1", "3") would match no parameter's path ("1.weight") or
    trace's module name, and a parameter of the network itself (no module: "") would be NaN."""
    return pd.read_csv(Path(folder) / "layers.csv", dtype={"module": str}).fillna({"module": ""})


def record_path(result_dir: str | os.PathLike, experiment: str, name: str) -> Path:
    return Path(result_dir) / experiment / name


def run_record_path(config: RunConfig) -> Path:
    """Where the record of the run ``config`` is, or will be."""
    return record_path(config.result_dir, config.experiment, config.record_name)


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def load_record(path: str | os.PathLike) -> RunRecord:
    """The verified record at ``path``; :class:`FileNotFoundError` when it is incomplete, :class:`InvalidRecord`
    when its files do not match its manifest."""
    path = Path(path)
    if not is_complete(path):
        raise FileNotFoundError(f"{path} holds no complete record")
    reason = problem(path)
    if reason is not None:
        raise InvalidRecord(f"{path}: {reason}")
    read = lambda name: json.loads((path / name).read_text())  # noqa: E731
    return RunRecord(path, read("config.json"), _nan_for_null(read("summary.json")), read("env.json"))


def valid_record(path: str | os.PathLike, log: Callable[[str], None] | None = None) -> RunRecord | None:
    """The verified record at ``path``, or None when there is none or it fails verification (said to ``log``)."""
    path = Path(path)
    recover(path.parent)  # a write killed midway is settled first
    if not is_complete(path):
        return None
    try:
        return load_record(path)
    except (InvalidRecord, OSError) as err:
        if log is not None:
            log(f"The record {err} fails verification; it is recomputed.")
        return None


def _record_spelled_before(config: RunConfig, log: Callable[[str], None] | None) -> RunRecord | None:
    """The record of ``config`` under the hash one of its int spellings had before a whole number in a float
    field hashed as the float (a grid file's ``compression: 1``), or None: such a run is not trained again."""
    for name in config.earlier_hashes():
        path = record_path(config.result_dir, config.experiment, name)
        if is_complete(path):
            return valid_record(path, log)
    return None


class RecordConflict(UserError):
    """The record under a run's name holds another run (another configuration, or another AMP dtype)."""


def usable_record(config: RunConfig, require: Iterable[str] = (),
                  log: Callable[[str], None] | None = None) -> RunRecord | None:
    """The one rule for "this configuration already has a record to reuse"; every caller asks here.

    Returns the record when it is complete, was made from this configuration (same hash, and for a registered
    pruner the same score function: two functions under one name and version never share a record), in the
    mixed-precision dtype this configuration would train in on this device, and is not outdated
    (:func:`_outdated`: e.g. a record made on a stand-in once ``--data-source auto`` finds the real set).
    Returns None when there is none, when it fails verification or is outdated (said to ``log``), or when
    ``config.force`` asks for a fresh one. Raises :class:`RecordConflict` when the name holds a different run.
    """
    if config.force:
        return None
    record = valid_record(run_record_path(config), log)
    if record is None and not config.expid:
        record = _record_spelled_before(config, log)
    if record is None:
        return None
    if RunConfig.from_dict(record.config).config_hash() != config.config_hash():  # verified: it hashes as recorded
        raise RecordConflict(f"{record.path} already holds a different run; pass --force to replace it, "
                             "or choose another --expid")
    made_by, here = record.config.get("pruner_origin"), config.to_dict().get("pruner_origin")
    if made_by is not None and here is not None and made_by != here:
        raise RecordConflict(f"{record.path} was made by pruner '{config.pruner}' from {made_by}, and that name and "
                             f"version now score with {here}; register it with another version, or pass --force")
    recorded = record.summary.get("amp_dtype")
    if config.quantization and config.amp_dtype is None and recorded is not None:
        here = _device_amp_name(config)
        if recorded != here:
            raise RecordConflict(f"{record.path} holds a {recorded} mixed-precision run, and this device would "
                                 f"train in {here}; pass --amp-dtype {recorded} to reuse it, --force to replace "
                                 "it, or another --expid")
    outdated = _outdated(config, record, require)
    if outdated is not None:
        if log is not None:
            log(f"{record.path.name}: {outdated}; computing it again")
        return None
    return record


def _outdated(config: RunConfig, record: RunRecord, require: Iterable[str]) -> str | None:
    """Why ``config``'s own record is to be computed again (a field it lacks, a stand-in where ``--data-source
    auto`` now finds other data on disk, an ablation rule since changed), or None."""
    missing = [name for name in require if name not in record.summary]
    if missing:
        return f"made before prunelab measured {', '.join(missing)}"
    made_on = record.summary.get("data_source")
    if config.data_source == "auto" and made_on not in (None, "real"):  # a real record stands if the data goes
        now = resolved_source(config.dataset, "auto", config.data_dir, download=False)
        if made_on != now:
            return f"made on {made_on} data, and --data-source auto now finds {now} data"
    if record.summary.get("ablation_rules", 1) < ABLATION_RULES and ablation_rules_matter(
            config.pruner, config.resolved_prune_epochs, config.shuffle, config.invert):
        return "made before --invert and --shuffle took their present rule (see docs/pruners.md)"
    return None


def _device_amp_name(config: RunConfig) -> str:
    """The dtype ``--quantization`` without ``--amp-dtype`` trains in on this machine."""
    return amp_name(amp_settings(resolve_device(config.gpu, config.no_cuda), True, None))


def json_writer(data: Any) -> Writer:
    """Writes ``data`` as strict JSON, so that jq, JavaScript and every other JSON reader take a record's files:
    a number not measured (NaN, as the spread of one timing repeat; or infinite) is written as null, and
    :func:`load_record` reads a summary's nulls back as NaN."""
    def write(path: Path) -> None:
        path.write_text(json.dumps(_null_for_nan(data), indent=2, sort_keys=True, default=str, allow_nan=False)
                        + "\n")
    return write


def _null_for_nan(value: Any) -> Any:
    """``value`` with every NaN or infinite number, nested in lists and dicts, as None (numpy's as float)."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _null_for_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_null_for_nan(item) for item in value]
    return value


def _nan_for_null(value: Any) -> Any:
    """``value`` with every None, nested in lists and dicts, as NaN: a summary's number not measured."""
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {key: _nan_for_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_for_null(item) for item in value]
    return value


def csv_writer(frame: pd.DataFrame) -> Writer:
    return lambda path: frame.to_csv(path, index=False)


def torch_writer(obj: Any) -> Writer:
    return lambda path: torch.save(obj, path)


def iter_records(result_dir: str | os.PathLike, invalid: dict[Path, str] | None = None, experiment: str = "*"):
    """Every complete, verified record under ``result_dir`` (of ``experiment``, or any), in a stable order.

    A record that fails verification raises :class:`InvalidRecord`, or when ``invalid`` is given, is skipped
    and entered there with the reason.
    """
    root = Path(result_dir)
    for marker in sorted(root.glob(f"{experiment}/*/{MARKER}")):
        if _hidden(marker.parent):
            continue
        try:
            yield load_record(marker.parent)
        except (OSError, ValueError) as err:
            if invalid is None:
                raise
            invalid[marker.parent] = str(err).removeprefix(f"{marker.parent}: ")


def incomplete_folders(result_dir: str | os.PathLike) -> list[Path]:
    """Run folders without a completion marker (a crashed writer, or one still running)."""
    root = Path(result_dir)
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not is_complete(p) and not _hidden(p))


def _hidden(folder: Path) -> bool:
    """Temporary, checkpoint and sweep-log folders start with a dot, at either level."""
    return folder.name.startswith(".") or folder.parent.name.startswith(".")


def load_table(result_dir: str | os.PathLike = "results") -> pd.DataFrame:
    """One row per complete record: its configuration, final metrics, densities, FLOPs and provenance.

    This is the table the notebooks read. Folders that hold no good record (a crashed writer, a record
    that fails verification) never make it fail: they are listed in ``table.attrs["incomplete"]``, those
    that fail verification also in ``table.attrs["invalid"]`` (path -> reason), and named in a warning.
    """
    rows, invalid = [], {}
    for record in iter_records(result_dir, invalid):
        row = {**record.config, **record.summary}
        row["record"] = record.path.name
        row["path"] = str(record.path)
        row["device"] = record.env.get("device")
        rows.append(row)
    table = pd.DataFrame(rows)
    incomplete = sorted(set(incomplete_folders(result_dir)) | set(invalid)) if Path(result_dir).exists() else []
    table.attrs["incomplete"] = [str(p) for p in incomplete]
    table.attrs["invalid"] = {str(p): reason for p, reason in invalid.items()}
    if incomplete:
        named = [p.name + (f" ({invalid[p]})" if p in invalid else "") for p in incomplete[:5]]
        warnings.warn(f"{len(incomplete)} folder(s) in {result_dir} hold no complete record: "
                      f"{', '.join(named)}{' ...' if len(incomplete) > 5 else ''}", stacklevel=2)
    return table
