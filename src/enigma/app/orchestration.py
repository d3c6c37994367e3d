"""Jobs from the owner's and the analyst's side: sign, post, run, check, accept, pay.

Who does what (docs/node.md lists the messages):

  analyst  signs keccak256(script) with its ledger key (`sign_script`), and may post and
           pay for a job where the dataset's policy lets it (`submit_job`);
  owner    posts the job on the ledger (fee in escrow; the contract draws the quorum),
           asks each quorum member for a mesh port (`job-open`), then sends every member
           the script, the schema, the mesh peers and its share of the owner's output key
           (`job-run`, over the member's authenticated, encrypted service channel);
  members  run the job (`node_jobs.NodeJobs.run`), commit the hash of their sealed
           result shares on the ledger and hand the shares back on the same channel;
  owner    checks each member's shares against its ledger commitment, recombines them,
           checks its own output MAC (`mpc.client.open_output`), decodes, and accepts
           the job on the ledger, which pays the nodes and the author.

The quorum must be holders of the dataset (see `QuorumNotHoldersError`).
"""


from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from enigma.lang.budget import ScriptLimitError
from enigma.lang.checker import check
from enigma.lang.plain import referenced_columns
from enigma.lang.pvalues import finish
from enigma.lang.reduction import (
    NotSplittable,
    plan,
)
from enigma.lang.release import Release
from enigma.lang.results import labelled
from enigma.lang.schema import Schema
from enigma.ledger import (
    ContractRevert,
    JobInfo,
    JobStatus,
    Ledger,
    LedgerError,
    Policy,
    recover_signer,
    script_hash,
)
from enigma.ledger.errors import AccessDenied, JobClosed
from enigma.mpc import client

from .attempt import (
    PENDING,
    JobResult,
    blame_attempt,
    cancel_members,
    fetch_packages,
    job_keys,
    judgement,
    packages_received,
    run_members,
    settle_replies,
)
from .budget import JobBudget
from .budget import plan as budget_plan
from .culprits import (
    Incident,
    bundle_meta,
    settle_judgement,
)
from .disclosure import job_spend, member_release, posted_spend
from .job_facts import JobCancelled, JobError, QuorumNotHoldersError
from .owner import DatasetState, Owner
from .recipient import NO_RECIPIENT, public_bytes, result_key
from .service import ServiceError
from .split_jobs import run_split
from .upload import UploadError

log = logging.getLogger(__name__)

DEFAULT_ROUNDS = 20_000
DEFAULT_MULTIPLICATIONS = 200_000_000


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
               signature: bytes | None = None, epsilon: float | None = None,
               delta: float = 0.0) -> JobInfo:
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
    On a differentially private dataset the job spends `epsilon` (and `delta`) of its
    budget, checked against what is left before posting (`disclosure.job_spend`). Under
    a release policy the job names this account's result key as its recipient: members
    seal the released cells to it as well, and `recipient.read_result` reads them once
    the owner has accepted the job (`enigma job result ID`).
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
    release = analyst.release(dataset_id)
    spend = job_spend(release, f"ledger dataset {dataset_id}", epsilon, delta)
    # under a release policy the released cells are sealed to the poster too (app/recipient)
    recipient = public_bytes(result_key(analyst)) if release.is_set else NO_RECIPIENT
    if author is None or signature is None:
        author, signature = sign_script(analyst, source)
    elif recover_signer(digest, signature) != author:
        raise JobError(f"the signature does not come from the author {author}: the script "
                       "changed after it was signed, or it was signed by another key")
    try:
        return analyst.post_job(dataset_id, digest, author, signature, quorum_size, rounds,
                                multiplications, reward, epsilon=spend.epsilon,
                                delta=spend.delta, recipient=recipient)
    except AccessDenied as exc:
        raise JobError(f"ledger dataset {dataset_id} is {_policy(record.policy)}: its "
                       f"policy does not let {analyst.address} post this script (the ledger "
                       "refused the job); ask the owner to run it, to allow-list this "
                       f"account or script, or to open the dataset. {exc}") from exc


