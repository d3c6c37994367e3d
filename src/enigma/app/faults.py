"""`enigma faults`: every fault kind against a real local network, one row per kind.

What one row shows, and how it is measured (issue 9's acceptance):

* a chain (the embedded EVM, served over JSON-RPC), two honest node processes and, per
  kind, a third node process started with `--misbehave KIND --insecure-test-faults`; the
  owner shares a tiny table onto the three (t = 1, so any two reconstruct) and runs a job
  in blame mode on the insecure test dealer (the only replayable preprocessing);
* **detected**: the job's first attempt failed (an abort, a drop-out, or the owner's own
  result check); **identified**: the owner named the misbehaving node, and only it;
* **slashed**: the ledger took its deposit on the owner's signed accusation (proved
  deviations only; a drop-out or stall is attested, so it is suspended, not slashed);
* **honest loss**: wei the two honest nodes lost (deposits and claimable balances), which
  must be 0; **recovery**: seconds from posting the failed job to the re-run's checked
  result on a quorum re-drawn without the culprit; **result correct**: that result equals
  numpy's on the plain table; **refunded**: no quorum could finish and the escrow went back.

The network is shared across kinds (one chain, the same honest nodes, one owner), so the
whole matrix costs one start-up plus one culprit process and two short jobs per kind.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from enigma.lang.schema import Schema
from enigma.ledger import Ledger, start_devchain
from enigma.mpc.faults import KINDS

from .jobs import JobError, JobResult, run_job, sign_script
from .localnet import NodeProcess, deploy, spawn_node
from .owner import Owner

ROWS = 8
SCRIPT = "reveal(sum(data.a), 'total')\nreveal(variance(data.b), 'spread')\n"
SCHEMA = {"name": "faults", "columns": [
    {"name": "a", "type": "int", "label": "private", "min": 0, "max": 100},
    {"name": "b", "type": "int", "label": "private", "min": 0, "max": 100}]}
#: Where each kind strikes: the culprit's n-th sending call, or for the preprocessing
#: kinds its n-th triples request (the first one feeds the variance's products).
AT = {"wrong-mac": 0, "bad-preprocessing": 0}
KEYS = ("kind", "detected", "identified", "slashed", "honest_loss_wei", "recovery_seconds",
        "result_correct", "refunded")


@dataclass
class Row:
    """One kind's outcome (`as_json` has exactly the keys of the issue's report)."""

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

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KEYS}


def _table() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    return {"a": rng.integers(0, 100, ROWS), "b": rng.integers(0, 100, ROWS)}


def _expected(table: dict[str, np.ndarray]) -> dict[str, float]:
    return {"total": float(table["a"].sum()), "spread": float(table["b"].var())}


class Matrix:
    """A local network for the fault matrix; `run(kind)` per kind, `close` at the end."""

    def __init__(self, home: Path, kinds: Sequence[str], timeout: float = 5.0,
                 progress: Callable[[str], None] | None = None) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.say = progress or (lambda _: None)
        self.chain = start_devchain(accounts=4 + len(kinds))
        self.accounts = list(self.chain.accounts)
        self.deployment = self.home / "deployment.json"
        self.nodes: list[NodeProcess] = []
        self.culprits: list[NodeProcess] = []
        self.owner: Owner | None = None
        self.last: JobResult | None = None
        """The last job's result (its incidents: who was named, the ledger's answer)."""
        self._spare = iter(self.accounts[4:])
        self._runs = 0
        try:
            deploy(self.chain.url, self.accounts[0], self.deployment)
            for i in range(2):
                self.say(f"starting honest node {i + 1} of 2")
                self.nodes.append(self._spawn(f"honest-{i}", self.accounts[1 + i]))
            self.owner = Owner.open(self.home / "owner", self.chain.url, self.deployment,
                                    self.accounts[0], [("127.0.0.1", self.nodes[0].dht_port)])
            analyst = Ledger.connect(self.chain.url, self.accounts[3],
                                     self.owner.ledger.deployment)
            self.author, self.signature = sign_script(analyst, SCRIPT)
        except BaseException:
            self.close()
            raise

    def _spawn(self, name: str, account: str, extra: Sequence[str] = ()) -> NodeProcess:
        boot = ("127.0.0.1", self.nodes[0].dht_port) if self.nodes else None
        return spawn_node(self.home / name, self.chain.url, self.deployment, account, boot,
                          extra=extra)

    def _wealth(self, address: str) -> int:
        assert self.owner is not None
        lg = self.owner.ledger
        return lg.node(address).deposit + lg.claimable(address)

    def run(self, kind: str, attempts: int = 2, misbehave: bool = True) -> Row:
        """One kind: a fresh culprit node, a dataset on it and the honest two, one job
        (`attempts` = 1: no re-run, so the row shows the refund path; `misbehave` False:
        the node gets no --misbehave, the caller injects its fault another way)."""
        assert self.owner is not None
        owner = self.owner
        self.say(f"{kind}: starting the misbehaving node")
        self._runs += 1
        flags = ["--misbehave", kind, "--insecure-test-faults",
                 "--misbehave-at", str(AT.get(kind, 2))] if misbehave else []
        culprit = self._spawn(f"culprit-{self._runs}-{kind}", next(self._spare), flags)
        try:
            honest = [n.address for n in self.nodes]
            table = _table()
            name = f"faults-{self._runs}-{kind}"
            owner.share(table, Schema.from_dict(SCHEMA), name, t=1, n=3,
                        holders=[*honest, culprit.address])
            before = {a: self._wealth(a) for a in honest}
            self.say(f"{kind}: running the job")
            t0 = time.perf_counter()
            try:
                out = run_job(owner, name, SCRIPT, author=self.author,
                              signature=self.signature, quorum_size=3,
                              dealer_seed=os.urandom(32), blame=True, attempts=attempts,
                              mesh_timeout=self.timeout, timeout=120.0)
            except JobError as exc:
                return Row(kind, False, False, False, 0, 0.0, False, False, note=str(exc)[:200])
            seconds = time.perf_counter() - t0
            self.last = out
            loss = sum(max(0, before[a] - self._wealth(a)) for a in honest)
            first = out.incidents[0] if out.incidents else None
            want = _expected(table)
            correct = not out.refunded and set(out.results) == set(want) and all(
                abs(out.results[k].value - v) <= out.results[k].error + 1e-6
                for k, v in want.items())
            named = {i.culprit.lower() for i in out.incidents}
            return Row(kind, first is not None,
                       named == {culprit.address.lower()},
                       any(i.slashed > 0 for i in out.incidents), loss,
                       round(seconds, 2) if first is not None else 0.0, correct,
                       out.refunded, first.verdict if first else "")
        finally:
            # kept running to the end: a dead process would stay in the others' DHT routing
            # tables, and every later lookup would wait out its timeouts (10 s per kind)
            self.culprits.append(culprit)

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()
        for culprit in self.culprits:
            culprit.kill()
        for node in self.nodes:
            node.terminate()
        self.chain.stop()


@contextmanager
def matrix(home: Path | None = None, kinds: Sequence[str] = KINDS, timeout: float = 5.0,
           progress: Callable[[str], None] | None = None) -> Iterator[Matrix]:
    """A `Matrix` in `home` (a temporary directory if None), closed on exit."""
    with tempfile.TemporaryDirectory(prefix="enigma-faults-") as tmp:
        m = Matrix(Path(home) if home else Path(tmp), kinds, timeout, progress)
        try:
            yield m
        finally:
            m.close()


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def format_table(rows: Sequence[Row]) -> str:
    head = ("kind", "detected", "identified", "verdict", "slashed", "honest loss",
            "recovery s", "result correct", "refunded")
    lines = [head] + [(r.kind, _yes(r.detected), _yes(r.identified), r.verdict or "-",
                       _yes(r.slashed), f"{r.honest_loss_wei} wei", f"{r.recovery_seconds:.1f}",
                       _yes(r.result_correct), _yes(r.refunded)) for r in rows]
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
def faults_command(as_json: bool, kinds: tuple[str, ...], home: Path | None,
                   timeout: float) -> None:
    """Run every fault kind on a local network: detected, identified, slashed, honest loss,
    seconds to recovery, result correct (INSECURE test dealer; test nodes cheat on purpose).
    """
    chosen = list(kinds) or list(KINDS)
    for noisy in ("kademlia", "rpcudp"):  # killed culprits leave dead DHT contacts behind
        logging.getLogger(noisy).setLevel(logging.ERROR)
    def say(message: str) -> None:
        click.echo(f"faults: {message}", err=True)

    say("using the INSECURE test dealer and nodes that cheat on purpose (a test report)")
    rows = []
    with matrix(home, chosen, timeout, say) as m:
        for kind in chosen:
            row = m.run(kind)
            rows.append(row)
            if as_json:
                click.echo(json.dumps(row.as_json()))
    if not as_json:
        click.echo(format_table(rows))


@click.group("evidence")
def evidence_group() -> None:
    """Evidence files an owner published after blaming a node (docs/blame.md)."""


@evidence_group.command("verify")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True)
@click.option("--deployment", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=Path("deployment.json"), show_default=True)
def evidence_verify_command(path: Path, rpc: str, deployment: Path) -> None:
    """Check an evidence file against the ledger: its hash is on chain, and it proves the
    deviation it claims (or carries the signed abort records of an absence)."""
    from enigma.ledger import Deployment
    from enigma.mpc.blame import EvidenceError

    from .jobs import verify_evidence_file

    ledger = Ledger.connect(rpc, None, Deployment.load(deployment))
    try:
        culprit, verdict = verify_evidence_file(ledger, path.read_bytes())
    except (EvidenceError, JobError) as exc:
        raise click.ClickException(f"{path}: does not verify: {exc}") from exc
    click.echo(f"{path}: verifies: {culprit} {verdict}")
