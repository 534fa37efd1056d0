"""Every experiment by name, and the function that runs it: the one place a new kind of run is added.

An experiment runs either from a configuration (``run(config, progress, log)``: the two training
experiments and the SynFlow paper's four conservation experiments) or from a finished run's record
(``run(record, log=log)``: int8 quantization, sparse-kernel inference, fp32 against mixed precision
training time). The names come from
:mod:`prunelab.runs.config`, which the command line and validation read; a test checks that every name
has its run function here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import amp_timing, conservation, int8, singleshot, sparse
from .config import CONSERVATION_EXPERIMENTS, TRAINING_EXPERIMENTS, RunConfig
from .store import RunRecord


@dataclass(frozen=True)
class Experiment:
    name: str
    run: Callable[..., RunRecord]
    from_record: bool = False  # run on a finished run's record rather than on a configuration


EXPERIMENTS: dict[str, Experiment] = {
    **{name: Experiment(name, singleshot.run_training) for name in TRAINING_EXPERIMENTS},
    **{name: Experiment(name, conservation.run_conservation) for name in CONSERVATION_EXPERIMENTS},
    int8.EXPERIMENT: Experiment(int8.EXPERIMENT, int8.quantize_record, from_record=True),
    sparse.EXPERIMENT: Experiment(sparse.EXPERIMENT, sparse.sparse_record, from_record=True),
    amp_timing.EXPERIMENT: Experiment(amp_timing.EXPERIMENT, amp_timing.amp_timing_record, from_record=True),
}


def run(config: RunConfig, progress: bool = True, log: Callable[[str], None] = print) -> RunRecord:
    """Run the experiment ``config`` names and return its record (a usable stored one is reused)."""
    config.validate()
    return EXPERIMENTS[config.experiment].run(config, progress, log)
