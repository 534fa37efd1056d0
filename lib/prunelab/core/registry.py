"""The pruners a run can choose: the five built in, and any registered by a notebook, a module or a package.

:func:`register_pruner` makes a score function a pruner everywhere: the run configuration and ``--pruner``,
sweeps, notebook parameters, and the workbook's tables, figures and findings (its label and colour, ordered
after the built-in pruners in the order of registration). The built-in pruners register through the same
call in :mod:`prunelab.core.pruners`.

An installed package offers a pruner through an entry point of the group :data:`ENTRY_POINT_GROUP`, named
like the pruner, whose value is the module that calls :func:`register_pruner` when imported::

    [project.entry-points."prunelab.pruners"]
    mypruner = "mypackage.mypruner"

A module of one's own, not packaged, is named in :data:`PLUGINS_ENV` (``PRUNELAB_PLUGINS=mylab.gradmag``,
comma-separated, importable from ``sys.path``): imported on the first lookup or listing of names (``--help``
too, so it pays the module's imports), in this process and in every worker or Slurm job it starts, which
inherit the environment.

Nothing else here imports torch or a plugin: names are listed from the built-in tuple, the registrations and
the entry points' names, so without that variable ``prunelab --help`` stays instant. A pruner's module (the
built-ins' included) is imported on the first lookup that needs its score function, label or colour.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..errors import UserError
from .choices import BUILT_IN_LABELS, DENSE_LABEL, PRUNERS, default_rounds

#: the entry-point group an installed package registers its pruners through
ENTRY_POINT_GROUP = "prunelab.pruners"
#: the environment variable naming modules to import for their pruners (comma-separated)
PLUGINS_ENV = "PRUNELAB_PLUGINS"
#: the module whose import registers the built-in pruners
BUILTIN_MODULE = "prunelab.core.pruners"
#: colours of registered pruners that name none, the first unused in turn (the built-ins' are tab10's first
#: five and its orange; the ProsPr plugin's is tab10's cyan, last here)
SPARE_COLOURS = ("#e377c2", "#bcbd22", "#8c564b", "#393b79", "#637939", "#8c6d31", "#843c39", "#17becf")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Pruner:
    """A registered pruner. ``score(model, targets, batches, loss_fn)`` returns a score tensor per target's
    name, shaped like its parameter; the highest scores are kept (see :mod:`prunelab.core.pruners`)."""

    name: str
    score: Callable
    label: str  # how tables, figures and findings name it
    colour: str  # its line and marker colour in the figures
    rounds: int  # scoring rounds when a run gives none
    version: str  # a change of results under one name needs a new version: it keys the records

    @property
    def origin(self) -> str:
        """Where the score function is defined, ``module:qualified.name``: recorded with every run."""
        return f"{self.score.__module__}:{self.score.__qualname__}"

    @property
    def importable(self) -> bool:
        """Whether another process finds the score function by its module and name (worker processes and
        Slurm jobs receive it that way): not for a function defined in ``__main__`` (a notebook, a script)
        or inside another function."""
        module = sys.modules.get(self.score.__module__)
        if self.score.__module__ == "__main__" or module is None:
            return False
        found = module
        for part in self.score.__qualname__.split("."):
            found = getattr(found, part, None)
        return found is self.score


def scores_of(pruner: Pruner, model, targets, batches, loss_fn) -> dict:
    """``pruner``'s scores for ``targets``, refused in one line (a :class:`UserError` naming the pruner and
    the layer) unless they are a real tensor shaped like each target's parameter, under its name, and under no
    other name: a transposed or summed score would otherwise rank the wrong weights without a word, and a
    misspelled name's score would be dropped. A registered function must also
    give finite scores (a NaN is never kept, so a layer of them would be pruned at random) and leave the
    model's weights as it found them, as the built-in ones do."""
    registered = not is_builtin(pruner.name)
    before = [p.detach().clone() for p in model.parameters()] if registered else []
    scores = pruner.score(model, targets, batches, loss_fn)
    _check_scores(pruner, scores, targets, finite=registered)
    if not all(((b == p) | (b.isnan() & p.isnan())).all() for b, p in zip(before, model.parameters())):
        raise UserError(f"pruner '{pruner.name}' changed the model's weights; a score function must leave them as "
                        "it found them (compute on a copy, or restore them)")
    return scores


