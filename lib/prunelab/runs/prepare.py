"""What every kind of run does first: seed, device, data set facts, the initial model, the prune settings,
the data request, and the environment a record keeps; and a finished run's model rebuilt from its record.
Training and conservation runs share it, and every record made from a finished run (int8, sparse, AMP
timing) is made by :func:`derived_record`: reuse, provenance and the write here, only the measurement in
its own module."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.choices import ABLATION_RULES, ablation_rules_matter
from ..core.hardware import hardware_info
from ..core.layout import uses_channels_last
from ..core.pruners import PruneSettings, keep_count
from ..core.train import resolve_device
from ..data.catalog import DATASETS, DatasetInfo, dataset_info
from ..data.in_memory import Data, data_root, load_data
from ..data.run_data import DataRequest, RunData, run_data
from ..errors import UserError
from ..models.layers import apply_masks
from ..models.registry import build_model
from .checkpoint import RunCheckpoint
from .config import RunConfig
from .store import (
    MARKER,
    RunRecord,
    Writer,
    json_writer,
    load_record,
    record_path,
    usable_record,
    valid_record,
    write_record,
)


class RunLog:
    """A run's messages: each passed on to the caller's ``echo`` (print on the command line, nothing in a
    notebook) and kept for the record's ``log.txt``."""

    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.echo = echo
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)
        self.echo(message)

    def error(self, message: str) -> None:
        """An error the run outlives (its record is still written): kept for ``log.txt`` and said on stderr,
        which a terminal and a notebook's page both show."""
        self.lines.append(message)
        print(message, file=sys.stderr)

    def write(self, path: Path) -> None:
        path.write_text("".join(f"{line}\n" for line in self.lines))

    @contextlib.contextmanager
    def warnings(self) -> Iterator[None]:
        """Warnings raised meanwhile become log lines (and so lines of ``log.txt``), not stderr output."""
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, category, *_args, **_kw: self(
                f"warning ({category.__name__}): {message}")
            yield


def reused_record(config: RunConfig, log: Callable[[str], None]) -> RunRecord | None:
    """The stored record a run reuses instead of running (:func:`~prunelab.runs.store.usable_record`), said so.
    A checkpoint left beside it (a run killed after writing its record) is stale and goes."""
    existing = usable_record(config, log=log)
    if existing is not None:
        log(f"Reusing the complete record at {existing.path} (pass --force to recompute).")
        run_checkpoint(config, "").discard_unless_held()
    return existing


def run_checkpoint(config: RunConfig, data_source: str) -> RunCheckpoint:
    """The run's checkpoint, keyed by its configuration and the data source it really uses (``auto``
    resolved), so a run begun on a stand-in never resumes onto real data that appeared meanwhile, and, where
    the ablation rule changes its masks, by that rule: a run pruned under the old one starts again."""
    rule = (f":ablation-rules-{ABLATION_RULES}" if ablation_rules_matter(
        config.pruner, config.resolved_prune_epochs, config.shuffle, config.invert) else "")
    return RunCheckpoint(config.result_dir, config.experiment, config.record_name,
                         f"{config.config_hash()}:{data_source}{rule}", config.checkpoint_every)


def load_run_data(config: RunConfig, device: torch.device, channels_last: bool = False) -> RunData:
    """The run's data. When it cannot be had, the empty folders the attempt made in the data root (torchvision
    makes them before it finds nothing to download) are removed again: a refused run leaves nothing."""
    root = data_root(config.data_dir).absolute()
    # the root's highest folder that is not there yet: the attempt makes the root with its parents
    top = next((p for p in reversed((root, *root.parents)) if not p.exists()), None)
    before = set(root.iterdir()) if top is None else None
    try:
        return run_data(data_request(config), device, channels_last)
    except UserError:
        for made in [top] if top is not None else sorted(set(root.iterdir()) - before):
            _remove_empty_folders(made)
        raise


