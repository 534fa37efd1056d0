"""Peak memory of a block of work: CUDA tensors on a GPU, the process's peak resident set on a CPU
(:class:`PeakMemory`); and the peak of the tensors one piece of work allocates, on either device
(:func:`tensor_peak_mb`), which two designs measured in one process can be compared by."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from ..core.evaluation import synchronize
from ..core.trace import quiet_native_stderr

_MB = 2**20


def _proc_status_kb(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in KB, or None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's resident-set high-water mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Peak memory of a block: ``with PeakMemory(device) as mem: ...`` then ``mem.peak_mb``, ``mem.kind``.

    * CUDA (``kind="cuda_max_allocated"``): the peak of tensors allocated by PyTorch on the device
      during the block (``reset_peak_memory_stats`` then ``max_memory_allocated``).
    * CPU and anything else (``kind="cpu_peak_rss"``): the peak resident set size of the whole process.
      That is a lifetime peak, so on entry the Linux high-water mark is reset where the kernel allows;
      ``block_only`` says whether that worked (if not, the peak may predate the block). ``start_mb``
      is the RSS on entry, for comparison.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.kind = "cuda_max_allocated" if self.device.type == "cuda" else "cpu_peak_rss"
        self.peak_mb = math.nan
        self.start_mb = math.nan
        self.block_only = False

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / _MB
            torch.cuda.reset_peak_memory_stats(self.device)
            self.block_only = True
            return self
        rss = _proc_status_kb("VmRSS")
        self.start_mb = math.nan if rss is None else rss / 1024
        self.block_only = _reset_peak_rss()
        return self

    def __exit__(self, *exc) -> bool:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / _MB
            return False
        synchronize(self.device)
        hwm = _proc_status_kb("VmHWM")
        self.peak_mb = (hwm if hwm is not None else _ru_maxrss_kb()) / 1024
        return False


def _ru_maxrss_kb() -> int:
    """``ru_maxrss`` of this process in KB (Linux reports KB; macOS reports bytes)."""
    import resource  # Unix only, so imported where needed

    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value // 1024 if sys.platform == "darwin" else value


#: the profiler's device types of host memory (oneDNN's buffers are CPU memory too)
_HOST_MEMORY = (torch.autograd.DeviceType.CPU, torch.autograd.DeviceType.MKLDNN, torch.autograd.DeviceType.IDEEP)


def tensor_peak_mb(work: Callable[[], None], device: torch.device | str) -> float:
    """The peak, in MB, of the tensor memory that ``work`` allocates above what was allocated when it started: on
    CUDA the caching allocator's peak less its memory at the start; on the CPU the PyTorch profiler's record of
    every allocation and free (``profile_memory``), summed in time order. The CPU has no allocator statistics, and
    the process's resident set counts all the process holds, so this is what two precisions of one step compare by.
    A free of a block allocated before ``work`` has no size in the profiler's record and is not counted, so a
    step that frees an earlier step's gradients reads high by their size (a model's parameter bytes at most). NaN on
    other devices, whose memory neither sees."""
    device = torch.device(device)
    if device.type not in ("cuda", "cpu"):
        return math.nan
    if device.type == "cuda":
        with PeakMemory(device) as peak:
            work()
        return peak.peak_mb - peak.start_mb
    with quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as recorded:
        work()
    changes = sorted((event for event in recorded.profiler.kineto_results.events()
                      if event.name() == "[memory]" and event.device_type() in _HOST_MEMORY),
                     key=lambda event: event.start_ns())  # stable: ties keep the record's order
    live = top = 0
    for event in changes:
        live += event.nbytes()
        top = max(top, live)
    return top / _MB
