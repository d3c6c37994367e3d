"""Progress of a long step on the user's terminal: the phase, the time it has taken, an ETA.

Why only on a terminal: when standard output is not a terminal (a pipe, a file, `--json`),
a program or a log reads what the command writes, and a redrawn progress line is noise
there; so a Progress draws only when standard output and standard error both are terminals
and the command was not asked for JSON. Warnings (`note`) are written in every case.

Why a line that ticks: a step of unknown length (a quorum computing, a measurement) still
shows that time passes and which phase it is in, so 85 silent seconds become a visible
wait. The ETA comes from what is known: a count of units (rows shared) gives the rate so
far; a phase whose length the caller can predict (the second of two measurements) passes
`expected` seconds; a command whose whole length is estimated (a job from its cost)
calls `expect`, and phases of their own unknown length count down to that.

Beside the layers (like `files.py`): the commands of `lang` and of `app` both use it.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import click

TICK = 0.5
"""Seconds between redraws of the line."""


JSON_FLAGS = ("as_json", "json")
"""Parameter names of a command's `--json` flag."""


def wanted(json_output: bool = False) -> bool:
    """Whether a command's progress should be drawn (see the module docstring): not when
    `json_output`, nor when the running click command (or a group above it) was given
    `--json`, nor off a terminal."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None and not json_output:
        json_output = any(ctx.params.get(flag) for flag in JSON_FLAGS)
        ctx = ctx.parent
    return not json_output and sys.stdout.isatty() and sys.stderr.isatty()


def duration(seconds: float) -> str:
    """7 s, 1 min 05 s, 2 h 03 min: what a person reads at a glance."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """One redrawn line on standard error: `label: phase  12 s  340/1000  ETA 23 s`.

    Use as a context manager; `phase` starts a phase, `advance`/`count` move its count,
    `note` prints a line that stays (a warning), and leaving the block clears the line.
    With `enabled=False` (the default unless `wanted()`), only notes are written.
    """

    def __init__(self, label: str, *, enabled: bool | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 tick: float = TICK) -> None:
        self.label = label
        self.enabled = wanted() if enabled is None else enabled
        self.stream = stream or sys.stderr
        self.clock = clock
        self.tick = tick
        self.text = ""
        self.done = 0
        self.total: int | None = None
        self.expected: float | None = None
        self.overall: float | None = None
        self.started = self.created = clock()
        self._width = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._clear()

    def phase(self, text: str, *, total: int | None = None,
              expected: float | None = None) -> None:
        """Start a phase: `total` units of work to count, or `expected` seconds it takes."""
        with self._lock:
            self.text, self.done, self.total, self.expected = text, 0, total, expected
            self.started = self.clock()
            self._draw()

    def expect(self, seconds: float) -> None:
        """The whole command is expected to take `seconds` from its start (a cost estimate):
        the ETA of every phase without a count or an expectation of its own."""
        with self._lock:
            self.overall = seconds
            self._draw()

    def advance(self, units: int) -> None:
        """`units` more done (the shape of click's progress-bar `update`)."""
        self.count(self.done + units)

    def count(self, done: int) -> None:
        with self._lock:
            self.done = done
            self._draw()

    def note(self, text: str) -> None:
        """A line that stays, written whether or not the progress is drawn."""
        with self._lock:
            self._clear()
            print(text, file=self.stream, flush=True)
            self._draw()

    def line(self) -> str:
        """The progress line as it is drawn now."""
        spent = self.clock() - self.started
        parts = [f"{self.label}: {self.text}", duration(spent)]
        eta = None
        if self.total:
            parts.append(f"{self.done:,}/{self.total:,}")
            if self.done:
                eta = spent * (self.total - self.done) / self.done
        elif self.expected is not None:
            eta = self.expected - spent
        elif self.overall is not None:
            eta = self.overall - (self.clock() - self.created)
        if eta is not None:
            parts.append(f"ETA {duration(eta)}" if eta > 0 else "ETA soon")
        return "  ".join(parts)

    def _tick(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                self._draw()

    def _draw(self) -> None:
        if not self.enabled or not self.text:
            return
        text = self.line()[:shutil.get_terminal_size((100, 24)).columns - 1]  # never wrap
        # the cursor goes back to the line's start: a line another part prints meanwhile
        # (a library's warning) then overwrites the progress instead of running on from it
        self.stream.write("\r" + text.ljust(self._width) + "\r")
        self.stream.flush()
        self._width = len(text)

    def _clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
