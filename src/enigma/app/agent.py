"""The owner's agent: a warm `enigma` process that runs the owner's commands for the CLI.

Why: a fresh `enigma run` spends about 2.5 s importing the ledger client (web3,
eth_account, whose key-file module builds BLS pairing tables at import) and the compiler
before it sends its first byte, and a small job on a running network takes less than that.
`enigma up` therefore starts one agent beside the nodes, with those modules loaded; a
command in `FORWARDED` then sends its arguments over a Unix socket and the agent runs it
with the same code and prints into the caller's terminal, so what the user waits for is
the job, not the imports. Without an agent (no network from `enigma up`, a stale socket,
`ENIGMA_NO_AGENT=1`) the command runs in its own process exactly as before.

Who may use it: the socket lives in the network's home (mode 0700, as `up` makes it), and
the agent serves only peers of its own user id (SO_PEERCRED): the same user could read the
owner's key file anyway, so the agent grants nothing new. It runs one command at a time,
in its main thread (commands change the working directory and the environment for their
duration, and some install signal handlers).

The terminal's side is `app/forwarding.py`. Protocol: the client sends one JSON line
{"argv", "cwd", "env"} (env: the caller's ENIGMA_* variables); the agent answers with
JSON lines {"o": text} and {"e": text} (stdout, stderr) and ends with {"x": exit code}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .forwarding import FORWARDED, OPT_OUT, command_of, socket_path

WARM = ("enigma.app.job_commands", "enigma.app.network", "enigma.app.orchestration",
        "enigma.lang.checker")
MAX_REQUEST = 1 << 20


class AgentError(RuntimeError):
    """The agent could not start or refused a request."""


# ------------------------------------------------------------------ server


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _fail(conn: socket.socket, why: str, code: int) -> None:
    """A request the agent does not run: its reason on the caller's stderr, then its code."""
    _send(conn, {"e": f"enigma agent: {why}\n"})
    _send(conn, {"x": code})


class _Stream(io.TextIOBase):
    """A text stream whose writes go to the client as {key: text} lines."""

    def __init__(self, sock: socket.socket, key: str) -> None:
        self._sock, self._key = sock, key

    def write(self, text: str | bytes) -> int:  # click writes bytes where it sees no buffer
        if text:
            words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            _send(self._sock, {self._key: words})
        return len(text)

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)[1]


@contextlib.contextmanager
def _as_caller(cwd: str, env: dict[str, str]) -> Iterator[None]:
    """The caller's working directory and ENIGMA_* variables for one command."""
    saved_env = {k: v for k, v in os.environ.items() if k.startswith("ENIGMA_")}
    saved_cwd = os.getcwd()
    for k in saved_env:
        del os.environ[k]
    os.environ.update({k: v for k, v in env.items() if k.startswith("ENIGMA_")})
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        for k in [k for k in os.environ if k.startswith("ENIGMA_")]:
            del os.environ[k]
        os.environ.update(saved_env)


def _run(argv: list[str]) -> int:
    """One command through the same click group as the terminal's, without its exit."""
    import click

    from . import cli

    try:
        cli.main.main(args=argv, prog_name="enigma", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _serve_one(conn: socket.socket) -> None:
    line = conn.makefile("rb").readline(MAX_REQUEST)  # read first: an unread request resets
    if peer_uid(conn) != os.getuid():
        _fail(conn, "refused: another user's process", 1)
        return
    try:
        request = json.loads(line)
        argv, cwd, env = list(request["argv"]), str(request["cwd"]), dict(request["env"])
        if command_of(argv) not in FORWARDED:
            raise ValueError(f"command {command_of(argv)!r} is not run by the agent")
    except (ValueError, KeyError, TypeError) as exc:
        _fail(conn, f"bad request ({exc})", 2)
        return
    out, err = _Stream(conn, "o"), _Stream(conn, "e")
    started = time.perf_counter()
    with _as_caller(cwd, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _run(argv)
    print(f"enigma agent: ran {command_of(argv)} (exit {code}) in "
          f"{time.perf_counter() - started:.2f} s", flush=True)  # the command, never its words
    _send(conn, {"x": code})


def _warm_estimate() -> None:
    """One cost estimate of a one-line script on synthetic data: `enigma run` estimates
    its job's time limit, and the first estimate in a process pays 1.5 s of compilation
    that every later one skips (0.1 s)."""
    from enigma.lang.cost import estimate
    from enigma.lang.schema import Schema

    schema = Schema.from_dict({"name": "warm", "columns": [
        {"name": "x", "type": "int", "min": 0, "max": 1}]})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        estimate("reveal(mean(data.x), 'm')\n", schema, 16, filename="warm.py")


def serve(path: Path) -> None:
    """Load the heavy modules, listen on `path` (mode 0600) and serve until SIGTERM."""
    import importlib

    for module in WARM:
        importlib.import_module(module)
    _warm_estimate()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(8)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"enigma agent: serving {', '.join(sorted(FORWARDED))} on {path}", flush=True)
    try:
        while True:
            conn, _ = server.accept()
            # a caller that went away mid-command loses its output, nothing else
            with conn, contextlib.suppress(BrokenPipeError, ConnectionResetError):
                try:
                    _serve_one(conn)
                except Exception as exc:  # one command fails, not the agent
                    print(f"enigma agent: a command failed outside its own error handling "
                          f"({type(exc).__name__})", flush=True)
                    _fail(conn, f"{type(exc).__name__}; run it again with {OPT_OUT}=1", 1)
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def spawn(network_home: Path, log: Path, timeout: float = 60.0) -> int:
    """Start the agent for the network in `network_home`; its pid once it serves."""
    import subprocess

    path = socket_path(network_home)
    if len(str(path).encode()) >= 100:  # sun_path holds 108 bytes
        raise AgentError(f"{path} is too long for a Unix socket; commands will run without "
                         "the agent")
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "enigma.app.agent", "--socket",
                                    str(path)], stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                   start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AgentError(f"the agent exited at start (code {process.returncode}); "
                             f"see {log}")
        if path.exists() and "serving" in log.read_text():
            return process.pid
        time.sleep(0.05)
    process.kill()
    raise AgentError(f"the agent did not start within {timeout:.0f} s; see {log}")


def _main() -> None:
    parser = argparse.ArgumentParser(prog="python -m enigma.app.agent")
    parser.add_argument("--socket", type=Path, required=True)
    serve(parser.parse_args().socket)


if __name__ == "__main__":
    _main()
