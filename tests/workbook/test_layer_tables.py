"""Tables H and I on hand-made per-layer tables: one run's layers with their score statistics and a totals row, and
every pruner's density per layer."""

import math

import numpy as np
import pandas as pd

from prunelab.workbook import focus_layer_table, layer_density_table

DENSE, KEPT = "dense FLOPs (multiply-adds) per image", "kept FLOPs (multiply-adds) per image"


def _layers(**columns) -> pd.DataFrame:
    """Two SNIP layers and a Rand one as :func:`~prunelab.workbook.layer_findings.layer_frame` gives them, with the
    record's score statistics."""
    density = [0.4328703, 0.5, 0.3]
    flops = [442368, 640, 442368]
    return pd.DataFrame({"label": ["SNIP", "SNIP", "Rand"], "module": ["conv", "fc", "conv"],
                         "layer": ["conv", "fc", "conv"], "param": "weight",
                         "shape": ["(16, 3, 3, 3)", "(10, 64)", "(16, 3, 3, 3)"], "size": [432, 640, 432],
                         "density": density, "flops": flops, "kept_flops": np.multiply(density, flops),
                         "score mean": [1.7731e-6, 0.04712, 0.5], "score variance": [2.5e-11, 4e-4, 1.0],
                         **columns})


def test_table_h_gives_one_pruners_layers_with_plain_headers_and_people_numbers():
    layers = _layers()
    h = focus_layer_table(layers, "SNIP")
    assert list(h["layer"])[:-1] == ["conv", "fc"]  # SNIP's rows only, then their totals
    assert h.iloc[0].to_dict() == {"layer": "conv", "shape": "16×3×3×3", "weights": "432", "density": "0.432870",
                                   DENSE: "442,368", KEPT: "191,488", "score mean": "1.77×10⁻⁶",
                                   "score sd": "5.00×10⁻⁶"}
    assert list(h["shape"])[:-1] == ["16×3×3×3", "10×64"]  # no tuple's commas and spaces for a narrow column to wrap
    assert all(h[column].nunique() > 1 for column in h)  # no column says the same in every row
    mixed = focus_layer_table(layers.assign(param=["weight", "bias", "weight"], layer=["conv", "fc bias", "conv"]),
                              "SNIP")
    assert list(mixed["layer"])[:-1] == ["conv", "fc bias"]  # a layer's name says which parameter where not the weight


def test_table_h_gives_each_layers_score_mean_and_sd_as_the_record_stores_them():
    h = focus_layer_table(_layers(), "SNIP").iloc[:-1]
    assert list(h["score mean"]) == ["1.77×10⁻⁶", "0.0471"]  # 3 significant digits, as the record's mean
    assert list(h["score sd"]) == ["5.00×10⁻⁶", "0.0200"]  # the square root of the record's variance
    older = focus_layer_table(_layers().drop(columns=["score mean", "score variance"]), "SNIP")
    assert set(older["score mean"]) == set(older["score sd"]) == {"–"}  # a record from before the statistics
    part = focus_layer_table(_layers(**{"score mean": [math.nan, 0.04712, 0.5],
                                        "score variance": [math.nan, 4e-4, 1.0]}), "SNIP")
    assert list(part["score mean"])[:2] == ["–", "0.0471"] and list(part["score sd"])[:2] == ["–", "0.0200"]


def test_table_h_ends_with_the_totals_of_its_rows():
    layers = _layers()
    snip = layers[layers["label"] == "SNIP"]
    h = focus_layer_table(layers, "SNIP")
    assert len(h) == len(snip) + 1
    total = h.iloc[-1]
    assert total["weights"] == f"{snip['size'].sum():,}" == "1,072"
    kept = (snip["density"] * snip["size"]).sum()  # 187 + 320 weights
    assert round(kept) == 507 and total["density"] == f"{kept / 1072:.6f}"
    assert total[DENSE] == "443,008"  # the layers' dense FLOPs summed
    flop_density = snip["kept_flops"].sum() / snip["flops"].sum()
    assert total[KEPT].startswith("191,808 ") and f"{flop_density:.6f}" in total[KEPT]  # and the FLOP density
    assert f"{flop_density:.6f}" != total["density"]  # the two densities differ here: both are shown
    assert total["score mean"] == total["score sd"] == "–"  # no pooled statistic
    rand = focus_layer_table(layers, "Rand").iloc[-1]
    assert rand["weights"] == "432" and rand["density"] == "0.300000"  # each pruner's own rows only
    from prunelab.workbook.layer_tables import ALL_WEIGHTS

    assert total["layer"] == ALL_WEIGHTS and total["shape"] in ("", "–")


def test_table_i_gives_each_density_as_table_h_does():
    layers = pd.DataFrame({"label": ["SNIP", "SNIP", "Rand", "Rand"], "layer": ["conv", "fc", "conv", "fc"],
                           "shape": "(16, 3, 3, 3)", "size": 432, "density": [0.820747, 0.5, 0.3, 0.1234567],
                           "flops": 10, "kept_flops": 5.0})
    i = layer_density_table(layers)
    assert list(i.index) == ["conv", "fc"] and list(i.columns) == ["Rand", "SNIP"]  # the pruners in their order
    for label in ("SNIP", "Rand"):
        h = focus_layer_table(layers, label).iloc[:-1].set_index("layer")["density"]  # the layers, not their totals
        assert i[label].to_dict() == h.to_dict()  # the same layer's density, to the same decimals
    assert i.loc["conv", "SNIP"] == "0.820747"
