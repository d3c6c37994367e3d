"""Released results for the analyst who paid for a job, sealed to the key the job names.

Under a release policy (docs/disclosure.md, "Results to analysts"), the poster of a job
names an X25519 public key in the job record (`jobs.vy` `recipient`). Every quorum member,
besides replying to the owner as always, encrypts its result shares and the public facts
of its reply to that key and keeps the sealed copy; it hands it to anyone who asks
(`job-result`) once the job is accepted on the ledger. Only the key's holder can open it.

Why these choices:
- The key is derived from the analyst's ledger account (a personal_sign over a fixed
  text; Ethereum signatures are deterministic, RFC 6979), so an analyst needs no new key
  file: whoever controls the account, on a dev chain or with its private key, re-derives
  the same key, and no one else can.
- ECIES with an ephemeral key per member and job (X25519, HKDF-SHA256, ChaCha20-Poly1305,
  the job id and the member's party bound as associated data), the construction of
  libsodium's sealed boxes, from `cryptography`, which the project already uses.
- Integrity comes from the ledger, not from a key of the analyst's inside the MPC: each
  member's shares must hash to the commitment that member put on the ledger before the
  owner's check (`job_facts.result_commitment`), and the job must be ACCEPTED, which the
  owner does only for a result that passed its own MAC check under a key no member knew.
  So no coalition of members can change what the analyst reads; the owner could only by
  colluding with a member, and the owner decides what data the job ran on anyway.
  (Inputting an analyst's key share into the MPC would also protect against that, at
  the cost of a second sealing product and of blame replays that know the analyst's
  key shares; kept for later.)
- The owner's output key, single-use per job, is recovered from the sealed pairs
  (z = k x), so the analyst decodes with the owner's own code (`decode_results`), range
  checks and release facts (suppressed cells) included.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_utils import keccak

from enigma.field import Field
from enigma.lang.interpreter import Revealed
from enigma.lang.program import decode_results
from enigma.ledger import JobStatus, Ledger
from enigma.net.errors import NetError
from enigma.net.identity import Identity
from enigma.sharing import additive

from .job_facts import JobError, agreed_meta, result_commitment, result_meta
from .service import Connection, ServiceError, parse_endpoint

KEY_TEXT = b"enigma: the key my released job results are sealed to (v1)"
"""What an analyst's account signs to derive its result key; never a transaction."""
NO_RECIPIENT = bytes(32)


class ResultError(JobError):
    """Released results that cannot be read: not sealed to this key, not accepted, or
    not what the members committed to on the ledger."""


def result_key(account: Ledger) -> X25519PrivateKey:
    """The account's result key: the same for every call, and only for this account."""
    signature = account.sign(keccak(KEY_TEXT))
    return X25519PrivateKey.from_private_bytes(keccak(b"enigma.result-key.v1" + signature))


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The 32 bytes a job record names as its recipient."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _aead(shared: bytes, job_id: int, party: int) -> ChaCha20Poly1305:
    info = b"enigma.job.result.sealed.v1" + job_id.to_bytes(8, "big") + party.to_bytes(2, "big")
    return ChaCha20Poly1305(HKDF(hashes.SHA256(), 32, None, info).derive(shared))


def _bound(job_id: int, party: int, ephemeral: bytes) -> bytes:
    return job_id.to_bytes(8, "big") + party.to_bytes(2, "big") + ephemeral


def seal(recipient: bytes, job_id: int, party: int, x: np.ndarray, z: np.ndarray,
         reply: dict[str, Any]) -> bytes:
    """A member's result shares (x, z) and the public facts of its reply, for `recipient`
    alone: ephemeral public key (32) | nonce (12) | ChaCha20-Poly1305 ciphertext."""
    ephemeral = X25519PrivateKey.generate()
    eph = public_bytes(ephemeral)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    body = json.dumps({"x": np.asarray(x, np.uint64).tolist(),
                       "z": np.asarray(z, np.uint64).tolist(),
                       "meta": json.loads(result_meta(reply))}).encode()
    nonce = os.urandom(12)
    return eph + nonce + _aead(shared, job_id, party).encrypt(
        nonce, body, _bound(job_id, party, eph))


