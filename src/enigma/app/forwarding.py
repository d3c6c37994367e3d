"""The terminal's side of the owner's agent (app/agent.py has the why): hand a command to the
warm agent of the context's network, or say there is none to use.

Apart from the agent itself because the command line imports this on every start (it must
stay light) and the agent imports the command line (to run the commands).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

SOCKET_NAME = "agent.sock"
FORWARDED = frozenset({"run", "sign", "status"})
"""Commands the agent runs: the owner's and analyst's chain commands, whose start-up is
mostly imports. Long-lived or interactive ones (`up`, `node`, `console`) never go there."""
OPT_OUT = "ENIGMA_NO_AGENT"


def socket_path(network_home: str | Path) -> Path:
    return Path(network_home) / SOCKET_NAME


def command_of(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is not a global option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def forward(argv: list[str]) -> int | None:
    """Run `argv` on the agent of the current context's network; None when there is none
    to use (the caller then runs the command itself)."""
    if os.environ.get(OPT_OUT) or command_of(argv) not in FORWARDED:
        return None
    if any(a == "--key-env" or a.startswith("--key-env=") for a in argv):
        return None  # the key stays in this process: never handed to the agent
    from .context import Context  # light: the context module imports nothing heavy

    try:
        ctx = Context.find()
    except Exception:  # a damaged context: the command itself will say what is wrong
        return None
    if ctx is None or not ctx.network_home:
        return None
    path = socket_path(ctx.network_home)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        sock.connect(str(path))
    except OSError:  # a stale socket (the agent is gone): run here
        sock.close()
        return None
    request = {"argv": argv, "cwd": os.getcwd(),
               "env": {k: v for k, v in os.environ.items() if k.startswith("ENIGMA_")}}
    with sock:
        sock.settimeout(None)
        sock.sendall(json.dumps(request).encode() + b"\n")
        return _relay(sock.makefile("rb"))


def _relay(replies: Any) -> int:
    for line in replies:
        message = json.loads(line)
        if "o" in message:
            sys.stdout.write(message["o"])
            sys.stdout.flush()
        elif "e" in message:
            sys.stderr.write(message["e"])
            sys.stderr.flush()
        elif "x" in message:
            return int(message["x"])
    print("enigma: the agent stopped in the middle of the command; run it again with "
          f"{OPT_OUT}=1 to run it without the agent", file=sys.stderr)
    return 1
