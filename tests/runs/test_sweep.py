"""Grids of runs: expansion, skipping finished runs, worker processes, submitit, the sweep command."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from forked_processes import run_forked

from prunelab.errors import UserError
from prunelab.runs.checkpoint import KILL_AFTER_ENV
from prunelab.runs.config import RunConfig
from prunelab.runs.fused_parts import PARTS_PREFIX, PartsBook
from prunelab.runs.store import RecordConflict, load_record, load_table
from prunelab.runs.sweep import Executor, SweepTask, expand, load_grid, run_sweep

TINY = {"dataset": "mnist", "model": "fc", "data-source": "synthetic", "train-subset": 128, "test-subset": 64,
        "post-epochs": 1}


def test_a_grid_expands_to_every_combination_with_overrides_and_names(tmp_path):
    configs = expand({**TINY, "result-dir": str(tmp_path)},
                     {"pruner": ["rand", "mag", "synflow"], "compression": [0.5, 1.0], "quantization": [False, True]},
                     [{"when": {"pruner": "mag"}, "set": {"pre-epochs": 3}}], "{pruner}-c{compression}-q{quantization}")
    assert len(configs) == 12
    assert {c.pre_epochs for c in configs if c.pruner == "mag"} == {3}
    assert {c.pre_epochs for c in configs if c.pruner != "mag"} == {0}
    assert configs[0].expid == "rand-c0.5-qFalse" and configs[0].result_dir == str(tmp_path)
    assert len({c.record_name for c in configs}) == 12


def test_an_override_that_matches_no_run_is_refused():
    with pytest.raises(UserError, match=r"overrides\[1\]\.when \(pruner: magg\) matches no run"):
        expand(TINY, {"pruner": ["rand", "mag"]}, [{"when": {"pruner": "rand"}, "set": {"lr": 0.01}},
                                                   {"when": {"pruner": "magg"}, "set": {"pre-epochs": 1}}])


@pytest.mark.parametrize("base,grid,expid,needle", [
    (TINY, {"pruner": ["rand", "mag"]}, "same", "same record name"),
    (TINY, {"pruner": "rand"}, None, "non-empty list"),
    ({**TINY, "frobnicate": 1}, {}, None, "base.frobnicate: unknown setting"),
    (TINY, {"pruner": ["lamp"]}, None, "unknown pruner"),
    (TINY, {"pruner": ["rand"]}, "{nope}", "not a setting"),
    (TINY, {"compression": [1, 50]}, "c{compression}", "less than one"),  # refused before its partner trains
    ({**TINY, "seed-list": [1, 2]}, {}, None, r"base.seed-list: .*grid: \{seed: "),  # the CLI's list flag
    ({**TINY, "level-list": 2}, {}, None, r"grid: \{levels: "),
    ({**TINY, "data": "/d", "data-dir": "/d"}, {}, None, "given twice"),
])
def test_bad_grids_are_user_errors(base, grid, expid, needle):
    with pytest.raises(UserError, match=needle):
        expand(base, grid, None, expid)


def test_a_setting_may_be_spelled_as_its_flag(tmp_path):
    (config,) = expand({**TINY, "data": str(tmp_path)}, {})
    assert config.data_dir == str(tmp_path)


def test_finished_runs_are_skipped_and_failures_reported(tmp_path):
    configs = expand({**TINY, "result-dir": str(tmp_path)}, {"pruner": ["rand", "snip"]})
    first = run_sweep(configs, log=lambda m: None)
    assert [o.status for o in first] == ["finished", "finished"]
    book = PartsBook.beside(configs[0])  # a cut left by a kill between a group's last record and its tidy
    book.keep("post:0", [[c.record_name for c in configs]])
    bad = configs[0].replace(compression=30.0, expid="impossible")
    again = run_sweep(configs + [bad], log=lambda m: None)
    assert [o.status for o in again] == ["reused", "reused", "failed"]
    assert not list(book.folder.glob(f"{PARTS_PREFIX}*"))  # its runs all have records: it goes
    assert "less than one" in again[2].detail
    assert len(load_table(tmp_path)) == 2


@pytest.mark.parametrize("seed_2_done", [False, True])
def test_worker_processes_run_a_grid(tmp_path, seed_2_done):
    """Two workers share the three seeds' fused group out between them: seeds 1 and 3 fused, seed 2 alone; the
    cut is the whole grid's, so with seed 2 recorded before (a sweep resumed after a kill) 1 and 3 still pair."""
    configs = expand({**TINY, "result-dir": str(tmp_path), "fuse": "on", "no-cuda": True}, {"seed": [1, 2, 3]})
    if seed_2_done:
        run_sweep(configs[1:2], log=lambda m: None)
    outcomes = run_sweep(configs, Executor("processes", workers=2), log=lambda m: None)  # on a GPU a group stays whole
    assert [o.status for o in outcomes] == ["finished", "reused" if seed_2_done else "finished", "finished"]
    steps = [load_record(o.detail).summary["train_step"] for o in outcomes if o.status == "finished"]
    assert steps[0].startswith("fused (2 runs)") and steps[-1] == steps[0]
    assert seed_2_done or not steps[1].startswith("fused")
    assert sorted(load_table(tmp_path)["seed"]) == [1, 2, 3]


