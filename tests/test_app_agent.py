"""The owner's agent (app/agent.py): a command typed in a terminal runs in the warm agent of
the context's network with the caller's directory and environment, prints what it would
have printed itself, exits with its code, and serves no other user."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from enigma.app import agent, forwarding
from enigma.app.context import Context


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory):
    """A context whose network home has a running agent (no chain: the commands below fail
    the way they would without one)."""
    home = tmp_path_factory.mktemp("net")
    Context(rpc="http://127.0.0.1:9", deployment=str(home / "deployment.json"),
            network_home=str(home)).save(home / "context.json")
    pid = agent.spawn(home, home / "agent.log")
    yield home, pid
    os.kill(pid, 15)


def enigma(args: list[str], cwd: Path, home: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enigma.app.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ENIGMA_CONTEXT": str(home / "context.json"),
                               **env})


def served(home: Path) -> list[str]:
    return [line for line in (home / "agent.log").read_text().splitlines()
            if line.startswith("enigma agent: ran")]


def test_a_forwarded_command_prints_and_exits_as_it_would_without_the_agent(network, tmp_path):
    home, _ = network
    work = tmp_path / "work"
    (work / "net").mkdir(parents=True)
    (work / "net" / "network.json").write_text("{not json")
    before = len(served(home))
    via = enigma(["status", "--home", "net"], work, home)
    assert len(served(home)) == before + 1  # the agent ran it, in the caller's directory
    alone = enigma(["status", "--home", "net"], work, home, ENIGMA_NO_AGENT="1")
    assert len(served(home)) == before + 1
    assert via.returncode == alone.returncode == 1
    assert via.stdout == alone.stdout
    assert via.stderr == alone.stderr and "network.json is damaged" in via.stderr


def test_commands_the_agent_does_not_run_stay_in_their_own_process(network, tmp_path):
    home, _ = network
    before = len(served(home))
    out = enigma(["context", "--json"], tmp_path, home)
    assert out.returncode == 0 and json.loads(out.stdout)["network_home"] == str(home)
    assert len(served(home)) == before
    (tmp_path / "s.py").write_text("reveal(count(data.age), 'n')\n")
    keyed = enigma(["sign", "s.py", "--key-env", "MY_KEY"], tmp_path, home, MY_KEY="00" * 32)
    assert len(served(home)) == before  # the key is in this environment, not the agent's
    assert keyed.returncode == 2 and "deployment.json' does not exist" in keyed.stderr


def test_a_stale_socket_means_running_without_the_agent(tmp_path):
    Context(rpc="http://127.0.0.1:9", deployment=str(tmp_path / "d.json"),
            network_home=str(tmp_path)).save(tmp_path / "context.json")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(forwarding.socket_path(tmp_path)))
    stale.close()  # the file stays, nobody listens
    out = enigma(["status", "--home", str(tmp_path / "none")], tmp_path, tmp_path)
    assert out.returncode == 1 and "no network is running" in out.stderr


def test_a_bad_request_is_refused_with_a_reason(network):
    home, _ = network
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(forwarding.socket_path(home)))
        s.sendall(json.dumps({"argv": ["up"], "cwd": "/", "env": {}}).encode() + b"\n")
        replies = [json.loads(line) for line in s.makefile("rb")]
    assert replies[-1] == {"x": 2} and "not run by the agent" in replies[0]["e"]


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_another_users_process_is_refused():
    home = Path(tempfile.mkdtemp(prefix="enigma-agent-", dir="/tmp"))
    pid = agent.spawn(home, home / "agent.log")
    try:
        os.chmod(home, 0o755)
        os.chmod(forwarding.socket_path(home), 0o777)  # even where the file lets it in
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.close(read)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(forwarding.socket_path(home)))
                    s.sendall(json.dumps({"argv": ["status"], "cwd": "/", "env": {}}).encode()
                              + b"\n")
                    os.write(write, s.makefile("rb").read())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as r:
            replies = [json.loads(line) for line in r.read().splitlines()]
        os.waitpid(child, 0)
        assert replies[-1] == {"x": 1} and "another user" in replies[0]["e"]
    finally:
        os.kill(pid, 15)
        shutil.rmtree(home, ignore_errors=True)


def test_the_socket_is_the_owners_alone(network):
    home, _ = network
    fresh = home / "fresh"
    fresh.mkdir()
    pid = agent.spawn(fresh, fresh / "agent.log")
    try:
        assert oct(forwarding.socket_path(fresh).stat().st_mode & 0o777) == "0o600"
    finally:
        os.kill(pid, 15)
