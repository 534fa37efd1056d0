"""``python -m prunelab.workbook.compare RESULT_DIR``: a store's pruners compared in plain text, its numbers read back
against the records themselves: top-1 over seeds, an ablation's p, and the masks' overlap, with two pruners that
score alike flagged as keeping the same weights."""

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from scipy import stats

from prunelab import register_pruner
from prunelab.core.pruners import score_snip
from prunelab.runs.config import RunConfig
from prunelab.runs.fused import run_configs
from prunelab.runs.store import iter_records, read_layers
from prunelab.workbook.compare import CSV_FILES, ablation_numbers, differing_settings, main, store_table

SEEDS = (1, 2)
COPY = "SNIP again"  # the label of SNIP's score registered under another name: the same masks as SNIP's


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Rand, SNIP and SNIP's score under another name at one compression over two seeds, and SNIP's layerwise
    shuffle, on the synthetic MNIST stand-in: ten tiny runs."""
    register_pruner("snip-again", score_snip, label=COPY)
    results = tmp_path_factory.mktemp("store")

    def config(pruner: str, seed: int, **flags) -> RunConfig:
        return RunConfig(dataset="mnist", model="fc", data_source="synthetic", train_subset=256, test_subset=128,
                         post_epochs=2, lr=0.01, pruner=pruner, compression=0.5, seed=seed, result_dir=str(results),
                         fuse="off", **flags)

    configs = [config(p, s) for p in ("rand", "snip", "snip-again") for s in SEEDS]
    run_configs(configs + [config("snip", s, shuffle=True) for s in SEEDS], progress=False, log=lambda _m: None)
    return results


def _records(store: Path) -> list[dict]:
    """Each record's configuration and top-1 as its files hold them, and its folder."""
    return [{**r.config, "top1": json.loads((r.path / "summary.json").read_text())["top1"], "path": r.path}
            for r in iter_records(store)]


def _top1(store: Path, pruner: str, shuffle: bool = False) -> list[float]:
    return [r["top1"] for r in _records(store) if r["pruner"] == pruner and r["shuffle"] == shuffle]


def _kept(path: Path) -> dict[str, torch.Tensor]:
    layers = read_layers(path)
    pruned = {f"{m}.{p}_mask" for m, p, kept in zip(layers["module"], layers["param"], layers["prunable"]) if kept}
    return {k: v.bool() for k, v in torch.load(path / "masks.pt", weights_only=True).items() if k in pruned}


def _iou(a: Path, b: Path) -> float:
    ka, kb = _kept(a), _kept(b)
    both = sum(int((ka[k] & kb[k]).sum()) for k in ka)
    return both / sum(int((ka[k] | kb[k]).sum()) for k in ka)


