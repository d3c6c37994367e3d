"""The e2e job and the `bench mpc` workloads between hosts that are apart, over WAN links.

Each node, the chain and the owner run on a host of their own (a network namespace,
app/lan.py); the hosts' links are made WAN links in turn: 1 ms / 10 Gbit, 20 ms /
1 Gbit, 50 ms / 100 Mbit (round-trip time / each host's uplink rate). This kernel has no
`tc netem`, so the delay is held by a user-space switch (app/delayline.py) and the rate
is `tc tbf` on each uplink; the switch carries a few hundred Mbit/s on this loaded
2-core machine, so the fast links are its ceiling (docs/design.md, "Over a WAN").

Workloads: `e2e` is bench e2e's job (mean and variance of one column of `--rows` rows,
shared once, before the clock, onto the three nodes; one quorum), posted, run, checked
and accepted by the owner; the others are bench mpc's, run as three parties on the three
node hosts. The first e2e line includes the quorum's one-time HE set-up (keys, the
session its nodes keep); later lines reuse it. Preprocessing is HE among the quorum
unless `--dealer` (the INSECURE test dealer, online phase only; the lines say so).
One JSON line per (workload, link):
`rtt_ms`, `bandwidth_mbit`, `seconds`, `rounds` (online rounds), `bytes_per_party` (the
most any party's host sent on its uplink during the run: preprocessing, protocol,
ledger and DHT traffic, headers included), `engine_bytes_per_party` (what the MPC engine
counted: online payloads only).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

import bench_e2e
import bench_mpc
from enigma.app import namespaces
from enigma.app.lan import lan_network
from enigma.app.orchestration import run_job, sign_script
from enigma.app.owner import Owner
from enigma.lang.schema import Schema
from enigma.ledger import Deployment, Ledger
from enigma.mpc.runner import run_local
from enigma.prep.commands import HEProviderFactory
from enigma.prep.dealer import DealerFactory

LINKS = [(1.0, 10_000.0), (20.0, 1_000.0), (50.0, 100.0)]
"""(round-trip ms, uplink Mbit/s) of each WAN the issue names."""
WAN_N = {"multiplication": 10**4, "comparison": 10**3, "comparison_10bit": 10**3,
         "sum_mean": 10**4, "dot_product": 10**4, "variance": 10**4, "histogram": 10**3,
         "kmeans_iteration": 10**2}
"""Small sizes: a run is seconds of compute, so that the network's share shows."""
PARTY_PORT = 7100


def _sent(hosts) -> list[int]:
    return [h.tx_bytes() for h in hosts]


def e2e(net, owner, rows: int, dealer: bool) -> dict:
    """One job on the shared column; what a user waits for, from posting to acceptance."""
    def go():
        author, sig = sign_script(Ledger.connect(net.rpc, net.analyst_account,
                                                 Deployment.load(net.deployment)),
                                  bench_e2e.SCRIPT)
        t0 = time.perf_counter()
        out = run_job(owner, "bench", bench_e2e.SCRIPT, author=author, signature=sig,
                      dealer_seed=os.urandom(32) if dealer else None)
        return out, time.perf_counter() - t0

    before = _sent(net.hosts)
    out, seconds = net.owner_host.call(go)
    sent = [b - a for a, b in zip(before, _sent(net.hosts), strict=True)]
    return {"n": rows, "seconds": round(seconds, 3), "rounds": out.stats["rounds"],
            "bytes_per_party": max(sent), "engine_bytes_per_party": out.stats.get("bytes_sent"),
            "phases": {k: round(v, 3) for k, v in out.timings.items()}}


def mpc(net, name: str, n: int, dealer: bool, port: int) -> dict:
    """bench mpc's workload `name` as three parties on the three node hosts."""
    hosts = net.hosts[:3]
    places = [(h.ip, port) for h in hosts]
    prelude = functools.partial(namespaces.enter_party, [h.ns for h in hosts])
    before = _sent(hosts)
    t0 = time.perf_counter()
    if dealer:
        factory = DealerFactory(b"bench-wan-seed-0123456789abcdef!", insecure=True,
                                stockpile=True)
        res = run_local(bench_mpc.party_dealer, args=(name, n, 1), provider_factory=factory,
                        timeout=300, deadline=3600, places=places, prelude=prelude)
        seconds = max(r["times"][0] for r in res)
    else:
        res = run_local(bench_mpc.party_he, args=(name, n), provider_factory=HEProviderFactory(),
                        timeout=300, deadline=3600, places=places, prelude=prelude)
        seconds = max(r["seconds"] for r in res)
    wall = time.perf_counter() - t0
    sent = [b - a for a, b in zip(before, _sent(hosts), strict=True)]
    line = {"n": n, "seconds": round(seconds, 3), "rounds": max(r["rounds"] for r in res),
            "bytes_per_party": max(sent), "engine_bytes_per_party": max(r["bytes"] for r in res),
            "wall_seconds": round(wall, 3)}
    if not dealer:
        line["offline_seconds"] = round(max(r["offline"] for r in res), 3)
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="*", default=["e2e", *bench_mpc.WORKLOADS])
    ap.add_argument("--links", default="all",
                    help="comma-separated indices into 1ms/10Gbit,20ms/1Gbit,50ms/100Mbit")
    ap.add_argument("--n", type=int, help="override the size of every mpc workload")
    ap.add_argument("--rows", type=int, default=1000, help="rows of the e2e job")
    ap.add_argument("--dealer", action="store_true",
                    help="the INSECURE test dealer instead of HE (online phase only)")
    args = ap.parse_args()
    for name in args.workloads:
        if name != "e2e" and name not in bench_mpc.WORKLOADS:
            ap.error(f"unknown workload {name!r}; e2e or one of {', '.join(bench_mpc.WORKLOADS)}")
    links = LINKS if args.links == "all" else [LINKS[int(i)] for i in args.links.split(",")]
    why = namespaces.unavailable()
    if why is not None:
        sys.exit(f"bench wan: {why}")
    namespaces.sweep_stale()
    preprocessing = ("INSECURE test dealer (benchmark only, online phase)" if args.dealer
                     else "he (no trusted party), counted")
    with tempfile.TemporaryDirectory() as tmp, lan_network(Path(tmp), 3,
                                                          delay_line=True, timeout=300) as net:
        root = Path(tmp)
        x = np.random.default_rng(0).integers(0, 1001, args.rows)
        pacsv.write_csv(pa.table({"x": x}), root / "x.csv")
        owner = net.owner_host.call(Owner.open, root / "owner", net.rpc, net.deployment,
                                    net.accounts[0], [net.bootstrap()])
        try:
            if "e2e" in args.workloads:
                net.owner_host.call(owner.share, root / "x.csv",
                                    Schema.from_dict(bench_e2e.SCHEMA), "bench", quorum=3, n=3)
            port = PARTY_PORT
            for rtt, rate in links:
                net.lan.shape(rtt, rate)
                for name in args.workloads:
                    port += 1
                    got = (e2e(net, owner, args.rows, args.dealer) if name == "e2e" else
                           mpc(net, name, args.n or WAN_N[name], args.dealer, port))
                    print(json.dumps({"bench": "wan", "workload": name, "rtt_ms": rtt,
                                      "bandwidth_mbit": rate, **got,
                                      "preprocessing": preprocessing}), flush=True)
        finally:
            net.owner_host.call(owner.close)


if __name__ == "__main__":
    main()
