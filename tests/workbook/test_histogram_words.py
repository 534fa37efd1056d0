"""Figures 3 and 4's reading sentence (histogram_words): the share of kept weights near zero, from the weights."""

import numpy as np
import pytest

from prunelab.workbook import weight_gap_words
from prunelab.workbook.histogram_words import (
    BELL_SHARE,
    GAP_WORDS,
    MIN_LAYER_WEIGHTS,
    NO_GAP,
    NO_GAP_FROM,
    NearZero,
    gap_groups,
    near_zero,
)

LAYERS = ("conv", "blocks.0.conv1", "fc")  # by name, as record_weights gives them


def _bell(seed: int = 0, size: int = 20_000) -> dict[str, np.ndarray]:
    """Weights of one bell curve per layer, each layer at its own scale: kept at random, nothing cut near zero."""
    rng = np.random.default_rng(seed)
    return {layer: rng.normal(0, 0.05 * (i + 1), size) for i, layer in enumerate(LAYERS)}


def _cut(weights: dict[str, np.ndarray], below_sd: float) -> dict[str, np.ndarray]:
    """``weights`` with every one under ``below_sd`` of its layer's sd removed: a magnitude score's gap."""
    return {layer: w[np.abs(w) >= below_sd * w.std()] for layer, w in weights.items()}


def test_weights_of_one_bell_curve_put_its_share_near_zero_and_a_magnitude_cut_puts_none():
    assert BELL_SHARE == pytest.approx(0.0538, abs=5e-4)  # |z| under a tenth of its median, 0.674
    bell = near_zero("Rand", _bell())
    assert bell.share == pytest.approx(BELL_SHARE, abs=0.005)
    assert near_zero("Mag", _cut(_bell(), 0.5)).share == 0.0
    assert near_zero("none", {layer: np.zeros(0) for layer in LAYERS}) is None


def test_the_sentence_gives_each_pruners_share_and_names_the_widest_gap():
    weights = {"Rand": _bell(1), "Mag": _cut(_bell(2), 0.5), "SNIP": _cut(_bell(3), 0.05)}
    text = weight_gap_words(weights)
    shares = {label: near_zero(label, w).share for label, w in weights.items()}
    assert shares["Mag"] < shares["SNIP"] < shares["Rand"]
    for label, share in shares.items():
        assert f"{label} {share:.1%}" in text
    widest = text.split("widest", 1)[1].split(";")[0]
    assert "Mag" in widest and "SNIP" not in widest  # the widest gap is Mag's
    assert weight_gap_words({"Rand": {layer: np.zeros(0) for layer in LAYERS}}) == ""


def test_the_widest_gap_is_named_only_where_there_is_one_and_a_tie_names_both():
    no_gap = weight_gap_words({"Rand": _bell(1), "GraSP": _bell(2)})
    assert "Rand" in no_gap and "widest" not in no_gap  # no pruner cut near zero: no widest gap to name
    tie = weight_gap_words({"Mag": _cut(_bell(2), 0.5), "SynFlow": _cut(_bell(3), 0.5), "Rand": _bell(1)})
    widest = tie.split("widest", 1)[1].split(";")[0]
    assert "Mag" in widest and "SynFlow" in widest and "Rand" not in widest  # both at 0.0%, Rand leaves none


def test_one_pruners_sentence_names_its_layers_with_the_fewest_and_most_near_zero():
    weights = _bell(4)
    weights["blocks.0.conv1"] = _cut({"x": weights["blocks.0.conv1"]}, 0.05)["x"]  # a partial gap
    weights["tiny"] = np.full(MIN_LAYER_WEIGHTS - 1, 1e-6)  # all near zero, but too few to name
    weights["tiny"][0] = 1.0
    found = near_zero("SNIP", weights)
    assert found.lowest[0] == "blocks.0.conv1" and found.highest[0] in ("conv", "fc")
    text = weight_gap_words({"SNIP": weights})
    assert "blocks.0.conv1" in text and f"{found.lowest[1]:.1%}" in text and "tiny" not in text


def test_a_share_a_little_under_the_bell_curves_is_a_partial_gap_not_none():
    """GraSP's 4.1% against an uncut bell curve's 5.4% keeps fewer weights near zero than any uncut curve of this
    many weights would: a partial gap, told apart from Rand's none by :data:`NO_GAP_FROM`."""
    found = [near_zero("Rand", _bell(1)), near_zero("Mag", _cut(_bell(2), 0.5)),
             near_zero("GraSP", _cut(_bell(5), 0.015))]
    grasp = found[2]
    assert 0.5 * BELL_SHARE < grasp.share < NO_GAP_FROM * BELL_SHARE  # about three quarters of the bell's share
    assert found[0].gap == NO_GAP and grasp.gap not in (NO_GAP, GAP_WORDS[0][1])  # partial, not clear
    groups = gap_groups(found)
    assert groups[NO_GAP] == ["Rand"] and groups[grasp.gap] == ["GraSP"] and groups[found[1].gap] == ["Mag"]
    text = weight_gap_words({n.label: w for n, w in zip(found, (_bell(1), _cut(_bell(2), 0.5),
                                                               _cut(_bell(5), 0.015)))})
    none_said = text.split(NO_GAP)[0].rsplit(";", 1)[1]
    assert "Rand" in none_said and "GraSP" not in none_said


def test_a_share_under_the_bell_curves_is_a_gap_only_beyond_the_noise_of_its_count():
    share = 0.8 * BELL_SHARE  # under NO_GAP_FROM of the bell's share
    assert NearZero("many", share, None, None, 100_000).gap == GAP_WORDS[1][1]  # a partial gap
    assert NearZero("few", share, None, None, 300).gap == NO_GAP  # 300 draws of one bell curve stray this far
    assert NearZero("few, cut", 0.05 * BELL_SHARE, None, None, 300).gap == GAP_WORDS[0][1]  # a clear gap is clear



def test_on_the_stand_in_the_pruners_that_read_the_data_are_named_as_pipeline_checks():
    """Rand draws its mask and SynFlow scores an all-ones input, so on generated images only the others' shares
    follow the images; real data adds nothing to the sentence."""
    weights = {"Rand": _bell(1), "SNIP": _cut(_bell(2), 0.5), "SynFlow (100 rounds)": _cut(_bell(3), 0.5)}
    real = weight_gap_words(weights)
    stand_in = weight_gap_words(weights, stand_in=True)
    assert stand_in.startswith(real) and len(stand_in) > len(real)
    added = stand_in[len(real):]
    assert "SNIP" in added and "Rand" not in added and "SynFlow" not in added
    free = {"Rand": _bell(1), "SynFlow (1 round)": _cut(_bell(3), 0.5)}
    assert weight_gap_words(free, stand_in=True) == weight_gap_words(free)  # neither reads the data
