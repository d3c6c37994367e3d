"""The owner's side of a failed job in blame mode: name the culprit, prove it, settle on chain.

Why here, at the owner: a member's blame package holds its MAC key share, its coins and
every frame it exchanged. Together, the packages of a quorum reveal the owner's data, so
they go to the owner alone, on the same encrypted channel that carries its result shares
(docs/blame.md). What becomes public is only the culprit's own view (its material, its
signed statement, the messages on its channels and its own inputs), bundled with the
job's public facts; the ledger gets the keccak256 of that bundle.

Steps (`blame_job`):

1. rebuild each member's packages and committed inputs from the blame replies; a member
   whose inputs do not hash to what its material commits to has no package;
2. `identify`: a member whose signed messages differ from its honest replay is a proved
   deviator; its evidence is re-checked with `verify_evidence` on the public program
   (the script, the schema, the dealer seed and that member's inputs only);
3. if nobody's messages deviate, a member whose committed inputs are not what the ledger
   says it stores (its point, its chunk digests against the dataset commitment it
   sealed, its shares against those digests: `stored_contradiction`) is proved too
   (`inputs`: its store was rewritten after sealing);
4. if nobody is named yet but the owner's result check failed, each member's view is
   replayed to the end (`replay_output`): a member whose result commitment, signed on
   the ledger by its own account, is not the hash of what its committed run produces
   delivered a wrong result share or lied about the result's facts: a proved deviation;
5. otherwise the failure records decide (`failures.judge`): a script over its budget or a
   request the owner got wrong names nobody (the job is cancelled and refunded); a
   member whose own record says its store is damaged is named by it; then the members
   named `absent` on the others' signed abort records (timed out, dropped out: an
   attestation only), those that sent the owner nothing (`silent`) or a result other
   than they committed to (`withheld`), and last a member whose own record says it
   failed (`self`);
6. on chain: a proved deviation is an owner-signed accusation (`accuse`, proof type 1,
   with the accuser's bond): the culprit is held out of every draw at once, and after the
   challenge period (and, if it disputes, a committee's vote) `finalize` gives its deposit
   to the job's other members and excludes it for good; the owner pushes the evidence file
   to the job's quorum, who serve it to the committee (app/disputes.py). An attested
   absence is `report_absent`: no wei moves, the node is suspended from draws. Both refund
   the poster's escrow at once; `run_job` then re-posts the job on a new quorum.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from eth_utils import keccak

from enigma.files import write_atomic
from enigma.lang.release import PolicyError, Release
from enigma.ledger import DatasetInfo, JobInfo, JobStatus, Ledger
from enigma.ledger.records import from_fixed, to_fixed
from enigma.mpc.blame import (
    EvidenceError,
    Package,
    Program,
    decode_aborts,
    decode_evidence,
    encode_abort,
    evidence_material,
    identify,
    replay_output,
    signed_material,
    verify_evidence,
    view_evidence,
)
from enigma.net.errors import AuthenticationError
from enigma.net.identity import Identity
from enigma.net.transcript import session_id
from enigma.storage.commitment import (
    chunk_commitment,
    dataset_commitment,
    describe,
    read_column_facts,
)

from .evidence import evidence_holders, publish_evidence
from .failures import Judgement, absence_rank
from .job_facts import MemberInputs, session_for

_BUNDLE = b"enigma.job.evidence.v1"


PROVED = ("deviation", "result", "inputs")
"""Verdicts that rest on evidence anyone checks (an accusation); the others are attested."""


@dataclass
class Incident:
    """One failed attempt of a job and what the owner did about it."""

    job_id: int
    culprit: str
    """The ledger address named (empty when nobody could be named)."""
    party: int
    verdict: str
    """`deviation` (messages), `result` (result share), `inputs` (committed inputs that are
    not what it stored), `absent`, `withheld`, `silent`, `self` (attested), `script`,
    `request` or `none` (nobody named: the job was cancelled and refunded)."""
    evidence_hash: str
    evidence_path: str
    refund: int
    seconds: float
    error: str
    accusation_id: int = -1
    """The pending accusation on chain (proved verdicts); `finalize` settles it later."""

    @property
    def proved(self) -> bool:
        return self.verdict in PROVED

    def describe(self) -> str:
        """Who was named, how, and what happens to it (one line, no private value)."""
        return (f"{self.culprit} named ({self.verdict}); "
                + (f"accused (accusation {self.accusation_id}: slashed after its challenge "
                   "period unless a committee acquits it)" if self.proved else "suspended"))


def stored_contradiction(record: DatasetInfo, address: str, mine: MemberInputs
                         ) -> str | None:
    """Why a member's committed inputs cannot be what it stored, judged from the ledger's
    dataset record alone (anyone can), or None if they can be.

    1. its point must be its place among the record's holders (points are 1..n in order);
    2. its chunk digests, under its store's name, must make the dataset commitment the
       record holds for it (what it confirmed when it sealed the generation);
    3. its input shares, cut at the chunks' row counts, must have exactly those digests.
    A member whose stored share changed after sealing (on disk or in memory) fails 2 or 3;
    an honest member checks 2 before it runs (`NodeJobs._check_generation`)."""
    if address not in record.holders:
        return f"{address} is not a holder of ledger dataset {record.dataset_id}"
    place = record.holders.index(address)
    if mine.point != place + 1:
        return (f"it input shares at point {mine.point}; the ledger record places it at point "
                f"{place + 1}")
    try:
        name, chunks = str(mine.stored["store"]), list(mine.stored["chunks"])
        digests = [(int(index), int(rows), read_column_facts(facts))
                   for index, rows, facts in chunks]
    except (KeyError, TypeError, ValueError) as exc:
        return f"its statement of what it stores is malformed ({exc})"
    if [i for i, _, _ in digests] != list(range(len(digests))) or \
            dataset_commitment([chunk_commitment(name, i, d) for i, _, d in digests]) != \
            record.commitments[place]:
        return ("the chunks it says it stores are not the ones its ledger commitment covers "
                "(its shares changed after it sealed them)")
    if sum(rows for _, rows, _ in digests) != mine.rows:
        return f"its row count {mine.rows} is not its chunks' {sum(r for _, r, _ in digests)}"
    for column, shares in mine.shares.items():
        start = 0
        for index, rows, d in digests:
            if column not in d or describe(np.ascontiguousarray(
                    shares[start:start + rows], dtype="<u8")) != d[column]:
                return (f"its input shares of column {column!r} in chunk {index} are not the "
                        "ones it stores")
            start += rows
    return None


def encode_bundle(meta: Mapping[str, Any], evidence: bytes, arrays: Sequence[np.ndarray]) -> bytes:
    """The public evidence file: job facts (JSON), the blame evidence, the culprit's inputs."""
    parts = [_BUNDLE]
    for blob in (json.dumps(meta, sort_keys=True).encode(), evidence,
                 *[np.ascontiguousarray(a, dtype="<u8").tobytes() for a in arrays]):
        parts += [struct.pack("<I", len(blob)), blob]
    return b"".join(parts)