def _check_scores(pruner: Pruner, scores, targets, finite: bool) -> None:
    if not isinstance(scores, Mapping):
        raise UserError(f"pruner '{pruner.name}' returned a {type(scores).__name__}, not a dict of a score tensor "
                        "per layer's name")
    for target in targets:
        score, shape = scores.get(target.name), tuple(target.param.shape)
        tensor = callable(getattr(score, "is_complex", None))  # a torch tensor (torch is not imported here)
        if not (tensor and score.shape == target.param.shape and not score.is_complex()):
            got = (f"a {score.dtype} tensor of shape {tuple(score.shape)}" if tensor
                   else "no score" if score is None else f"a {type(score).__name__}")
            raise UserError(f"pruner '{pruner.name}' returned {got} for layer {target.name}; a score is a real "
                            f"tensor shaped like the layer's weight, {shape}")
        if finite and not bool(score.isfinite().all()):
            bad = int((~score.isfinite()).sum())
            raise UserError(f"pruner '{pruner.name}' returned {bad} NaN or infinite scores for layer {target.name}; "
                            "a score must be a finite number")
    names = {t.name for t in targets}
    extra = next((name for name in scores if name not in names), None)
    if extra is not None:  # a misspelled layer's name: its scores would be dropped without a word
        raise UserError(f"pruner '{pruner.name}' returned a score for {extra!r}, which names no prunable weight of "
                        "the model; a score's key is its layer's name")


_REGISTERED: dict[str, Pruner] = {}


def register_pruner(name: str, score: Callable, *, label: str, colour: str | None = None, rounds: int = 1,
                    version: str = "1") -> Pruner:
    """Make ``score`` the pruner ``name`` everywhere; return its record.

    ``score(model, targets, batches, loss_fn)`` has the built-in scorers' signature. ``label`` names it in
    tables and figures, ``colour`` (any matplotlib colour; default: the next spare one) draws it,
    ``rounds`` is its scoring rounds when a run gives none. ``version`` enters the hash of every run with
    this pruner, with its name: change it whenever the function's results change, or the store reuses
    records made by the old function. Registering a name again with the same function (a notebook cell run
    twice) replaces it; a different function under a registered name needs a different version, and the
    five built-in names belong to :mod:`prunelab.core.pruners`.
    """
    _check_registration(name, score, label, colour, rounds, version)
    previous = _REGISTERED.get(name)
    origin = f"{score.__module__}:{score.__qualname__}"
    if previous is not None and previous.origin != origin and previous.version == version:
        raise UserError(f"pruner '{name}' is registered from {previous.origin} at version {version}; give "
                        f"{origin} another version (records are keyed by name and version)")
    owners = {**BUILT_IN_LABELS, **{p.name: p.label for p in _REGISTERED.values()}}  # built-ins' even unloaded
    taken = next((owner for owner, held in owners.items() if held == label and owner != name), None)
    if taken is not None:
        raise UserError(f"the label '{label}' already names pruner '{taken}'; choose another label")
    if colour is None:
        colour = previous.colour if previous is not None else _spare_colour()
    pruner = Pruner(name, score, label, colour, rounds, version)
    _REGISTERED[name] = pruner
    return pruner


def _check_registration(name, score, label, colour, rounds, version) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(f"a pruner's name is 1 to 32 lowercase letters, digits, _ or -, starting with a letter, "
                        f"not {name!r}")
    if name in PRUNERS and getattr(score, "__module__", None) != BUILTIN_MODULE:
        raise UserError(f"'{name}' is a built-in pruner; register yours under another name")
    if not inspect.isfunction(score):
        raise UserError(f"the score of pruner '{name}' must be a function (its module and name are recorded), "
                        f"not {type(score).__name__}")
    try:
        inspect.signature(score).bind(None, None, None, None)
    except TypeError:
        raise UserError(f"the score of pruner '{name}' must take (model, targets, batches, loss_fn)") from None
    _check_looks(name, label, colour)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise UserError(f"the rounds of pruner '{name}' must be a whole number of at least 1, not {rounds!r}")
    if not isinstance(version, str) or not version.strip():
        raise UserError(f"the version of pruner '{name}' must be a non-empty string such as '2', not {version!r}")


def _check_looks(name: str, label, colour) -> None:
    """How tables and figures will show the pruner: a one-line label, a colour matplotlib knows."""
    if not isinstance(label, str) or not label.strip():
        raise UserError(f"pruner '{name}' needs a label, the name tables and figures show")
    if "|" in label or not label.isprintable():  # a table's cell: a bar would split it, a newline end its row
        raise UserError(f"the label of pruner '{name}' must be one line without '|' (it fills table cells), "
                        f"not {label!r}")
    if label == DENSE_LABEL or any(label.startswith(f"{held} (") for held in BUILT_IN_LABELS.values()):
        raise UserError(f"the label '{label}' is one the workbook gives built-in runs (as \"SynFlow (100 rounds)\"); "
                        "choose another label")
    if colour is not None:
        from matplotlib.colors import is_color_like  # only when a colour is given: a plain import stays light

        if not is_color_like(colour):
            raise UserError(f"the colour of pruner '{name}' must be a matplotlib colour, not {colour!r}")


