"""`./run demo`: the whole system on this machine, or `demo foundations`: secret sharing alone.

The system demo (the default) starts a local network of 5 nodes (embedded chain,
contracts, DHT), shares two real datasets about people as their owner, has an analyst
sign two example scripts, runs them as jobs on quorums drawn by the ledger with the HE
preprocessing (no trusted party; `--insecure-dealer` swaps in the test dealer and says so),
shows the owner each result beside the plaintext answer and what each job's
preprocessing produced, shows the ledger's record of the jobs, and stops the network.

The foundation demo splits the ages in `data/benefits.csv` among three parties, shows
each party's share to look uniform, adds the shares locally (sharing is linear), and
shows that only the recombination reveals the total, and the column.
"""

from __future__ import annotations

import csv
import math
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import click
import numpy as np

from enigma.field import Field, FixedEncoding, IntEncoding
from enigma.lang.checker import check
from enigma.lang.plain import run_plain
from enigma.lang.results import frame as result_frame
from enigma.lang.schema import Schema
from enigma.ledger import Ledger
from enigma.sharing import additive, shamir

from .attempt import JobResult
from .logs import configure
from .network import LocalNetwork
from .orchestration import run_job, sign_script
from .owner import Owner

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "benefits.csv"
#: (dataset, data file, schema, script) of the system demo's jobs. All run on the HE
#: preprocessing (no trusted party). Why not the k-means of examples/clusters.py by
#: default: each row and iteration costs k - 1 comparisons of 48-bit distances, about
#: 30 ms of HE production here (bits for the comparison masks dominate), so 4,877 rows
#: and 5 iterations need about 12 minutes on this 2-core machine (`--clustering` adds it).
JOBS = [("acs12", "acs12.csv", "acs12.yaml", "average_age.py"),
        ("benefits", "benefits.csv", "benefits.yaml", "regression.py")]
CLUSTERING = ("benefits", "benefits.csv", "benefits.yaml", "clusters.py")


def load_column(path: pathlib.Path, name: str) -> list[str]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or name not in reader.fieldnames:
            raise SystemExit(f"{path}: no column {name!r} (columns: {reader.fieldnames})")
        return [row[name] for row in reader]


def bit_balance(field: Field, share: np.ndarray) -> float:
    """Fraction of one bits in the low 126 bits of every element: 0.5 for uniform data."""
    words = share.reshape(-1, 2)
    low = np.ascontiguousarray(words[:, 0])
    high = np.ascontiguousarray(words[:, 1] & np.uint64((1 << 62) - 1))
    ones = int(np.unpackbits(low.view(np.uint8)).sum()) + int(
        np.unpackbits(high.view(np.uint8)).sum())
    return ones / (words.shape[0] * 126)


