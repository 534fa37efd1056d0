"""Submits a three-task job array through submitit to a live Slurm cluster.

Runs only where a cluster answers and has an idle node (on one machine: ``scripts/slurm_localhost.sh``
starts a one-node cluster on localhost); skips with the reason otherwise. The tasks are tiny
prunelab runs submitted by its sweep; each must land a complete record in the store.
"""

import os
import shutil
import subprocess
import time

import pytest

PARTITION = "debug"
WAIT_S = 120


def _cluster_unusable_reason() -> str | None:
    """None when sinfo answers and partition PARTITION has an idle (or partly used) node."""
    if shutil.which("sinfo") is None:
        return "no Slurm here: sinfo not on PATH (start one with scripts/slurm_localhost.sh)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-N", "-p", PARTITION, "-o", "%N %T"],
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s"
    if proc.returncode != 0:
        return f"sinfo failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
    nodes = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    if not nodes:
        return f"Slurm has no nodes in partition {PARTITION!r}"
    if not any(state in ("idle", "mixed") for _, state in nodes):
        return f"no idle node in partition {PARTITION!r}: " + ", ".join(f"{n} {s}" for n, s in nodes)
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    reason = _cluster_unusable_reason()
    if reason:
        pytest.skip(reason)


def test_a_three_run_array_lands_three_complete_records(slurm_cluster, tmp_path):
    """prunelab's sweep submits a job array through submitit (one run per task) and returns at once,
    as a notebook with ``wait = False`` does; the records are picked up from the store as they land."""
    pytest.importorskip("submitit")
    from prunelab.runs.store import load_table, record_path, valid_record
    from prunelab.runs.sweep import Executor, SlurmOptions, expand, run_sweep

    configs = expand({"dataset": "mnist", "model": "fc", "data-source": "synthetic", "train-subset": 128,
                      "test-subset": 64, "post-epochs": 1, "result-dir": str(tmp_path / "results")},
                     {"pruner": ["rand", "mag", "snip"]}, expid="slurm-{pruner}")
    submit_only = Executor("slurm", slurm=SlurmOptions(partition=PARTITION, time=5, cpus=1), wait=False)
    outcomes = run_sweep(configs, submit_only, log=lambda message: None)
    assert [o.status for o in outcomes] == ["submitted"] * 3
    job_ids = [o.detail for o in outcomes]
    assert len({j.split("_")[0] for j in job_ids}) == 1  # one array, three tasks

    deadline = time.monotonic() + WAIT_S
    while not all(valid_record(record_path(c.result_dir, c.experiment, c.record_name)) for c in configs):
        if time.monotonic() > deadline:
            queue = subprocess.run(["squeue", "-a"], capture_output=True, text=True).stdout
            subprocess.run(["scancel", job_ids[0].split("_")[0]], capture_output=True)
            logs = "\n".join(p.read_text()[-2000:] for p in (tmp_path / "results" / ".sweeps").rglob("*.err"))
            pytest.fail(f"records not complete after {WAIT_S} s; squeue:\n{queue}\n{logs}")
        time.sleep(1)
    table = load_table(tmp_path / "results")
    assert sorted(table["record"]) == ["slurm-mag", "slurm-rand", "slurm-snip"]
    assert (table["status"] == "complete").all()
    assert list((tmp_path / "results" / ".sweeps").iterdir())  # submitit's logs sit beside the records
    # a second sweep finds them complete and submits nothing
    assert [o.status for o in run_sweep(configs, Executor("slurm"), log=lambda m: None)] == ["reused"] * 3


def test_a_submission_slurm_refuses_is_one_line_and_leaves_no_sweep_folder(slurm_cluster, tmp_path, capsys):
    pytest.importorskip("submitit")
    from prunelab.errors import UserError
    from prunelab.runs.sweep import Executor, SlurmOptions, expand, run_sweep

    configs = expand({"dataset": "mnist", "model": "fc", "data-source": "synthetic", "train-subset": 128,
                      "test-subset": 64, "post-epochs": 1, "result-dir": str(tmp_path / "results")},
                     {"pruner": ["rand", "mag"]}, expid="refused-{pruner}")
    with pytest.raises(UserError, match="no-such-partition") as refused:
        run_sweep(configs, Executor("slurm", slurm=SlurmOptions(partition="no-such-partition", time=5, cpus=1),
                                    wait=False), log=lambda message: None)
    assert "\n" not in str(refused.value) and not capsys.readouterr().err  # sbatch's own lines kept out
    assert not (tmp_path / "results" / ".sweeps").exists()


def test_a_waiting_sweep_takes_each_task_s_record_as_it_ends(slurm_cluster, tmp_path):
    pytest.importorskip("submitit")
    from prunelab.runs.sweep import Executor, SlurmOptions, expand, run_sweep

    configs = expand({"dataset": "mnist", "model": "fc", "data-source": "synthetic", "train-subset": 128,
                      "test-subset": 64, "post-epochs": 1, "result-dir": str(tmp_path / "results")},
                     {"pruner": ["rand", "mag"]}, expid="waited-{pruner}")
    waiting = Executor("slurm", slurm=SlurmOptions(partition=PARTITION, time=5, cpus=1))
    outcomes = run_sweep(configs, waiting, log=lambda message: None)
    assert [o.status for o in outcomes] == ["finished"] * 2


def test_a_waiting_sweep_stopped_by_sigterm_leaves_its_tasks_running_and_says_how_to_stop_them(slurm_cluster,
                                                                                              tmp_path):
    pytest.importorskip("submitit")
    import signal
    import sys

    import yaml

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "base": {"dataset": "mnist", "model": "fc", "data-source": "synthetic", "train-subset": 128,
                 "test-subset": 64, "post-epochs": 100000, "result-dir": str(tmp_path / "results")},
        "grid": {"pruner": ["rand"]}, "executor": "slurm", "slurm": {"partition": PARTITION, "time": 5, "cpus": 1}}))
    sweep = subprocess.Popen([sys.executable, "-m", "prunelab", "sweep", str(grid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})  # each line as it is said
    submitted = sweep.stdout.readline()
    while not submitted.startswith("Submitted"):
        assert submitted, sweep.communicate()[1]  # the sweep ended before it submitted
        submitted = sweep.stdout.readline()
    array = submitted.split(" as array ")[1].split(";")[0]
    try:
        sweep.send_signal(signal.SIGTERM)
        sweep.wait(timeout=60)
        out, err = sweep.stdout.read(), sweep.stderr.read()  # the rest, after what readline took
        assert sweep.returncode == 143 and "Traceback" not in err, err
        assert f"scancel {array}" in out  # how to stop what runs on
        queue = subprocess.run(["squeue", "-h", "-j", array, "-o", "%i"], capture_output=True, text=True).stdout
        assert queue.strip(), "the task stopped with the waiting"
    finally:
        subprocess.run(["scancel", array], capture_output=True)
