"""The job service of a node daemon: `job-open`, `job-run`, `job-blame`, `job-cancel`.

Nodes never see a result: they hold additive shares of it, and the owner's key k makes
a changed share detectable. A job runs inside the node daemon (the only process that may
open the node's share store); `job_ops` gives the daemon its job requests. What a member
computes is in `member`, the split job's hand-over in `handover`.
"""


from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from enigma.files import write_atomic
from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.plain import referenced_columns
from enigma.lang.reduction import (
    NotSplittable,
)
from enigma.lang.release import Release
from enigma.lang.schema import Schema
from enigma.ledger import (
    JobInfo,
    JobStatus,
    LedgerError,
    script_hash,
)
from enigma.ledger.records import from_fixed
from enigma.mpc.blame import blame_mode, encode_abort
from enigma.mpc.engine import Engine
from enigma.mpc.faults import (
    CHANNEL_KINDS,
    PROVIDER_KINDS,
    RELEASE_KINDS,
    REPLY_KINDS,
    STORE_KINDS,
    DroppedOut,
    Fault,
    FaultyChannel,
    FaultyProvider,
)
from enigma.net.identity import PeerInfo
from enigma.net.mesh import Mesh
from enigma.prep.commands import HEProviderFactory
from enigma.prep.dealer import DealerFactory
from enigma.prep.provider import HEProvider
from enigma.prep.served import Demand, ServedProvider, SliceFactory, take_slice
from enigma.sharing import tags
from enigma.storage.commitment import (
    column_facts,
    dataset_commitment,
)
from enigma.storage.records import record_key

from . import failures
from .budget import Guard, JobBudget
from .demand import job_demand
from .disclosure import member_release
from .handover import HandOver
from .home import RESULTS, SEALED_SUFFIX, store_name
from .host import NodeHost
from .job_facts import (
    FAULT_ENV,
    HE_DIGIT_BITS,
    JobError,
    MemberInputs,
    inputs_digest,
    partial_commitment,
    result_commitment,
    result_meta,
    session_for,
)
from .ledger_view import LedgerView
from .member import (
    agree_on_demand,
    compute,
    compute_map,
    compute_reduce,
    lying_release,
    lying_reply,
    rewritten_store,
)
from .recipient import NO_RECIPIENT, seal
from .service import CLIENT_GONE, ServiceError
from .stock import StockSession, finish_in_background, open_session

log = logging.getLogger(__name__)

#: How long a member keeps the blame package of a job that succeeded, in case the owner's
#: own result check fails and it asks for it (`job-blame`); and how many it keeps at most.
KEEP_SECONDS = 900.0
KEEP_JOBS = 16
DROPPED = "dropped"
"""Fault injection: a member that leaves without a word (no signed record either)."""


REFUSALS = ("refused", "bad-request", "state")
"""ServiceError kinds of a job this node would not run (for `enigma_node_jobs_total`)."""


def _phase(job_id: int, phases: dict[str, float], name: str, since: float) -> None:
    """Record the seconds of a phase that began at `since` and log them at INFO: the node's
    log then tells how far each job got and where its time went (app/logs.py)."""
    phases[name] = time.perf_counter() - since
    log.info("job %d: %s took %.3f s", job_id, name, phases[name],
             extra={"job": job_id, "phase": name, "seconds": round(phases[name], 4)})


def _spend(epsilon: int, delta: int) -> str:
    """A job's (ε, δ) from the ledger's fixed point, for a refusal's message."""
    return f"({from_fixed(epsilon):g}, {from_fixed(delta):g})"


@dataclass
class _Opened:
    job: JobInfo
    store_name: str
    port: int
    recipient: bytes | None = None
    """The key this member also seals the result to (the job's poster, under a release
    policy: app/recipient.py), once `run` has read the policy from the ledger."""
    release: Release | None = None
    """The dataset's release policy and the job's ε as the ledger has them (`run`)."""


