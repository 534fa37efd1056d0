"""Processes a test starts, may kill and then inspects, forked from one server that has imported torch and
prunelab once: a process of its own as ``python -c`` would start it, without paying the 4 to 5 s of imports
(torch, and torch._dynamo, which the first optimizer of a process imports) every time. The kill-and-resume
tests start about thirty such processes.

Forked from a server that has run no tensor operation, so no OpenMP threads are copied half-alive. The server
starts with this process's ``sys.path`` and environment (``OMP_NUM_THREADS=1`` from conftest.py, read as torch
is imported); each process then takes the environment and working folder of the test that starts it, as
``subprocess.run`` would give them, not those the server was started with.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["torch", "torch._dynamo", "prunelab.runs.fused", "prunelab.runs.cli"])


@dataclass(frozen=True)
class Finished:
    """How a forked process ended, as :class:`subprocess.CompletedProcess` says it: ``returncode`` is
    ``-signal.SIGKILL`` for a process killed so, 1 for an uncaught exception (its traceback in ``stderr``)."""

    returncode: int
    stdout: str
    stderr: str


def run_forked(target: Callable[..., object], *args, env: dict[str, str] | None = None,
               timeout: float = 300) -> Finished:
    """Run ``target(*args)`` in a process of its own, in this process's environment with ``env`` added and in
    its working folder; wait for it to end."""
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        where = _Surroundings({**os.environ, **(env or {})}, os.getcwd(), str(out), str(err))
        process = _CONTEXT.Process(target=_child, args=(target, args, where))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise TimeoutError(f"{getattr(target, '__name__', target)} ran for more than {timeout} s")
        read = lambda path: path.read_text() if path.exists() else ""  # noqa: E731
        return Finished(process.exitcode, read(out), read(err))


def cli(argv: list[str]) -> None:
    """``python -m prunelab ARGV`` in this process (a target for :func:`run_forked`)."""
    from prunelab.runs.cli import main

    sys.exit(main(argv))


@dataclass(frozen=True)
class _Surroundings:
    """What a forked process takes from the test that starts it: environment, working folder, and the files its
    standard output and error go to."""

    env: dict[str, str]
    cwd: str
    stdout: str
    stderr: str


def _child(target: Callable[..., object], args: tuple, where: _Surroundings) -> None:
    os.environ.clear()
    os.environ.update(where.env)
    tempfile.tempdir = None  # the temporary folder as the environment says (TMPDIR), not as the server found it
    os.chdir(where.cwd)
    for fd, path in ((1, where.stdout), (2, where.stderr)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, fd)
        os.close(handle)
    target(*args)