def unseal(key: X25519PrivateKey, job_id: int, party: int, blob: bytes
           ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(public facts, x, z) from a member's sealed copy; ResultError if it is not sealed
    to `key` for this job and party (a stranger's key opens nothing)."""
    if len(blob) < 44 + 16:
        raise ResultError(f"job {job_id}: member {party}'s sealed result is {len(blob)} "
                          "bytes, too short to be one")
    eph, nonce, body = blob[:32], blob[32:44], blob[44:]
    shared = key.exchange(X25519PublicKey.from_public_bytes(eph))
    try:
        plain = _aead(shared, job_id, party).decrypt(nonce, body, _bound(job_id, party, eph))
    except InvalidTag:
        raise ResultError(f"job {job_id}: member {party}'s result is not sealed to this key "
                          "(only the job's recipient can open it)") from None
    raw = json.loads(plain)
    return (raw["meta"], np.asarray(raw["x"], np.uint64).reshape(-1, 2),
            np.asarray(raw["z"], np.uint64).reshape(-1, 2))


def fetch_sealed(account: Ledger, job_id: int, timeout: float = 30.0) -> list[bytes]:
    """Every quorum member's sealed copy of an accepted job's result, in quorum order,
    fetched from the members themselves (at their ledger endpoints, under a throwaway
    service identity: the copies are useless to anyone but the recipient)."""
    job = account.job(job_id)
    if job.status is not JobStatus.ACCEPTED:
        raise ResultError(f"job {job_id} is {job.status.name.lower()}: members hand out "
                          "released results once its owner has accepted it")
    if job.recipient == NO_RECIPIENT:
        raise ResultError(f"job {job_id} names no recipient: its results went to the "
                          "dataset's owner alone")
    me, out = Identity.generate(), []
    for party, address in enumerate(job.quorum):
        info = account.node(address)
        host, port, _ = parse_endpoint(info.endpoint)
        try:
            with Connection.open(host, port, me, info.transport_key, timeout) as conn:
                _, arrays = conn.request("job-result", job_id=job_id, party=party)
        except (ServiceError, NetError, OSError) as exc:
            raise ResultError(f"job {job_id}: member {party} ({address}) did not hand over "
                              f"its sealed result: {exc}") from exc
        out.append(np.asarray(arrays[0], np.uint8).tobytes())
    return out


def open_result(account: Ledger, job_id: int, blobs: list[bytes],
                key: X25519PrivateKey | None = None, field: Field | None = None
                ) -> dict[str, Revealed]:
    """The released cells of a job from its members' sealed copies: each opened with the
    account's result key, checked against the member's commitment on the ledger, the
    members' public facts compared, then decoded as the owner decodes (suppressed cells
    absent, as NaN with their reason)."""
    key = key or result_key(account)
    job = account.job(job_id)
    if job.recipient != public_bytes(key):
        raise ResultError(f"job {job_id} seals its results to another key: only its "
                          "poster can read them")
    replies = []
    for party, (address, blob) in enumerate(zip(job.quorum, blobs, strict=True)):
        meta, x, z = unseal(key, job_id, party, blob)
        committed = account.commit_of(job_id, address).commitment
        if result_commitment(job_id, x, z, result_meta(meta)) != committed:
            raise ResultError(f"job {job_id}: member {party} ({address}) sealed a result "
                              "other than the one it committed to on the ledger; refused")
        replies.append((meta, [x, z]))
    agreed_meta(job_id, job.quorum, replies)
    F = field or Field()
    x = additive.combine(F, [r[1][0] for r in replies])
    z = additive.combine(F, [r[1][1] for r in replies])
    return decode_results(F, _owner_key(F, x, z), [(r[1][0], r[1][1]) for r in replies],
                          replies[0][0])


def _owner_key(F: Field, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The job's single-use output key k from its sealed pair z = k x (any nonzero x)."""
    nonzero = np.flatnonzero(~F.equal(x, F.zeros(x.shape[0])))
    if nonzero.size == 0:
        return F.from_ints([1])
    j = int(nonzero[0])
    return F.mul(z[j:j + 1], F.inverse(x[j:j + 1]))


def read_result(account: Ledger, job_id: int, timeout: float = 30.0) -> dict[str, Revealed]:
    """`enigma job result ID`: fetch the sealed copies and open them, as the poster."""
    return open_result(account, job_id, fetch_sealed(account, job_id, timeout))
