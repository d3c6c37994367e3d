"""Accusations under challenge: what an honest node does about them.

An accusation (`jobs.vy` `accuse`) slashes nobody by itself: it opens a challenge period.
The accused may `dispute`; a committee of uninvolved nodes drawn on chain then votes on
the public evidence file whose keccak256 the accusation names; `finalize` settles
(docs/blame.md, "The challenge"). This module is the off-chain half:

Where evidence files live and how they travel is `evidence`.

* **The node's watcher** (`Watcher`, a thread of `enigma node`), every `interval` s:
  - accused itself: it fetches the file and replays it with the public verifier
    (`replay.verify_evidence_file`); it disputes if the file does not prove the accusation
    or cannot be fetched. An honest node's replay never deviates (docs/blame.md), so it
    always disputes a false accusation. A node started with `--misbehave` (a test cheater)
    disputes every accusation: a cheater has nothing to lose by trying;
  - drawn to a committee: it fetches, verifies and votes guilty only if the file proves
    a deviation (or a wrong result share) by the accused in that job; a file it cannot
    fetch is no proof, so it votes not guilty;
  - once an accusation's periods are over, a node that gains from settling it (the
    accused, after a dispute; a member of the job's quorum) calls `finalize`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from eth_utils import keccak, to_checksum_address

from enigma.ledger import AccusationInfo, AccusationStatus, ContractRevert, Ledger, LedgerError

from .culprits import PROVED, read_bundle
from .evidence import EvidenceStore, fetch_evidence
from .host import NodeHost
from .job_facts import JobError
from .replay import verify_evidence_file

log = logging.getLogger(__name__)

def proves(ledger: Ledger, data: bytes | None, accusation: AccusationInfo) -> tuple[bool, str]:
    """Does this file prove this accusation? (verdict, why). It must be the file the
    accusation names, about its job and culprit, and verify as a proof (a deviation or a
    wrong result share, or committed inputs that are not what the culprit stores; an
    absence is an attestation and proves nothing worth a slash)."""
    from enigma.mpc.blame import EvidenceError

    if data is None:
        return False, "the evidence file could not be fetched"
    if keccak(data) != accusation.evidence_hash:
        return False, "the file is not the one the accusation names"
    try:
        meta, _, _ = read_bundle(data)
        if int(meta["job_id"]) != accusation.job_id:
            return False, "the file is about another job"
        culprit, verdict = verify_evidence_file(ledger, data)
    except (EvidenceError, JobError, LedgerError, KeyError, ValueError, TypeError) as exc:
        return False, f"the file does not verify: {exc}"
    except Exception as exc:  # a verifier that breaks on crafted input has proved nothing
        log.warning("the verifier failed on evidence %s...: %r",
                    accusation.evidence_hash.hex()[:16], exc)
        return False, f"the verifier failed: {type(exc).__name__}"
    if culprit.lower() != accusation.culprit.lower():
        return False, "the file names another node"
    if verdict not in PROVED:
        return False, f"the file attests {verdict}, which is no proof"
    return True, verdict


class Watcher:
    """A node's side of every accusation (module docstring); `run` until `stopping`."""

    def __init__(self, node: NodeHost, interval: float = 1.0, always_dispute: bool = False) -> None:
        assert node.ledger is not None and node.identity is not None
        self.node = node
        self.interval = interval
        self.always_dispute = always_dispute
        self.me = to_checksum_address(node.ledger.address)
        # a reader of its own: verifying replays for seconds, and must not hold the lock
        # under which the node's job threads send their transactions
        self.reader = Ledger.connect(node.config.rpc, None, node.ledger.deployment)
        self.store = EvidenceStore(node.config.home / "evidence")
        self.cursor = 0
        self.open: set[int] = set()
        self.done: set[tuple[int, str]] = set()
        self._quorums: dict[int, list[str]] = {}
        self._params: tuple[int, int] | None = None

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.interval):
            try:
                self.step()
            except Exception as exc:  # the watcher must outlive any one bad poll
                log.warning("accusation watcher: %s: %s", type(exc).__name__, exc)

    def _send(self, key: tuple[int, str], fn: Callable[[Ledger], Any]) -> Any:
        """One transaction, under the node's ledger lock (its job threads send too).

        `key` is marked done first. A revert is the chain's final answer (too late,
        settled by someone else), so it stays done. Any other failure (the RPC timed out,
        the chain restarted) unmarks it, so the next poll tries again.
        """
        assert self.node.ledger is not None
        self.done.add(key)
        try:
            with self.node.ledger_lock:
                return fn(self.node.ledger)
        except ContractRevert:
            raise
        except Exception:
            self.done.discard(key)
            raise

    def _quorum(self, job_id: int) -> list[str]:
        if job_id not in self._quorums:
            self._quorums[job_id] = self.reader.job(job_id).quorum
        return self._quorums[job_id]

    def _evidence(self, a: AccusationInfo) -> bytes | None:
        assert self.node.identity is not None
        if (data := self.store.get(a.evidence_hash)) is not None:
            return data
        first = [*self._quorum(a.job_id), *a.committee]
        rest = [n for n in self.reader.active_nodes() if n not in first]
        sources = [m for m in [*first, *rest] if m != self.me]
        return fetch_evidence(self.reader, self.node.identity, a.evidence_hash, sources,
                              self.store)

    def step(self) -> None:
        """One look at every accusation not settled yet."""
        count = self.reader.accusation_count()
        self.open.update(range(self.cursor, count))
        self.cursor = count
        if not self.open:  # the usual case: one cheap call per interval
            return
        now = self.reader.chain_time()
        for accusation_id in sorted(self.open):
            a = self.reader.accusation(accusation_id)
            if a.status is not AccusationStatus.PENDING or self._no_part(a, now):
                self.open.discard(accusation_id)
                continue
            try:
                self._act(a, now)
            except Exception as exc:  # one accusation's trouble must not starve the others
                log.warning("accusation %d: %s: %s", accusation_id, type(exc).__name__, exc)

    def _no_part(self, a: AccusationInfo, now: int) -> bool:
        """Nothing this node can still do for `a` (`_act` would pass it by on every poll):
        not its culprit, not in its job's quorum (nothing to gain from settling it), and on
        no committee, now or later (an undisputed accusation past its deadline gets none)."""
        if a.culprit == self.me or self.me in self._quorum(a.job_id):
            return False
        return self.me not in a.committee if a.disputed else now >= a.deadline

    def _patient(self, data: bytes | None, now: int, deadline: int, period: int) -> bool:
        """Wait for a file not fetched yet? Until half the period is left: the accuser
        pushes the file to the quorum right after its accusation is mined, so a fast
        dispute or vote may look before the holders have it."""
        return data is None and now < deadline - period // 2

    def _act(self, a: AccusationInfo, now: int) -> None:
        key = a.accusation_id
        if a.culprit == self.me and not a.disputed and now < a.deadline \
                and (key, "dispute") not in self.done:
            if self.always_dispute:
                why = "this node disputes every accusation (--misbehave)"
            else:
                data = self._evidence(a)
                if self._patient(data, now, a.deadline, self._periods()[0]):
                    return
                ok, why = proves(self.reader, data, a)
                if ok:
                    self.done.add((key, "dispute"))
                    log.warning("accusation %d against this node proves %s; not disputed",
                                key, why)
                    return
            log.warning("disputing accusation %d: %s", key, why)
            self._send((key, "dispute"), lambda lg: lg.dispute(key))
            return
        if a.disputed and self.me in a.committee and now < a.voting_deadline \
                and (key, "vote") not in self.done:
            if self.reader.ballot(key, self.me) is None:
                data = self._evidence(a)
                if self._patient(data, now, a.voting_deadline, self._periods()[1]):
                    return
                guilty, why = proves(self.reader, data, a)
                log.warning("accusation %d: voting %s (%s)", key,
                            "guilty" if guilty else "not guilty", why)
                self._send((key, "vote"), lambda lg: lg.vote(key, guilty))
            else:
                self.done.add((key, "vote"))
            return
        over = now >= (a.voting_deadline if a.disputed else a.deadline)
        gains = (a.culprit == self.me and a.disputed) or \
            (a.culprit != self.me and self.me in self._quorum(a.job_id))
        if over and gains and (key, "finalize") not in self.done:
            try:
                out = self._send((key, "finalize"), lambda lg: lg.finalize(key))
                log.warning("accusation %d finalized: %s", key,
                            "guilty" if out["guilty"] else "acquitted")
            except ContractRevert as exc:  # someone else settled it first
                log.info("accusation %d: finalize: %s", key, exc)

    def _periods(self) -> tuple[int, int]:
        """(challenge period, voting period), read once: fixed at deployment."""
        if self._params is None:
            p = self.reader.params()
            self._params = (p.challenge_period, p.voting_period)
        return self._params
