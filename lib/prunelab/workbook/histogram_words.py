"""What Figures 3 and 4 (the kept weights' histograms, Task 3) show, in one sentence computed from the weights: how
many kept weights lie near zero, against weights of one bell curve with nothing cut around zero. A score with the
weight's magnitude as a factor prunes small weights first and leaves a gap there; random pruning leaves none. The
rule between a clear gap, a partial one and none is :data:`GAP_WORDS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..core.choices import DATA_FREE_PRUNERS
from .numbers import listed
from .style import pruner_name

#: a kept weight lies near zero below this share of its layer's median kept magnitude (each layer by its own scale)
NEAR_ZERO = 0.1
#: the share of weights near zero, so measured, of one normal bell curve with no gap: about 5.4%
BELL_SHARE = 2 * NormalDist().cdf(NEAR_ZERO * NormalDist().inv_cdf(0.75)) - 1
#: a layer with fewer kept weights than this is not named as the one with the fewest or most near zero: too few to tell
MIN_LAYER_WEIGHTS = 100
#: at or above this share of :data:`BELL_SHARE` near zero, a pruner leaves no gap: within a tenth of an uncut bell
#: curve (which tens of thousands of weights drawn from one match to a few percent); below it, a gap
NO_GAP_FROM = 0.9
#: a partial gap also needs a share this many binomial standard deviations below :data:`BELL_SHARE`, for the count
#: of weights it rests on: a few thousand weights drawn from one bell curve stray by a tenth of it
NOISE_SDS = 3
#: (below this share of :data:`BELL_SHARE`, the words): a clear gap, a partial one; at or above the last, none
GAP_WORDS = ((0.1, "a clear gap around zero"), (NO_GAP_FROM, "a partial gap around zero"))
NO_GAP = "no gap around zero"


@dataclass(frozen=True)
class NearZero:
    """One pruner's kept weights near zero (:data:`NEAR_ZERO`): their ``share`` of all its kept weights, and the
    layers (of :data:`MIN_LAYER_WEIGHTS` or more) with the lowest and the highest share, as (layer, share); None
    where no layer has that many."""

    label: str
    share: float
    lowest: tuple[str, float] | None
    highest: tuple[str, float] | None
    weights: int

    @property
    def gap(self) -> str:
        """The share in words against :data:`BELL_SHARE` (:data:`GAP_WORDS`): under a tenth of it a clear gap,
        under :data:`NO_GAP_FROM` of it and :data:`NOISE_SDS` binomial standard deviations below it (for
        ``weights`` draws) a partial one, else none."""
        (clear, clear_words), (_, partial_words) = GAP_WORDS
        if self.share < clear * BELL_SHARE:
            return clear_words
        noise = NOISE_SDS * math.sqrt(BELL_SHARE * (1 - BELL_SHARE) / self.weights)
        return partial_words if self.share < min(NO_GAP_FROM * BELL_SHARE, BELL_SHARE - noise) else NO_GAP


def near_zero(label: str, weights: dict[str, np.ndarray]) -> NearZero | None:
    """``label``'s :class:`NearZero` from its kept weights by layer name (:func:`.layer_findings.record_weights`); None
    where it kept no weight."""
    per_layer = {}
    near, total = 0, 0
    for layer, values in weights.items():
        magnitude = np.abs(np.asarray(values, dtype=float))
        if not magnitude.size:
            continue
        count = int((magnitude < NEAR_ZERO * np.median(magnitude)).sum())
        near, total = near + count, total + magnitude.size
        if magnitude.size >= MIN_LAYER_WEIGHTS:
            per_layer[layer] = count / magnitude.size
    if not total:
        return None
    ranked = sorted(per_layer.items(), key=lambda item: item[1])
    return NearZero(label, near / total, ranked[0] if ranked else None, ranked[-1] if ranked else None, total)


def _percent(share: float) -> str:
    return f"{share:.1%}" if share >= 0.001 or share == 0 else f"{share:.2%}"


def gap_groups(found: list[NearZero]) -> dict[str, list[str]]:
    """The pruners of ``found`` by the gap each leaves (:attr:`NearZero.gap`), clear, partial, none in that order,
    each group in ``found``'s order; a gap no pruner leaves is left out."""
    groups = {words: [n.label for n in found if n.gap == words] for words in [w for _, w in GAP_WORDS] + [NO_GAP]}
    return {words: labels for words, labels in groups.items() if labels}


def weight_gap_words(weights_by_label: dict[str, dict[str, np.ndarray]], stand_in: bool = False) -> str:
    """One sentence for a figure of :func:`.figures.plot_weight_histograms` (the same ``weights_by_label``): what
    share of each pruner's kept weights lies near zero, against :data:`BELL_SHARE`, and where to look: for one
    pruner, its layers with the fewest and the most near zero; for several, whose gap is widest and, of the
    others, which leave a clear gap, a partial one or none (:func:`gap_groups`). On the synthetic stand-in
    (``stand_in``), which of them chose by reading the generated images (:func:`_read_the_data`). Empty where no
    pruner kept a weight."""
    found = [n for label, weights in weights_by_label.items() if (n := near_zero(label, weights)) is not None]
    if not found:
        return ""
    return _gap_sentence(found) + (_read_the_data([n.label for n in found]) if stand_in else "")


def _read_the_data(labels: list[str]) -> str:
    """Which of ``labels`` read the data to choose their weights (all but
    :data:`~prunelab.core.choices.DATA_FREE_PRUNERS`), said as pipeline checks on the synthetic stand-in."""
    free = [pruner_name(p) for p in DATA_FREE_PRUNERS]
    reading = [label for label in labels if not any(label == n or label.startswith(n + " (") for n in free)]
    if not reading:
        return ""
    one = len(reading) == 1
    return (f" On the synthetic stand-in, {listed(reading)} chose {'its' if one else 'their'} weights by reading "
            f"generated images, so {'its share is' if one else 'their shares are'} a pipeline check.")


def _gap_sentence(found: list[NearZero]) -> str:
    """The sentence of :func:`weight_gap_words` for the pruners ``found`` (at least one)."""
    near = (f"near zero (under {NEAR_ZERO:.0%} of their layer's median magnitude; of weights from one bell curve "
            f"with none cut, {_percent(BELL_SHARE)})")
    if len(found) == 1:
        (one,) = found
        where = ""
        if one.lowest is not None and one.highest is not None and one.lowest[1] != one.highest[1]:
            where = (f"; fewest near zero in {one.lowest[0]} ({_percent(one.lowest[1])}), most in {one.highest[0]} "
                     f"({_percent(one.highest[1])})")
        return f"**Reading the figure:** {_percent(one.share)} of {one.label}'s kept weights lie {near}: " \
            f"{one.gap}{where}."
    shares = ", ".join(f"{n.label} {_percent(n.share)}" for n in found)
    gapped = [n for n in found if n.gap != NO_GAP]
    if not gapped:
        return f"**Reading the figure:** the share of kept weights {near}: {shares}. None leaves a gap around zero."
    fewest = min(n.share for n in gapped)
    widest = [n.label for n in gapped if n.share == fewest]  # a tie names every pruner at the least share
    others = [(words, [label for label in labels if label not in widest])
              for words, labels in gap_groups(found).items()]
    rest = "".join(f"; {listed(labels)} {'leaves' if len(labels) == 1 else 'leave'} {words}"
                   for words, labels in others if labels)
    return (f"**Reading the figure:** the share of kept weights {near}: {shares}. The widest gap around zero: "
            f"{listed(widest)}{rest}.")
