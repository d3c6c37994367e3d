"""End-to-end job benchmark: mean and variance of one column, from shared data to the owner.

A chain in this process, node daemons in their own processes, one owner. The table
(one integer column, `--rows` rows, one chunk per quorum unless `--chunk-rows`) is
shared onto every node first (t = nodes - 1 for quorums of every node, the default
threshold for that quorum; timed apart, as `share_seconds`); then one job runs the
script below on the quorum the ledger draws, and the owner checks and accepts the result: that is
`seconds` (posting, the quorum's conversion of storage shares, the HE preprocessing each
quorum makes for itself, the MPC run, sealing, commitments, the owner's checks,
settlement): what a user waits for. `offline_seconds` is the preprocessing's part (the
slowest member's set-up and production, chunk quorums then the reducing quorum),
`online_seconds` the rest; `triples` and `bits` are what the preprocessing made (every
quorum, one member's count each), `online_triples` the Beaver products the scripts used.
`--dealer` replaces the HE preprocessing by the INSECURE test dealer (benchmark only: no
user runs it) and says so in `preprocessing`. `peak_rss_mb` is the largest node process's
peak resident memory (VmHWM, `peak_rss_mb_per_node` each) when the run's line is printed.
`plain_seconds` is numpy's mean and variance of the same column in this process.

Prints one JSON line per run:
{"bench": "e2e", "workload", "rows", "quorums", "seconds", "plain_seconds", "ratio", ...}

`--quorums Q` (default 4) runs the job with network reduction: the chunks are split into
Q groups, each on its own chunk quorum (a sub-job on the ledger), and a reducing quorum
finishes (`app.split_jobs.run_split`); `quorums` in the output counts the chunk quorums.
`--quorums 0` runs the whole job on one quorum (the single-quorum variance refuses beyond
about 3 10^4 rows of this column: its scatter needs n^2 (500 2^16)^2 < 2^85).
With fewer than 3 (Q + 1) nodes the quorums overlap: every node of the default 3 is in
every quorum, so the 2 cores run Q chunk jobs and the reduction in 3 processes.

`--workload kmeans`: k-means (k = 3, 5 iterations) of two integer columns in [0, 1000]
instead; with chunk quorums, each iteration's counts and sums come from the chunks and
the centroids go back to them (docs/reduction.md). `plain_seconds` is numpy's Lloyd from
the same start, `abs_error` the largest centroid difference from it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from enigma.app.localnet import cluster
from enigma.app.orchestration import run_job, sign_script
from enigma.lang.schema import Schema

SCRIPT = "x = data.x\nreveal(mean(x), 'mean')\nreveal(variance(x), 'variance')\n"
SCHEMA = {"name": "bench", "columns": [{"name": "x", "type": "int", "min": 0, "max": 1000}]}
KMEANS = "reveal(kmeans([data.x, data.y], k=3, iters=5), 'centers')\n"
KMEANS_SCHEMA = {"name": "bench", "columns": [
    {"name": "x", "type": "int", "min": 0, "max": 1000},
    {"name": "y", "type": "int", "min": 0, "max": 1000}]}


def _plain_kmeans(table: dict[str, np.ndarray]) -> np.ndarray:
    """numpy's Lloyd from the start the engine uses (on the diagonal of the ranges)."""
    from enigma.lang.plain import lloyd

    steps = (np.arange(3) + 0.5) / 3
    start = np.rint(np.stack([steps * 1000] * 2, axis=1) * 2.0**16) / 2.0**16
    return lloyd(np.stack([table["x"], table["y"]], axis=1).astype(np.float64), start, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--quorums", type=int, default=4)
    parser.add_argument("--chunk-rows", type=int,
                        help="rows per stored chunk (default: rows / quorums, one chunk a quorum)")
    parser.add_argument("--workload", choices=["mean+variance", "kmeans"],
                        default="mean+variance")
    parser.add_argument("--dealer", action="store_true",
                        help="the INSECURE test dealer instead of HE (never a user's path)")
    args = parser.parse_args()
    kmeans = args.workload == "kmeans"
    schema = Schema.from_dict(KMEANS_SCHEMA if kmeans else SCHEMA)
    script = KMEANS if kmeans else SCRIPT
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1001, args.rows)
    columns = {"x": x}
    if kmeans:  # three blobs, so that the clusters mean something
        centre = rng.integers(0, 3, args.rows)
        columns = {c: np.clip(rng.normal(200 + 300 * centre, 80), 0, 1000).astype(np.int64)
                   for c in ("x", "y")}
    print("bench e2e: preprocessing by " + ("the INSECURE test dealer (benchmark only)"
                                           if args.dealer else "HE among each quorum"),
          flush=True)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        root = Path(tmp)
        pacsv.write_csv(pa.table(columns), root / "x.csv")
        with cluster(root, args.nodes) as net:
            owner, nodes = net.owner, net.nodes
            t0 = time.perf_counter()
            shared = owner.share(root / "x.csv", schema, "bench", quorum=args.nodes,
                                 n=args.nodes, chunk_rows=args.chunk_rows
                                 or -(-args.rows // max(args.quorums, 1)))
            share_seconds = time.perf_counter() - t0
            author, sig = sign_script(net.analyst, script)
            for _ in range(args.runs):
                t0 = time.perf_counter()
                out = run_job(owner, "bench", script, author=author, signature=sig,
                              quorum_size=args.nodes,
                              dealer_seed=os.urandom(32) if args.dealer else None,
                              chunk_quorums=args.quorums)
                seconds = time.perf_counter() - t0
                t0 = time.perf_counter()
                if kmeans:
                    want = _plain_kmeans(columns)
                    plain_seconds = time.perf_counter() - t0
                    error = [float(np.abs(out.results["centers"].value - want).max())]
                else:
                    plain = (x.mean(), x.var())
                    plain_seconds = time.perf_counter() - t0
                    got = (float(out.results["mean"].value),
                           float(out.results["variance"].value))
                    error = [abs(got[0] - plain[0]), abs(got[1] - plain[1])]
                print(json.dumps({
                    "bench": "e2e", "workload": args.workload, "rows": args.rows,
                    "quorums": max(1, len(out.sub_jobs)), "quorum_size": args.nodes,
                    "reduction": out.reduction, **_offline(out, seconds),
                    "plain_seconds": round(plain_seconds, 6),
                    "ratio": round(seconds / plain_seconds, 1),
                    "share_seconds": round(share_seconds, 3),
                    "phases": {k: round(v, 3) for k, v in out.timings.items()},
                    "rounds": out.stats["rounds"],
                    "online_triples": out.stats["triples"]  # one member per quorum
                    + out.stats.get("chunk_triples", 0) // args.nodes,
                    "abs_error": error,
                    "preprocessing": "INSECURE test dealer (benchmark only)" if args.dealer
                    else "he (no trusted party), counted",
                    "peak_rss_mb": max(rss := [n.peak_rss_mb() for n in nodes]),
                    "peak_rss_mb_per_node": rss,
                    "threshold": shared.threshold.as_json(),
                    "authentication": _authentication(out.timings, seconds, shared)}),
                    flush=True)


def _offline(out: Any, seconds: float) -> dict[str, Any]:
    """Seconds split into the preprocessing's part and the rest, and what it made."""
    t = out.timings
    offline = t.get("node.offline", 0.0) + t.get("chunk.offline", 0.0) \
        + t.get("reduce.offline", 0.0)
    made = dict(out.stats.get("prep", {}).get("produced", {}))
    for kind, n in out.stats.get("chunk_produced", {}).items():
        made[kind] = made.get(kind, 0) + n
    return {"offline_seconds": round(offline, 3), "online_seconds": round(seconds - offline, 3),
            "seconds": round(seconds, 3), "triples": made.get("triples", 0),
            "bits": made.get("bits", 0)}


def _authentication(timings: dict[str, float], seconds: float, shared: Any) -> dict[str, Any]:
    """What checking the inputs against the owner's tags costs in this run.

    Measured: the quorum's tag check (slowest member, every quorum that read storage) and
    the input round of values and tags together; tags are half of that input (the same
    size as the values), so half of it is counted. Stored bytes: every holder's shares,
    with and without the tags' shares."""
    check = max((v for k, v in timings.items() if k.endswith(".tag_check")), default=0.0)
    inputs = max((v for k, v in timings.items() if k.endswith(".input")), default=0.0)
    cost = check + inputs / 2
    return {"seconds": round(cost, 3), "job_seconds_without": round(seconds - cost, 3),
            "tag_check_seconds": round(check, 3), "input_seconds": round(inputs, 3),
            "share_tag_seconds": shared.timings.get("tags", 0.0),
            "stored_bytes": shared.stored_bytes,
            "stored_bytes_without": shared.stored_bytes - shared.tag_bytes}


if __name__ == "__main__":
    main()
