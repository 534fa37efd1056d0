"""The ``prunelab`` command lines that make a table's runs again, read from the records' own configurations.

Runs whose configurations differ only in the pruner (with its rounds), the compression, the seed and the
prune-train cycles share one command where they are the full product of the list flags (``--pruner-list``,
``--prune-epoch-list``, ``--compression-list``, ``--seed-list``, ``--level-list``): a command never asks for a
run the table lacks. What the hash leaves out (where and how loudly a run happens: ``--result-dir``,
``--verbose``, ...) is left out here too, and so is every flag at its default but the set-up's (dataset, model and
model class), which the user's own commands always name.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shlex
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..core.registry import pruner_names, pruner_rounds
from ..runs.config import NO_FLAG, ON, RUNTIME_FIELDS, SWITCH, RunConfig, flag_of
from ..runs.run_lists import RunLists

#: the column of :func:`~prunelab.workbook.grids.records_table` holding each record's configuration as written
CONFIG_COLUMN = "config"
#: a command's continuation lines are broken before this many characters
WIDTH = 90
#: the settings a command lists: one run per value (a pruner with its rounds, compression, seed, cycles)
DIMENSIONS = ("variant", "compression", "seed", "levels")
#: what a run's pruner decides beside its name: not a setting the group's runs share
_PER_RUN = {"pruner", "pruner_version", "prune_epochs", "compression", "seed", "levels"}
#: the experiments whose --prune-epoch-list is a list of rounds, not one per pruner of --pruner-list
_ROUNDS_APART = ("schedule-conservation",)

_CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
_LIST_FLAGS = {f.name: flag_of(f) for f in dataclasses.fields(RunLists)}
#: the parser's order of the flags (:func:`prunelab.runs.cli.build_parser`): the configuration's, then the lists'
_ORDER = [*_CONFIG_FIELDS, *_LIST_FLAGS]
#: how a continuation line begins
INDENT = "    "

Box = tuple[frozenset, ...]


def command_lines(table: pd.DataFrame) -> list[str]:
    """The fewest ``prunelab`` commands (a greedy split, exact) that make the runs of ``table`` again, each a
    string with `` \\`` continuation lines of about :data:`WIDTH` characters. ``table`` holds each record's
    configuration in :data:`CONFIG_COLUMN` (:func:`~prunelab.workbook.grids.records_table`'s: its other columns
    give the data a run resolved to, not the ``--data-source`` it was given)."""
    groups: dict[str, list[RunConfig]] = defaultdict(list)
    for config in _unique(RunConfig.from_dict(values) for values in table[CONFIG_COLUMN]):
        groups[_shared(config)].append(config)
    lines = []
    for configs in groups.values():
        base = configs[0]
        points = {_point(c) for c in configs}
        lines += [_wrap(_tokens(base, box)) for box in sorted(_fewest_boxes(points), key=_box_order)]
    return lines


def _unique(configs: Iterable[RunConfig]) -> list[RunConfig]:
    """Each run once (the same record may be listed twice), in the table's order."""
    seen: dict[str, RunConfig] = {}
    for config in configs:
        seen.setdefault(config.config_hash(), config)
    return list(seen.values())


def _rounds_apart(config: RunConfig) -> bool:
    return config.experiment in _ROUNDS_APART


def _shared(config: RunConfig) -> str:
    """What the runs of one command share: every hashed field but those the lists set (the rounds too, where the
    experiment's --prune-epoch-list does not pair them with the pruners), and whether it lists cycles at all (a
    run with none is a command without --level-list)."""
    values = {k: v for k, v in config.hashed_fields().items() if k not in _PER_RUN}
    values["cycles listed"] = config.levels is not None
    if _rounds_apart(config):
        values["prune_epochs"] = config.resolved_prune_epochs
    return json.dumps(values, sort_keys=True)


def _point(config: RunConfig) -> tuple:
    """A run's values of :data:`DIMENSIONS`; a pruner as (its place in the registry's order, name, rounds)."""
    names = pruner_names()
    place = names.index(config.pruner) if config.pruner in names else len(names)
    return (place, config.pruner, config.resolved_prune_epochs), config.compression, config.seed, config.levels


def _fewest_boxes(points: set[tuple]) -> list[Box]:
    """``points`` split into products of value sets, one per dimension, none holding a point outside ``points``:
    the fewest boxes of :func:`_factor` over every order of the dimensions (the first such order on a tie)."""
    best = None
    for order in itertools.permutations(range(len(DIMENSIONS))):
        boxes = _factor({tuple(p[d] for d in order) for p in points})
        if best is None or len(boxes) < len(best):
            back = [order.index(d) for d in range(len(order))]
            best = [tuple(box[k] for k in back) for box in boxes]
    return best


