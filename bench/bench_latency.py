"""Latency of one small job on a running network: `enigma run` of a mean over 10^4 rows.

A local network as `enigma up` makes one (the chain in its own process, node daemons in
theirs, HE preprocessing, no dealer), the table shared onto every node, and the quorum's
preprocessing stock filled beforehand (`enigma node prep`): what a user waits for when
the network is up and idle. Then, `--runs` times:

- `cli`: `enigma run SCRIPT --dataset ...` as a user types it (a fresh process: start-up,
  the owner's client, the job, the result printed); `seconds` is its wall time;
- `cli_agent`: the same command with the owner's warm agent that `enigma up` starts
  (app/agent.py) serving it: what a user of `enigma up` waits for;
- `api`: the same job through `orchestration.run_job` in this process; `seconds` is its
  wall time and `phases` the JobResult's per-phase seconds (`times`).

Prints one JSON line per measurement:
{"bench": "latency", "how": "cli"|"cli_agent"|"api", "rows", "seconds", "phases": {...},
 "prep": {...}}
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from enigma.app.agent import spawn as spawn_agent
from enigma.app.context import Context
from enigma.app.localnet import cluster
from enigma.app.orchestration import run_job, sign_script
from enigma.lang.schema import Schema

SCRIPT = "reveal(mean(data.x), 'mean')\n"
SCHEMA = {"name": "bench", "columns": [{"name": "x", "type": "int", "min": 0, "max": 1000}]}


def _cli_run(net, script: Path, author: str, signature: bytes, env: dict | None = None
             ) -> tuple[float, str]:
    """`enigma run` in a fresh process, as a user runs it; (wall seconds, its output)."""
    cmd = [sys.executable, "-m", "enigma.app.cli", "run", str(script), "--dataset", "bench",
           "--author", author, "--signature", signature.hex(), "--home",
           str(net.root / "owner"), "--rpc", net.rpc, "--deployment", str(net.deployment),
           "--account", net.owner_account]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ENIGMA_NO_AGENT": "1"} if env is None else
                          {**os.environ, **env})
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"enigma run failed: {done.stderr[-2000:]}")
    return seconds, done.stdout


def _wait_for_stock(net, members: list[str], timeout: float = 300.0) -> float:
    """Seconds until every node has saved the quorum's stock (the top-up after a job runs
    while the owner settles): each run then starts, as a user's would on an idle network,
    with the stock in place."""
    from enigma.app.stock import QuorumStocks, quorum_id
    from enigma.field import Field

    qid = quorum_id(members, Field().p)
    paths = [QuorumStocks(n.home, Field()).path(qid) for n in net.nodes]
    t0 = time.perf_counter()
    while not all(p.exists() for p in paths):
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("a node did not save its stock")
        time.sleep(0.1)
    return time.perf_counter() - t0


def _fill_stock(net, triples: int, bits: int, inputs: int) -> dict:
    """`enigma node prep` at node 0 with the two others: the quorum's stock."""
    from click.testing import CliRunner

    from enigma.app.node import node_command

    peers = [f"--with={n.address}" for n in net.nodes[1:]]
    got = CliRunner().invoke(node_command, ["prep", "--home", str(net.nodes[0].home),
                                            "--triples", str(triples), "--bits", str(bits),
                                            "--inputs", str(inputs), *peers])
    if got.exit_code != 0:
        raise RuntimeError(f"enigma node prep failed: {got.output}")
    return json.loads(got.output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stock-triples", type=int, default=65536)
    parser.add_argument("--stock-bits", type=int, default=16384)
    parser.add_argument("--stock-inputs", type=int, default=32768,
                        help="input masks per member in stock (a run spends 2 rows + 1)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 1001, args.rows)
    with tempfile.TemporaryDirectory(prefix="enigma-latency-") as tmp:
        root = Path(tmp)
        csv = root / "bench.csv"
        csv.write_text("x\n" + "\n".join(map(str, x)) + "\n")
        script = root / "mean.py"
        script.write_text(SCRIPT)
        extra = ["--prep-ahead", str(args.stock_triples), "--prep-ahead-bits",
                 str(args.stock_bits), "--prep-ahead-inputs", str(args.stock_inputs)]
        with cluster(root, 3, chain_process=True, extra=extra) as net:
            net.owner.share(csv, Schema.from_dict(SCHEMA), "bench", t=2, n=3)
            stock = _fill_stock(net, args.stock_triples, args.stock_bits, args.stock_inputs)
            members = [n.address for n in net.nodes]
            author, signature = sign_script(net.analyst, SCRIPT)
            for _ in range(args.runs):
                waited = _wait_for_stock(net, members)
                t0 = time.perf_counter()
                out = run_job(net.owner, "bench", SCRIPT, author=author, signature=signature)
                seconds = time.perf_counter() - t0
                assert abs(out.results["mean"].value - x.mean()) <= out.results["mean"].error
                print(json.dumps({"bench": "latency", "how": "api", "rows": args.rows,
                                  "seconds": round(seconds, 3),
                                  "stock_wait_seconds": round(waited, 3),
                                  "phases": {k: round(v, 3) for k, v in out.timings.items()},
                                  "stats": out.stats, "stock": stock["in_stock"]}),
                      flush=True)
            net.owner.close()
            for _ in range(args.runs):
                waited = _wait_for_stock(net, members)
                seconds, printed = _cli_run(net, script, author, signature)
                assert f"mean = {round(float(x.mean()), 6)}"[:12] in printed, printed
                print(json.dumps({"bench": "latency", "how": "cli", "rows": args.rows,
                                  "seconds": round(seconds, 3),
                                  "stock_wait_seconds": round(waited, 3)}), flush=True)
            Context(rpc=net.rpc, deployment=str(net.deployment),
                    network_home=str(root)).save(root / "context.json")
            pid = spawn_agent(root, root / "agent.log")
            try:
                for _ in range(args.runs):
                    waited = _wait_for_stock(net, members)
                    seconds, printed = _cli_run(net, script, author, signature,
                                                {"ENIGMA_CONTEXT": str(root / "context.json")})
                    assert f"mean = {round(float(x.mean()), 6)}"[:12] in printed, printed
                    assert "enigma agent: ran run (exit 0)" in (root / "agent.log").read_text()
                    print(json.dumps({"bench": "latency", "how": "cli_agent",
                                      "rows": args.rows, "seconds": round(seconds, 3),
                                      "stock_wait_seconds": round(waited, 3)}), flush=True)
            finally:
                os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
