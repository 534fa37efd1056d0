"""The command line: the user's own commands, bad input, records, reuse and interruption."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from forked_processes import cli, run_forked

from prunelab.runs.cli import build_parser, configs_from_args, main
from prunelab.runs.store import incomplete_folders, load_table

# The commands from the user's lab notes, as they will type them again (``python main.py`` dropped).
SEED_COMMANDS = [
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner rand "
    "--compression 1 --post-epochs 100 --expid cifar_rand_comp1_post100",
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner mag "
    "--pre-epochs 200 --compression 1 --post-epochs 100 --expid cifar_mag_comp1_post100",
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner snip "
    "--compression 1 --post-epochs 100 --expid cifar_snip_comp1_post100",
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner grasp "
    "--compression 1 --post-epochs 100 --expid cifar_grasp_comp1_post100",
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner synflow "
    "--compression 1 --post-epochs 100 --expid cifar_synflow_comp1_post100",
    "--model fc --model-class default --dataset mnist --experiment singleshot --pruner rand "
    "--compression 1 --post-epochs 100 --expid mnist_rand_comp1_post100",
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner rand "
    "--compression 0.25 --post-epochs 100 --expid cifar_rand_post100_comp025",
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner snip "
    "--compression 1.0 --save-trace --expid save_trace_snip",
    "--model resnet20 --model-class lottery --dataset cifar10 --experiment singleshot --pruner rand "
    "--compression 0.2 --post-epochs 100 --quantization --verbose --expid quant-02",
]
TINY = "--data-source synthetic --train-subset 64 --test-subset 32 --pre-epochs 0 --post-epochs 1"


def _configs(command: str):
    return configs_from_args(build_parser().parse_args(shlex.split(command)))


@pytest.mark.parametrize("command", SEED_COMMANDS)
def test_every_seed_command_parses_with_the_original_meaning(command):
    (config,) = _configs(command)
    config.validate()
    assert config.experiment == "singleshot" and config.expid and config.model in ("resnet20", "fc")
    assert (config.optimizer, config.lr, config.train_batch_size, config.seed) == ("adam", 0.001, 256, 1)
    assert config.mask_scope == "global" and config.compression_schedule == "exponential"
    assert config.data_source == "real"  # the default: real data or a clear error
    (tiny,) = _configs(command + " " + TINY)
    assert tiny.post_epochs == 1 and tiny.data_source == "synthetic"


def test_two_seed_commands_run_end_to_end_on_synthetic_data(tmp_path, capsys):
    for command in (SEED_COMMANDS[5], SEED_COMMANDS[2]):
        assert main(shlex.split(f"{command} {TINY} --result-dir {tmp_path}")) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "Record:" in out
    table = load_table(tmp_path)
    assert sorted(table["record"]) == ["cifar_snip_comp1_post100", "mnist_rand_comp1_post100"]
    assert table["stand_in"].all() and (table["data_source"] == "synthetic").all()
    snip = table.set_index("record").loc["cifar_snip_comp1_post100"]
    assert snip["kept"] == round(snip["prunable"] / 10)
    assert 0 <= snip["top1"] <= 100 and snip["inference_s"] > 0 and snip["flops"] < snip["flops_total"]
    folder = tmp_path / "singleshot" / "cifar_snip_comp1_post100"
    for name in ("config.json", "epochs.csv", "layers.csv", "env.json", "masks.pt", "model.pt", "COMPLETE"):
        assert (folder / name).is_file(), name


def test_a_list_of_runs_ends_with_a_line_per_run_naming_what_differs(tmp_path, capsys):
    assert main(shlex.split(f"--model fc --dataset mnist --pruner-list rand mag --seed-list 1 2 --fuse on {TINY} "
                            f"--result-dir {tmp_path}")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("Post-train for 1 epoch,") for line in lines)  # fused, one epoch in the singular
    summary = lines[lines.index("4 runs:") + 1:]
    table = load_table(tmp_path).set_index("record")
    named = []
    for line in summary:
        row = table.loc[line[line.index("(") + 1:line.index(")")]]
        assert f" {row['pruner']} " in line and f"seed {row['seed']} " in line
        assert line.endswith(f"top-1 {row['top1']:.2f}%")
        named.append((row["pruner"], row["seed"]))
    assert sorted(named) == [("mag", 1), ("mag", 2), ("rand", 1), ("rand", 2)]


def test_the_pruning_line_says_which_ablations_the_run_makes(tmp_path, capsys):
    assert main(shlex.split(f"--model fc --dataset mnist --pruner snip --shuffle --invert {TINY} "
                            f"--result-dir {tmp_path}")) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("Pruning with snip")]
    assert "inverted" in line and "shuffled" in line and "re-initialized" not in line
    assert "Post-train for 1 epoch." in out and "1 epochs" not in out  # one epoch, in the singular


def test_a_run_at_chance_says_so_beside_its_top1(tmp_path, capsys):
    common = f"--model fc --dataset mnist --pruner rand --data-source bundled --post-epochs 2 --result-dir {tmp_path}"
    out = {}
    for compression in ("0.5", "4"):  # one that trains, one left with too few weights to
        assert main(shlex.split(f"{common} --compression {compression}")) == 0
        out[float(compression)] = capsys.readouterr().out
    for compression, row in load_table(tmp_path).set_index("compression").iterrows():
        chance = f"({row['majority_class_top1']:.2f}%)"  # the most frequent class's share, said beside top-1
        assert (chance in out[compression]) == (row["top1"] <= row["majority_class_top1"] + 1)
    assert {c: row["top1"] > row["majority_class_top1"] + 1 for c, row in
            load_table(tmp_path).set_index("compression").iterrows()} == {0.5: True, 4.0: False}


def test_the_help_names_the_subcommands(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert all(f"prunelab {name}" in out for name in ("sweep", "verify", "pruners"))


def test_listing_the_built_in_pruners_does_not_import_torch():
    # an installed package's pruner is loaded to be listed (ProsPr's imports torch): here there is none
    code = ("import sys; import prunelab.core.registry as r; r._entry_points = dict; "
            "from prunelab.runs.cli import main; rc = main(['pruners']); sys.exit(rc if 'torch' not in sys.modules "
            "else 99)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert [row[0] for row in rows[1:]] == ["rand", "mag", "snip", "grasp", "synflow"]
    assert rows[4][1:] == ["GraSP", "-", "built-in"]


def test_list_flags_are_honoured_not_ignored(tmp_path):
    configs = _configs(f"--pruner-list rand mag --compression-list 0.5 1 --expid sweep {TINY}")
    assert [(c.pruner, c.compression, c.expid) for c in configs] == [
        ("rand", 0.5, "sweep-rand-0.5"), ("mag", 0.5, "sweep-mag-0.5"),
        ("rand", 1.0, "sweep-rand-1"), ("mag", 1.0, "sweep-mag-1")]
    assert [c.prune_epochs for c in _configs("--pruner-list synflow snip --prune-epoch-list 10 1")] == [10, 1]
    # one pruner with two round counts: two records, two names
    same = _configs("--pruner-list synflow synflow --prune-epoch-list 1 100 --expid s")
    assert [c.expid for c in same] == ["s-synflow-1-r1", "s-synflow-1-r100"]
    seeds = _configs("--pruner-list rand mag --seed-list 3 4 --expid s")
    assert [(c.seed, c.pruner, c.expid) for c in seeds] == [
        (3, "rand", "s-rand-1-s3"), (3, "mag", "s-mag-1-s3"), (4, "rand", "s-rand-1-s4"), (4, "mag", "s-mag-1-s4")]


def _run_cli(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "prunelab", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


@pytest.mark.parametrize("args,needles", [  # the flags and values the one line must name
    (["--pruner", "lamp"], ("--pruner", "'lamp'")),
    (["--post-epochs", "-1"], ("--post-epochs", "-1")),
    (["--model", "resnet20", "--model-class", "default"], ("resnet20", "'default'", "lottery")),
    (["--compression", "9", "--data-source", "synthetic"], ("9.0", "5.38")),  # keeps less than one weight
    (["--compression-list", "1", "9", "--data-source", "synthetic"], ("9.0", "5.38")),
    (["--data", "", "--data-source", "synthetic"], ("(--data)",)),
    (["--dataset", "tiny-imagenet", "--model", "vgg11", "--model-class", "tinyimagenet", "--data-source", "bundled"],
     ("Tiny ImageNet", "--data-source")),  # not the synthetic stand-in, quietly
    (["--train-subset", "0"], ("--train-subset",)),
    (["--frobnicate"], ("--frobnicate",)),
    (["--pruner-list"], ("--pruner-list",)),  # given no value: not the default pruner's run
    (["--compression-list", "--data-source", "synthetic"], ("--compression-list",)),
    (["--seed-list"], ("--seed-list",)),
    (["--seed-list", "7", "3", "7"], ("--seed-list", "7")),  # a value listed twice: named, with its flag
    (["--compression-list", "0.5", "1", "0.5", "--data-source", "synthetic"], ("--compression-list", "0.5")),
    (["--pruner-list", "snip", "snip", "--prune-epoch-list", "3", "3"], ("--prune-epoch-list", "snip 3")),
    (["--pruner-list", "rand", "--prune-epoch-list", "1", "2"], ("--prune-epoch-list", "--pruner-list")),
    (["--compression-list", "1", "2", "--compression", "3"], ("--compression-list",)),  # neither silently wins
    (["--seed", "5", "--seed-list", "1", "2"], ("--seed-list",)),
    (["--level-list", "1", "2"], ("multishot",)),
    (["--experiment", "multishot"], ("--level-list",)),
    (["--experiment", "schedule-conservation", "--pruner-list", "snip"], ("synflow", "snip")),
    (["--experiment", "imp-conservation", "--pruner", "snip"], ("mag", "snip")),
    (["--experiment", "unit-conservation", "--quantization"], ("--quantization", "unit-conservation")),
    (["--dataset", "tiny-imagenet", "--model", "vgg11", "--model-class", "tinyimagenet"], ("tiny-imagenet-200/",)),
    (["--amp-dtype", "bf16"], ("--amp-dtype", "--quantization")),
    (["--quantization", "--amp-dtype", "fp16"], ("fp16", "CPU")),
    (["--model", "vgg16", "--model-class", "lottery", "--dataset", "digits", "--data-source", "synthetic"],
     ("1x8x8",)),  # its pools leave nothing of an 8x8 image
    (["--model", "vgg11", "--model-class", "tinyimagenet", "--data-source", "synthetic"], ("1x28x28",)),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch, args, needles):
    subsets = [] if "--train-subset" in args else ["--train-subset", "8", "--test-subset", "8"]
    monkeypatch.chdir(tmp_path)  # where the process starts: nothing may be written there
    # a process of its own each, forked from the test server with torch imported: 29 cases, no import each
    result = run_forked(cli, [*args, *subsets, "--result-dir", str(tmp_path / "results")], timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and all(needle in lines[0] for needle in needles), result.stderr
    assert not (tmp_path / "results").exists()  # not even the result folder


@pytest.mark.parametrize("args", [["--post-epochs", "-1"], ["--experiment", "multishot"], ["--amp-dtype", "bf16"]])
def test_flags_wrong_on_their_face_are_refused_before_torch_is_imported(tmp_path, args):
    # torch takes seconds to import; a typo should be answered at once
    code = ("import sys; from prunelab.runs.cli import main; rc = main(sys.argv[1:]); "
            "sys.exit(rc if 'torch' not in sys.modules else 99)")
    result = subprocess.run([sys.executable, "-c", code, *args, "--result-dir", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr


def test_missing_real_data_and_unwritable_result_dir_are_one_line_errors(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _run_cli("--data-source", "synthetic", "--train-subset", "8", "--test-subset", "8",
                      "--result-dir", str(blocker / "results"), cwd=tmp_path)
    assert result.returncode == 2 and "cannot write results" in result.stderr
    env = {**os.environ, "PRUNELAB_DATA": str(tmp_path / "nodata" / "a" / "b")}
    result = subprocess.run([sys.executable, "-m", "prunelab", "--dataset", "cifar10", "--model", "resnet20",
                             "--model-class", "lottery", "--result-dir", str(tmp_path / "r")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(tmp_path / "nodata") in result.stderr
    assert not (tmp_path / "r" / "singleshot").exists()
    assert not (tmp_path / "nodata").exists()  # nor the data folder's parents the attempt made


NO_PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")


@pytest.mark.parametrize("flag,needle", [("--result-dir", "cannot write results"), ("--data", "data folder")])
@pytest.mark.parametrize("where", [pytest.param("/proc/x", marks=NO_PROC), "file/x"])
def test_a_folder_that_cannot_be_made_is_refused_in_one_line_before_torch(tmp_path, flag, needle, where):
    # root passes every permission test, and still no folder can be made in /proc or through a file
    (tmp_path / "file").write_text("not a folder")
    folder = where if where.startswith("/") else str(tmp_path / where)
    code = ("import sys; from prunelab.runs.cli import main; rc = main(sys.argv[1:]); "
            "sys.exit(rc if 'torch' not in sys.modules else 99)")
    result = subprocess.run([sys.executable, "-c", code, flag, folder], capture_output=True, text=True, cwd=tmp_path,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and folder in lines[0] and needle in lines[0], result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no results folder, no probe left behind


def test_sweeps_and_python_runs_refuse_a_folder_that_cannot_be_made(tmp_path, capsys):
    import yaml

    import prunelab
    from prunelab.errors import UserError
    from prunelab.runs.config import RunConfig

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": {"data-source": "synthetic", "result-dir": str(blocker / "r")}}))
    assert main(["sweep", str(grid)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(blocker) in lines[0]
    with pytest.raises(UserError, match="data folder"):
        prunelab.run(RunConfig(data_source="synthetic", data_dir=str(blocker / "data"),
                               result_dir=str(tmp_path / "results")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "grid.yaml"]


def test_the_data_flag_names_the_folder_the_data_sets_are_read_from(tmp_path):
    sets = tmp_path / "sets"
    sets.mkdir()
    result = _run_cli("--dataset", "tiny-imagenet", "--model", "vgg11", "--model-class", "tinyimagenet",
                      "--data", str(sets), "--result-dir", str(tmp_path / "results"), cwd=tmp_path)
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and str(sets.resolve()) in line and "tiny-imagenet-200/" in line, result.stderr
    assert not (tmp_path / "results").exists()  # not even the result folder and not any(sets.iterdir())


def test_a_complete_record_is_reused_unless_forced(tmp_path, capsys):
    args = shlex.split(f"{TINY} --result-dir {tmp_path} --expid again")
    assert main(args) == 0
    marker = tmp_path / "singleshot" / "again" / "COMPLETE"
    first = marker.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Reusing" in out and marker.stat().st_mtime_ns == first
    # the stored results are shown again, and with --verbose (not part of the record) the layer table
    top1 = json.loads((marker.parent / "summary.json").read_text())["top1"]
    largest = str(pd.read_csv(marker.parent / "layers.csv")["size"].max())
    assert f"{top1:.2f}%" in out and str(marker.parent) in out and largest not in out
    assert main(args + ["--verbose"]) == 0
    assert largest in capsys.readouterr().out and marker.stat().st_mtime_ns == first
    assert main(args + ["--force"]) == 0
    assert marker.stat().st_mtime_ns != first
    # the same expid with a different configuration is refused, not silently overwritten
    assert main(args + ["--pruner", "mag"]) == 2


def test_a_run_killed_midway_leaves_no_partial_record(tmp_path):
    cmd = [sys.executable, "-m", "prunelab", *shlex.split(TINY), "--post-epochs", "500",
           "--result-dir", str(tmp_path), "--expid", "killed"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    for line in proc.stdout:
        if line.startswith("Post-train") or time.time() > deadline:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "singleshot" / "killed").exists()
    assert load_table(tmp_path).empty and incomplete_folders(tmp_path) == []


def test_nan_loss_stops_the_run_with_a_clear_status(tmp_path):
    # four steps at lr 1e30: the first step's update overflows every later step's loss
    assert main(shlex.split(f"{TINY} --post-epochs 3 --lr 1e30 --train-batch-size 16 --result-dir {tmp_path} "
                            "--expid nan")) == 0
    summary = json.loads((tmp_path / "singleshot" / "nan" / "summary.json").read_text())
    assert summary["status"] == "diverged" and "NaN" in summary["message"]
    assert summary["epochs_done"] == 0
    assert summary["mask_audit"] != "drift"  # its pruned weights are NaN as the rest: the masks are not to blame
    assert summary["mask_audit_unchecked"] > 0


def test_python_call_is_the_same_run(tmp_path):
    import prunelab
    from prunelab.runs.config import RunConfig

    config = RunConfig(data_source="synthetic", train_subset=64, test_subset=32, post_epochs=1,
                       result_dir=str(tmp_path))
    record = prunelab.run(config, progress=False)
    assert record.path == Path(tmp_path) / "singleshot" / config.config_hash()
    assert record.config["pruner"] == "rand"
    assert list(record.epochs["phase"]) == ["pre", "post", "post"]  # dense eval, pruned eval, epoch 1
    state = record.state_dict()
    masks = record.masks()
    assert masks and all(bool((state[k.removesuffix("_mask")][masks[k] == 0] == 0).all()) for k in masks)
