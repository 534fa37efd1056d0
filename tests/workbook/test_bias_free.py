"""SynFlow re-pruned with its biases out of the flow (the check behind the collapse findings)."""

import torch

from prunelab.runs.config import RunConfig
from prunelab.runs.fused import run_configs
from prunelab.workbook.bias_free import BiasFreeCheck, _kept_per_layer, synflow_check
from prunelab.workbook.grids import records_table


def _synflow(seed: int) -> RunConfig:
    return RunConfig(dataset="mnist", model="fc", pruner="synflow", compression=3.0, prune_epochs=100, seed=seed,
                     no_cuda=True)


def test_the_biases_empty_layers_that_a_bias_free_flow_keeps():
    # MNIST / FC at compression 3 over SynFlow's 100 rounds: as scored, layers near the input are emptied (the
    # quick profile's records show it for seeds 1-3); with the biases zeroed for scoring every layer keeps weights
    scored, free = _kept_per_layer(_synflow(1), zero_biases=False), _kept_per_layer(_synflow(1), zero_biases=True)
    assert sum(scored) == sum(free) > 0  # the same number of weights kept in all
    assert min(scored) == 0 and scored[0] == 0
    assert min(free) > 0


def test_re_pruning_leaves_the_callers_random_stream_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    _kept_per_layer(_synflow(2), zero_biases=True)
    assert torch.equal(torch.rand(3), expected)


def test_the_check_prunes_again_only_synflow_runs_that_emptied_a_layer_on_real_data(tmp_path):
    configs = [RunConfig(dataset="mnist", model="fc", data_source="synthetic", train_subset=128, test_subset=64,
                         post_epochs=1, pruner=pruner, compression=3.0, seed=1, result_dir=str(tmp_path), fuse="off")
               for pruner in ("synflow", "snip")]
    table = records_table(run_configs(configs, progress=False, log=lambda message: None))
    assert synflow_check(table) is None  # on stand-in data: left to the table, as every collapse there
    real = table.assign(stand_in=False)  # SynFlow never reads the data: its masks are those of real images
    check = synflow_check(real)
    assert (check.runs, check.as_scored, check.without_biases) == (1, 1, 0) and check.fewest_kept > 0
    assert check.biases_cause and check.where == "MNIST / FC at compression 3"
    assert synflow_check(real.drop(columns="path")) is None  # rows naming no record: nothing to prune again
    moved = real.assign(path=[str(tmp_path / "moved")] * len(real))
    assert synflow_check(moved) is None  # a record gone since: nothing known, never a guess
    assert synflow_check(real.assign(pre_epochs=5)) is None  # pruned after training: not pruning at initialization


def test_a_failed_control_or_a_run_emptied_without_biases_is_no_cause():
    assert BiasFreeCheck("MNIST / FC at compression 3", 3, 3, 0, 14).biases_cause
    assert not BiasFreeCheck("MNIST / FC at compression 3", 3, 2, 0, 14).biases_cause  # the control failed
    assert not BiasFreeCheck("MNIST / FC at compression 3", 3, 3, 1, 0).biases_cause