def blame_job(ledger: Ledger, home: Path, job: JobInfo, public_keys: Sequence[bytes],
              packages: Mapping[int, Package], inputs: Mapping[int, MemberInputs],
              make_program: Callable[[Mapping[int, MemberInputs]], Program],
              result_failed: bool,
              commitment_of: Callable[[int, np.ndarray, np.ndarray, bytes], bytes],
              meta: Mapping[str, Any], error: str, judgement: Judgement,
              identity: Identity | None = None) -> Incident:
    """Steps 1-6 of the module docstring for one failed attempt; returns what was done.

    `judgement` is the owner's reading of the members' failure records (`failures.judge`),
    used when no proof names anyone. With `identity` (the owner's), the evidence file of
    an accusation is pushed to the job's quorum, who serve it to whoever judges a dispute.
    """
    t0 = time.perf_counter()
    program = make_program(inputs)
    verdict = identify(program, packages, public_keys)
    party, kind, evidence = -1, "none", b""
    for p, why in sorted(verdict.culprits.items()):
        if why == "deviation":
            public = make_program({p: inputs[p]})  # what anyone replays: its inputs alone
            if verify_evidence(verdict.evidence[p], public, public_keys) == p:
                party, kind, evidence = p, "deviation", verdict.evidence[p]
                break
    if party < 0:
        record = ledger.dataset(job.dataset_id)
        for p in sorted(packages):
            view = view_evidence(packages, public_keys, p)
            if view is not None and stored_contradiction(record, job.quorum[p],
                                                         inputs[p]) is not None:
                party, kind, evidence = p, "inputs", view
                break
    if party < 0 and result_failed:
        for p in sorted(packages):
            view = view_evidence(packages, public_keys, p)
            if view is None:
                continue
            try:
                _, sealed = replay_output(view, make_program({p: inputs[p]}), public_keys)
            except EvidenceError:
                continue
            signed = ledger.commit_of(job.job_id, job.quorum[p]).commitment
            if commitment_of(job.job_id, *sealed) != signed:
                party, kind, evidence = p, "result", view
                break
    if party < 0 and judgement.before_absence:
        return settle_judgement(ledger, home, job, judgement, meta, error, t0)
    if party < 0:
        named = [p for p, why in verdict.culprits.items() if why == "absent"]
        if named:
            party = min(named, key=lambda p: absence_rank(verdict.attested.get(p, []), p))
            kind = verdict.culprits[party]
            evidence = b"".join(encode_abort(r) for r in verdict.attested.get(party, []))
    if party < 0:
        return settle_judgement(ledger, home, job, judgement, meta, error, t0)
    culprit = job.quorum[party]
    arrays: list[np.ndarray] = []
    facts = dict(meta, job_id=job.job_id, culprit=culprit, party=party, verdict=kind)
    if kind in PROVED:
        mine = inputs[party]
        arrays = [*mine.shares.values(), mine.key_share]
        if mine.prep:  # the culprit's own slice, the one its material commits to
            arrays.append(np.frombuffer(mine.prep, dtype="<u8").reshape(-1, 2))
        facts.update(point=mine.point, rows=mine.rows, columns=list(mine.shares),
                     stored=dict(mine.stored),
                     result_commitment=ledger.commit_of(job.job_id, culprit).commitment.hex())
    bundle = encode_bundle(facts, evidence, arrays)
    digest, path = _keep_evidence(home, job, kind, culprit, bundle)
    accusation_id = -1
    if kind in PROVED:
        sig = ledger.sign(ledger.accusation_digest(job.job_id, culprit, digest))
        accusation_id = ledger.accuse(job.job_id, culprit, digest, [sig])
        refund = job.escrow
        if identity is not None:
            publish_evidence(ledger, identity, accusation_id, bundle,
                             evidence_holders(ledger, job.quorum))
    else:
        refund = _report_absent(ledger, job, culprit, digest)
    return Incident(job.job_id, culprit, party, kind, digest.hex(), str(path), refund,
                    time.perf_counter() - t0, error, accusation_id)


