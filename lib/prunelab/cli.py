"""``prunelab``: the original ``main.py`` flags, same names, defaults and meanings, over config + experiment.

Bad input ends in one line on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings

from .config import DATASET_NAMES, EXPERIMENTS, OPTIMIZERS, RunConfig
from .errors import UserError

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


def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = OneLineParser(prog="prunelab", description="Pruning at initialization: the original tool's flags.")

    def flag(name, **kw):
        p.add_argument(name, **kw)

    def switch(name, help_text):
        flag(name, type=parse_bool, nargs="?", const=True, default=False, help=help_text + " (default: False)")

    # training
    flag("--dataset", default=d.dataset, choices=DATASET_NAMES, help="dataset (default: mnist)")
    flag("--model", default=d.model, help="model architecture (default: fc)")
    flag("--model-class", default=d.model_class, choices=["default", "lottery", "tinyimagenet", "imagenet"],
         help="model class (default: default)")
    switch("--dense-classifier", "ensure the last layer of the model is dense")
    switch("--pretrained", "load pretrained weights")
    flag("--optimizer", default=d.optimizer, choices=OPTIMIZERS, help="optimizer (default: adam)")
    flag("--train-batch-size", type=int, default=d.train_batch_size, help="training batch size (default: 256)")
    flag("--test-batch-size", type=int, default=d.test_batch_size, help="test batch size (default: 256)")
    flag("--pre-epochs", type=int, default=d.pre_epochs, help="epochs to train before pruning (default: 0)")
    flag("--post-epochs", type=int, default=d.post_epochs, help="epochs to train after pruning (default: 10)")
    flag("--lr", type=float, default=d.lr, help="learning rate (default: 0.001)")
    flag("--lr-drops", type=int, nargs="*", default=[], help="epochs at which the lr drops (default: none)")
    flag("--lr-drop-rate", type=float, default=d.lr_drop_rate, help="lr drop factor (default: 0.1)")
    flag("--weight-decay", type=float, default=d.weight_decay, help="weight decay (default: 0.0)")
    # pruning
    flag("--pruner", default=d.pruner, choices=["rand", "mag", "snip", "grasp", "synflow"],
         help="pruning strategy (default: rand)")
    flag("--compression", type=float, default=d.compression,
         help="keep 10^-compression of the prunable weights (default: 1.0)")
    flag("--prune-epochs", type=int, default=None,
         help="scoring rounds (default: 100 for synflow, its paper's method; 1 for the others)")
    flag("--compression-schedule", default=d.compression_schedule, choices=["linear", "exponential"],
         help="schedule over the rounds (default: exponential)")
    flag("--mask-scope", default=d.mask_scope, choices=["global", "local"], help="masking scope (default: global)")
    flag("--prune-dataset-ratio", type=int, default=d.prune_dataset_ratio,
         help="pruning examples per class (default: 10)")
    flag("--prune-batch-size", type=int, default=d.prune_batch_size, help="pruning batch size (default: 256)")
    switch("--prune-bias", "prune biases")
    switch("--prune-batchnorm", "prune batchnorm layers")
    switch("--prune-residual", "prune residual connections")
    switch("--prune-train-mode", "score in train mode (batchnorm statistics are still left unchanged)")
    switch("--reinitialize", "re-initialise the weights after pruning")
    switch("--shuffle", "shuffle each layer's mask after pruning")
    switch("--invert", "invert the scores (keep the lowest)")
    flag("--pruner-list", nargs="*", default=[], help="run every pruner in the list (one record each)")
    flag("--prune-epoch-list", type=int, nargs="*", default=[], help="rounds for each pruner in --pruner-list")
    flag("--compression-list", type=float, nargs="*", default=[],
         help="run every compression in the list (one record each)")
    flag("--level-list", type=int, nargs="*", default=[], help="prune-train cycles (multishot only)")
    # experiment
    flag("--experiment", default="singleshot", choices=EXPERIMENTS,
         help="experiment (default: singleshot)")
    flag("--expid", default="", help="name of the result record (default: the configuration's hash)")
    flag("--result-dir", default=d.result_dir, help="folder of result records (default: results)")
    flag("--gpu", type=int, default=d.gpu, help="CUDA device number (default: 0)")
    flag("--workers", type=int, default=d.workers,
         help="accepted for compatibility; unused, data is batched on the device (default: 4)")
    flag("--no-cuda", action="store_true", help="run on the CPU even when a GPU is there")
    flag("--seed", type=int, default=d.seed, help="random seed (default: 1)")
    flag("--verbose", action="store_true", help="print statistics after every epoch and the layer table")
    flag("--save-trace", action="store_true", help="trace one inference step after training")
    flag("--quantization", action="store_true",
         help="train with mixed precision (autocast; a gradient scaler for fp16 on CUDA)")
    # prunelab's own
    flag("--amp-dtype", default=None, choices=["fp16", "bf16"],
         help="mixed precision dtype with --quantization (default: fp16 on CUDA, bf16 on the CPU)")
    flag("--data-source", default="real", choices=["real", "synthetic", "auto"],
         help="real data (default), a synthetic stand-in, or auto: real when available, else the stand-in")
    flag("--train-subset", type=int, default=None, help="use only the first N training examples")
    flag("--test-subset", type=int, default=None, help="use only the first N test examples")
    flag("--force", action="store_true", help="recompute a run that already has a complete record")
    return p


LIST_FLAGS = ("pruner_list", "prune_epoch_list", "compression_list", "level_list")


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """One configuration per run the list flags ask for, each its own record (the original ignored them in
    single-shot; here they are honoured wherever they mean something, and refused where they do not).

    * ``--pruner-list`` (with ``--prune-epoch-list``: rounds per pruner) x ``--compression-list``, and for
      multishot x ``--level-list``;
    * imp-conservation: ``--compression-list`` x ``--level-list``;
    * schedule-conservation: ``--compression-list`` x ``--prune-epoch-list`` (SynFlow's rounds).
    """
    values = {k: v for k, v in vars(args).items() if k not in LIST_FLAGS}
    base = RunConfig.from_dict(values)
    experiment = base.experiment
    if args.level_list and experiment not in ("multishot", "imp-conservation"):
        raise UserError(f"--level-list is for --experiment multishot or imp-conservation, not {experiment}.")
    fixed = {"imp-conservation": "mag", "schedule-conservation": "synflow"}.get(experiment)
    if fixed and (args.pruner_list or base.pruner not in (RunConfig.pruner, fixed)):
        raise UserError(f"--experiment {experiment} scores with {fixed} only; drop --pruner and --pruner-list.")
    if experiment == "schedule-conservation":
        pairs = [(fixed, r) for r in (args.prune_epoch_list or [base.prune_epochs])]
    else:
        if args.prune_epoch_list and len(args.prune_epoch_list) != len(args.pruner_list):
            raise UserError("--prune-epoch-list needs one round count for each pruner in --pruner-list.")
        pruners = args.pruner_list or [fixed or base.pruner]
        pairs = list(zip(pruners, args.prune_epoch_list or [base.prune_epochs] * len(pruners)))
    compressions = args.compression_list or [base.compression]
    levels = args.level_list or [None]
    listed = any(getattr(args, name) for name in LIST_FLAGS)
    configs = []
    for compression in compressions:
        for pruner, rounds in pairs:
            for level in levels:
                parts = [pruner, f"{compression:g}"]
                parts += [f"r{rounds}"] if args.prune_epoch_list else []  # one pruner may come with two counts
                parts += [f"L{level}"] if level is not None else []
                expid = "-".join([base.expid, *parts]) if base.expid and listed else base.expid
                configs.append(base.replace(pruner=pruner, prune_epochs=rounds, compression=compression,
                                            levels=level, expid=expid))
    return configs


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler's preemption, ``timeout``, ``kill``) stops training at the next step; the
    run's last epoch checkpoint stays, and the same command resumes it."""
    from .train import stop_requested

    def handler(signum, frame):
        stop_requested.set()

    signal.signal(signal.SIGTERM, handler)


def sweep_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="prunelab sweep", description="Run a grid of runs here, in local processes or on Slurm.")
    p.add_argument("grid", help="grid file (YAML: base, grid, overrides, expid, executor, workers, slurm)")
    p.add_argument("--executor", choices=["local", "processes", "slurm"], help="override the grid file's executor")
    p.add_argument("--workers", type=int, help="worker processes for --executor processes")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--time", type=int, help="Slurm time limit per run, in minutes")
    p.add_argument("--gpus", type=int, help="GPUs per run on Slurm")
    p.add_argument("--cpus", type=int, help="CPUs per run on Slurm")
    p.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE", help="any further sbatch option")
    p.add_argument("--no-wait", action="store_true", help="submit to Slurm and return; results land in the store")
    p.add_argument("--dry-run", action="store_true", help="list the runs and what would be skipped, run nothing")
    return p


