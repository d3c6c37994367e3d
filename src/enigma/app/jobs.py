"""Jobs: an analyst's signed script run by a quorum on an owner's shared dataset.

Who does what (docs/jobs.md has the messages and the alternatives):

  analyst  signs keccak256(script) with its ledger key (`enigma sign`);
  owner    posts the job on the ledger (fee in escrow; the contract draws the quorum),
           asks each quorum member for a mesh port (`job-open`), then sends every member
           the script, the schema, the mesh peers and its share of the owner's output key
           (`job-run`, over the member's authenticated, encrypted service channel);
  members  run the job (`NodeJobs.run`, steps there), commit the hash of their sealed
           result shares on the ledger and hand the shares back on the same channel;
  owner    checks each member's shares against its ledger commitment, recombines them,
           checks its own output MAC (`mpc.client.open_output`), decodes, and accepts
           the job on the ledger, which pays the nodes and the author.

Nodes never see a result: they hold additive shares of it, and the owner's key k makes
a changed share detectable. The job runs inside the node daemon (the only process that
may open the node's share store); `job_ops` gives the daemon its two extra requests.
The quorum must be holders of the dataset (see `QuorumNotHoldersError`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from enigma.field import Field
from enigma.lang.budget import Budget, ScriptLimitError
from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.interpreter import Revealed, run
from enigma.lang.mpc_backend import Fx, MpcBackend
from enigma.lang.plain import column_range, referenced_columns
from enigma.lang.reduction import (
    CHECK_NAME,
    ITERATIVE,
    NotSplittable,
    SplitBackend,
    accept_handover,
    batch_statistics,
    handover_shares,
    input_sum,
    plan,
    statistics_size,
)
from enigma.lang.schema import Schema
from enigma.ledger import (
    ContractRevert,
    Deployment,
    JobInfo,
    JobStatus,
    Ledger,
    LedgerError,
    Policy,
    recover_signer,
    script_hash,
)
from enigma.ledger.errors import AccessDenied
from enigma.mpc import client
from enigma.mpc.blame import Package, Program, blame_mode, encode_abort
from enigma.mpc.engine import Engine
from enigma.mpc.faults import (
    CHANNEL_KINDS,
    INPUT_KINDS,
    PROVIDER_KINDS,
    REPLY_KINDS,
    STORE_KINDS,
    DroppedOut,
    Fault,
    FaultyChannel,
    FaultyProvider,
)
from enigma.mpc.inputs import check_tags
from enigma.mpc.secret import Secret, concat
from enigma.net.errors import AuthenticationError, NetError
from enigma.net.identity import PeerInfo
from enigma.net.local import free_ports
from enigma.net.mesh import Mesh
from enigma.prep.commands import HEProviderFactory
from enigma.prep.dealer import DealerFactory
from enigma.prep.served import Demand, ServedProvider, SliceFactory, slice_digest, take_slice
from enigma.sharing import AuthShare, additive, shamir, tags
from enigma.storage.commitment import (
    column_facts,
    dataset_commitment,
    describe,
    read_column_facts,
)
from enigma.storage.records import record_key

from . import failures
from .budget import Guard, JobBudget
from .budget import plan as budget_plan
from .culprits import (
    Incident,
    MemberInputs,
    blame_job,
    bundle_meta,
    settle_judgement,
    verify_bundle,
)
from .demand import job_demand
from .service import CLIENT_GONE, Connection, ServiceError
from .stock import StockSession, finish_in_background, open_session
from .upload import UploadError

if TYPE_CHECKING:
    from .node import Node
    from .owner import Owner

log = logging.getLogger(__name__)

#: Test-only fault injection: a node started with this variable set to "tamper-partial"
#: changes the partial aggregate it re-shares, so a test can show the owner refuses the job;
#: "tamper-reshare" changes its part of the centroids a reducer re-shares to chunk quorums;
#: "tamper-result" hands the owner result shares other than the ones it committed to.
FAULT_ENV = "ENIGMA_TEST_FAULT"

#: Digits of comparisons in jobs on HE preprocessing: 2-bit digits need 3x fewer products
#: offline than the engine's default 4 (docs/preprocessing.md, "digit_bits = 2").
HE_DIGIT_BITS = 2

#: How long a member keeps the blame package of a job that succeeded, in case the owner's
#: own result check fails and it asks for it (`job-blame`); and how many it keeps at most.
KEEP_SECONDS = 900.0
KEEP_JOBS = 16

#: Work budget posted with a job when the owner gives none; the unused part is refunded.
CANCEL_GRACE = 10.0
"""Seconds the owner still waits for the other members after cancelling them."""
CANCEL_TIMEOUT = 5.0
DROPPED = "dropped"
"""Fault injection: a member that leaves without a word (no signed record either)."""
PENDING = "pending"
"""The kind of the error standing for a member the owner stopped waiting for."""
DEFAULT_ROUNDS = 20_000
DEFAULT_MULTIPLICATIONS = 200_000_000


class JobError(RuntimeError):
    """A job that could not be posted, run or settled; the message says which step and why."""


class JobCancelled(JobError):
    """The owner stopped the job (Ctrl-C, `enigma job cancel`); its escrow went back."""


class QuorumNotHoldersError(JobError):
    """The ledger drew a quorum member that holds no share of the dataset."""


def result_commitment(job_id: int, x: np.ndarray, z: np.ndarray, meta: bytes) -> bytes:
    """What a member commits on the ledger: SHA-256 over the job id, its sealed shares and
    the public facts of its reply (`result_meta`), so a member that lies about a result's
    name, shape, scale, bound or exact value has signed the lie (a replay shows it)."""
    h = hashlib.sha256(b"enigma.job.result.v2" + job_id.to_bytes(8, "big"))
    h.update(np.ascontiguousarray(x, dtype="<u8").tobytes())
    h.update(np.ascontiguousarray(z, dtype="<u8").tobytes())
    h.update(len(meta).to_bytes(8, "big") + meta)
    return h.digest()


#: The fields of a member's reply that every member must state identically.
META_FIELDS = ("layout", "exact", "printed")


def result_meta(reply: Mapping[str, Any]) -> bytes:
    """The public facts of a reply in one canonical encoding (sorted JSON): names, shapes,
    scales, error bounds and ranges of the sealed values, the exact (public) values and what
    the script printed. Every honest member derives the same bytes from public data."""
    return json.dumps({k: reply[k] for k in META_FIELDS}, sort_keys=True,
                      separators=(",", ":")).encode()


def agreed_meta(job_id: int, quorum: Sequence[str], replies: Sequence[Any]) -> None:
    """Refuse a result unless every member stated the same public facts byte for byte.

    Why not take one member's: the owner decodes every value with them (scale, shape),
    so one member could otherwise rescale or replace a result alone; with at least one
    honest member, agreement means the honest member's facts."""
    groups: dict[bytes, list[str]] = {}
    for address, (reply, _) in zip(quorum, replies, strict=True):
        groups.setdefault(result_meta(reply), []).append(address)
    if len(groups) > 1:
        parts = sorted(groups.values(), key=len)
        raise JobError(f"job {job_id}: members disagree on the public facts of the result "
                       "(names, shapes, scales, bounds or exact values): "
                       + "; ".join(f"{m} state one version" for m in parts)
                       + "; the result is refused")


def inputs_digest(mine: MemberInputs) -> bytes:
    """What a member commits to as its private inputs in blame mode (`Material.inputs`):
    its Shamir shares of the columns read (values and tags), its point, the row count, its
    key shares, and what it says it stores (`stored`: per chunk, every column's digest,
    which the ledger's commitment for this holder covers). The owner replays a member only
    on inputs that hash to this, and holds it to its ledger commitment
    (`culprits.stored_contradiction`)."""
    h = hashlib.sha256(b"enigma.job.inputs.v2" + mine.point.to_bytes(8, "big")
                       + mine.rows.to_bytes(8, "big"))
    for name, a in mine.shares.items():
        h.update(len(name).to_bytes(2, "big") + name.encode())
        h.update(np.ascontiguousarray(a, dtype="<u8").tobytes())
    h.update(np.ascontiguousarray(mine.key_share, dtype="<u8").tobytes())
    h.update(json.dumps(mine.stored, sort_keys=True, separators=(",", ":")).encode())
    return h.digest()


def session_for(job_id: int, deployment: Deployment) -> bytes:
    """The mesh session of a job: bound to the chain and contract, so it is never reused."""
    return hashlib.sha256(f"enigma.job.v1/{deployment.chain_id}/{deployment.jobs}/"
                          f"{job_id}".encode()).digest()


# ---------------------------------------------------------------------------- node side


@dataclass
class _Partial:
    """One chunk-quorum member's additive parts of (P, kP) for this reducing member."""

    layout: list[dict[str, Any]]
    rows: int
    p: np.ndarray
    z: np.ndarray


def partial_commitment(job_id: int, parent: int, parts: Sequence[np.ndarray]) -> bytes:
    """What a chunk-quorum member commits on its sub-job: SHA-256 over every part it sent."""
    h = hashlib.sha256(b"enigma.job.partial.v1" + job_id.to_bytes(8, "big")
                       + parent.to_bytes(8, "big"))
    for a in parts:
        h.update(np.ascontiguousarray(a, dtype="<u8").tobytes())
    return h.digest()


@dataclass
class _Opened:
    job: JobInfo
    store_name: str
    port: int


@dataclass
class _Kept:
    """What a member hands the owner if a job that succeeded here fails the owner's check."""

    until: float
    package: bytes
    mine: MemberInputs


@dataclass
class _GatedSession(StockSession):
    """A blame-mode job's stock session on HE, saved only once the package cannot leave.

    Why: the package holds this member's MAC key share alpha_i, which is also the key of
    the quorum's remaining stock. If the owner got every member's package, it would know
    alpha and could forge MACs in later jobs of the quorum (other owners' jobs) with one
    corrupt member. So the stock is saved only if `gate` says the package is dropped
    (the owner accepted the job on the ledger); if the package was handed over, or the
    owner settles nothing in time, the stock is dropped instead: production, never keys.
    """

    gate: Callable[[], bool] = lambda: False

    def save(self) -> None:
        if self.gate():
            super().save()
        else:
            log.warning("quorum %s: this blame-mode job's package may reach its owner, and "
                        "it holds the stock's MAC key share: the stock is dropped", self.qid)


