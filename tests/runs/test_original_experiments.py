"""The rest of the original tool: multishot, the conservation experiments and the folder data sets as runs."""

import importlib.util
import signal
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch
from forked_processes import cli, run_forked

from prunelab.core.pruners import schedule_keep_counts
from prunelab.errors import UserError
from prunelab.models.registry import build_model
from prunelab.runs.checkpoint import KILL_AFTER_ENV
from prunelab.runs.cli import build_parser, configs_from_args
from prunelab.runs.config import RunConfig
from prunelab.runs.conservation import conservation_frame
from prunelab.runs.registry import run
from prunelab.runs.store import load_record, load_table
from prunelab.workbook.conservation_figures import (
    plot_imp_conservation,
    plot_layer_conservation,
    plot_schedule_conservation,
    plot_unit_conservation,
)
from prunelab.workbook.figures import plot_multishot
from prunelab.workbook.numbers import accuracy_cell
from prunelab.workbook.tables import multishot_table

matplotlib.use("Agg")

MULTISHOT = dict(experiment="multishot", dataset="mnist", model="fc", data_source="synthetic", train_subset=256,
                 test_subset=64, pruner="mag", compression=1.0, pre_epochs=1, train_batch_size=64)
QUIET = dict(progress=False, log=lambda _: None)
# float64 SynFlow: in == out, and layer l+1's weights carry layer l's flux, up to summation rounding
SYNFLOW_RTOL = 1e-9
# plain SGD in float32 at lr 1e-3: the discrete step's O(lr) deviation from gradient flow, with margin
IMP_RTOL = 3e-2


def _weights(state):
    return {k: v for k, v in state.items() if not k.endswith("_mask")}


def test_multishot_writes_a_record_per_level_with_the_density_and_rewound_weights(tmp_path):
    records = [run(RunConfig(**MULTISHOT, levels=levels, post_epochs=0, result_dir=str(tmp_path)), **QUIET)
               for levels in (1, 2)]
    torch.manual_seed(1)
    initial = build_model("fc", "default", (1, 28, 28), 10).state_dict()
    for levels, record in zip((1, 2), records):
        assert record.path.parent.name == "multishot" and record.config["levels"] == levels
        assert record.summary["prunable_density"] == pytest.approx(0.1, abs=1e-4)  # compression 1: 10% kept
        # no post-training: the weights are the initial ones, the pruned ones at zero (the lottery ticket)
        state, masks = record.state_dict(), record.masks()
        for name, value in _weights(state).items():
            mask = masks.get(f"{name}_mask", torch.ones_like(value))
            assert torch.equal(value, initial[name] * mask), name
        phases = list(dict.fromkeys(record.epochs["phase"]))
        assert phases == [f"pre{n + 1}" for n in range(levels)] + ["post"]
    assert records[0].summary["config_hash"] != records[1].summary["config_hash"]
    # the two cycles pruned to compression 0.5 then 1: different masks from a single prune to 1
    assert any(not torch.equal(records[0].masks()[k], records[1].masks()[k]) for k in records[0].masks())


def test_multishot_with_iterative_pruning_goes_on_from_the_last_cycles_density(tmp_path):
    # SynFlow's rounds in cycle 2 start from cycle 1's density (10^-0.5), never asking for more than is left
    record = run(RunConfig(**{**MULTISHOT, "pruner": "synflow", "pre_epochs": 0}, prune_epochs=5, levels=2,
                           post_epochs=0, result_dir=str(tmp_path)), **QUIET)
    assert record.summary["status"] == "complete" and record.summary["rounds"] == 5
    assert record.summary["prunable_density"] == pytest.approx(0.1, abs=1e-4)
    assert schedule_keep_counts(1000, 1.0, 3, "exponential", alive=316) == [215, 147, 100]
    assert schedule_keep_counts(1000, 0.2, 2, "linear", alive=316) == [316, 316]  # cannot un-prune


def test_multishot_reinitialize_draws_fresh_weights_instead_of_rewinding(tmp_path):
    record = run(RunConfig(**MULTISHOT, levels=1, post_epochs=0, reinitialize=True, result_dir=str(tmp_path)),
                 **QUIET)
    torch.manual_seed(1)
    initial = build_model("fc", "default", (1, 28, 28), 10).state_dict()
    state, masks = record.state_dict(), record.masks()
    weights = [k.removesuffix("_mask") for k in masks if k.endswith("weight_mask") and masks[k].any()]
    assert weights and not any(torch.equal(state[w], initial[w] * masks[f"{w}_mask"]) for w in weights)
    assert all(torch.all(state[w][masks[f"{w}_mask"] == 0] == 0) for w in weights)


