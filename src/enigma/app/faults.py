"""`enigma faults`: every fault kind against a real local network, one row per kind.

What one row shows, and how it is measured:

* a chain (the embedded EVM, served over JSON-RPC), two honest node processes and, per
  kind, a third node process started with `--misbehave KIND --insecure-test-faults`; the
  owner shares a tiny table onto the three and runs a job on all three in blame mode on
  the insecure test dealer (`Matrix.run(..., dealer=False)`: on HE). The table is shared
  weak (t = 1 for a quorum of 3: any two holders read it), because the re-run without
  the culprit has only the two honest holders to compute on;
* **detected**: the job's first attempt failed (an abort, a drop-out, or the owner's own
  result check); **identified**: the owner named the misbehaving node, and only it;
* **slashed**: the ledger took its deposit once the owner's signed accusation was
  finalized (proved deviations only; a drop-out or stall is attested, so it is suspended,
  not slashed). The culprit's node software disputes every accusation (a cheater has
  nothing to lose by trying), so each one goes before a committee: three more honest node
  processes, drawn on chain, fetch the evidence file from the job's quorum, replay it and
  vote; **challenge** shows the committee's votes (guilty-not guilty). The matrix settles
  an accusation as soon as every member voted, or moves the dev chain's clock past its
  deadline, so the run never waits out a real challenge period;
* **honest loss**: wei the two honest nodes lost (deposits and claimable balances), which
  must be 0; **recovery**: seconds from posting the failed job to the re-run's checked
  result on a quorum re-drawn without the culprit; **result correct**: that result equals
  numpy's on the plain table; **refunded**: no quorum could finish and the escrow went back.

The network is shared across kinds (one chain, the same honest nodes and jurors, one
owner), so the whole matrix costs one start-up plus one culprit process, two short jobs
and one committee vote per kind. Jobs are drawn among a dataset's holders, so the jurors,
who hold nothing, are never in a job's quorum and always eligible for its committee.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from eth_utils import keccak

from enigma.lang.checker import check
from enigma.lang.interpreter import Revealed
from enigma.lang.plain import run_plain
from enigma.lang.release import Release, ReleasePolicy
from enigma.lang.schema import Schema
from enigma.ledger import (
    AccusationInfo,
    AccusationStatus,
    Ledger,
    LedgerError,
    script_hash,
)
from enigma.ledger.devchain import advance_time
from enigma.mpc.faults import KINDS, RELEASE_KINDS
from enigma.progress import Progress

from .accounts import ledger_options
from .attempt import JobResult
from .culprits import encode_bundle
from .disclosure import set_release
from .evidence import publish_evidence
from .job_facts import JobError
from .localnet import Cluster, NodeProcess, cluster, stop_nodes
from .orchestration import run_job, sign_script

ROWS = 8
SCRIPT = ("reveal(sum(data.a), 'total')\nreveal(variance(data.b), 'spread')\n"
          "reveal(len(data.a), 'rows')\n")  # an exact (public) value too, for exact-lie
SCHEMA = {"name": "faults", "columns": [
    {"name": "a", "type": "int", "label": "private", "min": 0, "max": 100},
    {"name": "b", "type": "int", "label": "private", "min": 0, "max": 100}]}
DP_SCRIPT = ("reveal(sum(data.a), 'total')\n"
             "reveal(count(data.a, where=data.b > 50), 'high')\n"  # 8 rows: released
             "reveal(count(data.a, where=data.b > 90), 'top')\n")  # 4 rows < n_min: suppressed
DP_RELEASE = Release(ReleasePolicy(n_min=5, epsilon_budget=10.0, delta_budget=1e-6), 1.5, 1e-9)
"""The release of a kind that lies about it (RELEASE_KINDS): a differentially private
dataset with a cell to suppress, and the job's spend."""
#: Where each kind strikes: the culprit's n-th sending call, or for the preprocessing
#: kinds its n-th triples request (the first one feeds the variance's products).
AT = {"wrong-mac": 0, "bad-preprocessing": 0}
KEYS = ("kind", "detected", "identified", "slashed", "honest_loss_wei", "recovery_seconds",
        "result_correct", "refunded")
