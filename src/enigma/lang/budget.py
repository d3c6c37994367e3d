"""A script's budget: how many steps it may take, how large a list it may build, how long
it may run, and a flag that stops it from outside.

Why in the interpreter: a script's public control flow runs here, in Python, the same way
on every member. Two nested `range(100000)` loops cost no multiplication and no round, so
no count of MPC work sees them; only the walker that runs them does. Counting steps here
stops a runaway script at the same statement on every member (the count is a function of
public values only), so a limit is the script's fault, never one member's. A list is
refused before it is allocated (`[0.0] * 10**10` and `range(10**12)` cost nothing).

The time limit and the stop flag are checked at every step too: a member's memory
watchdog and an owner's cancel set the flag (`app.budget`), and the script stops at its
next statement. One step is a statement executed or a loop iteration begun.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from .errors import ScriptError

DEFAULT_STEPS = 1_000_000
"""Steps a script may take when no budget is given (the dry run, `enigma script run`):
about 3 s of interpretation, thousands of times what the library's analyses take."""
DEFAULT_ELEMENTS = 1_000_000
"""Elements of one public list or range when no budget is given (a list of a million
Python numbers is about 40 MB)."""


class ScriptLimitError(ScriptError):
    """The script ran over its budget; `limit` says which: steps, elements, time, stopped."""

    def __init__(self, limit: str, message: str, line: int, col: int, explanation: str = "",
                 filename: str = "<script>") -> None:
        super().__init__(message, line, col, explanation, filename)
        self.limit = limit


@dataclass
class Budget:
    """The limits of one run; `steps_taken` counts as it goes (the dry run reads it)."""

    steps: int = DEFAULT_STEPS
    elements: int = DEFAULT_ELEMENTS
    deadline: float | None = None
    """time.monotonic() after which the script stops."""
    stop: threading.Event = field(default_factory=threading.Event)
    why: str = ""
    """Why `stop` was set (a memory watchdog's reading, a cancel), for the error."""
    steps_taken: int = 0

    @classmethod
    def unlimited(cls) -> Budget:
        """For a replay of a run that already ended within its budget (blame evidence)."""
        return cls(steps=sys.maxsize, elements=sys.maxsize)

    def fresh(self) -> Budget:
        """The same limits and stop flag, no steps taken: a planning pass before the run."""
        return Budget(self.steps, self.elements, self.deadline, self.stop)

    def halt(self, why: str) -> None:
        """Stop the script at its next step (from any thread)."""
        self.why = why
        self.stop.set()

    def check_step(self) -> str | None:
        """Count one step; the name of the limit it crosses, or None."""
        self.steps_taken += 1
        if self.steps_taken > self.steps:
            return "steps"
        if self.stop.is_set():
            return "stopped"
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "time"
        return None

    def message(self, limit: str) -> tuple[str, str]:
        """The one-line error and its explanation for a crossed limit."""
        if limit == "steps":
            return (f"the script ran over its budget of {self.steps:,} steps",
                    "a step is a statement or a loop iteration; loops over public ranges "
                    "this long are almost always a mistake: vectorize over the columns")
        if limit == "time":
            return ("the script ran over its time budget",
                    "the job's time budget comes from its cost estimate, with a margin")
        return (f"the script was stopped: {self.why or 'cancelled'}", "")

    def check_elements(self, n: int) -> bool:
        return n <= self.elements