def test_multishot_killed_in_its_second_cycle_resumes_to_the_same_record(tmp_path):
    args = ["--experiment", "multishot", "--dataset", "mnist", "--data-source", "synthetic", "--train-subset", "256",
            "--test-subset", "64", "--model", "fc", "--pruner", "mag", "--compression", "1", "--pre-epochs", "2",
            "--post-epochs", "1", "--train-batch-size", "64", "--level-list", "2", "--expid", "ms",
            "--checkpoint-every", "0"]

    def run_cli(result_dir, env=None):
        return run_forked(cli, [*args, "--result-dir", str(result_dir)], env=env)

    assert run_cli(tmp_path / "reference").returncode == 0
    killed = run_cli(tmp_path / "resumed", {KILL_AFTER_ENV: "5"})  # pre1 0..2 and the prune: 4 saves; die in pre2
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert run_cli(tmp_path / "resumed").returncode == 0
    a = load_record(tmp_path / "reference" / "multishot" / "ms-mag-1-L2")
    b = load_record(tmp_path / "resumed" / "multishot" / "ms-mag-1-L2")
    assert a.epochs[["phase", "epoch", "top1"]].equals(b.epochs[["phase", "epoch", "top1"]])
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_multishot_list_flags_expand_and_the_table_is_ready_for_a_notebook(tmp_path):
    args = build_parser().parse_args(["--experiment", "multishot", "--pruner-list", "rand", "mag",
                                      "--compression-list", "0.5", "1", "--level-list", "1", "2", "--expid", "m"])
    configs = configs_from_args(args)
    assert len(configs) == 8 and {c.levels for c in configs} == {1, 2}
    assert "m-mag-0.5-L2" in {c.expid for c in configs}
    for pruner in ("rand", "mag"):
        for compression in (0.5, 1.0):
            run(RunConfig(**{**MULTISHOT, "pruner": pruner, "compression": compression}, levels=2, post_epochs=1,
                          result_dir=str(tmp_path)), **QUIET)
    table = multishot_table(load_table(tmp_path))
    assert list(table.columns) == ["Mag, 2 cycles", "Rand, 2 cycles"]
    assert list(table.index) == pytest.approx([10 ** -0.5, 0.1], abs=1e-4)  # most weights first
    assert table.notna().all().all()
    assert isinstance(plot_multishot(load_table(tmp_path)), matplotlib.figure.Figure)


def test_the_multishot_table_gives_each_cell_over_its_seeds():
    rows = [dict(experiment="multishot", pruner="snip", levels=levels, prunable_density=0.1, top1=top1, seed=seed)
            for levels, seed, top1 in ((1, 1, 9.0), (1, 2, 23.0), (2, 1, 9.0), (2, 2, 10.0), (2, 3, 11.0))]
    table = multishot_table(pd.DataFrame(rows + [dict(rows[0], experiment="singleshot", top1=99.0)]))
    assert table.to_dict("index") == {0.1: {"SNIP, 1 cycle": accuracy_cell([9.0, 23.0]),
                                            "SNIP, 2 cycles": accuracy_cell([9.0, 10.0, 11.0])}}
    assert multishot_table(pd.DataFrame([dict(experiment="singleshot", top1=90.0)])).empty  # no levels column
    fig = plot_multishot(pd.DataFrame(rows))
    (ax,) = fig.axes
    drawn = {bars.get_label(): float(bars.lines[0].get_ydata()[0]) for bars in ax.containers}
    assert drawn == {"SNIP, 1 cycle": 16.0, "SNIP, 2 cycles": 10.0}  # the means, with their sd as bars
    with pytest.raises(UserError, match="multishot"):  # no empty figure for a store without them
        plot_multishot(pd.DataFrame([dict(experiment="singleshot", top1=90.0)]))


@pytest.mark.parametrize("experiment,pruner,tolerance", [
    ("unit-conservation", "synflow", SYNFLOW_RTOL),
    ("layer-conservation", "synflow", SYNFLOW_RTOL),
    ("imp-conservation", "mag", IMP_RTOL),  # without --level-list: training only, as the original
    ("schedule-conservation", "synflow", 0),  # violations: none
])
def test_conservation_experiments_write_records_that_obey_their_law(tmp_path, experiment, pruner, tolerance):
    # the fc network on the real digits: positively homogeneous between layers (ReLU), biases included
    config = RunConfig(experiment=experiment, dataset="digits", model="fc", pruner=pruner, compression=0.5,
                       post_epochs=3, prune_epochs=10 if experiment == "schedule-conservation" else None,
                       result_dir=str(tmp_path))
    record = run(config, **QUIET)
    assert record.path.parent.name == experiment and record.summary["stand_in"] is False
    assert record.summary["law_gap"] <= tolerance, record.summary
    frame = conservation_frame(tmp_path, experiment)
    assert len(frame) > 0 and set(frame["record"]) == {record.path.name}
    plot = {"unit-conservation": plot_unit_conservation, "layer-conservation": plot_layer_conservation,
            "imp-conservation": plot_imp_conservation, "schedule-conservation": plot_schedule_conservation}
    assert isinstance(plot[experiment](frame), matplotlib.figure.Figure)
    assert run(config, **QUIET).path == record.path  # reused


def test_snip_scores_break_unit_conservation_as_the_paper_says(tmp_path):
    record = run(RunConfig(experiment="unit-conservation", dataset="digits", model="fc", pruner="snip", compression=0,
                           result_dir=str(tmp_path)), **QUIET)
    assert record.summary["law_gap"] > 0.01  # |dL/dθ ⊙ θ| per parameter is not a synaptic saliency


def _folder_data_tests():
    """tests/data/test_folder_data.py, loaded by its path (test folders are not packages, so a plain import
    works only when pytest happened to collect that file first)."""
    path = Path(__file__).parents[1] / "data" / "test_folder_data.py"
    spec = importlib.util.spec_from_file_location("folder_data_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tiny_imagenet_run_streams_a_folder_tree(tmp_path, monkeypatch):
    _folder_data_tests()._tiny_tree(tmp_path / "data")
    monkeypatch.setenv("PRUNELAB_DATA", str(tmp_path / "data"))
    record = run(RunConfig(dataset="tiny-imagenet", model="vgg11", model_class="tinyimagenet", pruner="snip",
                           compression=1.0, post_epochs=1, train_batch_size=4, test_batch_size=4,
                           prune_dataset_ratio=1, workers=0, result_dir=str(tmp_path / "results")), **QUIET)
    s = record.summary
    assert s["status"] == "complete" and s["data_source"] == "real" and not s["stand_in"]
    assert s["train_examples"] == 12 and s["test_examples"] == 6 and s["majority_class_top1"] == pytest.approx(100 / 3)
    assert s["prunable_density"] == pytest.approx(0.1, abs=1e-4)
