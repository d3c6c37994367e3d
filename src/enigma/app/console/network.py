"""Network: the nodes with their stake and health, accusations and their committee votes,
the owner's balance and claims; all public facts, read from the ledger and the nodes.

Health and metrics come from each node's own `/health` and `/metrics` (app/metrics.py),
whose ports the ledger does not record, and the stock of preprocessing from the public
headers of each node's stock files (`QuorumStocks.counts`); both are known for a network
`enigma up` (or `./run demo --console`) started, from its state file in the context's
network home. Elsewhere the page says they are not known rather than guessing.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, render_template

from enigma.app.network import NetworkError, NetworkState
from enigma.app.stock import QuorumStocks
from enigma.field import Field

if TYPE_CHECKING:
    from .server import Console

PROBE_SECONDS = 2.0
SHOWN_METRICS = ("enigma_node_datasets ", "enigma_node_connections ",
                 "enigma_node_share_received_bytes_total ", "enigma_node_corrupt_reads_total ")


def _probe(port: int) -> dict[str, Any]:
    """A node's health and a few of its counters from its metrics server."""
    base = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=PROBE_SECONDS) as reply:
            healthy = reply.status == 200
        with urllib.request.urlopen(f"{base}/metrics", timeout=PROBE_SECONDS) as reply:
            text = reply.read().decode()
    except OSError:
        return {"health": "unreachable", "metrics": {}}
    metrics = {line.split()[0]: line.split()[1] for line in text.splitlines()
               if line.startswith(SHOWN_METRICS)}
    return {"health": "healthy" if healthy else "unhealthy", "metrics": metrics}


def local_nodes(console: Console) -> dict[str, dict[str, Any]]:
    """Node address -> its metrics port and home, where the context's network home says."""
    home = console.context.network_home
    if home is None:
        return {}
    try:
        state = NetworkState.load(Path(home))
    except NetworkError:
        return {}
    return {n["address"].lower(): n for n in state.nodes}


def stock(home: Path) -> dict[str, int]:
    """Triples, random bits and input masks a node holds in stock, over all its quorums
    (public counts, as its /metrics gives them)."""
    return QuorumStocks(home, Field()).totals()


def overview(console: Console) -> dict[str, Any]:
    ledger = console.network().owner.ledger
    local = local_nodes(console)
    nodes = []
    for name, args in ledger.events():
        if name != "NodeRegistered":
            continue
        info = ledger.node(args["node"])
        mine = local.get(info.address.lower())
        probe = (_probe(int(mine["metrics_port"])) | {"stock": stock(Path(mine["home"]))}
                 if mine else {"health": "not known", "metrics": {}, "stock": None})
        nodes.append({"info": info, "deposit_eth": info.deposit / 1e18, **probe,
                      "claimable_eth": ledger.claimable(info.address) / 1e18})
    accusations = []
    for i in range(ledger.accusation_count()):
        a = ledger.accusation(i)
        accusations.append({"a": a, "status": a.status.name.lower(),
                            "stage": "voting" if a.disputed else "challenge period"})
    return {"nodes": nodes, "accusations": accusations, "owner": ledger.address,
            "balance_eth": ledger.balance() / 1e18,
            "claimable_eth": ledger.claimable() / 1e18, "probed": bool(local)}


def register(app: Flask, console: Console) -> None:
    @app.route("/network")
    def network() -> Any:
        return render_template("network.html", **overview(console))
