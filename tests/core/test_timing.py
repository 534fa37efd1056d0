"""Timings that hold: medians of at least five repeats after a warm-up, with their spread, taken in turn."""

import math

import pandas as pd
import torch

from prunelab.core.evaluation import epoch_timing, time_inference
from prunelab.core.timing import MIN_REPEATS, Timing, interleaved, noise_words, repeat_timed, timings_differ


def test_a_timing_stores_the_median_and_the_spread_of_its_repeats():
    t = Timing.of([0.5, 0.1, 0.3, 0.2, 0.4])
    assert t.median == 0.3 and math.isclose(t.spread, 0.4) and t.repeats == 5
    assert t.summary("inference") == {"inference_s": 0.3, "inference_spread_s": t.spread, "inference_repeats": 5,
                                      "inference_samples_s": [0.5, 0.1, 0.3, 0.2, 0.4]}
    assert Timing.from_summary(t.summary("inference"), "inference") == t  # what a record holds reads back whole
    assert math.isnan(Timing.of([1.0]).spread)  # one value has no spread


def test_one_slow_repeat_no_longer_hides_a_clear_difference():
    fast = Timing.of([1.0, 1.02, 0.99, 1.01, 1.03])
    slow = Timing.of([4.0, 4.1, 3.9, 4.05, 40.0])  # one pass 10x slow: its range (36 s) dwarfs the 3 s gap
    assert timings_differ(fast, slow) and timings_differ(slow, fast)
    assert abs(fast.median - slow.median) < slow.spread  # the old rule (gap beyond the larger range) saw noise
    assert noise_words(fast, slow) == "beyond the noise"


def test_timings_whose_repeats_interleave_are_not_told_apart():
    a = Timing.of([1.0, 1.2, 1.4, 1.6, 1.8])
    b = Timing.of([1.1, 1.3, 1.5, 1.7, 1.9])  # b's median is higher, but the ranks alternate
    assert not timings_differ(a, b)
    # at most 2 of the 25 pairs out of order is p = 0.032; 3 are p = 0.056
    assert timings_differ(Timing.of([1, 2, 3, 4, 7]), Timing.of([5, 6, 8, 9, 10]))  # 2 pairs out of order
    assert not timings_differ(Timing.of([1, 2, 3, 6, 7]), Timing.of([4, 5, 8, 9, 10]))  # 4 out of order
    assert not timings_differ(Timing.of([1.0]), Timing.of([9.0]))  # one repeat each: nothing to test
    old = Timing.from_summary({"t_s": 1.0, "t_spread_s": 0.1, "t_repeats": 5}, "t")  # a record without its samples
    assert old.samples == () and not timings_differ(old, Timing.of([5, 6, 7, 8, 9]))


def test_repeat_timed_warms_up_then_times_at_least_five_calls():
    calls = []
    t = repeat_timed(lambda: calls.append(1))
    assert MIN_REPEATS == 5 and t.repeats == 5 and len(t.samples) == 5 and len(calls) == 6  # one warm-up
    assert t.spread >= 0 and min(t.samples) <= t.median <= max(t.samples)


def test_interleaved_takes_turns_and_rotates_who_goes_first():
    order = []
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    a.register_forward_hook(lambda *_: order.append("A"))
    b.register_forward_hook(lambda *_: order.append("B"))
    x = torch.randn(1, 2)
    timings = interleaved({"A": lambda: a(x), "B": lambda: b(x)}, repeats=5, warmup=1)
    assert order == ["A", "B"] + ["A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]
    assert {k: t.repeats for k, t in timings.items()} == {"A": 5, "B": 5}
    assert all(t.spread >= 0 for t in timings.values())


def test_interleaved_reads_the_clock_it_is_given():
    now = [0.0]  # a clock that moves only when the timed functions say so
    cost = {"A": 1.0, "B": 3.0}

    def advance(name):
        def fn():
            now[0] += cost[name]
            cost[name] += 0.5 if name == "B" else 0.0  # B slows by 0.5 s a call: a spread of its own
        return fn

    timings = interleaved({name: advance(name) for name in cost}, repeats=5, warmup=1, clock=lambda: now[0])
    assert timings["A"].samples == (1.0,) * 5 and timings["A"].spread == 0.0
    assert timings["B"].samples == (3.5, 4.0, 4.5, 5.0, 5.5)  # the warm-up call took 3.0, untimed
    assert timings["B"].median == 4.5 and timings["B"].spread == 2.0


def test_inference_is_timed_in_passes_of_its_own_after_a_warm_up():
    model, batches = torch.nn.Linear(4, 3), [(torch.randn(8, 4), torch.zeros(8, dtype=torch.long))] * 2
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    t = time_inference(model, batches, "cpu")
    assert t.repeats == 5 and len(calls) == 2 * 6 and t.spread >= 0 and t.median > 0


def test_epoch_time_is_the_median_of_the_post_pruning_epochs_after_the_first():
    epochs = pd.DataFrame({"phase": ["pre", "pre", "post", "post", "post", "post"], "epoch": [0, 1, 0, 1, 2, 3],
                           "train_s": [0.0, 99.0, 0.0, 84.0, 20.0, 22.0]})
    t = epoch_timing(epochs)
    assert t.repeats == 2 and t.median == 21.0 and t.spread == 2.0  # 84 s (the first, warm-up) left out
    one = epoch_timing(epochs.iloc[:4])
    assert one.repeats == 1 and one.median == 84.0 and math.isnan(one.spread)


def test_too_few_repeats_are_never_told_apart_and_say_so():
    from prunelab.core.timing import TOO_FEW, can_differ

    assert not can_differ(3, 3) and not can_differ(2, 5) and not can_differ(0, 9)  # best p 0.10, 0.095: never < 0.05
    assert can_differ(4, 4) and can_differ(5, 5) and can_differ(3, 5)  # 0.029, 0.008, 0.036
    apart = Timing.of([1.0, 1.1, 1.2]), Timing.of([5.0, 5.1, 5.2])  # wholly apart, yet three each cannot pass
    assert not timings_differ(*apart) and noise_words(*apart) == TOO_FEW
    assert timings_differ(Timing.of([1.0, 1.1, 1.2, 1.3]), Timing.of([5.0, 5.1, 5.2, 5.3]))


def test_a_timing_reads_back_its_passes_from_any_sequence_and_none_from_a_missing_cell():
    import numpy as np
    import pytest

    assert Timing.from_summary({"t_s": 1.0, "t_samples_s": np.array([1.0, 2.0])}, "t").samples == (1.0, 2.0)
    row = pd.Series({"t_s": 1.0, "t_spread_s": 0.1, "t_samples_s": float("nan")})  # an old record in a new table
    assert Timing.from_summary(row, "t").samples == ()
    with pytest.raises(TypeError):
        Timing.from_summary({"t_s": 1.0, "t_samples_s": "[1.0, 2.0]"}, "t")  # a list written out as text
