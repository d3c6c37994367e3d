"""End-to-end job benchmark: mean and variance of one column, from shared data to the owner.

A chain in this process, node daemons in their own processes, one owner. The table
(one integer column, `--rows` rows, one chunk per quorum unless `--chunk-rows`) is
shared onto every node first (timed apart, as `share_seconds`); then one job runs the
script below on the quorum the ledger draws, and the owner checks and accepts the result: that is
`seconds` (posting, the quorum's conversion of storage shares, the MPC run with the
INSECURE test dealer, sealing, commitments, the owner's checks, settlement).
`plain_seconds` is numpy's mean and variance of the same column in this process.

Prints one JSON line per run:
{"bench": "e2e", "workload", "rows", "quorums", "seconds", "plain_seconds", "ratio", ...}

`--quorums Q` (default 4) runs the job with network reduction: the chunks are split into
Q groups, each on its own chunk quorum (a sub-job on the ledger), and a reducing quorum
finishes (`app.jobs._run_split`); `quorums` in the output counts the chunk quorums.
`--quorums 0` runs the whole job on one quorum (the single-quorum variance refuses beyond
about 3 10^4 rows of this column: its scatter needs n^2 (500 2^16)^2 < 2^85).
With fewer than 3 (Q + 1) nodes the quorums overlap: every node of the default 3 is in
every quorum, so the 2 cores run Q chunk jobs and the reduction in 3 processes.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from enigma.app.jobs import run_job, sign_script
from enigma.app.localnet import deploy, spawn_node
from enigma.app.owner import Owner
from enigma.lang.schema import Schema
from enigma.ledger import Ledger, start_devchain

SCRIPT = "x = data.x\nreveal(mean(x), 'mean')\nreveal(variance(x), 'variance')\n"
SCHEMA = {"name": "bench", "columns": [{"name": "x", "type": "int", "min": 0, "max": 1000}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--quorums", type=int, default=4)
    parser.add_argument("--chunk-rows", type=int,
                        help="rows per stored chunk (default: rows / quorums, one chunk a quorum)")
    args = parser.parse_args()
    schema = Schema.from_dict(SCHEMA)
    x = np.random.default_rng(0).integers(0, 1001, args.rows)
    print("bench e2e: preprocessing by the INSECURE test dealer (benchmark only)", flush=True)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        root = Path(tmp)
        pacsv.write_csv(pa.table({"x": x}), root / "x.csv")
        chain = start_devchain(accounts=args.nodes + 3)
        deployment = root / "deployment.json"
        deploy(chain.url, chain.accounts[0], deployment)
        nodes = []
        try:
            for i in range(args.nodes):
                boot = ("127.0.0.1", nodes[0].dht_port) if nodes else None
                nodes.append(spawn_node(root / f"n{i}", chain.url, deployment,
                                        chain.accounts[1 + i], boot))
            owner = Owner.open(root / "owner", chain.url, deployment, chain.accounts[0],
                               [("127.0.0.1", nodes[0].dht_port)])
            t0 = time.perf_counter()
            owner.share(root / "x.csv", schema, "bench", t=1, n=args.nodes,
                        chunk_rows=args.chunk_rows or -(-args.rows // max(args.quorums, 1)))
            share_seconds = time.perf_counter() - t0
            analyst = Ledger.connect(chain.url, chain.accounts[args.nodes + 1],
                                     owner.ledger.deployment)
            author, sig = sign_script(analyst, SCRIPT)
            for _ in range(args.runs):
                t0 = time.perf_counter()
                out = run_job(owner, "bench", SCRIPT, author=author, signature=sig,
                              quorum_size=args.nodes, dealer_seed=os.urandom(32),
                              chunk_quorums=args.quorums)
                seconds = time.perf_counter() - t0
                t0 = time.perf_counter()
                plain = (x.mean(), x.var())
                plain_seconds = time.perf_counter() - t0
                got = (float(out.results["mean"].value), float(out.results["variance"].value))
                print(json.dumps({
                    "bench": "e2e", "workload": "mean+variance", "rows": args.rows,
                    "quorums": max(1, len(out.sub_jobs)), "quorum_size": args.nodes,
                    "reduction": out.reduction, "seconds": round(seconds, 3),
                    "plain_seconds": round(plain_seconds, 6),
                    "ratio": round(seconds / plain_seconds, 1),
                    "share_seconds": round(share_seconds, 3),
                    "phases": {k: round(v, 3) for k, v in out.timings.items()},
                    "rounds": out.stats["rounds"], "triples": out.stats["triples"],
                    "chunk_triples": out.stats.get("chunk_triples", 0),
                    "abs_error": [abs(got[0] - plain[0]), abs(got[1] - plain[1])],
                    "preprocessing": "insecure-dealer"}), flush=True)
            owner.close()
        finally:
            for node in nodes:
                node.terminate()
            chain.stop()


if __name__ == "__main__":
    main()
