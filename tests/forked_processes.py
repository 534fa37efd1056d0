"""Processes a test starts, may kill and then inspects, forked from one server that has imported torch and
prunelab once: a process of its own as ``python -c`` would start it, without paying the 4 to 5 s of imports
(torch, and torch._dynamo, which the first optimizer of a process imports) every time. The kill-and-resume
tests start about thirty such processes.

Forked from a server that has run no tensor operation, so no OpenMP threads are copied half-alive; the server
inherits this process's environment (``OMP_NUM_THREADS=1`` from conftest.py) and ``sys.path``.
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
    """Run ``target(*args)`` in a process of its own with ``env`` added to its environment; wait for it to end."""
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        process = _CONTEXT.Process(target=_child, args=(target, args, env or {}, str(out), str(err)))
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


def _child(target: Callable[..., object], args: tuple, env: dict[str, str], out: str, err: str) -> None:
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, fd)
        os.close(handle)
    target(*args)
