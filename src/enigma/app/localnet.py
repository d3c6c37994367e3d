"""Local networks on this machine, for tests, benchmarks and the fault reports.

`cluster` is the one way to stand a throwaway network up: a dev chain, the contracts, node
daemons in child processes, an owner and an analyst, all stopped on exit (`enigma up`'s
network in app/network.py is the long-lived one, kept across commands).

Each node runs `python -m enigma.app.node` exactly as an operator would run `enigma node`,
in its own process (its own GIL, its own store lock), and is found through the one line
it prints when ready. Its stderr goes to <home>/node.log, so a chatty node never blocks
on a full pipe and a failed start can be explained.
"""

from __future__ import annotations

import collections
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enigma.ledger import (
    Deployment,
    DevChainProcess,
    DevChainServer,
    Ledger,
    spawn_devchain,
    start_devchain,
)

from .owner import Owner


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
               extra: Sequence[str] = (), env: Mapping[str, str] | None = None,
               launcher: Sequence[str] = ()) -> NodeProcess:
    """Start `enigma node` in a child process and wait for its ready line.

    `extra` are more `enigma node` options (the fault report passes --misbehave there);
    `env` is added to the child's environment only (a test's fault injection variable
    reaches that one node, never the owner in this process); `launcher` is a command the
    node runs under (`ip netns exec NS`: its own host, app/lan.py).
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = [*launcher, sys.executable, "-m", "enigma.app.node", "--home", str(home), "--rpc", rpc,
           "--deployment", str(deployment), "--account", account]
    if bootstrap is not None:
        cmd += ["--bootstrap", f"{bootstrap[0]}:{bootstrap[1]}"]
    if not register:
        cmd.append("--no-register")
    if housekeeping is not None:
        cmd += ["--housekeeping", str(housekeeping)]
    return _launch([*cmd, *extra], home, env, timeout)


def spawn_configured_node(home: Path, *, launcher: Sequence[str] = (),
                          env: Mapping[str, str] | None = None, extra: Sequence[str] = (),
                          timeout: float = 60.0) -> NodeProcess:
    """Start `enigma node` as the image's entrypoint does: no options, ENIGMA_NODE_HOME=home,
    so the settings come from `home/node.toml` (written by `enigma node --home home ...
    init`) under the ENIGMA_NODE_<NAME> variables of `env` (compose.yaml's addresses).
    `extra` options still win over both, as on a command line."""
    cmd = [*launcher, sys.executable, "-m", "enigma.app.cli", "node", *extra]
    return _launch(cmd, home, {**(env or {}), "ENIGMA_NODE_HOME": str(home)}, timeout)


def _unread(selector: selectors.BaseSelector, out: Any) -> str:
    """What the child wrote and nobody read, without waiting: a grandchild (a launcher's)
    may still hold the pipe open, so a plain read() could block forever."""
    data = b""
    while selector.select(timeout=0):
        chunk = os.read(out.fileno(), 65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def _launch(cmd: Sequence[str], home: Path, env: Mapping[str, str] | None,
            timeout: float) -> NodeProcess:
    """Run the node command `cmd`, logging to `home/node.log`, until its ready line."""
    log = open(home / "node.log", "w")  # noqa: SIM115 - the child keeps writing to it
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                               env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
    log.close()
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = ""
    printed: collections.deque[str] = collections.deque(maxlen=3)
    while not line.startswith("node: ready"):
        code = process.poll()
        if code is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            printed.extend(t.strip() for t in _unread(selector, process.stdout).splitlines()
                           if t.strip())
            state = (f"exited with code {code}" if code is not None
                     else f"was not ready after {timeout:.0f} s")
            tail = (home / "node.log").read_text().strip()[-800:]
            said = "; ".join(printed)
            why = tail or (f"its last output: {said}" if said else
                           "it printed nothing and its log is empty (still starting)")
            raise RuntimeError(f"node in {home} {state}: {why}")
        if selector.select(timeout=0.2):
            line = process.stdout.readline()
            if line.strip():
                printed.append(line.strip())
    fields = dict(item.split("=", 1) for item in line.split()[2:])
    return NodeProcess(process, home, bytes.fromhex(fields["id"]), fields["address"],
                       int(fields["service"].rpartition(":")[2]), int(fields["dht"]),
                       int(fields["metrics"]), fields["registered"] == "True")


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


class AccountLayout:
    """The accounts of a network's dev chain, laid out as in `enigma up`: 0 deployed the
    contracts and owns the data, 1..N are the first N nodes, N+1 is the analyst, the rest
    are spare (for nodes a test starts later: a stranger, a juror, a culprit)."""

    chain: DevChainServer | DevChainProcess
    nodes: list[NodeProcess]

    @property
    def rpc(self) -> str:
        return self.chain.url

    @property
    def accounts(self) -> list[str]:
        return list(self.chain.accounts)

    @property
    def owner_account(self) -> str:
        return self.chain.accounts[0]

    @property
    def analyst_account(self) -> str:
        return self.chain.accounts[len(self.nodes) + 1]

    @property
    def spare_accounts(self) -> list[str]:
        return list(self.chain.accounts[len(self.nodes) + 2:])


@dataclass
class Cluster(AccountLayout):
    """A running local network (see `cluster`), accounts as `AccountLayout` says."""

    root: Path
    chain: DevChainServer | DevChainProcess
    deployment: Path
    nodes: list[NodeProcess]
    """`nodes[i]` runs on account 1 + i in `root/node<i>`."""
    owner: Owner
    analyst: Ledger
    """The analyst's ledger client (it signs scripts and is rewarded)."""
    options: dict[str, Any] = field(default_factory=dict)
    """The `spawn_node` options the nodes started with; `respawn` reuses them."""
    _stopped: bool = field(default=False, init=False, repr=False)

    def ledger(self, account: str | None) -> Ledger:
        """A ledger client of its own for `account` (None: read only)."""
        return Ledger.connect(self.rpc, account, self.owner.ledger.deployment)

    def bootstrap(self, but: int | None = None) -> tuple[str, int]:
        """The DHT address of the first node still running (other than `nodes[but]`)."""
        return _first_alive(self.nodes, but)

    def spawn(self, home: Path, account: str, **kw: Any) -> NodeProcess:
        """Another node daemon, joining the DHT through a running node; not in `nodes`,
        so the caller stops it."""
        return spawn_node(home, self.rpc, self.deployment, account, self.bootstrap(), **kw)

    def respawn(self, i: int, **kw: Any) -> NodeProcess:
        """Start node i again on its home (same key and store; new ports unless `kw` says
        otherwise) with the options it first had, `kw` replacing some; it replaces
        `nodes[i]`."""
        node = spawn_node(self.nodes[i].home, self.rpc, self.deployment,
                          self.chain.accounts[1 + i], self.bootstrap(but=i),
                          **{**self.options, **kw})
        self.nodes[i] = node
        return node

    def stop(self) -> None:
        """Close the owner, stop every node at once, stop the chain (once)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.owner.close()
        finally:
            _stop_all(self.chain, self.nodes)


def _first_alive(nodes: Sequence[NodeProcess], but: int | None = None) -> tuple[str, int]:
    alive = [n for i, n in enumerate(nodes) if i != but and n.process.poll() is None]
    if not alive:
        raise RuntimeError("no node of the local network is running")
    return ("127.0.0.1", alive[0].dht_port)


def _stop_all(chain: DevChainServer | DevChainProcess, nodes: Sequence[NodeProcess]) -> None:
    try:
        stop_nodes(nodes)
    finally:
        chain.stop()


@contextmanager
def cluster(root: Path, nodes: int = 3, *, spare: int = 1, chain_process: bool = False,
            env: Mapping[int, Mapping[str, str]] | None = None,
            progress: Callable[[str], None] | None = None,
            **options: Any) -> Iterator[Cluster]:
    """A dev chain with the contracts deployed, `nodes` registered node daemons in
    `root/node<i>` (each joining the DHT through the first), the owner's client in
    `root/owner` and the analyst's; all stopped on exit, also when the start fails
    half-way.

    `spare`: funded accounts beyond owner, nodes and analyst; `chain_process`: the chain
    runs in a child process (its own GIL: a benchmark's owner does not share one with it);
    `env[i]`: environment added to node i only; `options`: `spawn_node` options of every
    node (housekeeping, extra, register, timeout).
    """
    say = progress or (lambda _: None)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    chain = (spawn_devchain if chain_process else start_devchain)(accounts=nodes + 2 + spare)
    accounts, deployment = chain.accounts, root / "deployment.json"
    started: list[NodeProcess] = []
    owner: Owner | None = None
    try:
        deploy(chain.url, accounts[0], deployment)
        for i in range(nodes):
            say(f"starting node {i + 1} of {nodes}")
            started.append(spawn_node(root / f"node{i}", chain.url, deployment, accounts[1 + i],
                                      _first_alive(started) if started else None,
                                      env=(env or {}).get(i), **options))
        owner = Owner.open(root / "owner", chain.url, deployment, accounts[0],
                           [_first_alive(started)])
        net = Cluster(root, chain, deployment, started, owner,
                      Ledger.connect(chain.url, accounts[nodes + 1], owner.ledger.deployment),
                      options)
    except BaseException:
        try:
            if owner is not None:
                owner.close()
        finally:
            _stop_all(chain, started)
        raise
    try:
        yield net
    finally:
        net.stop()