def foundations() -> int:
    """The foundation demo; 0 when every check holds."""
    t0 = time.perf_counter()
    field = Field()
    print("Enigma foundation demo: secret sharing on a real dataset")
    print(f"  dataset: {DATA.relative_to(DATA.parents[1])} (U.S. CPS displaced workers, "
          "see data/README.md)")
    print(f"  field:   Z_p with p = 2^127 - 1 ({field.bits} bits)\n")

    ages = np.array([int(v) for v in load_column(DATA, "age")], dtype=np.int64)
    rr = np.array([float(v) for v in load_column(DATA, "rr")])
    age_enc = IntEncoding(0, 120)
    rr_enc = FixedEncoding(frac_bits=16, lo=0.0, hi=1.0)
    secret = age_enc.encode(field, ages)
    print(f"1. The owner encodes {ages.size} ages (integers in [0, 120]) and splits them "
          "into 3 additive shares.")
    shares = additive.split(field, secret, 3)

    print("2. Each share alone is uniformly random (a node sees only its own):")
    for i, s in enumerate(shares):
        corr = np.corrcoef(s[:, 1].astype(np.float64), ages)[0, 1]
        print(f"   party {i}: one-bit fraction {bit_balance(field, s):.4f} (uniform: 0.5), "
              f"correlation of high words with the ages {corr:+.3f}")
    first = bytes(field.to_bytes(shares[0][:1])).hex()
    print(f"   (demo only, showing what a share looks like: party 0's share of row 0 is "
          f"0x{first[:16]}...; a real node never prints one)")

    print("3. Sharing is linear: each party sums its own shares, no communication:")
    partial = [field.sum(s) for s in shares]
    total = int(age_enc.decode(field, additive.combine(field, partial)[None])[0])
    mean = total / ages.size
    print(f"   recombined sum of ages {total}, mean {mean:.4f}; numpy says "
          f"{ages.sum()}, {ages.mean():.4f}")

    back = age_enc.decode(field, additive.combine(field, shares))
    ok_additive = bool(np.array_equal(back, ages))
    print(f"4. Recombining all 3 shares gives back every age exactly: {ok_additive}")

    rr_secret = rr_enc.encode(field, rr)
    st = shamir.share(field, rr_secret, t=1, n=3)
    pairs_ok = []
    for pair in [(1, 2), (1, 3), (2, 3)]:
        got = rr_enc.decode(field, shamir.reconstruct(field, {j: st[j - 1] for j in pair}, t=1))
        pairs_ok.append(float(np.max(np.abs(got - rr))) <= rr_enc.error)
    print("5. Storage sharing, Shamir 2-of-3 of the replacement rates (fixed point, 16 bits):")
    print(f"   every pair of holders reconstructs within {rr_enc.error:.1e}: {all(pairs_ok)}; "
          "one holder alone learns nothing")

    ok = ok_additive and total == int(ages.sum()) and all(pairs_ok) and math.isfinite(mean)
    print(f"\n{'OK' if ok else 'FAILED'}: shares reconstruct to the original data "
          f"({time.perf_counter() - t0:.2f} s)")
    return 0 if ok else 1


