"""What a measurement names as its machine: the CPU's vector units read from its flags, one line for benches."""

from pathlib import Path

import torch

from prunelab.core import hardware


def test_vector_units_are_the_listed_flags_the_cpu_has_in_the_lists_order(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: ["fpu", "amx_int8", "sse2", "avx512_vnni", "avx2"])
    assert hardware.cpu_vector_units() == ["avx2", "avx512_vnni", "amx_int8"]
    assert hardware.cpu_bf16_flags() == []
    monkeypatch.setattr(hardware, "cpu_flags", lambda: [])
    assert hardware.cpu_vector_units() == [] and "none listed" in hardware.machine_line("cpu")


def test_the_machine_line_names_the_cpu_its_vector_units_and_threads(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: ["avx2", "avx512_bf16"])
    monkeypatch.setattr(hardware, "cpu_model", lambda: "Test CPU 9000")
    line = hardware.machine_line("cpu")
    assert "Test CPU 9000" in line and "avx2 avx512_bf16" in line and torch.__version__ in line
    assert f"{torch.get_num_threads()} thread" in line


def test_cpu_flags_are_read_where_linux_lists_them():
    if Path("/proc/cpuinfo").exists():
        assert len(hardware.cpu_flags()) > 0


def test_a_cpu_named_without_a_model_number_is_told_apart_by_family_and_model():
    block = ("processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
             "model name\t: {name}\nstepping\t: 1\n")
    bare = "\n".join(block.format(n=n, name="AMD EPYC") for n in (0, 1))
    assert hardware.cpuinfo_model(bare) == "AMD EPYC (family 25, model 17, stepping 1)"
    named = block.format(n=0, name="AMD EPYC 9654 96-Core Processor")
    assert hardware.cpuinfo_model(named) == "AMD EPYC 9654 96-Core Processor"  # a model number: as the CPU says
    assert hardware.cpuinfo_model("Features\t: fp asimd\n") == ""  # no model name: the caller asks platform
