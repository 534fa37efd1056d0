"""What a profile costs before it runs: the runs its notebooks need, their epochs, a measured time per epoch
of each set-up on this device, and the expected total.

``./run_all.sh --profile full --estimate`` prints it without training anything. Each set-up (data set,
model, batch size, data size, precision) is timed once (:mod:`prunelab.workbook.step_costs`): a few training
steps and evaluation batches on synthetic data of the right shape, after a warm-up, median of the steps. An
epoch is then its steps times
the step time plus its evaluation pass; a run is its epochs (pre- and post-pruning, each followed by an
evaluation) plus one training step per pruning round (SynFlow's 100 rounds score one batch each).
Runs already in the result store cost nothing, and a dense pre-training that several runs share
(:mod:`prunelab.runs.pretrain`: Mag at each compression) is counted once, or not at all when its record is
stored. Runs that train fused (:mod:`prunelab.runs.fused`) are costed as the fused networks their group
trains (:func:`group_stages`: the pre-trainings beside the post-training of the runs that need none, then
what is left), each as a fused step of its runs, measured, where that is faster (as ``--fuse auto``
decides), in the groups the device's memory holds a fused step of, as a
run group cuts itself (:func:`prunelab.runs.fused_decision.memory_chunks`); a group whose fused step would
take more than :data:`FUSED_BUDGET_S` to measure is costed one run at a time, and says so. Loading real
data, checkpoints and writing records are not counted, so read the total as a floor within some tens of
percent.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import torch

from ..core.fused_loop import device_room, fused_chunk
from ..core.timing import MARGIN, faster_by
from ..core.train import resolve_device
from ..data.run_data import resolved_source
from ..errors import UserError
from ..precision.amp import amp_settings, make_scaler
from ..runs.cli import OneLineParser
from ..runs.config import RunConfig
from ..runs.fused_plan import input_blocks, plan
from ..runs.pretrain import SharedPretraining, shares_pretraining
from ..runs.store import RecordConflict, usable_record
from .grids import (
    WorkbookParams,
    ablation_grid,
    amp_grid,
    compression_grid,
    dense_grid,
    int8_grid,
    project_root,
    trace_config,
    tuning_grid,
)
from .params import notebook_defaults, read_params
from .step_costs import FUSED_BUDGET_S, FusedTiming, Setup, SetupTiming, measure_fused, measure_setup


def notebook_configs(notebook: str, values: dict) -> list[RunConfig]:
    """The runs one notebook asks for, given its parameter file's values (as its code cell builds them)."""
    params = WorkbookParams.from_namespace(values)
    if notebook.startswith("01_"):
        return tuning_grid(params) + dense_grid(params)
    if notebook.startswith("02_"):
        return [trace_config(params, values.get("pruner", "snip"), values.get("compression", 1.0))]
    if notebook.startswith("03_"):
        return compression_grid(params, values.get("compression", 0.5))
    if notebook.startswith("05_"):
        return ablation_grid(params)
    if notebook.startswith("04_"):
        compressions = values.get("amp_compressions", [0.2, 0.5, 1.0])
        return (amp_grid(params, compressions, values.get("amp_pruner", "rand"), values.get("amp_dtype"))
                + int8_grid(params, compressions, values.get("amp_pruner", "rand"), values.get("int8_epochs", 20)))
    return []


def profile_configs(params_dir: str | Path, result_dir: str | None = None) -> list[RunConfig]:
    """Every distinct run of a profile's notebooks (a run two notebooks share is counted once)."""
    runs: dict[tuple[str, str], RunConfig] = {}
    paths = sorted(Path(params_dir).glob("[0-9][0-9]_*.yaml"))
    if not paths:
        raise UserError(f"{params_dir} holds no notebook parameter files (01_tuning.yaml, ...)")
    root = project_root(Path(params_dir)) or project_root()  # the checkout whose notebooks the files are for
    for path in paths:
        notebook = root / "notebooks" / f"{path.stem}.ipynb" if root else None
        notebook = notebook if notebook and notebook.is_file() else None
        # what the file leaves out is the notebook's default, as papermill leaves it
        values = {**(notebook_defaults(notebook) if notebook else {}), **read_params(path, notebook)}
        if result_dir is not None:
            values["result_dir"] = result_dir
        for config in notebook_configs(path.stem, values):
            runs.setdefault((config.experiment, config.record_name), config)
    return list(runs.values())


