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
3. if nobody's messages deviate but the owner's result check failed, each member's view
   is replayed to the end (`replay_output`): a member whose result commitment, signed on
   the ledger by its own account, is not the hash of what its committed run produces
   delivered a wrong result share (the app-layer `wrong-recipient`): a proved deviation;
4. otherwise the members named `absent` (timed out, dropped out) or `withheld` (no valid
   package) on the others' signed abort records: an attestation only;
5. on chain: a proved deviation is an owner-signed accusation (`accuse`, proof type 1):
   the culprit's deposit goes to the job's other members and it is never drawn again; an
   attested absence is `report_absent`: no wei moves, the node is suspended from draws.
   Both refund the poster's escrow; `run_job` then re-posts the job on a new quorum.
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
from enigma.ledger import JobInfo, Ledger
from enigma.mpc.blame import (
    EvidenceError,
    Package,
    Program,
    encode_abort,
    identify,
    replay_output,
    verify_evidence,
    view_evidence,
)

_BUNDLE = b"enigma.job.evidence.v1"


@dataclass
class Incident:
    """One failed attempt of a job and what the owner did about it."""

    job_id: int
    culprit: str
    """The ledger address named (empty when nobody could be named)."""
    party: int
    verdict: str
    """`deviation` (messages), `result` (result share), `absent`, `withheld` or `none`."""
    evidence_hash: str
    evidence_path: str
    slashed: int
    refund: int
    seconds: float
    error: str

    @property
    def proved(self) -> bool:
        return self.verdict in ("deviation", "result")


@dataclass(frozen=True)
class MemberInputs:
    """One member's committed private inputs, as it handed them to the owner."""

    shares: dict[str, np.ndarray]
    point: int
    rows: int
    key_share: np.ndarray


def _bundle(meta: Mapping[str, Any], evidence: bytes, arrays: Sequence[np.ndarray]) -> bytes:
    """The public evidence file: job facts (JSON), the blame evidence, the culprit's inputs."""
    parts = [_BUNDLE]
    for blob in (json.dumps(meta, sort_keys=True).encode(), evidence,
                 *[np.ascontiguousarray(a, dtype="<u8").tobytes() for a in arrays]):
        parts += [struct.pack("<I", len(blob)), blob]
    return b"".join(parts)


def blame_job(ledger: Ledger, home: Path, job: JobInfo, public_keys: Sequence[bytes],
              packages: Mapping[int, Package], inputs: Mapping[int, MemberInputs],
              make_program: Callable[[Mapping[int, MemberInputs]], Program],
              result_failed: bool, commitment_of: Callable[[int, np.ndarray, np.ndarray], bytes],
              meta: Mapping[str, Any], error: str) -> Incident:
    """Steps 1-5 of the module docstring for one failed attempt; returns what was done."""
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
            if commitment_of(job.job_id, sealed[0], sealed[1]) != signed:
                party, kind, evidence = p, "result", view
                break
    if party < 0:
        for p, why in sorted(verdict.culprits.items()):
            if why in ("absent", "withheld"):
                party, kind = p, why
                evidence = b"".join(encode_abort(r) for r in verdict.attested.get(p, []))
                break
    if party < 0:
        return Incident(job.job_id, "", -1, "none", "", "", 0, 0,
                        time.perf_counter() - t0, error)
    culprit = job.quorum[party]
    arrays: list[np.ndarray] = []
    facts = dict(meta, job_id=job.job_id, culprit=culprit, party=party, verdict=kind)
    if kind in ("deviation", "result"):
        mine = inputs[party]
        arrays = [*mine.shares.values(), mine.key_share]
        facts.update(point=mine.point, rows=mine.rows, columns=list(mine.shares),
                     result_commitment=ledger.commit_of(job.job_id, culprit).commitment.hex())
    bundle = _bundle(facts, evidence, arrays)
    digest = keccak(bundle)
    path = home / "evidence" / f"job-{job.job_id}-{kind}-{culprit.lower()}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, [bundle])
    slashed = refund = 0
    if kind in ("deviation", "result"):
        sig = ledger.sign(ledger.accusation_digest(job.job_id, culprit, digest))
        slashed = ledger.accuse(job.job_id, culprit, digest, [sig])
        refund = job.escrow
    else:
        sig = ledger.sign(ledger.absence_digest(job.job_id, culprit, digest))
        refund = ledger.report_absent(job.job_id, culprit, digest, [sig])
    return Incident(job.job_id, culprit, party, kind, digest.hex(), str(path), slashed, refund,
                    time.perf_counter() - t0, error)


def evidence_digest(path: Path) -> str:
    """The keccak256 the ledger holds for an evidence file (anyone can recompute it)."""
    return keccak(Path(path).read_bytes()).hex()


def bundle_meta(source: str, schema: Mapping[str, Any], filename: str,
                dealer_seed: bytes) -> dict[str, Any]:
    """The public facts a verifier needs besides the evidence: the script, schema and seed."""
    return {"script": source, "schema": dict(schema), "filename": filename,
            "dealer_seed": dealer_seed.hex(),
            "script_sha256": hashlib.sha256(source.encode()).hexdigest()}