class Ticker:
    """A progress line for a step whose length is unknown: elapsed seconds, on stderr."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.perf_counter()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.5):
            self._draw()

    def _draw(self, end: str = "") -> None:
        if not end and not sys.stderr.isatty():
            return  # a log file gets the final line only
        elapsed = time.perf_counter() - self.start
        dots = "#" * (30 if end else min(29, int(elapsed)))  # full once the step is done
        print(f"\r   {self.label:<34} [{dots:<30}] {elapsed:5.1f} s", end=end,
              file=sys.stderr, flush=True)

    def stop(self, note: str = "") -> float:
        self._done.set()
        self._thread.join()
        self._draw(end=f" {note}\n")
        return time.perf_counter() - self.start


def _bar(label: str, total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A progress bar over `total` units (rows shared); returns (update, finish)."""
    start = time.perf_counter()

    def update(done: int, final: bool = False) -> None:
        if not final and not sys.stderr.isatty():
            return
        filled = int(30 * min(done, total) / max(total, 1))
        print(f"\r   {label:<34} [{'#' * filled:<30}] {done}/{total} rows", end="",
              file=sys.stderr, flush=True)

    def finish() -> None:
        update(total, final=True)
        print(f" {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)

    return update, finish


def _compare(out: JobResult, plain: dict) -> bool:
    """Print each result beside the plaintext answer; True if all lie within their bounds."""
    ok = True
    for name, r in out.results.items():
        ref = np.asarray(plain[name].value, dtype=np.float64)
        got = np.asarray(r.value, dtype=np.float64)
        diff = float(np.max(np.abs(got - ref))) if got.size else 0.0
        bound = float(np.max(r.error)) + 2.0**-16
        good = diff <= bound
        ok &= good
        beside = result_frame(r, name).rename(columns={name: "MPC"}).assign(
            plain=ref.reshape(-1))  # labelled by group, or by the name of a single value
        shown = beside[["MPC", "plain", "error"]].to_string(float_format=lambda v: f"{v:.6g}")
        print(f"   {name}:\n" + "\n".join("      " + line for line in shown.splitlines())
              + f"\n      |difference| {diff:.1e} <= bound {bound:.1e}: {good}")
    return ok


def _ledger_record(ledger: Ledger, quorum_members: set[str]) -> None:
    """The public record of the jobs: postings, commitments, payments."""
    names = {"JobPosted", "ResultCommitted", "JobAccepted", "DatasetPosted"}
    for name, args in ledger.events():
        if name not in names:
            continue
        if name == "DatasetPosted":
            print(f"   DatasetPosted    dataset {args['dataset_id']} by {args['owner'][:10]}...")
        elif name == "JobPosted":
            quorum = ", ".join(a[:10] + "..." for a in args["quorum"])
            print(f"   JobPosted        job {args['job_id']} on dataset {args['dataset_id']}, "
                  f"quorum [{quorum}]")
        elif name == "ResultCommitted":
            print(f"   ResultCommitted  job {args['job_id']} by {args['node'][:10]}..., "
                  f"commitment {bytes(args['commitment']).hex()[:16]}...")
        else:
            print(f"   JobAccepted      job {args['job_id']}: {args['to_nodes'] / 1e18:.6f} ETH to "
                  f"the nodes, reward {args['reward'] / 1e18:.6f} ETH to the author, refund "
                  f"{args['refund'] / 1e18:.6f} ETH")
    for address in sorted(quorum_members):
        print(f"   node {address[:10]}... may claim {ledger.claimable(address) / 1e18:.6f} ETH "
              "(job fees and storage)")


def _preprocessing(out: JobResult) -> str:
    """What the job's preprocessing was and cost, from the members' public counts."""
    prep = out.stats.get("prep", {})
    if out.insecure_dealer or prep.get("provider") == "dealer":
        return "INSECURE test dealer (it could read every input)"
    made, resumed = prep.get("produced", {}), prep.get("resumed", {})
    text = (f"HE among the quorum: {made.get('triples', 0):,} triples, "
            f"{made.get('bits', 0):,} random bits, {made.get('input_masks', 0):,} input masks "
            "produced (comparison masks spend triples too)")
    if resumed.get("triples") or resumed.get("bits"):
        text += (f", {resumed.get('triples', 0):,} triples and {resumed.get('bits', 0):,} bits "
                 "taken from the quorum's stock")
    if prep.get("discarded"):
        text += " (the members' stocks were out of step: discarded)"
    return text


def system(nodes: int = 5, insecure_dealer: bool = False, clustering: bool = False) -> int:
    """The whole system on a local network; 0 when every result matches plaintext."""
    t0 = time.perf_counter()
    jobs = JOBS + ([CLUSTERING] if clustering else [])
    print("Enigma demo: analytics on private data through a local network")
    print("  data: data/acs12.csv (ACS 2012, 2,000 people) and data/benefits.csv (CPS displaced "
          "workers, 4,877 people); sources and licences in data/README.md")
    if insecure_dealer:
        print("  *** INSECURE: --insecure-dealer: every job's preprocessing comes from the test "
              "dealer, which could read every input. Never with real data. ***")
    else:
        print("  preprocessing: homomorphic encryption (BFV) among each quorum's nodes, no "
              "trusted party")
    print()
    home = pathlib.Path(tempfile.mkdtemp(prefix="enigma-demo-"))
    net = None
    ok = True
    try:
        print(f"1. Starting the embedded ledger and {nodes} nodes (logs in {home / 'logs'})")
        tick = Ticker("ledger, contracts, nodes, DHT")
        net = LocalNetwork.start(home, nodes)
        tick.stop(f"{nodes} nodes staked 1 ETH each")
        state = net.state
        deployment = pathlib.Path(state.deployment)
        owner = Owner.open(home / "owner", state.rpc, deployment, state.owner_account,
                           net.bootstrap)
        analyst = Ledger.connect(state.rpc, state.analyst_account, owner.ledger.deployment)
        quorum = min(3, nodes)
        print(f"2. The owner shares both tables {quorum}-of-{nodes} for quorums of {quorum} "
              f"(any {quorum - 1} nodes together learn nothing: only a whole quorum could "
              "read them), onto every node")
        schemas = {}
        for name, data, schema_file, _ in JOBS:
            schema = Schema.load(ROOT / "examples" / schema_file)
            schemas[name] = schema
            update, finish = _bar(f"sharing {data}", schema.rows or 0)
            shared = owner.share(ROOT / "data" / data, schema, name, quorum=quorum, n=nodes,
                                 progress=update)
            finish()
            for warning in shared.threshold.warnings:
                print(f"   warning: {warning}")
        print("3. The analyst signs the scripts (the owner sees the code, never runs it "
              "itself)")
        members: set[str] = set()
        for step, (name, data, _, script_file) in enumerate(jobs, start=4):
            source = (ROOT / "examples" / script_file).read_text()
            author, sig = sign_script(analyst, source)
            how = ("INSECURE test dealer preprocessing" if insecure_dealer else
                   "HE preprocessing")
            print(f"{step}. Job: examples/{script_file} on {name}, quorum of {quorum} drawn "
                  f"on the ledger, {how}")
            tick = Ticker(f"running {script_file}")
            out = run_job(owner, name, source, author=author, signature=sig, reward=10**15,
                          quorum_size=quorum, filename=script_file,
                          dealer_seed=os.urandom(32) if insecure_dealer else None)
            tick.stop(f"job {out.job_id}: {out.stats['rounds']} rounds, "
                      f"{out.stats['triples']} triples used online")
            print(f"   preprocessing: {_preprocessing(out)}")
            members |= set(out.quorum)
            schema = schemas[name]
            plain = run_plain(check(source, schema, script_file), schema,
                              schema.read_csv(ROOT / "data" / data)).results
            print("   the owner's results (nodes saw only shares) beside plaintext numpy:")
            ok &= _compare(out, plain)
        print(f"{len(jobs) + 4}. The ledger's public record (no data, no shares, no results):")
        _ledger_record(owner.ledger, members)
        owner.close()
    finally:
        print(f"{len(jobs) + 5}. Stopping the network")
        if net is not None:
            net.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n{'OK' if ok else 'FAILED'}: every result matches plaintext within its bound "
          f"({time.perf_counter() - t0:.1f} s)")
    if insecure_dealer:
        print("*** INSECURE: this run's preprocessing came from the test dealer "
              "(--insecure-dealer); without it every job runs on HE ***")
    return 0 if ok else 1


