"""Mixed precision training through a whole run: what it records, and that the masks stay exact."""

import math

import pytest
import torch

from prunelab.runs.config import RunConfig
from prunelab.runs.registry import run
from prunelab.workbook.speed_findings import quantization_findings
from prunelab.workbook.tables import AMP_METRICS, amp_table

TINY = dict(dataset="cifar10", model="resnet20", model_class="lottery", data_source="synthetic", train_subset=64,
            test_subset=32, post_epochs=2, train_batch_size=32, pruner="rand", compression=1.0)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    result_dir = str(tmp_path_factory.mktemp("amp"))
    fp32 = run(RunConfig(**TINY, result_dir=result_dir), progress=False, log=lambda _: None)
    amp = run(RunConfig(**TINY, quantization=True, result_dir=result_dir), progress=False, log=lambda _: None)
    return fp32, amp


def test_amp_run_records_precision_time_and_memory(records):
    fp32, amp = records
    assert fp32.summary["amp"] is False and fp32.summary["amp_dtype"] == "fp32"
    assert amp.summary["amp"] is True and amp.summary["amp_dtype"] == "bf16"  # the CPU's default
    assert amp.summary["grad_scaler"] is False  # bf16 needs no loss scaling
    assert fp32.summary["train_step"] == amp.summary["train_step"] == "ordinary"  # CUDA graphs need CUDA
    for record in records:
        s = record.summary
        assert s["status"] == "complete" and s["epochs_done"] == 2
        assert s["train_s"] > 0 and math.isclose(s["train_s_per_epoch"], s["train_s"] / 2)
        assert s["peak_memory_kind"] == "cpu_peak_rss"  # labelled: on the CPU it is the process's resident peak
        assert s["peak_memory_mb"] > 50
        assert 0 <= s["top1"] <= 100
        assert len(record.epochs[record.epochs["epoch"] > 0]) == 2 and (record.epochs["train_s"] >= 0).all()
    assert amp.config["quantization"] and amp.summary["config_hash"] != fp32.summary["config_hash"]


def test_amp_training_keeps_pruned_weights_exactly_zero(records):
    _, amp = records
    state, masks = amp.state_dict(), amp.masks()
    pruned = 0
    for name, mask in masks.items():
        weight = state[name.removesuffix("_mask")]
        assert weight.dtype == torch.float32  # the optimizer owns fp32 weights; autocast only casts copies
        assert torch.all(weight[mask == 0] == 0), name
        pruned += int((mask == 0).sum())
    assert pruned > 0.8 * amp.summary["prunable"]  # compression 1 prunes 90% of the prunable weights


def test_amp_dtype_without_amp_is_refused_and_none_keeps_old_hashes():
    from prunelab.errors import UserError

    with pytest.raises(UserError, match="add --quantization"):
        RunConfig(amp_dtype="bf16").validate()
    with pytest.raises(UserError, match="unknown AMP dtype"):
        RunConfig(quantization=True, amp_dtype="int4").validate()
    assert "amp_dtype" not in RunConfig().hashed_fields()
    assert RunConfig(quantization=True, amp_dtype="bf16").config_hash() != RunConfig(quantization=True).config_hash()