def _factor(points: set[tuple]) -> list[Box]:
    """Exact products covering ``points`` once: the points are grouped by the set of first values their rest
    takes, and each group's rests are split the same way."""
    if len(next(iter(points))) == 1:
        return [(frozenset(p[0] for p in points),)]
    firsts: dict[tuple, set] = defaultdict(set)
    for point in points:
        firsts[point[1:]].add(point[0])
    rests: dict[frozenset, set] = defaultdict(set)
    for rest, values in firsts.items():
        rests[frozenset(values)].add(rest)
    return [(values, *box) for values, group in rests.items() for box in _factor(group)]


def _box_order(box: Box) -> tuple:
    """Commands in the registry's order of their first pruner, then by compression, seed and cycles."""
    return tuple(sorted(_sortable(v) for v in values) for values in box)


def _sortable(value: Any) -> tuple:
    """A value that sorts beside its kind's others, None (no cycles) last."""
    return value is None, value


def _tokens(base: RunConfig, box: Box) -> list[list[str]]:
    """The command's words, one list per flag with its values, in the parser's order: the group's settings that
    differ from the defaults, then the box's pruners, compressions, seeds and cycles."""
    variants, compressions, seeds, levels = (sorted(values, key=_sortable) for values in box)
    flags: dict[str, list[str]] = {}
    for name, f in _CONFIG_FIELDS.items():
        if name not in RUNTIME_FIELDS and name not in _PER_RUN and f.metadata["style"] != NO_FLAG:
            flags.update(_field_flag(f, getattr(base, name), always=name in SETUP_FIELDS))
    flags.update(_variant_flags(base, [(pruner, rounds) for _, pruner, rounds in variants]))
    flags.update(_listed("compression", "compression_list", compressions))
    flags.update(_listed("seed", "seed_list", seeds))
    if levels != [None]:
        flags["level_list"] = [_LIST_FLAGS["level_list"], *map(_text, levels)]
    return [["prunelab"]] + [flags[name] for name in _ORDER if name in flags]


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


#: the fields that name a set-up, written even at their defaults, as the user's own commands name them
SETUP_FIELDS = ("dataset", "model", "model_class")


def _field_flag(f: dataclasses.Field, value: Any, always: bool = False) -> dict[str, list[str]]:
    """``{field: [flag, value...]}`` where ``value`` differs from the field's default (or ``always``), else
    nothing."""
    if value is None or (value == _default(f) and not always):
        return {}
    style, flag = f.metadata["style"], flag_of(f)
    if style == ON or (style == SWITCH and value is True):
        return {f.name: [flag]}
    if style == SWITCH:
        return {f.name: [flag, str(value)]}
    return {f.name: [flag, *map(_text, value if isinstance(value, list) else [value])]}


def _listed(name: str, list_name: str, values: list) -> dict[str, list[str]]:
    """One value as its own flag (left out at its default), more as the list flag."""
    if len(values) == 1:
        return _field_flag(_CONFIG_FIELDS[name], values[0])
    return {list_name: [_LIST_FLAGS[list_name], *map(_text, values)]}


def _variant_flags(base: RunConfig, variants: list[tuple[str, int]]) -> dict[str, list[str]]:
    """The pruners and their rounds: ``--pruner``, else ``--pruner-list``; the rounds as ``--prune-epochs`` where
    all runs score alike, else ``--prune-epoch-list`` (a count per listed pruner), left out only where every pruner
    scores once by default and here: the original tool's default is one round for every pruner, SynFlow's included,
    so a command that left SynFlow's 100 to prunelab's default would make other runs there."""
    pruners = [pruner for pruner, _ in variants]
    rounds = sorted({r for _, r in variants})
    flags = _listed("pruner", "pruner_list", pruners)
    if all(r == pruner_rounds(p) == 1 for p, r in variants):
        return flags
    if len(rounds) == 1 or _rounds_apart(base):
        return {**flags, **_field_flag(_CONFIG_FIELDS["prune_epochs"], rounds[0])}
    return {**flags, "prune_epoch_list": [_LIST_FLAGS["prune_epoch_list"], *(str(r) for _, r in variants)]}


def _text(value: Any) -> str:
    """A value as the command line takes it: a float in ``:g`` where that reads back the same, a word quoted
    for the shell where it needs to be."""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return shlex.quote(str(value))


def _wrap(flags: list[list[str]], width: int = WIDTH) -> str:
    """The words on lines of at most ``width`` characters, broken with `` \\`` before a flag that does not fit
    (between its values where they alone are too long for a line), continuation lines indented by four spaces."""
    lines, line = [], ""

    def add(unit: str) -> None:
        nonlocal line
        if line.strip() and len(line) + 1 + len(unit) + 2 > width:
            lines.append(line + " \\")
            line = INDENT[:-1]
        line = f"{line} {unit}" if line else unit

    for words in flags:
        whole = " ".join(words)
        if len(INDENT) + len(whole) + 2 <= width:
            add(whole)
        else:  # a flag keeps its first value; the others follow where they fit
            for unit in [" ".join(words[:2]), *words[2:]]:
                add(unit)
    return "\n".join([*lines, line])
