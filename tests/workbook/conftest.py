"""One render of the smoke profile per test session, shared by test_notebooks.py and test_browser.py."""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """(process, rendered folder, result store) of ``run_all.sh --profile smoke``, rendered once per session."""
    tmp = tmp_path_factory.mktemp("smoke")
    out, results = tmp / "rendered", tmp / "results"
    proc = subprocess.run(["bash", str(REPO / "run_all.sh"), "--profile", "smoke", "--out", str(out),
                           "--result-dir", str(results)], capture_output=True, text=True, timeout=900, cwd=REPO)
    return proc, out, results
