"""A soak under faults: jobs run while nodes are killed, restarted, paused, their share
files corrupted and strangers connect; the invariants are checked after every step.

Why a driver of its own: each failure has its test, but the network's promises are
about what holds *whatever* happens, in any order, on one network that lives on: no
wrong result accepted, no honest node suspended or slashed, no escrow left open past its
deadline, no node beyond its memory budget. One step is one fault on one node (the
victim) around one job:

- `kill`: SIGKILL the victim a moment after the job starts; it is started again on the
  same home afterwards (same identity and store, a new port);
- `pause`: SIGSTOP the victim for the job (a stalled machine), SIGCONT after;
- `corrupt`: flip a byte of one of its share files for the job, restore it after;
- `stranger`: unknown keys open connections to it, send junk and a hostile header, and
  idle, during the job;
- `restart`: stop it cleanly and start it again before the job.

A victim the owner named (suspended) did fail: once the fault is undone its operator
resumes it (`registry.resume`), as `enigma node resume` does. Any other node that ends a
step inactive or slashed is an honest node blamed: counted, and the run fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv

from enigma.lang.schema import Schema
from enigma.ledger import JobStatus, LedgerError
from enigma.net.handshake import MAGIC

from .home import store_name
from .job_facts import JobError
from .localnet import Cluster, cluster
from .orchestration import run_job, sign_script

ROOT = Path(__file__).resolve().parents[3]
FAULTS = ("kill", "pause", "corrupt", "stranger", "restart")
SCRIPT = "reveal(mean(data.age), 'mean_age')\nreveal(sum(data.tenure), 'total_tenure')\n"
RSS_BUDGET_MB = 1536.0
"""A node's peak resident memory may not pass this (a few hundred rows: far below)."""


@dataclass
class Report:
    """What a soak saw; the run is good when the last four are zero or within budget."""

    jobs: int = 0
    faults: int = 0
    wrong_results: int = 0
    honest_suspended: int = 0
    stuck_escrow: int = 0
    max_rss_mb: float = 0.0
    rss_budget_mb: float = RSS_BUDGET_MB
    refunded: int = 0
    seconds: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.wrong_results == 0 and self.honest_suspended == 0
                and self.stuck_escrow == 0 and self.max_rss_mb <= self.rss_budget_mb)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("steps")
        return out


