"""A job with network reduction: chunk quorums in parallel, one reducing quorum.

Used where a script's row values reach only associative aggregates
(`lang.reduction.plan`): each group of chunks is a sub-job on its own quorum, and the
job's own quorum reduces their partials. A split job's failure names nobody: every
posted sub-job is cancelled and refunded.
"""


from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np

from enigma.lang.checker import check
from enigma.lang.program import decode_results
from enigma.lang.reduction import (
    CHECK_NAME,
    ITERATIVE,
    plan,
)
from enigma.lang.results import labelled
from enigma.lang.schema import Schema
from enigma.ledger import (
    JobInfo,
    JobStatus,
    LedgerError,
)
from enigma.sharing import additive

from .attempt import JobResult, cancel_members, checked_replies, job_keys
from .budget import JobBudget
from .job_facts import JobError, QuorumNotHoldersError
from .owner import DatasetState, Owner
from .service import Connection

log = logging.getLogger(__name__)


def run_split(owner: Owner, state: DatasetState, schema: Schema, source: str, digest: bytes,
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
        members = {j.job_id: [owner.holder(a, holders[a].point if a in holders else 0)
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
                    job_keys(owner, state.name, len(j.quorum), key)[1]
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
                        cancel_members(owner, members[j.job_id], j.job_id,
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
        commitments = checked_replies(owner, parent, replies[parent.job_id])
        first = replies[parent.job_id][0][0]
        results = decode_results(F, key, [(a[0], a[1]) for _, a in replies[parent.job_id]], first)
        checks = {name: results.pop(name) for name in list(results) if name.startswith(CHECK_NAME)}
        script = check(source, schema, filename)
        if set(checks) != check_names(plan(script, schema, state.rows)) \
                or any(np.any(c.value != 0) for c in checks.values()):
            raise JobError(f"job {parent.job_id}: a partial aggregate changed between a chunk "
                           "quorum and the reducing quorum (k P != Z); the result is refused")
        results = labelled(script, results)
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
        stats = dict(first["stats"])
        stats["chunk_triples"] = sum(r[0]["stats"]["triples"] for s in subs
                                     for r in replies[s.job_id])
        stats["chunk_produced"] = {  # what each chunk quorum's preprocessing made (public)
            kind: sum(int(replies[s.job_id][0][0]["stats"].get("prep", {})
                          .get("produced", {}).get(kind, 0)) for s in subs)
            for kind in ("triples", "bits", "input_masks")}
        return JobResult(parent.job_id, results,
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


def check_names(layout: list[dict[str, Any]]) -> set[str]:
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


