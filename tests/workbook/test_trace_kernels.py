"""What would cut a traced step's convolution time, with what Task 1's sparse kernels measured on its set-up."""

import pandas as pd
import pytest
from timed_passes import timed

from prunelab.runs.store import json_writer, load_record, write_record
from prunelab.workbook.numbers import Span, ratio_text
from prunelab.workbook.trace_kernels import (
    CONV_FIX,
    NOT_MEASURED,
    conv_fix_words,
    kernel_words,
    setup_kernels,
    setup_sparse_table,
)


def _runs(rows) -> pd.DataFrame:
    """Sparse-table rows of one set-up: (label, compression, kept, dense s, sparse s, switched kernels, dead units)."""
    return timed(pd.DataFrame([dict(setup="CIFAR-10 / ResNet20", label=label, compression=c, kept=kept, top1=10.0,
                                    majority_class_top1=10.0, stand_in=True, timing_repeats=5,
                                    dense_inference_s=d, dense_inference_spread_s=0.01, sparse_inference_s=s,
                                    sparse_inference_spread_s=0.01, speedup=d / s, switched=len(kernels),
                                    kernels=kernels, dead_units=dead, traced=(label, c) == ("SNIP", 1.0))
                               for label, c, kept, d, s, kernels, dead in rows]))


#: the traced set-up (SNIP at 1) and two others unchanged by sparse kernels; one run 1.5x as fast on two compact
#: layers, one with dead units removed whose times do not differ
RUNS = [("SNIP", 1.0, 0.1, 1.0, 1.0, (), 0), ("Rand", 1.0, 0.1, 1.0, 1.0, (), 0), ("Mag", 0.5, 0.316, 1.0, 1.0, (), 0),
        ("SynFlow (100 rounds)", 1.0, 0.1, 1.0, 1.0 / 1.5, ("compact", "compact"), 40),
        ("GraSP", 1.0, 0.1, 1.0, 1.0, (), 12)]


def test_the_kernels_words_count_the_runs_sparse_kernels_changed_and_quote_only_a_difference_beyond_noise():
    k = setup_kernels(_runs(RUNS))
    assert (k.count.runs, k.changed, k.changed_kept, k.kernels, k.dead_units) == (
        5, 2, Span(0.1, 0.1), (("compact", 2),), 52)
    assert k.traced_changed is False  # the traced set-up ran the dense model on sparse kernels too
    # Task 1's count: the runs that ran the dense model are left out, the other two compared
    assert (k.count.tested, k.count.beyond) == (2, 1) and k.count.real_speedup.low == pytest.approx(1.5)
    words = kernel_words(k)
    assert "2 of its 5 runs" in words and f"**{ratio_text(1.5)}**" in words and "52 dead units" in words
    within = setup_kernels(_runs([r[:3] + (1.0, 1.0) + r[5:] for r in RUNS]))  # no time differs
    assert within.count.beyond == 0 and "**" not in kernel_words(within)
    unchanged = setup_kernels(_runs(RUNS[:3]))
    assert unchanged.changed == 0 and unchanged.changed_kept is None and "none of its 3 runs" in kernel_words(unchanged)
    changed_traced = setup_kernels(_runs([("SNIP", 1.0, 0.1, 1.5, 1.0, ("compact",), 0), *RUNS[1:3]]))
    assert changed_traced.traced_changed is True
    untraced = setup_kernels(_runs(RUNS[1:]))
    assert untraced.traced_changed is None  # the traced set-up not among Task 1's runs: nothing said of it
    assert setup_kernels(None) is None and setup_kernels(pd.DataFrame()) is None and kernel_words(None) == ""


def test_the_convolutions_fix_says_why_their_work_stays_and_what_task_1_measured_where_the_store_has_it():
    measured, bare = conv_fix_words(_runs(RUNS)), conv_fix_words(None)
    assert CONV_FIX in measured and kernel_words(setup_kernels(_runs(RUNS))) in measured
    assert NOT_MEASURED not in measured
    assert CONV_FIX in bare and NOT_MEASURED in bare  # no sparse record: where Task 1 times them, no number