def _stored(config: RunConfig) -> bool:
    try:
        return usable_record(config) is not None
    except RecordConflict:
        return False


def pretraining_epochs(configs: list[RunConfig]) -> dict[int, int]:
    """The pre-training epochs each run will train itself (keyed by ``id(config)``): a shared pre-training
    counts for the first run that needs it only, and for none when its record is already stored."""
    counted: dict[int, int] = {}
    seen: set[str] = set()
    for config in configs:
        if not shares_pretraining(config):
            counted[id(config)] = config.pre_epochs
            continue
        shared = SharedPretraining(config, resolved_source(config.dataset, config.data_source))
        first = shared.key not in seen and shared.record() is None
        seen.add(shared.key)
        counted[id(config)] = config.pre_epochs if first else 0
    return counted


def estimate(params_dir: str | Path, result_dir: str | None = None, device: str | None = None,
             steps: int = 5) -> pd.DataFrame:
    """A row per set-up: runs to compute (stored ones excluded), their epochs, the measured seconds per epoch
    and the expected seconds. ``frame.attrs`` holds the total and the counts."""
    if steps < 1:
        raise UserError(f"--steps must be at least 1, not {steps}")
    dev = _device(device) if device else resolve_device()
    configs = profile_configs(params_dir, result_dir)
    todo = [c for c in configs if not _stored(c)]
    groups: dict[Setup, list[RunConfig]] = {}
    for config in todo:
        groups.setdefault(Setup.of(config), []).append(config)
    pre = pretraining_epochs(todo)
    rows = []
    for setup, runs in groups.items():
        timing = measure_setup(setup, dev, steps)
        epochs = sum(pre[id(c)] + c.post_epochs for c in runs)
        evaluations = sum(2 if pre[id(c)] else 1 for c in runs)  # the evaluation before each training phase
        rounds = sum(c.resolved_prune_epochs * c.cycles for c in runs)
        seconds = epochs * timing.epoch_s + evaluations * timing.eval_s + rounds * timing.step_s
        saved, fused = _fusion_saving(setup, runs, pre, timing, dev, steps)
        rows.append({"set-up": setup.label, "runs": len(runs), "epochs": epochs,
                     "s per epoch (measured)": timing.epoch_s, "fused": fused,
                     "one at a time (h)": seconds / 3600, "expected (h)": (seconds - saved) / 3600})
    frame = pd.DataFrame(rows, columns=["set-up", "runs", "epochs", "s per epoch (measured)", "fused",
                                        "one at a time (h)", "expected (h)"])
    trained = sum(pre.values())
    frame.attrs.update(total_h=float(frame["expected (h)"].sum()), runs=len(configs), stored=len(configs) - len(todo),
                       one_at_a_time_h=float(frame["one at a time (h)"].sum()),
                       pre_epochs=trained, pre_epochs_shared=sum(c.pre_epochs for c in todo) - trained,
                       device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type)
    return frame


def group_stages(group: list[RunConfig], pre: dict[int, int]) -> list[tuple[list[RunConfig], int, bool]]:
    """The fused networks a group of :func:`~prunelab.runs.fused_plan.plan` trains, in order, as (runs, epochs, whether
    a pre-training is among them), ``pre`` as :func:`pretraining_epochs` counts it: the pre-trainings with the
    post-trainings of the runs that need none, until the shorter phase ends, then the runs left; then the
    post-training of the runs that pre-trained (or continue from a pre-training), a network per pre-training
    length (runs.fused.train_group). A "network" of one run trains alone, so is left out."""
    trainers = [c for c in group if pre[id(c)]]
    first = trainers + ([c for c in group if not c.pre_epochs] if trainers else [])
    left = {id(c): pre[id(c)] or c.post_epochs for c in first}
    stages = []
    while live := [c for c in first if left[id(c)] > 0]:
        epochs = min(left[id(c)] for c in live)
        stages.append((live, epochs, any(pre[id(c)] for c in live)))
        left.update({id(c): left[id(c)] - epochs for c in live})
    later = [c for c in group if c.pre_epochs or not trainers]
    for length in dict.fromkeys(c.pre_epochs for c in later):
        stages.append(([c for c in later if c.pre_epochs == length], group[0].post_epochs, False))
    return [stage for stage in stages if len(stage[0]) > 1]


