"""A pruner registered in this test module runs wherever a built-in one does: the command line, a sweep
(here and in a worker process), the conservation experiments, and the workbook's tables and figures; its records
name the function they were made with."""

import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from matplotlib.colors import to_hex

from prunelab import register_pruner, run
from prunelab.core.conservation import layer_conservation, weight_layers
from prunelab.core.registry import PLUGINS_ENV
from prunelab.errors import UserError
from prunelab.models.registry import build_model
from prunelab.runs.cli import build_parser, configs_from_args, main
from prunelab.runs.config import RunConfig
from prunelab.runs.conservation import conservation_frame
from prunelab.runs.store import RecordConflict, iter_records, load_table, usable_record
from prunelab.runs.sweep import Executor, run_sweep
from prunelab.workbook.figures import plot_against_compression
from prunelab.workbook.grids import records_table
from prunelab.workbook.style import palette
from prunelab.workbook.tables import accuracy_table, settings_markdown

TINY = {"dataset": "mnist", "model": "fc", "data_source": "synthetic", "train_subset": 64, "test_subset": 32,
        "post_epochs": 1}
FLAGS = ["--data-source", "synthetic", "--train-subset", "64", "--test-subset", "32", "--post-epochs", "1"]


def score_smallest(model, targets, batches, loss_fn):
    """Keep the smallest magnitudes."""
    return {t.name: -t.param.detach().abs() for t in targets}


def score_largest(model, targets, batches, loss_fn):
    return {t.name: t.param.detach().abs() for t in targets}


class ScoringFailed(Exception):
    """A researcher's own error, which pickling cannot rebuild (its constructor takes two arguments)."""

    def __init__(self, layer, why):
        super().__init__(f"{layer}: {why}")


def score_failing(model, targets, batches, loss_fn):
    raise ScoringFailed(targets[0].name, "a division by zero")


def score_summed(model, targets, batches, loss_fn):
    return {t.name: t.param.detach().abs().sum() for t in targets}


def score_extra_key(model, targets, batches, loss_fn):
    return {"typo.weight": targets[0].param.detach().abs(), **{t.name: t.param.detach().abs() for t in targets}}


@pytest.fixture(scope="module", autouse=True)
def smallest():
    register_pruner("failing", score_failing, label="Failing")
    register_pruner("summed", score_summed, label="Summed")
    register_pruner("extrakey", score_extra_key, label="Extra key")
    return register_pruner("smallest-mag", score_smallest, label="Smallest magnitude", version="1")


def test_the_command_line_runs_it_and_the_record_names_its_function(tmp_path):
    assert main([*FLAGS, "--pruner", "smallest-mag", "--result-dir", str(tmp_path)]) == 0
    (row,) = load_table(tmp_path).to_dict("records")
    assert (row["pruner"], row["pruner_version"]) == ("smallest-mag", "1")
    assert row["pruner_origin"] == f"{__name__}:score_smallest"
    assert row["record"] == RunConfig(pruner="smallest-mag", **TINY).config_hash()  # verified on load


def test_an_unknown_pruner_on_the_command_line_is_one_line_listing_the_registered_ones(tmp_path, capsys):
    for flag in ("--pruner", "--pruner-list"):
        with pytest.raises(SystemExit) as stop:
            main([*FLAGS, flag, "nonesuch", "--result-dir", str(tmp_path)])
        assert stop.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert "nonesuch" in line and "smallest-mag" in line and "synflow" in line
        assert PLUGINS_ENV in line  # how a pruner of one's own reaches the command line
    assert not tmp_path.joinpath("singleshot").exists()


PLUGIN = """
import prunelab

def score_largest_first(model, targets, batches, loss_fn):
    return {t.name: t.param.detach().abs() for t in targets}

prunelab.register_pruner("mylargest", score_largest_first, label="My largest")
"""


