"""A sweep's lines and outcomes: a line per run as it ends ("[k/n] ... top-1 91.20% in 14 s"), a group's
decisions as they are made (:class:`LiveGroup`), and the report at the end (:func:`report`)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UserError
from .config import RunConfig
from .fused import GroupWatch
from .store import load_record

#: what a task returns for a run another process holds the lock of (another sweep of the same grid), and the
#: status of such a run until waited for (a sweep that does not wait reports it so, as it does a submitted one)
ELSEWHERE = "running elsewhere"
#: statuses of runs that end with a complete record (a diverged run's says where its training stopped)
DONE = ("reused", "finished", "diverged", "done elsewhere")
#: statuses of runs a sweep that does not wait leaves to their record landing later: submitted, or in another process
PENDING = ("submitted", ELSEWHERE)


@dataclass
class Outcome:
    config: RunConfig
    status: str  # reused | finished | diverged | done elsewhere | failed | submitted | running elsewhere (until
    # waited for; left so by a sweep that does not wait)
    detail: str = ""  # a finished run's record path; why a run diverged or failed; a submitted one's job id

    @property
    def name(self) -> str:
        return self.config.record_name


def error_line(error: BaseException) -> str:
    """One line for a failed run: a person's mistake (:class:`UserError`) as its message, anything else with
    its exception's type."""
    if isinstance(error, UserError):
        return (str(error).splitlines() or [""])[0][:300]
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return last.splitlines()[0][:300]


def describe(config: RunConfig) -> str:
    """A run in a progress line, told apart from the grid's others: set-up, pruner with its scoring rounds
    (SynFlow's always, another's when several), compression, seed, any ablation, and the record's name."""
    rounds = config.resolved_prune_epochs
    pruner = config.pruner + (f" x{rounds}" if rounds > 1 or config.pruner == "synflow" else "")
    ablations = "".join(f" {flag}" for flag in ("shuffle", "reinitialize", "invert") if getattr(config, flag))
    return (f"{config.dataset}/{config.model} {pruner} c={config.compression:g} seed {config.seed}{ablations} "
            f"({config.record_name})")


def finished_line(config: RunConfig, summary: dict, seconds: float | None = None) -> str:
    """A finished run's line: its top-1 (from its record's ``summary``), time, and why it stopped if it diverged."""
    top1 = f"top-1 {summary['top1']:.2f}%" if summary.get("top1") is not None else "done"
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    stopped = f" (DIVERGED: {summary['message']})" if summary.get("status") == "diverged" else ""
    return f"{describe(config)}: {top1}{took}{stopped}"


@dataclass
class Tally:
    """Where a sweep's lines go and how many of its ``total`` runs have ended (each run's line's "[k/n]")."""

    log: Callable[[str], None]
    total: int
    ended: int = 0

    def _step(self) -> str:
        return f"[{self.ended + 1}/{self.total}]"

    def finished(self, config: RunConfig, path: str, seconds: float | None = None) -> Outcome:
        """The outcome of a task that returned ``path`` (or :data:`ELSEWHERE`) for ``config``, said and counted
        (counted once said: a run whose line failed is counted with its group's failure)."""
        summary = {} if path == ELSEWHERE else load_record(path).summary
        said = (f"{describe(config)}: running in another process; waited for at the end." if path == ELSEWHERE
                else finished_line(config, summary, seconds))
        self.log(f"  {self._step()} {said}")
        self.ended += 1
        if path == ELSEWHERE:
            return Outcome(config, ELSEWHERE)
        if summary.get("status") == "diverged":
            return Outcome(config, "diverged", summary["message"])
        return Outcome(config, "finished", path)

    def failed(self, config: RunConfig, error: BaseException, prefix: str = "") -> Outcome:
        """The outcome of a run that failed with ``error``, said and counted."""
        self.log(f"  {self._step()} {describe(config)}: FAILED: {prefix}{error_line(error)}")
        self.ended += 1
        return Outcome(config, "failed", prefix + error_line(error))


class LiveGroup:
    """A group's progress lines said as it trains (the local executor runs it in this process): each fusion
    decision and where a long fused network stands, and a "[k/n]" line per run as its record is written, each
    run's time its share of the time since the runs before it ended. The first decision says how long opening
    and pruning the group's runs took, so that time is not counted as the first run's."""

    def __init__(self, tally: Tally) -> None:
        self.tally, self.log = tally, tally.log
        self.outcomes: dict[str, Outcome] = {}
        self.mark = time.perf_counter()
        self.decided = False

    def watch(self) -> GroupWatch:
        return GroupWatch(self._decision, self._say, self._runs_ended, self._run_failed)

    def _say(self, line: str) -> None:
        self.log(f"  {line}")

    def _decision(self, line: str) -> None:
        if not self.decided:  # made once the runs are opened and pruned (but those a pre-training waits for)
            now = time.perf_counter()
            line = f"{line} [the group's first {now - self.mark:.0f} s: opening and pruning runs]"
            self.mark, self.decided = now, True
        self._say(line)

    def _runs_ended(self, runs: list[tuple[RunConfig, str]]) -> None:
        now = time.perf_counter()
        share, self.mark = (now - self.mark) / len(runs), now
        for config, path in runs:
            self.outcomes[config.record_name] = self.tally.finished(config, path, share)

    def _run_failed(self, config: RunConfig, error: BaseException) -> None:
        self.outcomes[config.record_name] = self.tally.failed(config, error)


def report(outcomes: list[Outcome]) -> str:
    """One line per status, and one per failed, diverged, submitted or running-elsewhere run with its reason, job or
    what to do."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    lines = ["sweep: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    lines += [f"  failed {o.name}: {o.detail}" for o in outcomes if o.status == "failed"]
    lines += [f"  diverged {o.name}: {o.detail}" for o in outcomes if o.status == "diverged"]
    lines += [f"  submitted {o.name} as job {o.detail}" for o in outcomes if o.status == "submitted"]
    lines += [f"  {o.name}: running in another process; re-run the sweep once it ends (a run that left no record "
              "resumes then)" for o in outcomes if o.status == ELSEWHERE]
    return "\n".join(lines)