def _posted_job(owner: Owner, state: DatasetState, digest: bytes, job_id: int, author: str | None,
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
            epsilon: float | None = None, delta: float = 0.0,
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
    quorum reduces their partials (`run_split`); otherwise the steps are:

    0. on a dataset with a release policy on the ledger, the job's `epsilon` (and `delta`)
       must fit in what is left of its privacy budget (`disclosure.job_spend`; required
       on a differentially private dataset); a posted job's spend is its record's. This
       comes before anything is posted or paid; each attempt spends again (the contract
       books it at post_job and gives it back only if no member started);

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
    Under a release policy the run header states the ledger's release (the members check
    it and name their mesh session by it) and the replays run under it; each attempt
    spends its ε (docs/disclosure.md).
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
    release = owner.ledger.release(state.ledger_id)
    if posted_job is None:
        spend = job_spend(release, dataset, epsilon, delta)
    if release.is_set and chunk_quorums > 0:
        raise JobError(f"dataset {dataset!r} has a release policy, which split runs "
                       "(--chunk-quorums) do not carry yet: run it on one quorum")

    if posted_job is None:
        _covered(state, quorum_size, say)
    schema = Schema.from_dict(state.schema, f"the progress file of {dataset!r}")
    t1 = time.perf_counter()
    budget = _job_budget(check(source, schema, filename), schema, state.rows, timeout)
    times["budget"] = time.perf_counter() - t1
    digest = script_hash(source.encode())
    if posted_job is not None:
        if chunk_quorums > 0:
            raise JobError("a posted job runs on its own quorum; chunk quorums (network "
                           "reduction) need sub-jobs the owner posts: run without "
                           "--chunk-quorums, or post the job yourself")
        say(f"checking posted job {posted_job} on the ledger")
        job = _posted_job(owner, state, digest, posted_job, author, signature)
        spend = posted_spend(job, epsilon, delta)
        _covered(state, len(job.quorum), say)
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
            return run_split(owner, state, schema, source, digest, author, signature,
                              quorum_size, reward, filename, rounds, multiplications,
                              dealer_seed, timeout, say, min(chunk_quorums, state.chunk_count),
                              budget)
    if posted_job is None:
        assert author is not None and signature is not None
        say("posting the job on the ledger")
        t1 = time.perf_counter()
        job = owner.ledger.post_job(state.ledger_id, digest, author, signature, quorum_size,
                                    rounds, multiplications, reward, epsilon=spend.epsilon,
                                    delta=spend.delta)
        times["post_tx"] = time.perf_counter() - t1
    times["post"] = time.perf_counter() - t0
    holders = {h.address: h for h in state.holders}
    strangers = [a for a in job.quorum if a not in holders]
    if strangers:
        refund = owner.ledger.cancel(job.job_id)
        raise QuorumNotHoldersError(
            f"job {job.job_id}: quorum members {strangers} hold no share of {dataset!r}; "
            f"share it to every active node (n = {len(owner.ledger.active_nodes())}) so that "
            f"any drawn quorum can compute; the job was cancelled ({refund} wei refunded)")
    t1 = time.perf_counter()
    members = [owner.holder(a, holders[a].point) for a in job.quorum]
    times["members"] = time.perf_counter() - t1
    seed = dealer_seed
    if blame and dealer_seed is not None:  # per attempt: aborted preprocessing is never reused
        seed = hashlib.sha256(dealer_seed + job.job_id.to_bytes(8, "big")).digest()
    fields = {"job_id": job.job_id, "dataset": dataset, "gen": state.gen,
              "epsilon": job.epsilon, "delta": job.delta}  # members check it on the ledger
    key, key_shares = job_keys(owner, dataset, len(members))
    # the release a replay runs under: the ledger's, as each member reads and checks it
    ran_under = member_release(release, job)
    run_fields = {**fields, "source": source, "filename": filename, "schema": state.schema,
                  "timeout": min(timeout, mesh_timeout), "budget": budget.as_header(),
                  "dealer_seed": seed.hex() if seed else None, "blame": blame,
                  "release": None if ran_under is None else ran_under.as_dict()}
    say(f"job {job.job_id}: quorum of {len(members)} computing"
        + (" in blame mode" if blame else ""))
    t1 = time.perf_counter()
    try:
        outcomes = run_members(owner, job.job_id, members, key_shares, fields, run_fields,
                                timeout)
    except KeyboardInterrupt:
        say(f"job {job.job_id}: interrupted; cancelling it at every member and on the ledger")
        cancel_members(owner, members, job.job_id, "the owner interrupted the job")
        refund = owner.ledger.cancel(job.job_id)
        raise JobCancelled(f"job {job.job_id} cancelled: {refund} wei of escrow went back to "
                           f"{job.poster}") from None
    times["compute"] = time.perf_counter() - t1
    say("checking the result and settling")
    t0 = time.perf_counter()
    failure = _failure(job, outcomes)
    result_failed = False
    if not failure:
        replies = outcomes
        try:
            results, commitments, first = settle_replies(owner, job, key, replies, times)
            finish(check(source, schema, filename), results, state.rows)
        except (JobError, client.OutputCheckError) as exc:
            failure, result_failed = str(exc), True
            if blame:
                outcomes = fetch_packages(owner, job, members, outcomes, timeout)
    if failure:
        incident = _name_culprit(owner, job, outcomes, key_shares, source, schema, state,
                                 filename, seed, blame, result_failed, failure, ran_under)
        incidents.append(incident)
        if not incident.culprit:
            raise JobError(f"job {job.job_id} failed: {incident.error}; nobody is blamed: the "
                           f"job was cancelled and {incident.refund} wei of escrow went back to "
                           f"{job.poster}")
        say(f"job {job.job_id}: {incident.describe()}, escrow refunded")
        active = set(owner.ledger.active_nodes())
        left = [h.address for h in state.holders if h.address in active]
        size = min(quorum_size, len(left))
        if attempts <= 1 or size < state.t + 1 or posted_job is not None:
            return JobResult(job.job_id, {}, [], job.quorum, {}, {}, {}, times,
                             dealer_seed is not None, [], reduction, job.poster, incidents,
                             refunded=True)
        say(f"re-posting the job on a new quorum of {size} (without {incident.culprit})")
        try:
            return run_job(owner, dataset, source, author=author, signature=signature,
                           quorum_size=size, reward=reward, filename=filename, rounds=rounds,
                           multiplications=multiplications, dealer_seed=dealer_seed,
                           timeout=timeout, progress=progress, blame=True,
                           attempts=attempts - 1,
                           mesh_timeout=mesh_timeout, epsilon=spend.epsilon or None,
                           delta=spend.delta, _incidents=incidents)
        except Exception as exc:  # whatever stops the re-run, who was blamed stays told
            exc.incidents = tuple(incidents)  # type: ignore[attr-defined]
            raise
    results = labelled(check(source, schema, filename), results)  # before accepting
    t1 = time.perf_counter()
    payout = owner.ledger.accept(job.job_id)
    times["accept_tx"] = time.perf_counter() - t1
    times["settle"] = time.perf_counter() - t0
    return JobResult(job.job_id, results,
                     list(first["printed"]), job.quorum, commitments, payout,
                     dict(first["stats"]), times, dealer_seed is not None, [], reduction,
                     job.poster, incidents, packages=packages_received(outcomes))


