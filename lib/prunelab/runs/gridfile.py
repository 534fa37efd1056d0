"""Grid files read and checked against their schema before a single run is made (the format is in
:mod:`prunelab.runs.sweep`).

Every mistake is one line naming the key and what it should be: a file that is not UTF-8 YAML, an empty
file, a top level that is not a mapping, an unknown section or setting, a value of the wrong type, a
malformed expid template, or a grid of more than :data:`MAX_RUNS` runs (counted without expanding it).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import string
import typing
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import UserError
from ..files import read_yaml_file
from .checks import Range, check_type, describe_value, read_as, read_setting
from .config import FIELD_TYPES, NO_FLAG, RunConfig, flag_of, refuse_shared_records
from .run_lists import LIST_FIELDS

EXECUTORS = ("local", "processes", "slurm")
#: the most runs one grid file may ask for: far more than any sweep here, far fewer than exhaust memory
MAX_RUNS = 10_000
#: the largest grid file read (a grid is a few lines; a bigger file is a mistake)
MAX_BYTES = 1 << 20
WORKERS = Range(1, 1024)
SECTIONS: dict[str, Any] = {"base": dict, "grid": dict, "overrides": list, "expid": str, "executor": str,
                            "workers": int, "slurm": dict}


@dataclass
class SlurmOptions:
    partition: str | None = None
    time: int = 60  # minutes per task: a run, or a group of runs that may train fused
    gpus: int = 0
    cpus: int = 2
    mem_gb: float | None = None
    parallelism: int = 64  # array tasks running at once
    sbatch: dict[str, Any] = field(default_factory=dict)  # any further sbatch option

    @classmethod
    def from_dict(cls, values: dict | None) -> SlurmOptions:
        given = values or {}
        values = {str(k).replace("-", "_"): v for k, v in given.items()}
        if len(values) < len(given):
            raise UserError("a slurm option is given twice in the grid file (with dashes and with underscores)")
        hints = typing.get_type_hints(cls)
        unknown = set(values) - set(hints)
        if unknown:
            raise UserError(f"unknown slurm option(s) in the grid file: {', '.join(map(_shown, sorted(unknown)))}")
        for name, value in values.items():
            values[name] = read_as(value, hints[name])
            check_type(f"slurm.{name}", values[name], hints[name])
        return cls(**values).check()

    def check(self) -> SlurmOptions:
        for name, bounds in SLURM_BOUNDS.items():
            value = getattr(self, name)
            if value is not None:
                bounds.check(f"slurm {name}", value)
        return self


SLURM_BOUNDS = {"time": Range(1, 10**6), "gpus": Range(0, 1024), "cpus": Range(1, 4096),
                "parallelism": Range(1, 10**5), "mem_gb": Range(0, low_open=True)}


@dataclass
class Executor:
    """Where a sweep computes the runs it lacks: ``local`` (this process), ``processes`` (``workers`` spawned
    processes) or ``slurm`` (an array job, collected here, or with ``wait`` false submitted and left to land)."""

    kind: str = "local"
    workers: int = 1
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    wait: bool = True

    @property
    def waits(self) -> bool:
        """Whether a sweep waits for its runs to end: every executor does but Slurm with ``wait`` false."""
        return self.wait or self.kind != "slurm"

    def check(self) -> Executor:
        """Itself, once its kind and options are known good (again after the command line has changed them)."""
        if self.kind not in EXECUTORS:
            raise UserError(f"unknown executor '{self.kind}'; choose one of: {', '.join(EXECUTORS)}")
        WORKERS.check("workers", self.workers)
        self.slurm.check()
        return self


@dataclass
class Grid:
    configs: list[RunConfig]
    executor: Executor = field(default_factory=Executor)


def _name(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise UserError(f"{where}: keys must be setting names, not {describe_value(key)}")
    if not key.isprintable():
        raise UserError(f"{where}: keys must be setting names, not {_shown(key)}")
    return key.replace("-", "_")


def _shown(key: Any) -> str:
    """A key as an error message shows it: as written, or quoted with escapes where it has a line break or
    another unprintable character (the message stays one line)."""
    text = str(key)
    return text if text.isprintable() else repr(text)


#: a setting spelled as its command-line flag where that differs from the field (``data: DIR``, as ``--data DIR``)
FLAG_SPELLINGS = {flag_of(f).removeprefix("--").replace("-", "_"): f.name for f in fields(RunConfig)
                  if f.metadata["flag"] and f.metadata["style"] != NO_FLAG}


def _unknown(key: Any, name: str, where: str) -> UserError:
    """The refusal of an unknown setting; a command line's list flag (``seed-list``) is pointed to the grid."""
    axis = LIST_FIELDS.get(name)
    if axis is not None:
        return UserError(f"{where}.{key}: a grid file lists a setting's values under grid (grid: {{{axis}: "
                         "[...]}), one run each")
    return UserError(f"{where}.{key}: unknown setting; see prunelab --help for the settings")


def _named(values: Any, where: str) -> list[tuple[str, str, Any]]:
    """The entries of the mapping ``values``, each as (key as written, the field it sets, value), every key a
    known setting given once (``weight-decay`` and ``weight_decay`` are one)."""
    check_type(where, values, dict)
    named: dict[str, tuple[str, str, Any]] = {}
    for key, value in values.items():
        name = _name(key, where)
        name = FLAG_SPELLINGS.get(name, name)
        if name not in FIELD_TYPES:
            raise _unknown(key, name, where)
        if name in named:
            raise UserError(f"{where}.{key}: the setting {name} is given twice")
        named[name] = (key, name, value)
    return list(named.values())


