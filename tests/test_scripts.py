"""The helper scripts: the GPU check parses, and without CUDA it skips cleanly (CI has no GPU)."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

from forked_processes import run_forked

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_parses_and_skips_without_cuda(tmp_path):
    script = REPO / "scripts" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "no CUDA device here; every section skipped" in summary


BAD_FLAGS = {  # a bench and a flag it refuses before measuring anything
    "amp.py": ["--repeats", "0"], "fused.py": ["--runs", "0"], "inference.py": ["--images", "-5"],
    "parallel_runs.py": ["--runs", "-1"], "quant.py": ["--batch-sizes", "x"], "sparse.py": ["--models", "bogus"],
    "train_throughput.py": ["--device", "bogus"],
}


def _bench(script: str, argv: list[str]) -> None:
    """``python bench/SCRIPT ARGV`` in this process (a target for :func:`run_forked`), its folder first on the path
    as Python puts a script's own folder."""
    sys.path.insert(0, str(REPO / "bench"))
    sys.argv = [script, *argv]
    runpy.run_path(str(REPO / "bench" / script), run_name="__main__")


def test_every_bench_refuses_a_bad_flag_in_one_line_with_exit_code_2(tmp_path, monkeypatch):
    assert set(BAD_FLAGS) == {p.name for p in (REPO / "bench").glob("*.py")} - {"benchkit.py"}
    monkeypatch.chdir(tmp_path)  # the folder each bench starts in: nothing may be written there
    for script, flag in BAD_FLAGS.items():
        result = run_forked(_bench, script, flag, timeout=120)  # forked with torch imported: no 3 s start each
        assert result.returncode == 2 and result.stdout == "", (script, result.stdout, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"{script}: error: argument {flag[0]}") and flag[1] in line, line
    assert list(tmp_path.iterdir()) == []  # nothing written