def _covered(state: DatasetState, size: int, say: Callable[[str], None]) -> None:
    """Refuse a quorum the storage threshold does not cover; say so if shared weak."""
    dataset = state.name
    if size < state.t + 1:
        raise JobError(f"a quorum of {size} cannot compute on {dataset!r}: it is shared "
                       f"with t = {state.t}, so a quorum needs t + 1 = {state.t + 1} members")
    if size <= state.t + 1:
        return
    readers = (f"any {state.t + 1} of its {len(state.holders)} holders can read "
               f"{dataset!r} (t = {state.t}), fewer than this quorum of {size}")
    if not state.weak:
        raise JobError(f"a job on a quorum of {size} is meant to resist {size - 1} "
                       f"colluding members, but {readers}; run it on a quorum of "
                       f"{state.t + 1}, or share the data again with --quorum {size}")
    say(f"WARNING: {dataset!r} was shared with a weak threshold: {readers}")


def _failure(job: JobInfo, outcomes: list[Any]) -> str:
    """What went wrong in an attempt, member by member ("" if every member replied): the
    members' errors, else the aborts their blame-mode replies report. A member the
    owner stopped waiting for (PENDING) is no failure of its own."""
    failure = "; ".join(f"{job.quorum[i]}: {o}" for i, o in enumerate(outcomes)
                        if isinstance(o, Exception) and o.kind != PENDING)
    return failure or "; ".join(
        f"{job.quorum[i]}: {o[0]['blame']['error']}" for i, o in enumerate(outcomes)
        if not isinstance(o, Exception) and o[0].get("blame", {}).get("aborted"))