def test_the_findings_and_the_key_result_give_the_convolutions_fix_with_task_1s_kernels():
    from prunelab.workbook.key_results import trace_key_result
    from prunelab.workbook.tracing_findings import trace_findings

    trace = dict(device="cpu", step_span_ms=9.0, step_busy_ms=8.0, conv_layers=21, conv_ms=6.0, conv_share=0.75,
                 main_sink="convolution", outputs_equal_to_original_design=True)
    designs = pd.DataFrame([{"design": d, "units": u, "step span (ms)": 9.0, "busy (ms)": 8.0,
                             "convolution (ms)": 6.0, "mask multiply share": m}
                            for d, u, m in (("original", 152, 0.1), ("folded", 73, 0.0))])
    measured = kernel_words(setup_kernels(_runs(RUNS)))
    for text in (trace_key_result({"trace": trace}, designs, "real CIFAR-10", _runs(RUNS)),
                 trace_findings({"trace": trace}, designs, sparse=_runs(RUNS))):
        assert CONV_FIX in text and measured in text
    for text in (trace_key_result({"trace": trace}, designs, "real CIFAR-10"),
                 trace_findings({"trace": trace}, designs)):
        assert CONV_FIX in text and NOT_MEASURED in text
    other = trace_key_result({"trace": {**trace, "main_sink": "batchnorm"}}, designs, "real CIFAR-10", _runs(RUNS))
    assert measured not in other and CONV_FIX not in other  # not the convolutions: their fix is not given


def _write(folder, config: dict, summary: dict, env: dict | None = None):
    write_record(folder, {"config.json": json_writer(config), "summary.json": json_writer(summary),
                          "env.json": json_writer(env or {"device": "cpu"})})
    return load_record(folder)


def _sparse_summary(source: str, dense: float, sparse: float, kernels=(), dead: int = 0, device="cpu") -> dict:
    return {"source_record": source, "device": device, "stand_in": True, "data_source": "synthetic",
            "dense_inference_s": dense, "dense_inference_spread_s": 0.01, "dense_inference_samples_s": [dense] * 5,
            "sparse_inference_s": sparse, "sparse_inference_spread_s": 0.01, "sparse_inference_samples_s": [sparse] * 5,
            "speedup": dense / sparse, "dead_units": dead, "layers": 22, "timing_repeats": 5,
            "switched_layers": [f"layer{i}" for i in range(len(kernels))], "switched_kernels": list(kernels)}


def test_the_setup_sparse_table_reads_the_stores_sparse_records_of_the_traced_runs_setup(tmp_path):
    def config(pruner, compression, dataset="cifar10", model="resnet20", experiment="singleshot"):
        return dict(experiment=experiment, dataset=dataset, model=model, pruner=pruner, compression=compression,
                    prune_epochs=None, seed=1)

    summary = {"prunable_density": 0.1, "flop_density": 0.2, "top1": 10.0, "majority_class_top1": 10.0}
    traced = _write(tmp_path / "singleshot" / "traced", {**config("snip", 1.0), "save_trace": True}, summary)
    for name, pruner, dataset, model in (("a", "snip", "cifar10", "resnet20"), ("b", "mag", "cifar10", "resnet20"),
                                         ("c", "snip", "mnist", "fc")):
        _write(tmp_path / "singleshot" / name, config(pruner, 1.0, dataset, model), summary)
    _write(tmp_path / "sparse" / "a-1", config("snip", 1.0, experiment="sparse"), _sparse_summary("a", 1.0, 1.0))
    _write(tmp_path / "sparse" / "b-1", config("mag", 1.0, experiment="sparse"),
           _sparse_summary("b", 1.5, 1.0, ("compact",), 3))
    _write(tmp_path / "sparse" / "c-1", config("snip", 1.0, "mnist", "fc", "sparse"), _sparse_summary("c", 1.0, 0.5))
    _write(tmp_path / "sparse" / "d-1", config("snip", 1.0, experiment="sparse"),  # timed on another device
           _sparse_summary("b", 1.0, 0.5, device="cuda"))
    _write(tmp_path / "sparse" / "e-1", config("snip", 1.0, experiment="sparse"), _sparse_summary("gone", 1.0, 0.5))
    table = setup_sparse_table(traced)
    assert sorted(table["label"]) == ["Mag", "SNIP"]  # its set-up's runs only, on its device, with their source
    assert list(table.sort_values("label")["traced"]) == [False, True]
    assert list(table.sort_values("label")["kernels"]) == [("compact",), ()]
    assert table.sort_values("label")["speedup"].tolist() == pytest.approx([1.5, 1.0])
    other = _write(tmp_path / "singleshot" / "other", config("snip", 1.0, "cifar10", "vgg16"), summary)
    assert setup_sparse_table(other).empty  # no sparse record of its set-up