def test_int8_record_of_a_digits_run_is_written_once_and_reused(tmp_path):
    from prunelab.core.timing import Timing
    from prunelab.runs.int8 import FP32_COMPILED, INT8, Int8Settings, quantize_record
    from prunelab.runs.prepare import derived_path
    from prunelab.workbook.tables import int8_table

    source = run(RunConfig(dataset="digits", model="conv", pruner="rand", compression=0.5, post_epochs=8,
                           result_dir=str(tmp_path)), progress=False, log=lambda _: None)
    settings = Int8Settings(calibration_batches=4, repeats=2)  # two passes: one has no spread
    record = quantize_record(source, settings, log=lambda _: None)
    assert record.path == derived_path(source, "int8", settings) and record.path.parent.name == "int8"
    s = record.summary
    assert s["pruned_weights_zero"] and all(s["pruned_weights_zero_by_layer"].values())
    assert s["fp32_top1"] > 80 and abs(s["top1_drop"]) <= 2.0  # real data, trained 8 epochs
    assert s["fp32_top1"] == source.summary["top1"]  # the same model on the same test set as the run itself
    assert s["int8_bytes"] < s["fp32_dense_bytes"] and s["fp32_sparse_bytes"] < s["fp32_dense_bytes"]
    assert s["stand_in"] is False and s["speedup"] > 0
    from prunelab.precision.pt2e import pt2e_unavailable

    compiled = Timing.from_summary(s, FP32_COMPILED)
    if pt2e_unavailable() is None:  # PT2E ran, and the old path it replaces and fp32 compiled were timed beside it
        assert s["int8_path"] == s["int8_method"] == "pt2e" and s["int8_fallback"] == ""
        assert s["legacy_path"] == "eager" and abs(s["fp32_top1"] - s["legacy_top1"]) <= 2.0  # a Sequential
        assert s["legacy_inference_s"] > 0 and s["legacy_speedup"] > 0 and s["int8_warmup_s"] > 0
        assert compiled.median > 0 and compiled.repeats == len(compiled.samples) == settings.repeats
        assert abs(s["fp32_compiled_top1"] - s["fp32_top1"]) <= 0.5  # the same fp32 model, compiled
        assert s["speedup_over_compiled"] == pytest.approx(compiled.median / s["int8_inference_s"])
    else:  # the fallback, named with its reason; nothing compiled, so no compiled fp32 side
        assert s["int8_path"].startswith("eager (fallback: ") and s["legacy_path"] == ""
        assert math.isnan(compiled.median) and compiled.samples == () and math.isnan(s["speedup_over_compiled"])
        assert math.isnan(s["fp32_compiled_top1"])
    assert s["fp32_compiled_error"] == ""  # timed compiled, or off the PT2E path where nothing is compiled
    assert s["speedup"] == pytest.approx(s["fp32_inference_s"] / s["int8_inference_s"])
    assert f"{FP32_COMPILED}_samples_s" in INT8.require  # a record without the compiled side is measured again
    assert s["int8_inference_spread_s"] >= 0 and s["fp32_inference_spread_s"] >= 0
    marker = record.path / "COMPLETE"
    before = marker.stat().st_mtime_ns
    again = quantize_record(source, settings, log=lambda _: None)
    assert again.path == record.path and marker.stat().st_mtime_ns == before  # reused, not recomputed
    source_again = run(RunConfig.from_dict({**source.config, "force": True}), progress=False,
                       log=lambda _: None)  # the source recomputed: its int8 record is stale
    assert quantize_record(source_again, settings, log=lambda _: None).summary["source_completed"] != \
        s["source_completed"]
    table = int8_table([record])
    row = table.loc[("digits / Conv", 0.5)]
    assert row["int8 top-1 (%)"] == s["int8_top1"] and bool(row["pruned weights zero in int8"])
    assert row["int8 path"] == s["int8_path"]
    assert (row["int8 method"], row["fp32 method"]) == (s["int8_method"], s["fp32_method"])
    assert s["fp32_method"] == "eager"  # the baseline of "speedup" is never compiled
    assert row["fp32 compiled timing"].samples == compiled.samples
    assert row["speedup over compiled"] == pytest.approx(s["speedup_over_compiled"], nan_ok=True)



def test_an_fp32_model_that_does_not_compile_beside_pt2e_leaves_its_reason_for_the_record(monkeypatch):
    import torch

    import prunelab.runs.int8 as int8_run
    from prunelab.precision.int8 import Int8Path

    def broken(model):
        def compiled(x):
            raise RuntimeError("no working C++ compiler\nthe rest of the message")
        return compiled

    monkeypatch.setattr(int8_run, "quantize_int8", lambda *args, **kwargs: "the old path's int8")
    model, example, logged = torch.nn.Sequential(torch.nn.Linear(2, 2)), torch.zeros(1, 2), []
    monkeypatch.setattr(int8_run, "compiled_fp32", broken)
    beside, error = int8_run._beside_pt2e(model, Int8Path("pt2e"), [example], example, logged.append)
    assert set(beside) == {"legacy"} and error == "no working C++ compiler"  # the first line, as the log gives it
    assert any(error in line for line in logged)
    monkeypatch.setattr(int8_run, "compiled_fp32", lambda model: (lambda x: x))
    beside, error = int8_run._beside_pt2e(model, Int8Path("pt2e"), [example], example, logged.append)
    assert set(beside) == {"legacy", "fp32_compiled"} and error == ""
    assert int8_run._beside_pt2e(model, Int8Path("eager", "no torchao"), [example], example, logged.append) == ({}, "")