def _keep_evidence(home: Path, job: JobInfo, kind: str, culprit: str, bundle: bytes
                   ) -> tuple[bytes, Path]:
    """Write an evidence file where the owner keeps them; its keccak256 and path."""
    path = home / "evidence" / f"job-{job.job_id}-{kind}-{culprit.lower()}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, [bundle])
    return keccak(bundle), path


def _report_absent(ledger: Ledger, job: JobInfo, culprit: str, digest: bytes) -> int:
    sig = ledger.sign(ledger.absence_digest(job.job_id, culprit, digest))
    return ledger.report_absent(job.job_id, culprit, digest, [sig])


def settle_judgement(ledger: Ledger, home: Path, job: JobInfo, judgement: Judgement,
                     meta: Mapping[str, Any], error: str, t0: float | None = None
                     ) -> Incident:
    """Act on a judgement that rests on records, not proofs: cancel and refund when it names
    nobody; otherwise publish the records that name the member (its own, or the others')
    as an evidence file and report it absent (suspended, never slashed; escrow refunded)."""
    t0 = time.perf_counter() if t0 is None else t0
    if not judgement.blames:  # (already closed if the owner cancelled it meanwhile)
        open_ = ledger.job(job.job_id).status is JobStatus.OPEN
        refund = ledger.cancel(job.job_id) if open_ else 0
        return Incident(job.job_id, "", -1, judgement.kind, "", "", refund,
                        time.perf_counter() - t0, f"{error} ({judgement.reason})")
    culprit = job.quorum[judgement.party]
    facts = dict(meta, job_id=job.job_id, culprit=culprit, party=judgement.party,
                 verdict=judgement.kind, reason=judgement.reason)
    digest, path = _keep_evidence(home, job, judgement.kind, culprit,
                                  encode_bundle(facts, judgement.evidence(), []))
    refund = _report_absent(ledger, job, culprit, digest)
    return Incident(job.job_id, culprit, judgement.party, judgement.kind, digest.hex(),
                    str(path), refund, time.perf_counter() - t0, error)


