"""Records made before --invert and --shuffle took their present rule (``core.choices.ABLATION_RULES``) are
computed again where that rule changes their result, and reused where it does not."""

import pytest

import prunelab.runs.run_files as run_files
from prunelab.runs.cli import main
from prunelab.runs.store import load_record

TINY = ["--dataset", "mnist", "--model", "fc", "--data-source", "synthetic", "--train-subset", "64",
        "--test-subset", "32", "--post-epochs", "1", "--expid", "run"]


@pytest.mark.parametrize("flags,recomputed", [
    (["--pruner", "synflow", "--prune-epochs", "3", "--shuffle"], True),  # earlier rounds zeroed weights
    (["--pruner", "grasp", "--invert"], True),  # signed scores: the reciprocal mis-ordered them
    (["--pruner", "mag", "--invert"], False),  # never negative: the same ranking
    (["--pruner", "snip", "--shuffle"], False),  # one round: nothing zeroed before the shuffle
])
def test_an_ablation_record_of_the_old_rule_is_recomputed_only_where_the_rule_changed_it(
        tmp_path, monkeypatch, flags, recomputed):
    args = [*TINY, *flags, "--result-dir", str(tmp_path)]
    monkeypatch.setattr(run_files, "ABLATION_RULES", 1)
    assert main(args) == 0
    monkeypatch.undo()
    summary = load_record(tmp_path / "singleshot" / "run").summary
    assert summary["ablation_rules"] == 1 and summary["mask_rules"] == 2  # ties at the cut drawn at random
    assert main(args) == 0
    assert load_record(tmp_path / "singleshot" / "run").summary["ablation_rules"] == (2 if recomputed else 1)


def test_a_checkpoint_pruned_under_the_old_rule_is_not_resumed_where_the_rule_matters(tmp_path):
    from prunelab.runs.config import RunConfig
    from prunelab.runs.prepare import run_checkpoint

    base = RunConfig(result_dir=str(tmp_path), pruner="synflow", prune_epochs=3)
    assert run_checkpoint(base, "synthetic").key == f"{base.config_hash()}:synthetic"  # unchanged: resumes
    shuffled = base.replace(shuffle=True)
    assert run_checkpoint(shuffled, "synthetic").key == f"{shuffled.config_hash()}:synthetic:ablation-rules-2"