class NodeJobs:
    """The job requests of one node daemon (`job-open`, `job-run`, `job-blame`, ...)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._opened: dict[tuple[bytes, int], _Opened] = {}
        self._lock = threading.Lock()
        self._partials: dict[tuple[int, int], dict[tuple[int, str], _Partial]] = {}
        """(parent job, batch) -> (chunk job, sender) -> the parts received."""
        self._reshares: dict[tuple[int, int], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        """(chunk job, batch) -> reducing member -> its parts of a re-shared value (c, k c)."""
        self._arrived = threading.Condition(self._lock)
        self._jobs: dict[int, JobInfo] = {}
        self._keys: dict[str, bytes] = {}
        self._running: dict[int, bytes] = {}
        """Split jobs (chunk or reducing) running here -> the client that may cancel them."""
        self._cancelled: set[int] = set()
        self._guards: dict[tuple[bytes, int], Guard] = {}
        """Jobs running here, by (owner, job): their budgets, which `cancel` stops."""
        self._kept: dict[tuple[bytes, int], _Kept] = {}
        """Blame packages of jobs that succeeded, by (owner, job): handed over only if the
        owner's result check fails (`blame_package`), dropped after KEEP_SECONDS."""
        self._handed: set[tuple[bytes, int]] = set()
        """Jobs whose package went to the owner (their stock is never saved)."""

    def _ledger(self, fn: Callable[[Ledger], Any]) -> Any:
        assert self.node.ledger is not None
        with self.node._ledger_lock:
            return fn(self.node.ledger)

    def _job_record(self, job_id: int) -> JobInfo:
        """A job's record for its fixed fields (dataset, script hash, quorum), read once.

        A split job makes every reducer check a dozen partials against the same few jobs;
        reading the ledger for each, under the node's one ledger lock, cost a second.
        Status is never taken from here: `open` reads it fresh.
        """
        with self._lock:
            info = self._jobs.get(job_id)
        if info is None:
            info = self._ledger(lambda lg: lg.job(job_id))
            with self._lock:
                self._jobs[job_id] = info
        return info

    def _transport_key(self, address: str) -> bytes:
        """A registered node's transport key (fixed at registration), read once."""
        with self._lock:
            key = self._keys.get(address)
        if key is None:
            key = self._ledger(lambda lg: lg.node(address).transport_key)
            with self._lock:
                self._keys[address] = key
        return key

    def open(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
             ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Check that the job is this owner's, on its dataset, with this node drawn; give a port.

        1. read the job from the ledger: it must be open and list this node in its quorum;
        2. its dataset record's DHT key must be this client's record key for the dataset
           named in the request (so only the owner can start jobs on its data);
        3. this node must hold a sealed generation of that dataset;
        4. reserve a free TCP port for the job's mesh and reply with it and this node's
           party number (its position in the quorum).
        """
        from .node import store_name

        assert self.node.store is not None
        job_id = int(header["job_id"])
        job = self._ledger(lambda lg: lg.job(job_id))
        me = self.node.address
        if job.status.name != "OPEN":
            raise ServiceError("state", f"job {job_id} is {job.status.name}, not open")
        if me not in job.quorum:
            raise ServiceError("not-participant", f"this node ({me}) is not in the quorum of "
                                                  f"job {job_id}: {job.quorum}")
        record = self._ledger(lambda lg: lg.dataset(job.dataset_id))
        if record.dht_key != record_key("dataset", header["dataset"], client_key):
            raise ServiceError("ledger", f"job {job_id} is on ledger dataset {job.dataset_id}, "
                                         f"which is not dataset {header['dataset']!r} of this "
                                         "client; only a dataset's owner may start its jobs")
        name = store_name(header["dataset"], client_key, int(header["gen"]))
        if header.get("role") != "reduce" and self.node.store.manifest(name) is None:
            raise ServiceError("missing", f"this node holds no sealed generation "
                                          f"{header['gen']} of {header['dataset']!r}")
        port = free_ports(1, self.node.config.host)[0]
        with self._lock:
            self._opened[(client_key, job_id)] = _Opened(job, name, port)
        return {"port": port, "party": job.quorum.index(me)}, []

    def run(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
            ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Run an opened job and commit its result.

        1. the script's keccak256 must be the job's script hash, the schema's digest the
           dataset's schema hash, and the script must pass the checker on this node;
        2. the mesh peers' keys are the transport keys the ledger holds for the quorum (the
           owner only says where they listen);
        3. connect the quorum, make the preprocessing provider (HE unless the owner asked
           for the insecure test dealer, which every member then logs);
        4. `compute`: Shamir shares -> additive (Lagrange over the quorum's points) ->
           MAC'd inputs, run the script, seal the revealed values for the owner's key;
        5. commit SHA-256 of the sealed shares on the ledger, reply with the shares.
        """
        job_id = int(header["job_id"])
        with self._lock:
            opened = self._opened.pop((client_key, job_id), None)
        if opened is None:
            raise ServiceError("state", f"job {job_id} was not opened by this client; send "
                                        "job-open first")
        assert self.node.ledger is not None
        me = opened.job.quorum.index(self.node.address)
        session = session_for(job_id, self.node.ledger.deployment)
        try:
            budget = JobBudget.from_header(header.get("budget"))
        except ValueError as exc:
            raise self._signed(session, me, "request", None,
                               f"job {job_id}: {exc}") from exc

        def over_work(job: JobInfo = opened.job) -> str | None:
            e = guard.engine
            if e is None:
                return None
            work = getattr(guard.provider, "preprocessing_work", None) or {}
            rounds = e.stats.rounds - int(work.get("rounds", 0))
            triples = e.stats.triples - int(work.get("triples", 0))
            if rounds > job.rounds or triples > job.multiplications:
                return (f"the job's work ({rounds:,} rounds, {triples:,} multiplications) ran "
                        f"over what was posted ({job.rounds:,}, {job.multiplications:,})")
            return None

        guard = Guard(budget, over_work, CLIENT_GONE.get())
        with self._lock:
            self._guards[(client_key, job_id)] = guard
        try:
            with guard:
                return self._checked_run(job_id, opened, client_key, header, arrays, guard)
        except Exception as exc:  # every failure ends in a signed record
            refused = isinstance(exc, ServiceError)
            if refused and (exc.abort or exc.kind == DROPPED):
                raise
            reason, peer = failures.classify(exc, guard.limit)
            message = str(exc) if refused else f"job {job_id}: {type(exc).__name__}: {exc}"
            log.warning("job %d stopped (%s): %s", job_id, reason, message)
            raise self._signed(session, me, reason, peer, message,
                               exc.kind if refused else "failed") from exc
        finally:
            with self._lock:
                self._guards.pop((client_key, job_id), None)

    def _signed(self, session: bytes, me: int, reason: str, peer: int | None, message: str,
                kind: str = "failed") -> ServiceError:
        """The error reply of a failed job member: its message and its signed record."""
        assert self.node.identity is not None
        record = failures.sign_record(self.node.identity, session, me, reason, peer, message)
        return ServiceError(kind, f"{message} [{reason}]", encode_abort(record))

    def _checked_run(self, job_id: int, opened: _Opened, client_key: bytes,
                     header: dict[str, Any], arrays: list[np.ndarray], guard: Guard
                     ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """`run` steps 1-5 under the job's budget."""
        job, source = opened.job, str(header["source"])
        if script_hash(source.encode()) != job.script_hash:
            raise ServiceError("bad-request", f"the script sent is not the one job {job_id} "
                                              "names on the ledger (script hash differs)")
        schema = Schema.from_dict(header["schema"], f"job {job_id}")
        record = self._ledger(lambda lg: lg.dataset(job.dataset_id))
        if bytes.fromhex(schema.digest()) != record.schema_hash:
            raise ServiceError("bad-request", f"the schema sent is not the one of ledger "
                                              f"dataset {job.dataset_id} (digest differs)")
        try:
            script = check(source, schema, str(header.get("filename", "<script>")))
        except ScriptError as exc:
            raise ServiceError("refused", f"job {job_id}: {exc}") from exc
        keys = [self._transport_key(a) for a in job.quorum]
        peers = [PeerInfo(i, str(p["host"]), int(p["port"]), keys[i])
                 for i, p in enumerate(header["peers"])]
        me = job.quorum.index(self.node.address)
        if peers[me].port != opened.port:
            raise ServiceError("bad-request", f"the peers list gives this node port "
                                              f"{peers[me].port}, job-open reserved {opened.port}")
        assert self.node.identity is not None and self.node.ledger is not None
        role = str(header.get("role", "single"))
        filename = str(header.get("filename", "<script>"))
        timeout = float(header.get("timeout", 120.0))
        phases: dict[str, float] = {}
        t0 = time.perf_counter()
        if role in ("map", "reduce"):
            with self._lock:
                self._running[job_id] = client_key
        try:
            return self._run(job_id, job, opened, client_key, header, arrays, script, schema,
                             peers, me, role, filename, timeout, phases, t0, guard)
        finally:
            with self._lock:
                self._running.pop(job_id, None)
                self._cancelled.discard(job_id)
                for key in [k for k in self._partials if k[0] == job_id]:
                    del self._partials[key]
                for key in [k for k in self._reshares if k[0] == job_id]:
                    del self._reshares[key]

    def _run(self, job_id: int, job: JobInfo, opened: _Opened, client_key: bytes,
             header: dict[str, Any], arrays: list[np.ndarray], script: Any, schema: Schema,
             peers: list[PeerInfo], me: int, role: str, filename: str, timeout: float,
             phases: dict[str, float], t0: float, guard: Guard
             ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """`run` from its step 3 on, with the job registered for cancellation."""
        assert self.node.identity is not None and self.node.ledger is not None
        fault = self._fault(job_id, me, timeout)
        if role == "reduce":
            parts, layout, total_rows = self._await_partials(job_id, job, header, timeout)
            phases["wait_partials"] = time.perf_counter() - t0
        else:
            if role == "map":
                parent_job = self._job_record(int(header["parent"]))
                if (parent_job.dataset_id, parent_job.script_hash) != (job.dataset_id,
                                                                      job.script_hash):
                    raise ServiceError("bad-request", f"job {header['parent']} is not on the "
                                                      f"dataset and script of job {job_id}")
            chunks = header.get("chunks")
            read = list(referenced_columns(script))
            place = self._check_generation(job, opened.store_name)
            shares, point, rows, stored = self._shares(opened.store_name,
                                                       read + [tags.column(c) for c in read],
                                                       schema, None if chunks is None else
                                                       [int(c) for c in chunks])
            if point != place:
                raise ServiceError("store", f"this node's shares are at point {point}, ledger "
                                              f"dataset {job.dataset_id} places it at {place}")
            if fault is not None and fault.kind in STORE_KINDS and shares and rows:
                shares, stored = _rewritten(self.node.field, shares, stored)
            mine = MemberInputs(shares, point, rows, arrays[0], stored=stored)
            phases["read_shares"] = time.perf_counter() - t0
        dealer = header.get("dealer_seed")
        if dealer:
            log.warning("job %d runs on the INSECURE test dealer (tests and benchmarks only)",
                        job_id)
        blamed = bool(header.get("blame"))
        if blamed and role != "single":
            raise ServiceError("bad-request", f"job {job_id}: blame mode needs a job on one quorum "
                                          "(docs/blame.md)")
        demand: Demand | None = None
        if blamed and not dealer:  # before connecting: the others are still reading shares
            t1 = time.perf_counter()
            try:
                demand = job_demand(
                    lambda e, sh, pt, r, k: compute(e, script, schema, sh, pt, r, k, filename,
                                                    budget=guard.budget.fresh()),
                    schema, list(shares), rows, len(peers), self.node.field,
                    digit_bits=HE_DIGIT_BITS)
            except (ScriptError, NotSplittable) as exc:
                raise ServiceError("refused", f"job {job_id}: {exc}") from exc
            phases["plan"] = time.perf_counter() - t1
        started = time.perf_counter()
        # setup waits for members that are still reading their shares: the message timeout
        # (short in blame tests, where it decides who is absent) is no bound for it
        stock: StockSession | None = None
        with contextlib.ExitStack() as closing:
            mesh = closing.enter_context(Mesh(
                me, self.node.identity, peers, session_for(job_id, self.node.ledger.deployment),
                timeout=timeout, connect_timeout=max(timeout, 30.0)))
            if dealer:
                factory = DealerFactory(bytes.fromhex(dealer), insecure=True)
                provider = factory(self.node.field, me, len(peers))
            elif role == "single":  # split jobs run side by side on one quorum: no stock
                stock = open_session(self.node.stocks, mesh, job.quorum, me, wait=timeout)
                provider = stock.provider
            else:
                provider = HEProviderFactory()(self.node.field, me, len(peers), channel=mesh)
            prep_slice: bytes | None = None
            if demand is not None:
                # blame mode on HE: the job's whole slice, made (or checked out of the stock)
                # on the plain mesh before the online phase; the engine runs from exactly it
                # and the material commits to its digest (prep.served, docs/blame.md)
                assert stock is not None
                t1 = time.perf_counter()
                _agree_on_demand(mesh, demand)
                piece = take_slice(stock.provider, demand)
                prep_slice = piece.encode()
                factory = SliceFactory({me: prep_slice})
                provider = ServedProvider(self.node.field, piece)
                phases["prep"] = time.perf_counter() - t1
            if fault is not None and fault.kind in PROVIDER_KINDS:
                provider = FaultyProvider(provider, fault, insecure=True)
            wrap = None
            if fault is not None and fault.kind in CHANNEL_KINDS \
                    and fault.kind != "wrong-recipient":  # the app-layer kind: see below
                def wrap(inner: Any, f: Fault = fault) -> FaultyChannel:
                    return FaultyChannel(inner, f, insecure=True)
            signed = None
            digits = {} if dealer else {"digit_bits": HE_DIGIT_BITS}
            if blamed:
                engine, signed = blame_mode(
                    mesh, self.node.identity, [q.public_key for q in peers], provider, factory,
                    inputs=inputs_digest(mine), wrap=wrap, **digits)
            else:
                engine = Engine(mesh if wrap is None else wrap(mesh), provider, **digits)
            guard.engine, guard.provider = engine, provider
            phases["connect"] = time.perf_counter() - started
            try:
                if role == "map":
                    chunk_side = self._chunk_exchange(job_id, header, rows, timeout, phases)
                    out = compute_map(engine, script, schema, shares, point, rows, arrays[0],
                                      filename, int(header["total_rows"]), chunk_side, phases,
                                      guard.budget)
                elif role == "reduce":
                    out = compute_reduce(engine, script, schema, parts, arrays[0], layout,
                                         total_rows, filename,
                                         self._reduce_exchange(job_id, job, header, timeout),
                                         guard.budget)
                else:
                    out = compute(engine, script, schema, shares, point, rows, arrays[0],
                                  filename, fault, phases, guard.budget)
            except (ScriptError, NotSplittable) as exc:  # the script's: every member's
                raise ServiceError("refused", f"job {job_id}: {exc}") from exc
            except ServiceError:
                raise
            except DroppedOut as exc:  # fault injection: leave without a word (or a package)
                log.warning("job %d: FAULT INJECTION: this node drops out", job_id)
                raise ServiceError(DROPPED, f"job {job_id}: dropped out") from exc
            except Exception:  # a failed MAC check, a peer gone: `run` signs why
                if signed is None:
                    raise
                # blame mode: sign why, hand the package to the owner alone (this channel
                # is encrypted to it), never to the quorum or the public (docs/blame.md)
                exc = sys.exc_info()[1]
                assert exc is not None
                reason = failures.classify(exc, guard.limit)[0]
                log.warning("job %d stopped (%s): %s: %s", job_id, reason, type(exc).__name__,
                            exc)
                package = signed.package(signed.abort(  # the engine's reasons, unless a limit
                    exc, reason if reason in failures.BUDGET_REASONS else None)).encode()
                return self._blame_reply(job_id, f"{type(exc).__name__}: {exc}", package,
                                         mine, prep_slice)
            work = getattr(provider, "preprocessing_work", None)
            if work:  # served HE slice: digit masks' products are preprocessing, not charged
                out["stats"]["rounds"] -= work["rounds"]
                out["stats"]["triples"] -= work["triples"]
            if signed is not None:  # kept here; the owner asks for it only if its check fails
                self._keep(client_key, job_id, _Kept(
                    time.monotonic() + KEEP_SECONDS, signed.package(None).encode(),
                    replace(mine, prep=prep_slice or b"")))
            out["stats"]["prep"] = stock.report() if stock is not None else {
                "provider": "dealer" if dealer else "he",
                "produced": dict(getattr(provider, "produced", {}))}
            if stock is not None:  # top up and save while the owner settles (app/stock.py)
                cfg = self.node.config
                session = stock
                if prep_slice is not None:
                    session = _GatedSession(**{f.name: getattr(stock, f.name)
                                               for f in fields(StockSession)},
                                            gate=lambda: self._settled(client_key, job_id,
                                                                       timeout))
                finish_in_background(session, mesh, closing.pop_all().close, cfg.prep_ahead,
                                     cfg.prep_ahead_bits, f"job {job_id}")
        seconds = time.perf_counter() - started
        rounds, mults = out["stats"]["rounds"], out["stats"]["triples"]
        if role == "map":
            parent = int(header["parent"])
            commitment = partial_commitment(job_id, parent, chunk_side.sent)
            t0 = time.perf_counter()
            self._ledger(lambda lg: lg.commit_result(job_id, commitment,
                                                     parent.to_bytes(32, "big"), rounds, mults))
            phases["commit"] = time.perf_counter() - t0
            log.info("chunk job %d (of %d) done in %.2f s: %d rounds, %d triples", job_id,
                     parent, seconds, rounds, mults)
            return {"stats": out["stats"], "commitment": commitment.hex(),
                    "seconds": seconds, "phases": phases}, []
        phases["mpc"] = time.perf_counter() - started - phases["connect"]
        x, z = out.pop("sealed")
        if fault is not None and fault.kind in REPLY_KINDS:
            out = _lie(out, fault.kind)
        if fault is not None and fault.kind == "wrong-recipient":
            log.warning("job %d: FAULT INJECTION (wrong-recipient): this node hands the owner "
                        "a result share sealed for another recipient", job_id)
            x, z = z, x
        commitment = result_commitment(job_id, x, z, result_meta(out))
        if os.environ.get(FAULT_ENV) == "tamper-result":
            log.warning("job %d: FAULT INJECTION (%s): this node hands the owner result shares "
                        "other than the ones it commits to", job_id, FAULT_ENV)
            x = x.copy()
            x[:1] ^= np.uint64(1)
        t0 = time.perf_counter()
        self._ledger(lambda lg: lg.commit_result(job_id, commitment, self.node.node_id,
                                                 rounds, mults))
        phases["commit"] = time.perf_counter() - t0
        out["phases"] = phases
        log.info("job %d done in %.2f s: %d rounds, %d triples", job_id, seconds, rounds, mults)
        reply = {**out, "commitment": commitment.hex(), "seconds": seconds}
        return reply, [x, z]

    def _fault(self, job_id: int, me: int, timeout: float) -> Fault | None:
        """The fault this node was started with (`--misbehave`), for this job, or None."""
        kind = self.node.config.misbehave
        if kind is None:
            return None
        log.warning("job %d: FAULT INJECTION: this node misbehaves as %r (started with "
                    "--misbehave and --insecure-test-faults; never in production)", job_id, kind)
        return Fault(kind, me, at=self.node.config.misbehave_at, stall=timeout + 2.0)

    def _keep(self, client_key: bytes, job_id: int, kept: _Kept) -> None:
        """Keep a succeeded job's package for its owner; drop expired and the oldest."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._kept.items() if v.until < now]:
                del self._kept[key]
            while len(self._kept) >= KEEP_JOBS:
                del self._kept[min(self._kept, key=lambda k: self._kept[k].until)]
            self._kept[(client_key, job_id)] = kept

    def _settled(self, client_key: bytes, job_id: int, wait: float) -> bool:
        """Wait (up to `wait` s) for the owner to accept the job on the ledger, then drop its
        kept package so it can never leave; False if it left, or nothing settled in time."""
        deadline = time.monotonic() + wait
        key = (client_key, job_id)
        while True:
            with self._lock:
                if key in self._handed:
                    return False
                if key not in self._kept:  # expired or evicted: it can no longer leave
                    return True
            try:
                status = self._ledger(lambda lg: lg.job(job_id)).status
            except LedgerError:
                status = None
            if status == JobStatus.ACCEPTED:
                with self._lock:
                    if key in self._handed:
                        return False
                    self._kept.pop(key, None)
                    return True
            if status not in (None, JobStatus.OPEN) or time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def blame_package(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
                      ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """`job-blame`: the package of a blame-mode job that succeeded here, for the client
        that ran it, once (its result failed the owner's own check).

        Why not in the job's reply: a job that succeeds, as nearly all do, then costs
        nothing extra, and no member's material leaves it needlessly."""
        job_id = int(header["job_id"])
        with self._lock:
            kept = self._kept.pop((client_key, job_id), None)
            if kept is not None:
                self._handed.add((client_key, job_id))
        if kept is None or kept.until < time.monotonic():
            raise ServiceError("state", f"no blame package of job {job_id} is kept here for "
                                        "this client (never run here, expired or handed over)")
        return self._blame_reply(job_id, None, kept.package, kept.mine, kept.mine.prep or None)

    @staticmethod
    def _blame_reply(job_id: int, error: str | None, package: bytes, mine: MemberInputs,
                     prep: bytes | None = None) -> tuple[dict[str, Any], list[np.ndarray]]:
        """A blame-mode package reply: result shares (empty: after an abort there are none,
        and `job-blame` follows a reply that carried them), the sealed package, this member's
        committed inputs, and on HE its preprocessing slice, which the owner needs to replay
        it. It travels on the owner's own encrypted channel; nothing of it is logged or
        published."""
        shares, names = mine.shares, list(mine.shares)
        reply: dict[str, Any] = {"blame": {"aborted": error is not None, "error": error,
                                    "point": mine.point, "rows": mine.rows, "columns": names,
                                    "stored": mine.stored, "prep": prep is not None}}
        if error is not None:
            reply["job_id"] = job_id
        extra = [] if prep is None else [np.frombuffer(prep, np.uint8)]
        empty = np.zeros((0, 2), np.uint64)
        return reply, [empty, empty, np.frombuffer(package, np.uint8), *extra,
                       *[shares[c] for c in names]]

    def _send_partials(self, job_id: int, parent: int, reducers: list[dict[str, Any]],
                       p: np.ndarray, z: np.ndarray, layout: list[dict[str, Any]], rows: int,
                       timeout: float, batch: int = 0) -> list[np.ndarray]:
        """Split this member's shares of (P, kP) into one additive part per reducing member
        and send each its part over the node-to-node service channel (authenticated by the
        ledger's transport keys); returns the parts in the order sent (for the commitment).
        """
        F = self.node.field
        job = self._job_record(parent)
        if len(reducers) != len(job.quorum):
            raise ServiceError("bad-request", f"{len(reducers)} reducing members given, job "
                                              f"{parent} has {len(job.quorum)}")
        keys = [self._transport_key(a) for a in job.quorum]
        p_parts = additive.split(F, p, len(keys))
        z_parts = additive.split(F, z, len(keys))
        if os.environ.get(FAULT_ENV) == "tamper-partial":
            log.warning("job %d: FAULT INJECTION (%s): this node adds 1 to its partial", job_id,
                        FAULT_ENV)
            p_parts[0][0] = F.add(p_parts[0][0:1], F.const(1).reshape(1, 2))[0]
        assert self.node.identity is not None
        identity = self.node.identity

        def send(j: int) -> None:
            r = reducers[j]
            with Connection.open(str(r["host"]), int(r["port"]), identity, keys[j],
                                 timeout) as conn:
                conn.request("job-partial", [p_parts[j], z_parts[j]], parent=parent,
                             sub_job=job_id, sender=self.node.address, layout=layout,
                             rows=rows, batch=batch)

        with ThreadPoolExecutor(max_workers=len(keys)) as pool:
            for f in [pool.submit(send, j) for j in range(len(keys))]:
                f.result()
        return [a for pair in zip(p_parts, z_parts, strict=True) for a in pair]

    def _check_handover(self, header: dict[str, Any], client_key: bytes,
                        arrays: list[np.ndarray], *, into_chunk: bool, what: str
                        ) -> tuple[int, int, str]:
        """The checks both directions of a hand-over share: (parent, sub-job, sender).

        Partials go from a chunk job's quorum to its parent's, re-shares the other way
        (`into_chunk`): this node must be in the receiving job's quorum, the two jobs on
        the same dataset and script, the sender in the sending job's quorum with the
        channel's key its ledger transport key, and the arrays two canonical field vectors
        of one length.
        """
        parent, sub, sender = int(header["parent"]), int(header["sub_job"]), str(header["sender"])
        job, subjob = self._job_record(parent), self._job_record(sub)
        receiving, sending, sending_id = (subjob, job, parent) if into_chunk else (job, subjob, sub)
        if self.node.address not in receiving.quorum:
            raise ServiceError("not-participant", f"this node does not compute job {sub}"
                               if into_chunk else f"this node does not reduce job {parent}")
        if (subjob.dataset_id, subjob.script_hash) != (job.dataset_id, job.script_hash):
            raise ServiceError("bad-request", f"job {sub} is not a chunk job of job {parent}")
        if sender not in sending.quorum or self._transport_key(sender) != client_key:
            raise ServiceError("not-participant", f"the sender is not {sender} of the quorum "
                                                  f"of job {sending_id}")
        if len(arrays) != 2 or arrays[0].shape != arrays[1].shape or arrays[0].ndim != 2:
            raise ServiceError("bad-request", f"{what} is two field vectors of one length")
        try:
            for a in arrays:
                self.node.field.check(a)
        except Exception as exc:
            raise ServiceError("bad-request", f"{what} holds non-field values: {exc}") from exc
        return parent, sub, sender

    def partial(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
                ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """A chunk-quorum member's part of the partial aggregates of a job this node reduces
        (accepted after `_check_handover`)."""
        parent, sub, sender = self._check_handover(header, client_key, arrays, into_chunk=False,
                                                   what="a partial")
        with self._arrived:
            self._partials.setdefault((parent, int(header.get("batch", 0))), {})[
                (sub, sender)] = _Partial(list(header["layout"]), int(header["rows"]),
                                          arrays[0], arrays[1])
            self._arrived.notify_all()
        return {}, []

    def reshare(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
                ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """A reducing member's parts of a secret (c, k c) for a chunk job run here (accepted
        after `_check_handover`); the chunk quorum checks k c - z = 0 after summing
        (`accept_handover`)."""
        _, sub, sender = self._check_handover(header, client_key, arrays, into_chunk=True,
                                              what="a re-share")
        with self._arrived:
            self._reshares.setdefault((sub, int(header["batch"])), {})[sender] = (
                arrays[0], arrays[1])
            self._arrived.notify_all()
        return {}, []

    def _collect(self, job_id: int, store: dict[tuple[int, int], Any], key: tuple[int, int],
                 expected: set[Any], timeout: float) -> Any:
        """Wait until `store[key]` holds a part from everyone in `expected`, then take them
        all; raises when the job is cancelled or the timeout passes first."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not expected <= set(store.get(key, {})):
                if job_id in self._cancelled:
                    raise ServiceError("cancelled", f"job {job_id}: the owner cancelled it (a "
                                                    "quorum of the split job failed)")
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = expected - set(store.get(key, {}))
                    raise ServiceError("timeout", f"job {job_id}: nothing from {missing}")
                self._arrived.wait(left)
            return store.pop(key)

    def _await_reshare(self, job_id: int, parent: int, batch: int, timeout: float
                       ) -> tuple[np.ndarray, np.ndarray]:
        """A chunk member: every reducing member's parts of re-share `batch`, summed."""
        senders = set(self._job_record(parent).quorum)
        got = self._collect(job_id, self._reshares, (job_id, batch), senders, timeout)
        if len({v[0].shape for v in got.values()}) != 1:
            raise ServiceError("refused", f"job {job_id}: re-shared parts of different sizes")
        F = self.node.field
        return (additive.combine(F, [got[a][0] for a in sorted(got)]),
                additive.combine(F, [got[a][1] for a in sorted(got)]))

    def _send_reshare(self, parent: int, chunk_members: dict[str, list[dict[str, Any]]],
                      c: np.ndarray, z: np.ndarray, batch: int, timeout: float) -> None:
        """A reducing member: split its shares of (c, k c) afresh for every chunk quorum
        (one additive part per member) and send each member its part (`job-reshare`)."""
        F = self.node.field
        assert self.node.identity is not None
        identity = self.node.identity
        calls = []
        for sub, endpoints in chunk_members.items():
            quorum = self._job_record(int(sub)).quorum
            if len(endpoints) != len(quorum):
                raise ServiceError("bad-request", f"{len(endpoints)} endpoints given for the "
                                                  f"{len(quorum)} members of job {sub}")
            c_parts, z_parts = additive.split(F, c, len(quorum)), additive.split(F, z, len(quorum))
            if os.environ.get(FAULT_ENV) == "tamper-reshare":
                log.warning("job %d: FAULT INJECTION (%s): this node adds 1 to its re-share",
                            parent, FAULT_ENV)
                c_parts[0][0] = F.add(c_parts[0][0:1], F.const(1).reshape(1, 2))[0]
            for j, (address, ep) in enumerate(zip(quorum, endpoints, strict=True)):
                calls.append((int(sub), address, ep, c_parts[j], z_parts[j]))

        def send(call: tuple[int, str, dict[str, Any], np.ndarray, np.ndarray]) -> None:
            sub, address, ep, cp, zp = call
            with Connection.open(str(ep["host"]), int(ep["port"]), identity,
                                 self._transport_key(address), timeout) as conn:
                conn.request("job-reshare", [cp, zp], parent=parent, sub_job=sub,
                             sender=self.node.address, batch=batch)

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(calls)))) as pool:
            for f in [pool.submit(send, call) for call in calls]:
                f.result()

    def _chunk_exchange(self, job_id: int, header: dict[str, Any], rows: int, timeout: float,
                        phases: dict[str, float]) -> ChunkExchange:
        parent, reducers = int(header["parent"]), header["reducers"]

        def send(batch: int, p: np.ndarray, z: np.ndarray, layout: list[dict[str, Any]]
                 ) -> list[np.ndarray]:
            t0 = time.perf_counter()
            sent = self._send_partials(job_id, parent, reducers, p, z, layout, rows, timeout,
                                       batch)
            phases["send_partials"] = phases.get("send_partials", 0.0) + \
                time.perf_counter() - t0
            return sent

        def wait(batch: int) -> tuple[np.ndarray, np.ndarray]:
            t0 = time.perf_counter()
            got = self._await_reshare(job_id, parent, batch, timeout)
            phases["wait_reshare"] = phases.get("wait_reshare", 0.0) + time.perf_counter() - t0
            return got

        return ChunkExchange(send, wait)

    def _reduce_exchange(self, job_id: int, job: JobInfo, header: dict[str, Any],
                         timeout: float) -> ReduceExchange:
        members = {str(k): v for k, v in dict(header.get("chunk_members") or {}).items()}

        def fetch(batch: int) -> tuple[tuple[np.ndarray, np.ndarray], list[dict[str, Any]],
                                       int]:
            return self._await_partials(job_id, job, header, timeout, batch)

        def send(batch: int, c: np.ndarray, z: np.ndarray) -> None:
            if not members:
                raise ServiceError("bad-request", f"job {job_id}: the owner gave no chunk "
                                                  "members to re-share to")
            self._send_reshare(job_id, members, c, z, batch, timeout)

        return ReduceExchange(fetch, send)

    def _await_partials(self, job_id: int, job: JobInfo, header: dict[str, Any],
                        timeout: float, batch: int = 0
                        ) -> tuple[tuple[np.ndarray, np.ndarray], list[dict[str, Any]], int]:
        """Wait for every member of every chunk job the owner named; sum their parts
        (of hand-over `batch`: an iterative script hands over several).

        The layouts (public: which aggregates, their ranges and scales) must be the same
        from every sender, and a chunk job's members must agree on its rows: at least one
        member of each chunk quorum is honest, so agreement means the honest one's values.
        """
        subs = [int(s) for s in header["sub_jobs"]]
        expected = set()
        for sub in subs:
            info = self._job_record(sub)
            if (info.dataset_id, info.script_hash) != (job.dataset_id, job.script_hash):
                raise ServiceError("bad-request", f"job {sub} is not a chunk job of {job_id}")
            expected |= {(sub, a) for a in info.quorum}
        got = self._collect(job_id, self._partials, (job_id, batch), expected, timeout)
        layouts = {repr(v.layout) for v in got.values()}
        if len(layouts) != 1:
            raise ServiceError("refused", f"job {job_id}: chunk quorums disagree on the layout "
                                          "of the partial aggregates")
        total_rows = 0
        for sub in subs:
            rows = {got[k].rows for k in expected if k[0] == sub}
            if len(rows) != 1:
                raise ServiceError("refused", f"job {job_id}: members of chunk job {sub} "
                                              "disagree on its rows")
            total_rows += rows.pop()
        F = self.node.field
        parts = [got[k] for k in sorted(expected)]
        if len({v.p.shape for v in parts}) != 1:
            raise ServiceError("refused", f"job {job_id}: partials of different sizes")
        # one vector per chunk job (its members' parts summed): min/max need them apart
        p = np.concatenate([additive.combine(F, [got[k].p for k in sorted(expected)
                                                 if k[0] == sub]) for sub in subs])
        z = np.concatenate([additive.combine(F, [got[k].z for k in sorted(expected)
                                                 if k[0] == sub]) for sub in subs])
        return (p, z), parts[0].layout, total_rows

    def _check_generation(self, job: JobInfo, name: str) -> int:
        """The generation the owner named must be the one the job's ledger record commits
        to for this node (its sealed manifest's commitment); returns the point the record
        gives this node (its place among the holders, from 1).

        Why: in blame mode this node commits to what it stores and is held to the ledger's
        commitment for it; an owner naming another generation must not make an honest
        node look as if it served other shares."""
        store = self.node.store
        assert store is not None
        manifest = store.manifest(name)
        record = self._ledger(lambda lg: lg.dataset(job.dataset_id))
        me = self.node.address
        place = record.holders.index(me) if me in record.holders else -1
        if manifest is None or place < 0 or \
                record.commitments[place] != dataset_commitment(list(manifest.commitments)):
            raise ServiceError("refused", f"the generation named ({name}) is not the one ledger "
                                          f"dataset {job.dataset_id} records for this node")
        return place + 1

    def _shares(self, name: str, columns: Sequence[str], schema: Schema,
                chunks: Sequence[int] | None = None
                ) -> tuple[dict[str, np.ndarray], int, int, dict[str, Any]]:
        """This node's Shamir shares of the columns a script reads, chunks joined in order
        (all chunks, or the ones a chunk job names), its point, the rows, and what it
        stores of those chunks: every column's digest from its headers (`stored`, the
        facts its ledger commitment covers)."""
        store = self.node.store
        assert store is not None
        manifest = store.manifest(name)
        assert manifest is not None
        parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
        point, rows = 0, 0
        if chunks is not None and any(not 0 <= c < manifest.chunk_count for c in chunks):
            raise ServiceError("bad-request", f"chunks {list(chunks)} are not all among the "
                                              f"{manifest.chunk_count} of the dataset")
        present = set(store.columns(name, 0)) if manifest.chunk_count else set()
        if not set(columns) <= present:
            raise ServiceError("store", f"this node stores no columns "
                               f"{sorted(set(columns) - present)} of the dataset (a dataset "
                               "shared before inputs carried tags lacks the '.tag' columns): "
                               "the owner must share it again")
        described = []
        for chunk in (range(manifest.chunk_count) if chunks is None else chunks):
            for c in columns:
                parts[c].append(store.get(name, chunk, c))
            first = columns[0] if columns else store.columns(name, chunk)[0]
            meta = store.header(name, chunk, first).meta
            point, rows = int(meta["point"]), rows + int(meta["rows"])
            described.append([int(chunk), int(meta["rows"]),
                              column_facts(store.digests(name, chunk))])
        empty = np.zeros((0, 2), np.uint64)
        return ({c: np.concatenate(v) if v else empty for c, v in parts.items()}, point, rows,
                {"store": name, "chunks": described})


    def cancel(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
               ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Stop a job this client opened or runs here: its script stops at its next step
        (the member signs a `cancelled` record), and a split job stops waiting for
        partials or re-shares.

        Why: when one member fails, the others would otherwise run on, or wait out their
        timeouts, before the owner hears anything; when a chunk quorum fails, its
        partials never come, and when the reducers fail, chunk quorums of an iterative
        script wait for centroids likewise.
        """
        job_id = int(header["job_id"])
        why = str(header.get("why", "the owner cancelled the job"))[:200]
        with self._arrived:
            guard = self._guards.get((client_key, job_id))
            opened = self._opened.pop((client_key, job_id), None)
            if guard is None and opened is None and self._running.get(job_id) != client_key:
                return {"cancelled": False}, []
            if guard is not None:
                guard.cancel(why)
            self._cancelled.add(job_id)
            self._arrived.notify_all()
        log.warning("job %d: cancelled by its owner (%s)", job_id, why)
        return {"cancelled": True}, []


def job_ops(node: Node) -> dict[str, Callable[[bytes, dict[str, Any], list[np.ndarray]],
                                               tuple[dict[str, Any], list[np.ndarray]]]]:
    """The requests a node daemon adds to its service for jobs."""
    jobs = NodeJobs(node)
    return {"job-open": jobs.open, "job-run": jobs.run, "job-partial": jobs.partial,
            "job-reshare": jobs.reshare, "job-cancel": jobs.cancel,
            "job-blame": jobs.blame_package}


def _agree_on_demand(mesh: Mesh, demand: Demand) -> None:
    """Every member must take the same amounts out of the stock, or the HE protocol falls
    out of step: broadcast the demand (public counts) and refuse on any difference."""
    mine = demand.encode()
    for peer, frames in mesh.broadcast(mine).items():
        if len(frames) != 1 or bytes(frames[0]) != mine:
            raise ServiceError("failed", f"member {peer} sized this job's preprocessing "
                                         "differently (its dry run disagrees with this one's)")


def _quorum_points(e: Engine, point: int) -> list[int]:
    """Every member's Shamir point (public), broadcast once; they must be distinct."""
    got = e.channel.broadcast(np.array([point], dtype=np.uint64))
    points = [point if j == e.party else int(np.frombuffer(got[j][0], np.uint64)[0])
              for j in range(e.parties)]
    if len(set(points)) != len(points):
        raise JobError(f"quorum members hold the same Shamir points {points}: they hold "
                       "shares of different generations; ask the owner to re-share")
    return points


def authenticate(e: Engine, schema: Schema, shares: dict[str, np.ndarray], point: int,
                 rows: int, key_share: np.ndarray, fault: Fault | None = None,
                 phases: dict[str, float] | None = None
                 ) -> tuple[dict[str, tuple[Secret, tuple[int, float, float, bool]]],
                            dict[str, np.ndarray], Secret]:
    """Storage shares to MAC'd columns, checked against the owner's tags; public columns
    opened; and the owner's output key [k].

    `shares` holds this member's Shamir shares of each column read and of its tags
    (`sharing.tags`); `key_share` its additive shares of the owner's output key k and of
    the dataset's tag key kappa, in that order.

    1. every member broadcasts its Shamir point (public); the quorum's points fix the
       Lagrange coefficients, and lambda_i s_i is this member's additive share of each
       value (any q >= t + 1 points of a degree-t polynomial give its constant);
    2. every member inputs its additive shares of values and tags and its key shares (one
       input round each, SPDZ input with a preprocessed mask); the sum over members is
       a MAC'd secret of the table: nobody ever holds a value of it;
    3. the tag check (`mpc.inputs.check_tags`): the values are the ones the owner stored,
       or every member aborts, before anything of them is opened;
    4. columns the schema calls public are opened (they are public by definition).
    """
    F = e.field
    points = _quorum_points(e, point)
    names = [c for c in shares if not tags.is_tag(c)]
    untagged = [c for c in names if tags.column(c) not in shares]
    if untagged or len(shares) != 2 * len(names):
        raise JobError(f"the stored shares of columns {untagged or list(shares)} come without "
                       "their tags (shared before inputs were authenticated?): share the "
                       "dataset again")
    order = names + [tags.column(c) for c in names]
    keys = np.asarray(key_share).reshape(-1, 2)
    if keys.shape[0] != 2:
        raise JobError(f"the owner sent {keys.shape[0]} key shares, the job needs 2 (output "
                       "key and tag key)")
    flat = np.concatenate([shamir.to_additive(F, shares[c], point, points) for c in order]
                          + [keys])
    m = len(names) * rows
    if fault is not None and fault.kind in INPUT_KINDS and fault.party == e.party:
        flat = _shift_input(F, flat, fault.kind, m)
    t0 = time.perf_counter()
    total = input_sum(e, flat)
    t1 = time.perf_counter()
    if names:
        check_tags(e, total[:m], total[m:2 * m], total[2 * m + 1:2 * m + 2])
    if phases is not None:  # what authentication costs: tags double the input
        phases["input"] = t1 - t0
        phases["tag_check"] = time.perf_counter() - t1
    columns: dict[str, tuple[Secret, tuple[int, float, float, bool]]] = {}
    public: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        col = schema.column(name)
        piece = total[j * rows:(j + 1) * rows]
        f = col.frac_bits if col.kind == "fixed" else 0
        if not col.private:
            value = F.to_int64(e.open(piece)[0]).astype(np.float64)
            public[name] = value / float(1 << f)
            continue
        lo, hi = column_range(col)
        columns[name] = (Secret(e, AuthShare(np.ascontiguousarray(piece.share.value),
                                             np.ascontiguousarray(piece.share.mac))),
                         (f, lo, hi, col.kind != "fixed"))
    return columns, public, total[2 * m:2 * m + 1]


def _rewritten(F: Field, shares: dict[str, np.ndarray], stored: dict[str, Any]
               ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fault injection (STORE_KINDS): this member's share of the first value it reads is one
    more, as if its file had been rewritten after sealing with a matching header; what it
    says it stores follows the file, so only the ledger's commitment tells."""
    log.warning("FAULT INJECTION (stored-shift): this node's stored share was rewritten")
    column = next(iter(shares))
    changed = shares[column].copy()
    changed[0] = F.add(changed[0:1], F.const(1).reshape(1, 2))[0]
    index, rows, facts = stored["chunks"][0]
    digests = read_column_facts(facts)
    digests[column] = describe(np.ascontiguousarray(changed[:rows], dtype="<u8"))
    return ({**shares, column: changed},
            {**stored, "chunks": [[index, rows, column_facts(digests)],
                                  *stored["chunks"][1:]]})


def _shift_input(F: Field, flat: np.ndarray, kind: str, m: int) -> np.ndarray:
    """Fault injection (INPUT_KINDS): this member adds 1 to the first value, the first tag
    or its tag-key share that it inputs, after converting what it stored (signed, so a
    replay of its committed inputs shows the deviation)."""
    log.warning("FAULT INJECTION (%s): this node changes what it inputs from storage", kind)
    at = {"input-shift": 0, "tag-shift": m, "key-share-shift": 2 * m + 1}[kind]
    out = flat.copy()
    out[at] = F.add(out[at:at + 1], F.const(1).reshape(1, 2))[0]
    return out


def _lie(out: dict[str, Any], kind: str) -> dict[str, Any]:
    """Fault injection (REPLY_KINDS): this member states other public facts of the result
    (the first scale one bit higher, or the first exact value plus one) and commits to
    them, as a node that wants the owner to decode a wrong number would."""
    log.warning("FAULT INJECTION (%s): this node lies about the result's public facts", kind)
    out = json.loads(json.dumps({k: out[k] for k in META_FIELDS})) | {
        k: v for k, v in out.items() if k not in META_FIELDS}
    if kind == "metadata-lie" and out["layout"]:
        out["layout"][0][2] += 1
    elif kind == "exact-lie" and out["exact"]:
        name = next(iter(out["exact"]))
        out["exact"][name] = (np.asarray(out["exact"][name]) + 1).tolist()
    return out


def _outcome(e: Engine, backend: MpcBackend, printed: list[str]) -> dict[str, Any]:
    """What a member returns: its sealed shares and the public layout and counters."""
    sealed = backend.sealed or (np.zeros((0, 2), np.uint64), np.zeros((0, 2), np.uint64))
    layout = [[name, [int(n) for n in shape], int(f),
               np.asarray(err, dtype=np.float64).tolist(), _bound(lo), _bound(hi)]
              for name, shape, f, err, lo, hi in backend.layout]
    stats = dict(rounds=e.stats.rounds, bytes_sent=e.stats.bytes_sent, opened=e.stats.opened,
                 triples=e.stats.triples, mac_checks=e.stats.mac_checks)
    # through JSON once, so the committed facts are exactly what the owner will decode
    public = json.loads(json.dumps(dict(
        layout=layout, exact={k: np.asarray(v).tolist() for k, v in backend.exact.items()},
        printed=list(printed))))
    return dict(sealed=sealed, **public, stats=stats)


def _bound(v: float) -> float | None:
    """A range end for JSON: None where the range is unbounded."""
    return float(v) if np.isfinite(v) else None


def compute(e: Engine, script: Any, schema: Schema, shares: dict[str, np.ndarray], point: int,
            rows: int, key_share: np.ndarray, filename: str, fault: Fault | None = None,
            phases: dict[str, float] | None = None, budget: Budget | None = None
            ) -> dict[str, Any]:
    """One member's part of a job on one quorum, from storage shares to sealed result shares.

    `authenticate` (storage shares -> MAC'd columns and [k]), then the script runs on
    `MpcBackend`; revealed values are sealed under the owner's key after the quorum's
    MAC check (`mpc.client.seal_output`).
    """
    columns, public, key = authenticate(e, schema, shares, point, rows, key_share, fault,
                                        phases)
    backend = MpcBackend(e, columns, public, rows, key, filename)
    outcome = run(script, backend, budget=budget)
    return _outcome(e, backend, outcome.printed)


@dataclass(frozen=True)
class _ReplaySpec:
    """The public job (script, schema) and the members' committed inputs, for a replay."""

    script: Any
    schema: Schema
    filename: str
    inputs: dict[int, MemberInputs]


def _replay_member(e: Engine, spec: _ReplaySpec) -> tuple[np.ndarray, np.ndarray, bytes]:
    """One member's run of a job, as the owner replays it: `compute` on its inputs; what
    its result commitment covers (sealed shares and public facts)."""
    mine = spec.inputs[e.party]
    out = compute(e, spec.script, spec.schema, dict(mine.shares), mine.point, mine.rows,
                  mine.key_share, spec.filename, budget=Budget.unlimited())
    return (*out["sealed"], result_meta(out))


def verify_evidence_file(ledger: Ledger, bundle: bytes) -> tuple[str, str]:
    """Check an owner's published evidence file against the ledger, as anyone can
    (`culprits.verify_bundle`): returns (culprit address, verdict)."""

    def make_program(meta: Any, inputs: Any) -> Any:
        schema = Schema.from_dict(meta["schema"], "the evidence file")
        script = check(str(meta["script"]), schema, str(meta["filename"]))
        job = ledger.job(int(meta["job_id"]))
        if script_hash(str(meta["script"]).encode()) != job.script_hash:
            raise JobError("the evidence file's script is not the job's (script hash differs)")
        seed = meta.get("dealer_seed")
        return _program(script, schema, str(meta["filename"]), inputs,
                        bytes.fromhex(seed) if seed else None, len(job.quorum), Field().p)

    return verify_bundle(ledger, bundle, make_program, inputs_digest, result_commitment)


class ChunkExchange:
    """A chunk member's side of `lang.reduction.Exchange`: hands batches of its quorum's
    statistics to the reducers (as parts of (P, k P)) and takes the centroids they re-share.

    `send(batch, p, z, layout)` splits and sends this member's shares (returns the parts
    sent, for the commitment); `wait(batch)` returns the sum of the reducers' parts of
    re-share `batch`.
    """

    def __init__(self, send: Callable[[int, np.ndarray, np.ndarray, list[dict[str, Any]]],
                                      list[np.ndarray]],
                 wait: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> None:
        self._send, self._wait = send, wait
        self.e: Engine | None = None
        self.key: Secret | None = None
        self.batch = 0
        self.sent: list[np.ndarray] = []

    def bind(self, e: Engine, key: Secret) -> None:
        self.e, self.key = e, key

    def handover(self, partials: list[Secret], layout: list[dict[str, Any]]) -> None:
        """[Z] = [k][P], the MAC check, then this member's shares leave for the reducers."""
        assert self.e is not None and self.key is not None
        p = concat([s.reshape(s.size) for s in partials])
        ps, zs = handover_shares(self.e, p, self.key)
        self.sent += self._send(self.batch, ps, zs, list(layout))
        self.batch += 1

    def receive(self, shape: tuple[int, ...]) -> Secret:
        assert self.e is not None and self.key is not None
        c, z = self._wait(self.batch - 1)
        size = int(np.prod(shape))
        if c.shape[0] != size:
            raise JobError(f"the reducers re-shared {c.shape[0]} values, the script needs "
                           f"{size}")
        return accept_handover(self.e, c, z, self.key, shape)

    def next_batch(self) -> tuple[list[Secret], list[dict[str, Any]]]:
        raise JobError("a chunk quorum takes no partials")

    def reshare(self, value: Secret) -> None:
        raise JobError("a chunk quorum re-shares nothing")


class ReduceExchange:
    """A reducing member's side of `lang.reduction.Exchange`: takes later batches of the
    chunk quorums' partials (each re-authenticated and k-checked like the first) and
    re-shares secrets (the k-means centroids) to every chunk quorum."""

    def __init__(self, fetch: Callable[[int], tuple[tuple[np.ndarray, np.ndarray],
                                                    list[dict[str, Any]], int]],
                 send: Callable[[int, np.ndarray, np.ndarray], None]) -> None:
        self._fetch, self._send = fetch, send
        self.e: Engine | None = None
        self.key: Secret | None = None
        self.mpc: MpcBackend | None = None
        self.batch = 0

    def bind(self, e: Engine, key: Secret, mpc: MpcBackend) -> None:
        self.e, self.key, self.mpc = e, key, mpc

    def handover(self, partials: list[Secret], layout: list[dict[str, Any]]) -> None:
        raise JobError("a reducing quorum hands nothing over")

    def receive(self, shape: tuple[int, ...]) -> Secret:
        raise JobError("a reducing quorum receives no re-share")

    def next_batch(self) -> tuple[list[Secret], list[dict[str, Any]]]:
        assert self.e is not None and self.key is not None and self.mpc is not None
        self.batch += 1
        (p, z), layout, _ = self._fetch(self.batch)
        cm = p.shape[0]
        total = input_sum(self.e, np.concatenate([p, z]))
        return _reduce_batch(self.e, self.mpc, total[:cm], total[cm:], self.key, layout,
                             f"{CHECK_NAME}{self.batch}"), layout

    def reshare(self, value: Secret) -> None:
        """(c, k c) after the MAC check, split to every chunk quorum (`_send_reshare`)."""
        assert self.e is not None and self.key is not None
        c, z = handover_shares(self.e, value, self.key)
        self._send(self.batch, c, z)


def _reduce_batch(e: Engine, mpc: MpcBackend, P: Secret, Z: Secret, key: Secret,
                  layout: list[dict[str, Any]], name: str) -> list[Secret]:
    """One batch of re-authenticated partials: seal [k][P_c] - [Z_c] for the owner under
    `name` (never opened to the nodes) and return the statistics of each aggregate."""
    cm = P.shape[0]
    check_vector = e.mul(key.reshape(1).broadcast_to(cm), P) - Z
    m = sum(statistics_size(layout))
    if m == 0 or cm % m:
        raise JobError(f"the partials hold {cm} values, their layout {m} per chunk job")
    mpc.reveals.append((name, Fx(mpc, [check_vector], 0, 0.0, 0.0, 0.0, True, (cm,))))
    return batch_statistics(P.reshape(cm // m, m), layout)


def compute_map(e: Engine, script: Any, schema: Schema, shares: dict[str, np.ndarray],
                point: int, rows: int, key_share: np.ndarray, filename: str, total_rows: int,
                exchange: ChunkExchange, phases: dict[str, float] | None = None,
                budget: Budget | None = None) -> dict[str, Any]:
    """A chunk quorum member's part: exact partial aggregates P of its chunks, and [k P].

    1. `authenticate` the chunk's columns and the owner's key [k], as a whole job does;
    2. run the script on `SplitBackend("map")`: every aggregate of rows becomes its exact
       statistics (counts, sums of centred codes, sums of squares), nothing is revealed;
    3. hand the statistics over (`ChunkExchange.handover`): [Z] = [k][P] (one round) and
       the quorum's MAC check of everything opened, so P and Z leave the quorum only if no
       member deviated inside it; then this member's shares are split to the reducers.
       An iterative aggregate (k-means) hands over once per iteration and receives the
       reducers' centroids in between; what is left at the end goes as the last batch.
    Z is what makes the hand-over checkable: a member that adds d to its share of P must
    add k d to its share of Z without knowing k (see docs/reduction.md).
    """
    phases = {} if phases is None else phases
    t0 = time.perf_counter()
    columns, public, key = authenticate(e, schema, shares, point, rows, key_share,
                                        phases=phases)
    t1 = time.perf_counter()
    phases["authenticate"] = t1 - t0
    exchange.bind(e, key)
    mpc = MpcBackend(e, columns, public, rows, key, filename)
    split = SplitBackend("map", schema, script, total_rows, mpc=mpc, exchange=exchange)
    run(script, split, budget=budget)
    if split.partials:
        exchange.handover(split.partials, split.layout)
    phases["aggregate"] = time.perf_counter() - t1 - phases.get("send_partials", 0.0) - \
        phases.get("wait_reshare", 0.0)
    stats = dict(rounds=e.stats.rounds, bytes_sent=e.stats.bytes_sent, opened=e.stats.opened,
                 triples=e.stats.triples, mac_checks=e.stats.mac_checks)
    return {"stats": stats}


def compute_reduce(e: Engine, script: Any, schema: Schema,
                   parts: tuple[np.ndarray, np.ndarray], key_share: np.ndarray,
                   layout: list[dict[str, Any]], rows: int, filename: str,
                   exchange: ReduceExchange | None = None, budget: Budget | None = None
                   ) -> dict[str, Any]:
    """A reducing member's part: authenticate the summed partials, finish the script, seal.

    1. every member inputs, per chunk job, the sum of the parts it received (p_j, z_j)
       and its share of the owner's key (SPDZ input): [P_c], [Z_c] = k P_c, [k], all
       MAC'd under this quorum's key; additive statistics are summed over chunks (local),
       min/max keep one value per chunk;
    2. [C] = [k][P_c] - [Z_c] for every chunk, zero unless some partial changed on its
       way here; it is sealed for the owner with the results (`CHECK_NAME`), never
       opened to the nodes;
    3. the script runs on `SplitBackend("reduce")`, whose aggregates finish from [P].
       An iterative script takes later batches through `exchange` (each re-authenticated
       and sealed with its own check vector) and re-shares its centroids through it.
    """
    p, z = parts
    cm = p.shape[0]
    total = input_sum(e, np.concatenate([p, z, key_share.reshape(1, 2)]))
    P, Z, key = total[:cm], total[cm:2 * cm], total[2 * cm:]
    mpc = MpcBackend(e, {}, {}, rows, key, filename)
    stats = _reduce_batch(e, mpc, P, Z, key, layout, CHECK_NAME)
    if exchange is not None:
        exchange.bind(e, key, mpc)
    split = SplitBackend("reduce", schema, script, rows, mpc=mpc, stats=stats, layout=layout,
                         exchange=exchange)
    outcome = run(script, split, budget=budget)
    return _outcome(e, mpc, outcome.printed)


# ---------------------------------------------------------------------------- owner side


@dataclass
class JobResult:
    """What the owner learns from a job: the results, and the public record around them."""

    job_id: int
    results: dict[str, Revealed]
    printed: list[str]
    quorum: list[str]
    commitments: dict[str, str]
    payout: dict[str, int]
    stats: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    insecure_dealer: bool = False
    sub_jobs: list[int] = field(default_factory=list)
    """The chunk jobs of a split run (network reduction), each on its own quorum."""
    reduction: str = ""
    """How the job ran: split over chunk quorums, or why it ran on one quorum."""
    poster: str = ""
    """The account that posted and paid for the job (the owner, or an admitted analyst)."""
    incidents: list[Incident] = field(default_factory=list)
    """Failed attempts in blame mode: who was named, how, what the ledger did (in order)."""
    refunded: bool = False
    """No quorum could finish the job: every attempt's escrow went back to its poster."""
    packages: int = 0
    """Blame packages the owner received in the attempt that gave this result: 0 when it
    succeeded (members hand theirs over only after an abort or a failed result check)."""


def sign_script(ledger: Ledger, source: str) -> tuple[str, bytes]:
    """The analyst's side: (its address, its signature over the script's hash)."""
    return ledger.address, ledger.sign(script_hash(source.encode()))


def _policy(policy: Policy) -> str:
    """A policy as `enigma dataset policy` spells it (owner-only, allow-list, open)."""
    return policy.name.lower().replace("_", "-")


def submit_job(analyst: Ledger, dataset_id: int, source: str, *, quorum_size: int = 3,
               reward: int = 0, rounds: int = DEFAULT_ROUNDS,
               multiplications: int = DEFAULT_MULTIPLICATIONS, schema: Schema | None = None,
               filename: str = "<script>", author: str | None = None,
               signature: bytes | None = None) -> JobInfo:
    """The analyst's side of a job it pays for: sign the script and post it on the ledger.

    Where the dataset's policy lets this account run the script (`datasets.vy` `may_run`:
    open, or an allow-listed analyst or script hash), the analyst posts the job with its
    own fee in escrow; the unspent budget is refunded to it (the poster) at acceptance or
    timeout. The job's owner, and so its result recipient and the only account that
    accepts it, stays the dataset's owner: the analyst hands the script text to the owner
    (out of band), who runs the posted job (`run_job(..., posted_job=ID)`) and alone reads
    the result. Nothing here talks to a node: nodes take job-open only from the owner.

    `author`/`signature` default to this account signing the script itself. With `schema`
    (the analyst writes against it), the script is checked first and the schema must be
    the dataset's on the ledger, so a script the owner's nodes would refuse costs nothing.
    A policy refusal is the contract's `AccessDenied`, re-raised as a JobError saying why.
    """
    digest = script_hash(source.encode())
    try:
        record = analyst.dataset(dataset_id)
    except ContractRevert as exc:
        raise JobError(f"ledger dataset {dataset_id}: {exc}") from exc
    if schema is not None:
        if bytes.fromhex(schema.digest()) != record.schema_hash:
            raise JobError(f"the schema given is not the one of ledger dataset {dataset_id} "
                           "(digest differs): ask its owner for the schema it shared")
        check(source, schema, filename)
    if author is None or signature is None:
        author, signature = sign_script(analyst, source)
    elif recover_signer(digest, signature) != author:
        raise JobError(f"the signature does not come from the author {author}: the script "
                       "changed after it was signed, or it was signed by another key")
    try:
        return analyst.post_job(dataset_id, digest, author, signature, quorum_size, rounds,
                                multiplications, reward)
    except AccessDenied as exc:
        raise JobError(f"ledger dataset {dataset_id} is {_policy(record.policy)}: its "
                       f"policy does not let {analyst.address} post this script (the ledger "
                       "refused the job); ask the owner to run it, to allow-list this "
                       f"account or script, or to open the dataset. {exc}") from exc


def _posted_job(owner: Owner, state: Any, digest: bytes, job_id: int, author: str | None,
                signature: bytes | None) -> JobInfo:
    """A job someone else posted on this owner's dataset, checked before any node is asked.

    The owner runs what it was given as text, so the ledger record must name exactly that:
    this dataset's record, this owner (the result's recipient), the script's hash, the
    author (and signature) the owner expects, and the job still open with no commitment
    yet and time left. A mismatch is refused here; the nodes would refuse a script whose
    hash differs too, but only after the owner opened the job with them.
    """
    try:
        job = owner.ledger.job(job_id)
    except ContractRevert as exc:
        raise JobError(f"posted job {job_id}: {exc}") from exc
    if job.dataset_id != state.ledger_id:
        raise JobError(f"posted job {job_id} is on ledger dataset {job.dataset_id}, not on "
                       f"{state.name!r} (ledger dataset {state.ledger_id})")
    if job.owner.lower() != owner.ledger.address.lower():
        raise JobError(f"posted job {job_id} belongs to {job.owner}, not to this owner")
    if job.script_hash != digest:
        raise JobError(f"posted job {job_id} was posted for another script (script hash "
                       f"{job.script_hash.hex()}, the text given hashes to {digest.hex()}); "
                       "nothing was run")
    if author is not None and job.author.lower() != author.lower():
        raise JobError(f"posted job {job_id} names author {job.author}, not {author}")
    if signature is not None and recover_signer(digest, signature) != job.author:
        raise JobError(f"the signature given is not {job.author}'s over the script")
    if job.status.name != "OPEN" or job.commits:
        raise JobError(f"posted job {job_id} is {job.status.name.lower()} with {job.commits} "
                       "commitments: it can no longer be run")
    now = int(owner.ledger.w3.eth.get_block("latest")["timestamp"])
    if now >= job.deadline:
        raise JobError(f"posted job {job_id} is past its deadline; anyone may time it out, "
                       "which refunds its poster")
    return job


def run_job(owner: Owner, dataset: str, source: str, *, author: str | None = None,
            signature: bytes | None = None,
            quorum_size: int = 3, reward: int = 0, filename: str = "<script>",
            rounds: int = DEFAULT_ROUNDS, multiplications: int = DEFAULT_MULTIPLICATIONS,
            dealer_seed: bytes | None = None, timeout: float = 600.0,
            progress: Callable[[str], None] | None = None,
            chunk_quorums: int = 0, posted_job: int | None = None, blame: bool | None = None,
            attempts: int = 3, mesh_timeout: float = 300.0,
            _incidents: list[Incident] | None = None) -> JobResult:
    """Post a job on the owner's dataset, have the drawn quorum run it, check, accept, pay.

    With `posted_job`, the job was already posted (and paid for) by an analyst the
    dataset's policy admits (`submit_job`): step 2 is replaced by checking that job's
    record against the script text, author and dataset (`_posted_job`), its quorum and
    budget are the posted ones, and the refund at step 6 goes to its poster. Posted jobs
    run on their one quorum (`chunk_quorums` is refused with them: the chunk sub-jobs
    would be the owner's to post and pay).

    With `chunk_quorums` > 0 and a script whose row values reach only associative
    aggregates (`lang.reduction.plan`), the chunks of the dataset are split into that many
    groups, each run by its own quorum (a sub-job on the ledger), and the job's own
    quorum reduces their partials (`_run_split`); otherwise the steps are:

    1. check that the dataset's threshold covers the quorum (t + 1 members are needed to
       compute; a quorum larger than t + 1 is refused unless the data was shared weak,
       and then the job says so: fewer holders than the quorum could read the data), the
       script against the dataset's schema here (a refused script costs nothing) and that
       `signature` is `author`'s over its hash;
    2. post the job with its fee in escrow; the ledger draws the quorum;
    3. `job-open` at every member (each checks the ledger and reserves a mesh port);
    4. split a fresh output key k into one share per member; `job-run` at all members at
       once (each gets its key share over its own encrypted channel);
    5. each member's sealed shares must hash to its commitment on the ledger; recombine,
       check z = k x (`open_output`), decode with the scales and error bounds;
    6. accept on the ledger: fees to the nodes, the reward to the author, the rest back.

    `blame` defaults to on for a job on one quorum (`chunk_quorums` = 0) and off for a split
    one, which cannot run in blame mode; its cost on a job that succeeds is small
    (docs/blame.md, "Costs"). With `blame` (on HE every member takes the job's whole
    preprocessing slice before the online phase; on the test dealer a replay regenerates it
    from the seed), the quorum runs in blame mode; members that abort hand the owner their
    packages at once,
    and when the result fails step 5 the owner asks every member for its kept package
    (`job-blame`); when a member aborts, drops
    out or delivers a result that fails step 5, `culprits.blame_job` names it, proves it and
    settles on the ledger (slash on proof, suspension on absence, escrow refunded), and the
    job is posted again on a fresh quorum drawn without it, up to `attempts` times; if no
    quorum can be drawn the result says `refunded`. Every attempt is in `incidents`.
    """
    say = progress or (lambda _: None)
    incidents = [] if _incidents is None else _incidents
    if blame is None:
        blame = chunk_quorums == 0
    if blame and chunk_quorums > 0:
        raise JobError("blame mode needs one quorum: chunk and reducing quorums run without "
                       "it (docs/blame.md)")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    state = owner.state(dataset)
    if not state.sealed or state.ledger_id is None:
        raise JobError(f"dataset {dataset!r} is not sealed on the ledger yet; finish "
                       "`enigma share` first")

    def covered(size: int) -> None:
        """Refuse a quorum the storage threshold does not cover; say so if shared weak."""
        if size < state.t + 1:
            raise JobError(f"a quorum of {size} cannot compute on {dataset!r}: it is shared "
                           f"with t = {state.t}, so a quorum needs t + 1 = {state.t + 1} "
                           "members")
        if size <= state.t + 1:
            return
        readers = (f"any {state.t + 1} of its {len(state.holders)} holders can read "
                   f"{dataset!r} (t = {state.t}), fewer than this quorum of {size}")
        if not state.weak:
            raise JobError(f"a job on a quorum of {size} is meant to resist {size - 1} "
                           f"colluding members, but {readers}; run it on a quorum of "
                           f"{state.t + 1}, or share the data again with --quorum {size}")
        say(f"WARNING: {dataset!r} was shared with a weak threshold: {readers}")

    if posted_job is None:
        covered(quorum_size)
    schema = Schema.from_dict(state.schema, f"the progress file of {dataset!r}")
    budget = _job_budget(check(source, schema, filename), schema, state.rows, timeout)
    digest = script_hash(source.encode())
    if posted_job is not None:
        if chunk_quorums > 0:
            raise JobError("a posted job runs on its own quorum; chunk quorums (network "
                           "reduction) need sub-jobs the owner posts: run without "
                           "--chunk-quorums, or post the job yourself")
        say(f"checking posted job {posted_job} on the ledger")
        job = _posted_job(owner, state, digest, posted_job, author, signature)
        covered(len(job.quorum))
    elif author is None or signature is None:
        raise JobError("give the author and its signature over the script (`enigma sign`), "
                       "or the id of a job an analyst posted")
    elif recover_signer(digest, signature) != author:
        raise JobError(f"the signature does not come from the author {author}: the script "
                       "changed after it was signed, or it was signed by another key")
    reduction = "one quorum"
    if chunk_quorums > 0:
        assert author is not None and signature is not None
        try:
            plan(check(source, schema, filename), schema, state.rows)
            if state.chunk_count < 2:
                raise NotSplittable(f"the dataset has {state.chunk_count} chunk")
        except NotSplittable as exc:
            reduction = f"one quorum: {exc}"
        else:
            return _run_split(owner, state, schema, source, digest, author, signature,
                              quorum_size, reward, filename, rounds, multiplications,
                              dealer_seed, timeout, say, min(chunk_quorums, state.chunk_count),
                              budget)
    if posted_job is None:
        assert author is not None and signature is not None
        say("posting the job on the ledger")
        job = owner.ledger.post_job(state.ledger_id, digest, author, signature, quorum_size,
                                    rounds, multiplications, reward)
    times["post"] = time.perf_counter() - t0
    holders = {h.address: h for h in state.holders}
    strangers = [a for a in job.quorum if a not in holders]
    if strangers:
        refund = owner.ledger.cancel(job.job_id)
        raise QuorumNotHoldersError(
            f"job {job.job_id}: quorum members {strangers} hold no share of {dataset!r}; "
            f"share it to every active node (n = {len(owner.ledger.active_nodes())}) so that "
            f"any drawn quorum can compute; the job was cancelled ({refund} wei refunded)")
    members = [owner._holder(a, holders[a].point) for a in job.quorum]
    seed = dealer_seed
    if blame and dealer_seed is not None:  # per attempt: aborted preprocessing is never reused
        seed = hashlib.sha256(dealer_seed + job.job_id.to_bytes(8, "big")).digest()
    fields = {"job_id": job.job_id, "dataset": dataset, "gen": state.gen}
    key, key_shares = _job_keys(owner, dataset, len(members))
    run_fields = {**fields, "source": source, "filename": filename, "schema": state.schema,
                  "timeout": min(timeout, mesh_timeout), "budget": budget.as_header(),
                  "dealer_seed": seed.hex() if seed else None, "blame": blame}
    say(f"job {job.job_id}: quorum of {len(members)} computing"
        + (" in blame mode" if blame else ""))
    t1 = time.perf_counter()
    try:
        outcomes = _run_members(owner, job.job_id, members, key_shares, fields, run_fields,
                                timeout)
    except KeyboardInterrupt:
        say(f"job {job.job_id}: interrupted; cancelling it at every member and on the ledger")
        _cancel_members(owner, members, job.job_id, "the owner interrupted the job")
        refund = owner.ledger.cancel(job.job_id)
        raise JobCancelled(f"job {job.job_id} cancelled: {refund} wei of escrow went back to "
                           f"{job.poster}") from None
    times["compute"] = time.perf_counter() - t1
    say("checking the result and settling")
    t0 = time.perf_counter()
    failure = "; ".join(f"{job.quorum[i]}: {o}" for i, o in enumerate(outcomes)
                        if isinstance(o, Exception) and o.kind != PENDING)
    failure = failure or "; ".join(
        f"{job.quorum[i]}: {o[0]['blame']['error']}" for i, o in enumerate(outcomes)
        if o[0].get("blame", {}).get("aborted"))
    result_failed = False
    if not failure:
        replies = outcomes
        try:
            results, commitments, first = _settle_replies(owner, job, key, replies, times)
        except (JobError, client.OutputCheckError) as exc:
            failure, result_failed = str(exc), True
            if blame:
                outcomes = _fetch_packages(owner, job, members, outcomes, timeout)
    if failure:
        status = owner.ledger.job(job.job_id).status
        if status is not JobStatus.OPEN:  # `enigma job cancel` (or the deadline) came first
            raise JobCancelled(f"job {job.job_id} was {status.name.lower()} while it ran; "
                               f"the members stopped ({failure})")
        if blame:
            incident = _blame_attempt(owner, job, outcomes, key_shares, source, schema, state,
                                      filename, seed, result_failed, failure)
        else:
            keys = [owner.ledger.node(a).transport_key for a in job.quorum]
            incident = settle_judgement(owner.ledger, owner.home, job,
                                        _judgement(owner, job, outcomes, result_failed, keys),
                                        bundle_meta(source, state.schema, filename, seed),
                                        failure)
        incidents.append(incident)
        if not incident.culprit:
            raise JobError(f"job {job.job_id} failed: {incident.error}; nobody is blamed: the "
                           f"job was cancelled and {incident.refund} wei of escrow went back to "
                           f"{job.poster}")
        say(f"job {job.job_id}: {incident.culprit} named ({incident.verdict}); "
            + (f"accused (accusation {incident.accusation_id}: slashed after its challenge "
               "period unless a committee acquits it)" if incident.proved else "suspended")
            + ", escrow refunded")
        active = set(owner.ledger.active_nodes())
        left = [h.address for h in state.holders if h.address in active]
        size = min(quorum_size, len(left))
        if attempts <= 1 or size < state.t + 1 or posted_job is not None:
            return JobResult(job.job_id, {}, [], job.quorum, {}, {}, {}, times, True, [],
                             reduction, job.poster, incidents, refunded=True)
        say(f"re-posting the job on a new quorum of {size} (without {incident.culprit})")
        return run_job(owner, dataset, source, author=author, signature=signature,
                       quorum_size=size, reward=reward, filename=filename, rounds=rounds,
                       multiplications=multiplications, dealer_seed=dealer_seed,
                       timeout=timeout, progress=progress, blame=True, attempts=attempts - 1,
                       mesh_timeout=mesh_timeout, _incidents=incidents)
    payout = owner.ledger.accept(job.job_id)
    times["settle"] = time.perf_counter() - t0
    order = [o.name for o in check(source, schema, filename).outputs]
    return JobResult(job.job_id, {n: results[n] for n in order if n in results},
                     list(first["printed"]), job.quorum, commitments, payout,
                     dict(first["stats"]), times, dealer_seed is not None, [], reduction,
                     job.poster, incidents, packages=_packages(outcomes))


def _job_budget(script: Any, schema: Schema, rows: int, seconds: float) -> JobBudget:
    """The job's budget (`budget.plan`); a script that runs away on synthetic data is
    refused here, before anything is posted or paid for."""
    try:
        return budget_plan(script, schema, rows, len(referenced_columns(script)), seconds)
    except ScriptLimitError as exc:
        raise JobError(f"the script ran over its budget on synthetic data, so no job was "
                       f"posted: {exc.located()}") from exc


def _cancel_members(owner: Owner, members: Sequence[Any], job_id: int, why: str) -> None:
    """Ask members to stop a job (`job-cancel`), all at once; one that cannot be reached
    is left alone (its own budget stops it)."""
    def one(m: Any) -> None:
        with contextlib.suppress(ServiceError, OSError, NetError), \
                Connection.open(m.host, m.port, owner.identity, bytes.fromhex(m.key),
                                CANCEL_TIMEOUT) as conn:
            conn.request("job-cancel", job_id=job_id, why=why)

    if members:
        with ThreadPoolExecutor(max_workers=len(members)) as pool:
            list(pool.map(one, members))


def _run_members(owner: Owner, job_id: int, members: Sequence[Any],
                 key_shares: Sequence[np.ndarray], fields: dict[str, Any],
                 run_fields: dict[str, Any], timeout: float) -> list[Any]:
    """`job-open`, then `job-run` at every member; each member's reply, or the ServiceError
    it answered with (carrying its signed record) or that reaching it raised.

    At the first failure the other members are cancelled (they sign a `cancelled` record
    and stop at their next step); whoever has not answered CANCEL_GRACE s later gets a
    PENDING error: the owner stopped waiting for it, which names nobody. A member that
    cannot be reached for `job-open` means no mesh can form: the others are cancelled
    without running.
    """
    n = len(members)
    outcomes: list[Any] = [None] * n
    conns: list[Connection | None] = [None] * n

    def open_one(i: int) -> dict[str, Any]:
        m = members[i]
        conns[i] = Connection.open(m.host, m.port, owner.identity, bytes.fromhex(m.key),
                                   timeout)
        return conns[i].request("job-open", **fields)[0]  # type: ignore[union-attr]

    pool = ThreadPoolExecutor(max_workers=n)
    try:
        opened: dict[int, dict[str, Any]] = {}
        for f, i in [(pool.submit(open_one, i), i) for i in range(n)]:
            try:
                opened[i] = f.result()
            except ServiceError as exc:
                outcomes[i] = exc
        if len(opened) < n:
            _cancel_members(owner, [members[i] for i in opened], job_id,
                            "another member of the quorum cannot be reached")
            return [o if o is not None else ServiceError(PENDING, "cancelled before running")
                    for o in outcomes]
        peers = [{"host": m.host, "port": int(opened[i]["port"])} for i, m in enumerate(members)]
        runs = {pool.submit(conns[i].request, "job-run",  # type: ignore[union-attr]
                            [key_shares[i]], peers=peers, **run_fields): i for i in range(n)}
        pending, deadline = set(runs), None
        while pending:
            wait_for = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = wait(pending, timeout=wait_for, return_when=FIRST_COMPLETED)
            if not done:
                break
            for f in done:
                i = runs[f]
                try:
                    outcomes[i] = f.result()
                except ServiceError as exc:
                    outcomes[i] = exc
                if deadline is None and _failed(outcomes[i]):
                    deadline = time.monotonic() + CANCEL_GRACE
                    _cancel_members(owner, [members[j] for j in range(n) if j != i], job_id,
                                    f"member {i} of the quorum failed")
        return [o if o is not None else ServiceError(PENDING, "no answer after the cancel")
                for o in outcomes]
    finally:
        for c in conns:
            if c is not None:
                c.close()
        pool.shutdown(wait=False, cancel_futures=True)


def _failed(outcome: Any) -> bool:
    """An error reply, or a blame-mode reply that says the member aborted."""
    return isinstance(outcome, Exception) or bool(outcome[0].get("blame", {}).get("aborted"))


def _job_keys(owner: Owner, dataset: str, parties: int, key: np.ndarray | None = None
              ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The output key k (fresh unless given) and each member's shares of (k, kappa): kappa,
    the dataset's tag key, is split afresh for every job, so no member's share repeats."""
    F = owner.field
    k = F.random(1) if key is None else key
    kappa = owner.tag_key(dataset)
    return k, [np.concatenate([a, b]) for a, b in zip(
        additive.split(F, k, parties), additive.split(F, kappa, parties), strict=True)]


def _packages(outcomes: list[Any]) -> int:
    """How many members' replies carried a blame package."""
    return sum(1 for o in outcomes if not isinstance(o, Exception) and "blame" in o[0])


def _settle_replies(owner: Owner, job: JobInfo, key: np.ndarray, replies: list[Any],
                    times: dict[str, float]
                    ) -> tuple[dict[str, Revealed], dict[str, str], dict[str, Any]]:
    """Step 5 of `run_job`: commitments on the ledger, then the owner's own output check."""
    for reply, _ in replies:
        for k, v in reply.get("phases", {}).items():
            times[f"node.{k}"] = max(times.get(f"node.{k}", 0.0), float(v))
    commitments = _checked_replies(owner, job, replies)
    first = replies[0][0]
    results = decode_results(owner.field, key, [(a[0], a[1]) for _, a in replies], first)
    return results, commitments, first


def _checked_replies(owner: Owner, job: JobInfo, replies: list[Any]) -> dict[str, str]:
    """Each member's reply (sealed shares and public facts) must hash to its commitment on
    the ledger, and every member must state the same facts (`agreed_meta`); returns the
    commitments by member. JobError names the member otherwise."""
    commitments = {}
    for address, (reply, arrays) in zip(job.quorum, replies, strict=True):
        posted = owner.ledger.commit_of(job.job_id, address).commitment
        if result_commitment(job.job_id, arrays[0], arrays[1], result_meta(reply)) != posted:
            raise JobError(f"job {job.job_id}: the result node {address} sent does not "
                           "match its commitment on the ledger; the result is refused")
        commitments[address] = posted.hex()
    agreed_meta(job.job_id, job.quorum, replies)
    return commitments


def _fetch_packages(owner: Owner, job: JobInfo, members: list[Any], outcomes: list[Any],
                    timeout: float) -> list[Any]:
    """After a result that failed the owner's check: ask every member that replied for the
    package it kept (`job-blame`), keeping the result shares it replied with (the owner
    compares them with the member's ledger commitment). A member that cannot or will not
    hand it over keeps its plain reply, and so has no package (`withheld` if nobody else
    is named)."""
    out = list(outcomes)
    for i, (m, o) in enumerate(zip(members, outcomes, strict=True)):
        if isinstance(o, Exception) or "blame" in o[0]:
            continue
        try:
            with Connection.open(m.host, m.port, owner.identity, bytes.fromhex(m.key),
                                 timeout) as conn:
                info, arrays = conn.request("job-blame", job_id=job.job_id)
        except (ServiceError, OSError, NetError) as exc:
            log.warning("job %d: member %d handed no blame package: %s", job.job_id, i, exc)
            continue
        out[i] = ({**o[0], "blame": info["blame"]}, [o[1][0], o[1][1], *arrays[2:]])
    return out


def _blame_attempt(owner: Owner, job: JobInfo, outcomes: list[Any],
                   key_shares: list[np.ndarray], source: str, schema: Schema, state: Any,
                   filename: str, seed: bytes | None, result_failed: bool, failure: str
                   ) -> Incident:
    """Gather the members' packages and inputs from their blame replies; `blame_job`."""
    packages: dict[int, Package] = {}
    inputs: dict[int, MemberInputs] = {}
    for i, out in enumerate(outcomes):
        if isinstance(out, Exception) or "blame" not in out[0]:
            continue
        info, arrays = out[0]["blame"], out[1]
        try:
            pkg = Package.decode(arrays[2].tobytes())
            prep = arrays[3].tobytes() if info.get("prep") else b""
            shares = dict(zip(info["columns"], arrays[3 + bool(prep):], strict=True))
        except (ValueError, IndexError, KeyError) as exc:
            log.warning("job %d: member %d handed a malformed package: %s", job.job_id, i, exc)
            continue
        mine = MemberInputs(shares, int(info["point"]), int(info["rows"]), key_shares[i], prep,
                            dict(info.get("stored") or {}))
        if pkg.party != i or inputs_digest(mine) != pkg.material.inputs:
            log.warning("job %d: member %d's inputs do not match its commitment", job.job_id, i)
            continue
        if seed is None and slice_digest(prep) != pkg.material.prep:
            log.warning("job %d: member %d's preprocessing slice does not match its "
                        "commitment", job.job_id, i)
            continue
        packages[i], inputs[i] = pkg, mine
    script = check(source, schema, filename)

    def make_program(given: Any) -> Any:
        return _program(script, schema, filename, given, seed, len(job.quorum), owner.field.p)

    keys = [owner.ledger.node(a).transport_key for a in job.quorum]
    return blame_job(owner.ledger, owner.home, job, keys, packages, inputs, make_program,
                     result_failed, result_commitment,
                     bundle_meta(source, state.schema, filename, seed), failure,
                     _judgement(owner, job, outcomes, result_failed, keys, packages),
                     identity=owner.identity)


def _judgement(owner: Owner, job: JobInfo, outcomes: list[Any], result_failed: bool,
               keys: Sequence[bytes], packages: Mapping[int, Package] | None = None
               ) -> failures.Judgement:
    """`failures.judge` on what the members sent: the signed records on their error
    replies and in their blame packages (each checked against the member's transport key
    on the ledger, `keys`), the members that sent neither (`silent`; not those the owner
    stopped waiting for after it cancelled them) and, after a failed result check, those
    whose result is not what they committed to on the ledger (`withheld`)."""
    session = session_for(job.job_id, owner.ledger.deployment)
    records: dict[int, Any] = {}
    silent, withheld = [], []
    for i, out in enumerate(outcomes):
        if isinstance(out, ServiceError):
            rec = failures.verified(out.abort, session, i, keys[i]) if out.abort else None
            if rec is not None:
                records[i] = rec
            elif out.kind != PENDING:
                silent.append(i)
            continue
        pkg = (packages or {}).get(i)
        if pkg is not None and pkg.abort is not None and pkg.abort.party == i:
            with contextlib.suppress(AuthenticationError):
                pkg.abort.verify(keys[i])
                records[i] = pkg.abort
        if result_failed and result_commitment(job.job_id, out[1][0], out[1][1],
                                               result_meta(out[0])) \
                != owner.ledger.commit_of(job.job_id, job.quorum[i]).commitment:
            withheld.append(i)
    return failures.judge(records, len(job.quorum), silent, withheld)


def _program(script: Any, schema: Schema, filename: str, inputs: Mapping[int, MemberInputs],
             seed: bytes | None, parties: int, modulus: int) -> Any:
    """The public program a replay re-runs: the script on the members' committed inputs,
    with the dealer of `seed`, or (on HE, `seed` None) the slices those members committed
    to, and the engine options their run used."""
    spec = _ReplaySpec(script, schema, filename, dict(inputs))
    if seed is not None:
        return Program(_replay_member, (spec,), DealerFactory(seed, insecure=True), parties,
                       modulus)
    return Program(_replay_member, (spec,), SliceFactory({p: m.prep for p, m in inputs.items()}),
                   parties, modulus, {"digit_bits": HE_DIGIT_BITS})


def _run_split(owner: Owner, state: Any, schema: Schema, source: str, digest: bytes,
               author: str, signature: bytes, quorum_size: int, reward: int, filename: str,
               rounds: int, multiplications: int, dealer_seed: bytes | None, timeout: float,
               say: Callable[[str], None], groups: int, budget: JobBudget) -> JobResult:
    """A job with network reduction: chunk quorums in parallel, one reducing quorum.

    1. post the job (its quorum reduces and seals the result) and one sub-job per group
       of chunks (same dataset, script and signature, no reward): the ledger draws every
       quorum and escrows every fee, as for any job;
    2. `job-open` at every member of every quorum; one output key k, split afresh for
       each quorum;
    3. `job-run` everywhere at once: chunk members get their chunks, the parent job and
       the reducers' endpoints; reducers get the sub-job ids. Chunk members send their
       parts of (P, kP) straight to the reducers and commit a hash of them on their
       sub-job (pointer = the parent job id);
    4. the reducers' sealed shares must match their commitments; recombine, check
       z = k x and that the sealed check vector k P - Z is zero (a changed partial
       fails it except with probability 1/p); accept every sub-job and the job.
    """
    F = owner.field
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    say(f"posting the job and {groups} chunk jobs on the ledger")
    parent = owner.ledger.post_job(state.ledger_id, digest, author, signature, quorum_size,
                                   rounds, multiplications, reward)
    subs = [owner.ledger.post_job(state.ledger_id, digest, author, signature, quorum_size,
                                  rounds, multiplications, 0) for _ in range(groups)]
    times["post"] = time.perf_counter() - t0
    with _refunded_on_failure(owner, [parent, *subs]):
        holders = {h.address: h for h in state.holders}
        for sub in subs:
            strangers = [a for a in sub.quorum if a not in holders]
            if strangers:
                raise QuorumNotHoldersError(f"chunk job {sub.job_id}: quorum members {strangers} "
                                            f"hold no share of {state.name!r}")
        chunks = [c.tolist() for c in np.array_split(np.arange(state.chunk_count), groups)]
        jobs = [parent, *subs]
        members = {j.job_id: [owner._holder(a, holders[a].point if a in holders else 0)
                              for a in j.quorum] for j in jobs}
        t1 = time.perf_counter()
        conns = {j.job_id: [Connection.open(m.host, m.port, owner.identity, bytes.fromhex(m.key),
                                            timeout) for m in members[j.job_id]] for j in jobs}
        try:
            base = {"dataset": state.name, "gen": state.gen}
            opened = {j.job_id: [c.request("job-open", job_id=j.job_id,
                                           role="reduce" if j is parent else "map", **base)[0]
                                 for c in conns[j.job_id]] for j in jobs}
            key = F.random(1)
            reducers = [{"host": m.host, "port": m.port} for m in members[parent.job_id]]
            calls = []
            for i, j in enumerate(jobs):
                peers = [{"host": m.host, "port": int(o["port"])}
                         for m, o in zip(members[j.job_id], opened[j.job_id], strict=True)]
                seed = None if dealer_seed is None else hashlib.sha256(
                    dealer_seed + j.job_id.to_bytes(8, "big")).hexdigest()
                fields = {**base, "job_id": j.job_id, "source": source, "filename": filename,
                          "schema": state.schema, "peers": peers, "timeout": min(timeout, 300.0),
                          "dealer_seed": seed, "budget": budget.as_header()}
                if j is parent:  # chunk members' endpoints: where an iterative script re-shares
                    fields.update(role="reduce", sub_jobs=[s.job_id for s in subs],
                                  chunk_members={str(s.job_id): [
                                      {"host": m.host, "port": m.port} for m in members[s.job_id]]
                                      for s in subs})
                else:
                    fields.update(role="map", chunks=chunks[i - 1], parent=parent.job_id,
                                  reducers=reducers, total_rows=state.rows)
                shares = additive.split(F, key, len(j.quorum)) if j is parent else \
                    _job_keys(owner, state.name, len(j.quorum), key)[1]
                for c, ks in zip(conns[j.job_id], shares, strict=True):
                    calls.append((j.job_id, c, ks, fields))
            say(f"job {parent.job_id}: chunk jobs {[s.job_id for s in subs]} and a reducing "
                "quorum computing")
            with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                futures = [(jid, pool.submit(c.request, "job-run", [ks], **fields))
                           for jid, c, ks, fields in calls]
                failed = next((f for f in as_completed([f for _, f in futures])
                               if f.exception() is not None), None)
                if failed is not None:  # the others would wait for partials or re-shares
                    for j in jobs:          # that never come
                        _cancel_members(owner, members[j.job_id], j.job_id,
                                        "another quorum of the job failed")
                    raise failed.exception()  # type: ignore[misc]
                replies: dict[int, list[tuple[dict[str, Any], list[np.ndarray]]]] = {}
                for jid, f in futures:
                    replies.setdefault(jid, []).append(f.result())
            times["compute"] = time.perf_counter() - t1
        finally:
            for cs in conns.values():
                for c in cs:
                    c.close()
        say("checking the result and settling")
        t0 = time.perf_counter()
        for sub in subs:
            for address, (reply, _) in zip(sub.quorum, replies[sub.job_id], strict=True):
                posted = owner.ledger.commit_of(sub.job_id, address)
                if posted.commitment.hex() != reply["commitment"] or \
                        int.from_bytes(posted.pointer, "big") != parent.job_id:
                    raise JobError(f"chunk job {sub.job_id}: node {address}'s commitment on the "
                                   "ledger is not the one it reported for this job")
        commitments = _checked_replies(owner, parent, replies[parent.job_id])
        first = replies[parent.job_id][0][0]
        results = decode_results(F, key, [(a[0], a[1]) for _, a in replies[parent.job_id]], first)
        checks = {name: results.pop(name) for name in list(results) if name.startswith(CHECK_NAME)}
        if set(checks) != _check_names(plan(check(source, schema, filename), schema, state.rows)) \
                or any(np.any(c.value != 0) for c in checks.values()):
            raise JobError(f"job {parent.job_id}: a partial aggregate changed between a chunk "
                           "quorum and the reducing quorum (k P != Z); the result is refused")
        payout = {"to_nodes": 0, "reward": 0, "refund": 0}
        for j in [*subs, parent]:
            for k, v in owner.ledger.accept(j.job_id).items():
                payout[k] += v
        times["settle"] = time.perf_counter() - t0
        for prefix, ids in (("chunk", [s.job_id for s in subs]), ("reduce", [parent.job_id])):
            for jid in ids:  # slowest member of any quorum of the kind, per phase
                for reply, _ in replies[jid]:
                    for k, v in reply.get("phases", {}).items():
                        times[f"{prefix}.{k}"] = max(times.get(f"{prefix}.{k}", 0.0), float(v))
        order = [o.name for o in check(source, schema, filename).outputs]
        stats = dict(first["stats"])
        stats["chunk_triples"] = sum(r[0]["stats"]["triples"] for s in subs
                                     for r in replies[s.job_id])
        return JobResult(parent.job_id, {n: results[n] for n in order if n in results},
                         list(first["printed"]), parent.quorum, commitments, payout, stats,
                         times, dealer_seed is not None, [s.job_id for s in subs],
                         f"{groups} chunk quorums and a reducing quorum", parent.poster)


@contextlib.contextmanager
def _refunded_on_failure(owner: Owner, posted: Sequence[JobInfo]) -> Iterator[None]:
    """Cancel the posted jobs that are still open if the block fails in any way (Ctrl-C
    too): a split job's failure names nobody, and no escrow waits for its deadline."""
    try:
        yield
    except BaseException:
        for j in posted:
            with contextlib.suppress(LedgerError):
                if owner.ledger.job(j.job_id).status is JobStatus.OPEN:
                    owner.ledger.cancel(j.job_id)
        raise


def _check_names(layout: list[dict[str, Any]]) -> set[str]:
    """The sealed check vectors a split run must return, one per hand-over batch: a batch
    closes at every iteration of an iterative aggregate and at the end if aggregates are
    left. The owner derives them from the script, so a reducer cannot leave one out."""
    batches, open_batch = 0, False
    for meta in layout:
        open_batch = True
        if meta["func"] in ITERATIVE:
            batches, open_batch = batches + 1, False
    batches += int(open_batch)
    return {CHECK_NAME} | {f"{CHECK_NAME}{b}" for b in range(1, batches)}


class OutOfRangeError(JobError):
    """A decoded result lies outside what the schema and the script allow for it."""


def check_range(name: str, value: np.ndarray, err: np.ndarray, lo: float | None,
                hi: float | None) -> None:
    """The owner's second line of defence: every value within the range the compiler
    derived for it from the schema (interval arithmetic, public), widened by its error
    bound. A count above the row count, a mean outside [min, max] or a negative variance
    cannot come from the stored data, so the result is refused, naming value and bound.

    Why it is sound: the ranges are what the engine already relies on to size every
    comparison and truncation; a result outside them means the computation went wrong."""
    slack = np.abs(err) + 1e-9 * (1.0 + np.abs(value))
    below = np.zeros(value.shape, bool) if lo is None else value < lo - slack
    above = np.zeros(value.shape, bool) if hi is None else value > hi + slack
    bad = below | above
    if np.any(bad):
        i = np.flatnonzero(bad.reshape(-1))[0]
        v = float(value.reshape(-1)[i])
        where = f"[{i}]" if value.ndim else ""
        raise OutOfRangeError(f"result {name!r}{where} = {v:.6g} is outside the range the "
                              f"schema and the script allow, [{lo}, {hi}] (error bound "
                              f"{float(np.max(err)):.3g}); the result is refused")


def decode_results(F: Field, key: np.ndarray, sealed: list[tuple[np.ndarray, np.ndarray]],
                   reply: dict[str, Any]) -> dict[str, Revealed]:
    """The owner's values: recombine and check the sealed shares, then undo each scale."""
    results: dict[str, Revealed] = {}
    if reply["layout"]:
        opened = client.open_output(F, key, sealed)
        start = 0
        for name, shape, f, err, lo, hi in reply["layout"]:
            size = int(np.prod(shape, dtype=np.int64))
            part = F.to_float(opened[start:start + size]) / float(1 << f)
            bound = np.asarray(err, dtype=np.float64)
            value = part.reshape(shape)
            if not name.startswith(CHECK_NAME):  # zero by design, checked by the caller
                check_range(name, value, bound, lo, hi)
            results[name] = Revealed(value, float(bound) if bound.ndim == 0 else bound)
            start += size
    for name, value in reply["exact"].items():
        results[name] = Revealed(np.asarray(value, dtype=np.float64), 0.0)
    return results


# ---------------------------------------------------------------------------- commands


@click.command("sign")
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True)
@click.option("--deployment", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=Path("deployment.json"), show_default=True)
@click.option("--account", required=True, help="The analyst's ledger account (dev chains).")
def sign_command(script: Path, rpc: str, deployment: Path, account: str) -> None:
    """Sign a script as its author; prints the signature for `enigma run --signature`."""
    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    author, sig = sign_script(ledger, script.read_text())
    click.echo(f"author={author} signature={sig.hex()}")


@click.command("run")
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dataset", required=True, help="Name of a dataset this owner shared.")
@click.option("--author", help="The analyst's address (from `enigma sign`).")
@click.option("--signature", help="The analyst's signature (hex).")
@click.option("--job", "posted_job", type=int,
              help="Run this job, which an analyst posted and paid for (`enigma job post`), "
                   "instead of posting one; SCRIPT must be the text it was posted for.")
@click.option("--quorum", default=3, show_default=True, help="Members of the quorum.")
@click.option("--reward", default=0, show_default=True, help="Wei for the author on success.")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False),
              default=Path(".enigma-owner"), show_default=True, help="The owner's directory.")
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True)
@click.option("--deployment", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=Path("deployment.json"), show_default=True)
@click.option("--account", required=True, help="The owner's ledger account (dev chains).")
@click.option("--insecure-dealer", is_flag=True,
              help="Preprocess with the test dealer, which sees every secret (tests only).")
@click.option("--chunk-quorums", default=0, show_default=True,
              help="Network reduction: run groups of chunks on this many quorums in parallel "
                   "and reduce on the job's quorum (scripts of associative aggregates).")
@click.option("--blame/--no-blame", default=None,
              help="Blame mode, on by default for a job on one quorum: on a failure, name "
                   "the culprit, slash or suspend it on the ledger and re-run on a new quorum "
                   "[default: on without --chunk-quorums].")
def run_command(script: Path, dataset: str, author: str | None, signature: str | None,
                posted_job: int | None, quorum: int, reward: int, home: Path, rpc: str,
                deployment: Path, account: str, insecure_dealer: bool,
                chunk_quorums: int, blame: bool | None) -> None:
    """Run a signed script as a job on one of your datasets; prints the results (to you).

    Either post the job here (--author and --signature), or run a job an analyst posted
    and paid for (--job ID, plus --author to insist on who wrote it).
    """
    from .owner import Owner

    if posted_job is None and (author is None or signature is None):
        raise click.UsageError("give --author and --signature, or --job ID of a posted job")
    if blame and chunk_quorums > 0:
        raise click.UsageError("--blame needs one quorum: chunk and reducing quorums run "
                               "without it (docs/blame.md); drop --chunk-quorums")
    if insecure_dealer:
        click.echo("WARNING: insecure test dealer: preprocessing sees every secret", err=True)
    with Owner.open(home, rpc, deployment, account) as owner:
        try:
            out = run_job(owner, dataset, script.read_text(), author=author,
                          signature=None if signature is None else
                          bytes.fromhex(signature.removeprefix("0x")),
                          quorum_size=quorum, reward=reward, filename=script.name,
                          dealer_seed=os.urandom(32) if insecure_dealer else None,
                          progress=lambda s: click.echo(f"run: {s}", err=True),
                          chunk_quorums=chunk_quorums, posted_job=posted_job, blame=blame)
        except (JobError, ServiceError, ScriptError, LedgerError) as exc:
            raise click.ClickException(str(exc)) from exc
    for i in out.incidents:
        click.echo(f"job {i.job_id} failed ({i.error[:120]}): {i.culprit} named ({i.verdict}), "
                   + (f"accused (accusation {i.accusation_id})" if i.proved else "suspended")
                   + f"; evidence {i.evidence_path} (keccak256 {i.evidence_hash})", err=True)
    if out.refunded:
        raise click.ClickException("no quorum could finish the job; its escrow was refunded")
    for name, r in out.results.items():
        click.echo(f"{name} = {np.round(r.value, 6).tolist()}  (error <= "
                   f"{np.max(r.error):.2e})")
    click.echo(f"job {out.job_id}: quorum {out.quorum}, paid {out.payout}"
               + (f", refund to the poster {out.poster}" if posted_job is not None else ""))
    if chunk_quorums:
        click.echo(f"ran on {out.reduction}; chunk jobs {out.sub_jobs}")


@click.group("job")
def job_command() -> None:
    """The analyst's jobs: post and pay for a job where a dataset's policy allows it."""


@job_command.command("post")
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dataset-id", required=True, type=int,
              help="The dataset's id on the ledger (its owner tells you; `enigma status`).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path, exists=True),
              help="The dataset's schema: check the script against it before paying.")
@click.option("--quorum", default=3, show_default=True, help="Members of the quorum.")
@click.option("--reward", default=0, show_default=True,
              help="Wei to the author when the owner accepts the result.")
@click.option("--rounds", default=DEFAULT_ROUNDS, show_default=True,
              help="Work budget: rounds (the unspent part is refunded to you).")
@click.option("--multiplications", default=DEFAULT_MULTIPLICATIONS, show_default=True,
              help="Work budget: multiplications.")
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True)
@click.option("--deployment", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=Path("deployment.json"), show_default=True)
@click.option("--account", required=True, help="The analyst's ledger account (dev chains).")
def job_post_command(script: Path, dataset_id: int, schema_path: Path | None, quorum: int,
                     reward: int, rounds: int, multiplications: int, rpc: str,
                     deployment: Path, account: str) -> None:
    """Sign SCRIPT and post it as a job you pay for; the result goes to the dataset's owner.

    Give the owner the script text and the job id it prints: the owner runs it with
    `enigma run SCRIPT --dataset NAME --job ID` and alone reads the result.
    """
    from enigma.lang.errors import SchemaError

    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    try:
        schema = None if schema_path is None else Schema.load(schema_path)
        job = submit_job(ledger, dataset_id, script.read_text(), quorum_size=quorum,
                         reward=reward, rounds=rounds, multiplications=multiplications,
                         schema=schema, filename=script.name)
    except (JobError, ScriptError, SchemaError, LedgerError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"job {job.job_id}: posted on ledger dataset {dataset_id} by {job.poster}, "
               f"escrow {job.escrow} wei, quorum {job.quorum}, script hash "
               f"{job.script_hash.hex()}")


def cancel_job(owner: Owner, job_id: int) -> int:
    """Stop an open job: every member is told to stop (`job-cancel`), then the ledger
    refunds its escrow to the poster (`jobs.cancel`); returns the refund."""
    job = owner.ledger.job(job_id)
    if job.status is not JobStatus.OPEN:
        raise JobError(f"job {job_id} is {job.status.name.lower()}, not open: nothing to cancel")
    members = []
    for address in job.quorum:
        with contextlib.suppress(UploadError, LedgerError, ServiceError):  # unreachable: its
            # own budget stops it
            members.append(owner._holder(address, 0))
    _cancel_members(owner, members, job_id, "the owner cancelled the job")
    return owner.ledger.cancel(job_id)


@job_command.command("settle")
@click.argument("job_id", type=int)
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True)
@click.option("--deployment", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=Path("deployment.json"), show_default=True)
@click.option("--account", required=True, help="Any ledger account (it pays the gas).")
def job_settle_command(job_id: int, rpc: str, deployment: Path, account: str) -> None:
    """Close a job past its deadline (anyone may): the poster gets its whole escrow back."""
    ledger = Ledger.connect(rpc, account, Deployment.load(deployment))
    try:
        refund = ledger.timeout(job_id)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"job {job_id}: closed past its deadline; {refund} wei went back to its poster")