def _settings(values: Any, where: str) -> dict[str, Any]:
    """A mapping of settings, each checked against its field's type."""
    return {name: read_setting(f"{where}.{key}", name, value, FIELD_TYPES[name])
            for key, name, value in _named(values, where)}


def _grid_axes(values: Any) -> dict[str, list]:
    """The grid section: each setting's non-empty list of values, each of the field's type and listed once."""
    axes = {}
    for key, name, value in _named(values, "grid"):
        if not isinstance(value, list) or not value:
            raise UserError(f"grid entry '{key}' must be a non-empty list")
        value = [read_setting(f"grid.{key}[{i}]", name, item, FIELD_TYPES[name]) for i, item in enumerate(value)]
        numbers = [float(item) if FIELD_TYPES[name] is float else item for item in value]
        if len({json.dumps(item) for item in numbers}) < len(numbers):
            raise UserError(f"grid.{key} lists one value twice (1 and 1.0 are one); list each once")
        axes[name] = value
    return axes


def _overrides(rules: Any) -> list[tuple[dict, dict]]:
    check_type("overrides", rules, list)
    checked = []
    for i, rule in enumerate(rules):
        where = f"overrides[{i}]"
        check_type(where, rule, dict)
        unknown = set(rule) - {"when", "set"}
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(sorted(map(_shown, unknown)))}; use when and set")
        checked.append((_settings(rule.get("when", {}), f"{where}.when"), _settings(rule.get("set", {}),
                                                                                    f"{where}.set")))
    return checked


def check_template(expid: str) -> None:
    """An expid template names settings only (``{pruner}``, ``{compression:g}``), each in braces."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(expid) if name is not None]
    except ValueError as err:
        raise UserError(f"expid: the template {ascii(expid)} is malformed ({err})") from None
    for name in fields:
        if name not in FIELD_TYPES:
            raise UserError(f"expid: the template names {{{name}}}, which is not a setting; use names such as "
                            "{pruner} or {post_epochs}")


def _format(expid: str, values: dict) -> str:
    try:
        return expid.format(**values)
    except (KeyError, ValueError, IndexError, AttributeError) as err:
        raise UserError(f"expid: the template {ascii(expid)} cannot be filled in: {err}") from None


def run_count(grid: dict[str, list]) -> int:
    """How many runs ``grid`` makes, without making them."""
    return math.prod(len(values) for values in grid.values())


def expand(base: dict, grid: dict | None = None, overrides: list[dict] | None = None,
           expid: str | None = None) -> list[RunConfig]:
    """Every combination of ``grid`` on top of ``base``, then matching ``overrides``; each checked and validated."""
    base = _settings(base or {}, "base")
    grid = _grid_axes(grid or {})
    rules = _overrides(overrides or [])
    if expid is not None:
        check_type("expid", expid, str)
        check_template(expid)
    count = run_count(grid)
    if count > MAX_RUNS:
        sizes = " x ".join(str(len(v)) for v in grid.values())
        raise UserError(f"the grid makes {count:,} runs ({sizes}), more than the {MAX_RUNS:,} one sweep takes; "
                        "split it into several grid files")
    configs, matched = [], set()
    for combo in itertools.product(*grid.values()):
        values = {**base, **dict(zip(grid, combo))}
        for i, (when, changes) in enumerate(rules):
            if all(values.get(k) == v for k, v in when.items()):
                values.update(changes)
                matched.add(i)
        if expid:
            values["expid"] = _format(expid, values)
        configs.append(RunConfig.from_dict(values).validate())
    for i in sorted(set(range(len(rules))) - matched):  # a misspelt value would leave its runs as they were
        when = ", ".join(f"{_shown(k)}: {_shown(v)}" for k, v in rules[i][0].items())
        raise UserError(f"overrides[{i}].when ({when}) matches no run of the grid; give its settings as base or "
                        "grid does")
    refuse_shared_records(configs, "the grid gives two runs the same record name: a value listed twice (1 and 1.0 "
                          "are one), or an expid template that does not tell them apart")
    return configs


def read_grid_file(path: str | os.PathLike) -> dict:
    """The grid file as a mapping of sections: UTF-8 YAML, not empty, at most :data:`MAX_BYTES`."""
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    if size > MAX_BYTES:
        raise UserError(f"the grid file {path} is {size:,} bytes; a grid file is at most {MAX_BYTES:,}")
    spec = read_yaml_file(path, "grid file")
    if spec is None:
        raise UserError(f"the grid file {path} is empty; give at least a base or a grid section")
    if not isinstance(spec, dict):
        raise UserError(f"the grid file {path} must be a mapping of sections ({', '.join(SECTIONS)}), "
                        f"not {describe_value(spec)}")
    return spec


def load_grid(path: str | os.PathLike) -> Grid:
    spec = read_grid_file(path)
    unknown = [str(k) for k in spec if k not in SECTIONS]
    if unknown:
        raise UserError(f"unknown section(s) in the grid file: {', '.join(sorted(unknown))}")
    if "base" not in spec and "grid" not in spec:
        raise UserError(f"the grid file {path} names no runs; give at least a base or a grid section")
    for name, kind in SECTIONS.items():
        if name in spec:
            check_type(name, spec[name], kind)
    configs = expand(spec.get("base"), spec.get("grid"), spec.get("overrides"), spec.get("expid"))
    slurm = SlurmOptions.from_dict(spec.get("slurm"))
    return Grid(configs, Executor(spec.get("executor", "local"), spec.get("workers", 1), slurm).check())
