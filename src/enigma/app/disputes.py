"""Accusations under challenge: where evidence files live, and what an honest node does.

An accusation (`jobs.vy` `accuse`) slashes nobody by itself: it opens a challenge period.
The accused may `dispute`; a committee of uninvolved nodes drawn on chain then votes on
the public evidence file whose keccak256 the accusation names; `finalize` settles
(docs/blame.md, "The challenge"). This module is the off-chain half:

* **Where the evidence lives.** Each node keeps evidence files in `<home>/evidence/`,
  named by their keccak256, and serves them to anyone who asks by hash (`evidence-get`).
  A node stores a file only if an accusation on chain names exactly its hash
  (`evidence-put`), so nobody can make nodes keep arbitrary bytes. The accuser pushes the
  file to every member of the job's quorum, the accused included, and to a few other
  active nodes drawn at random (`evidence_holders`, `publish_evidence`): if every other
  member colludes with the culprit and withholds the file, an honest outsider still
  serves it. A verifier asks the quorum, found on the ledger with endpoints and keys,
  then the committee members, who keep what they fetched, then every other active node
  (`fetch_evidence`). The DHT is
  not used: its records hold at most 8 KB, and an evidence file is kilobytes to megabytes.
  The ledger already names who must have the file, and whom to ask.
* **The node's watcher** (`Watcher`, a thread of `enigma node`), every `interval` s:
  - accused itself: it fetches the file and replays it with the public verifier
    (`jobs.verify_evidence_file`); it disputes if the file does not prove the accusation
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
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from eth_utils import keccak, to_checksum_address

from enigma.files import write_atomic
from enigma.ledger import AccusationInfo, AccusationStatus, ContractRevert, Ledger, LedgerError
from enigma.net.identity import Identity

from .service import Connection, ServiceError, parse_endpoint

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)

MAX_EVIDENCE_BYTES = 256 << 20
"""A node refuses to store bigger files (a 1,000-element comparison's evidence is 3 MB)."""
EXTRA_HOLDERS = 3
"""Active nodes outside the quorum that also get each evidence file."""


class EvidenceStore:
    """Evidence files under their keccak256: `<root>/<hex>.bin`, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: bytes) -> Path:
        return self.root / f"{digest.hex()}.bin"

    def get(self, digest: bytes) -> bytes | None:
        """The file with this hash, if held here and intact."""
        try:
            data = self.path(digest).read_bytes()
        except OSError:
            return None
        return data if keccak(data) == digest else None

    def put(self, data: bytes) -> bytes:
        digest = keccak(data)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.get(digest) is None:
            write_atomic(self.path(digest), [data])
        return digest


def _as_bytes(arrays: Sequence[np.ndarray]) -> bytes:
    if len(arrays) != 1:
        raise ServiceError("bad-request", "an evidence file travels as one byte array")
    return np.ascontiguousarray(arrays[0], dtype=np.uint8).tobytes()


def evidence_ops(node: Node) -> dict[str, Callable[[bytes, dict[str, Any], list[np.ndarray]],
                                                   tuple[dict[str, Any], list[np.ndarray]]]]:
    """The node's two evidence requests; the store is `<home>/evidence`."""
    store = EvidenceStore(node.config.home / "evidence")

    def put(client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
            ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Keep a file that an accusation on chain names (its `accusation_id`)."""
        data = _as_bytes(arrays)
        if len(data) > MAX_EVIDENCE_BYTES:
            raise ServiceError("too-large", f"evidence files are at most {MAX_EVIDENCE_BYTES} "
                                            "bytes here")
        assert node.ledger is not None
        with node._ledger_lock:
            accusation = node.ledger.accusation(int(header["accusation_id"]))
        if accusation.evidence_hash != keccak(data):
            raise ServiceError("refused", f"accusation {accusation.accusation_id} names "
                                          "another evidence hash; only files on chain are kept")
        store.put(data)
        return {"stored": accusation.evidence_hash.hex()}, []

    def get(client: bytes, header: dict[str, Any], arrays: list[np.ndarray]
            ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Hand out a file by its keccak256: evidence is public."""
        digest = bytes.fromhex(str(header["hash"]))
        data = store.get(digest)
        if data is None:
            raise ServiceError("missing", f"no evidence file {digest.hex()[:16]}... here")
        return {"hash": digest.hex()}, [np.frombuffer(data, dtype=np.uint8)]

    return {"evidence-put": put, "evidence-get": get}


def _connect(ledger: Ledger, identity: Identity, address: str, timeout: float) -> Connection:
    info = ledger.node(address)
    host, port, _ = parse_endpoint(info.endpoint)
    return Connection.open(host, port, identity, info.transport_key, timeout)


def evidence_holders(ledger: Ledger, quorum: Sequence[str],
                     extra: int = EXTRA_HOLDERS) -> list[str]:
    """Where an accuser pushes an evidence file: the job's quorum, and `extra` other active
    nodes drawn at random (the colluders of a culprit cannot make it vanish)."""
    others = [a for a in ledger.active_nodes() if a not in quorum]
    return [*quorum, *secrets.SystemRandom().sample(others, min(extra, len(others)))]


def publish_evidence(ledger: Ledger, identity: Identity, accusation_id: int, data: bytes,
                     to: Iterable[str], timeout: float = 10.0) -> list[str]:
    """Push an accusation's evidence file to these nodes (the job's quorum); returns the
    ones that stored it. A node that is down or refuses is logged and skipped: the file
    needs one honest holder, and the accused itself counts (it is in the quorum)."""
    stored = []
    for address in to:
        try:
            with _connect(ledger, identity, address, timeout) as conn:
                conn.request("evidence-put", [np.frombuffer(data, dtype=np.uint8)],
                             accusation_id=accusation_id)
            stored.append(address)
        except (ServiceError, LedgerError, OSError) as exc:
            log.warning("evidence of accusation %d not stored at %s: %s", accusation_id,
                        address, exc)
    return stored


def fetch_evidence(ledger: Ledger, identity: Identity, digest: bytes, sources: Iterable[str],
                   store: EvidenceStore | None = None, timeout: float = 5.0) -> bytes | None:
    """The evidence file with keccak256 `digest`: from `store`, else from the first of
    `sources` (node addresses) that hands over bytes with that hash; kept in `store`."""
    if store is not None and (data := store.get(digest)) is not None:
        return data
    for address in sources:
        try:
            with _connect(ledger, identity, address, timeout) as conn:
                _, arrays = conn.request("evidence-get", hash=digest.hex())
            data = _as_bytes(arrays)
        except (ServiceError, LedgerError, OSError) as exc:
            log.info("evidence %s... not fetched from %s: %s", digest.hex()[:16], address, exc)
            continue
        if keccak(data) == digest:
            if store is not None:
                store.put(data)
            return data
    return None


def proves(ledger: Ledger, data: bytes | None, accusation: AccusationInfo) -> tuple[bool, str]:
    """Does this file prove this accusation? (verdict, why). It must be the file the
    accusation names, about its job and culprit, and verify as a proof (a deviation or a
    wrong result share, or committed inputs that are not what the culprit stores; an
    absence is an attestation and proves nothing worth a slash)."""
    from enigma.mpc.blame import EvidenceError

    from .culprits import PROVED, read_bundle
    from .jobs import JobError, verify_evidence_file

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

    def __init__(self, node: Node, interval: float = 1.0, always_dispute: bool = False) -> None:
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
            with self.node._ledger_lock:
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
