"""The forked processes the kill-and-resume tests start: they end as a process started anew would, and see the
environment and folder of the test that starts them."""

import os
import signal
import sys
from pathlib import Path

from forked_processes import run_forked


def _report(path: str) -> None:
    Path(path).write_text(f"{os.environ.get('FORKED_CHECK')} {os.getcwd()} {sys.modules.get('torch') is not None}")
    print("to stdout")


def _fail() -> None:
    raise RuntimeError("went wrong")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_forked_process_ends_and_reports_as_a_new_one_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORKED_CHECK", "set by the test")
    done = run_forked(_report, str(tmp_path / "report"), env={"OTHER": "1"})
    assert done.returncode == 0 and done.stdout == "to stdout\n"
    assert (tmp_path / "report").read_text() == f"set by the test {tmp_path} True"  # torch preloaded
    failed = run_forked(_fail)
    assert failed.returncode == 1 and "RuntimeError: went wrong" in failed.stderr
    assert run_forked(_die).returncode == -signal.SIGKILL
    monkeypatch.delenv("FORKED_CHECK")
    run_forked(_report, str(tmp_path / "again"))
    assert (tmp_path / "again").read_text().startswith("None ")  # the server's environment is not the child's
