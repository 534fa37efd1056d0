"""How numbers are shown and when two may be called different."""

import math

import pytest

from prunelab.workbook.numbers import (
    accuracy_cell,
    compare_means,
    comparison_words,
    compression_text,
    mean_sd,
    significant,
    time_cell,
    times_differ,
)


@pytest.mark.parametrize("value,text", [(1109.499023, "1,110"), (99.96, "100"), (29.3, "29.3"),
                                        (0.000612345, "0.000612"), (0.6123, "0.612"), (0, "0"), (float("nan"), "–")])
def test_three_significant_digits(value, text):
    assert significant(value) == text


def test_cells_for_people():
    assert compression_text(0.25) == "0.25" and compression_text(1.0) == "1"
    assert accuracy_cell([97.1, 97.4, 96.9]) == "97.1 ± 0.3 (n=3)"
    assert accuracy_cell([11.35]) == "11.3 (n=1)"
    assert time_cell(0.6123, 0.016) == "0.612 ± 0.0080 s"
    mean, sd, n = mean_sd([1.0, float("nan"), 3.0])
    assert (mean, n) == (2.0, 2) and math.isclose(sd, math.sqrt(2))


# a hand-made table: (group a, group b, expected words)
WORDING = [
    ([97.0, 97.2, 97.1], [96.0, 96.1, 95.9], "Mag is better than Rand by 1.1 points (Welch's t-test p < 0.001"),
    ([96.0, 96.1, 95.9], [97.0, 97.2, 97.1], "Rand is better than Mag by 1.1 points"),
    ([97.0, 96.2, 97.1], [96.8, 96.1, 97.0], "Mag and Rand cannot be told apart at this n (0.1 points apart, "
                                             "Welch's t-test p = 0.75"),
    ([97.0], [96.0], "Mag and Rand cannot be told apart at this n (n=1 and n=1: a test needs at least two seeds"),
    ([90.0, 90.0], [90.0, 90.0], "cannot be told apart"),
    ([91.0, 91.0], [90.0, 90.0], "Mag is better than Rand by 1.0 points"),
]


@pytest.mark.parametrize("a,b,words", WORDING)
def test_significance_wording_follows_the_table(a, b, words):
    assert words in comparison_words("Mag", "Rand", compare_means(a, b))


def test_a_timing_difference_is_real_only_beyond_the_spread():
    assert not times_differ(0.60, 0.05, 0.63, 0.02)
    assert times_differ(0.60, 0.01, 0.63, 0.02)


def test_counts_carry_the_noun_in_the_number_they_need():
    from prunelab.workbook.numbers import counted

    assert counted(1, "epoch") == "1 epoch" and counted([30], "epoch") == "30 epochs"
    assert counted([30, 1, 30], "epoch") == "1, 30 epochs" and counted([1], "batch", "batches") == "1 batch"