_NODES = click.option("--nodes", default=5, show_default=True,
                      help="Nodes of the local network.")
_INSECURE = click.option("--insecure-dealer", is_flag=True,
                         help="INSECURE: every job's preprocessing from the test dealer, which "
                              "could read every input (fast; tests and benchmarks only).")
_CLUSTERING = click.option("--clustering", is_flag=True,
                           help="Add the k-means of examples/clusters.py on benefits.csv (HE: "
                                "about 12 minutes on 2 cores; seconds with --insecure-dealer).")


@click.group("demo", invoke_without_command=True)
@_NODES
@_INSECURE
@_CLUSTERING
@click.option("--console", "console", is_flag=True,
              help="Instead: start the network, share data/benefits.csv and serve the "
                   "owner's web console until Ctrl-C (prints its URL).")
@click.pass_context
def demo(ctx: click.Context, nodes: int, insecure_dealer: bool, clustering: bool,
         console: bool) -> None:
    """The whole system on a local network (default, as `system`), or `foundations`."""
    if ctx.invoked_subcommand is None and console:
        from enigma.app.console.demo import console_demo

        sys.exit(console_demo(nodes, insecure_dealer))
    if ctx.invoked_subcommand is None:
        sys.exit(system(nodes, insecure_dealer, clustering))


@demo.command("foundations")
def foundations_command() -> None:
    """Secret sharing on a real column, no network."""
    sys.exit(foundations())


@demo.command("system")
@_NODES
@_INSECURE
@_CLUSTERING
def system_command(nodes: int, insecure_dealer: bool, clustering: bool) -> None:
    """The whole system: network, owner, analyst, jobs, ledger."""
    sys.exit(system(nodes, insecure_dealer, clustering))


if __name__ == "__main__":  # `./run demo`: logs as `enigma demo` has them (app/logs.py)
    configure()
    demo()
