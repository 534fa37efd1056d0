"""The sparse-kernel speed-ups read with the accuracy they came with: of the runs that count as faster
(:func:`.sparse_tables.sparse_gains`, above chance), those whose own top-1 stayed near the unpruned network's,
apart from those far below it. A speed-up quoted over both reads as what pruning buys a working network, when its
highest values come from networks that lost most of their accuracy. Each run is judged by its own top-1: the
sparse table's row is the run that was timed (the first seed), not a mean over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .numbers import LARGE_POINTS, Span, compression_text, counted, ratio_text
from .sparse_tables import sparse_gains


def _span_or_none(values: pd.Series) -> Span | None:
    return Span.of(values) if len(values) else None


@dataclass(frozen=True)
class GainsByTop1:
    """The runs that count as faster split by their own top-1 against ``unpruned``, the unpruned network's mean
    top-1 over its seeds: the ``near`` runs lost less than :data:`.numbers.LARGE_POINTS` points, the ``far`` ones
    that much or more; each with their speed-ups and the points they lost (None where there are none).
    ``fastest_far``: the fastest far run's label, compression and top-1, so that the highest speed-up is quoted
    with what it scores."""

    unpruned: float
    near: int
    near_speedup: Span | None
    near_loss: Span | None
    far: int
    far_speedup: Span | None
    far_loss: Span | None
    fastest_far: tuple[str, float, float] | None = None

    @property
    def rule(self) -> str:
        """"within 5 points of the unpruned network's mean top-1 (93.2)": where a run counts as near."""
        return f"within {LARGE_POINTS:g} points of the unpruned network's mean top-1 ({self.unpruned:.1f})"

    def near_text(self, how: str = "") -> str:
        """"**1.15x to 1.48x** as fast, losing 1.9 to 4.1 points", with ``how`` after "as fast"."""
        return f"**{self.near_speedup.words(ratio_text)}** as fast{how}, {_change(self.near_loss)}"

    def far_text(self) -> str:
        """"ran 1.33x to 4.65x as fast but lost 5.8 to 76.6 points, the fastest (4.65x: Rand at compression 2)
        scoring 16.6% top-1"."""
        label, compression, top1 = self.fastest_far
        fastest = "it" if self.far == 1 else f"the fastest ({ratio_text(self.far_speedup.high)}: {label} at " \
                                             f"compression {compression_text(compression)})"
        return (f"ran {self.far_speedup.words(ratio_text)} as fast but lost {self.far_loss.words(_points)} points, "
                f"{fastest} scoring {top1:.1f}% top-1")


def _points(value: float) -> str:
    return f"{value:.1f}"


def _change(loss: Span) -> str:
    """"losing 1.9 to 4.1 points" below the unpruned top-1; a near run can also score above it: "gaining ...", or
    "from 0.4 points above it to 2.1 below"."""
    if loss.low >= 0:
        return f"losing {loss.words(_points)} points"
    if loss.high <= 0:
        return f"gaining {Span(-loss.high, -loss.low).words(_points)} points"
    return f"from {_points(-loss.low)} points above it to {_points(loss.high)} below"


def gains_by_top1(rows: pd.DataFrame, unpruned: float) -> GainsByTop1:
    """The :class:`GainsByTop1` of one set-up's rows of the sparse table against the unpruned mean top-1."""
    working = rows[sparse_gains(rows)]
    loss = unpruned - working["top1"]
    near, far = working[loss < LARGE_POINTS], working[loss >= LARGE_POINTS]
    fastest = far.loc[far["speedup"].idxmax()] if len(far) else None
    return GainsByTop1(
        unpruned, len(near), _span_or_none(near["speedup"]), _span_or_none(loss[near.index]), len(far),
        _span_or_none(far["speedup"]), _span_or_none(loss[far.index]),
        None if fastest is None else (str(fastest["label"]), float(fastest["compression"]), float(fastest["top1"])))


def unpruned_top1(dense: pd.DataFrame | None) -> dict[str, float]:
    """Each set-up's unpruned mean top-1 over its seeds (``dense``: the records table of the unpruned runs; none
    given, none known)."""
    return {} if dense is None else {str(k): float(v) for k, v in dense.groupby("setup")["top1"].mean().items()}


def near_words(g: GainsByTop1) -> str:
    """The findings' sentence on the runs that ran faster above chance (:class:`GainsByTop1`): how fast those near
    the unpruned network's top-1 ran (in bold), then those far below it."""
    gains = g.near + g.far
    judged = "Judged by each run's own top-1 (the timed seed's)"
    if not g.far:
        them = "that run" if gains == 1 else f"all {gains} of them"
        return f"{judged}, {them} stayed {g.rule}: {g.near_text()}."
    if not g.near:
        them = "that run did not stay" if gains == 1 else f"none of those {gains} stayed"
        return f"{judged}, {them} {g.rule}: {'it' if gains == 1 else 'they'} {g.far_text()}."
    return (f"{judged}, {g.near} of those {gains} stayed {g.rule}: {g.near_text()}; the other "
            f"{counted(g.far, 'run') if g.far > 1 else 'one'} {g.far_text()}.")


#: what the key result says of the runs it counts as faster: their two times differ beyond the timing's noise
NOISE = " beyond the passes' noise"


def near_key_words(g: GainsByTop1, tested: int) -> str:
    """The key result's clause on the same runs: "of its 33 runs compared, 3 whose own top-1 stayed within 5 points
    of ... ran **...** as fast beyond the passes' noise, losing ...; 10 more, above chance, ran ... but lost ..."."""
    head, whose = f"of its {counted(tested, 'run')} compared", f"whose own top-1 (the timed seed's) stayed {g.rule}"
    if not g.near:
        return (f"{head}, none {whose} ran faster beyond the passes' noise; {counted(g.far, 'run')} above chance "
                f"{g.far_text()}")
    near = f"{head}, {g.near} {whose} ran {g.near_text(NOISE)}"
    return f"{near}; {g.far} more, above chance, {g.far_text()}" if g.far else near

