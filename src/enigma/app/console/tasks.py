"""Long steps (sharing a table, running a job) in a thread, with the phases a page shows.

Why threads and polling: a job takes seconds to minutes and a request must not hang that
long; the browser asks `/tasks/<id>` once a second (static/console.js) and redraws the
bar and the phase list from its JSON. A task's `phases` are the texts the owner's own
code already says (`run_job(progress=...)`, `Owner.share(progress=...)`); they are public
facts about the job (quorum, phase, row count), never a value. The error of a failed task
is `app/errors.explain`'s one line, as on the command line.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enigma.app.errors import explain


@dataclass
class Task:
    """One background step: its phases so far, rows done of `total`, and how it ended."""

    kind: str
    total: int = 0
    done: int = 0
    phases: list[str] = field(default_factory=list)
    error: str | None = None
    finished: bool = False
    outcome: Any = None
    """What the step returned (an UploadResult, a JobResult); never sent to the browser."""
    link: str | None = None
    """Where the browser goes when the task has finished well."""
    started: float = field(default_factory=time.monotonic)

    def say(self, phase: str) -> None:
        self.phases.append(phase)

    def advance(self, rows: int) -> None:
        self.done += rows

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "total": self.total, "done": self.done,
                "phases": list(self.phases), "error": self.error, "finished": self.finished,
                "link": self.link if self.finished and self.error is None else None,
                "seconds": round(time.monotonic() - self.started, 1)}


class Tasks:
    """The console's background steps by id (random, so that one cannot be guessed)."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def start(self, task: Task, work: Callable[[Task], Any],
              link: Callable[[Any], str]) -> str:
        """Run `work(task)` in a thread; `link(outcome)` is where its page goes after."""
        task_id = secrets.token_hex(8)
        self._tasks[task_id] = task

        def run() -> None:
            try:
                task.outcome = work(task)
                task.link = link(task.outcome)
            except Exception as exc:  # shown to the owner as one line, as the CLI would
                task.error = explain(exc)
            finally:
                task.finished = True

        threading.Thread(target=run, name=f"console-{task.kind}", daemon=True).start()
        return task_id

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)
