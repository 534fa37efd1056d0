"""What a profile costs, printed before anything trains: ``run_all.sh --estimate``."""

import functools
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prunelab.core.fused_loop import MEMORY_SHARE
from prunelab.runs.config import RunConfig
from prunelab.runs.store import json_writer, record_path, write_record
from prunelab.workbook.estimate import estimate, profile_configs, report
from prunelab.workbook.step_costs import FusedTiming, Setup, SetupTiming

REPO = Path(__file__).resolve().parents[2]


def test_the_full_profile_lists_each_distinct_run_once():
    configs = profile_configs(REPO / "params" / "full")
    names = [(c.experiment, c.record_name) for c in configs]
    assert len(names) == len(set(names))
    # Task 1: 3 compressions x 6 variants of CIFAR + 6 of MNIST and the unpruned reference of each, over 3
    # seeds; Task 3 and Task 2 share some of them. The sanity checks: 4 pruners x 2 compressions x 3 seeds, as
    # scored and with 3 ablations, of which the runs as scored at compression 1 are Task 1's
    assert sum(c.dataset == "mnist" for c in configs) == (6 + 1) * 3 + 4 * 2 * 3 * 4 - 4 * 3
    ablated = [c for c in configs if c.shuffle or c.reinitialize or c.invert]
    assert len(ablated) == 3 * 4 * 2 * 3 * 2  # both set-ups: the full profile has real CIFAR-10
    assert sorted({c.seed for c in configs if c.dataset == "mnist"}) == [1, 2, 3]
    assert all(c.post_epochs == 100 for c in configs if c.dataset == "cifar10" and not c.save_trace)
    assert Setup.of(configs[0]).train_examples == 50_000  # no subset: the whole CIFAR-10 training set


