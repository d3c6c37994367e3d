"""A job's budget: what the owner plans before posting, and what every member enforces.

Why a budget at all: a script that passes the checker can still loop for hours, build a
list of 10^10 elements, or grow a node past its memory. Without a bound the quorum spins,
the escrow stays locked and the owner's only lever is to kill processes, which then reads
as absence and suspends honest nodes. With one, every member stops at the same point and
signs why, the job is refunded, and nobody is blamed for the script's appetite.

What bounds what:
- steps and list elements: `lang.budget`; the owner measures the steps of two dry runs on
  synthetic data (64 and 256 rows), extrapolates them linearly to the dataset's rows and
  multiplies by STEP_MARGIN; a script that runs away in the dry run is refused before
  anything is posted;
- work: the rounds and multiplications posted on the ledger (what the owner paid for; a
  commitment above them is refused by the contract anyway), checked at every step;
- time: the owner's wait for the job (`run_job`'s timeout), less a margin so a member
  answers before the owner stops waiting;
- memory: the growth of the member's resident memory during the job, sampled by a
  watchdog thread, against MEMORY_BASE_MB plus MEMORY_PER_CELL bytes per cell the job
  reads. The node's other work (another job, preprocessing) counts too: a false alarm
  refunds a job, it never blames anyone.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from enigma.lang.budget import DEFAULT_ELEMENTS, DEFAULT_STEPS, Budget, ScriptLimitError
from enigma.lang.plain import dry_run
from enigma.lang.schema import Schema

STEP_MARGIN = 4
STEP_SLACK = 10_000
MEASURE_ROWS = (64, 256)
MEMORY_BASE_MB = 1024
MEMORY_PER_CELL = 2048
"""Bytes of member memory per cell read: shares, tags, MACs and the library's temporaries."""
TIME_MARGIN = 0.9
TIME_SLACK = 5.0
"""A member stops at 90% of the owner's wait for its reply, and at least 5 s before it,
so its signed record arrives in time. The wait is the whole job's (`run_job`'s
`timeout`), not the mesh's per-message timeout, which decides who is absent and must
stay the shorter of the two."""
WATCH_PERIOD = 0.1


@dataclass(frozen=True)
class JobBudget:
    """What every member of one job may spend; travels in the `job-run` request."""

    steps: int
    elements: int
    seconds: float
    memory_mb: int

    def as_header(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_header(cls, raw: Any) -> JobBudget:
        """The budget of a request; ValueError naming the field that is not a positive number."""
        if not isinstance(raw, dict):
            raise ValueError("the job's budget is missing")
        out = {}
        for name, kind in (("steps", int), ("elements", int), ("seconds", float),
                           ("memory_mb", int)):
            value = raw.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not value > 0 or not math.isfinite(value):
                raise ValueError(f"the job's budget has no positive {name}")
            out[name] = kind(value)
        return cls(**out)


def plan(script: Any, schema: Schema, rows: int, columns: int, seconds: float) -> JobBudget:
    """The budget of a job on `rows` rows reading `columns` columns, waited for `seconds`.

    ScriptLimitError (with its line) when the script runs away in a dry run. A dry run
    that fails otherwise (an assertion that made-up data does not meet) says nothing of
    the steps: the default step budget is used then.
    """
    try:
        a, b = (dry_run(script, schema, rows=n).steps for n in MEASURE_ROWS)
    except ScriptLimitError:
        raise
    except Exception:  # the dry run's data is made up; its other failures are not the job's
        a = b = DEFAULT_STEPS
    slope = max(0.0, (b - a) / (MEASURE_ROWS[1] - MEASURE_ROWS[0]))
    expected = a + slope * max(0, rows - MEASURE_ROWS[0])
    cells = rows * max(1, 2 * columns)  # every column comes with its tag
    return JobBudget(
        steps=int(STEP_MARGIN * max(expected, b)) + STEP_SLACK,
        elements=max(DEFAULT_ELEMENTS, 4 * rows),
        seconds=max(1.0, min(seconds * TIME_MARGIN, seconds - TIME_SLACK)),
        memory_mb=MEMORY_BASE_MB + math.ceil(cells * MEMORY_PER_CELL / 2**20))


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Guard:
    """One member's enforcement of a job's budget, around the job's work.

    `budget` is the script's `lang.budget.Budget`: its deadline is the job's, and its stop
    flag is set by the memory watchdog, by `over_work` (polled by the watchdog too), by
    `cancel`, and when `client_gone` says the owner hung up (its client was killed: no
    one will read the result). `limit` tells afterwards which limit stopped the job.
    """

    def __init__(self, job: JobBudget, over_work: Callable[[], str | None] | None = None,
                 client_gone: Callable[[], bool] = lambda: False) -> None:
        self.job = job
        self.client_gone = client_gone
        self.budget = Budget(steps=job.steps, elements=job.elements,
                             deadline=time.monotonic() + job.seconds)
        self.over_work = over_work
        self.engine: Any = None
        """The job's engine and provider once they exist: `over_work` reads their counters."""
        self.provider: Any = None
        self.limit: str | None = None
        self._start = rss_mb()
        self._done = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, daemon=True,
                                       name="job budget watchdog")

    def __enter__(self) -> Guard:
        self._watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._watch.join()

    def cancel(self, why: str) -> None:
        self._stop("cancelled", why)

    def _stop(self, limit: str, why: str) -> None:
        if self.limit is None:
            self.limit = limit
        self.budget.halt(why)

    def _watchdog(self) -> None:
        while not self._done.wait(WATCH_PERIOD):
            growth = rss_mb() - self._start
            if growth > self.job.memory_mb:
                self._stop("memory", f"the job grew this node's memory by {growth:,.0f} MB, "
                                     f"over its budget of {self.job.memory_mb:,} MB")
            elif self.over_work is not None and (why := self.over_work()) is not None:
                self._stop("work", why)
            elif time.monotonic() > (self.budget.deadline or math.inf):
                self._stop("time", f"the job ran over its {self.job.seconds:g} s")
            elif self.client_gone():
                self._stop("cancelled", "the owner's client hung up")
