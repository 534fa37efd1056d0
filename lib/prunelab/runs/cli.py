"""``prunelab``: the original ``main.py`` flags, same names, defaults and meanings, over config + experiment.

Bad input ends in one line on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
import warnings
from pathlib import Path

from ..core.registry import check_pruner_name, import_plugin_modules, pruner_names
from ..errors import UserError
from .config import LIST, NO_FLAG, ON, SWITCH, RunConfig, flag_of
from .gridfile import EXECUTORS
from .run_lists import LIST_FIELDS, RunLists

BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_bool(text: str) -> bool:
    """The original declares these flags ``type=bool``, so ``--prune-bias False`` meant True there.
    Here ``--flag``, ``--flag True`` and ``--flag False`` all mean what they say."""
    try:
        return BOOL_WORDS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected True or False, not {text!r}") from None


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit code 2, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


#: the subcommands, a line each at the end of ``prunelab --help`` (each has its own --help)
SUBCOMMAND_LINES = """subcommands (each with its own --help):
  prunelab sweep GRID         run a grid of runs here, in local processes or on Slurm
  prunelab verify RESULT_DIR  check every record of a result store against its manifest
  prunelab pruners            list the pruners a run may choose, and plugin modules that failed to import"""


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from the fields of :class:`RunConfig` and :class:`RunLists`."""
    parser = OneLineParser(prog="prunelab", description="Pruning at initialization: the original tool's flags.",
                           epilog=SUBCOMMAND_LINES, formatter_class=argparse.RawDescriptionHelpFormatter)
    for cls in (RunConfig, RunLists):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.metadata["style"] != NO_FLAG:
                parser.add_argument(flag_of(f), dest=f.name, **_argument(f, hints[f.name]))
    return parser


def _argument(f: dataclasses.Field, hint) -> dict:
    """``add_argument`` keywords for one field: its type, spelling, default, choices and help."""
    meta = f.metadata
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    shown = meta["default_text"] if meta["default_text"] is not None else default
    help_text = meta["help"] + (f" (default: {shown})" if shown != "" else "")
    style = meta["style"]
    if style == ON:
        return {"action": "store_true", "help": meta["help"]}
    if style == SWITCH:
        return {"type": parse_bool, "nargs": "?", "const": True, "default": default, "help": help_text}
    # int | None -> int; list[float] -> float; str -> str
    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
    choices = meta["choices"]
    if callable(choices):
        choices = choices()
    if meta["choices"] is pruner_names:  # a $PRUNELAB_PLUGINS module that failed: said, its pruners not choices
        help_text += "".join(f" ({line})" for line in import_plugin_modules()).replace("%", "%%")
    keywords = {"default": default, "help": help_text, "choices": choices}
    if kind is not str:
        keywords["type"] = kind
    if meta["choices"] is pruner_names:  # refused with the library's line, which says how to add one's own
        keywords["type"] = _pruner_name
    if style == LIST:  # a list of runs given no value would run the one-value flag's default without a word
        keywords["nargs"] = "+" if f.name in LIST_FIELDS else "*"
    return keywords


def _pruner_name(name: str) -> str:
    try:
        check_pruner_name(name)
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


#: each list flag and the one-value flag it stands in for (levels has none): given both, which should win is a
#: guess, so neither does
STANDS_IN_FOR = {listed: single for listed, single in LIST_FIELDS.items()
                 if next(f for f in dataclasses.fields(RunConfig) if f.name == single).metadata["style"] != NO_FLAG}


def refuse_both_forms(argv: list[str], args: argparse.Namespace) -> None:
    """Refuse a list flag given beside the one-value flag it stands in for (``--seed-list 1 2 --seed 5``)."""
    unset = object()  # every default, so what differs from it argv named
    quiet = build_parser()
    quiet.set_defaults(**dict.fromkeys(vars(args), unset))
    named = {name for name, value in vars(quiet.parse_args(argv)).items() if value is not unset}
    fields = {f.name: f for cls in (RunConfig, RunLists) for f in dataclasses.fields(cls)}
    for listed, single in STANDS_IN_FOR.items():
        if getattr(args, listed) and single in named:
            raise UserError(f"{flag_of(fields[single])} and {flag_of(fields[listed])} were both given; give one of "
                            "them")


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """One configuration per run the command line asks for (:meth:`~prunelab.runs.run_lists.RunLists.configs`);
    every check is the configuration's own, made when the caller validates them."""
    values = vars(args)
    lists = RunLists(**{name: values[name] for name in LIST_FIELDS})
    return lists.configs(RunConfig.from_dict({k: v for k, v in values.items() if k not in LIST_FIELDS}))


def print_runs(configs: list[RunConfig], records: dict, failures: dict[str, BaseException]) -> None:
    """A line per run of a list: its top-1, why it failed, or that a failure before it stopped the command."""
    from .sweep_lines import describe, error_line, finished_line

    failed = f", {len(failures)} failed" if failures else ""
    left = sum(c.record_name not in records and c.record_name not in failures for c in configs)
    print(f"{len(configs)} runs{failed}{f', {left} not run' if left else ''}:")
    for config in configs:
        name = config.record_name
        if name in records:
            print(f"  {finished_line(config, records[name].summary)}")
        else:
            why = f"FAILED: {error_line(failures[name])}" if name in failures else "not run (a run above failed)"
            print(f"  {describe(config)}: {why}")


