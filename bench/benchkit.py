"""What every bench script shares: a command line whose mistakes are one line and exit code 2, with nothing
measured or written, and the words that say whether a ratio is beyond the timings' noise.

The scripts import it as a sibling (``python bench/<script>.py`` puts this folder first on the path).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from prunelab.core.timing import Timing, noise_words
from prunelab.errors import UserError
from prunelab.runs.cli import OneLineParser


def parser(doc: str) -> argparse.ArgumentParser:
    """A bench's parser, described by the first paragraph of its docstring."""
    return OneLineParser(prog=Path(sys.argv[0]).name, description=" ".join(doc.split("\n\n")[0].split()))


def number(kind: Callable[[str], float], least: float) -> Callable[[str], float]:
    """An argparse type: a finite number of ``kind`` (int or float) of at least ``least``."""
    def checked(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
        if not value >= least or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {text}")
        return value
    return checked


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``least``."""
    return number(int, least)


def numbers(kind: Callable[[str], float], least: float) -> Callable[[str], list]:
    """An argparse type: comma-separated numbers of ``kind``, each at least ``least`` (``0.5,1,2``)."""
    def listed(text: str) -> list:
        try:
            values = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, not {text!r}") from None
        if not values or min(values) < least:
            raise argparse.ArgumentTypeError(f"expected numbers of at least {least}, not {text!r}")
        return values
    return listed


def names(options) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names, each one of ``options`` (``fc,resnet20``)."""
    def listed(text: str) -> list[str]:
        chosen = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in chosen if name not in options]
        if not chosen or unknown:
            raise argparse.ArgumentTypeError(f"expected comma-separated names of: {', '.join(options)}; not {text!r}")
        return chosen
    return listed


def torch_device(text: str) -> torch.device:
    """An argparse type: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, where that device is here."""
    try:
        chosen = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; cpu, cuda or mps") from None
    here = {"cpu": True, "cuda": torch.cuda.is_available() and (chosen.index or 0) < torch.cuda.device_count(),
            "mps": torch.backends.mps.is_available()}
    if chosen.type not in here:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; cpu, cuda or mps")
    if not here[chosen.type]:
        raise argparse.ArgumentTypeError(f"no {text} device here; use --device cpu")
    return chosen


def ratio_text(baseline: Timing, candidate: Timing) -> str:
    """``baseline`` over ``candidate`` (above 1: the candidate is faster), with whether it is beyond the noise."""
    return f"{baseline.median / candidate.median:.2f}x ({noise_words(baseline, candidate)})"


def run(main: Callable[[], None]) -> None:
    """Run a bench's ``main``: a :class:`UserError` (a pruner or model it does not know) is one line, exit 2."""
    try:
        main()
    except UserError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