def settings_key(settings) -> str:
    """Six hex digits naming the settings (a dataclass) of a record made from a run: int8, sparse, AMP timing."""
    text = json.dumps(dataclasses.asdict(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def derived_path(record: RunRecord, experiment: str, settings) -> Path:
    """Where the ``experiment`` record made from ``record`` with ``settings`` is (or will be) written."""
    return record_path(record.path.parents[1], experiment, f"{record.path.name}-{settings_key(settings)}")


@dataclass(frozen=True)
class SourceRun:
    """A finished run made ready to be measured again: its record and configuration, the device the
    measurement runs on, the in-memory data the run used (the source it resolved to, so an ``auto`` run is
    measured on the same images), and its trained, pruned model on that device in eval mode."""

    record: RunRecord
    config: RunConfig
    device: torch.device
    data: Data
    model: torch.nn.Module

    @property
    def channels_last(self) -> bool:
        """Whether the run's batches and model were channels-last (:func:`uses_channels_last`)."""
        return uses_channels_last(self.model)

    def in_run_layout(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` (the run's, or a copy made from it) in the memory format the run itself used."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model


@dataclass(frozen=True)
class Measured:
    """What a derived record's measurement found: its summary fields and the files written beside them."""

    summary: dict[str, Any]
    files: dict[str, Writer] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class DerivedKind:
    """One kind of record made from a finished run. ``measure(source, settings, log)`` is all a kind does;
    the record lands under ``<result_dir>/<experiment>/`` with its settings in ``config.json`` under the
    experiment's name (``amp-timing``: ``amp_timing``). ``on_cpu``: measured on the CPU whatever device
    the run used. ``require``: summary fields a reusable record must hold (an older one lacking them is
    measured again)."""

    experiment: str
    measure: Callable[[SourceRun, Any, Callable[[str], None]], Measured]
    on_cpu: bool = False
    require: tuple[str, ...] = ()


def derived_record(record: RunRecord, kind: DerivedKind, settings, force: bool = False,
                   log: Callable[[str], None] = print) -> RunRecord:
    """The ``kind`` record of ``record`` with ``settings``: the stored one when it verifies, was made from
    this very completion of the source (a source recomputed with --force is a new source) and holds
    ``kind.require`` (unless ``force``); else measured now and written with the same provenance fields for
    every kind (:func:`provenance`) and the environment it was measured in."""
    final = derived_path(record, kind.experiment, settings)
    completed = (record.path / MARKER).stat().st_mtime_ns
    existing = None if force else valid_record(final, log)
    if (existing is not None and existing.summary.get("source_completed") == completed
            and all(name in existing.summary for name in kind.require)):
        return existing
    source = _source_run(record, kind)
    measured = kind.measure(source, settings, log)
    write_record(final, {
        "config.json": json_writer({**record.config, "experiment": kind.experiment,
                                    kind.experiment.replace("-", "_"): dataclasses.asdict(settings)}),
        "summary.json": json_writer({**measured.summary, **provenance(source, completed)}),
        "env.json": json_writer(environment(source.device, source.data.source)),
        **measured.files,
    })
    return load_record(final)


def provenance(source: SourceRun, completed: int) -> dict[str, Any]:
    """What every derived record says about where its numbers come from: the source record (its folder's
    name), its hash and completion time, the data and how much of its test set, the device and threads."""
    record, data = source.record, source.data
    return {"source_record": record.path.name, "source_hash": record.summary.get("config_hash"),
            "source_completed": completed, "stand_in": data.stand_in, "data_source": data.source,
            "test_examples": len(data.test), "device": source.device.type, "threads": torch.get_num_threads()}


def _source_run(record: RunRecord, kind: DerivedKind) -> SourceRun:
    """The device, data and model of ``record`` for a ``kind`` measurement. The image-folder sets are
    refused: derived records time whole in-memory test sets."""
    config = RunConfig.from_dict(record.config)
    if config.dataset not in DATASETS:
        raise UserError(f"{kind.experiment} records are made for the in-memory data sets ({', '.join(DATASETS)}), "
                        f"not {config.dataset}")
    device = torch.device("cpu") if kind.on_cpu else resolve_device(config.gpu, config.no_cuda)
    source = record.summary.get("data_source") or config.data_source
    data = load_data(config.dataset, source, root=config.data_dir, train_subset=config.train_subset,
                     test_subset=config.test_subset, seed=config.seed)
    return SourceRun(record, config, device, data, model_from_record(record, device))


def _remove_empty_folders(top: Path) -> None:
    for folder, _, _ in os.walk(top, topdown=False):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty, or not ours to remove


def prune_settings(config: RunConfig) -> PruneSettings:
    return PruneSettings(
        pruner=config.pruner, compression=config.compression, rounds=config.prune_epochs,
        schedule=config.compression_schedule, scope=config.mask_scope, prune_bias=config.prune_bias,
        prune_batchnorm=config.prune_batchnorm, prune_residual=config.prune_residual,
        reinitialize=config.reinitialize, shuffle=config.shuffle, invert=config.invert,
        train_mode=config.prune_train_mode)


def data_request(config: RunConfig) -> DataRequest:
    return DataRequest(
        dataset=config.dataset, source=config.data_source, train_subset=config.train_subset,
        test_subset=config.test_subset, seed=config.seed, train_batch_size=config.train_batch_size,
        test_batch_size=config.test_batch_size, prune_dataset_ratio=config.prune_dataset_ratio,
        prune_batch_size=config.prune_batch_size, workers=config.workers, root=config.data_dir)


def environment(device: torch.device, data_source: str) -> dict:
    return {**hardware_info(device), "data_source": data_source}


def prepare(config: RunConfig) -> tuple[torch.device, DatasetInfo, torch.nn.Module, PruneSettings]:
    """Seed, device, data set facts, the initial model and the prune settings, with an impossible
    compression refused now rather than after training (every kind of run starts here)."""
    torch.manual_seed(config.seed)
    device = resolve_device(config.gpu, config.no_cuda)
    info = dataset_info(config.dataset)
    model = build_model(config.model, config.model_class, info.input_shape, info.num_classes,
                        config.dense_classifier).to(device)
    settings = prune_settings(config)
    settings.validate()
    total = sum(t.mask.numel() for t in settings.targets(model))
    keep_count(total, config.compression)
    return device, info, model, settings


def model_from_record(record: RunRecord, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The trained, pruned model of a record, rebuilt from its configuration and weights, in eval mode."""
    config = RunConfig.from_dict(record.config)
    info = dataset_info(config.dataset)
    model = build_model(config.model, config.model_class, info.input_shape, info.num_classes,
                        config.dense_classifier)
    model.load_state_dict(record.state_dict())
    apply_masks(model)
    return model.to(device).eval()
