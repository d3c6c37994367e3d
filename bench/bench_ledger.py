"""Ledger throughput: transactions per second for each step of a job's life.

Prints one JSON line per (backend, op):
    {"bench": "ledger", "op": "register"|"post_job"|"commit"|"settle", "backend":
     "eth-tester"|"anvil", "tx_per_second": ..., "n": ..., "gas_per_tx": ...}
Each op is timed end to end through the client (gas estimate, send, receipt), as a
node would see it.  anvil is skipped with a note on stderr when it cannot be installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from eth_account import Account
from eth_utils import keccak

from enigma.ledger import Ledger, LedgerParams, Policy, personal_sign, script_hash, start_devchain
from enigma.ledger.anvil import AnvilUnavailable, start_anvil

QUORUM = 3


@contextmanager
def chain(backend: str, accounts: int) -> Iterator[tuple[str, list[str]]]:
    if backend == "eth-tester":
        with start_devchain(accounts=accounts) as server:
            yield server.url, server.accounts
    else:
        with start_anvil(accounts=accounts) as server:
            yield server.url, server.accounts


def timed(ledger: Ledger, ops: list[Callable[[], object]]) -> tuple[float, float]:
    """(tx/s, mean gas per transaction) for running `ops`, one transaction each."""
    first = ledger.w3.eth.block_number + 1
    start = time.perf_counter()
    for op in ops:
        op()
    elapsed = time.perf_counter() - start
    last = ledger.w3.eth.block_number
    gas = sum(ledger.w3.eth.get_block(b)["gasUsed"] for b in range(first, last + 1))
    return len(ops) / elapsed, gas / len(ops)


def run(backend: str, nodes: int, jobs: int) -> list[dict[str, object]]:
    with chain(backend, nodes + 2) as (url, accounts):
        admin = Ledger.connect(url, accounts[0])
        deployment = admin.deploy(LedgerParams(min_deposit=10**15))
        members = [Ledger.connect(url, a, deployment) for a in accounts[2 : 2 + nodes]]
        owner = Ledger.connect(url, accounts[1], deployment)
        results: dict[str, tuple[int, tuple[float, float]]] = {}
        register = [
            (lambda m=m, i=i: m.register_node(f"tcp://10.0.0.{i}:5000", keccak(bytes([i])), 10**15))
            for i, m in enumerate(members)
        ]
        results["register"] = (nodes, timed(admin, register))
        holders = [m.address for m in members[:QUORUM]]
        dataset = owner.post_dataset(
            keccak(b"dht"), keccak(b"schema"), holders, [keccak(b"c")] * QUORUM, Policy.OPEN, 10**6
        )
        author = Account.from_key(keccak(b"bench author"))
        digest = script_hash(b"mean(t.x)")
        sig = personal_sign(author.key, digest)
        posted: list[int] = []
        post = [
            (
                lambda: posted.append(
                    owner.post_job(dataset, digest, author.address, sig, QUORUM, 8, 1000).job_id
                )
            )
            for _ in range(jobs)
        ]
        results["post_job"] = (jobs, timed(admin, post))
        by_address = {m.address: m for m in members}
        commit = [
            (
                lambda j=j, q=q: by_address[q].commit_result(
                    j, keccak(q.encode()), bytes(32), 8, 1000
                )
            )
            for j in posted
            for q in owner.job(j).quorum
        ]
        results["commit"] = (len(commit), timed(admin, commit))
        settle = [(lambda j=j: owner.accept(j)) for j in posted]
        results["settle"] = (jobs, timed(admin, settle))
    return [
        {
            "bench": "ledger",
            "op": op,
            "backend": backend,
            "tx_per_second": round(tps, 2),
            "n": n,
            "gas_per_tx": round(gas),
        }
        for op, (n, (tps, gas)) in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20, help="nodes to register")
    parser.add_argument("--jobs", type=int, default=20, help="jobs to post, commit and settle")
    parser.add_argument("--backend", choices=["eth-tester", "anvil"], action="append")
    args = parser.parse_args()
    for backend in args.backend or ["eth-tester", "anvil"]:
        try:
            lines = run(backend, args.nodes, args.jobs)
        except AnvilUnavailable as exc:
            print(f"bench_ledger: {backend} skipped: {exc}", file=sys.stderr)
            continue
        for line in lines:
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