JURORS = 3
"""Honest nodes that hold no data: the committee drawn when a culprit disputes."""
DISPUTE_GRACE = 60.0
"""Seconds the matrix waits for an honest node to dispute a false accusation (it settles
as soon as the committee has voted; an undisputed accusation then counts as guilty). On a
loaded 2-core machine the node's dispute once came 30 s after the accusation, a second
after the matrix had finalized it (most likely while it looked for the file among every
active node, stalling culprits included, before the accuser's push reached it; the cause
is not proved). The real dispute window is far longer than either figure."""
FAST_WATCH = ["--watch-interval", "0.4"]
"""Culprits and jurors look at accusations often, so a dispute is judged in a second or
two; the honest members keep the default (they only finalize)."""


@dataclass
class Row:
    """One kind's outcome (`as_json` has the keys of `enigma faults --json`)."""

    kind: str
    detected: bool
    identified: bool
    slashed: bool
    honest_loss_wei: int
    recovery_seconds: float
    result_correct: bool
    refunded: bool
    verdict: str = ""
    note: str = ""
    challenge: str = ""
    """How the accusation was settled: `undisputed`, or the committee's votes."""

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KEYS}


def _table() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    return {"a": rng.integers(0, 100, ROWS), "b": rng.integers(0, 100, ROWS)}


def _expected(table: dict[str, np.ndarray]) -> dict[str, float]:
    return {"total": float(table["a"].sum()), "spread": float(table["b"].var()),
            "rows": float(ROWS)}


def _correct(results: dict[str, Revealed], table: dict[str, np.ndarray], script: str,
             release: Release | None) -> bool:
    """A job's results against the plain run of `script` on `table`: equal within each
    value's error bound; under `release`, the same cells suppressed (the pass bits are
    exact) and each released cell within 3 noise bounds (a 95 % bound: missed with
    probability about 1e-4 for Laplace noise) of the exact value."""
    if script == SCRIPT and release is None:
        want = {k: np.asarray(v) for k, v in _expected(table).items()}
    else:
        schema = Schema.from_dict(SCHEMA)
        checked = check(script, schema)
        exact = run_plain(checked, schema, table).results
        want = {k: np.asarray(r.value) for k, r in exact.items()}
        if release is not None:
            ref = run_plain(checked, schema, table, release, noise_seed=0).results
            if set(ref) != set(results) or any(
                    not np.array_equal(np.isnan(np.asarray(results[k].value, dtype=float)),
                                       np.isnan(np.asarray(r.value, dtype=float)))
                    for k, r in ref.items()):
                return False
    if set(results) != set(want):
        return False
    for k, v in want.items():
        got = np.asarray(results[k].value, dtype=float)
        slack = np.asarray(results[k].error, dtype=float) + 1e-6
        if release is not None and results[k].noise_bound is not None:
            slack = slack + 3 * np.asarray(results[k].noise_bound, dtype=float)
        kept = ~np.isnan(got)
        if not np.all(np.abs(got - v)[kept] <= np.broadcast_to(slack, got.shape)[kept]):
            return False
    return True


