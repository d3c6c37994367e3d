"""What a job's members and its owner agree on: commitments, sessions, inputs, errors.

Both sides compute these from public data (or from what a member committed to), so they
live below the node's job service and the owner's orchestration, which both import them.
"""


from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from enigma.lang.release import Release
from enigma.ledger import (
    Deployment,
)

log = logging.getLogger(__name__)

#: Test-only fault injection: a node started with this variable set to "tamper-partial"
#: changes the partial aggregate it re-shares, so a test can show the owner refuses the job;
#: "tamper-reshare" changes its part of the centroids a reducer re-shares to chunk quorums;
#: "tamper-result" hands the owner result shares other than the ones it committed to.
FAULT_ENV = "ENIGMA_TEST_FAULT"

#: Digits of comparisons in jobs on HE preprocessing: 2-bit digits need 3x fewer products
#: offline than the engine's default 4 (docs/preprocessing.md, "digit_bits = 2").
HE_DIGIT_BITS = 2


@dataclass(frozen=True)
class MemberInputs:
    """One member's committed private inputs, as it handed them to the owner."""

    shares: dict[str, np.ndarray]
    point: int
    rows: int
    key_share: np.ndarray
    prep: bytes = b""
    """Its preprocessing slice on HE (`prep.served`, whose digest its material commits to);
    empty on the test dealer, whose preprocessing a replay regenerates from the seed."""
    stored: Mapping[str, Any] = field(default_factory=dict)
    """What it says it stores of the chunks it read: the store's name and, per chunk, its
    index, rows and every column's [name, dtype, shape, sha256] from its headers."""


class JobError(RuntimeError):
    """A job that could not be posted, run or settled; the message says which step and why.

    An error that stops a re-run after blame (this one, or the ledger's or a service's)
    carries `incidents`, the failed attempts before it, set by `run_job`: a re-run refused,
    for instance for lack of privacy budget, must not hide who was blamed."""


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


def session_for(job_id: int, deployment: Deployment, release: Release | None = None) -> bytes:
    """The session of a job: bound to the chain and contract, so it is never reused.

    With `release` (the dataset's policy and the job's ε, δ the members read on the
    ledger) the session names that release too: the mesh admits only members that run
    under the same one, and every statement a member signs in blame mode carries it, so
    its evidence binds the release it ran under (the ledger's policy may be tightened
    later; a verifier checks the file's release against the culprit's signature, not the
    ledger's word of the day). Without one, the bytes are the job's session as before."""
    base = f"enigma.job.v1/{deployment.chain_id}/{deployment.jobs}/{job_id}".encode()
    if release is not None:
        base += b"/release/" + release_bytes(release)
    return hashlib.sha256(base).digest()


def release_bytes(release: Release) -> bytes:
    """A release in one canonical encoding (sorted JSON), as the session binds it."""
    return json.dumps(release.as_dict(), sort_keys=True, separators=(",", ":")).encode()


def partial_commitment(job_id: int, parent: int, parts: Sequence[np.ndarray]) -> bytes:
    """What a chunk-quorum member commits on its sub-job: SHA-256 over every part it sent."""
    h = hashlib.sha256(b"enigma.job.partial.v1" + job_id.to_bytes(8, "big")
                       + parent.to_bytes(8, "big"))
    for a in parts:
        h.update(np.ascontiguousarray(a, dtype="<u8").tobytes())
    return h.digest()

