"""The original tool's list flags (``--pruner-list``, ``--compression-list``, ...): every combination of their
values is one run, each a :class:`~prunelab.runs.config.RunConfig` with its own record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.registry import pruner_names
from ..errors import UserError
from .config import FIXED_PRUNERS, LIST, RunConfig, flag_of, option, refuse_shared_records

#: each list flag's field and the run setting its values set, one run each
LIST_FIELDS = {"pruner_list": "pruner", "prune_epoch_list": "prune_epochs", "compression_list": "compression",
               "level_list": "levels", "seed_list": "seed"}


@dataclass
class RunLists:
    """The original's list flags: every combination of their values is one run with its own record."""

    pruner_list: list[str] = option([], "run every pruner in the list (one record each)", choices=pruner_names,
                                    style=LIST, default_text="")
    prune_epoch_list: list[int] = option([], "rounds for each pruner in --pruner-list", style=LIST, default_text="")
    compression_list: list[float] = option([], "run every compression in the list (one record each)", style=LIST,
                                           default_text="")
    level_list: list[int] = option([], "prune-train cycles (multishot) or magnitude rounds (imp-conservation)",
                                   style=LIST, default_text="")
    seed_list: list[int] = option([], "run every seed in the list (one record each; not in the original)",
                                  style=LIST, default_text="")

    def configs(self, base: RunConfig) -> list[RunConfig]:
        """One configuration per run the lists ask for on top of ``base``, each its own record (the original
        ignored them in single-shot; here they are honoured, and :meth:`RunConfig.validate` refuses a run
        they make that means nothing, such as a level for single-shot):

        * ``--pruner-list`` (with ``--prune-epoch-list``: rounds per pruner) x ``--compression-list`` x
          ``--level-list`` x ``--seed-list``; an experiment of :data:`FIXED_PRUNERS` scores with its own pruner when
          ``--pruner`` is left at its default;
        * schedule-conservation: ``--prune-epoch-list`` is SynFlow's round counts, each a run.
        """
        self._check_bounds()
        self._check_repeats(paired=base.experiment != "schedule-conservation")
        fixed = FIXED_PRUNERS.get(base.experiment)
        pruners = self.pruner_list or [fixed if fixed and base.pruner == RunConfig.pruner else base.pruner]
        if base.experiment == "schedule-conservation":
            pairs = [(p, r) for p in pruners for r in (self.prune_epoch_list or [base.prune_epochs])]
        else:
            if self.prune_epoch_list and len(self.prune_epoch_list) != len(self.pruner_list):
                raise UserError("--prune-epoch-list needs one round count for each pruner in --pruner-list")
            pairs = list(zip(pruners, self.prune_epoch_list or [base.prune_epochs] * len(pruners)))
        listed = any(getattr(self, f.name) for f in dataclasses.fields(self))
        configs = []
        for seed in self.seed_list or [base.seed]:
            for compression in self.compression_list or [base.compression]:
                for pruner, rounds in pairs:
                    for level in self.level_list or [None]:
                        parts = [pruner, f"{compression:g}"]
                        parts += [f"r{rounds}"] if self.prune_epoch_list else []  # one pruner, two counts
                        parts += [f"L{level}"] if level is not None else []
                        parts += [f"s{seed}"] if self.seed_list else []
                        expid = "-".join([base.expid, *parts]) if base.expid and listed else base.expid
                        configs.append(base.replace(pruner=pruner, prune_epochs=rounds, compression=compression,
                                                    levels=level, seed=seed, expid=expid))
        refuse_shared_records(configs, "the lists give two runs the same record: a value is listed twice")
        return configs

    def _check_repeats(self, paired: bool) -> None:
        """Refuse a value listed twice (two runs of one record), naming it and its flag; where the rounds pair with
        the pruners (``paired``), a pruner listed twice with two round counts is two runs."""
        lists = {flag_of(f): getattr(self, f.name) for f in dataclasses.fields(self)}
        if paired and self.prune_epoch_list:
            del lists["--pruner-list"], lists["--prune-epoch-list"]
            lists["--pruner-list with --prune-epoch-list"] = [
                f"the pair {p} {r}" for p, r in zip(self.pruner_list, self.prune_epoch_list)]
        for flag, values in lists.items():
            repeated = [v for i, v in enumerate(values) if v in values[:i]]
            if repeated:
                shown = f"{repeated[0]:g}" if isinstance(repeated[0], float) else repeated[0]
                raise UserError(f"{flag} lists {shown} twice; each value is a run with a record of its own")

    def _check_bounds(self) -> None:
        """Each listed value within the bounds of the field it sets, named by its list's flag (``--seed-list``)."""
        settings = {f.name: f for f in dataclasses.fields(RunConfig)}
        for listed in dataclasses.fields(self):
            bounds = settings[LIST_FIELDS[listed.name]].metadata["bounds"]
            for value in getattr(self, listed.name) if bounds is not None else []:
                bounds.check(flag_of(listed), value)
