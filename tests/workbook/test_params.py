"""A notebook's parameter file is checked against the notebook's parameters cell before anything runs."""

import subprocess
from pathlib import Path

import pytest

from prunelab.errors import UserError
from prunelab.workbook.params import notebook_defaults, read_params

REPO = Path(__file__).resolve().parents[2]
COMPRESSION = REPO / "notebooks" / "03_compression.ipynb"


def test_every_profiles_files_fit_their_notebooks():
    for params in sorted((REPO / "params").glob("*/[0-9][0-9]_*.yaml")):
        values = read_params(params, REPO / "notebooks" / f"{params.stem}.ipynb")
        assert values and values["profile"] == params.parent.name


def test_what_the_notebooks_take_is_taken_as_they_take_it(tmp_path):
    path = tmp_path / "03_compression.yaml"
    path.write_text("compressions: [1e-1, 5E-1, 1]\ncompression: 2.5e-1\ntrain_subset: null\nfuse: on\nseed: 2\n"
                    "profile: 1e3\noverrides:\n  cifar: &common {post_epochs: 10, pre_epochs_mag: 5}\n"
                    "  mnist: {<<: *common, post_epochs: 30}\n")
    assert read_params(path, COMPRESSION) == {
        "compressions": [0.1, 0.5, 1], "compression": 0.25, "train_subset": None, "fuse": "on", "seeds": [2],
        "profile": "1e3", "overrides": {"cifar": {"post_epochs": 10, "pre_epochs_mag": 5},
                                        "mnist": {"post_epochs": 30, "pre_epochs_mag": 5}}}
    assert notebook_defaults(COMPRESSION)["post_epochs"] == 3
    path.write_text("overrides: {mnist: {compressions: [1e-1, 2], train_subset: null}}\n")
    assert read_params(path, COMPRESSION) == {"overrides": {"mnist": {"compressions": [0.1, 2],
                                                                       "train_subset": None}}}


@pytest.mark.parametrize("text, names", [
    ("post_epoch: 100\n", ["'post_epoch'", "'post_epochs'"]),  # the name and the close one it may mean
    ("post_epochs: '100'\n", ["'post_epochs'", "'100'"]),
    ("post_epochs: 2.5\n", ["'post_epochs'", "2.5"]),
    ("wait: 1\n", ["'wait'"]),
    ("post_epochs: null\n", ["'post_epochs'"]),
    ("compression: null\n", ["'compression'"]),  # the notebook's own: null only where its comment says so
    ("seed: 2\nseeds: [3]\n", ["seeds", "seed"]),
    ("amp_pruner: mag\n", ["'amp_pruner'"]),  # another notebook's parameter
    ("overrides: {mnist: {post_epoch: 30}}\n", ["overrides.mnist", "'post_epoch'"]),
    ("overrides: {mnist: {train_subset: '4e3'}}\n", ["overrides.mnist.train_subset", "'4e3'"]),
    ("overrides: {svhn: {post_epochs: 3}}\n", ["'svhn'"]),
    ("overrides: {mnist: 30}\n", ["overrides.mnist"]),
    ("compressions: [0.5, 1e]\n", ["'compressions'", "'1e'"]),
    ("compression: true\n", ["'compression'", "True"]),
    ("pruners: snip\n", ["'pruners'", "'snip'"]),
    ("pruners: [snip, gradmagg]\n", ["'pruners'", "'gradmagg'"]),  # no such pruner, built in or registered
    ("focus_pruner: snpi\n", ["'focus_pruner'", "'snpi'"]),
    ("overrides: {mnist: {pruners: [rand, lamp]}}\n", ["overrides.mnist.pruners", "'lamp'"]),
    ("seeds: [1]\nseeds: [2]\n", ["'seeds'"]),
    ("- post_epochs\n", ["03_compression.yaml"]),
    ("post_epochs: [1\n", ["03_compression.yaml"]),
])
def test_a_file_the_notebook_cannot_take_is_one_line(tmp_path, text, names):
    path = tmp_path / "03_compression.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as refused:
        read_params(path, COMPRESSION)
    message = str(refused.value)
    assert all(name in message for name in names) and "\n" not in message


def test_run_all_refuses_a_misspelt_parameter_before_anything_runs(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    for source in (REPO / "params" / "smoke").glob("*.yaml"):
        (params / source.name).write_text(source.read_text())
    (params / "03_compression.yaml").write_text((params / "03_compression.yaml").read_text() + "post_epoch: 100\n")
    for extra in ([], ["--estimate"]):
        result = subprocess.run(["bash", str(REPO / "run_all.sh"), "--params", str(params), "--out",
                                 str(tmp_path / "rendered"), "--result-dir", str(tmp_path / "results"), *extra],
                                capture_output=True, text=True, timeout=300, cwd=REPO)
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        (line,) = result.stderr.strip().splitlines()
        assert "post_epoch" in line and "03_compression" in line
        assert not (tmp_path / "rendered").exists() and not (tmp_path / "results").exists()
    # --only leaves the other notebooks' files alone
    result = subprocess.run(["bash", str(REPO / "run_all.sh"), "--params", str(params), "--only", "nothing-01",
                             "--out", str(tmp_path / "rendered")], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 2 and "no notebook matches" in result.stderr
