"""Tables H and I as a reader sees them: one run's prunable layers (Table H) and every pruner's density per layer
(Table I), from the per-layer table (:func:`.layer_findings.layer_frame`), densities to 6 decimals in both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .layer_findings import overall_density
from .numbers import NO_SPREAD, scaled, shape_text
from .style import FLOPS, column_order

#: a layer's density as Tables H and I give it, to 6 decimals
_DENSITY = "{:.6f}".format
#: a count of FLOPs as Table H gives it, whole and with thousands separators
_COUNT = "{:,.0f}".format
#: the name of Table H's last row, which totals the rows above it
ALL_WEIGHTS = "all prunable weights"
#: Table H's headings of a layer's score statistics: the mean and the standard deviation of the scores the pruner
#: gave its weights (the record's ``score mean`` and the square root of its ``score variance``)
SCORE_MEAN, SCORE_SD = "score mean", "score sd"
KEPT_FLOPS, DENSE_FLOPS = f"kept {FLOPS} per image", f"dense {FLOPS} per image"


def _statistic(rows: pd.DataFrame, column: str) -> pd.Series:
    """A score statistic of the record's layer table (:data:`~prunelab.core.measure.SUMMARY_COLUMNS`) in ``rows``,
    NaN where a record did not store it (an older one)."""
    return rows[column].astype(float) if column in rows else pd.Series(np.nan, index=rows.index)


def focus_layer_table(layers: pd.DataFrame, label: str) -> pd.DataFrame:
    """Table H: every prunable weight of the run labelled ``label`` in a per-layer table (:func:`.layer_findings.
    layer_frame`), by the layer's name (:func:`.layer_findings.layer_names`, which names a parameter other than a
    weight): its shape, size, density to 6 decimals, its dense and kept FLOPs per image, and the mean and standard
    deviation of its scores as the record gives them (:func:`.numbers.scaled`; "–" where the record has none). The
    last row totals the rows above (:func:`_totals_row`)."""
    rows = layers[layers["label"] == label]
    table = pd.DataFrame({"layer": rows["layer"], "shape": rows["shape"].map(shape_text),
                          "weights": rows["size"].map("{:,}".format), "density": rows["density"].map(_DENSITY),
                          DENSE_FLOPS: rows["flops"].map(_COUNT), KEPT_FLOPS: rows["kept_flops"].map(_COUNT),
                          SCORE_MEAN: _statistic(rows, "score mean").map(scaled),
                          SCORE_SD: np.sqrt(_statistic(rows, "score variance")).map(scaled)})
    return table if rows.empty else pd.concat([table, _totals_row(rows)], ignore_index=True)


def _totals_row(rows: pd.DataFrame) -> pd.DataFrame:
    """Table H's row :data:`ALL_WEIGHTS`: the rows' weights, their kept fraction (:func:`.layer_findings.
    overall_density`), their dense and kept FLOPs, and beside the kept FLOPs the kept fraction of the dense FLOPs
    (the FLOP density); no pooled score statistic ("–")."""
    flops, kept = float(rows["flops"].sum()), float(rows["kept_flops"].sum())
    flop_density = _DENSITY(kept / flops) if flops else NO_SPREAD
    return pd.DataFrame([{"layer": ALL_WEIGHTS, "shape": "", "weights": f"{int(rows['size'].sum()):,}",
                          "density": _DENSITY(overall_density(rows)), DENSE_FLOPS: _COUNT(flops),
                          KEPT_FLOPS: f"{_COUNT(kept)} ({flop_density} of dense)", SCORE_MEAN: NO_SPREAD,
                          SCORE_SD: NO_SPREAD}])


def layer_density_table(layers: pd.DataFrame) -> pd.DataFrame:
    """Table I: every prunable layer's density (rows, in network order) under each pruner (columns), to 6 decimals
    as in Table H."""
    densities = layers.pivot_table(index="layer", columns="label", values="density", sort=False)
    return densities[column_order(densities.columns)].rename_axis(columns=None).map(_DENSITY, na_action="ignore")