class Matrix:
    """The fault matrix on a running local network (`matrix` makes both); `run(kind)`
    per kind, `close` at the end (the network's own stop follows)."""

    def __init__(self, net: Cluster, timeout: float = 5.0,
                 progress: Callable[[str], None] | None = None) -> None:
        self.net = net
        self.home = net.root
        self.timeout = timeout
        self.say = progress or (lambda _: None)
        self.nodes = net.nodes
        """The two honest holders."""
        self.jurors: list[NodeProcess] = []
        self.culprits: list[NodeProcess] = []
        self.owner = net.owner
        self.last: JobResult | None = None
        """The last job's result (its incidents: who was named, the ledger's answer)."""
        self.settled: list[AccusationInfo] = []
        """Every accusation the matrix settled, as finalized."""
        self._spare = iter(net.spare_accounts[JURORS:])
        self._runs = 0
        try:
            self.say(f"starting {JURORS} juror nodes")
            with ThreadPoolExecutor(JURORS) as pool:
                self.jurors.extend(pool.map(
                    lambda i: self._spawn(f"juror-{i}", net.spare_accounts[i], FAST_WATCH),
                    range(JURORS)))
            self.author, self.signature = sign_script(net.analyst, SCRIPT)
        except BaseException:
            self.close()
            raise

    def _spawn(self, name: str, account: str, extra: Sequence[str] = ()) -> NodeProcess:
        return self.net.spawn(self.home / name, account, extra=extra)

    def _wealth(self, address: str) -> int:
        lg = self.owner.ledger
        return lg.node(address).deposit + lg.claimable(address)

    def run(self, kind: str, attempts: int = 2, misbehave: bool = True,
            dealer: bool = True, release: Release | None = None, script: str = SCRIPT,
            dealer_seed: bytes | None = None) -> Row:
        """One kind: a fresh culprit node, a dataset on it and the honest two, one job
        (`attempts` = 1: no re-run, so the row shows the refund path; `misbehave` False:
        the node gets no --misbehave, the caller injects its fault another way, or none;
        `dealer` False: the job runs on the HE preprocessing, in blame mode all the same).
        With `release`, the dataset gets its policy on the ledger and the job spends its
        ε and δ (`script` must be one the policy admits); the result is correct when it
        suppresses exactly the cells a plain run under the policy does and every released
        cell is within three times its noise bound of the exact value. `dealer_seed`
        fixes the test dealer's seed (and so the noise), for a deterministic test."""
        owner = self.owner
        if kind in RELEASE_KINDS and release is None:  # a lie about a policy needs one
            release, script = DP_RELEASE, DP_SCRIPT
        self.say(f"{kind}: starting the misbehaving node")
        self._runs += 1
        flags = ["--misbehave", kind, "--insecure-test-faults",
                 "--misbehave-at", str(AT.get(kind, 2))] if misbehave else []
        flags += FAST_WATCH
        culprit = self._spawn(f"culprit-{self._runs}-{kind}", next(self._spare), flags)
        try:
            honest = [n.address for n in self.nodes]
            before = {a: self._wealth(a) for a in self._jurors()}
            table = _table()
            name = f"faults-{self._runs}-{kind}"
            owner.share(table, Schema.from_dict(SCHEMA), name, quorum=3, t=1, weak=True,
                        holders=[*honest, culprit.address])
            if release is not None:
                set_release(owner.ledger, owner.state(name).ledger_id, release.policy)
            author, signature = (self.author, self.signature) if script == SCRIPT else \
                sign_script(self.net.analyst, script)
            before.update({a: self._wealth(a) for a in honest})
            self.say(f"{kind}: running the job")
            t0 = time.perf_counter()
            try:
                out = run_job(owner, name, script, author=author, signature=signature,
                              quorum_size=3, dealer_seed=(dealer_seed or os.urandom(32))
                              if dealer else None, blame=True, attempts=attempts,
                              mesh_timeout=self.timeout, timeout=120.0,
                              epsilon=None if release is None else release.epsilon,
                              delta=0.0 if release is None else release.delta)
            except JobError as exc:
                return Row(kind, False, False, False, 0, 0.0, False, False, note=str(exc)[:200])
            seconds = time.perf_counter() - t0
            self.last = out
            settled = [self.settle(i.accusation_id) for i in out.incidents
                       if i.accusation_id >= 0]
            loss = sum(max(0, before[a] - self._wealth(a)) for a in [*honest, *self._jurors()])
            first = out.incidents[0] if out.incidents else None
            correct = not out.refunded and _correct(out.results, table, script, release)
            named = {i.culprit.lower() for i in out.incidents}
            slashed = any(a.status is AccusationStatus.GUILTY
                          and owner.ledger.node(a.culprit).slashed for a in settled)
            return Row(kind, first is not None,
                       named == {culprit.address.lower()}, slashed, loss,
                       round(seconds, 2) if first is not None else 0.0, correct,
                       out.refunded, first.verdict if first else "",
                       challenge=", ".join(_challenge(a) for a in settled))
        finally:
            # kept running to the end: a dead process would stay in the others' DHT routing
            # tables, and every later lookup would wait out its timeouts (10 s per kind)
            self.culprits.append(culprit)

    def _jurors(self) -> list[str]:
        return [j.address for j in self.jurors]

    def settle(self, accusation_id: int, grace: float = 3.0, wait: float = 60.0
               ) -> AccusationInfo:
        """Finalize an accusation as soon as it can be: once every committee member voted,
        or, on this dev chain, by moving the clock past its deadline after `grace` s
        without a dispute (or `wait` s without every vote). Returns it as finalized."""
        lg = self.owner.ledger
        t0 = time.monotonic()
        while True:
            a = lg.accusation(accusation_id)
            if a.status is not AccusationStatus.PENDING:
                self.settled.append(a)
                return a
            votes = a.guilty_votes + a.innocent_votes
            elapsed = time.monotonic() - t0
            if (a.disputed and votes == len(a.committee)) or elapsed > wait \
                    or (not a.disputed and elapsed > grace):
                if not a.disputed or votes < len(a.committee):
                    deadline = a.voting_deadline if a.disputed else a.deadline
                    advance_time(lg.w3, max(0, deadline - lg.chain_time()) + 1)
                with contextlib.suppress(LedgerError):  # a node may settle it first
                    lg.finalize(accusation_id)
                continue
            time.sleep(0.2)

    def false_accusation(self) -> dict[str, Any]:
        """The owner accuses an honest node of a job it never ran, with a bogus evidence
        file: the node's software disputes, the committee votes not guilty, the node keeps
        its deposit, is back in the draw and gets the bond (less the jurors' tenth)."""
        owner, lg = self.owner, self.owner.ledger
        honest = [n.address for n in self.nodes]
        name = "faults-false-accusation"
        owner.share(_table(), Schema.from_dict(SCHEMA), name, quorum=2, holders=honest)
        state = owner.state(name)
        assert state.ledger_id is not None
        job = lg.post_job(state.ledger_id, script_hash(SCRIPT.encode()), self.author,
                          self.signature, 2, 10, 100)
        victim = job.quorum[0]
        bogus = encode_bundle({"job_id": job.job_id, "culprit": victim, "party": 0,
                         "verdict": "deviation"}, b"no evidence at all", [])
        digest = keccak(bogus)
        sig = lg.sign(lg.accusation_digest(job.job_id, victim, digest))
        stake, wealth = lg.node(victim).deposit, self._wealth(victim)
        accusation_id = lg.accuse(job.job_id, victim, digest, [sig])
        publish_evidence(lg, owner.identity, accusation_id, bogus, job.quorum)
        suspended = not lg.node(victim).active
        # the victim's software disputes on its own: give it the time a busy node may need
        # (its watcher, the evidence fetch, a transaction) before the clock moves on
        a = self.settle(accusation_id, grace=DISPUTE_GRACE)
        info = lg.node(victim)
        return {"accusation": a, "suspended_meanwhile": suspended, "victim": victim,
                "kept_deposit": info.deposit == stake, "active": info.active,
                "gained": self._wealth(victim) - wealth, "bond": a.bond,
                "votes": {j: lg.ballot(accusation_id, j) for j in a.committee}}

    def close(self) -> None:
        """Kill the culprits and stop the jurors (the network stops the rest)."""
        for culprit in self.culprits:
            culprit.kill()
        stop_nodes(self.jurors)


