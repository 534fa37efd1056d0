"""Peak memory of a block of work: CUDA tensors on a GPU, the process's peak resident set on a CPU."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from ..core.evaluation import synchronize

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