def sweep_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="prunelab sweep", description="Run a grid of runs here, in local processes or on Slurm.")
    p.add_argument("grid", help="grid file (YAML: base, grid, overrides, expid, executor, workers, slurm)")
    p.add_argument("--executor", choices=EXECUTORS, help="override the grid file's executor")
    p.add_argument("--workers", type=int, help="worker processes for --executor processes")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--time", type=int, help="Slurm time limit per task (a run, or a group of runs that may train "
                   "fused), in minutes")
    p.add_argument("--gpus", type=int, help="GPUs per task on Slurm")
    p.add_argument("--cpus", type=int, help="CPUs per task on Slurm")
    p.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE", help="any further sbatch option")
    p.add_argument("--no-wait", action="store_true", help="submit to Slurm and return; results land in the store")
    p.add_argument("--dry-run", action="store_true", help="list the runs and what would be skipped, run nothing")
    return p


def sweep_main(argv: list[str]) -> int:
    from .stopping import stopping_on_sigterm
    from .store import RecordConflict, usable_record
    from .sweep import load_grid, run_sweep
    from .sweep_lines import DONE, PENDING, describe, report

    args = sweep_parser().parse_args(argv)
    grid = load_grid(args.grid)
    executor = grid.executor
    for name in ("partition", "time", "gpus", "cpus"):
        if getattr(args, name) is not None:
            setattr(executor.slurm, name, getattr(args, name))
    for item in args.sbatch:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--sbatch takes KEY=VALUE, not {item!r}")
        executor.slurm.sbatch[key] = value
    executor.kind = args.executor or executor.kind
    executor.workers = executor.workers if args.workers is None else args.workers
    executor.wait = not args.no_wait
    executor.check()
    if args.dry_run:
        for c in grid.configs:
            try:
                state = "complete" if usable_record(c, log=print) is not None else "to run  "
            except RecordConflict:
                state = "conflict"
            print(f"{state}  {describe(c)}")
        return 0
    with stopping_on_sigterm(at_once=executor.kind != "local"):  # there the runs train in other processes
        outcomes = run_sweep(grid.configs, executor)
    print(report(outcomes))
    return 0 if all(o.status in (*DONE, *PENDING) for o in outcomes) else 1  # a waiting sweep leaves none pending


def verify_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="prunelab verify", description="Check every record of a result store against its "
                      "manifest; list each folder with its state.")
    p.add_argument("result_dir", help="the result store (the runs' --result-dir)")
    p.add_argument("--repair", action="store_true", help="settle killed writes, remove stale checkpoints, and "
                   "move bad records into RESULT_DIR/.quarantine/")
    return p


def verify_main(argv: list[str]) -> int:
    from .verify import verify

    args = verify_parser().parse_args(argv)
    if not Path(args.result_dir).is_dir():
        raise UserError(f"{args.result_dir} is not a folder of results")
    return verify(args.result_dir, fix=args.repair)


def pruners_parser() -> argparse.ArgumentParser:
    return OneLineParser(prog="prunelab pruners", description="List every pruner a run may choose (name, label, "
                         "version, origin), and each plugin module that failed to import, with its error.")


def pruners_main(argv: list[str]) -> int:
    from ..core.choices import BUILT_IN_LABELS, PRUNERS
    from ..core.registry import get_pruner

    pruners_parser().parse_args(argv)
    rows = [("pruner", "label", "version", "origin")]
    rows += [(name, BUILT_IN_LABELS[name], "-", "built-in") for name in PRUNERS]  # torch stays unloaded
    failed = import_plugin_modules()
    for name in pruner_names()[len(PRUNERS):]:
        try:
            pruner = get_pruner(name)  # an installed package's module is imported here
        except UserError as err:
            failed.append(str(err))
            continue
        rows.append((name, pruner.label, pruner.version, pruner.origin))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    for line in failed:
        print(f"not loaded: {line}")
    return 0


SUBCOMMANDS = {"sweep": sweep_main, "verify": verify_main, "pruners": pruners_main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]](argv[1:])
        args = build_parser().parse_args(argv)
        refuse_both_forms(argv, args)
        configs = configs_from_args(args)
        for config in configs:
            config.validate()
        # torch is imported only from here on (unless $PRUNELAB_PLUGINS names a module that imports it), so
        # --help and bad flags answer in a fraction of a second
        from .fused import run_until_failure
        from .stopping import stopping_on_sigterm

        with warnings.catch_warnings(), stopping_on_sigterm():
            warnings.simplefilter("always")
            warnings.formatwarning = lambda msg, cat, *a, **k: f"WARNING: {msg}\n"
            records, failures = run_until_failure(configs)  # the listed runs of one set-up fused as --fuse says
        if len(configs) > 1:  # each run's lines above name its record only: a line per run, told apart
            print_runs(configs, records, failures)
        if failures:  # the first one ends the command, as it would have alone
            raise next(iter(failures.values()))
    except UserError as err:
        print(f"prunelab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunelab: interrupted; no partial record was written (run the same command to resume).",
              file=sys.stderr)
        return 130
    except Exception as err:
        from ..core.train import Preempted

        if not isinstance(err, Preempted):
            raise
        print("prunelab: stopped by SIGTERM; the last checkpoint is kept (see --checkpoint-every), run the same "
              "command to resume.", file=sys.stderr)
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