def sweep_main(argv: list[str]) -> int:
    from .store import find_record
    from .sweep import load_grid, report, run_sweep

    args = sweep_parser().parse_args(argv)
    grid = load_grid(args.grid)
    for name in ("partition", "time", "gpus", "cpus"):
        if getattr(args, name) is not None:
            setattr(grid.slurm, name, getattr(args, name))
    for item in args.sbatch:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--sbatch takes KEY=VALUE, not {item!r}.")
        grid.slurm.sbatch[key] = value
    executor = args.executor or grid.executor
    if args.dry_run:
        for c in grid.configs:
            done = find_record(c.result_dir, c.experiment, c.record_name) is not None
            print(f"{'complete' if done else 'to run  '}  {c.record_name}  {c.dataset}/{c.model} {c.pruner} "
                  f"c={c.compression:g}")
        return 0
    outcomes = run_sweep(grid.configs, executor, args.workers or grid.workers, grid.slurm, wait=not args.no_wait)
    print(report(outcomes))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sweep"]:
        try:
            return sweep_main(argv[1:])
        except UserError as err:
            print(f"prunelab: error: {err}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    _stop_on_sigterm()
    try:
        configs = configs_from_args(args)
        for config in configs:
            config.validate()
        from .experiment import run  # imported late: --help and bad flags stay instant

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.formatwarning = lambda msg, cat, *a, **k: f"WARNING: {msg}\n"
            for config in configs:
                run(config)
    except UserError as err:
        print(f"prunelab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunelab: interrupted; no partial record was written (run the same command to resume).",
              file=sys.stderr)
        return 130
    except Exception as err:
        from .train import Preempted

        if not isinstance(err, Preempted):
            raise
        print("prunelab: stopped by SIGTERM; the last finished epoch is checkpointed, run the same command "
              "to resume.", file=sys.stderr)
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