@dataclass
class _Kept:
    """What a member hands the owner if a job that succeeded here fails the owner's check."""

    until: float
    package: bytes
    mine: MemberInputs


#: Seconds a member's stock top-up waits, after its commitment, for the owner to settle the
#: job (`_until_settled`): the owner's checks and accept take 0.05-0.3 s; past this, a
#: slow or failing owner, the top-up starts anyway.
SETTLE_WAIT = 3.0


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

    def __init__(self, node: NodeHost) -> None:
        self.node = node
        self.records = LedgerView(node)
        self.handover = HandOver(node, self.records)
        self._opened: dict[tuple[bytes, int], _Opened] = {}
        self._lock = threading.Lock()
        self._running: dict[int, bytes] = {}
        """Split jobs (chunk or reducing) running here -> the client that may cancel them."""
        self._guards: dict[tuple[bytes, int], Guard] = {}
        """Jobs running here, by (owner, job): their budgets, which `cancel` stops."""
        self._kept: dict[tuple[bytes, int], _Kept] = {}
        """Blame packages of jobs that succeeded, by (owner, job): handed over only if the
        owner's result check fails (`blame_package`), dropped after KEEP_SECONDS."""
        self._handed: set[tuple[bytes, int]] = set()
        """Jobs whose package went to the owner (their stock is never saved)."""

    def open(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
             ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Check that the job is this owner's, on its dataset, with this node drawn; give a port.

        1. read the job from the ledger: it must be open and list this node in its quorum;
        2. its dataset record's DHT key must be this client's record key for the dataset
           named in the request (so only the owner can start jobs on its data);
        3. the privacy the request says the job spends (ε, δ) must be the job's record:
           a member enforces the ledger's, and an owner who says otherwise is refused;
        4. this node must hold a sealed generation of that dataset;
        5. reserve a free TCP port for the job's mesh and reply with it and this node's
           party number (its position in the quorum).
        """
        assert self.node.store is not None
        job_id = int(header["job_id"])
        job = self.records.call(lambda lg: lg.job(job_id))
        me = self.node.address
        if job.status.name != "OPEN":
            raise ServiceError("state", f"job {job_id} is {job.status.name}, not open")
        if me not in job.quorum:
            raise ServiceError("not-participant", f"this node ({me}) is not in the quorum of "
                                                  f"job {job_id}: {job.quorum}")
        record = self.records.call(lambda lg: lg.dataset(job.dataset_id))
        if record.dht_key != record_key("dataset", header["dataset"], client_key):
            raise ServiceError("ledger", f"job {job_id} is on ledger dataset {job.dataset_id}, "
                                         f"which is not dataset {header['dataset']!r} of this "
                                         "client; only a dataset's owner may start its jobs")
        stated = (int(header.get("epsilon", 0)), int(header.get("delta", 0)))
        if stated != (job.epsilon, job.delta):
            raise ServiceError("bad-request", f"job {job_id}: the request says it spends "
                                              f"(ε, δ) = {_spend(*stated)}, the ledger records "
                                              f"{_spend(job.epsilon, job.delta)}; refused")
        name = store_name(header["dataset"], client_key, int(header["gen"]))
        if header.get("role") != "reduce" and self.node.store.manifest(name) is None:
            raise ServiceError("missing", f"this node holds no sealed generation "
                                          f"{header['gen']} of {header['dataset']!r}")
        port = self.node.job_port()
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
        role = str(header.get("role", "single"))
        try:
            with guard:
                reply = self._checked_run(job_id, opened, client_key, header, arrays, guard)
            done = reply[0]
            self.node.metrics.job_done(role, "ok", done.get("phases"),
                                       int(done.get("stats", {}).get("bytes_sent", 0)))
            return reply
        except Exception as exc:  # every failure ends in a signed record
            refused = isinstance(exc, ServiceError)
            self.node.metrics.job_done(role, "refused" if refused and exc.kind in REFUSALS
                                       else "failed")
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
        record = self.records.call(lambda lg: lg.dataset(job.dataset_id))
        if bytes.fromhex(schema.digest()) != record.schema_hash:
            raise ServiceError("bad-request", f"the schema sent is not the one of ledger "
                                              f"dataset {job.dataset_id} (digest differs)")
        try:
            script = check(source, schema, str(header.get("filename", "<script>")))
        except ScriptError as exc:
            raise ServiceError("refused", f"job {job_id}: {exc}") from exc
        role = str(header.get("role", "single"))
        release = self._release(job_id, job, role, header.get("release"))
        if release is not None and job.recipient != NO_RECIPIENT:
            opened.recipient = job.recipient
        opened.release = release
        keys = [self.records.transport_key(a) for a in job.quorum]
        peers = [PeerInfo(i, str(p["host"]), int(p["port"]), keys[i])
                 for i, p in enumerate(header["peers"])]
        me = job.quorum.index(self.node.address)
        if peers[me].port != opened.port:
            raise ServiceError("bad-request", f"the peers list gives this node port "
                                              f"{peers[me].port}, job-open reserved {opened.port}")
        assert self.node.identity is not None and self.node.ledger is not None
        filename = str(header.get("filename", "<script>"))
        timeout = float(header.get("timeout", 120.0))
        phases: dict[str, float] = {}
        t0 = time.perf_counter()
        log.info("job %d: started as member %d of %d (%s) on ledger dataset %d", job_id, me,
                 len(peers), role, job.dataset_id, extra={"job": job_id, "role": role})
        if role in ("map", "reduce"):
            with self._lock:
                self._running[job_id] = client_key
        try:
            return self._run(job_id, job, opened, client_key, header, arrays, script, schema,
                             peers, me, role, filename, timeout, phases, t0, guard)
        finally:
            with self._lock:
                self._running.pop(job_id, None)
            self.handover.forget(job_id)

    def _release(self, job_id: int, job: JobInfo, role: str, stated: Any) -> Release | None:
        """`run` step 1b: the dataset's release policy and the job's spend, as the ledger
        has them (nobody's word for them is taken); a job that spends ε is marked started
        on the ledger before this member computes anything, so its spend is final from
        then on (`jobs.start`; a job closed before that gives it back). Returns what the
        run enforces (None: the dataset has no release policy).

        The owner states the release it will replay under (`stated`, the run header's
        `release`); a statement other than the ledger's is refused before anything is
        computed (the owner's request, which names nobody): a policy tightened while the
        members read it then stops the job, where members running under two releases
        would fail to meet and name each other absent. The release also names the job's
        mesh session (`session_for`), which binds it into every signed statement."""
        record = self.records.call(lambda lg: lg.release(job.dataset_id))
        try:
            release = member_release(record, job)
        except JobError as exc:
            raise ServiceError("refused", str(exc)) from exc
        if release is not None and role != "single":
            raise ServiceError("bad-request", f"job {job_id}: ledger dataset {job.dataset_id} "
                                              "has a release policy, which split runs do not "
                                              "carry yet: run it on one quorum")
        ours = None if release is None else release.as_dict()
        if stated != ours:
            raise ServiceError("bad-request", f"job {job_id}: the owner states the release "
                                              f"{stated}, the ledger says {ours}")
        if (job.epsilon or job.delta) and not self.records.call(
                lambda lg: lg.job(job_id)).started:
            self.records.call(lambda lg: lg.start(job_id))
        return release

    def _run(self, job_id: int, job: JobInfo, opened: _Opened, client_key: bytes,
             header: dict[str, Any], arrays: list[np.ndarray], script: Any, schema: Schema,
             peers: list[PeerInfo], me: int, role: str, filename: str, timeout: float,
             phases: dict[str, float], t0: float, guard: Guard
             ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """`run` from its step 3 on, with the job registered for cancellation."""
        assert self.node.identity is not None and self.node.ledger is not None
        fault = self._fault(job_id, me, timeout)
        if role == "reduce":
            parts, layout, total_rows = self.handover.await_partials(job_id, job, header, timeout)
            _phase(job_id, phases, "wait_partials", t0)
        else:
            if role == "map":
                parent_job = self.records.job(int(header["parent"]))
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
                shares, stored = rewritten_store(self.node.field, shares, stored)
            mine = MemberInputs(shares, point, rows, arrays[0], stored=stored)
            _phase(job_id, phases, "read_shares", t0)
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
            # under a policy, the slice covers sealing every cell (the real data may keep more
            # than the synthetic one: lang.release.Release.sizing)
            sizing = None if opened.release is None else replace(opened.release, sizing=True)
            try:
                demand = job_demand(
                    lambda e, sh, pt, r, k: compute(e, script, schema, sh, pt, r, k, filename,
                                                    budget=guard.budget.fresh(),
                                                    release=sizing),
                    schema, list(shares), rows, len(peers), self.node.field,
                    digit_bits=HE_DIGIT_BITS)
            except (ScriptError, NotSplittable) as exc:
                raise ServiceError("refused", f"job {job_id}: {exc}") from exc
            _phase(job_id, phases, "plan", t1)
        started = time.perf_counter()
        # setup waits for members that are still reading their shares: the message timeout
        # (short in blame tests, where it decides who is absent) is no bound for it
        stock: StockSession | None = None
        committed = threading.Event()  # set once this node's commit is mined (or failed)
        with contextlib.ExitStack() as closing:
            mesh = closing.enter_context(Mesh(
                me, self.node.identity, peers,
                session_for(job_id, self.node.ledger.deployment, opened.release),
                timeout=timeout, connect_timeout=max(timeout, 30.0),
                bind=self.node.config.host, stop=lambda: guard.limit is not None))
            _phase(job_id, phases, "mesh", started)
            if dealer:
                factory = DealerFactory(bytes.fromhex(dealer), insecure=True)
                provider = factory(self.node.field, me, len(peers))
            elif role == "single":  # split jobs run side by side on one quorum: no stock
                t1 = time.perf_counter()
                stock = open_session(self.node.stocks, mesh, job.quorum, me, wait=timeout)
                provider = stock.provider
                _phase(job_id, phases, "he_session", t1)
            else:
                provider = HEProviderFactory()(self.node.field, me, len(peers), channel=mesh)
            prep_slice: bytes | None = None
            if demand is not None:
                # blame mode on HE: the job's whole slice, made (or checked out of the stock)
                # on the plain mesh before the online phase; the engine runs from exactly it
                # and the material commits to its digest (prep.served, docs/blame.md)
                assert stock is not None
                t1 = time.perf_counter()
                agree_on_demand(mesh, demand)
                piece = take_slice(stock.provider, demand)
                prep_slice = piece.encode()
                factory = SliceFactory({me: prep_slice})
                provider = ServedProvider(self.node.field, piece)
                _phase(job_id, phases, "prep", t1)
            if fault is not None and fault.kind in PROVIDER_KINDS:
                provider = FaultyProvider(provider, fault, insecure=True)
            wrap = None
            if fault is not None and fault.kind in CHANNEL_KINDS \
                    and fault.kind != "wrong-recipient":  # the app-layer kind: see below
                def wrap(inner: Any, f: Fault = fault) -> FaultyChannel:
                    return FaultyChannel(inner, f, insecure=True)
            signed = None
            t1 = time.perf_counter()
            digits = {} if dealer else {"digit_bits": HE_DIGIT_BITS}
            if blamed:
                engine, signed = blame_mode(
                    mesh, self.node.identity, [q.public_key for q in peers], provider, factory,
                    inputs=inputs_digest(mine), wrap=wrap, **digits)
            else:
                engine = Engine(mesh if wrap is None else wrap(mesh), provider, **digits)
            guard.engine, guard.provider = engine, provider
            _phase(job_id, phases, "engine", t1)
            _phase(job_id, phases, "connect", started)
            try:
                if role == "map":
                    chunk_side = self.handover.chunk_exchange(job_id, header, rows, timeout, phases)
                    out = compute_map(engine, script, schema, shares, point, rows, arrays[0],
                                      filename, int(header["total_rows"]), chunk_side, phases,
                                      guard.budget)
                elif role == "reduce":
                    reducer_side = self.handover.reduce_exchange(job_id, job, header, timeout)
                    out = compute_reduce(engine, script, schema, parts, arrays[0], layout,
                                         total_rows, filename, reducer_side, guard.budget)
                else:
                    release = opened.release
                    if fault is not None and fault.kind in RELEASE_KINDS:
                        release = lying_release(release)
                    out = compute(engine, script, schema, shares, point, rows, arrays[0],
                                  filename, fault, phases, guard.budget, release)
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
            made = stock.provider if stock is not None else provider
            if isinstance(made, HEProvider):  # this job's set-up and production, so far
                phases["offline"] = made.seconds
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
                                     cfg.prep_ahead_bits, cfg.prep_ahead_inputs,
                                     f"job {job_id}",
                                     lambda: self._until_settled(job_id, committed, timeout))
        seconds = time.perf_counter() - started
        rounds, mults = out["stats"]["rounds"], out["stats"]["triples"]
        if role == "map":
            parent = int(header["parent"])
            commitment = partial_commitment(job_id, parent, chunk_side.sent)
            self._commit(job_id, phases, committed, commitment, parent.to_bytes(32, "big"),
                         rounds, mults)
            log.info("chunk job %d (of %d) done in %.2f s: %d rounds, %d triples", job_id,
                     parent, seconds, rounds, mults,
                     extra={"job": job_id, "role": role, "seconds": round(seconds, 4)})
            return {"stats": out["stats"], "commitment": commitment.hex(),
                    "seconds": seconds, "phases": phases}, []
        phases["mpc"] = time.perf_counter() - started - phases["connect"]
        x, z = out.pop("sealed")
        if fault is not None and fault.kind in REPLY_KINDS:
            out = lying_reply(out, fault.kind)
        if fault is not None and fault.kind == "wrong-recipient":
            log.warning("job %d: FAULT INJECTION (wrong-recipient): this node hands the owner "
                        "a result share sealed for another recipient", job_id)
            x, z = z, x
        commitment = result_commitment(job_id, x, z, result_meta(out))
        if opened.recipient is not None:  # kept for the poster, handed out once accepted
            write_atomic(self._sealed_path(job_id),
                         [seal(opened.recipient, job_id, me, x, z, out)])
        if os.environ.get(FAULT_ENV) == "tamper-result":
            log.warning("job %d: FAULT INJECTION (%s): this node hands the owner result shares "
                        "other than the ones it commits to", job_id, FAULT_ENV)
            x = x.copy()
            x[:1] ^= np.uint64(1)
        self._commit(job_id, phases, committed, commitment, self.node.node_id, rounds, mults)
        out["phases"] = phases
        log.info("job %d done in %.2f s: %d rounds, %d triples", job_id, seconds, rounds, mults,
                 extra={"job": job_id, "role": role, "seconds": round(seconds, 4)})
        reply = {**out, "commitment": commitment.hex(), "seconds": seconds}
        return reply, [x, z]

    def _commit(self, job_id: int, phases: dict[str, float], committed: threading.Event,
                commitment: bytes, pointer: bytes, rounds: int, mults: int) -> None:
        """`commit_result` on the ledger (phase `commit`), then set `committed`."""
        t0 = time.perf_counter()
        try:
            self.records.call(lambda lg: lg.commit_result(job_id, commitment, pointer,
                                                          rounds, mults))
        finally:
            committed.set()
        _phase(job_id, phases, "commit", t0)

    def _until_settled(self, job_id: int, committed: threading.Event, wait: float) -> None:
        """In the stock's top-up thread: return once this member's commitment is mined
        (`committed`, up to `wait` s) and then the owner has settled the job (it left OPEN),
        up to SETTLE_WAIT s more; the chain's head is polled every 20 ms and the job read
        only when a block was added.

        Why: the top-up is CPU-bound work of every member at once; begun before the
        commitment it slowed the member's own transaction, and on one machine (as under
        `enigma up`) the chain's mining of the commitments and the owner's accept, the
        steps a user waits for. The top-up is for the next job, which can wait for it."""
        committed.wait(wait)
        deadline, seen = time.monotonic() + SETTLE_WAIT, -1
        while time.monotonic() < deadline:
            try:
                head = self.records.call(lambda lg: lg.w3.eth.block_number)
                if head != seen:
                    seen = head
                    if self.records.call(lambda lg: lg.job(job_id)).status != JobStatus.OPEN:
                        return
            except Exception as exc:  # no ledger answer: top up now, as before
                log.info("job %d: not waiting for its settlement to top up: %s", job_id, exc)
                return
            time.sleep(0.02)

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
                status = self.records.call(lambda lg: lg.job(job_id)).status
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
        record = self.records.call(lambda lg: lg.dataset(job.dataset_id))
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


    def running(self) -> int:
        """Jobs running here now (their members hold a budget guard)."""
        with self._lock:
            return len(self._guards)

    def hand_back(self, why: str) -> int:
        """Stop every running job at its next step, as `cancel` does; how many were stopped.

        Why (a node told to shut down): each member then replies to its owner with a signed
        `cancelled` record, which names no peer and so blames nobody; the owner re-runs the
        job without this node instead of waiting out a timeout.
        """
        with self._lock:
            guards = list(self._guards.values())
            split = list(self._running)
        for guard in guards:
            guard.cancel(why)
        for job_id in split:
            self.handover.cancel(job_id)
        return len(guards)

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
        with self._lock:
            guard = self._guards.get((client_key, job_id))
            opened = self._opened.pop((client_key, job_id), None)
            if guard is None and opened is None and self._running.get(job_id) != client_key:
                return {"cancelled": False}, []
            if guard is not None:
                guard.cancel(why)
        self.handover.cancel(job_id)
        log.warning("job %d: cancelled by its owner (%s)", job_id, why)
        return {"cancelled": True}, []


    def _sealed_path(self, job_id: int) -> Path:
        folder = self.node.config.home / RESULTS
        folder.mkdir(exist_ok=True)
        return folder / f"job{job_id}{SEALED_SUFFIX}"

    def result(self, client_key: bytes, header: dict[str, Any], arrays: list[np.ndarray]
               ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """`job-result`: this member's copy of a job's result sealed to the job's recipient,
        to anyone who asks (only the recipient can open it), once the job is accepted on
        the ledger: the owner has checked the result, and the job's commitments are final."""
        job_id = int(header["job_id"])
        status = self.records.call(lambda lg: lg.job(job_id)).status
        if status is not JobStatus.ACCEPTED:
            raise ServiceError("state", f"job {job_id} is {status.name.lower()}: released "
                                        "results are handed out once its owner accepted it")
        path = self._sealed_path(job_id)
        if not path.exists():
            raise ServiceError("missing", f"this node keeps no sealed result of job {job_id} "
                                          "(only of a job on a dataset with a release policy "
                                          "that names a recipient, for --results-ttl after "
                                          "it ran)")
        return {"job_id": job_id}, [np.frombuffer(path.read_bytes(), np.uint8)]


def job_ops(jobs: NodeJobs) -> dict[str, Callable[[bytes, dict[str, Any], list[np.ndarray]],
                                               tuple[dict[str, Any], list[np.ndarray]]]]:
    """The requests a node daemon adds to its service for jobs."""
    return {"job-open": jobs.open, "job-run": jobs.run, "job-partial": jobs.handover.partial,
            "job-reshare": jobs.handover.reshare, "job-cancel": jobs.cancel,
            "job-blame": jobs.blame_package, "job-result": jobs.result}