def read_bundle(bundle: bytes) -> tuple[dict[str, Any], bytes, list[np.ndarray]]:
    """The parts of an evidence file: public facts, blame evidence, the culprit's inputs."""
    if not bundle.startswith(_BUNDLE):
        raise EvidenceError("not an enigma job evidence file")
    pos, blobs = len(_BUNDLE), []
    while pos < len(bundle):
        if pos + 4 > len(bundle):
            raise EvidenceError("truncated evidence file")
        (n,) = struct.unpack_from("<I", bundle, pos)
        if pos + 4 + n > len(bundle):
            raise EvidenceError("truncated evidence file")
        blobs.append(bundle[pos + 4:pos + 4 + n])
        pos += 4 + n
    if len(blobs) < 2:
        raise EvidenceError("an evidence file holds the facts and the evidence at least")
    try:
        meta = json.loads(blobs[0])
    except ValueError as exc:
        raise EvidenceError(f"the facts are not JSON: {exc}") from exc
    arrays = [np.frombuffer(b, dtype="<u8").reshape(-1, 2) for b in blobs[2:]]
    return meta, blobs[1], arrays


def verify_bundle(ledger: Ledger, bundle: bytes,
                  make_program: Callable[[Mapping[str, Any], Mapping[int, MemberInputs]],
                                         Program],
                  inputs_digest: Callable[[MemberInputs], bytes],
                  commitment_of: Callable[[int, np.ndarray, np.ndarray, bytes], bytes]
                  ) -> tuple[str, str]:
    """Check an evidence file as anyone can, from the ledger and the file alone.

    1. its keccak256 is the evidence hash of the job's accusation on the ledger (or of an
       `AbsenceReported` event for the job), and the node it names is that party of the
       job's quorum;
    2. a deviation: `verify_evidence` on the public program (script, schema, dealer seed
       or, on HE, the culprit's own preprocessing slice, and the culprit's inputs, whose
       digests its committed material holds); a wrong result:
       the culprit's replay to the end does not hash to the result commitment the
       culprit itself signed on the ledger; both run under the release the file states,
       which must spend the job's ε and δ on the ledger and name the session of the
       culprit's signed statements (`job_facts.session_for`): the culprit signed that it
       ran under it, whatever the dataset's policy says today; an absence: every abort
       record verifies under its signer's key and names the node (an attestation, which
       is all it claims).
    Returns (culprit address, verdict); EvidenceError says which check failed.
    """
    meta, evidence, arrays = read_bundle(bundle)
    try:
        job = ledger.job(int(meta["job_id"]))
        culprit, kind, party = str(meta["culprit"]), str(meta["verdict"]), int(meta["party"])
    except (KeyError, ValueError, TypeError) as exc:
        raise EvidenceError(f"the facts lack a field: {exc}") from exc
    if not 0 <= party < len(job.quorum) or job.quorum[party].lower() != culprit.lower():
        raise EvidenceError("the file names a node that is not that party of the job")
    digest = keccak(bundle)
    accusation = ledger.accusation_of_job(job.job_id)
    if accusation is not None:  # one read, not a scan of every event on the chain
        posted = [ledger.accusation(accusation).evidence_hash]
    else:
        posted = [bytes(a["evidence_hash"]) for n, a in ledger.events()
                  if n == "AbsenceReported" and a["job_id"] == job.job_id]
    if digest not in posted:
        raise EvidenceError("step 1: no accusation or absence report of this job names this "
                            "file's keccak256")
    keys = [ledger.node(a).transport_key for a in job.quorum]
    if kind in ("absent", "withheld"):
        try:
            records = decode_aborts(evidence)
            for rec in records:
                rec.verify(keys[rec.party])
        except (ValueError, IndexError, AuthenticationError) as exc:
            raise EvidenceError(f"step 2: an abort record does not verify: {exc}") from exc
        if (kind == "absent" and not records) or any(r.peer != party for r in records):
            raise EvidenceError(f"step 2: the abort records do not name party {party}")
        return culprit, kind
    columns = list(meta.get("columns", []))
    he = meta.get("prep") == "he"
    if len(arrays) != len(columns) + 1 + he:
        raise EvidenceError("the file does not hold the culprit's inputs"
                            + (" and preprocessing slice" if he else ""))
    mine = MemberInputs(dict(zip(columns, arrays[:len(columns)], strict=True)),
                        int(meta["point"]), int(meta["rows"]), arrays[len(columns)],
                        arrays[-1].tobytes() if he else b"", dict(meta.get("stored") or {}))
    if inputs_digest(mine) != evidence_material(evidence).inputs:
        raise EvidenceError("the inputs in the file are not the ones the culprit committed to")
    ran_under(ledger, job, meta, evidence)
    if kind == "inputs":
        if signed_material(evidence, keys)[0] != party:
            raise EvidenceError("the evidence is another party's view")
        why = stored_contradiction(ledger.dataset(job.dataset_id), culprit, mine)
        if why is None:
            raise EvidenceError("step 2: the culprit's committed inputs are what the ledger "
                                "says it stores")
        return culprit, kind
    program = make_program(meta, {party: mine})
    if kind == "deviation":
        if verify_evidence(evidence, program, keys) != party:
            raise EvidenceError("the evidence names another party")
        return culprit, kind
    _, sealed = replay_output(evidence, program, keys)
    if commitment_of(job.job_id, *sealed) == \
            ledger.commit_of(job.job_id, culprit).commitment:
        raise EvidenceError("step 2: the culprit's committed run produces the result it "
                            "committed to")
    return culprit, kind