def test_submitit_local_executor_runs_a_three_run_array(tmp_path):
    submitit = pytest.importorskip("submitit")
    configs = expand({**TINY, "result-dir": str(tmp_path / "results")}, {"seed": [1, 2, 3]})
    executor = submitit.LocalExecutor(folder=tmp_path / "logs")
    executor.update_parameters(timeout_min=10)
    jobs = executor.map_array(SweepTask(), [c.to_dict() for c in configs])
    paths = [job.result() for job in jobs]
    assert len(set(paths)) == 3
    assert len(load_table(tmp_path / "results")) == 3


def test_the_sweep_command(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {**TINY, "result-dir": str(tmp_path / "r")},
                                    "grid": {"pruner": ["rand", "mag"]}, "expid": "{pruner}"}))
    assert [c.expid for c in load_grid(grid).configs] == ["rand", "mag"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "prunelab", "sweep", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    dry = run(grid, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("to run") == 2
    done = run(grid)
    assert done.returncode == 0, done.stderr
    assert "sweep: 2 finished" in done.stdout
    assert run(grid, "--dry-run").stdout.count("complete") == 2
    (tmp_path / "bad.yaml").write_text("base: {pruner: lamp}\n")
    bad = run(tmp_path / "bad.yaml")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "unknown pruner" in bad.stderr


def test_a_run_held_by_another_process_is_waited_for_not_failed(tmp_path, monkeypatch):
    from prunelab.runs.checkpoint import RunCheckpoint
    from prunelab.runs.prepare import run_checkpoint

    configs = expand({**TINY, "result-dir": str(tmp_path)}, {"pruner": ["rand", "mag"]})
    held, release = threading.Event(), threading.Event()

    def other_process():  # a second open file description: its flock conflicts as another process's would
        lock = run_checkpoint(configs[0], "")
        lock.acquire()
        held.set()
        release.wait(120)
        lock.release()

    holder = threading.Thread(target=other_process)
    holder.start()
    held.wait(60)
    waited = []  # the runs the sweep waited for: the holder lets go as the sweep starts to wait
    real_wait = RunCheckpoint.wait_until_free

    def wait_until_free(checkpoint):
        waited.append(checkpoint.folder)
        release.set()
        real_wait(checkpoint)

    monkeypatch.setattr(RunCheckpoint, "wait_until_free", wait_until_free)
    outcomes = run_sweep(configs, log=lambda message: None)
    holder.join()
    assert [o.status for o in outcomes] == ["finished", "finished"]
    assert waited == [run_checkpoint(configs[0], "").folder]  # rand's, the run held; not mag's
    assert sorted(load_table(tmp_path)["pruner"]) == ["mag", "rand"]


#: another process that holds a lock file (argv[1]) until a line comes on its stdin, having written nothing
HOLD_LOCK = """
import fcntl, pathlib, sys
folder = pathlib.Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
handle = open(folder / "lock", "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_run_another_process_holds_is_not_handed_out_and_runs_here_once_it_lets_go(tmp_path, monkeypatch):
    from prunelab.runs.checkpoint import RunCheckpoint
    from prunelab.runs.prepare import run_checkpoint

    configs = expand({**TINY, "result-dir": str(tmp_path)}, {"pruner": ["rand", "mag"]})
    folder = run_checkpoint(configs[0], "").folder
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    events = []  # what the task was given, and when the sweep began to wait, in order
    real_call, real_wait = SweepTask.__call__, RunCheckpoint.wait_until_free

    def call(task, values, *args, **kwargs):
        events.append(("task", [v["pruner"] for v in (values if isinstance(values, list) else [values])]))
        return real_call(task, values, *args, **kwargs)

    def wait_until_free(checkpoint):
        events.append(("wait", checkpoint.folder))
        holder.communicate("\n", timeout=60)  # the holder lets go, and leaves no record
        real_wait(checkpoint)

    monkeypatch.setattr(SweepTask, "__call__", call)
    monkeypatch.setattr(RunCheckpoint, "wait_until_free", wait_until_free)
    try:
        assert holder.stdout.readline() == "held\n"
        outcomes = run_sweep(configs, log=lambda message: None)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert events == [("task", ["mag"]), ("wait", folder), ("task", ["rand"])]
    assert [o.status for o in outcomes] == ["finished", "finished"]
    assert sorted(load_table(tmp_path)["pruner"]) == ["mag", "rand"]


def test_a_sweep_that_does_not_wait_leaves_a_held_run_to_its_holder(tmp_path, monkeypatch):
    from prunelab.runs import sweep
    from prunelab.runs.checkpoint import RunCheckpoint
    from prunelab.runs.prepare import run_checkpoint
    from prunelab.runs.sweep_lines import ELSEWHERE, Outcome

    configs = expand({**TINY, "result-dir": str(tmp_path)}, {"pruner": ["rand", "mag", "snip"]})
    submitted = []  # the runs handed to Slurm

    def submit(groups, executor, log, task):
        for config in (c for group in groups for c in group):
            submitted.append(config.pruner)
            yield Outcome(config, "submitted", "7_0")

    monkeypatch.setattr(sweep, "_run_slurm", submit)
    monkeypatch.setattr(RunCheckpoint, "wait_until_free", lambda checkpoint: pytest.fail("waited"))
    holder = run_checkpoint(configs[1], "")  # another open lock file conflicts as another process's would
    holder.acquire()
    try:
        outcomes = run_sweep(configs, Executor("slurm", wait=False), log=lambda message: None)
        free, held = sweep.set_aside_held(configs, log=lambda message: None)
    finally:
        holder.release()
    assert sorted(submitted) == ["rand", "snip"]
    assert [o.status for o in outcomes] == ["submitted", ELSEWHERE, "submitted"]
    assert [c.pruner for c in free] == ["rand", "snip"] and [o.config.pruner for o in held.values()] == ["mag"]
    assert {o.status for o in held.values()} == {ELSEWHERE}
    free, held = sweep.set_aside_held(configs, log=lambda message: None)  # let go (its lock file stays)
    assert free == configs and held == {}


def test_a_run_starting_while_another_sweep_probes_its_lock_is_not_refused(tmp_path):
    """held_elsewhere holds a shared lock for a moment; a task taking the run's lock just then gets it once the
    probe lets go, instead of being refused as in progress."""
    import fcntl

    from prunelab.runs.prepare import run_checkpoint

    (config,) = expand({**TINY, "result-dir": str(tmp_path / "r")}, {"pruner": ["rand"]})
    checkpoint = run_checkpoint(config, "")
    checkpoint.folder.mkdir(parents=True)
    probe = open(checkpoint.folder / "lock", "a+")
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # as the probe of another sweep holds it
    threading.Timer(0.02, probe.close).start()
    checkpoint.acquire()
    checkpoint.release()


def test_a_no_wait_sweep_whose_runs_are_submitted_or_running_elsewhere_exits_0(tmp_path, monkeypatch):
    from prunelab.runs import sweep
    from prunelab.runs.cli import main
    from prunelab.runs.sweep_lines import ELSEWHERE, Outcome

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {**TINY, "result-dir": str(tmp_path / "r")},
                                    "grid": {"pruner": ["rand", "mag"]}}))
    monkeypatch.setattr(sweep, "run_sweep", lambda configs, executor: [Outcome(configs[0], "submitted", "7_0"),
                                                                       Outcome(configs[1], ELSEWHERE)])
    assert main(["sweep", str(grid), "--executor", "slurm", "--no-wait"]) == 0


def test_a_sweep_waiting_for_another_process_stops_on_sigterm(tmp_path):
    from prunelab.runs.prepare import run_checkpoint

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {**TINY, "result-dir": str(tmp_path / "r")},
                                    "grid": {"pruner": ["rand"]}}))
    holder = run_checkpoint(load_grid(grid).configs[0], "")
    holder.acquire()  # this test process trains the run, as far as the sweep can tell
    try:
        sweep = subprocess.Popen([sys.executable, "-m", "prunelab", "sweep", str(grid)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})  # each line as it is said
        for line in sweep.stdout:
            if "waiting for it" in line:
                break
        sweep.send_signal(signal.SIGTERM)
        start = time.monotonic()
        err = sweep.communicate(timeout=60)[1]
        assert time.monotonic() - start < 10, err  # not held until the other process lets go
        assert sweep.returncode == 143 and "Traceback" not in err, err
    finally:
        holder.release()


def test_two_sweeps_of_one_grid_at_once_both_exit_0(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {**TINY, "train-subset": 1024, "post-epochs": 3,
                                             "result-dir": str(tmp_path / "r")},
                                    "grid": {"pruner": ["rand", "mag", "snip"]}, "expid": "{pruner}"}))
    cmd = [sys.executable, "-m", "prunelab", "sweep", str(grid)]
    sweeps = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in sweeps]
    assert [p.returncode for p in sweeps] == [0, 0], outputs
    assert not any("failed" in out.lower() for out in outputs), outputs
    assert sorted(load_table(tmp_path / "r")["record"]) == ["mag", "rand", "snip"]


@pytest.mark.parametrize("executor", ["local", "processes"])
def test_a_fusable_grid_trains_as_one_group_through_each_executor(tmp_path, executor):
    configs = expand({**TINY, "result-dir": str(tmp_path), "fuse": "on"}, {"seed": [1, 2, 3]})
    lines: list[str] = []
    outcomes = run_sweep(configs, Executor(executor, workers=1), log=lines.append)  # more would share the group out
    assert [o.status for o in outcomes] == ["finished"] * 3
    table = load_table(tmp_path)
    assert sorted(table["seed"]) == [1, 2, 3] and set(table["train_step"]) == {"fused (3 runs)"}
    assert any(line.strip().startswith("fused: 3 runs") for line in lines), lines


def test_a_group_says_its_decision_first_and_each_run_as_its_record_is_written(tmp_path, monkeypatch):
    # a group whose runs train one after another (the decision forced: which way it goes is measured, and
    # measured elsewhere) says each run's line as that run ends, not all of them when the group ends; the
    # pruning of all 3 runs (100 s each on a fake clock) is said with the decision, not as the first run's time,
    # and each run's line says its own time (7 s on that clock: the writing of its record)
    import time

    from prunelab.runs import fused, sweep_lines
    from prunelab.runs import sweep as sweep_module

    now = [0.0]  # the sweep's clock, moved only by the pruning and the writing of records below

    class FakeTime:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def perf_counter():
            return now[0]

    def takes(seconds, fn):
        def timed(*args):
            now[0] += seconds
            return fn(*args)
        return timed

    for module in (sweep_module, sweep_lines):
        monkeypatch.setattr(module, "time", FakeTime())
    monkeypatch.setattr(fused, "decide", lambda members, shared=1: (False, f"separate: {len(members)} runs; test"))
    monkeypatch.setattr(fused, "pre_train_and_prune", takes(100.0, fused.pre_train_and_prune))
    monkeypatch.setattr(fused, "finish", takes(7.0, fused.finish))
    configs = expand({**TINY, "result-dir": str(tmp_path), "fuse": "auto"}, {"seed": [1, 2, 3]})
    seen: list[tuple[str, int]] = []  # each line with the records written when it was said

    def log(line: str) -> None:
        seen.append((line.strip(), len(list(tmp_path.glob("singleshot/*/summary.json")))))

    outcomes = run_sweep(configs, log=log)
    assert [o.status for o in outcomes] == ["finished"] * 3
    said = [(line.split(" ")[0], records) for line, records in seen if line.startswith(("separate:", "["))]
    assert said[0] == ("separate:", 0)
    assert [(k, n) for k, n in said if k.startswith("[")] == [("[1/3]", 1), ("[2/3]", 2), ("[3/3]", 3)]
    lines = [line for line, _ in seen]
    decision = next(line for line in lines if line.startswith("separate:"))
    assert [int(n) for n in re.findall(r"(\d+) s\b", decision)] == [300]
    assert [int(re.search(r"(\d+) s$", line).group(1)) for line in lines if line.startswith("[")] == [7, 7, 7]


def test_a_record_written_before_its_group_fails_counts_as_finished(tmp_path, monkeypatch):
    # the group's 3 runs train fused, then writing the second record fails: the first record is on disk and
    # is said as finished, the two others as failed, and each is counted once
    from prunelab.runs import fused

    real, written = fused.finish, []

    def fails_on_the_second(run, training):
        if written:
            raise OSError("disk full")
        written.append(run.config.record_name)
        return real(run, training)

    monkeypatch.setattr(fused, "finish", fails_on_the_second)
    configs = expand({**TINY, "result-dir": str(tmp_path), "fuse": "on"}, {"seed": [1, 2, 3]})
    lines: list[str] = []
    outcomes = run_sweep(configs, log=lines.append)
    assert sorted(o.status for o in outcomes) == ["failed", "failed", "finished"], lines
    finished = next(o for o in outcomes if o.status == "finished")
    assert finished.config.record_name == written[0] and (tmp_path / "singleshot").is_dir()
    assert sorted(re.findall(r"\[(\d)/3\]", " ".join(lines))) == ["1", "2", "3"]


def test_a_run_that_fails_to_open_fails_alone_and_a_stop_asked_for_stops_the_group(tmp_path, monkeypatch):
    # one run of a fused group meets a record of another run under its name: it fails by itself, with the
    # conflict's message, and the two others train fused; a stop asked for while a run prunes stops them all
    from prunelab.core.train import Preempted
    from prunelab.runs import fused

    configs = expand({**TINY, "result-dir": str(tmp_path), "fuse": "on"}, {"seed": [1, 2, 3]})
    real = fused.reused_record

    def conflicting(config, log):
        if config.seed == 2:
            raise RecordConflict(f"{config.record_name} holds another run")
        return real(config, log)

    monkeypatch.setattr(fused, "reused_record", conflicting)
    outcomes = run_sweep(configs, log=lambda line: None, echo=False)
    assert [o.status for o in outcomes] == ["finished", "failed", "finished"]
    assert outcomes[1].detail == f"{configs[1].record_name} holds another run"  # a UserError: its message
    assert set(load_table(tmp_path)["train_step"]) == {"fused (2 runs)"}
    # a run that its own validation refuses (a pruner no one registered) likewise
    unknown = [c.replace(seed=c.seed + 3, pruner="nosuch" if c.seed == 1 else c.pruner) for c in configs]
    outcomes = run_sweep(unknown, log=lambda line: None, echo=False)
    assert [o.status for o in outcomes] == ["failed", "finished", "finished"] and "nosuch" in outcomes[0].detail

    def preempted(run, training):
        raise Preempted("SIGTERM")

    monkeypatch.setattr(fused, "pre_train_and_prune", preempted)
    with pytest.raises(Preempted):
        fused.run_group([c.replace(seed=c.seed + 10) for c in configs], progress=False, log=lambda line: None)


@pytest.mark.parametrize("grouped", [False, True])
def test_a_forced_task_requeued_by_submitit_resumes_and_does_not_start_over(tmp_path, grouped):
    config = RunConfig(dataset="mnist", model="fc", data_source="synthetic", train_subset=128, test_subset=64,
                       post_epochs=3, checkpoint_every=0, force=True, result_dir=str(tmp_path), expid="forced")
    payload = [config.to_dict(), config.replace(seed=2, expid="forced-2").to_dict()] if grouped else config.to_dict()
    task = SweepTask(echo=False)
    # the task is preempted (killed here) once its checkpoints are under way, then requeued as submitit does
    killed = run_forked(task, payload, env={KILL_AFTER_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    requeued = task.checkpoint(payload)
    returned = requeued.function(*requeued.args, **requeued.kwargs)
    paths = returned.paths if grouped else [returned]
    assert len(paths) == (2 if grouped else 1)
    assert all(load_record(path).summary["peak_memory_since_resume"] for path in paths)  # resumed, every run


def test_a_group_task_that_failed_after_writing_records_counts_them_finished(tmp_path):
    # as a worker's or a Slurm job's failure reaches the sweep: the group's task raised, two of its runs'
    # records are on disk
    from prunelab.runs.sweep import Tally, _failed_group

    configs = expand({**TINY, "result-dir": str(tmp_path), "fuse": "off"}, {"seed": [1, 2, 3]})
    assert [o.status for o in run_sweep(configs[:2], log=lambda _: None)] == ["finished"] * 2
    lines: list[str] = []
    outcomes = list(_failed_group(configs, RuntimeError("job 7 lost its node"), Tally(lines.append, 3)))
    assert [o.status for o in outcomes] == ["finished", "finished", "failed"]
    assert [o.config for o in outcomes] == configs
    assert [line.split()[0] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    forced = list(_failed_group([configs[0].replace(force=True)], RuntimeError("lost"), Tally(lines.append, 1)))
    assert [o.status for o in forced] == ["failed"]  # its record may be the one it was asked to replace


def test_an_unquoted_on_or_off_in_a_grid_file_is_the_fuse_setting(tmp_path):
    grid = tmp_path / "grid.yaml"  # YAML reads on / off as true / false
    grid.write_text("base: {dataset: mnist, model: fc, fuse: off}\ngrid: {pruner: [rand, mag]}\n"
                    "overrides: [{when: {pruner: mag}, set: {fuse: on}}]\n")
    assert [c.fuse for c in load_grid(grid).configs] == ["off", "on"]
    grid.write_text("base: {dataset: mnist, model: fc}\ngrid: {fuse: [on, off, auto]}\nexpid: 'f-{fuse}'\n")
    assert [c.fuse for c in load_grid(grid).configs] == ["on", "off", "auto"]


@pytest.mark.parametrize("text", ["base: {dataset: mnist}\ngrid: {pruner: [snip], pruner: [rand]}\n",
                                  "grid: {pruner: [snip]}\ngrid: {pruner: [rand]}\n"])
def test_a_key_given_twice_in_a_grid_file_is_refused_not_overwritten(tmp_path, text):
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    with pytest.raises(UserError, match="'(pruner|grid)' is given twice"):
        load_grid(grid)


def test_a_number_in_scientific_notation_in_a_grid_file_is_a_number(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: {dataset: mnist, model: fc, lr: 1e-3, weight-decay: 5E-4}\ngrid: {lr: [1e-2, 2.5e-3]}\n")
    assert [(c.lr, c.weight_decay) for c in load_grid(grid).configs] == [(0.01, 0.0005), (0.0025, 0.0005)]
    grid.write_text("base: {dataset: mnist, model: fc, expid: 1e3}\n")  # a string where a string is wanted
    assert [c.expid for c in load_grid(grid).configs] == ["1e3"]
    grid.write_text("base: {dataset: mnist, model: fc}\nslurm: {mem-gb: 1.6e1}\n")
    assert load_grid(grid).executor.slurm.mem_gb == 16.0


def test_one_run_written_twice_with_a_whole_number_is_refused(tmp_path):
    grid = tmp_path / "grid.yaml"
    for template in ("", "expid: 'c{compression}'\n"):  # a template names them apart: c1 and c1.0
        grid.write_text("base: {dataset: mnist, model: fc}\ngrid: {compression: [1, 1.0, 2]}\n" + template)
        with pytest.raises(UserError, match="compression"):
            load_grid(grid)
    grid.write_text("base: {dataset: mnist, model: fc}\ngrid: {compression: [1, 2]}\n")  # each once, either way
    assert [c.compression for c in load_grid(grid).configs] == [1, 2]


@pytest.mark.parametrize("text", ["base: {dataset: mnist, weight-decay: 0.1, weight_decay: 0.5}\n",
                                  "base: {dataset: mnist}\nslurm: {mem-gb: 4, mem_gb: 8}\n"])
def test_a_setting_spelt_two_ways_in_one_mapping_is_refused(tmp_path, text):
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    with pytest.raises(UserError, match="twice"):
        load_grid(grid)


def test_progress_lines_tell_apart_runs_that_differ_in_seed_rounds_or_ablation():
    from prunelab.runs.sweep_lines import describe

    base = RunConfig(dataset="mnist", model="fc", pruner="snip", compression=1.0)
    variants = [base, base.replace(seed=2), base.replace(invert=True), base.replace(shuffle=True),
                base.replace(reinitialize=True), base.replace(prune_epochs=10)]
    shown = [describe(c).rsplit(" (", 1)[0] for c in variants]  # without the record's name
    assert len(set(shown)) == len(variants)
    assert "x100" in describe(base.replace(pruner="synflow"))  # SynFlow's rounds, default or not


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL])
def test_a_processes_sweep_stopped_from_outside_leaves_no_worker_training(tmp_path, kill):
    # SIGTERM: the sweep stops its workers and says so (143); SIGKILL: the workers see their sweep gone and exit
    import psutil

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {**TINY, "train-subset": 4096, "post-epochs": 2000, "fuse": "off",
                                             "result-dir": str(tmp_path / "r")},
                                    "grid": {"pruner": ["rand", "snip"]}, "expid": "{pruner}",
                                    "executor": "processes", "workers": 2}))
    sweep = subprocess.Popen([sys.executable, "-m", "prunelab", "sweep", str(grid)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list((tmp_path / "r").glob("singleshot/.ckpt-*/state.pt"))) < 2 and time.time() < deadline:
        time.sleep(0.1)  # both runs pruned and training
    children = psutil.Process(sweep.pid).children(recursive=True)  # the workers, and multiprocessing's tracker
    workers = [child for child in children if "spawn_main" in " ".join(child.cmdline())]
    sweep.send_signal(kill)
    _, alive = psutil.wait_procs(children, timeout=60)
    for worker in alive:
        worker.kill()  # not to train on beside the tests that follow (they hold the sweep's stderr open too)
    err = sweep.communicate(timeout=60)[1]
    assert len(workers) >= 2 and not alive, err
    assert sweep.returncode == (143 if kill == signal.SIGTERM else -signal.SIGKILL), err
    if kill == signal.SIGTERM:
        assert "SIGTERM" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert load_table(tmp_path / "r").empty  # 2,000 epochs each: neither run ended


def test_a_diverged_run_is_counted_and_said_as_diverged_in_the_sweep_report(tmp_path):
    from prunelab.runs.sweep_lines import report

    configs = expand({**TINY, "result-dir": str(tmp_path), "train-batch-size": 16, "post-epochs": 3},
                     {"lr": [1e-3, 1e30]})
    lines: list[str] = []
    outcomes = run_sweep(configs, log=lines.append)
    assert [o.status for o in outcomes] == ["finished", "diverged"]
    assert [line for line in lines if "DIVERGED" in line] and "1 diverged" in report(outcomes)


def test_ctrl_c_during_a_sweep_is_one_line_and_exit_code_130(tmp_path, monkeypatch, capsys):
    import prunelab.runs.sweep as sweep
    from prunelab.runs.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {"dataset": "mnist", "model": "fc", "result-dir": str(tmp_path)}}))
    monkeypatch.setattr(sweep, "run_sweep", interrupted)
    assert main(["sweep", str(grid)]) == 130
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_failed_run_is_one_line_its_mistake_without_an_internal_class_name():
    from prunelab.data.in_memory import _MissingData
    from prunelab.runs.sweep_lines import error_line

    assert error_line(_MissingData("the MNIST data set is not in /x\nmore")) == "the MNIST data set is not in /x"
    assert error_line(RuntimeError("lost")) == "RuntimeError: lost"
