"""The hand-over of a split job between chunk quorums and the reducing quorum.

A chunk-quorum member sends one additive part of its partial aggregates to every
reducing member (`job-partial`); for an iterative script a reducing member re-shares
the centroids back to every chunk quorum (`job-reshare`). Every part travels on the
node-to-node service channel, authenticated by the ledger's transport keys, and is
accepted only from a member of the sending job's quorum.
"""


from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from enigma.ledger import (
    JobInfo,
)
from enigma.sharing import additive

from .host import NodeHost
from .job_facts import FAULT_ENV
from .ledger_view import LedgerView
from .member import ChunkExchange, ReduceExchange
from .service import Connection, ServiceError

log = logging.getLogger(__name__)


@dataclass
class _Partial:
    """One chunk-quorum member's additive parts of (P, kP) for this reducing member."""

    layout: list[dict[str, Any]]
    rows: int
    p: np.ndarray
    z: np.ndarray


class HandOver:
    """One node's side of the hand-overs of the split jobs it runs.

    Parts arrive on service threads (`partial`, `reshare`) and wait here until the
    member's job takes them (`await_partials`, the exchanges' `wait`); a cancelled job
    stops waiting at once.
    """

    def __init__(self, node: NodeHost, records: LedgerView) -> None:
        self.node = node
        self.records = records
        self._arrived = threading.Condition()
        self._partials: dict[tuple[int, int], dict[tuple[int, str], _Partial]] = {}
        """(parent job, batch) -> (chunk job, sender) -> the parts received."""
        self._reshares: dict[tuple[int, int], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        """(chunk job, batch) -> reducing member -> its parts of a re-shared value (c, k c)."""
        self._cancelled: set[int] = set()

    def cancel(self, job_id: int) -> None:
        """Stop the job's waits for parts (its owner cancelled it)."""
        with self._arrived:
            self._cancelled.add(job_id)
            self._arrived.notify_all()

    def forget(self, job_id: int) -> None:
        """Drop what is kept for a job that ended, however it ended."""
        with self._arrived:
            self._cancelled.discard(job_id)
            for key in [k for k in self._partials if k[0] == job_id]:
                del self._partials[key]
            for key in [k for k in self._reshares if k[0] == job_id]:
                del self._reshares[key]

    def _send_partials(self, job_id: int, parent: int, reducers: list[dict[str, Any]],
                       p: np.ndarray, z: np.ndarray, layout: list[dict[str, Any]], rows: int,
                       timeout: float, batch: int = 0) -> list[np.ndarray]:
        """Split this member's shares of (P, kP) into one additive part per reducing member
        and send each its part over the node-to-node service channel (authenticated by the
        ledger's transport keys); returns the parts in the order sent (for the commitment).
        """
        F = self.node.field
        job = self.records.job(parent)
        if len(reducers) != len(job.quorum):
            raise ServiceError("bad-request", f"{len(reducers)} reducing members given, job "
                                              f"{parent} has {len(job.quorum)}")
        keys = [self.records.transport_key(a) for a in job.quorum]
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
        job, subjob = self.records.job(parent), self.records.job(sub)
        receiving, sending, sending_id = (subjob, job, parent) if into_chunk else (job, subjob, sub)
        if self.node.address not in receiving.quorum:
            raise ServiceError("not-participant", f"this node does not compute job {sub}"
                               if into_chunk else f"this node does not reduce job {parent}")
        if (subjob.dataset_id, subjob.script_hash) != (job.dataset_id, job.script_hash):
            raise ServiceError("bad-request", f"job {sub} is not a chunk job of job {parent}")
        if sender not in sending.quorum or self.records.transport_key(sender) != client_key:
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
        senders = set(self.records.job(parent).quorum)
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
            quorum = self.records.job(int(sub)).quorum
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
                                 self.records.transport_key(address), timeout) as conn:
                conn.request("job-reshare", [cp, zp], parent=parent, sub_job=sub,
                             sender=self.node.address, batch=batch)

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(calls)))) as pool:
            for f in [pool.submit(send, call) for call in calls]:
                f.result()

    def chunk_exchange(self, job_id: int, header: dict[str, Any], rows: int, timeout: float,
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

    def reduce_exchange(self, job_id: int, job: JobInfo, header: dict[str, Any],
                         timeout: float) -> ReduceExchange:
        members = {str(k): v for k, v in dict(header.get("chunk_members") or {}).items()}

        def fetch(batch: int) -> tuple[tuple[np.ndarray, np.ndarray], list[dict[str, Any]],
                                       int]:
            return self.await_partials(job_id, job, header, timeout, batch)

        def send(batch: int, c: np.ndarray, z: np.ndarray) -> None:
            if not members:
                raise ServiceError("bad-request", f"job {job_id}: the owner gave no chunk "
                                                  "members to re-share to")
            self._send_reshare(job_id, members, c, z, batch, timeout)

        return ReduceExchange(fetch, send)

    def await_partials(self, job_id: int, job: JobInfo, header: dict[str, Any],
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
            info = self.records.job(sub)
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

