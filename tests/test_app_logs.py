"""Logging: the level and format a command asks for, JSON lines a collector can read, and
the DHT's and chain client's chatter kept off the user's terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import subprocess
import sys

import pytest

from enigma.app.logs import NOISY, configure, quiet_libraries

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
PROBE = """
import logging, sys
from enigma.app.cli import main
from enigma.app.logs import configure

@main.command("probe")
def probe():
    logging.getLogger("enigma.app.node_jobs").info(
        "job %d: mesh took %.3f s", 7, 0.25, extra={"job": 7, "phase": "mesh", "seconds": 0.25})
    logging.getLogger("enigma.app.node_jobs").debug("job 7: details")
    logging.getLogger("rpcudp.protocol").error("Did not receive reply for msg id %s", "x")
    logging.getLogger("web3.manager").warning("retrying")

main(sys.argv[1:], standalone_mode=False)
"""


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    """What the command line writes on standard error for the probe command."""
    got = subprocess.run([sys.executable, "-c", PROBE, *args, "probe"], capture_output=True,
                         text=True, timeout=60, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC), **(env or {})})
    return got.stderr


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in NOISY}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lv in levels.items():
        logging.getLogger(name).setLevel(lv)


def test_by_default_only_warnings_and_no_library_chatter() -> None:
    err = _run()
    assert "mesh took" not in err and "Did not receive reply" not in err
    assert "retrying" not in err


def test_info_shows_a_jobs_phases_as_text() -> None:
    err = _run("--log-level", "info")
    assert " INFO enigma.app.node_jobs: job 7: mesh took 0.250 s" in err
    assert "details" not in err and "Did not receive reply" not in err


def test_json_lines_carry_the_jobs_fields() -> None:
    err = _run("--log-level", "info", "--log-format", "json")
    record = json.loads(next(line for line in err.splitlines() if "mesh took" in line))
    assert record["level"] == "info" and record["logger"] == "enigma.app.node_jobs"
    assert (record["job"], record["phase"], record["seconds"]) == (7, "mesh", 0.25)
    assert record["time"].endswith("Z")


def test_debug_lets_the_libraries_speak_and_the_environment_sets_the_level() -> None:
    err = _run(env={"ENIGMA_LOG_LEVEL": "debug"})
    assert "job 7: details" in err and "Did not receive reply" in err and "retrying" in err


def test_a_level_that_does_not_exist_is_a_usage_error() -> None:
    got = subprocess.run([sys.executable, "-m", "enigma.app.cli", "--log-level", "loud",
                          "context"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert got.returncode == 2 and "'loud' is not one of" in got.stderr


def test_the_handler_follows_a_swapped_stderr(monkeypatch, capsys) -> None:
    """A test runner gives each command its own stderr and closes it after: the handler
    must write to the stderr of the moment, not to a closed one."""
    configure("info")
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("enigma.probe").info("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("enigma.probe").info("two")
    assert "two" in second.getvalue() and "one" not in second.getvalue()


def test_configured_twice_keeps_one_handler_and_the_notebook_keeps_its_own() -> None:
    root = logging.getLogger()
    mine = logging.NullHandler()
    root.addHandler(mine)
    configure("info")
    configure("warning", "json")
    assert root.handlers.count(mine) == 1
    assert sum(type(h).__name__ == "_Stderr" for h in root.handlers) == 1
    quiet_libraries()
    assert logging.getLogger("rpcudp").level == logging.CRITICAL
    quiet_libraries(logging.DEBUG)
    assert logging.getLogger("rpcudp").level == logging.NOTSET