def _spare_colour() -> str:
    used = {p.colour for p in _REGISTERED.values()}
    return next((c for c in SPARE_COLOURS if c not in used), SPARE_COLOURS[len(_REGISTERED) % len(SPARE_COLOURS)])


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def import_plugin_modules() -> list[str]:
    """Import each module :data:`PLUGINS_ENV` names that is not imported yet; return a line for each that fails,
    naming it with its error. A failed module registers nothing (what it registered before failing, or its
    second function under one name, is undone), so the other modules' pruners stay usable and a run naming one
    of its pruners is refused as unknown, with these lines."""
    failures = []
    for module in filter(None, (name.strip() for name in os.environ.get(PLUGINS_ENV, "").split(","))):
        if module in sys.modules:
            continue
        before = dict(_REGISTERED)
        try:
            importlib.import_module(module)
        except Exception as err:  # noqa: BLE001 - the user's module: say which, in one line
            _REGISTERED.clear()
            _REGISTERED.update(before)
            failures.append(f"${PLUGINS_ENV} names the module '{module}', which failed to import: {_first_line(err)}")
    return failures


def _first_line(err: Exception) -> str:
    """A plugin's error in one line: its type, and the first line of its message where it has one."""
    message = str(err).splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def pruner_names() -> tuple[str, ...]:
    """Every name a run may choose, in table order: the built-ins, the registered pruners in the order they
    were registered (:data:`PLUGINS_ENV`'s modules imported first), then installed packages' pruners not
    loaded yet (by name; nothing is imported)."""
    import_plugin_modules()
    registered = [name for name in _REGISTERED if name not in PRUNERS]
    waiting = sorted(name for name in _entry_points() if name not in PRUNERS and name not in _REGISTERED)
    return (*PRUNERS, *registered, *waiting)


def is_builtin(name: str) -> bool:
    return name in PRUNERS


def check_pruner_name(name: str) -> None:
    """Raise :class:`UserError` listing every name unless ``name`` is a pruner (torch-free for the built-ins
    and the registered ones; :data:`PLUGINS_ENV`'s modules and an installed package's pruner are loaded)."""
    if name not in PRUNERS and find_pruner(name) is None:
        raise _unknown(name)


def get_pruner(name: str) -> Pruner:
    """The pruner ``name`` (its module imported if need be); :class:`UserError` listing the names if none."""
    pruner = find_pruner(name)
    if pruner is None:
        raise _unknown(name)
    return pruner


def _unknown(name: str) -> UserError:
    failures = import_plugin_modules()
    if failures:  # the name may be one of a failed module's pruners: say why that module has none
        return UserError(f"unknown pruner '{name}'; {'; '.join(failures)}; the pruners loaded: "
                         f"{', '.join(pruner_names())}")
    return UserError(f"unknown pruner '{name}'; choose one of: {', '.join(pruner_names())} (a pruner of your own: "
                     f"name its module in ${PLUGINS_ENV}, or give its package an entry point; docs/pruners.md)")


def find_pruner(name: str) -> Pruner | None:
    """The pruner ``name``, or None: registered ones at once, built-ins, :data:`PLUGINS_ENV`'s modules' and
    installed packages' pruners by importing the module that registers them."""
    if name not in _REGISTERED:
        if name in PRUNERS:
            importlib.import_module(BUILTIN_MODULE)
        else:
            import_plugin_modules()
            if name not in _REGISTERED:
                _load_entry_point(name)
    return _REGISTERED.get(name)


def _load_entry_point(name: str) -> None:
    entry = _entry_points().get(name)
    if entry is None:
        return
    try:
        entry.load()
    except Exception as err:  # noqa: BLE001 - a broken plugin is the user's to fix: say which, in one line
        raise UserError(f"the pruner '{name}' of entry point {entry.value} failed to load: "
                        f"{_first_line(err)}") from err
    if name not in _REGISTERED:
        raise UserError(f"entry point '{name}' = {entry.value} registered no pruner named '{name}'")


def registered_pruners() -> list[Pruner]:
    """Every pruner loaded in this process, in table order (the built-ins first)."""
    importlib.import_module(BUILTIN_MODULE)
    return [_REGISTERED[name] for name in PRUNERS] + [p for n, p in _REGISTERED.items() if n not in PRUNERS]


def pruner_rounds(name: str) -> int:
    """Scoring rounds when a run gives none: the built-ins' from :mod:`prunelab.core.choices` (torch-free),
    a registered pruner's its own, 1 for an unknown name."""
    if name in PRUNERS:
        return default_rounds(name)
    pruner = find_pruner(name)
    return pruner.rounds if pruner is not None else 1
