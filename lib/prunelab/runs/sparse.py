"""A trained run's inference on sparse kernels, measured against dense and written back as its own record.

:func:`sparse_record` rebuilds the run's pruned model, builds its sparse inference copy
(:func:`prunelab.core.sparse.sparse_inference_model`: dead units removed, each layer on the kernel timed
fastest for it, never one slower than dense), and times dense against sparse over the run's test set,
taking turns, the median of the passes with its spread (slowest minus fastest pass) and every pass. The record
lands under ``<result_dir>/sparse/<run>-<settings hash>``, with the per-layer choices in ``layers.csv``, so a notebook
reads Table C2 (and Table C's dense times) from the store like every other number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core.inference import strip_masks
from ..core.sparse import DENSE, TimingSettings, sparse_inference_model
from ..data.in_memory import DeviceLoader
from ..precision.timing import compare_models
from .prepare import DerivedKind, Measured, SourceRun, derived_record
from .store import RunRecord, csv_writer

EXPERIMENT = "sparse"


@dataclass(frozen=True)
class SparseSettings:
    """How the kernels are chosen and the two models timed.

    ``kernels`` are the sparse candidates tried per layer. im2col + CSR for convolutions is left out by
    default: it copies each input nine times, wins only where a convolution keeps a handful of weights
    (compression 3 in ``bench/sparse.py``), and takes seconds per layer to time on a CPU.
    """

    kernels: tuple[str, ...] = ("compact", "csr", "csr_t", "bsr", "semi24")
    layer_repeats: int = 3  # interleaved timing rounds per layer when choosing its kernel
    repeats: int = 5  # timed passes over the test set per model, taking turns


def sparse_record(record: RunRecord, settings: SparseSettings = SparseSettings(), force: bool = False,
                  log: Callable[[str], None] = print) -> RunRecord:
    """The sparse-kernel record of ``record``'s model: reused when made from this very source (unless
    ``force``), else measured now on this machine's default device (:func:`measure_sparse`)."""
    return derived_record(record, SPARSE, settings, force, log)


def measure_sparse(source: SourceRun, settings: SparseSettings, log: Callable[[str], None]) -> Measured:
    """Dense (masks stripped) against the sparse inference copy over the run's test set, both in the
    memory layout the run itself used; the per-layer kernel choices go to ``layers.csv``."""
    config, data, record = source.config, source.data, source.record
    dense = source.in_run_layout(strip_masks(source.model))
    batches = list(DeviceLoader(data.test, data.info, config.test_batch_size, source.device,
                                channels_last=source.channels_last))
    start = time.perf_counter()
    sparse = sparse_inference_model(dense, batches[0][0], TimingSettings(repeats=settings.layer_repeats),
                                    kernels=settings.kernels)
    choose_s = time.perf_counter() - start
    results = compare_models({"dense": dense, "sparse": sparse}, batches, repeats=settings.repeats)
    choices = sparse.choices
    switched = choices[choices["kernel"] != DENSE]
    speedup = results["dense"].seconds / results["sparse"].seconds
    log(f"sparse: {record.path.name}: {len(switched)} of {len(choices)} layers on sparse kernels, "
        f"{int(choices['dead_units'].sum())} dead units removed; {speedup:.2f}x dense over the test set "
        f"(choices timed in {choose_s:.1f} s).")
    return Measured({
        "dense_top1": results["dense"].top1, "sparse_top1": results["sparse"].top1,
        **results["dense"].timing.summary("dense_inference"), **results["sparse"].timing.summary("sparse_inference"),
        "speedup": speedup, "timing_repeats": settings.repeats,
        "layers": len(choices), "switched_layers": switched["layer"].tolist(),
        "switched_kernels": switched["kernel"].tolist(), "dead_units": int(choices["dead_units"].sum()),
        "choose_s": choose_s, "prunable_density": record.summary.get("prunable_density"),
        "flop_density": record.summary.get("flop_density"),
    }, {"layers.csv": csv_writer(choices)})


SPARSE = DerivedKind(EXPERIMENT, measure_sparse, require=("dense_inference_samples_s",))