def _fusion_saving(setup: Setup, runs: list[RunConfig], pre: dict[int, int], timing: SetupTiming,  # noqa: PLR0913
                   device: torch.device, steps: int) -> tuple[float, str]:
    """Seconds that training the groups of ``runs`` fused saves over one at a time (each group's post-training,
    and the pre-trainings it trains, ``pre`` as :func:`pretraining_epochs` counts them: a fused epoch against
    its runs' epochs), and the "fused" cell: "2 groups, 18 runs, 3.1x" or why none."""
    groups = [g for g in plan(runs) if len(g) > 1]
    if not groups:
        return 0.0, "-"
    precision = amp_settings(device, setup.amp, setup.amp_dtype)
    if make_scaler(precision, device).is_enabled():
        return 0.0, "no (fp16 with a gradient scaler)"
    train_steps = math.ceil(setup.train_examples / setup.batch_size)
    eval_batches = math.ceil(setup.test_examples / setup.test_batch_size)
    saved, fused_runs, speedups, pre_fused = 0.0, set(), [], False
    measured: dict[tuple[int, int], FusedTiming] = {}
    room = device_room(device)
    for group in groups:
        for members, epochs, pre_training in group_stages(group, pre):
            m = len(members)
            # the groups of runs the device's memory holds, as a run group cuts itself (runs.fused_decision)
            chunk, shared = fused_chunk(m, input_blocks([config.seed for config in members]), timing.step_bytes,
                                        room, timing.cuda_graph)
            if chunk < 2:
                continue  # a fused step of 2 runs does not fit: they train one at a time
            if timing.step_s * chunk * (steps + 2) > FUSED_BUDGET_S:
                return 0.0, (f"not measured (a fused step of {chunk} runs would take over {FUSED_BUDGET_S:.0f} s "
                             "to time)")
            if (chunk, shared) not in measured:
                measured[chunk, shared] = measure_fused(setup, chunk, device, steps, shared=shared)
            fused = measured[chunk, shared]
            fused_s = m / chunk * (epochs * (train_steps * fused.step_s + eval_batches * fused.eval_batch_s)
                                   + eval_batches * fused.eval_batch_s)
            separate_s = m * (epochs * timing.epoch_s + timing.eval_s)
            if faster_by(fused_s, separate_s, MARGIN):  # what --fuse auto would choose
                saved += separate_s - fused_s
                speedups.append(separate_s / fused_s)
                fused_runs.update(id(config) for config in members)
                pre_fused = pre_fused or pre_training
    if not speedups:
        return 0.0, "no (measured no faster)"
    return saved, (f"{len(speedups)} group{'s' if len(speedups) > 1 else ''}, {len(fused_runs)} runs"
                   + (" and their pre-training" if pre_fused else "") + f", {min(speedups):.1f}x"
                   + (f"-{max(speedups):.1f}x" if len(speedups) > 1 else ""))


def report(frame: pd.DataFrame, profile: str) -> str:
    a = frame.attrs
    lines = [f"Estimate for profile {profile} on {a['device']}: {a['runs']} runs, {a['stored']} already in the "
             f"result store, {a['runs'] - a['stored']} to compute.", ""]
    if len(frame):
        lines.append(frame.to_string(index=False, formatters={"s per epoch (measured)": "{:.3g}".format,
                                                              "one at a time (h)": "{:.3g}".format,
                                                              "expected (h)": "{:.3g}".format}))
        lines.append("")
    if a["pre_epochs_shared"]:
        lines.append(f"Shared pre-training: {a['pre_epochs']:,} pre-training epochs are trained, "
                     f"{a['pre_epochs_shared']:,} more that other runs would repeat are not (runs.pretrain).")
    lines.append(f"Expected total: {a['total_h']:.3g} h ({a['total_h'] * 60:.3g} min) of training and evaluation "
                 f"on this device with shared pre-training and fused groups ({a['one_at_a_time_h']:.3g} h one run at "
                 "a time; data loading, checkpoints and records not counted).")
    return "\n".join(lines)


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {name!r} is not a device; say cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this machine has no CUDA device")
    return device


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="estimate", description="Estimate a profile's cost without training.")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--params", help="parameter folder (default: params/<profile>)")
    parser.add_argument("--result-dir", help="result store to skip stored runs from (default: the profile's)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when there is one)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per set-up")
    args = parser.parse_args(argv)
    try:
        frame = estimate(args.params or f"params/{args.profile}", args.result_dir, args.device, args.steps)
    except UserError as err:
        print(f"estimate: error: {err}", file=sys.stderr)
        return 2
    print(report(frame, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
