"""The run configuration: hashes that key the records, validation, and the flags generated from its fields."""

import dataclasses
import subprocess
import sys

import pytest

from prunelab.core.choices import PRUNERS, SYNFLOW_ROUNDS
from prunelab.errors import UserError
from prunelab.runs.cli import build_parser
from prunelab.runs.config import RUNTIME_FIELDS, RunConfig
from prunelab.runs.run_lists import RunLists

TINY = dict(data_source="synthetic", train_subset=256, test_subset=128, post_epochs=0)

# Every flag of `prunelab --help` before the layout changed, with its default: names and defaults are the
# original tool's (and prunelab's own additions), and records and seed commands depend on them.
FLAGS_AND_DEFAULTS = {
    "--dataset": "mnist", "--model": "fc", "--model-class": "default", "--dense-classifier": False,
    "--pretrained": False, "--optimizer": "adam", "--train-batch-size": 256, "--test-batch-size": 256,
    "--pre-epochs": 0, "--post-epochs": 10, "--lr": 0.001, "--lr-drops": [], "--lr-drop-rate": 0.1,
    "--weight-decay": 0.0, "--pruner": "rand", "--compression": 1.0, "--prune-epochs": None,
    "--compression-schedule": "exponential", "--mask-scope": "global", "--prune-dataset-ratio": 10,
    "--prune-batch-size": 256, "--prune-bias": False, "--prune-batchnorm": False, "--prune-residual": False,
    "--prune-train-mode": False, "--reinitialize": False, "--shuffle": False, "--invert": False,
    "--pruner-list": [], "--prune-epoch-list": [], "--compression-list": [], "--level-list": [],
    "--seed-list": [],
    "--experiment": "singleshot", "--expid": "", "--result-dir": "results", "--data": None, "--gpu": 0, "--workers": 4,
    "--no-cuda": False, "--no-cuda-graphs": False, "--seed": 1, "--verbose": False, "--save-trace": False,
    "--quantization": False,
    "--amp-dtype": None, "--data-source": "real", "--train-subset": None, "--test-subset": None, "--force": False,
    "--fuse": "auto",
    "--checkpoint-every": 30.0,
}


def test_record_hashes_are_pinned():
    """Existing result stores stay valid: these two folders' names must never change."""
    fc = RunConfig(dataset="mnist", model="fc", model_class="default", pruner="rand", compression=1.0, **TINY)
    resnet = RunConfig(dataset="cifar10", model="resnet20", model_class="lottery", pruner="snip", compression=0.5,
                       **TINY)
    assert fc.config_hash() == "68e96304f1af"
    assert resnet.config_hash() == "174b5cce3f4a"


def test_runtime_fields_and_the_default_rounds_do_not_change_the_hash():
    base = RunConfig(pruner="synflow", **TINY)
    assert set(RUNTIME_FIELDS) == {"expid", "result_dir", "data_dir", "gpu", "workers", "no_cuda", "no_cuda_graphs",
                                   "verbose", "force", "fuse", "checkpoint_every"}
    moved = base.replace(expid="x", result_dir="elsewhere", data_dir="elsewhere", gpu=1, workers=1, no_cuda=True,
                         no_cuda_graphs=True, verbose=True, force=True, fuse="off", checkpoint_every=0)
    assert moved.config_hash() == base.config_hash()
    assert base.replace(prune_epochs=SYNFLOW_ROUNDS).config_hash() == base.config_hash()
    assert base.replace(prune_epochs=1).config_hash() != base.config_hash()
    assert base.replace(seed=2).config_hash() != base.config_hash()


def test_help_lists_exactly_todays_flags_with_their_defaults():
    parser = build_parser()
    flags = {a.option_strings[0]: a.default for a in parser._actions if a.option_strings[0] != "-h"}
    assert flags == FLAGS_AND_DEFAULTS
    result = subprocess.run([sys.executable, "-m", "prunelab", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert all(flag in result.stdout for flag in FLAGS_AND_DEFAULTS)


def test_flags_come_from_the_fields_help_and_choices():
    parser = build_parser()
    actions = {a.dest: a for a in parser._actions}
    for cls in (RunConfig, RunLists):
        for f in dataclasses.fields(cls):
            if f.metadata["style"] == "none":
                assert f.name not in actions  # levels: set through --level-list
                continue
            action = actions[f.name]
            assert action.help.startswith(f.metadata["help"])
            choices = f.metadata["choices"]() if callable(f.metadata["choices"]) else f.metadata["choices"]
            assert (tuple(action.choices) if action.choices else None) == choices
    assert tuple(actions["pruner"].choices)[:5] == PRUNERS  # then any registered pruner
    assert f"{SYNFLOW_ROUNDS} for synflow" in actions["prune_epochs"].help


@pytest.mark.parametrize("text, value", [("True", True), ("false", False), ("1", True), ("no", False)])
def test_switches_mean_what_they_say(text, value):
    args = build_parser().parse_args(["--prune-bias", text])
    assert args.prune_bias is value
    assert build_parser().parse_args(["--prune-bias"]).prune_bias is True


@pytest.mark.parametrize("changes, needle", [
    ({"pruner": "magic"}, "choose one of: rand, mag, snip, grasp, synflow"),
    ({"dataset": "svhn"}, "unknown dataset"),
    ({"compression": -1.0}, "--compression"),
    ({"lr": 0.0}, "--lr"),
    ({"amp_dtype": "bf16"}, "--quantization"),
    ({"experiment": "multishot"}, "--level-list"),
    ({"model": "resnet20"}, "--model-class lottery"),
])
def test_validation_names_the_problem_in_one_sentence(changes, needle):
    with pytest.raises(UserError, match=None) as err:
        RunConfig(**changes).validate()
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_from_dict_refuses_unknown_fields_and_round_trips():
    config = RunConfig(pruner="snip", compression=0.5, lr_drops=[3, 5])
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(UserError, match="unknown configuration field"):
        RunConfig.from_dict({"prunr": "snip"})