class Soak:
    """One network under faults (`run` drives the steps)."""

    def __init__(self, net: Cluster, rows: int, dealer: bool,
                 say: Callable[[str], None]) -> None:
        self.net, self.dealer, self.say = net, dealer, say
        self.nodes, self.owner, self.analyst = net.nodes, net.owner, net.analyst
        self.rng = random.Random(0)
        lines = (ROOT / "data" / "benefits.csv").read_text().splitlines()[:rows + 1]
        csv = net.root / "people.csv"
        csv.write_text("\n".join(lines) + "\n")
        body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
        body.pop("rows", None)
        self.owner.share(csv, Schema.from_dict(body), "people", t=2, n=len(self.nodes))
        table = pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(
            strings_can_be_null=False))
        self.want = {"mean_age": float(np.mean(table.column("age").to_numpy())),
                     "total_tenure": float(np.sum(table.column("tenure").to_numpy()))}

    # -- one step ---------------------------------------------------------------------------

    def step(self, kind: str, victim: int, report: Report) -> None:
        t0 = time.monotonic()
        node = self.nodes[victim]
        note: dict[str, Any] = {"fault": kind, "victim": node.address}
        with self._fault(kind, victim, note):
            result = self._job(kind, victim, note)
        self._recover(victim)
        report.faults += 1
        report.jobs += 1
        if result is None:
            report.refunded += 1
        else:
            wrong = [k for k, v in result.results.items()
                     if abs(float(v.value) - self.want[k]) > float(v.error) + 1e-9]
            report.wrong_results += len(wrong)
            note["wrong"] = wrong
        lg = self.owner.ledger
        infos = {n.address: lg.node(n.address) for n in self.nodes}
        blamed = sorted(a for a, info in infos.items()
                        if info.slashed or (a != note["victim"] and not info.active))
        report.honest_suspended += len(blamed)
        now = lg.chain_time()
        open_jobs = {j.job_id: j for a in infos for j in lg.jobs_for(a)}
        report.stuck_escrow += sum(1 for j in open_jobs.values() if now >= j.deadline)
        if not infos[note["victim"]].active:  # fixed by `_recover`: its operator resumes it
            with contextlib.suppress(LedgerError):
                self.net.ledger(note["victim"]).resume()
        report.max_rss_mb = max([report.max_rss_mb] + [n.peak_rss_mb() for n in self.nodes
                                                       if n.process.poll() is None])
        note.update(seconds=round(time.monotonic() - t0, 1), blamed=blamed)
        report.steps.append(note)
        self.say(json.dumps(note))

    def _job(self, kind: str, victim: int, note: dict[str, Any]) -> Any:
        author, sig = sign_script(self.analyst, SCRIPT)
        said: list[str] = []
        killer = None
        if kind == "kill":
            killer = threading.Thread(target=self._kill_when_running, args=(said, victim))
            killer.start()
        try:
            out = run_job(self.owner, "people", SCRIPT, author=author, signature=sig,
                          timeout=20.0 if self.dealer else 60.0,
                          dealer_seed=os.urandom(32) if self.dealer else None,
                          progress=said.append)
        except JobError as exc:
            note["refunded"] = str(exc)[:200]
            return None
        finally:
            if killer is not None:
                killer.join()
        note["incidents"] = [(i.verdict, i.culprit) for i in out.incidents]
        if out.refunded:
            return None
        if self.owner.ledger.job(out.job_id).status is not JobStatus.ACCEPTED:
            note["stuck"] = out.job_id
        return out

    def _kill_when_running(self, said: list[str], victim: int) -> None:
        deadline = time.monotonic() + 30
        while not any("computing" in s for s in said) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        self.nodes[victim].kill()

    @contextmanager
    def _fault(self, kind: str, victim: int, note: dict[str, Any]) -> Iterator[None]:
        node = self.nodes[victim]
        if kind == "restart":
            node.terminate()
            self.net.respawn(victim)
            yield
        elif kind == "pause":
            node.process.send_signal(signal.SIGSTOP)
            try:
                yield
            finally:
                node.process.send_signal(signal.SIGCONT)
        elif kind == "corrupt":
            state = self.owner.state("people")
            folder = node.home / "shares" / store_name("people", self.owner.identity.public_key,
                                                        state.gen)
            target = folder / "00000000" / "age.share"
            original = target.read_bytes()
            raw = bytearray(original)
            raw[-5] ^= 0x40
            target.write_bytes(bytes(raw))
            try:
                yield
            finally:
                target.write_bytes(original)
        elif kind == "stranger":
            stop = threading.Event()
            pest = threading.Thread(target=_strangers, args=(node.port, stop))
            pest.start()
            try:
                yield
            finally:
                stop.set()
                pest.join()
        else:
            yield

    def _recover(self, victim: int) -> None:
        """Undo the fault: a dead node is started again on its home."""
        if self.nodes[victim].process.poll() is not None:
            self.net.respawn(victim)


def _strangers(port: int, stop: threading.Event) -> None:
    """Unknown clients at a node's service port: junk, a preface announcing a certificate
    of hostile length, and an idle connection, over and over until `stop`."""
    idle: list[socket.socket] = []
    while not stop.is_set():
        for payload in (os.urandom(64),
                        MAGIC + struct.pack("<HHH", 1, 0, 0xFFFF) + b"\xff" * 64):
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(payload)
        with contextlib.suppress(OSError):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        stop.wait(0.2)
    for s in idle:
        s.close()


def run(home: Path, steps: int, *, nodes: int = 5, rows: int = 240, dealer: bool = True,
        say: Callable[[str], None] | None = None,
        check: Callable[[Report], None] | None = None) -> Report:
    """`steps` faults, cycling through FAULTS on victims drawn with a fixed seed; `check`
    is called after every step (the test asserts there)."""
    t0 = time.monotonic()
    report = Report()
    with cluster(home, nodes, housekeeping=2.0) as net:
        try:
            soak = Soak(net, rows, dealer, say or (lambda _: None))
            for i in range(steps):
                soak.step(FAULTS[i % len(FAULTS)], soak.rng.randrange(nodes), report)
                if check is not None:
                    check(report)
        finally:
            report.seconds = round(time.monotonic() - t0, 1)
    return report
