"""How Enigma's processes log: a level, text or JSON lines, and the libraries kept quiet.

Why configured once, by the command line (`enigma --log-level`, `enigma node --log-level`):
a module only asks for its logger; the process decides where lines go. Before, nothing was
configured, so a node's INFO lines (its job phases) were dropped and every library's
warnings reached the owner's terminal unformatted.

Why the DHT and the chain client are quieted: rpcudp logs each unanswered datagram at ERROR
("Did not receive reply for msg id ..."), dozens per run when a peer has gone, though the
DHT simply asks another peer; web3 and urllib3 log retries and deprecations. None of it
is for the owner, so below `--log-level debug` those loggers are silenced (`quiet_libraries`,
which the notebook API calls too, without touching the notebook's own handlers).

Why JSON lines (`--log-format json`): a node's log is read by a collector (Loki, Elastic,
journald); one object per line with `time`, `level`, `logger`, `message` and a job's
fields (`job`, `phase`, `seconds`) needs no parsing rules. A log line never holds a
value, a share or a key: only counts, names, ids and timings.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = {"rpcudp": logging.CRITICAL, "kademlia": logging.ERROR, "web3": logging.ERROR,
         "urllib3": logging.ERROR, "asyncio": logging.ERROR}
"""Library logger -> the least severe level it may still show below `--log-level debug`."""
FIELDS = ("job", "phase", "seconds", "role", "outcome", "peer")
"""Attributes a call may pass in `extra=` that the JSON format keeps as fields."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        out.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _Stderr(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when a record comes (a test runner swaps it for each
    command it runs; a handler holding the first one would write to a closed stream)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def quiet_libraries(level: int = logging.WARNING) -> None:
    """Silence the libraries of `NOISY` unless `level` is DEBUG (then they say everything)."""
    for name, floor in NOISY.items():
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else floor)


def configure(level: str = "warning", fmt: str = "text") -> None:
    """Send this process's records at `level` and above to standard error in `fmt`."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(old)  # configured again (a node under `enigma ...`): last wins
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_libraries(root.level)


def log_options(default_level: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--log-level` and `--log-format`, the same on `enigma` and on `enigma node`."""
    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--log-format", type=click.Choice(FORMATS), envvar="ENIGMA_LOG_FORMAT",
                          default="text", show_default=True,
                          help="Log lines as text or as one JSON object per line.")(fn)
        return click.option(
            "--log-level", type=click.Choice(LEVELS, case_sensitive=False),
            default=lambda: os.environ.get("ENIGMA_LOG_LEVEL", default_level),
            show_default=default_level,
            help="Least severe log records shown on standard error (debug also lets the DHT "
                 "and chain libraries speak) [env ENIGMA_LOG_LEVEL].")(fn)
    return apply
