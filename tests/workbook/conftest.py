"""One render of the smoke profile per test session, shared by test_notebooks.py and test_browser.py.

The render takes about six minutes. It starts in the background as soon as collection finds a test that
needs it, so it runs on the second core while every test that does not need it runs on the first (those that
do are moved last); the ``smoke`` fixture waits for it to end.
"""

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RENDER_TIMEOUT_S = 900


@dataclass
class _Render:
    """The background ``run_all.sh --profile smoke``: its process, folders and output files."""

    proc: subprocess.Popen
    started: float
    tmp: Path

    @property
    def out(self) -> Path:
        return self.tmp / "rendered"

    @property
    def results(self) -> Path:
        return self.tmp / "results"


_render: _Render | None = None


def _start_render(config: pytest.Config) -> _Render:
    # under pytest's own temporary folder (honours --basetemp, kept for the last 3 sessions to inspect);
    # the tmp_path_factory fixture is not available in a hook, its object on the config is
    tmp = config._tmp_path_factory.mktemp("smoke")
    args = ["bash", str(REPO / "run_all.sh"), "--profile", "smoke", "--out", str(tmp / "rendered"),
            "--result-dir", str(tmp / "results")]
    # output to files, not pipes: nobody reads a pipe while the other tests run, and a full one would block it
    with open(tmp / "stdout.txt", "w") as stdout, open(tmp / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, text=True, cwd=REPO,
                                start_new_session=True)
    return _Render(proc, time.monotonic(), tmp)


def pytest_collection_modifyitems(items):
    """The tests that need the smoke render last, each file's in their order: every other test runs while the
    render does, on the other core, rather than after the first test that waits for it."""
    items.sort(key=lambda item: "smoke" in getattr(item, "fixturenames", ()))  # a stable sort


def pytest_collection_finish(session):
    global _render
    if session.config.option.collectonly:
        return
    if _render is None and any("smoke" in getattr(item, "fixturenames", ()) for item in session.items):
        _render = _start_render(session.config)


def pytest_sessionfinish(session):
    """Stop a render still running (the session was interrupted or failed early)."""
    global _render
    if _render is not None and _render.proc.poll() is None:
        # run_all.sh and papermill are in the render's process group; a notebook kernel has its own session
        # and exits by itself within a second of papermill's end (ipykernel watches its parent)
        os.killpg(_render.proc.pid, 9)
        _render.proc.wait()
    _render = None


@pytest.fixture(scope="session")
def smoke(request):
    """(process, rendered folder, result store) of ``run_all.sh --profile smoke``, rendered once per session."""
    global _render
    if _render is None:  # collected without the hook seeing it (e.g. a plugin added the test later)
        _render = _start_render(request.config)
    left = RENDER_TIMEOUT_S - (time.monotonic() - _render.started)
    try:
        _render.proc.wait(timeout=max(left, 1))
    except subprocess.TimeoutExpired:
        stderr = (_render.tmp / "stderr.txt").read_text()[-2000:]
        pytest.fail(f"run_all.sh --profile smoke ran over {RENDER_TIMEOUT_S} s; its stderr ends:\n{stderr}")
    proc = subprocess.CompletedProcess(_render.proc.args, _render.proc.returncode,
                                       (_render.tmp / "stdout.txt").read_text(),
                                       (_render.tmp / "stderr.txt").read_text())
    return proc, _render.out, _render.results
