"""Grids of runs: expanded from one YAML file, run here, in N local processes, or on Slurm via submitit.

A grid file::

    base: {model: resnet20, model-class: lottery, dataset: cifar10, post-epochs: 100}   # any run setting
    grid: {pruner: [rand, mag, snip, grasp, synflow], compression: [0.25, 0.5, 1.0]}  # every combination
    overrides: [{when: {pruner: mag}, set: {pre-epochs: 200}}]   # settings for the runs that match
    expid: "{dataset}-{pruner}-c{compression}"   # optional record names (default: the config hash)
    executor: slurm            # local | processes | slurm (the command line can override)
    workers: 2                 # for processes
    slurm: {partition: gpu, time: 120, gpus: 1, cpus: 8, sbatch: {account: mylab}}

Values have their flag's type, a grid makes at most 10,000 runs, and the expid names settings only
(:mod:`prunelab.runs.gridfile` checks it all). Runs with a complete record are skipped, and runs another process
holds (another sweep of the grid) are left to it, not started again (:func:`set_aside_held`). The missing runs
that can train fused (:func:`prunelab.runs.fused_plan.plan`) go to one task per group, which fuses them or not
as their ``fuse`` setting and its measurement decide, and says which in a log line; worker processes with
fewer groups than workers get them cut (:func:`~prunelab.runs.fused_plan.share_out`); on Slurm a group is one
array task, so ``time`` is a group's. Runs checkpoint on a cadence (``checkpoint_every``), so a preempted or
timed-out Slurm task is requeued by submitit and resumes from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.registry import Pruner, find_pruner, is_builtin, register_pruner
from ..core.train import Preempted, stop_requested
from ..errors import UserError
from .checkpoint import RunInProgress
from .config import RunConfig
from .fused import UNWATCHED, GroupResult, GroupWatch, run_group
from .fused_parts import PartsBook
from .fused_plan import plan, plan_words, share_out
from .gridfile import Executor, Grid, SlurmOptions, expand, load_grid
from .prepare import run_checkpoint
from .stopping import TASK, watch_sweep
from .store import RecordConflict, RunRecord, usable_record
from .sweep_lines import ELSEWHERE, LiveGroup, Outcome, Tally, describe, error_line, report

__all__ = ["Executor", "Grid", "SlurmOptions", "expand", "load_grid", "run_sweep", "report"]  # the grid file: gridfile


@dataclass
class SweepTask:
    """One run, or one group of runs that may train fused (a list), as a picklable callable (worker processes,
    submitit). On Slurm it is checkpointable: a preempted or timed-out task is requeued with the same call,
    and the runs resume from their last epoch. ``echo``: print the runs' logs as they go (they are always
    kept in the records' ``log.txt``). ``pruners``: the registered pruners the runs use, registered again where
    the task runs (a worker process starts with the built-in pruners and installed packages' only); their score
    functions travel by module and name. A run returns its record's path (or :data:`ELSEWHERE`), a group its
    :class:`~prunelab.runs.fused.GroupResult`; a group run in this process tells ``watch`` as it goes."""

    echo: bool = True
    pruners: tuple[Pruner, ...] = ()

    def __call__(self, values: dict | list[dict], threads: int | None = None, watch: GroupWatch | None = None
                 ) -> str | GroupResult:
        with TASK:
            if stop_requested.is_set():  # a stop asked for before this task began: nothing is opened
                raise Preempted("stop requested")
            return self._run(values, threads, watch)

    def _run(self, values: dict | list[dict], threads: int | None, watch: GroupWatch | None) -> str | GroupResult:
        import torch

        from .registry import run

        for p in self.pruners:
            register_pruner(p.name, p.score, label=p.label, colour=p.colour, rounds=p.rounds, version=p.version)
        if threads:
            torch.set_num_threads(threads)
        say = (lambda message: print(message, flush=True)) if self.echo else (lambda message: None)
        if isinstance(values, list):
            configs = [RunConfig.from_dict(v) for v in values]
            result = run_group(configs, progress=False, log=say, watch=watch or UNWATCHED)
            return dataclasses.replace(result, failures={n: _portable(e) for n, e in result.failures.items()})
        try:
            record = run(RunConfig.from_dict(values), progress=False, log=say)
        except RunInProgress:  # another process (another sweep of this grid) holds it: not a failure
            return ELSEWHERE
        return str(record.path)

    def checkpoint(self, values: dict | list[dict], *args, **kwargs):
        """submitit's requeue of a preempted or timed-out task: the same call, except that a run asked to start
        afresh (``force``) has done so by now, so the requeued one resumes from its checkpoint."""
        from submitit.helpers import DelayedSubmission

        unforced = [{**v, "force": False} for v in values] if isinstance(values, list) else {**values, "force": False}
        return DelayedSubmission(self, unforced, *args, **kwargs)


def _portable(error: BaseException) -> BaseException:
    """``error`` itself where it survives pickling (a task run in a worker process or a Slurm job returns it),
    else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to pickle: an error a user's own pruner defined
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def run_sweep(configs: list[RunConfig], executor: Executor | None = None, log=print, echo: bool = True
              ) -> list[Outcome]:
    """Run the configurations that have no complete record yet (here unless ``executor`` says otherwise); return
    what happened to each. ``log`` gets a line per finished run; ``echo`` false keeps the runs' own logs out of
    stdout (in their records). A run another process holds (:func:`set_aside_held`) is not started here: a
    sweep that waits waits for it, one that does not (Slurm, ``wait`` false) reports it :data:`ELSEWHERE`."""
    executor = (executor or Executor()).check()
    for book in dict.fromkeys(PartsBook.beside(c) for c in configs):
        book.tidy()  # a cut whose runs all have records (a kill came between the last one and its tidy)
    reused = {id(c) for c in configs if _reusable(c) is not None}
    outcomes = {c.record_name: Outcome(c, "reused") for c in configs if id(c) in reused}
    todo = [c for c in configs if id(c) not in reused]
    log(f"{len(configs)} runs: {len(configs) - len(todo)} already complete, {len(todo)} to run ({executor.kind}).")
    if todo:
        task = SweepTask(echo, _registered_pruners(todo, executor.kind))
        free, held = set_aside_held(todo, log)
        outcomes.update(held)
        for outcome in _hand_out(configs, free, executor, log, task):
            outcomes[outcome.name] = outcome
        elsewhere = [o for o in outcomes.values() if o.status == ELSEWHERE] if executor.waits else []
        for outcome in elsewhere:  # held from the start, or found held by their task
            outcomes[outcome.name] = _wait_for(outcome.config, log, task)
    return [outcomes[c.record_name] for c in configs]


def set_aside_held(todo: list[RunConfig], log) -> tuple[list[RunConfig], dict[str, Outcome]]:
    """``todo`` split into the runs to hand to the executor and, by record name, the :data:`ELSEWHERE` outcomes
    of those whose lock another live process holds (:meth:`~.checkpoint.RunCheckpoint.held_elsewhere`: another
    sweep of this grid trains them). A task for one would find the lock held and return at once, having taken
    a Slurm array task and queue slot, or a place in a fused group, for nothing. Says how many, if any."""
    held = {c.record_name: Outcome(c, ELSEWHERE) for c in todo if run_checkpoint(c, "").held_elsewhere()}
    if held:
        log(f"  {len(held)} run{'s' if len(held) != 1 else ''} running in another process: not started again.")
    return [c for c in todo if c.record_name not in held], held


def _hand_out(configs: list[RunConfig], runs: list[RunConfig], executor: Executor, log, task: SweepTask):
    """The outcomes of ``runs`` (some of the grid ``configs``) computed by ``executor``, in groups cut from the
    whole grid's plan, as a sweep that no kill stopped cuts it."""
    if not runs:
        return
    kept = {id(c) for c in runs}
    cut = share_out(plan(configs), executor.workers if executor.kind == "processes" else 1)
    groups = [g for g in ([c for c in g if id(c) in kept] for g in cut) if g]
    log(f"  {plan_words(groups)}")
    runner = {"local": _run_here, "processes": _run_processes, "slurm": _run_slurm}[executor.kind]
    yield from runner(groups, executor, log, task)


def _registered_pruners(configs: list[RunConfig], executor: str) -> tuple[Pruner, ...]:
    """The registered (not built-in) pruners ``configs`` use. Worker processes and Slurm jobs import a score
    function by its module and name: one defined in ``__main__`` (a notebook, a script) or inside a function
    cannot reach them, and is refused for those executors in one line; the local executor takes any."""
    names = dict.fromkeys(c.pruner for c in configs if not is_builtin(c.pruner))
    pruners = tuple(p for p in map(find_pruner, names) if p is not None)  # an unknown name fails its run
    for p in pruners:
        if executor != "local" and not p.importable:
            raise UserError(f"pruner '{p.name}' scores with {p.origin}, which {executor} workers cannot import; "
                            "define it in a module they can import, or use the local executor")
    return pruners


def _wait_for(config: RunConfig, log, task: SweepTask) -> Outcome:
    """Wait until no other process holds the run, then take its record, or run it here when the other
    process left none (it failed or was killed: the run resumes from its checkpoint)."""
    while True:
        log(f"  {describe(config)}: running in another process; waiting for it.")
        run_checkpoint(config, "").wait_until_free()
        try:
            record = usable_record(config)
        except RecordConflict as err:
            return Outcome(config, "failed", error_line(err))
        if record is not None:
            return Outcome(config, "done elsewhere", str(record.path))
        (outcome,) = _run_here([[config]], Executor(), log, task)
        if outcome.status != ELSEWHERE:
            return outcome


def _reusable(config: RunConfig) -> RunRecord | None:
    """The run's record to reuse (:func:`~prunelab.runs.store.usable_record`; none for a forced run), or None."""
    try:
        return usable_record(config)
    except RecordConflict:
        return None  # the run itself then fails with the conflict's message, reported with the others


def _ended_group(group: list[RunConfig], returned: str | GroupResult, tally: Tally, seconds: float | None = None,
                 live: LiveGroup | None = None):
    """The outcomes of a task that returned ``returned`` for ``group``, each said to ``tally``; a group's decision
    line first. What ``live`` said as the group went is not said again."""
    said = live.outcomes if live else {}
    if isinstance(returned, GroupResult):
        if live is None:  # a group run here said its decisions as it made them
            tally.log(f"  {returned.decision}")
        paths = [ELSEWHERE if path is None else path for path in returned.paths]
    else:
        paths = [returned]
    failures = returned.failures if isinstance(returned, GroupResult) else {}
    share = None if seconds is None else seconds / len(group)
    for config, path in zip(group, paths):
        if config.record_name in said:
            yield said[config.record_name]
            continue
        if config.record_name in failures:
            yield tally.failed(config, failures[config.record_name])
            continue
        yield tally.finished(config, path, share)


def _payload(group: list[RunConfig]) -> dict | list[dict]:
    """What a task is called with: a run's settings, or a group's list of them."""
    return group[0].to_dict() if len(group) == 1 else [c.to_dict() for c in group]


def _failed_group(group: list[RunConfig], err: BaseException, tally: Tally, prefix: str = ""):
    """The outcomes of a task that raised ``err`` (in a worker, or a Slurm job that failed): a run whose record
    the task wrote before it failed is finished (a forced run's record may be the old one: failed)."""
    for config in group:
        record = _reusable(config)
        if record is not None:
            yield tally.finished(config, str(record.path))
            continue
        yield tally.failed(config, err, prefix)


def _run_here(groups, executor: Executor, log, task):
    """Each group in this process, one after another, its progress said as it goes (:class:`LiveGroup`)."""
    tally = Tally(log, sum(len(g) for g in groups))
    for group in groups:
        start, live = time.perf_counter(), LiveGroup(tally)
        try:
            returned = task(_payload(group), watch=live.watch() if len(group) > 1 else None)
        except Preempted:  # a stop asked for (SIGTERM) stops the sweep
            raise
        except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep
            yield from live.outcomes.values()  # the runs that ended before the failure have their records
            yield from _failed_group([c for c in group if c.record_name not in live.outcomes], err, tally)
            continue
        yield from _ended_group(group, returned, tally, time.perf_counter() - start, live)


def _run_processes(groups, executor: Executor, log, task):
    """N worker processes (spawned: each imports torch afresh), the CPU threads shared out between them; a
    group of runs that may train fused is one task. A stop asked for here (SIGTERM) stops the workers' training
    too, starts no further task and raises :class:`Preempted` (:func:`.stopping.watch_sweep`)."""
    import multiprocessing

    workers = max(1, min(executor.workers, len(groups)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    tally = Tally(log, sum(len(g) for g in groups))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    with ProcessPoolExecutor(workers, context, watch_sweep, (stop, os.getpid())) as pool:
        try:
            pending = {pool.submit(task, _payload(g), threads): g for g in groups}
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                if stop_requested.is_set() or any(isinstance(f.exception(), Preempted) for f in done):
                    raise Preempted("stop requested")
                for future in done:
                    group = pending.pop(future)
                    try:
                        returned = future.result()
                    except Exception as err:  # noqa: BLE001
                        yield from _failed_group(group, err, tally)
                        continue
                    yield from _ended_group(group, returned, tally)
        except BaseException:  # a stop, Ctrl-C, or the caller closing this generator: no worker trains on
            stop.set()
            pool.shutdown(cancel_futures=True)  # waits for the workers' tasks to stop at their next step
            raise


#: how often a sweep waiting on Slurm asks whether a task has ended, in seconds
SLURM_POLL_S = 1.0


def slurm_executor(options: SlurmOptions, folder: Path):
    """A submitit executor for Slurm job arrays, one run or group of runs per array task, logs in ``folder``."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params: dict[str, Any] = {"timeout_min": options.time, "cpus_per_task": options.cpus, "tasks_per_node": 1,
                              "nodes": 1, "slurm_array_parallelism": options.parallelism,
                              "name": "prunelab", "slurm_additional_parameters": dict(options.sbatch)}
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.gpus:
        params["gpus_per_node"] = options.gpus
    if options.mem_gb:
        params["mem_gb"] = options.mem_gb
    executor.update_parameters(**params)
    return executor


def _run_slurm(groups, executor: Executor, log, task):
    result_dir = Path(groups[0][0].result_dir)
    folder = result_dir / ".sweeps" / time.strftime("%Y%m%d-%H%M%S")
    submitter = slurm_executor(executor.slurm, folder)
    try:  # sbatch's complaints come back in the error (submitit also echoes them to stderr: kept out)
        with contextlib.redirect_stderr(io.StringIO()):
            jobs = submitter.map_array(task, [_payload(g) for g in groups])
    except Preempted:  # a stop asked for here (SIGTERM), not sbatch's refusal
        raise
    except Exception as err:  # noqa: BLE001 - sbatch's refusal (a partition, an account): the user's to fix
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # .sweeps/, when this submission was its only one
        said = [line.strip() for line in str(err).splitlines() if "error" in line.lower()] or [error_line(err)]
        raise UserError(f"the Slurm cluster refused the submission: {said[0]}") from None
    array = jobs[0].job_id.split("_")[0]
    try:
        log(f"Submitted {len(jobs)} tasks for {sum(len(g) for g in groups)} runs to Slurm as array {array}; logs "
            f"in {folder}.")
        if not executor.wait:
            for group, job in zip(groups, jobs):
                for config in group:
                    yield Outcome(config, "submitted", job.job_id)
            return
        yield from _slurm_results(groups, jobs, log)
    except (Preempted, KeyboardInterrupt):  # only the waiting stops: the tasks are the cluster's
        log(f"Stopped waiting; the Slurm tasks of array {array} run on (scancel {array} stops them), and their "
            "records land in the result store as they end.")
        raise


def _slurm_results(groups, jobs, log):
    """The outcomes of the Slurm ``jobs`` (one per group), in the groups' order, each once its job has ended."""
    tally = Tally(log, sum(len(g) for g in groups))
    for group, job in zip(groups, jobs):
        while not job.done():  # polled: submitit's own waiting swallows the Preempted a SIGTERM raises in it
            if stop_requested.is_set():
                raise Preempted("stop requested")
            time.sleep(SLURM_POLL_S)
        try:
            returned = job.result()
        except Preempted:  # a stop asked for here (SIGTERM), not the task's error
            raise
        except Exception as err:  # noqa: BLE001 - submitit re-raises the task's error, or a failed job
            yield from _failed_group(group, err, tally, prefix=f"job {job.job_id}: ")
            continue
        yield from _ended_group(group, returned, tally)
