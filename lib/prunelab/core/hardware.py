"""What the numbers were measured on: CPU model always; GPU name, driver and CUDA version when present."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import torch

from ..version import __version__


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU flags of native bf16 arithmetic (oneDNN runs bf16 convolutions on them; without them bf16 is emulated)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags() -> list[str]:
    """Which of :data:`BF16_CPU_FLAGS` this CPU has (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return []
    return [f for f in BF16_CPU_FLAGS if f in flags]


def nvidia_driver() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None where there is none."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def hardware_info(device: torch.device | str) -> dict:
    """A flat description of the machine and device, for records and the notebooks' settings."""
    device = torch.device(device)
    info = {"prunelab": __version__, "torch": torch.__version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "cpu": cpu_model(), "threads": torch.get_num_threads(),
            "device": str(device), "device_name": cpu_model(), "cpu_bf16": cpu_bf16_flags()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, gpu=props.name, cuda=torch.version.cuda, driver=nvidia_driver(),
                    gpu_memory_gb=round(props.total_memory / 2**30, 1))
    elif device.type == "mps":
        info.update(device_name=f"Apple MPS ({platform.machine()})")
    return info
