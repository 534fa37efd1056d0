"""Tables and findings from hand-made tables of records: layouts, the numbers they carry, the sentences."""

import math

import pandas as pd

from prunelab.workbook.findings import compression_findings, quantization_findings, tuning_findings
from prunelab.workbook.grids import WorkbookParams, pruner_variants, tuning_grid
from prunelab.workbook.style import PRUNER_NAMES, pruner_label
from prunelab.workbook.tables import amp_ratios, amp_table, by_compression, metric_table, settings_markdown, table_a

LABELS = ["Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)"]


def _tuning_table() -> pd.DataFrame:
    rows = []
    for setup, compressions in (("CIFAR-10 / ResNet20", (0.25, 0.5, 1.0)), ("MNIST / FC", (1.0,))):
        for c in compressions:
            for i, label in enumerate(LABELS):
                top1 = 80.0 - 10 * c + i if not label.endswith("(1 round)") else 10.0
                rows.append(dict(setup=setup, label=label, compression=c, top1=top1, inference_s=0.5 + 0.01 * i,
                                 flops=1e7 * 10 ** -c * (1 + i / 10), collapsed_layers=[],
                                 majority_class_top1=10.0, stand_in=False, dataset="cifar10"))
    return pd.DataFrame(rows)


def test_table_a_is_setups_by_pruners_at_one_compression():
    a = table_a(_tuning_table())
    assert list(a.index) == ["CIFAR-10 / ResNet20", "MNIST / FC"] and list(a.columns) == LABELS
    assert a.loc["CIFAR-10 / ResNet20", "SNIP"] == 72.0


def test_tables_b_to_d_are_compressions_by_pruners():
    table = _tuning_table()
    b = by_compression(table, "top1")
    assert list(b.index) == [0.25, 0.5, 1.0] and b.index.name == "Compression" and list(b.columns) == LABELS
    assert metric_table(table[table["setup"] == "MNIST / FC"], "flops").shape == (1, 6)


def test_tuning_findings_name_the_best_and_worst_from_the_table():
    text = tuning_findings(_tuning_table())
    assert "At compression 1 (kept 10.0%) **SynFlow (100 rounds)** is best at 75.00% top-1" in text
    assert "SynFlow (1 round) worst at 10.00%" in text
    assert "predict no better than the most frequent class" in text  # SynFlow (1 round) at 10%


def _layers() -> pd.DataFrame:
    rows = []
    for label in ("SNIP", "Rand"):
        for layer, size, density in (("conv", 100, 0.9), ("fc", 1000, 0.05)):
            rows.append(dict(label=label, layer=layer, module=layer, size=size, density=density,
                             flops=size * 10, kept_flops=size * 10 * density))
    return pd.DataFrame(rows)


def test_compression_findings_report_density_per_pruner():
    text = compression_findings(_layers(), 1.0, "SNIP")
    assert "keeps 0.1000 of the prunable weights" in text
    assert "**SNIP**: overall 0.1273; densest `conv` (0.900), sparsest `fc` (0.050)" in text
    assert "layers with fewer weights keep on average 0.900 and larger ones 0.050" in text


def _amp_table() -> pd.DataFrame:
    rows = []
    for c in (0.2, 1.0):
        rows.append(dict(compression=c, amp=False, amp_dtype="fp32", peak_memory_mb=1000.0, train_s=100.0,
                         top1=80.0, peak_memory_kind="cpu_peak_rss", device_name="cpu x", model="resnet20",
                         params_total=270_000, cpu_bf16=[], peak_memory_start_mb=500.0))
        rows.append(dict(compression=c, amp=True, amp_dtype="bf16", peak_memory_mb=900.0, train_s=150.0,
                         top1=79.0, peak_memory_kind="cpu_peak_rss", device_name="cpu x", model="resnet20",
                         params_total=270_000, cpu_bf16=[], peak_memory_start_mb=500.0))
    return pd.DataFrame(rows)


def test_amp_table_and_ratios_follow_the_course_layout():
    table = _amp_table()
    frame = amp_table(table)
    assert list(frame.columns.get_level_values(1)) == ["AMP bf16", "fp32"] * 3
    ratios = amp_ratios(table)
    assert math.isclose(ratios.loc[0.2, "memory AMP / fp32"], 0.9)
    assert math.isclose(ratios.loc[1.0, "time AMP / fp32"], 1.5)
    assert ratios.loc[1.0, "top-1 AMP - fp32 (points)"] == -1.0


def test_quantization_findings_on_a_cpu_without_bf16_units():
    text = quantization_findings(_amp_table(), pd.DataFrame())
    assert "**1.50x** the fp32 time" in text and "0.90x fp32's" in text
    assert "no native bf16 units" in text and "emulated" in text


def test_synflow_labels_and_the_settings_table_use_the_default_rounds():
    assert pruner_label("synflow", None) == "SynFlow (100 rounds)" and pruner_label("synflow", 1) == "SynFlow (1 round)"
    assert [pruner_label(p, None) for p in PRUNER_NAMES if p != "synflow"] == ["Rand", "Mag", "SNIP", "GraSP"]
    params = WorkbookParams()
    assert pruner_variants(params)[-2:] == [("synflow", 1), ("synflow", 100)]
    grid = tuning_grid(params)
    table = pd.DataFrame([{**c.to_dict(), "data_source": "synthetic", "device_name": "cpu", "train_examples": 256,
                           "test_examples": 128, "amp_dtype": "fp32"} for c in grid])
    text = settings_markdown(params, table)
    assert "SynFlow with 1 and 100 round(s)" in text and "Rand, Mag, SNIP, GraSP, SynFlow at compression" in text
