"""Node daemons as child processes on this machine, for tests, benchmarks and demos.

Each node runs `python -m enigma.app.node` exactly as an operator would run `enigma node`,
in its own process (its own GIL, its own store lock), and is found through the one line
it prints when ready. Its stderr goes to <home>/node.log, so a chatty node never blocks
on a full pipe and a failed start can be explained.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enigma.ledger import Deployment, Ledger


@dataclass
class NodeProcess:
    """A running node daemon and what it announced when ready."""

    process: subprocess.Popen[str]
    home: Path
    node_id: bytes
    address: str
    port: int
    dht_port: int
    metrics_port: int
    registered: bool

    def peak_rss_mb(self) -> float:
        """The node's peak resident memory so far (Linux VmHWM), in MB: what a party of a
        quorum needed at most, preprocessing and storage included."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise RuntimeError(f"no VmHWM for node process {self.process.pid}")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a supervisor stops a node; wait for the clean exit, return its code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the node disappears without any chance to clean up."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.home / "node.log").read_text()
        return ""


def spawn_node(home: Path, rpc: str, deployment: Path, account: str,
               bootstrap: tuple[str, int] | None = None, register: bool = True,
               housekeeping: float | None = None, timeout: float = 60.0,
               extra: Sequence[str] = ()) -> NodeProcess:
    """Start `enigma node` in a child process and wait for its ready line.

    `extra` are more `enigma node` options (the fault report passes --misbehave there).
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = [sys.executable, "-m", "enigma.app.node", "--home", str(home), "--rpc", rpc,
           "--deployment", str(deployment), "--account", account]
    if bootstrap is not None:
        cmd += ["--bootstrap", f"{bootstrap[0]}:{bootstrap[1]}"]
    if not register:
        cmd.append("--no-register")
    if housekeeping is not None:
        cmd += ["--housekeeping", str(housekeeping)]
    cmd += list(extra)
    log = open(home / "node.log", "w")  # noqa: SIM115 - the child keeps writing to it
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    log.close()
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = ""
    while not line.startswith("node: ready"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            why = (home / "node.log").read_text()[-800:]
            raise RuntimeError(f"node in {home} did not start: {why}")
        if selector.select(timeout=0.2):
            line = process.stdout.readline()
    fields = dict(item.split("=", 1) for item in line.split()[2:])
    return NodeProcess(process, home, bytes.fromhex(fields["id"]), fields["address"],
                       int(fields["service"].rpartition(":")[2]), int(fields["dht"]),
                       int(fields["metrics"]), fields["registered"] == "True")


def spawn_nodes(root: Path, rpc: str, deployment: Path, accounts: Sequence[str],
                **kw: Any) -> list[NodeProcess]:
    """One node per account, in `root/node<i>`, all joining the DHT through the first;
    if one fails to start, the ones already running are stopped."""
    nodes: list[NodeProcess] = []
    try:
        for i, account in enumerate(accounts):
            boot = ("127.0.0.1", nodes[0].dht_port) if nodes else None
            nodes.append(spawn_node(root / f"node{i}", rpc, deployment, account, boot, **kw))
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes: Sequence[NodeProcess]) -> None:
    """SIGTERM every node at once (a paused one is woken first), then wait for each."""
    for n in nodes:
        if n.process.poll() is None:
            with contextlib.suppress(OSError):
                n.process.send_signal(signal.SIGCONT)
                n.process.send_signal(signal.SIGTERM)
    for n in nodes:
        n.terminate()


def deploy(rpc: str, account: str, path: Path) -> Deployment:
    """Deploy the contracts from `account` and save where they are to `path`."""
    deployment = Ledger.connect(rpc, account).deploy()
    deployment.save(path)
    return deployment