def test_a_module_named_in_prunelab_plugins_gives_the_command_line_its_pruner(tmp_path):
    (tmp_path / "mylab_plugin.py").write_text(PLUGIN)
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('half written')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "PRUNELAB_PLUGINS": "mylab_plugin"}
    command = [sys.executable, "-m", "prunelab", *FLAGS, "--pruner", "mylargest"]
    done = subprocess.run([*command, "--result-dir", str(tmp_path / "r")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = load_table(tmp_path / "r").to_dict("records")
    assert row["pruner_origin"] == "mylab_plugin:score_largest_first"
    refused = subprocess.run([*command, "--result-dir", str(tmp_path / "b")], capture_output=True, text=True,
                             env={**env, "PRUNELAB_PLUGINS": "broken_plugin"}, timeout=300)
    (line,) = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and "broken_plugin" in line and "half written" in line
    assert not (tmp_path / "b").exists()
    helped = subprocess.run([sys.executable, "-m", "prunelab", "--help"], capture_output=True, text=True,
                            env={**env, "PRUNELAB_PLUGINS": "broken_plugin"}, timeout=300)
    assert helped.returncode == 0 and "half written" in helped.stdout and "--pruner" in helped.stdout
    listed = subprocess.run([sys.executable, "-m", "prunelab", "pruners"], capture_output=True, text=True,
                            env={**env, "PRUNELAB_PLUGINS": "mylab_plugin,broken_plugin"}, timeout=300)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "built-in" in rows["synflow"] and "prunelab.plugins.prospr:score_prospr" in rows["prospr"]
    assert rows["mylargest"].split()[1:] == ["My", "largest", "1", "mylab_plugin:score_largest_first"]
    (failed,) = [line for line in listed.stdout.splitlines() if "broken_plugin" in line]
    assert "half written" in failed


USABLE = """
import prunelab

def score_usable(model, targets, batches, loss_fn):
    return {t.name: t.param.detach().abs() for t in targets}

prunelab.register_pruner("usable", score_usable, label="Usable")
"""
HALF_DONE = USABLE.replace("usable", "halfdone").replace("Usable", "Half done") + "raise RuntimeError('half written')\n"
TWICE = USABLE.replace("usable", "twice").replace("Usable", "Twice") + USABLE.replace("usable", "twice").replace(
    "Usable", "Twice").replace("score_twice", "other_twice")


@pytest.mark.parametrize("failing, source, its_pruner, needle", [
    ("half_done_plugin", HALF_DONE, "halfdone", "half written"),  # registers a pruner, then raises
    ("twice_plugin", TWICE, "twice", "other_twice"),  # a second function under one name and version
])
def test_a_plugin_module_that_fails_leaves_the_other_modules_pruners_usable(tmp_path, monkeypatch, capsys, failing,
                                                                              source, its_pruner, needle):
    (tmp_path / "usable_plugin.py").write_text(USABLE)
    (tmp_path / f"{failing}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PLUGINS_ENV, f"{failing},usable_plugin")  # the failing module first
    for flag in ("--pruner", "--pruner-list"):
        (config,) = configs_from_args(build_parser().parse_args([*FLAGS, flag, "usable"]))
        assert config.validate().pruner == "usable"
    for name in (its_pruner, "nonesuch"):  # refused, saying why the module failed
        with pytest.raises(SystemExit) as stop:
            main([*FLAGS, "--pruner-list", "usable", name, "--result-dir", str(tmp_path / "r")])
        assert stop.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"'{name}'" in line and failing in line and needle in line and "usable" in line
    assert not (tmp_path / "r").exists()


def test_a_sweep_runs_it_here_and_in_a_worker_process(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {**TINY, "result_dir": str(tmp_path / "results")},
                                    "grid": {"pruner": ["rand", "smallest-mag"]}}))
    assert main(["sweep", str(grid)]) == 0
    assert sorted(load_table(tmp_path / "results")["pruner"]) == ["rand", "smallest-mag"]
    # a spawned worker starts with the built-in pruners only: the task registers this one, imported by module
    config = RunConfig(pruner="smallest-mag", seed=2, result_dir=str(tmp_path / "results"), **TINY)
    (outcome,) = run_sweep([config], Executor("processes", workers=1), log=lambda m: None)
    assert outcome.status == "finished", outcome.detail
    assert usable_record(config).config["pruner_origin"] == f"{__name__}:score_smallest"


@pytest.mark.parametrize("executor", ["local", "processes"])
def test_a_pruner_that_raises_fails_its_own_runs_and_the_others_of_their_group_train_fused(tmp_path, executor):
    configs = [RunConfig(pruner=p, seed=s, fuse="on", result_dir=str(tmp_path), **TINY)
               for p in ("failing", "rand") for s in (1, 2)]
    lines: list[str] = []
    outcomes = run_sweep(configs, Executor(executor, workers=1), log=lines.append, echo=False)
    assert [o.status for o in outcomes] == ["failed", "failed", "finished", "finished"], lines
    assert all("ScoringFailed" in o.detail and "a division by zero" in o.detail for o in outcomes[:2])
    assert [usable_record(c) for c in configs[:2]] == [None, None]
    table = load_table(tmp_path)
    assert sorted(table["seed"]) == [1, 2] and set(table["train_step"]) == {"fused (2 runs)"}
    assert sorted(re.findall(r"\[(\d)/4\]", " ".join(lines))) == ["1", "2", "3", "4"]  # each run said once


def test_on_the_command_line_a_group_writes_the_others_records_then_refuses_in_one_line(tmp_path, capsys):
    code = main([*FLAGS, "--pruner-list", "rand", "summed", "--fuse", "on", "--result-dir", str(tmp_path)])
    assert code == 2
    out, err = capsys.readouterr()  # err: beside the progress bars of the run that trained
    (failed,) = [line for line in out.splitlines() if line.startswith("FAILED: ")]
    assert "summed" in failed and "UserError" not in failed  # a person's mistake in words, not a class name
    assert err.count("prunelab: error:") == 1
    line = err.strip().splitlines()[-1].split("prunelab: error:")[-1]
    assert "summed" in line and "shape ()" in line
    assert list(load_table(tmp_path)["pruner"]) == ["rand"]
    # the list's summary, a line per run, is printed as for a list without a failure, counting the failure
    lines = out.splitlines()
    (head,) = [i for i, line in enumerate(lines) if line.startswith("2 runs")]
    assert "1 failed" in lines[head] and len(lines) == head + 3
    rand, summed = sorted(lines[head + 1:], key=lambda line: " summed " in line)
    assert " rand " in rand and "top-1" in rand and " summed " in summed and "shape ()" in summed
    # run one by one: the first failure stops the command, and the summary says which runs it left
    assert main([*FLAGS, "--pruner-list", "rand", "summed", "mag", "--fuse", "off", "--result-dir", str(tmp_path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    (head,) = [i for i, line in enumerate(lines) if line.startswith("3 runs")]
    assert "1 failed" in lines[head] and "1 not run" in lines[head]
    assert [" rand " in lines[head + 1], " summed " in lines[head + 2], " mag " in lines[head + 3]] == [True] * 3
    assert "top-1" in lines[head + 1] and "shape ()" in lines[head + 2] and "top-1" not in lines[head + 3]
    # any other error is the pruner's own, raised as run alone (its traceback reaches the function)
    with pytest.raises(ScoringFailed) as raised:
        main([*FLAGS, "--pruner-list", "rand", "failing", "--seed", "2", "--fuse", "on", "--result-dir", str(tmp_path)])
    assert raised.traceback[-1].name == "score_failing"
    assert sorted(load_table(tmp_path)["seed"]) == [1, 2]  # rand at the default seed, then at 2


@pytest.mark.parametrize("pruner, needle", [("summed", "shape ()"), ("extrakey", "'typo.weight'")])
def test_a_refusal_at_scoring_time_leaves_no_result_folder_behind(tmp_path, capsys, pruner, needle):
    # the run made its result folder before its pruner was refused: bad input writes nothing
    assert main([*FLAGS, "--pruner", pruner, "--result-dir", str(tmp_path / "new" / "r")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"'{pruner}'" in line and needle in line
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder that was there before is the user's: it stays, empty
    assert main([*FLAGS, "--pruner", pruner, "--result-dir", str(kept)]) == 2
    assert kept.is_dir() and list(kept.iterdir()) == []



def test_a_refused_run_leaves_no_result_folder_from_the_library_or_a_sweep(tmp_path):
    with pytest.raises(UserError, match="summed"):
        run(RunConfig(**TINY, pruner="summed", result_dir=str(tmp_path / "lib" / "r")))
    configs = [RunConfig(**TINY, pruner="summed", seed=seed, result_dir=str(tmp_path / "sweep")) for seed in (1, 2)]
    outcomes = run_sweep(configs, Executor("local", workers=1), log=lambda line: None, echo=False)
    assert [o.status for o in outcomes] == ["failed", "failed"]  # one fused group, each run refused alone
    assert list(tmp_path.iterdir()) == []

def test_the_conservation_experiments_score_it(tmp_path):
    model = build_model("fc", "default", (1, 28, 28), 10)
    batches = [(torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,)))]
    frame = layer_conservation(model, "smallest-mag", batches)
    for total, (_, layer) in zip(frame["score_sum"], weight_layers(model), strict=True):  # its score: -|θ|
        magnitude = layer.weight.detach().abs().sum() + layer.bias.detach().abs().sum()
        assert total == pytest.approx(-float(magnitude), rel=1e-6)
    for experiment in ("layer-conservation", "unit-conservation"):
        assert main([*FLAGS, "--experiment", experiment, "--pruner", "smallest-mag", "--compression", "0",
                     "--prune-dataset-ratio", "5", "--result-dir", str(tmp_path)]) == 0  # 50 of the 64 examples
    layers = conservation_frame(tmp_path, "layer-conservation")
    assert set(layers["pruner"]) == {"smallest-mag"} and (layers["score_sum"] < 0).all()
    units = conservation_frame(tmp_path, "unit-conservation")
    assert len(units) and (units["score_in"] < 0).all() and (units["score_out"] < 0).all()


def test_a_function_defined_in_main_runs_here_and_is_refused_for_worker_processes(tmp_path):
    namespace = {"__name__": "__main__"}  # as a notebook cell or a script defines it
    exec("def score(model, targets, batches, loss_fn):\n    return {t.name: t.param.detach().abs() for t in targets}",
         namespace)
    register_pruner("notebook-mag", namespace["score"], label="Notebook magnitude")
    config = RunConfig(pruner="notebook-mag", result_dir=str(tmp_path), **TINY)
    with pytest.raises(UserError, match="__main__:score, which processes workers cannot import"):
        run_sweep([config], Executor("processes", workers=1), log=lambda m: None)
    (outcome,) = run_sweep([config], log=lambda m: None)
    assert outcome.status == "finished", outcome.detail


def test_the_workbook_tables_show_it_after_the_built_ins_in_its_own_colour(tmp_path):
    configs = [RunConfig(pruner=p, seed=s, result_dir=str(tmp_path), **TINY) for p in ("smallest-mag", "snip")
               for s in (1, 2)]
    table = records_table([run(c, progress=False, log=lambda m: None) for c in configs])
    mag = run(RunConfig(pruner="mag", pre_epochs=1, result_dir=str(tmp_path), **TINY), progress=False,
              log=lambda m: None)  # and its shared pre-training's record beside it in the store
    whole = records_table(iter_records(tmp_path))  # as the README reads a store: the pre-training left out
    assert sorted(whole["record"]) == sorted([*table["record"], mag.path.name])
    cells = accuracy_table(table)
    assert list(cells.columns) == ["SNIP", "Smallest magnitude"]
    assert all("(n=2)" in cell for cell in cells.iloc[0])
    colours = palette(table["label"])
    assert colours["Smallest magnitude"] not in {colours["SNIP"], "#000000"}
    times = table.assign(sparse_inference_s=table["inference_s"], sparse_inference_spread_s=0.0,
                         dense_inference_s=table["inference_s"])  # the sparse table's columns
    figure = plot_against_compression(table, times, setup=table["setup"].iloc[0])
    (legend,) = [legend for row in figure.subfigs for legend in row.legends]  # one, below the set-up rows
    assert [t.get_text() for t in legend.get_texts()][:2] == ["SNIP", "Smallest magnitude"]
    assert [to_hex(h.get_color()) for h in legend.legend_handles][:2] == [colours["SNIP"],
                                                                          colours["Smallest magnitude"]]

    class Params:
        profile, result_dir = "test", str(tmp_path)
    assert "| pruning | SNIP, Smallest magnitude at compression 1;" in settings_markdown(
        Params, table.assign(data_source="synthetic"))


def test_two_functions_under_one_name_and_version_never_share_a_record(tmp_path):
    register_pruner("moved", score_largest, label="Moved")
    config = RunConfig(pruner="moved", result_dir=str(tmp_path), **{**TINY, "post_epochs": 0})
    run(config, progress=False, log=lambda m: None)
    assert usable_record(config) is not None
    # another session registers another function under the same name and version (within one process the
    # registry refuses that; here it goes through a second version and back)
    register_pruner("moved", score_smallest, label="Moved", version="2")
    assert usable_record(config) is None  # version 2: another hash, another record
    register_pruner("moved", score_smallest, label="Moved", version="1")
    with pytest.raises(RecordConflict, match="made by pruner 'moved' from .*score_largest"):
        usable_record(config)
