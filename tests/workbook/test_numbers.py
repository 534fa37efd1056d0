"""How numbers are shown and when two may be called different."""

import math
import re
from dataclasses import replace

import pytest

from prunelab.workbook.numbers import (
    accuracy_cell,
    alike,
    compare_means,
    compression_text,
    holm,
    mean_sd,
    shape_text,
    share_of,
    significant,
    time_cell,
)


@pytest.mark.parametrize("value,text", [(1109.499023, "1,110"), (99.96, "100"), (29.3, "29.3"),
                                        (0.000612345, "0.000612"), (0.6123, "0.612"), (0, "0"), (float("nan"), "–")])
def test_three_significant_digits(value, text):
    assert significant(value) == text


@pytest.mark.parametrize("part,wholes,texts", [
    (67.71, (100.14, 105.96), ("67.7", "100.1", "106.0")), (0.61234, (1.5,), ("0.612", "1.500")),
    (1109.5, (2504.4,), ("1,110", "2,500")), (12345, (25004,), ("12,300", "25,000")),
    (0, (0.61,), ("0", "0.610")), (float("nan"), (5.0,), ("–", "5.00")), (1.0, (None,), ("1.00", "–"))])
def test_a_part_and_its_wholes_read_to_the_same_places(part, wholes, texts):
    assert alike(part, *wholes) == texts


def test_cells_for_people():
    assert compression_text(0.25) == "0.25" and compression_text(1.0) == "1"
    assert accuracy_cell([97.1, 97.4, 96.9]) == "97.1 ± 0.3 (n=3)"
    assert accuracy_cell([11.35]) == "11.3 (n=1)"
    assert time_cell(0.6123, 0.016) == "0.612 ± 0.0080 s"
    mean, sd, n = mean_sd([1.0, float("nan"), 3.0])
    assert (mean, n) == (2.0, 2) and math.isclose(sd, math.sqrt(2))


# a hand-made table: (group a, group b, difference, testable, significant)
VERDICTS = [
    ([97.0, 97.2, 97.1], [96.0, 96.1, 95.9], 1.1, True, True),
    ([96.0, 96.1, 95.9], [97.0, 97.2, 97.1], -1.1, True, True),
    ([97.0, 96.2, 97.1], [96.8, 96.1, 97.0], 0.1, True, False),
    ([97.0], [96.0], 1.0, False, False),
    ([90.0, 90.0], [90.0, 90.0], 0.0, True, False),
    ([91.0, 91.0], [90.0, 90.0], 1.0, True, True),
]


@pytest.mark.parametrize("a,b,difference,testable,significant", VERDICTS)
def test_a_difference_is_claimed_only_where_welch_finds_it(a, b, difference, testable, significant):
    comparison = compare_means(a, b)
    assert math.isclose(comparison.difference, difference, abs_tol=0.05)
    assert (comparison.testable, comparison.significant) == (testable, significant)


def test_welch_p_value_matches_scipy():
    from scipy import stats

    a, b = [97.0, 96.2, 97.1], [96.8, 96.1, 97.0]
    assert math.isclose(compare_means(a, b).p_value, stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_holm_adjusts_a_family_step_down():
    # p-values 0.01, 0.04, 0.03 and one untestable: m = 3, so 0.01 * 3, then max(0.03, 0.03 * 2), then 0.04 * 1
    made = [compare_means([2.0, 2.1], [1.0, 1.1]) for _ in range(4)]
    family = [replace(made[0], p_value=0.01), replace(made[1], p_value=0.04), replace(made[2], p_value=0.03),
              replace(made[3], p_value=math.nan)]
    adjusted = holm(family)
    assert [round(c.p_value, 9) for c in adjusted[:3]] == [0.03, 0.06, 0.06]
    assert math.isnan(adjusted[3].p_value) and adjusted[3].family == 1
    assert [c.family for c in adjusted[:3]] == [3, 3, 3]
    assert [c.significant for c in adjusted[:3]] == [True, False, False]  # 0.04 and 0.03 alone would pass
    assert holm([family[1]])[0].p_value == 0.04  # a family of one is the test itself


def test_holm_never_exceeds_one():
    made = compare_means([2.0, 2.1], [1.0, 1.1])
    assert [c.p_value for c in holm([replace(made, p_value=0.6), replace(made, p_value=0.7)])] == [1.0, 1.0]


def test_counts_carry_the_noun_in_the_number_they_need():
    from prunelab.workbook.numbers import counted

    assert counted(1, "epoch") == "1 epoch" and counted([30], "epoch") == "30 epochs"
    assert counted([30, 1, 30], "epoch") == "1, 30 epochs" and counted([1], "batch", "batches") == "1 batch"


@pytest.mark.parametrize("value,text", [(1.7731e-6, "1.77×10⁻⁶"), (3.128e22, "3.13×10²²"), (-1.2e-7, "-1.20×10⁻⁷"),
                                        (0.04712, "0.0471"), (2140.4, "2,140"), (0.001, "0.00100"),
                                        (9999.6, "1.00×10⁴"), (0.00099996, "0.00100"), (0, "0"), (math.nan, "–")])
def test_a_number_of_any_size_to_three_significant_digits_with_a_power_of_ten_where_long(value, text):
    from prunelab.workbook import numbers

    assert numbers.scaled(value) == text  # plain digits from 0.001 up to below 10,000, as rounded


@pytest.mark.parametrize("shape,text", [("(16, 16, 3, 3)", "16×16×3×3"), ((10, 64), "10×64"), ("(64,)", "64"),
                                        ([32, 16, 1, 1], "32×16×1×1"), ("()", "–")])
def test_a_layer_shape_reads_as_its_sizes_times_each_other(shape, text):
    assert shape_text(shape) == text  # from a tuple or the text a layer table stores


def test_a_share_of_runs_gives_its_numbers_once_and_never_one_of_one():
    """"2 of 5 runs", but a whole share by its count alone ("all 5 runs") and a single run in words: the numbers a
    share gives are the part and the whole, each once, and the noun agrees with the whole."""
    for whole in range(1, 6):
        for part in range(whole + 1):
            text = share_of(part, whole, "run")
            numbers = [int(n) for n in re.findall(r"\d+", text)]
            expected = [] if whole == 1 or part == whole == 2 else [whole] if part in (0, whole) else [part, whole]
            assert numbers == expected, text
            assert text.endswith("runs") == (whole > 1), text
    assert re.search(r"\d", share_of(0, 0, "run")) is None  # nothing to count: no "all 0 runs"
    with pytest.raises(ValueError):
        share_of(3, 2, "run")
