"""What the numbers were measured on: CPU model and vector units always; GPU name, driver and CUDA version
when present."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from ..version import __version__


def cpu_model() -> str:
    """The CPU's model name from Linux /proc/cpuinfo (:func:`cpuinfo_model`), else what :mod:`platform` knows."""
    try:
        name = cpuinfo_model(Path("/proc/cpuinfo").read_text())
    except OSError:
        name = ""
    return name or platform.processor() or platform.machine()


def cpuinfo_model(cpuinfo: str) -> str:
    """The first CPU's model name in the text of /proc/cpuinfo ("" where none); where it names no model number, as a
    virtual machine's often does ("AMD EPYC"), with the CPU family, model and stepping numbers that tell one
    generation from another ("AMD EPYC (family 25, model 17, stepping 1)")."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if not key.strip():
            break  # the first CPU's block ends at a blank line
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "")
    numbers = [f"{key.removeprefix('cpu ')} {fields[key]}" for key in ("cpu family", "model", "stepping")
               if fields.get(key)]
    if name and numbers and not any(ch.isdigit() for ch in name):
        return f"{name} ({', '.join(numbers)})"
    return name


def cpu_flags() -> list[str]:
    """The CPU's feature flags from Linux /proc/cpuinfo (``Features`` on ARM); empty elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
    return next((line.split(":", 1)[1].split() for line in lines if line.startswith(("flags", "Features"))), [])


#: CPU flags of native bf16 arithmetic (oneDNN runs bf16 convolutions on them; without them bf16 is emulated)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: the vector units that decide how fast fp32, int8 and bf16 kernels run (x86 int8 kernels run on AVX2 and
#: faster on VNNI or AMX), so that a CPU timing can be read: x86 (AVX2 to AMX), then ARM (NEON, SVE)
VECTOR_UNIT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16",
                     "amx_int8", "asimd", "sve", "sve2")


def cpu_bf16_flags() -> list[str]:
    """Which of :data:`BF16_CPU_FLAGS` this CPU has (empty where the flags cannot be read)."""
    flags = cpu_flags()
    return [f for f in BF16_CPU_FLAGS if f in flags]


def cpu_vector_units() -> list[str]:
    """Which of :data:`VECTOR_UNIT_FLAGS` this CPU has, in that order (empty where the flags cannot be read)."""
    flags = cpu_flags()
    return [f for f in VECTOR_UNIT_FLAGS if f in flags]


def machine_line(device: torch.device | str) -> str:
    """One line naming what a bench's figures were measured on: CPU model, vector units, cores, torch
    and its intra-op threads, and the GPU when ``device`` is one (RESULTS.md rows quote it)."""
    device = torch.device(device)
    units = " ".join(cpu_vector_units()) or "none listed"
    line = (f"CPU {cpu_model()} (vector units: {units}; {os.cpu_count()} cores), torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s)")
    if device.type == "cuda":
        line += f", GPU {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return line


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
            "device": str(device), "device_name": cpu_model(), "cpu_bf16": cpu_bf16_flags(),
            "cpu_vector_units": cpu_vector_units()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, gpu=props.name, cuda=torch.version.cuda, driver=nvidia_driver(),
                    gpu_memory_gb=round(props.total_memory / 2**30, 1))
    elif device.type == "mps":
        info.update(device_name=f"Apple MPS ({platform.machine()})")
    return info
