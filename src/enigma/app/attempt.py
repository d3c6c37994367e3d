"""One attempt of a job on one quorum, from the owner's side.

`run_members` asks every member to open and run the job and collects the replies (or
their signed failure records); `settle_replies` checks each member's result against its
ledger commitment and decodes; on a failure `blame_attempt` or `judgement` decides whom
to name (docs/blame.md). `orchestration.run_job` strings attempts together.
"""


from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from enigma.lang.checker import check
from enigma.lang.interpreter import Revealed
from enigma.lang.program import decode_results
from enigma.lang.release import Release
from enigma.lang.results import frame as result_frame
from enigma.lang.results import table as result_table
from enigma.lang.schema import Schema
from enigma.ledger import (
    JobInfo,
)
from enigma.mpc.blame import Package
from enigma.net.errors import AuthenticationError, NetError
from enigma.prep.served import slice_digest
from enigma.sharing import additive

from . import failures
from .culprits import (
    Incident,
    blame_job,
    bundle_meta,
)
from .job_facts import (
    JobError,
    MemberInputs,
    agreed_meta,
    inputs_digest,
    result_commitment,
    result_meta,
    session_for,
)
from .owner import DatasetState, Owner
from .replay import replay_program
from .service import Connection, ServiceError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Work budget posted with a job when the owner gives none; the unused part is refunded.
CANCEL_GRACE = 10.0
"""Seconds the owner still waits for the other members after cancelling them."""
CANCEL_TIMEOUT = 5.0
PENDING = "pending"
"""The kind of the error standing for a member the owner stopped waiting for."""


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

    def table(self, names: Sequence[str] | None = None) -> pd.DataFrame:
        """The results as one labelled DataFrame, each bound beside its value
        (`lang.results.table`: one row per group for a group-by, per result for scalars)."""
        return result_table(self.results, names)

    def frame(self, name: str) -> pd.DataFrame:
        """One result as a DataFrame indexed by its labels, with `name` and `error` columns."""
        if name not in self.results:
            raise KeyError(f"no result named {name!r}; the results are {list(self.results)}")
        return result_frame(self.results[name], name)


def cancel_members(owner: Owner, members: Sequence[Any], job_id: int, why: str) -> None:
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


def run_members(owner: Owner, job_id: int, members: Sequence[Any],
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
            cancel_members(owner, [members[i] for i in opened], job_id,
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
                    cancel_members(owner, [members[j] for j in range(n) if j != i], job_id,
                                    f"member {i} of the quorum failed")
        return [o if o is not None else ServiceError(PENDING, "no answer after the cancel")
                for o in outcomes]
    finally:
        for c in conns:
            if c is not None:
                c.close(grace=0.0)  # a pool thread may still wait on it: it must not pump
        pool.shutdown(wait=False, cancel_futures=True)


def _failed(outcome: Any) -> bool:
    """An error reply, or a blame-mode reply that says the member aborted."""
    return isinstance(outcome, Exception) or bool(outcome[0].get("blame", {}).get("aborted"))


def job_keys(owner: Owner, dataset: str, parties: int, key: np.ndarray | None = None
              ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The output key k (fresh unless given) and each member's shares of (k, kappa): kappa,
    the dataset's tag key, is split afresh for every job, so no member's share repeats."""
    F = owner.field
    k = F.random(1) if key is None else key
    kappa = owner.tag_key(dataset)
    return k, [np.concatenate([a, b]) for a, b in zip(
        additive.split(F, k, parties), additive.split(F, kappa, parties), strict=True)]


def packages_received(outcomes: list[Any]) -> int:
    """How many members' replies carried a blame package."""
    return sum(1 for o in outcomes if not isinstance(o, Exception) and "blame" in o[0])


def settle_replies(owner: Owner, job: JobInfo, key: np.ndarray, replies: list[Any],
                    times: dict[str, float]
                    ) -> tuple[dict[str, Revealed], dict[str, str], dict[str, Any]]:
    """Step 5 of `run_job`: commitments on the ledger, then the owner's own output check."""
    for reply, _ in replies:
        for k, v in reply.get("phases", {}).items():
            times[f"node.{k}"] = max(times.get(f"node.{k}", 0.0), float(v))
    commitments = checked_replies(owner, job, replies)
    first = replies[0][0]
    results = decode_results(owner.field, key, [(a[0], a[1]) for _, a in replies], first)
    return results, commitments, first


def checked_replies(owner: Owner, job: JobInfo, replies: list[Any]) -> dict[str, str]:
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


def fetch_packages(owner: Owner, job: JobInfo, members: list[Any], outcomes: list[Any],
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


def blame_attempt(owner: Owner, job: JobInfo, outcomes: list[Any],
                   key_shares: list[np.ndarray], source: str, schema: Schema, state: DatasetState,
                   filename: str, seed: bytes | None, result_failed: bool, failure: str,
                   release: Release | None = None) -> Incident:
    """Gather the members' packages and inputs from their blame replies; `blame_job`,
    replaying under `release`, the one the members ran under (the run header's)."""
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
        return replay_program(script, schema, filename, given, seed, len(job.quorum),
                              owner.field.p, release)

    keys = [owner.ledger.node(a).transport_key for a in job.quorum]
    return blame_job(owner.ledger, owner.home, job, keys, packages, inputs, make_program,
                     result_failed, result_commitment,
                     bundle_meta(source, state.schema, filename, seed, release), failure,
                     judgement(owner, job, outcomes, result_failed, keys, packages),
                     identity=owner.identity)


def judgement(owner: Owner, job: JobInfo, outcomes: list[Any], result_failed: bool,
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