def test_amp_reuse_refuses_a_record_of_another_devices_dtype(records, tmp_path):
    from prunelab.errors import UserError
    from prunelab.runs.store import json_writer, record_path, write_record

    _, amp = records
    config = RunConfig(**TINY, quantization=True, no_cuda=True, result_dir=str(tmp_path))  # bf16 here
    # the same run as a CUDA machine records it, trained in fp16 (the default there)
    write_record(record_path(tmp_path, config.experiment, config.record_name),
                 {"config.json": json_writer(config.to_dict()), "env.json": json_writer({}),
                  "summary.json": json_writer({**amp.summary, "amp_dtype": "fp16"})})
    with pytest.raises(UserError, match="--amp-dtype fp16 to reuse it"):
        run(config, progress=False, log=lambda _: None)


def test_notebooks_recompute_records_that_lack_a_required_measurement(tmp_path):
    import json

    from prunelab.workbook.grids import ensure_runs

    config = RunConfig(**{**TINY, "post_epochs": 1}, result_dir=str(tmp_path))
    record = run(config, progress=False, log=lambda _: None)
    summary = json.loads((record.path / "summary.json").read_text())
    del summary["peak_memory_mb"]  # as written before prunelab measured memory
    (record.path / "summary.json").write_text(json.dumps(summary))
    (again,) = ensure_runs([config], progress=False, require=("peak_memory_mb",))
    assert again.summary["peak_memory_mb"] > 0


def test_task4_findings_read_the_cuda_memory_kind_from_the_records():
    import pandas as pd



    rows = [dict(compression=c, amp=amp, amp_dtype="fp16" if amp else "fp32", peak_memory_mb=500.0 if amp else 700.0,
                 train_s=10.0 if amp else 12.0, top1=90.0, peak_memory_kind="cuda_max_allocated", device_name="GPU",
                 model="resnet20", params_total=272_714, peak_memory_start_mb=200.0, cpu_bf16=[])
            for c in (0.2, 0.5) for amp in (False, True)]
    table = pd.DataFrame(rows)
    text = quantization_findings(table, pd.DataFrame())
    assert all(number in text for number in ("0.833x", "0.714x", "200 MB"))  # time, memory, held before the run
    frame = amp_table(table)
    assert list(frame.columns) == [(m, p) for m in AMP_METRICS.values() for p in ("AMP fp16", "fp32")]
    assert frame.loc[0.2, ("Peak memory (MB)", "AMP fp16")] == 500.0


def test_records_time_inference_apart_and_epochs_as_medians_with_spreads(records):
    for record in records:
        s = record.summary
        assert s["inference_repeats"] >= 5 and s["inference_spread_s"] >= 0 and s["inference_s"] > 0
        # two epochs: the first is the warm-up, so one is timed and it has no spread
        assert s["epoch_train_repeats"] == 1 and math.isnan(s["epoch_train_spread_s"])
        assert math.isclose(s["epoch_train_s"], record.epochs.loc[record.epochs["epoch"] == 2, "train_s"].item())


def test_amp_timing_record_takes_fp32_and_amp_steps_in_turn(records):
    from prunelab.runs.amp_timing import EXPERIMENT, AmpTimingSettings, amp_timing_record
    from prunelab.runs.registry import EXPERIMENTS

    fp32, _ = records
    settings = AmpTimingSettings(batches=1, batch_size=4)
    timing = amp_timing_record(fp32, settings, log=lambda _: None)
    s = timing.summary
    assert timing.path.parent.name == EXPERIMENT and EXPERIMENTS[EXPERIMENT].from_record
    assert s["amp_dtype"] == "bf16" and s["batches"] == 1 and s["batch_size"] == 4
    for name in ("fp32", "amp"):
        passes = s[f"{name}_train_samples_s"]
        assert s[f"{name}_train_repeats"] == 5 and len(passes) == 5
        assert math.isclose(s[f"{name}_train_spread_s"], max(passes) - min(passes))
        assert s[f"{name}_train_peak_mb"] > 0  # a step's activations and gradients at least
    assert amp_timing_record(fp32, settings, log=lambda _: None).path == timing.path  # reused, not re-measured
