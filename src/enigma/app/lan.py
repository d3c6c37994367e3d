"""A whole network on hosts that are really apart: the chain, each node and the owner on a
host of their own (a network namespace with its own address, app/namespaces.py).

The same entrypoints as on many machines and in the image: the chain is `enigma ledger
serve --host IP`, each node `enigma node` started as the image's entrypoint starts it (its
`node.toml` from `enigma node init`, its address in ENIGMA_NODE_ADVERTISE; peers find it
through its DHT record and its ledger endpoint), both under `ip netns exec`; the owner's
commands run on the owner's host (`LanNet.enigma`), and code of this process that acts
as the owner runs there through `Host.call`. `localnet.cluster` is the same network on
127.0.0.1; accounts are laid out as there: 0 owns, 1..N are the nodes, N+1 the analyst.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enigma.ledger import DevChainProcess, spawn_devchain

from .localnet import AccountLayout, NodeProcess, deploy, spawn_configured_node, stop_nodes
from .namespaces import Host, Lan
from .node_config import CONFIG_FILE

CHAIN_PORT = 8545
#: The settings each node's `init` gets beyond its chain and account: those of the image
#: (Dockerfile, compose.yaml, the port table of docs/node.md); every node has a host of its
#: own, so each can have the same fixed ports.
IMAGE_SETTINGS = ("--bind", "0.0.0.0", "--port", "7001", "--dht-port", "4001",
                  "--metrics-port", "9101", "--job-ports", "7100-7131")


def _absolute_pythonpath() -> dict[str, str]:
    """This environment with a PYTHONPATH relative to this process's folder made absolute,
    so a child started elsewhere (the network's folder) runs the same code."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        str(Path(p).resolve()) for p in path.split(os.pathsep) if p)}


@dataclass
class LanNet(AccountLayout):
    """A running network on a `Lan` (see `lan_network`), accounts as `AccountLayout`
    says."""

    lan: Lan
    root: Path
    chain_host: Host
    owner_host: Host
    hosts: list[Host]
    """Node i runs on `hosts[i]`."""
    chain: DevChainProcess
    deployment: Path
    nodes: list[NodeProcess] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def bootstrap(self, but: int | None = None) -> tuple[str, int] | None:
        """The DHT address of the first running node other than node `but`."""
        for i, n in enumerate(self.nodes):
            if i != but and n.process.poll() is None:
                return self.hosts[i].ip, n.dht_port
        return None

    def start_node(self, i: int, **kw: Any) -> NodeProcess:
        """Node i on its host (its home, key and store; again after a stop: it replaces
        `nodes[i]`), as the image runs it: `enigma node --home DIR ... init` once (the
        ports of docs/node.md, bound to every interface), then `enigma node` with no
        options, its address and DHT bootstrap as ENIGMA_NODE_* variables (compose.yaml's
        way), so a node restarted on a new address advertises that one."""
        host = self.hosts[i]
        opts = {**self.options, **kw}
        home = self.root / f"node{i}"
        if not (home / CONFIG_FILE).exists():
            done = subprocess.run(
                [sys.executable, "-m", "enigma.app.cli", "node", "--home", str(home),
                 "--rpc", self.rpc, "--deployment", str(self.deployment),
                 "--account", self.chain.accounts[1 + i], *IMAGE_SETTINGS, "init"],
                env=_absolute_pythonpath(), capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"enigma node init for node {i} failed: {done.stderr}")
        boot = self.bootstrap(but=i)
        env = {**opts.pop("env", {}), "ENIGMA_NODE_ADVERTISE": host.ip,
               "ENIGMA_NODE_BOOTSTRAP": "" if boot is None else "{}:{}".format(*boot)}
        node = spawn_configured_node(home, launcher=["ip", "netns", "exec", host.ns],
                                     env=env, **opts)
        if i < len(self.nodes):
            self.nodes[i] = node
        else:
            self.nodes.append(node)
        return node

    def enigma(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """`enigma ARGS` on the owner's host, from the network's folder."""
        return subprocess.run(self.owner_host.command([sys.executable, "-m", "enigma.app.cli",
                                                       *args]), env=_absolute_pythonpath(),
                              capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def ledger_args(self, account: str) -> list[str]:
        return ["--rpc", self.rpc, "--deployment", str(self.deployment), "--account", account]

    def stop(self) -> None:
        try:
            stop_nodes(self.nodes)
        finally:
            self.chain.stop()


@contextmanager
def lan_network(root: Path, nodes: int = 3, *, spare: int = 1, delay_line: bool = False,
                **options: Any) -> Iterator[LanNet]:
    """A `Lan` with hosts `chain`, `owner` and `node0`..; the chain serving on its host,
    the contracts deployed from the owner's host, `nodes` node daemons each on its host
    (joining the DHT through the first); every process and namespace gone on exit, also
    when the start fails half-way. `delay_line`: a switch that `lan.shape` can make a WAN
    (namespaces.Lan); `options`: `spawn_configured_node` options of every node (timeout,
    env, extra)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with Lan(delay_line) as lan:
        chain_host, owner_host = lan.add("chain"), lan.add("owner")
        hosts = [lan.add(f"node{i}") for i in range(nodes)]
        lan.wait_reachable()
        chain = spawn_devchain(chain_host.ip, CHAIN_PORT, accounts=nodes + 2 + spare,
                               launcher=["ip", "netns", "exec", chain_host.ns])
        net = LanNet(lan, root, chain_host, owner_host, hosts, chain, root / "deployment.json",
                     options=options)
        try:
            owner_host.call(deploy, chain.url, chain.accounts[0], net.deployment)
            for i in range(nodes):
                net.start_node(i)
            yield net
        finally:
            net.stop()


def quorum_hosts(net: LanNet, addresses: Sequence[str]) -> list[Host]:
    """The hosts of the nodes with these ledger addresses."""
    by_address = {n.address.lower(): net.hosts[i] for i, n in enumerate(net.nodes)}
    return [by_address[a.lower()] for a in addresses]