def _name_culprit(owner: Owner, job: JobInfo, outcomes: list[Any],
                  key_shares: list[np.ndarray], source: str, schema: Schema,
                  state: DatasetState, filename: str, seed: bytes | None, blame: bool,
                  result_failed: bool, failure: str, release: Release | None) -> Incident:
    """After a failed attempt: the incident that names a member (proof in blame mode,
    signed records otherwise) or nobody, settled on the ledger. A job cancelled while it
    ran (`enigma job cancel`, or its deadline) is the owner's own stop, not a failure.
    `release` is what the members ran under: replays run under it, and the evidence file
    states it."""
    status = owner.ledger.job(job.job_id).status
    if status is not JobStatus.OPEN:
        raise JobCancelled(f"job {job.job_id} was {status.name.lower()} while it ran; "
                           f"the members stopped ({failure})")
    try:
        if blame:
            return blame_attempt(owner, job, outcomes, key_shares, source, schema, state,
                                 filename, seed, result_failed, failure, release)
        keys = [owner.ledger.node(a).transport_key for a in job.quorum]
        return settle_judgement(owner.ledger, owner.home, job,
                                judgement(owner, job, outcomes, result_failed, keys),
                                bundle_meta(source, state.schema, filename, seed, release),
                                failure)
    except JobClosed as exc:  # cancelled or timed out between the check above and now
        raise JobCancelled(f"job {job.job_id} was closed while it ran; the members stopped "
                           f"({failure})") from exc


def _job_budget(script: Any, schema: Schema, rows: int, seconds: float) -> JobBudget:
    """The job's budget (`budget.plan`); a script that runs away on synthetic data is
    refused here, before anything is posted or paid for."""
    try:
        return budget_plan(script, schema, rows, len(referenced_columns(script)), seconds)
    except ScriptLimitError as exc:
        raise JobError(f"the script ran over its budget on synthetic data, so no job was "
                       f"posted: {exc.located()}") from exc


def cancel_job(owner: Owner, job_id: int) -> int:
    """Stop an open job: the ledger refunds its escrow to the poster (`jobs.cancel`), then
    every member is told to stop (`job-cancel`); returns the refund. The ledger goes
    first so that the orchestrator, seeing its members stop, finds the job cancelled and
    blames nobody for the owner's own stop."""
    job = owner.ledger.job(job_id)
    if job.status is not JobStatus.OPEN:
        raise JobError(f"job {job_id} is {job.status.name.lower()}, not open: nothing to cancel")
    members = []
    for address in job.quorum:
        with contextlib.suppress(UploadError, LedgerError, ServiceError):  # unreachable: its
            # own budget stops it
            members.append(owner.holder(address, 0))
    refund = owner.ledger.cancel(job_id)
    cancel_members(owner, members, job_id, "the owner cancelled the job")
    return refund
