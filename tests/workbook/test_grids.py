"""The runs a notebook asks for: seeds per set-up, per set-up overrides, and what a page shows while they run."""

import re
from pathlib import Path

import pytest
import yaml

from prunelab.workbook.grids import (
    PROGRESS_FILE,
    WorkbookParams,
    dense_grid,
    ensure_runs,
    run_config,
    seeds_for,
    tuning_grid,
)


def test_real_data_runs_every_seed_and_the_stand_in_only_the_first(monkeypatch):
    monkeypatch.setenv("PRUNELAB_DATA", "/nonexistent-prunelab-data")  # no real set: auto gives bundled MNIST
    params = WorkbookParams(data_source="auto", seeds=[1, 2, 3], pruners=["rand"], compressions=[1.0], post_epochs=1,
                            train_subset=256, overrides={"mnist": {"post_epochs": 30, "train_subset": 4000}})
    assert seeds_for(params, "mnist") == [1, 2, 3] and seeds_for(params, "cifar") == [1]
    grid = tuning_grid(params)
    mnist = [c for c in grid if c.dataset == "mnist"]
    assert sorted(c.seed for c in mnist) == [1, 2, 3]
    assert {(c.post_epochs, c.train_subset) for c in mnist} == {(30, 4000)}
    assert {(c.seed, c.post_epochs, c.train_subset) for c in grid if c.dataset == "cifar10"} == {(1, 1, 256)}
    assert WorkbookParams.from_namespace({"seed": 7}).seeds == [7]  # older parameter files
    dense = dense_grid(params)
    assert [(c.dataset, c.compression, c.seed) for c in dense] == [("cifar10", 0.0, 1)] + [("mnist", 0.0, s)
                                                                                          for s in (1, 2, 3)]


def test_a_notebook_shows_one_summary_line_and_the_runs_report_to_the_progress_file(tmp_path, monkeypatch, capsys):
    progress = tmp_path / "progress.txt"
    monkeypatch.setenv(PROGRESS_FILE, str(progress))
    params = WorkbookParams(result_dir=str(tmp_path / "results"))
    configs = [run_config(params, "digits", "rand", 0.5, seed=seed).replace(train_subset=64, test_subset=32)
               for seed in (1, 2)]
    records = ensure_runs(configs, params=params)
    assert _counts(capsys.readouterr().out) == (2, 2, 0)  # one line: runs, computed, reused
    lines = progress.read_text().splitlines()
    assert tuple(map(int, re.findall(r"\d+", lines[0]))) == (2, 2) and "(local)" in lines[0]  # to compute, of
    assert lines[1].split(":")[0] in ("fused", "separate")  # the fusion decision, measured on this device
    assert [line.split("]")[0] for line in lines[2:]] == ["[1/2", "[2/2"] and "digits/conv rand" in lines[2]
    assert all("digits" in (r.path / "log.txt").read_text().splitlines()[0] for r in records)  # each run's log
    ensure_runs(configs, params=params)
    assert _counts(capsys.readouterr().out) == (2, 0, 2)


def _counts(out: str) -> tuple[int, ...]:
    """The numbers of a notebook's one summary line (runs, computed, reused); none where it is not one line."""
    return tuple(map(int, re.findall(r"\d+", out))) if out.count("\n") == 1 else ()


def test_a_bad_parameter_stops_the_notebook_in_one_line_before_any_run(tmp_path):
    from prunelab.errors import UserError

    params = WorkbookParams(result_dir=str(tmp_path / "results"))
    good = run_config(params, "digits", "rand", 0.5).replace(train_subset=64, test_subset=32)
    with pytest.raises(UserError, match="'lamp'"):
        ensure_runs([good, good.replace(pruner="lamp")], params=params)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*"))  # the good one too


def test_a_run_another_process_trains_keeps_a_notebook_that_does_not_wait_pending(tmp_path, monkeypatch):
    from prunelab.runs.sweep_lines import ELSEWHERE, Outcome
    from prunelab.workbook import grids

    params = WorkbookParams(result_dir=str(tmp_path / "results"), executor="slurm", wait=False)
    config = run_config(params, "digits", "rand", 0.5).replace(train_subset=64, test_subset=32)
    monkeypatch.setattr(grids, "run_sweep", lambda configs, *a, **k: [Outcome(c, ELSEWHERE) for c in configs])
    with pytest.raises(grids.RunsPending):
        ensure_runs([config], params=params, progress=False)


REPO = Path(__file__).resolve().parents[2]


def test_quick_studies_real_mnist_at_seven_compressions_for_seven_variants_over_three_seeds(monkeypatch):
    monkeypatch.setenv("PRUNELAB_DATA", "/nonexistent-prunelab-data")  # auto: bundled real MNIST, the stand-in CIFAR
    values = yaml.safe_load((REPO / "params/quick/01_tuning.yaml").read_text())
    grid = tuning_grid(WorkbookParams.from_namespace(values))
    mnist = [c for c in grid if c.dataset == "mnist"]
    cells = {(c.compression, c.pruner, c.prune_epochs, c.seed) for c in mnist}
    assert len(mnist) == len(cells) == 7 * 7 * 3
    assert sorted({c.compression for c in mnist}) == [0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert len({(c.pruner, c.prune_epochs) for c in mnist}) == 7 and {c.seed for c in mnist} == {1, 2, 3}
    assert {c.pruner for c in mnist} - {c.pruner for c in grid if c.dataset == "cifar10"} == {"prospr"}
    assert {(c.post_epochs, c.train_subset) for c in mnist} == {(30, 4000)}
    cifar = [c for c in grid if c.dataset == "cifar10"]  # the stand-in: Task 1's compressions, first seed
    assert sorted({c.compression for c in cifar}) == [0.2, 0.25, 0.5, 1.0] and {c.seed for c in cifar} == {1}