def test_estimate_measures_each_setup_and_prints_a_total(tmp_path):
    params = tmp_path / "params"  # the tracing notebook's one run, to keep the measuring short
    params.mkdir()
    shutil.copy(REPO / "params" / "smoke" / "02_tracing.yaml", params)
    results = tmp_path / "results"
    result = subprocess.run([sys.executable, "-m", "prunelab.workbook.estimate", "--profile", "smoke", "--params",
                             str(params), "--result-dir", str(results), "--device", "cpu", "--steps", "1"],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    first, *_, last = result.stdout.strip().splitlines()
    assert _numbers(first) == [1, 0, 1]  # runs, already in the store, to compute
    (config,) = profile_configs(params, str(results))
    label = Setup.of(config).label
    assert (Setup.of(config).train_examples, Setup.of(config).batch_size) == (256, 256)
    (row,) = [line for line in result.stdout.splitlines() if line.startswith(label)]
    runs, _, per_epoch, _, one_at_a_time_h, expected_h = row[len(label):].split()  # "fused": "-", one run
    assert int(runs) == 1 and float(per_epoch) > 0
    total_h, total_min, alone_h = _numbers(last)  # the total is the table's one row
    assert (total_h, alone_h) == (float(expected_h), float(one_at_a_time_h)) and total_h > 0
    assert total_min == pytest.approx(total_h * 60, rel=1e-2)
    assert not results.exists()  # nothing trained, nothing written


def _numbers(line: str) -> list[float]:
    """The numbers of a line of the estimate (3 significant figures, maybe in e-notation)."""
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", line)]


def _store_every_run(result_dir) -> list:
    configs = profile_configs(REPO / "params" / "smoke", str(result_dir))
    for c in configs:  # every run already has a usable record
        write_record(record_path(c.result_dir, c.experiment, c.record_name),
                     {"config.json": json_writer(c.to_dict()), "env.json": json_writer({}),
                      "summary.json": json_writer({"config_hash": c.config_hash(), "amp_dtype": "bf16"})})
    return configs


def test_stored_runs_cost_nothing(tmp_path):
    configs = _store_every_run(tmp_path)
    frame = estimate(REPO / "params" / "smoke", str(tmp_path), device="cpu", steps=1)
    assert frame.empty and frame.attrs["stored"] == frame.attrs["runs"] == len(configs) and frame.attrs["total_h"] == 0
    text = report(frame, "smoke").splitlines()
    assert _numbers(text[0]) == [len(configs), len(configs), 0]  # runs, already in the store, to compute
    assert _numbers(text[-1])[0] == 0  # the total, in hours


def test_run_all_estimate_is_the_estimate(tmp_path):
    _store_every_run(tmp_path)
    result = subprocess.run(["bash", str(REPO / "run_all.sh"), "--profile", "smoke", "--estimate",
                             "--result-dir", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == report(estimate(REPO / "params" / "smoke", str(tmp_path)), "smoke").strip()
    assert _numbers(result.stdout.splitlines()[0])[-1] == 0  # nothing to compute


def test_a_shared_pretraining_is_counted_once(tmp_path):
    from prunelab.workbook.estimate import pretraining_epochs

    configs = profile_configs(REPO / "params" / "full", str(tmp_path))
    mag = [c for c in configs if c.pre_epochs]
    assert mag and all(c.pruner == "mag" and c.pre_epochs == 200 for c in mag)
    counted = pretraining_epochs(configs)
    # every Mag run of one set-up and seed (each compression, each ablation) continues from one pre-training
    trainings = {(c.dataset, c.seed) for c in mag}
    assert len(trainings) == 2 * 3 and len(mag) > len(trainings)
    assert sum(counted.values()) == 200 * len(trainings)
    assert all(counted[id(c)] in (0, 200) for c in mag) and all(counted[id(c)] == 0 for c in configs if c not in mag)


def test_a_groups_pre_trainings_are_costed_as_one_fused_group(monkeypatch, tmp_path):
    from prunelab.workbook import estimate as est

    base = RunConfig(dataset="mnist", model="fc", data_source="synthetic", train_subset=512, test_subset=256,
                     pruner="mag", pre_epochs=4, post_epochs=10, result_dir=str(tmp_path))
    configs = [base.replace(seed=s, compression=c) for s in (1, 2, 3) for c in (0.5, 1.0)]
    pre = est.pretraining_epochs(configs)
    assert sorted(pre.values()) == [0, 0, 0, 4, 4, 4]  # one pre-training per seed
    # fixed timings (a measured step is what the other tests check): a fused step of M runs costs M/2 steps
    timing = SetupTiming(step_s=0.01, epoch_s=2 * 0.01 + 0.005, eval_s=0.005,  # 2 training batches, 1 test batch
                         step_bytes=2**20, cuda_graph=False)
    monkeypatch.setattr(est, "measure_fused", lambda setup, m, device, steps, shared=1: FusedTiming(0.005 * m,
                                                                                                 0.0025 * m))
    setup, cpu = Setup.of(base), torch.device("cpu")
    post_only, _ = est._fusion_saving(setup, configs, dict.fromkeys(pre, 0), timing, cpu, 1)
    both, _ = est._fusion_saving(setup, configs, pre, timing, cpu, 1)
    # 6 runs of 10 epochs: 6 x (10 x 0.025 + 0.005) one at a time, 10 x (2 x 0.03 + 0.015) + 0.015 fused
    assert post_only == pytest.approx(1.53 - 0.765)
    # and 3 pre-trainings of 4 epochs: 3 x (4 x 0.025 + 0.005) against 4 x (2 x 0.015 + 0.0075) + 0.0075
    assert both - post_only == pytest.approx(0.315 - 0.1575)
    # a device whose memory holds a fused step of 2 runs: the 6 runs cost as 3 groups of one seed each (2 runs
    # to an input block), the 3 pre-trainings as 3/2 of a group of 2 (an estimate: the third trains alone)
    measured = []
    monkeypatch.setattr(est, "measure_fused", lambda setup, m, device, steps, shared=1: measured.append((m, shared))
                        or FusedTiming(0.005 * m, 0.0025 * m))
    monkeypatch.setattr(est, "device_room", lambda device: 2 * 2**20 / MEMORY_SHARE + 1)
    parts, _ = est._fusion_saving(setup, configs, pre, timing, cpu, 1)
    assert measured == [(2, 1), (2, 2)]  # the pre-trainings first, as they train
    # post-training 3 x (10 x (2 x 0.01 + 0.005) + 0.005) fused; pre-training 3/2 x (4 x (2 x 0.01 + 0.005) + 0.005)
    assert parts == pytest.approx((1.53 - 3 * 0.255) + (0.315 - 1.5 * 0.105))


@pytest.mark.parametrize("pre_epochs, stages", [
    (30, [(18, 30, True), (3, 30, False)]),  # the quick profile: one network of 18, then Mag's post-training
    (200, [(18, 100, True), (3, 100, True), (9, 100, False)]),  # the full profile's lengths
    (10, [(18, 10, True), (15, 90, False), (9, 100, False)])])
def test_the_stages_of_a_group_are_those_it_trains(tmp_path, pre_epochs, stages):
    from prunelab.workbook import estimate as est

    base = RunConfig(dataset="mnist", model="fc", data_source="synthetic", post_epochs=100 if pre_epochs != 30 else 30,
                     result_dir=str(tmp_path))
    mag = [base.replace(pruner="mag", pre_epochs=pre_epochs, seed=s, compression=c)
           for s in (1, 2, 3) for c in ((1.0,) if pre_epochs == 30 else (0.5, 1.0, 2.0))]
    variants = [("rand", 1), ("snip", 1), ("grasp", 1), ("synflow", 1), ("synflow", 100)]  # none pre-trains
    configs = mag + [base.replace(pruner=p, prune_epochs=r, seed=s) for s in (1, 2, 3) for p, r in variants]
    pre = est.pretraining_epochs(configs)
    found = [(len(runs), epochs, pre_training) for runs, epochs, pre_training in est.group_stages(configs, pre)]
    assert found == stages


def test_a_setup_is_timed_after_its_warm_up_however_few_its_batches(monkeypatch):
    """digits has 5 full batches of 256: the warm-up a CUDA graph needs (6 steps) and the timed steps must come
    round again, not time the warm-up."""
    from prunelab.core.timing import repeat_timed
    from prunelab.workbook import step_costs

    now = [0.0]  # a clock that moves only when a training step runs, in place of time.perf_counter
    monkeypatch.setattr(step_costs, "repeat_timed", functools.partial(repeat_timed, clock=lambda: now[0]))
    base = step_costs.train_step
    calls = []

    def slow_warm_up(*args, **kwargs):
        step = base(*args, **kwargs)

        def timed(x, y):
            calls.append(len(y))
            # the warm-up (a capture on CUDA) is slow; the timed steps take 1, 2, 3, 4 and 5 s
            now[0] += 100.0 if len(calls) <= 6 else float(len(calls) - 6)
            return step(x, y)
        return timed

    monkeypatch.setattr(step_costs, "train_step", slow_warm_up)
    setup = Setup.of(RunConfig(dataset="digits", model="fc", data_source="auto"))
    timing = step_costs.measure_setup(setup, torch.device("cpu"), steps=5, warmup=6)
    assert calls == [256] * 11  # full batches only (digits' last is short), the first 5 again
    assert timing.step_s == 3.0  # the median of the five timed steps, none of the warm-up's
    assert timing.eval_s == 0.0  # evaluation steps do not move the clock
    assert timing.epoch_s == math.ceil(setup.train_examples / setup.batch_size) * 3.0


@pytest.mark.parametrize("args", [["--profile", "nope"], ["--params", "{empty}"], ["--params", "{listed}"],
                                  ["--device", "nope"], ["--steps", "0"], ["--frobnicate"]])
def test_bad_estimate_input_exits_2_in_one_line(tmp_path, capsys, args):
    from prunelab.workbook.estimate import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "01_tuning.yaml").write_text("- a list, not a mapping\n")
    args = [a.format(empty=tmp_path / "empty", listed=tmp_path / "listed") for a in args]
    base = [] if "--profile" in args else ["--profile", "smoke"]
    try:
        code = main([*base, *args])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_what_a_parameter_file_leaves_out_is_the_notebooks_default(tmp_path):
    # as papermill leaves it: 01_tuning's parameters cell trains MNIST / FC 30 epochs on 4,000 images
    (tmp_path / "01_tuning.yaml").write_text("profile: mine\ndata_source: synthetic\n")
    configs = profile_configs(tmp_path, str(tmp_path / "results"))
    mnist = {(c.post_epochs, c.train_subset) for c in configs if c.dataset == "mnist"}
    assert mnist == {(30, 4000)}