@contextmanager
def matrix(home: Path | None = None, kinds: Sequence[str] = KINDS, timeout: float = 5.0,
           progress: Callable[[str], None] | None = None) -> Iterator[Matrix]:
    """A `Matrix` in `home` (a temporary directory if None), closed on exit: two honest
    holders, the analyst, then the jurors and one culprit per kind on spare accounts."""
    with tempfile.TemporaryDirectory(prefix="enigma-faults-") as tmp, \
            cluster(Path(home) if home else Path(tmp), 2, spare=JURORS + len(kinds),
                    progress=progress) as net:
        m = Matrix(net, timeout, progress)
        try:
            yield m
        finally:
            m.close()


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def _challenge(a: AccusationInfo) -> str:
    if not a.disputed:
        return "undisputed"
    verdict = "guilty" if a.status is AccusationStatus.GUILTY else "acquitted"
    return f"{verdict} {a.guilty_votes}-{a.innocent_votes}"


def format_table(rows: Sequence[Row]) -> str:
    head = ("kind", "detected", "identified", "verdict", "challenge", "slashed", "honest loss",
            "recovery s", "result correct", "refunded")
    lines = [head] + [(r.kind, _yes(r.detected), _yes(r.identified), r.verdict or "-",
                       r.challenge or "-", _yes(r.slashed), f"{r.honest_loss_wei} wei",
                       f"{r.recovery_seconds:.1f}", _yes(r.result_correct), _yes(r.refunded))
                      for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


@click.command("faults")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per kind.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS),
              help="Run only these kinds (repeatable); default all.")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Keep the network's files here (default: a temporary directory).")
@click.option("--timeout", default=5.0, show_default=True, type=float,
              help="Seconds a member waits for a peer's message before naming it absent.")
@click.option("--he", is_flag=True,
              help="Preprocess with homomorphic encryption, as in production, instead of "
                   "the INSECURE test dealer (slower: each quorum makes its own triples).")