def _run(store: Path, capsys, *args) -> tuple[int, str, str]:
    code = main([str(store), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_tables_hold_the_records_numbers_and_the_csv_files_the_same(store, tmp_path, capsys):
    code, out, _ = _run(store, capsys, "--csv", str(tmp_path / "csv"))
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(CSV_FILES.values())
    accuracy = pd.read_csv(tmp_path / "csv" / CSV_FILES["accuracy"])
    assert sorted(accuracy["pruner"]) == sorted(["Rand", "SNIP", COPY])  # as scored only: no shuffle row
    for pruner, label in (("rand", "Rand"), ("snip", "SNIP"), ("snip-again", COPY)):
        top1 = _top1(store, pruner)
        (row,) = accuracy[accuracy["pruner"] == label].to_dict("records")
        assert (row["n"], row["compression"]) == (len(SEEDS), 0.5)
        assert row["top1_mean"] == pytest.approx(sum(top1) / len(top1))
        assert row["top1_sd"] == pytest.approx(pd.Series(top1).std())
        line = next(line for line in out.splitlines() if line.startswith(f"{label} "))  # the first table's row
        assert f"{sum(top1) / len(top1):.1f} ± {pd.Series(top1).std():.1f} (n=2)" in line


def test_an_ablation_is_set_against_its_pruner_as_scored_with_welchs_p(store, tmp_path, capsys):
    assert _run(store, capsys, "--csv", str(tmp_path))[0] == 0
    (row,) = pd.read_csv(tmp_path / CSV_FILES["ablations"]).to_dict("records")
    shuffled, scored = _top1(store, "snip", shuffle=True), _top1(store, "snip")
    assert (row["pruner"], row["n"], row["scored_n"]) == ("SNIP", 2, 2)
    assert row["top1_mean"] == pytest.approx(sum(shuffled) / 2) and row["scored_mean"] == pytest.approx(sum(scored) / 2)
    assert row["difference"] == pytest.approx(sum(shuffled) / 2 - sum(scored) / 2)
    # SNIP's family is its one ablation at its one compression: Holm leaves Welch's p as it is
    assert row["p_holm"] == pytest.approx(stats.ttest_ind(shuffled, scored, equal_var=False).pvalue)
    assert math.isnan(row["told_apart"])  # a synthetic stand-in: no verdict is drawn from it


def test_on_real_data_the_ablation_gets_the_workbooks_verdict(store):
    table, _, _ = store_table(store)
    (stand_in,) = ablation_numbers(table).to_dict("records")
    (row,) = ablation_numbers(table.assign(stand_in=False)).to_dict("records")  # as if on real images
    assert row["told_apart"] == (row["p_holm"] < 0.05) and row["verdict"] != stand_in["verdict"]


def test_runs_of_a_setup_that_differ_in_another_setting_are_named_with_it(store):
    table, _, _ = store_table(store)
    assert differing_settings(table) == {}  # only pruner, seed and ablation differ
    faster = table.assign(config=[{**c, "lr": 0.1} if c["pruner"] == "rand" else c for c in table["config"]])
    assert differing_settings(faster) == {"lr": {"0.01": ["SNIP", COPY], "0.1": ["Rand"]}}


def test_mask_overlap_is_the_share_of_kept_weights_two_pruners_share_and_flags_identical_masks(store, tmp_path,
                                                                                             capsys):
    code, out, _ = _run(store, capsys, "--csv", str(tmp_path))
    assert code == 0
    overlap = pd.read_csv(tmp_path / CSV_FILES["overlap"]).set_index(["pruner_a", "pruner_b"])
    assert len(overlap) == 3 and set(overlap["seeds"]) == {len(SEEDS)}
    runs = {(r["pruner"], r["seed"]): r["path"] for r in _records(store) if not r["shuffle"]}
    labels = {"rand": "Rand", "snip": "SNIP", "snip-again": COPY}
    for a, b in itertools.combinations(labels, 2):
        ious = [_iou(runs[a, s], runs[b, s]) for s in SEEDS]
        row = overlap.loc[(labels[a], labels[b])]
        assert row["iou_mean"] == pytest.approx(sum(ious) / len(ious))
        assert bool(row["identical"]) == ({a, b} == {"snip", "snip-again"})
    assert overlap.loc[("SNIP", COPY), "iou_mean"] == 1.0 and overlap.loc[("Rand", "SNIP"), "iou_mean"] < 1
    # one line beside the tables names the identical pair, and no line names Rand's masks identical to another's
    named = [line for line in out.splitlines() if "identical" in line.lower() and not line.startswith(
        ("Rand ", "SNIP ", f"{COPY} "))]
    assert len(named) == 1 and "SNIP" in named[0] and COPY in named[0] and "Rand" not in named[0]


def test_a_setup_is_picked_by_name_and_an_unknown_one_is_one_line(store, capsys):
    code, out, _ = _run(store, capsys, "--setup", "mnist/fc")
    assert code == 0 and "MNIST / FC" in out
    code, out, err = _run(store, capsys, "--setup", "cifar10/resnet20")
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and "MNIST / FC" in err


def test_a_missing_or_empty_store_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "missing", tmp_path / "empty"):
        code, out, err = _run(folder, capsys, "--csv", str(tmp_path / "csv"))
        assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "csv").exists() and not (tmp_path / "missing").exists()
    done = subprocess.run([sys.executable, "-m", "prunelab.workbook.compare", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not done.stdout and len(done.stderr.strip().splitlines()) == 1
