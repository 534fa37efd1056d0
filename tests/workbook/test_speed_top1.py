"""The sparse-kernel speed-ups read with each run's own top-1: the runs near the unpruned network's top-1 apart from
those far below it, in the findings and the key result."""

import pandas as pd
from timed_passes import timed

from prunelab.workbook.key_results import speed_key_words
from prunelab.workbook.numbers import LARGE_POINTS, Span
from prunelab.workbook.sparse_speed import sparse_findings, sparse_result


def _runs(*runs: tuple[str, float, float, float]) -> pd.DataFrame:
    """MNIST / FC runs, each (label, compression, top-1, speed-up), faster on sparse kernels beyond the noise (2%
    spreads) with a dense time of 1 s at each compression (no dense time off its row's)."""
    return timed(pd.DataFrame([dict(setup="MNIST / FC", data="real MNIST", data_source="bundled", compression=c,
                                    kept=10 ** -c, label=label, speedup=x, timing_repeats=5, dead_units=0, switched=1,
                                    dense_inference_s=1.0, dense_inference_spread_s=0.02,
                                    sparse_inference_s=1.0 / x, sparse_inference_spread_s=0.02, top1=t,
                                    majority_class_top1=10.0, stand_in=False)
                               for label, c, t, x in runs]))


#: the unpruned runs: a mean top-1 of 93 over three seeds
DENSE = pd.DataFrame({"setup": "MNIST / FC", "top1": [92.0, 93.0, 94.0]})
#: three runs near the unpruned top-1 (lost under 5 points), two far below it but above chance, one at chance
RUNS = (("SynFlow (100 rounds)", 0.5, 91.0, 1.4), ("GraSP", 0.5, 90.0, 1.2), ("Mag", 1.0, 88.5, 1.3),
        ("SNIP", 1.5, 60.0, 2.5), ("Rand", 2.0, 16.0, 4.6), ("GraSP", 2.0, 10.0, 7.0))
LAYERS = pd.DataFrame([dict(setup="MNIST / FC", kernel="compact", density=0.01)])


def test_the_speed_ups_near_the_unpruned_top1_are_given_apart_from_those_far_below_it():
    (s,) = sparse_result(_runs(*RUNS), LAYERS, DENSE)
    g = s.count.by_top1
    assert s.count.gains == 5 and g.unpruned == 93.0  # the run at chance is not a gain
    assert (g.near, g.near_speedup, g.far, g.far_speedup) == (3, Span(1.2, 1.4), 2, Span(2.5, 4.6))
    assert g.near_loss == Span(2.0, 4.5) and g.far_loss == Span(33.0, 77.0)
    assert g.fastest_far == ("Rand", 2.0, 16.0)  # the highest speed-up, with the top-1 it came with
    text = sparse_findings(_runs(*RUNS), LAYERS, DENSE)
    assert "**1.20x to 1.40x**" in text and "**1.20x to 4.60x**" not in text  # not one span over both
    assert "2.50x to 4.60x" in text and "33.0 to 77.0" in text and "16.0%" in text
    (key,) = speed_key_words(_runs(*RUNS), DENSE)
    assert "1.20x to 1.40x" in key and "1.20x to 4.60x" not in key and "16.0%" in key


def test_a_run_exactly_large_points_below_is_far_and_each_run_is_judged_by_its_own_top1():
    edge = (("Mag", 1.0, 93.0 - LARGE_POINTS, 1.3),)
    (s,) = sparse_result(_runs(*edge, *RUNS[:1]), LAYERS, DENSE)
    assert (s.count.by_top1.near, s.count.by_top1.far) == (1, 1)
    above = sparse_findings(_runs(("Mag", 1.0, 94.5, 1.3), *RUNS[:1]), LAYERS, DENSE)  # one scores above unpruned
    assert "1.5 points above it to 2.0 below" in above and "losing -" not in above
    (far,) = sparse_result(_runs(*RUNS[3:]), LAYERS, DENSE)  # none near: no speed-up in bold for a working net
    assert far.count.by_top1.near == 0 and far.count.by_top1.near_speedup is None
    assert "**2.50x to 4.60x**" not in sparse_findings(_runs(*RUNS[3:]), LAYERS, DENSE).split("above chance.")[1]


def test_without_the_unpruned_runs_or_on_the_stand_in_nothing_is_split():
    runs = _runs(*RUNS)
    assert sparse_result(runs, LAYERS)[0].count.by_top1 is None
    assert sparse_result(runs.assign(stand_in=True), LAYERS, DENSE)[0].count.by_top1 is None
    assert "**1.20x to 4.60x**" in sparse_findings(runs, LAYERS)  # the earlier words where no reference is known
