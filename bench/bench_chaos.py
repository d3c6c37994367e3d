"""The soak under faults, longer than the test's: `--steps` faults around as many jobs.

A chain, `--nodes` node processes and one owner (`app/chaos.py`); each step kills,
pauses, corrupts, pesters with strangers or restarts one node around one job, then
checks the invariants. By default the jobs run on the HE preprocessing, as a user's
would (`--dealer`: the INSECURE test dealer, faster). `seconds` is the whole soak,
network start included; `plain_seconds` is numpy's two statistics of the same table,
`ratio` the soak's seconds per job over it.

Prints one JSON line:
{"bench": "chaos", "jobs", "faults", "wrong_results", "honest_suspended", "stuck_escrow",
 "max_rss_mb", "rss_budget_mb", "refunded", "seconds", "plain_seconds", "ratio", ...}
and, with `--verbose`, one line per step on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from enigma.app import chaos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rows", type=int, default=240)
    ap.add_argument("--dealer", action="store_true",
                    help="INSECURE test dealer instead of HE preprocessing (faster)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    say = (lambda s: print(s, file=sys.stderr, flush=True)) if args.verbose else None
    with tempfile.TemporaryDirectory(prefix="enigma-chaos-") as tmp:
        report = chaos.run(Path(tmp), args.steps, nodes=args.nodes, rows=args.rows,
                           dealer=args.dealer, say=say)
        table = pacsv.read_csv(Path(tmp) / "people.csv")
        t0 = time.perf_counter()
        np.mean(table.column("age").to_numpy())
        np.sum(table.column("tenure").to_numpy())
        plain = time.perf_counter() - t0
    out = {"bench": "chaos", **report.summary(), "nodes": args.nodes, "rows": args.rows,
           "preprocessing": "dealer (INSECURE)" if args.dealer else "he",
           "plain_seconds": plain,
           "ratio": round(report.seconds / max(report.jobs, 1) / max(plain, 1e-9), 1)}
    print(json.dumps(out))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
