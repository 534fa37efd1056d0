"""What a displayed table says once, in its caption, rather than in every cell: the seed count its accuracy cells
share, the table's or a set-up block's (:func:`shared_seeds`), and a column that holds one value in every row
(:func:`said_once`). Both are decided when the table is shown, from the frame as it is (:func:`noted`, which
:func:`.tables.styled` and :func:`.measurement_tables.captioned` call): a count or a value that repeats in every cell
only wraps the cells onto a second line, and one that differs stays where it is."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

#: said in the caption of a table whose ratios stand beside the rounded times they are the ratio of
UNROUNDED_RATIOS = "ratios are of the unrounded medians"
#: the seed count an accuracy cell ends with (:func:`.numbers.accuracy_cell`: "97.1 ± 0.3 (n=3)")
_SEEDS = re.compile(r" \(n=(\d+)\)$")
#: the key of ``frame.attrs`` naming the columns :func:`said_once` may move to the caption
_ONCE = "said once"


def _count(cell) -> int | None:
    found = _SEEDS.search(cell) if isinstance(cell, str) else None
    return int(found.group(1)) if found else None


#: the index level that names a table's set-up blocks (:func:`.tables.setup_blocks`, Table A's rows)
SETUP_LEVEL = "Data / Arch"


def _block_seeds(frame: pd.DataFrame, usual: int) -> dict[str, int]:
    """The set-up blocks of ``frame`` (rows under one :data:`SETUP_LEVEL` name) whose accuracy cells all share one seed
    count other than ``usual``, with that count: a block said once rather than in every cell."""
    if SETUP_LEVEL not in frame.index.names:
        return {}
    names = frame.index.get_level_values(SETUP_LEVEL)
    out = {}
    for name in dict.fromkeys(names):
        counts = {n for n in map(_count, frame[names == name].to_numpy().ravel()) if n is not None}
        if len(counts) == 1 and (n := counts.pop()) != usual:
            out[str(name)] = n
    return out


def _seeds_sentence(usual: int, own: bool, blocks: dict[str, int]) -> str:
    """"Every mean ± sd is over 3 seeds.", or with set-up ``blocks`` of their own count, "CIFAR-10 / ResNet20's
    accuracies are one seed's value each (no sd); the other set-ups' are means ± sd over 3 seeds.": the ``usual``
    count, each block's named by its set-up (the name before the data in brackets, unless two blocks share it),
    and whether some cells give their own n (``own``); one seed has no sd to speak of."""
    if not blocks:
        return (f"Every mean ± sd is over {usual} seeds" if usual != 1 else "Each accuracy is one seed's value (no sd)"
                ) + (" unless it gives its own n" if own else "") + "."
    short = [name.split(" (")[0] for name in blocks]
    names = short if len(set(short)) == len(short) else list(blocks)
    said = [f"{name}'s accuracies are {_over(n)}" for name, n in zip(names, blocks.values())]
    return "; ".join(said) + f"; the other set-ups' are {_over(usual)}{' unless a cell gives its own n' * own}."


def _over(seeds: int) -> str:
    """What an accuracy cell over ``seeds`` seeds is: "means ± sd over 3 seeds", "one seed's value each (no sd)"."""
    return f"means ± sd over {seeds} seeds" if seeds != 1 else "one seed's value each (no sd)"


def shared_seeds(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``frame`` with the seed count dropped from each accuracy cell that has the table's usual one (the most
    common; the larger of a tie), and from each cell of a set-up block whose cells all share another
    (:func:`_block_seeds`), and a sentence that gives them (:func:`_seeds_sentence`): "Every mean ± sd is over 3
    seeds.", "... unless it gives its own n." where some cells have another count and keep their own "(n=2)".
    ``frame`` and "" where no cell has a count."""
    counts = Counter(n for n in map(_count, frame.to_numpy().ravel()) if n is not None)
    if not counts:
        return frame, ""
    usual = max(counts, key=lambda n: (counts[n], n))
    blocks = _block_seeds(frame, usual)
    cell_counts = frame.map(_count)
    in_block = frame.index.get_level_values(SETUP_LEVEL).isin(list(blocks)) if blocks else np.zeros(len(frame), bool)
    drop = cell_counts.eq(usual) | cell_counts.notna().apply(lambda column: column & in_block)
    shown = frame.mask(drop, frame.map(lambda cell: _SEEDS.sub("", cell) if isinstance(cell, str) else cell))
    shown.attrs = dict(frame.attrs)  # its say_once columns, for said_once after it
    return shown, _seeds_sentence(usual, bool((cell_counts.notna() & ~drop).any(axis=None)), blocks)


def say_once(frame: pd.DataFrame, columns: Iterable) -> pd.DataFrame:
    """A copy of ``frame``, marked so that :func:`said_once` moves each of ``columns`` to the caption where, as
    shown, it holds one value in every row: columns whose words would otherwise repeat down the table."""
    marked = frame.copy(deep=False)
    marked.attrs[_ONCE] = list(columns)
    return marked


def _heading(column) -> str:
    """A column's heading in a sentence: "time difference (int8 over fp32 eager)" for a heading under another."""
    if not isinstance(column, tuple):
        return str(column)
    parts = [str(part) for part in column if str(part)]
    return f"{parts[-1]} ({', '.join(parts[:-1])})" if len(parts) > 1 else "".join(parts)


def said_once(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``frame`` without those of its :func:`say_once` columns that hold one value in every row, and a sentence
    giving each such column's heading and value ("The same in every row: int8 path, PT2E; passes, 5."), a form that
    reads for any heading and value, "pruned weights zero in int8, yes" as well as "type, Conv2d"; ``frame`` and
    "" where none does, or where the table has fewer than two rows (there every column is one value). A column
    empty in every row stays: its blank cells say so, where "nan" in the caption would not."""
    named = [column for column in frame.attrs.get(_ONCE, ()) if column in frame.columns]
    if len(frame) < 2:
        return frame, ""
    constant = [column for column in named if frame[column].nunique(dropna=False) == 1 and frame[column].notna().all()]
    if not constant:
        return frame, ""
    pairs = "; ".join(f"{_heading(column)}, {frame[column].iloc[0]}" for column in constant)
    return frame.drop(columns=constant), f"The same in every row: {pairs}."


def with_sentence(caption: str, sentence: str) -> str:
    """``caption`` followed by ``sentence``, a full stop between them where the caption has none."""
    if not sentence:
        return caption
    caption = caption.rstrip()
    return f"{caption} {sentence}" if caption.endswith(".") else f"{caption}. {sentence}"


def noted(frame: pd.DataFrame, caption: str) -> tuple[pd.DataFrame, str]:
    """``frame`` as shown and its caption: the shared seed count (:func:`shared_seeds`) and the columns of one value
    (:func:`said_once`) taken out of the cells and said once, at the caption's end."""
    frame, seeds = shared_seeds(frame)
    frame, once = said_once(frame)
    return frame, with_sentence(with_sentence(caption, seeds), once)