def bundle_meta(source: str, schema: Mapping[str, Any], filename: str,
                dealer_seed: bytes | None, release: Release | None = None) -> dict[str, Any]:
    """The public facts a verifier needs besides the evidence: the script, schema, the
    preprocessing (the dealer's seed, or `he`: the file then holds the culprit's slice)
    and the release the members ran under (None: the dataset had no release policy)."""
    return {"script": source, "schema": dict(schema), "filename": filename,
            "dealer_seed": dealer_seed.hex() if dealer_seed is not None else None,
            "prep": "dealer" if dealer_seed is not None else "he",
            "script_sha256": hashlib.sha256(source.encode()).hexdigest(),
            "release": None if release is None else release.as_dict()}


def ran_under(ledger: Ledger, job: JobInfo, meta: Mapping[str, Any], evidence: bytes
              ) -> Release | None:
    """The release an evidence file's culprit ran under: the file's (`bundle_release`),
    which must name the session of the culprit's statements (`job_facts.session_for`).
    An honest member signs only under the release it read on the ledger at run time, so
    a file whose release differs (to make its honest run look deviant on replay, or
    after the owner tightened the policy) is refused here, whatever the ledger says now."""
    release = bundle_release(meta, job)
    if decode_evidence(evidence)[1].session_id != \
            session_id(session_for(job.job_id, ledger.deployment, release)):
        raise EvidenceError("the culprit's signed view is not of this job's session under the "
                            "release the file states (another job, or another release policy)")
    return release


def bundle_release(meta: Mapping[str, Any], job: JobInfo) -> Release | None:
    """The release an evidence file says the job ran under, checked against what the
    ledger fixed for the job (its ε and δ; the policy itself the culprit's signed session
    binds, `verify_bundle`). EvidenceError if it is malformed or spends another ε, δ."""
    raw = meta.get("release")
    if raw is None:
        if job.epsilon or job.delta:
            raise EvidenceError(f"job {job.job_id} spends ε on the ledger; the file states no "
                                "release")
        return None
    try:
        release = Release.from_dict(raw)
        spend = (to_fixed(release.epsilon or 0.0, "ε"), to_fixed(release.delta, "δ"))
    except (PolicyError, ValueError, TypeError) as exc:
        raise EvidenceError(f"the file's release is malformed: {exc}") from exc
    if spend != (job.epsilon, job.delta):
        raise EvidenceError(f"the file's release spends (ε, δ) = ({release.epsilon}, "
                            f"{release.delta}); job {job.job_id} on the ledger spends "
                            f"({from_fixed(job.epsilon):g}, {from_fixed(job.delta):g})")
    return release
