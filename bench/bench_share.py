"""Owner upload benchmark: a CSV file of 10^6 rows x 5 columns to 3 local node processes.

End to end, from the CSV file on disk to shares durably stored and sealed on every
holder: parse, encode, share (t = 1, n = 3: a weak threshold, any 2 holders read the data,
passed explicitly to keep the measurements of docs/node.md comparable; `"threshold"` in the
output says so), send over the authenticated transport,
store with fsync, post on the ledger, publish in the DHT, seal. The chain and the three
nodes are started first and are not timed; neither is writing the CSV file.

Prints one JSON line per run:
{"bench": "share", "rows", "columns", "nodes", "seconds", "rows_per_second", "threshold",
 "peak_rss_mb_per_node", "authentication", phases...}

`authentication` is what the tags that authenticate the inputs cost: `seconds` making and
sharing them at the owner (`tags`, part of `share`), `seconds_without` the run less that
(their bytes also double what `send` carries and stores), and the share bytes stored on
all holders with and without them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from enigma.app.localnet import cluster
from enigma.lang.schema import Schema

COLUMNS = [
    {"name": "age", "type": "int", "min": 0, "max": 120},
    {"name": "income", "type": "fixed", "min": 0, "max": 1.0e7, "frac_bits": 16},
    {"name": "visits", "type": "int", "min": 0, "max": 10000},
    {"name": "score", "type": "fixed", "min": -1000, "max": 1000, "frac_bits": 16},
    {"name": "zip", "type": "int", "min": 0, "max": 99999},
]


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    table = pa.table({
        "age": rng.integers(0, 121, rows),
        "income": rng.gamma(2.0, 20_000.0, rows).round(2),
        "visits": rng.integers(0, 10_001, rows),
        "score": rng.normal(0, 100, rows).round(3),
        "zip": rng.integers(0, 100_000, rows),
    })
    pacsv.write_csv(table, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=1 << 16)
    args = parser.parse_args()
    schema = Schema.from_dict({"name": "bench", "columns": COLUMNS})
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        root = Path(tmp)
        csv_path = root / "bench.csv"
        write_csv(csv_path, args.rows)
        with cluster(root, args.nodes, spare=0, chain_process=True) as net:
            owner, nodes = net.owner, net.nodes
            for run in range(args.runs):
                t0 = time.perf_counter()
                result = owner.share(csv_path, schema, f"bench{run}", quorum=args.nodes, t=1,
                                     n=args.nodes, weak=True, chunk_rows=args.chunk_rows)
                seconds = time.perf_counter() - t0
                print(json.dumps({
                    "bench": "share", "rows": result.rows, "columns": len(COLUMNS),
                    "nodes": args.nodes, "seconds": round(seconds, 3),
                    "rows_per_second": round(result.rows / seconds),
                    "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
                    "chunks": result.chunks,
                    "threshold": result.threshold.as_json(),
                    "peak_rss_mb_per_node": [n.peak_rss_mb() for n in nodes],
                    "authentication": {
                        "seconds": result.timings["tags"],
                        "seconds_without": round(seconds - result.timings["tags"], 3),
                        "stored_bytes": result.stored_bytes,
                        "stored_bytes_without": result.stored_bytes - result.tag_bytes},
                    **result.timings}), flush=True)


if __name__ == "__main__":
    main()
