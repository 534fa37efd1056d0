"""The mask audit in real runs: ok with exact counts (single-shot, multishot with mixed precision), a hand-made
drift that is an error line and still a record, ``prunelab verify`` reporting audits that are not ok, and
records made before the audit: information for verify, reused as before."""

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from prunelab.core.pruners import keep_count
from prunelab.models.layers import MaskedMixin
from prunelab.runs.cli import main
from prunelab.runs.config import RunConfig
from prunelab.runs.integrity import MANIFEST, write_manifest
from prunelab.runs.store import json_writer, load_record, record_path, usable_record, write_record
from prunelab.runs.verify import NO_AUDIT, findings

TINY = ["--data-source", "synthetic", "--train-subset", "64", "--test-subset", "32", "--post-epochs", "1"]
AUDIT_KEYS = ("mask_audit", "mask_audit_drift", "mask_audit_collapsed", "mask_audit_off_target",
              "mask_audit_target_fraction", "mask_audit_kept_fraction")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One finished single-shot record (SNIP at compression 1), copied by the tests that change it."""
    results = tmp_path_factory.mktemp("audit")
    assert main([*TINY, "--pruner", "snip", "--expid", "run", "--result-dir", str(results)]) == 0
    return results / "singleshot" / "run"


def _assert_ok_with_exact_counts(path: Path, compression: float) -> None:
    record = load_record(path)
    summary, audit = record.summary, record.mask_audit
    assert summary["mask_audit"] == "ok" and summary["mask_audit_drift"] == 0
    assert summary["mask_audit_collapsed"] == [] and summary["mask_audit_off_target"] == []
    assert "mask_audit.csv" in json.loads((path / MANIFEST).read_text())["files"]
    assert audit["drift"].sum() == 0 and (audit["kept"] == audit["target_kept"]).all()
    assert audit["kept"].sum() == keep_count(summary["prunable"], compression) == summary["kept"]
    assert audit["size"].sum() == summary["prunable"]
    assert math.isclose(summary["mask_audit_target_fraction"], 10 ** -compression)
    assert summary["mask_audit_kept_fraction"] == audit["kept"].sum() / audit["size"].sum()
    # the audit agrees with the stored masks and model, checked here without it
    masks, state = record.masks(), record.state_dict()
    for row in audit.to_dict("records"):
        mask = masks[f"{row['layer']}_mask"]
        assert int(mask.sum()) == row["kept"] and mask.numel() == row["size"]
        assert torch.all(state[row["layer"]][mask == 0] == 0)


def test_a_quick_run_audits_ok_with_the_exact_keep_count(reference):
    _assert_ok_with_exact_counts(reference, 1.0)
    summary = load_record(reference).summary
    # the log's audit line: the verdict, the kept count (and its target, the same) of all prunable weights
    (line,) = [line for line in (reference / "log.txt").read_text().splitlines() if f"{summary['prunable']:,}" in line]
    assert summary["mask_audit"] == "ok" and "ok" in line and line.count(f"{summary['kept']:,}") == 2


def test_a_multishot_mixed_precision_run_is_audited_too(tmp_path):
    assert main([*TINY, "--experiment", "multishot", "--level-list", "2", "--pre-epochs", "1", "--quantization",
                 "--compression", "1.5", "--expid", "ms", "--result-dir", str(tmp_path)]) == 0
    (path,) = (tmp_path / "multishot").iterdir()
    assert load_record(path).summary["amp"]
    _assert_ok_with_exact_counts(path, 1.5)


def _set_a_pruned_weight_after_the_epoch(monkeypatch) -> None:
    import prunelab.core.train as T

    real = T.train_epoch

    def drift_after_the_epoch(model, *args, **kwargs):  # the fault: a pruned weight non-zero after training
        loss = real(model, *args, **kwargs)
        layer = next(m for m in model.modules() if isinstance(m, MaskedMixin))
        first_pruned = (layer.weight_mask.reshape(-1) == 0).nonzero()[0]
        with torch.no_grad():
            layer.weight.view(-1)[first_pruned] = 0.5
        return loss

    monkeypatch.setattr(T, "train_epoch", drift_after_the_epoch)


def test_a_hand_made_drift_is_an_error_line_and_the_record_keeps_it(tmp_path, monkeypatch, capsys):
    _set_a_pruned_weight_after_the_epoch(monkeypatch)
    assert main([*TINY, "--expid", "drift", "--result-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    path = tmp_path / "singleshot" / "drift"
    record = load_record(path)
    assert record.summary["mask_audit"] == "drift" and record.summary["mask_audit_drift"] == 1
    assert record.mask_audit.set_index("layer")["drift"].to_dict()["1.weight"] == 1
    assert record.mask_audit["drift"].sum() == 1
    errors = [line for line in (path / "log.txt").read_text().splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "1.weight: 1" in errors[0]
    assert errors[0] in captured.err and errors[0] not in captured.out

    assert main(["verify", str(tmp_path)]) == 1  # drift is an error
    folders, counts = _verified(capsys.readouterr().out, tmp_path)
    (state, reason), = folders.values()
    assert list(folders) == ["singleshot/drift"] and state == "ok"  # a record, not corrupt
    assert "drift" in reason and _numbers(reason) == [record.summary["mask_audit_drift"]]  # 1 pruned weight
    assert _numbers(counts) == [1, 1] and "drift" in counts  # 1 ok; of the audits, 1 drift
    assert main(["verify", str(tmp_path), "--repair"]) == 1  # the evidence is left where it is
    assert load_record(path).summary["mask_audit"] == "drift"


def _verified(out: str, root: Path) -> tuple[dict[str, tuple[str, str]], str]:
    """``prunelab verify``'s output: each folder's state column and reason, by its path under ``root``, and the
    counts its last line gives after ``root``."""
    *rows, last = out.strip().splitlines()
    folders = {}
    for row in rows:
        state, where = row.split(None, 1)
        where, _, reason = where.partition(": ")
        folders[where] = (state, reason)
    return folders, last.split(str(root), 1)[1]


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def _as_older_record(path: Path) -> None:
    """Make ``path`` a record as written before the audit existed (no audit fields, no audit file)."""
    summary = json.loads((path / "summary.json").read_text())
    for key in AUDIT_KEYS:
        del summary[key]
    (path / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (path / "mask_audit.csv").unlink()
    write_manifest(path)


def test_verify_says_no_audit_for_an_older_record_and_reuse_is_unaffected(reference, tmp_path, capsys):
    shutil.copytree(reference, tmp_path / "singleshot" / "run")
    _as_older_record(tmp_path / "singleshot" / "run")
    assert main(["verify", str(tmp_path)]) == 0
    folders, counts = _verified(capsys.readouterr().out, tmp_path)
    assert list(folders) == ["singleshot/run"] and folders["singleshot/run"][0] == "ok"
    assert [(f.state, f.audit) for f in findings(tmp_path)] == [("ok", NO_AUDIT)]  # said, and counted apart
    assert _numbers(counts) == [1, 1]  # 1 ok; of the audits, 1 none
    config = RunConfig(data_source="synthetic", train_subset=64, test_subset=32, post_epochs=1, pruner="snip",
                       expid="run", result_dir=str(tmp_path))
    assert usable_record(config) is not None
    marker = tmp_path / "singleshot" / "run" / "COMPLETE"
    made = marker.stat().st_mtime_ns
    assert main([*TINY, "--pruner", "snip", "--expid", "run", "--result-dir", str(tmp_path)]) == 0
    assert marker.stat().st_mtime_ns == made  # reused: not written again
    assert "mask_audit" not in load_record(tmp_path / "singleshot" / "run").summary


def test_verify_reports_a_collapsed_audit_as_information(reference, tmp_path, capsys):
    shutil.copytree(reference, tmp_path / "singleshot" / "run")
    config = RunConfig(data_source="synthetic", train_subset=64, test_subset=32, post_epochs=1, compression=3.0,
                       expid="collapsed", result_dir=str(tmp_path))
    write_record(record_path(tmp_path, "singleshot", "collapsed"), {
        "config.json": json_writer(config.to_dict()),
        "summary.json": json_writer({"config_hash": config.config_hash(), "mask_audit": "collapsed",
                                     "mask_audit_drift": 0, "mask_audit_collapsed": ["3.weight", "5.weight"],
                                     "mask_audit_off_target": []}),
        "env.json": json_writer({"device": "cpu"})})
    assert main(["verify", str(tmp_path)]) == 0
    folders, counts = _verified(capsys.readouterr().out, tmp_path)
    assert folders["singleshot/run"] == ("ok", "")  # its audit ok: nothing to say
    state, reason = folders["singleshot/collapsed"]
    assert state == "ok" and "collapsed" in reason and "3.weight, 5.weight" in reason  # information, with its layers
    assert list(folders) == ["singleshot/collapsed", "singleshot/run"]
    assert _numbers(counts) == [2, 1] and "collapsed" in counts  # 2 ok; of the audits, 1 collapsed