def faults_command(as_json: bool, kinds: tuple[str, ...], home: Path | None,
                   timeout: float, he: bool) -> None:
    """Run every fault kind on a local network: detected, identified, slashed, honest loss,
    seconds to recovery, result correct (test nodes cheat on purpose; the INSECURE test
    dealer unless --he).
    """
    chosen = list(kinds) or list(KINDS)
    rows = []
    with Progress("faults") as progress:
        progress.note("faults: " + ("using HE preprocessing" if he else
                                    "using the INSECURE test dealer")
                      + " and nodes that cheat on purpose (a test report)")
        with matrix(home, chosen, timeout, progress.phase) as m:
            for kind in chosen:
                row = m.run(kind, dealer=not he)
                rows.append(row)
                if as_json:
                    click.echo(json.dumps(row.as_json()))
    if not as_json:
        click.echo(format_table(rows))


@click.group("evidence")
def evidence_group() -> None:
    """Accusations on the ledger and the evidence files behind them (docs/blame.md)."""


def _reader(rpc: str, deployment: Path) -> Ledger:
    from enigma.ledger import Deployment

    return Ledger.connect(rpc, None, Deployment.load(deployment))


@evidence_group.command("list")
@ledger_options()
def evidence_list_command(rpc: str, deployment: Path) -> None:
    """Every accusation: its job, culprit, state, deadlines and the committee's votes."""
    ledger = _reader(rpc, deployment)
    now = ledger.chain_time()
    for i in range(ledger.accusation_count()):
        a = ledger.accusation(i)
        if a.status is AccusationStatus.PENDING:
            state = "pending, " + (f"disputed, votes {a.guilty_votes}-{a.innocent_votes} of "
                                   f"{len(a.committee)} until {a.voting_deadline}"
                                   if a.disputed else f"dispute until {a.deadline}")
            state += ", can be finalized" if a.finalizable(now) else ""
        else:
            state = _challenge(a) if a.disputed else "undisputed"
            state += ", slashed" if a.status is AccusationStatus.GUILTY else ", acquitted"
        click.echo(f"accusation {i}: job {a.job_id} culprit {a.culprit} evidence "
                   f"{a.evidence_hash.hex()} ({state})")


@evidence_group.command("fetch")
@click.argument("accusation_id", type=int)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to write the file (default evidence-<hash>.bin).")
@ledger_options()
def evidence_fetch_command(accusation_id: int, out: Path | None, rpc: str,
                           deployment: Path) -> None:
    """Fetch an accusation's evidence file from the nodes that keep it (the job's quorum,
    its committee, then any active node), checked against the hash on chain; then
    `evidence verify` it."""
    from enigma.net.identity import Identity

    from .evidence import fetch_evidence

    ledger = _reader(rpc, deployment)
    try:
        a = ledger.accusation(accusation_id)
        first = [*ledger.job(a.job_id).quorum, *a.committee]
        sources = [*first, *[n for n in ledger.active_nodes() if n not in first]]
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    # evidence is public: any key may ask, so a throwaway one does
    data = fetch_evidence(ledger, Identity.generate(), a.evidence_hash, sources)
    if data is None:
        raise click.ClickException(f"no node among {len(sources)} handed over the file with "
                                   f"keccak256 {a.evidence_hash.hex()}")
    path = out or Path(f"evidence-{a.evidence_hash.hex()}.bin")
    path.write_bytes(data)
    click.echo(f"{path}: {len(data)} bytes, keccak256 {a.evidence_hash.hex()} (as on chain)")


@evidence_group.command("finalize")
@click.argument("accusation_id", type=int)
@ledger_options("Ledger account the chain has unlocked (dev chains).")
def evidence_finalize_command(accusation_id: int, account: str | bytes, rpc: str,
                              deployment: Path) -> None:
    """Settle an accusation whose challenge is over (anyone may): slash or acquit."""
    from enigma.ledger import Deployment

    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    try:
        out = ledger.finalize(accusation_id)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"accusation {accusation_id}: " + (
        f"guilty, {out['slashed']} wei slashed" if out["guilty"] else "acquitted")
        + (f" (votes {out['guilty_votes']}-{out['innocent_votes']})" if out["disputed"]
           else " (undisputed)"))


@evidence_group.command("verify")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@ledger_options()
def evidence_verify_command(path: Path, rpc: str, deployment: Path) -> None:
    """Check an evidence file against the ledger: its hash is on chain, and it proves the
    deviation it claims (or carries the signed abort records of an absence)."""
    from enigma.mpc.blame import EvidenceError

    from .replay import verify_evidence_file

    ledger = _reader(rpc, deployment)
    try:
        culprit, verdict = verify_evidence_file(ledger, path.read_bytes())
    except (EvidenceError, JobError) as exc:
        raise click.ClickException(f"{path}: does not verify: {exc}") from exc
    click.echo(f"{path}: verifies: {culprit} {verdict}")
